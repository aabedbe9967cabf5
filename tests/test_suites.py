"""Suites end to end: real `nearai suite` subprocesses against the local OpenAI-compatible server (and moto S3 for
the shared cache), real HF datasets on disk, real kills and SIGINTs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env
from tests.openai_server import FakeOpenAI, expected_addition

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def additions(ds: Path, limit: int = 0) -> list[tuple[int, int, str]]:
    import datasets

    rows = datasets.load_from_disk(str(ds)).to_list()
    rows = rows[:limit] if limit else rows
    return [(*map(int, r["input"].split(" + ")), r["output"]) for r in rows]


def model_passes(ds: Path, limit: int, skew: int = 0) -> list[bool]:
    out = []
    for a, b, want in additions(ds, limit):
        got = str(a + b + 2) if skew and (a + b) % skew == 0 else expected_addition(a, b)
        out.append(got == want)
    return out


def manifest(env: Env, name: str) -> dict[str, Any]:
    runs = sorted((env.home / "suites" / name).iterdir())
    out: dict[str, Any] = json.loads((runs[-1] / "manifest.json").read_text())
    return out


COMPARISON = """name = "model_comparison"
parallel = 3

[defaults]
api_base = "{url}"
solver = "ThreeDigitAdditionSolver"
dataset = "3_digit_addition"
rollouts = 3

[[tasks]]
name = "first20"
model = ["m1", "m2", "m3"]
limit = 20

[[tasks]]
name = "all"
model = ["m1", "m2", "m3"]
max_concurrent = 4
"""


def test_model_comparison_records_every_cell_and_summarizes(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    ds = build(project / "3_digit_addition", size=30)
    server.skew = {"m2": 3}
    config = write(project / "cmp.toml", COMPARISON.format(url=server.url))
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "-c", "user.email=t@t", "-c", "user.name=t", "add", "cmp.toml"], check=True)
    subprocess.run(["git", "-C", str(project), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c"], check=True)
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    out = local_env.run("suite", "run", str(config), "--record", "-v", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "\r" not in out.stdout and out.stdout.count("start  [") == 6 and out.stdout.count("done   [") == 6
    assert server.requests == 30 * 3 * 3  # the 20-datum cells' answers are the 30-datum cells' first ones: cached
    m = manifest(local_env, "model_comparison")
    assert m["status"] == "completed" and m["config_text"] == config.read_text() and m["git_commit"] == head
    assert m["packages"]["datasets"] and m["packages"]["nearai-bench"]
    cells = m["cells"]
    assert [c["status"] for c in cells] == ["completed"] * 6 and all(c["evaluation"] for c in cells)
    first = cells[0]["resolved"]
    assert first["dataset"].startswith("3_digit_addition@") and len(first["dataset_hash"]) == 64
    assert first["solver"] == "ThreeDigitAdditionSolver" and first["solver_version"] == "1" and first["rollouts"] == 3
    assert [c["resolved"]["model"] for c in cells] == ["openai/m1", "openai/m2", "openai/m3"] * 2
    for c in cells:
        n = 20 if c["task_name"] == "first20" else 30
        want = sum(model_passes(ds, n, 3 if c["resolved"]["model"] == "openai/m2" else 0))
        assert c["metrics"]["n"] == 3 * n and c["metrics"]["passed"] == 3 * want

    table = local_env.run("evaluation", "table", "--format=json", check=True)
    rows = json.loads(table.stdout)["rows"]
    # every cell its own row: the 20-datum selection is told apart
    assert len(rows) == 6 and {r["model"] for r in rows} == {"openai/m1", "openai/m2", "openai/m3"}

    summary = json.loads(local_env.run("suite", "summarize", "model_comparison", "--latest", "--format=json",
                                       check=True).stdout)
    assert [c["n"] for c in summary["cells"]] == [60, 60, 60, 90, 90, 90] and "pass@3" in summary["cells"][0]
    assert {t["rollouts"] for t in summary["tasks"]} == {3}
    pair = next(p for p in summary["pairs"] if p["task"] == "all" and p["a"] == "openai/m1" and p["b"] == "openai/m2")
    p1, p2 = model_passes(ds, 30), model_passes(ds, 30, 3)
    diffs = [int(a) - int(b) for a, b in zip(p1, p2)]
    assert pair["n"] == 30 and abs(pair["diff"] - sum(diffs) / 30) < 1e-9
    assert pair["ci95_low"] < pair["diff"] < pair["ci95_high"]

    as_csv = list(csv.DictReader(io.StringIO(local_env.run("suite", "summarize", "model_comparison", "--format=csv",
                                                         check=True).stdout)))
    assert Counter(r["section"] for r in as_csv) == {"cells": 6, "tasks": 6, "pairs": 6, "models": 3, "model_pairs": 3}
    across = next(p for p in summary["model_pairs"] if p["a"] == "openai/m1" and p["b"] == "openai/m2")
    assert (across["tasks"], across["n"]) == (2, 50)  # every datum of both tasks, each paired with itself
    md = local_env.run("suite", "summarize", "model_comparison", "--format=markdown", check=True).stdout
    assert "## Paired differences" in md and md.count("| all |") >= 3
    plain = local_env.run("suite", "summarize", "model_comparison", check=True).stdout
    assert "Per task, across rollouts" in plain
    listed = local_env.run("suite", "list", check=True).stdout
    assert "model_comparison" in listed and "completed" in listed


def test_rerun_is_fully_cached_and_eval_grades_again_without_the_model(local_env: Env, server: FakeOpenAI,
                                                                       tmp_path: Path) -> None:
    build(tmp_path / "3_digit_addition", size=20)
    solver = write(tmp_path / "lenient.py", "from solvers.addition import ThreeDigitAdditionSolver\n\n\n"
                                            "class Lenient(ThreeDigitAdditionSolver):\n    pass\n")
    config = write(tmp_path / "s.toml", f'name = "regrade"\n[[tasks]]\ndataset = "3_digit_addition"\n'
                                        f'solver = "{solver.name}:Lenient"\nmodel = "m"\napi_base = "{server.url}"\n'
                                        f"rollouts = 2\n")
    local_env.run("suite", "run", str(config), check=True)
    assert server.requests == 40
    again = local_env.run("suite", "run", str(config), check=True)
    assert server.requests == 40 and "40 cached" in again.stdout
    # the solver's judging changes (version 2 accepts an answer one too high): grade the run again, no model calls
    solver.write_text("from solvers import SolveResult\nfrom solvers.addition import ThreeDigitAdditionDatum, "
                      "ThreeDigitAdditionSolver\n\n\nclass Lenient(ThreeDigitAdditionSolver):\n    version = '2'\n\n"
                      "    async def solve(self, datum, session):\n        d = ThreeDigitAdditionDatum(**datum)\n"
                      "        goal = f'Please add the following numbers together: {d.input}\\n\\nOutput the result only.'\n"
                      "        got = int((await session.run_task(goal)).strip())\n"
                      "        return SolveResult(passed=got in (int(d.output), int(d.output) + 1))\n")
    graded = local_env.run("suite", "eval", "regrade", "--latest", check=True)
    assert server.requests == 40
    passed = sum(model_passes(tmp_path / "3_digit_addition", 20))
    assert f"{100 * passed / 20:.1f}%" in graded.stdout and "100.0%" in graded.stdout and "1/2" in graded.stdout
    regrades = sorted((local_env.home / "suites" / "regrade").glob("*/regrade-*.json"))
    assert len(regrades) == 1 and json.loads(regrades[0].read_text())["cells"][0]["changed"] == 2 * (20 - passed)
    # a solver whose prompt changed cannot be graded from the stored outputs: it says so, still without calls
    solver.write_text(solver.read_text().replace("Output the result only.", "Only the result, please."))
    local_env.run("suite", "eval", "regrade", check=True)
    assert server.requests == 40
    latest = sorted((local_env.home / "suites" / "regrade").glob("*/regrade-*.json"))[-1]
    assert json.loads(latest.read_text())["cells"][0]["need_model"] == 40


def test_sweep_passes_environment_variables_to_agents(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    build(tmp_path / "3_digit_addition", size=6)
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "agent.py").write_text("import os\n\ndef run(env):\n    env.add_system_log('budget=' + os.environ['BUDGET'])\n"
                                    "    return env.completion(env.task)\n")
    config = write(tmp_path / "sweep.toml", f"""name = "sweep"
parallel = 2
[defaults]
dataset = "3_digit_addition"
solver = "ThreeDigitAdditionSolver"
agent = "agent"
model = "m"
api_base = "{server.url}"

[[tasks]]
name = "small"
temperature = 0.0
environment_variables = {{ BUDGET = "10" }}

[[tasks]]
name = "large"
temperature = 0.7
environment_variables = {{ BUDGET = "budget-99-of-sweep" }}
""")
    local_env.run("suite", "run", str(config), check=True, timeout=300)
    m = manifest(local_env, "sweep")
    assert [c["resolved"]["temperature"] for c in m["cells"]] == [0.0, 0.7]
    assert m["cells"][0]["resolved"]["agent_hash"] != m["cells"][1]["resolved"]["agent_hash"]  # env vars key the cache
    folder = sorted((local_env.home / "suites" / "sweep").iterdir())[-1]
    for n, budget in ((0, "10"), (1, "budget-99-of-sweep")):
        rows = [json.loads(x) for x in (folder / "cells" / f"{n:03d}.jsonl").read_text().splitlines()]
        assert len(rows) == 6 and all(r["agent"][0]["logs"][0]["message"] == f"budget={budget}" for r in rows)
    assert "budget-99-of-sweep" not in json.dumps(m["cells"][1]["resolved"])  # values are hashed into the identity, not stored


@pytest.mark.parametrize(("body", "message"), [
    ('name = "x"\n[[tasks]]\ndataset = "d"\nsolver = "S"\nmodle = "m"\n', "bad.toml:5: unknown key 'modle' in [[tasks]] #1"),
    ('name = "x"\nparalel = 2\n[[tasks]]\nmodel = "m"\n', "bad.toml:2: unknown key 'paralel' at the top level"),
    ('name = "x"\n[[tasks]]\ndataset = "d"\nsolver = "S"\nmodel = "m"\nrollouts = "3"\n', "bad.toml:6: rollouts must be an integer"),
    ('name = "x"\n[[tasks]]\ndataset = "d"\nsolver = "S"\n', "has neither model nor agent"),
    ('name = "x"\n[tasks\n', "invalid TOML"),
])
def test_invalid_configs_fail_before_any_model_call(local_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                    body: str, message: str) -> None:
    bad = local_env.run("suite", "run", str(write(tmp_path / "bad.toml", body)))
    assert bad.returncode == 2 and message in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    assert server.requests == 0 and not (local_env.home / "suites").exists()


def test_a_bad_cell_fails_the_suite_before_any_model_call(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    build(tmp_path / "3_digit_addition", size=5)
    config = write(tmp_path / "s.toml", f'name = "s"\n[defaults]\napi_base = "{server.url}"\nsolver = "ThreeDigitAdditionSolver"\n'
                                        '[[tasks]]\ndataset = "3_digit_addition"\nmodel = "m"\n'
                                        '[[tasks]]\ndataset = "no_such_dataset_here"\nmodel = "m"\n')
    bad = local_env.run("suite", "run", str(config))
    assert bad.returncode != 0 and "cell 2 (task2 · m)" in bad.stderr and bad.stderr.count("\n") == 1
    assert server.requests == 0
    assert local_env.run("suite", "run", str(config.with_suffix(".json"))).returncode == 2


def _start(env: Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "registry_cli", *args], env=env.vars, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(server: FakeOpenAI, n: int, proc: subprocess.Popen[str], limit: float = 60) -> None:
    deadline = time.time() + limit
    while server.requests < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert server.requests >= n, "the suite made no progress"


SLOW = """name = "{name}"
parallel = 1
[defaults]
api_base = "{url}"
solver = "ThreeDigitAdditionSolver"
dataset = "3_digit_addition"
max_concurrent = 4
[[tasks]]
model = "m1"
[[tasks]]
model = "m2"
"""


@contextlib.contextmanager
def slow_suite(env: Env, tmp_path: Path, name: str, latency: float,
               progress: int) -> Iterator[tuple[FakeOpenAI, Path, subprocess.Popen[str]]]:
    """A two-cell suite of 150 datums each against a slow server, started and left running after ``progress``
    requests; yields (server, config, process)."""
    server = FakeOpenAI(latency=latency).start()
    try:
        build(tmp_path / "3_digit_addition", size=150)
        config = write(tmp_path / "slow.toml", SLOW.format(name=name, url=server.url))
        proc = _start(env, "suite", "run", str(config))
        _wait_for(server, progress, proc)
        yield server, config, proc
    finally:
        server.stop()


def test_killed_suite_resumes_without_asking_finished_datums_again(local_env: Env, tmp_path: Path) -> None:
    with slow_suite(local_env, tmp_path, "killed", 0.02, 200) as (server, config, proc):  # cell 1 done, 2 under way
        proc.kill()
        proc.wait()
        m = manifest(local_env, "killed")  # valid JSON after kill -9
        assert m["status"] == "running" and m["cells"][0]["status"] == "completed"
        local_env.run("suite", "run", str(config), check=True, timeout=300)
        asked = Counter(server.asked)
        assert len(asked) == 300  # every (model, datum) answered
        # asked twice: only datums in flight (4) or queued for writing at the kill
        assert sum(c - 1 for c in asked.values()) <= 8
        assert manifest(local_env, "killed")["status"] == "completed"


def test_sigint_stops_cleanly_and_leaves_a_valid_manifest(local_env: Env, tmp_path: Path) -> None:
    with slow_suite(local_env, tmp_path, "stopped", 0.05, 40) as (_, _, proc):
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "cancelled" in out
        m = manifest(local_env, "stopped")
        assert m["status"] == "cancelled" and m["finished_at"]
        assert [c["status"] for c in m["cells"]] == ["cancelled", "cancelled"]
        assert 0 < m["cells"][0]["done"] < 150


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
def test_suite_cells_on_ray_share_the_s3_cache(s3_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    build(tmp_path / "3_digit_addition", size=12)
    config = write(tmp_path / "ray.toml", f'name = "onray"\nparallel = 2\n[defaults]\napi_base = "{server.url}"\n'
                                          'solver = "ThreeDigitAdditionSolver"\ndataset = "3_digit_addition"\n'
                                          '[[tasks]]\nmodel = ["m1", "m2"]\n')
    out = s3_env.run("suite", "run", str(config), "--ray_address=local", check=True, timeout=300)
    assert server.requests == 24 and "completed" in out.stdout
    other = Env(tmp_path / "home2", dict(s3_env.vars, NEARAI_HOME=str(tmp_path / "home2")))
    again = other.run("suite", "run", str(config), check=True)
    assert server.requests == 24 and again.stdout.count("12 cached") == 2


def test_dry_run_counts_cached_datums_and_computes_nothing(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    build(tmp_path / "3_digit_addition", size=10)
    config = write(tmp_path / "d.toml", f'name = "dry"\n[defaults]\napi_base = "{server.url}"\n'
                                        'solver = "ThreeDigitAdditionSolver"\ndataset = "3_digit_addition"\n'
                                        '[[tasks]]\nmodel = ["m1", "gpt-4o-mini"]\nrollouts = 2\n')
    local_env.run("benchmark", "run", str(tmp_path / "3_digit_addition"), "ThreeDigitAdditionSolver", "--model=m1",
                  f"--api_base={server.url}", "--limit=4", check=True)
    before = server.requests
    dry = local_env.run("suite", "run", str(config), "--dry_run", check=True)
    assert server.requests == before and not (local_env.home / "suites").exists()
    line = next(ln for ln in dry.stdout.splitlines() if "m1" in ln)
    assert [c.strip() for c in line.split("│")[2:6]] == ["10", "20", "4", "16"]
    assert "$" in next(ln for ln in dry.stdout.splitlines() if "gpt-4o-mini" in ln)  # a known price


def test_live_status_on_a_terminal(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import pty

    build(tmp_path / "3_digit_addition", size=40)
    config = write(tmp_path / "tty.toml", f'name = "tty"\nparallel = 2\n[defaults]\napi_base = "{server.url}"\n'
                                          'solver = "ThreeDigitAdditionSolver"\ndataset = "3_digit_addition"\n'
                                          '[[tasks]]\nmodel = ["m1", "m2"]\n')
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "suite", "run", str(config)],
                            env={**local_env.vars, "TERM": "xterm"}, stdout=slave, stderr=slave, stdin=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "\x1b[" in shown  # redrawn in place, as a live display does
    assert "suite tty: completed" in shown and "Paired differences" in shown
    assert "done   [" in shown  # cell lines are printed above the live table too
