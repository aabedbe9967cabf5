"""Evaluations that say what was run: selection in the identity, refused and marked errors, hidden entries,
merged updates, exports, agent identity, PEP 440 versions, solver keys, a cache that never aborts a run, and
compatibility checks before any model call. Real CLI subprocesses, the local OpenAI-compatible server, moto S3."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from examples.make_addition_dataset import build
from tests.conftest import ROOT, Env, write_entry
from tests.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier

AGENT = ROOT / "examples" / "addition_agent"


def run(env: Env, ds: Path | str, server: FakeOpenAI, *args: str, check: bool = True) -> str:
    proc = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}", "--quiet",
                   *args, check=check)
    return proc.stdout


def table(env: Env, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(env.run("evaluation", "table", "--format=json", *args, check=True).stdout)
    return out


def test_partial_and_other_split_runs_never_replace_the_full_result(any_env: Env, server: FakeOpenAI,
                                                                     tmp_path: Path) -> None:
    import datasets

    ds = build(tmp_path / "3_digit_addition", size=40)
    run(any_env, ds, server, "--model=m", "--record")
    full = table(any_env)["rows"]
    assert len(full) == 1 and table(any_env)["key_columns"] == ["model", "agent"]
    out = run(any_env, ds, server, "--model=m", "--limit=10", "--record")
    assert "[first 10: 10 of 40]" in out and "10 cached" in out  # a selection reuses the cached datums
    t = table(any_env, "--all_metrics")
    assert t["key_columns"] == ["model", "agent", "selection"]
    by_sel = {r["selection"]: r for r in t["rows"]}
    assert set(by_sel) == {"", "first 10: 10 of 40"}
    assert by_sel[""]["3_digit_addition/n"] == 40 and by_sel["first 10: 10 of 40"]["3_digit_addition/n"] == 10
    assert by_sel[""]["3_digit_addition/score"] == full[0]["3_digit_addition/score"]
    run(any_env, ds, server, "--model=m", "--subsample=0.25", "--seed=3", "--record")
    sampled = [r for r in table(any_env)["rows"] if r["selection"].startswith("sample")]
    assert [r["selection"] for r in sampled] == ["sample 0.25 (seed 3): 10 of 40"]

    d = datasets.Dataset.from_dict({"input": ["1 + 1", "2 + 2"], "output": ["2", "4"]})
    datasets.DatasetDict({"train": d, "test": d.select([0])}).save_to_disk(str(tmp_path / "3_digit_addition_splits"))
    run(any_env, tmp_path / "3_digit_addition_splits", server, "--model=s", "--subset=test", "--record")
    run(any_env, tmp_path / "3_digit_addition_splits", server, "--model=s", "--subset=train", "--record")
    rows = [r for r in table(any_env, "--model=s", "--all_metrics")["rows"]]
    assert sorted((r["subset"], r["3_digit_addition/n"]) for r in rows) == [("test", 1), ("train", 2)]


def test_errored_runs_refused_or_marked(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=12)
    server.fail_substrings = ("add the following",)
    proc = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", "--quiet",
                         f"--api_base={server.url}", "--num_inference_retries=0", "--record")
    assert proc.returncode == 3 and "not recorded: all 12 datums errored" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "evaluation_" not in local_env.run("registry", "list", "--show_all", check=True).stdout
    import datasets

    server.fail_substrings = (datasets.load_from_disk(str(ds))[0]["input"],)
    some = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", "--quiet",
                         f"--api_base={server.url}", "--num_inference_retries=0", "--record")
    assert some.returncode == 3 and "recorded evaluation tester/evaluation_3_digit_addition_model_m" in some.stdout
    row = table(local_env, "--all_metrics")["rows"][0]
    assert row["3_digit_addition/errored"] == 1 and row["errored"] == {"3_digit_addition": 1}
    shown = local_env.run("evaluation", "table", check=True)
    assert " !" in shown.stdout and "errored" in shown.stderr


def test_hidden_entries_and_merged_details(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=10)
    local_env.run("registry", "upload", str(AGENT), check=True)
    local_env.run("registry", "download", "tester/addition-agent/latest", check=True)
    typed = local_env.home / "registry" / "tester" / "addition-agent" / "0.1.0"
    out = run(local_env, ds, server, "--model=m", f"--agent={typed}", "--record")
    entry = out.split("recorded evaluation ")[1].split()[0]
    assert "_agent_addition-agent_" in entry
    rows = table(local_env)["rows"]
    assert [r["agent"] for r in rows] == ["tester/addition-agent/0.1.0"]  # the entry, not the path
    run(local_env, ds, server, "--model=m", "--record")
    assert len(table(local_env)["rows"]) == 2

    local_env.run("registry", "update", entry, "--show_entry=false", check=True)
    assert len(table(local_env)["rows"]) == 1 and len(table(local_env, "--show_all")["rows"]) == 2
    info = local_env.run("registry", "info", entry, check=True).stdout
    assert '"score"' in info and '"show_entry": false' in info  # details merged, metrics kept
    listed = local_env.run("registry", "list", "--category=evaluation", check=True).stdout
    assert entry not in listed and entry in local_env.run("registry", "list", "--show_all", check=True).stdout

    local_env.run("registry", "update", entry, "--show_entry=true", check=True)
    local_env.run("registry", "update", "tester/addition-agent/0.1.0", "--show_entry=false", check=True)
    assert [r["agent"] for r in table(local_env)["rows"]] == [""]  # the hidden agent's evaluation is out
    assert entry not in local_env.run("registry", "list", "--category=evaluation", check=True).stdout
    model_entry = write_entry(tmp_path / "m_model", "m", "1.0.0", category="model", show_entry=False)
    local_env.run("registry", "upload", str(model_entry), check=True)
    assert table(local_env)["rows"] == [] and len(table(local_env, "--show_all")["rows"]) == 2


def test_all_versions_exports_and_integers(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=10)
    run(local_env, ds, server, "--model=m", "--record")
    run(local_env, ds, server, "--model=m", "--record")
    assert len(table(local_env)["rows"]) == 1
    every = table(local_env, "--all_versions")
    assert every["key_columns"][-1] == "entry" and len(every["rows"]) == 2
    wide = table(local_env, "--all_metrics", "--all_key_columns")
    assert len(wide["metric_columns"]) > 6 and isinstance(wide["rows"][0]["3_digit_addition/n"], int)
    text = local_env.run("evaluation", "table", "--all_metrics", "--all_key_columns", "--format=csv", check=True).stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == wide["key_columns"] + wide["metric_columns"]  # every column, untruncated
    assert rows[1][rows[0].index("3_digit_addition/n")] == "10"


def test_local_agent_identity_is_name_and_hash(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=6)
    copy = tmp_path / "elsewhere" / "agent_copy"
    shutil.copytree(AGENT, copy)
    run(local_env, ds, server, "--model=m", f"--agent={AGENT}/", "--record")
    out = run(local_env, ds, server, "--model=m", f"--agent={copy}", "--record")
    assert "6 cached" in out  # same content, same agent
    rows = table(local_env)["rows"]
    assert len(rows) == 1 and rows[0]["agent"].startswith("addition-agent@") and "/" not in rows[0]["agent"]
    for p in (local_env.home / "store").rglob("*.json"):
        assert str(tmp_path) not in p.read_text() and str(ROOT) not in p.read_text(), p


def test_versions_latest_and_tags(any_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    for v in ("2.0.0rc1", "2.0.0", "1.10.0", "1.9.0"):
        write_entry(tmp_path / v, "thing", v, tags=["Math"])
        any_env.run("registry", "upload", str(tmp_path / v), check=True)
    assert "thing/2.0.0 " in any_env.run("registry", "info", "tester/thing", check=True).stdout
    assert "thing/2.0.0 " in any_env.run("registry", "info", "tester/thing/latest", check=True).stdout
    assert "tester/thing/2.0.0" in any_env.run("registry", "list", "--tags=math", check=True).stdout
    same = write_entry(tmp_path / "same", "thing", "2.0")
    dup = any_env.run("registry", "upload", str(same))
    assert dup.returncode == 1 and "already exists" in dup.stderr  # 2.0 is 2.0.0
    bad = write_entry(tmp_path / "bad", "thing", "1.0-foo")
    refused = any_env.run("registry", "upload", str(bad))
    assert refused.returncode == 1 and "not a PEP 440 version" in refused.stderr and refused.stderr.count("(") == 1
    bumped = any_env.run("registry", "upload", str(tmp_path / "2.0.0rc1"), "--bump", check=True).stdout
    assert "bumped to 2.0.1" in bumped
    ds = build(tmp_path / "3_digit_addition", size=5)
    any_env.run("registry", "upload", str(ds), check=True)
    assert "Final score:" in run(any_env, "tester/3_digit_addition/latest", server, "--model=m")


SOLVERS = '''
from solvers import SolverStrategy, SolveResult



class Suffix(SolverStrategy):
    def __init__(self, suffix: str = "0", upper: bool = False) -> None:
        super().__init__()
        self.suffix = suffix  # no solver_args attribute: the engine binds the arguments itself

    def evaluation_name(self) -> str:
        return "suffix"

    async def solve(self, datum, session):
        answer = await session.run_task(datum["input"])
        return SolveResult(passed=datum["output"].endswith(self.suffix), info={"answer": answer})
'''


def test_solver_arguments_and_class_path_are_in_the_key(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=8)
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "suffix_a.py").write_text(SOLVERS)
    (plugin / "suffix_b.py").write_text(SOLVERS.replace('endswith(self.suffix)', 'startswith(self.suffix)'))
    env = Env(local_env.home, dict(local_env.vars, PYTHONPATH=f"{ROOT}:{plugin}"))

    def go(solver: str, *args: str) -> str:
        return env.run("benchmark", "run", str(ds), solver, "--model=m", f"--api_base={server.url}", "--quiet",
                       *args, check=True).stdout

    go("suffix_a:Suffix")
    assert server.requests == 8
    assert "8 cached" in go("suffix_a:Suffix", "--suffix=0", "--upper=false")  # defaults applied: same key
    assert "0 cached" in go("suffix_a:Suffix", "--suffix=5") and server.requests == 16
    assert "0 cached" in go("suffix_b:Suffix") and server.requests == 24  # same name, another class
    bad = env.run("benchmark", "run", str(ds), "suffix_a:Suffix", "--model=m", "--sufix=1")
    assert bad.returncode == 2 and "unknown flag --sufix" in bad.stderr and "--suffix, --upper" in bad.stderr
    typed = env.run("benchmark", "run", str(ds), "suffix_a:Suffix", "--model=m", "--upper=maybe")
    assert typed.returncode == 2 and "--upper expects true or false" in typed.stderr


def test_failed_store_write_of_the_cache_never_aborts(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=20)
    store = local_env.home / "store"
    store.mkdir(parents=True)
    (store / "cache").write_text("not a folder")  # every write under cache/ fails
    out = run(local_env, ds, server, "--model=m")
    assert "20 results kept locally but not shared to the store" in out and "Final score:" in out
    again = run(local_env, ds, server, "--model=m")
    assert "20 cached" in again and server.requests == 20


def test_incompatible_input_fails_before_any_model_call(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"question": "q", "answer": "#### 1"}]).save_to_disk(str(tmp_path / "gsm8k"))
    proc = local_env.run("benchmark", "run", str(tmp_path / "gsm8k"), "ThreeDigitAdditionSolver", "--model=m",
                         f"--api_base={server.url}")
    assert proc.returncode == 1 and "not one ThreeDigitAdditionSolver declares compatible" in proc.stderr
    assert "--check_compatibility=false" in proc.stderr and proc.stderr.count("\n") == 1
    shutil.copytree(tmp_path / "gsm8k", tmp_path / "3_digit_addition_wrong_fields")
    misfit = local_env.run("benchmark", "run", str(tmp_path / "3_digit_addition_wrong_fields"),
                           "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}")
    assert misfit.returncode == 1 and "does not fit ThreeDigitAdditionSolver: input: Field required" in misfit.stderr
    forced = local_env.run("benchmark", "run", str(tmp_path / "gsm8k"), "ThreeDigitAdditionSolver", "--model=m",
                           f"--api_base={server.url}", "--check_compatibility=false", "--quiet")
    assert forced.returncode == 3 and "Final score: 0/1" in forced.stdout  # run anyway: the datum errors
    assert server.requests == 0
    unroutable = local_env.run("benchmark", "run", str(build(tmp_path / "3_digit_addition", size=3)),
                               "ThreeDigitAdditionSolver", "--model=llama3-nonexistent", timeout=300)
    assert unroutable.returncode == 1 and "cannot route model 'llama3-nonexistent'" in unroutable.stderr
    assert unroutable.stderr.count("\n") == 1


@pytest.mark.parametrize("argv", [[], ["--help"], ["registry", "--help"], ["benchmark", "run", "--help"],
                                  ["evaluation", "table", "-h"], ["registry", "upload", "--help"],
                                  ["evaluation", "read_solutions", "--help"], ["registry"]])
def test_help_is_typed_and_exits_zero(local_env: Env, argv: list[str]) -> None:
    proc = local_env.run(*argv)
    assert proc.returncode == 0 and proc.stderr == "" and "usage: nearai" in proc.stdout
    assert "object" not in proc.stdout and "INFO" not in proc.stdout
    if argv[:2] == ["benchmark", "run"]:
        assert "--limit=INT" in proc.stdout and "--temperature=FLOAT" in proc.stdout and "--force " in proc.stdout


def test_unknown_names_get_close_matches(local_env: Env) -> None:
    for argv, expect in ((["evaluaton", "table"], "did you mean evaluation?"),
                         (["registry", "lst"], "did you mean list?"),
                         (["evaluation", "table", "--all_metric"], "did you mean all_metrics"),
                         (["registry", "upload"], "missing PATH"),
                         (["benchmark", "run", "some/data", "--limit", "3"], "missing SOLVER_STRATEGY")):
        proc = local_env.run(*argv)
        assert proc.returncode == 2 and expect in proc.stderr and proc.stderr.count("\n") == 1


def test_item_keys_equal_result_keys() -> None:
    from registry_cli.engine.caching.cache import item_keys, result_key

    common = {"solver": {"class": "a:B", "version": "1", "args": {"x": None, "y": 2}}, "dataset": "d", "subset": None,
              "model": {"model": "openai/m", "api_base": None, "temperature": 0.0}, "agent": None}
    odd = {**common, "dataset": "ünïcode \"quoted\" nearai:datum:7f3c", "subset": "zz"}  # even the template's marker
    for parts in (common, odd):
        key = item_keys(parts)
        for dh, r in (("ab" * 32, 0), ("0f" * 32, 3), ("h2", 12)):
            assert key(dh, r) == result_key({**parts, "datum": dh, "repeat": r})
