"""`nearai scenario tabulate RESULTS_DIR`: the outcome of every scenario trial found under a results folder
(``<scenario>/<id>/<repeat>/``), per task and summed per trial, with the success rate's 95% interval and pass@k.

A trial is passed or failed (a verdict), error (crashed, timed out, no verdict), or missing (no folder where a
repeat was expected). Unlike AutoGenBench, crashes never count as failures. Returns data; the CLI renders it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from registry_cli.engine.execution.metrics import pass_at_k, wilson
from registry_cli.engine.scenarios import PASSED_MARKER, crash
from registry_cli.errors import UsageError

STATUSES = ("passed", "failed", "error", "missing")


@dataclass
class Tabulation:
    trials: int
    tasks: list[str]  # "<scenario>/<id>"
    grid: dict[str, list[str]]  # task -> status per trial
    totals: dict[str, list[int]] = field(default_factory=dict)  # status -> count per trial
    summary: dict[str, float] = field(default_factory=dict)


def trial_status(folder: Path) -> str:
    """The trial's status from its result.json (written by ScenarioSolver), else from its console log."""
    try:
        status = str(json.loads((folder / "result.json").read_text())["status"])
        if status in STATUSES:
            return status
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        console = (folder / "console_log.txt").read_text(errors="replace")
    except OSError:
        return "error"
    if crash(console):
        return "error"
    return "passed" if PASSED_MARKER in console else "failed"


def tabulate(results_dir: str | Path) -> Tabulation:
    root = Path(results_dir).expanduser()
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder", "pass the results folder of a scenario run (default: Results)")
    found: dict[str, dict[int, str]] = {}
    for trial in sorted(root.glob("*/*/*")):
        if trial.is_dir() and trial.name.isdigit():
            found.setdefault(f"{trial.parent.parent.name}/{trial.parent.name}", {})[int(trial.name)] = trial_status(trial)
    if not found:
        raise UsageError(f"no scenario runs under {root}", "expected <scenario>/<id>/<repeat>/ folders")
    trials = 1 + max(r for runs in found.values() for r in runs)
    grid = {task: [runs.get(r, "missing") for r in range(trials)] for task, runs in sorted(found.items())}
    t = Tabulation(trials, sorted(grid), grid)
    t.totals = {s: [sum(1 for task in grid if grid[task][r] == s) for r in range(trials)] for s in STATUSES}
    passed = sum(t.totals["passed"])
    verdicts = passed + sum(t.totals["failed"])
    low, high = wilson(passed, verdicts)
    t.summary = {"successes": passed, "failures": sum(t.totals["failed"]), "errors": sum(t.totals["error"]),
                 "missing": sum(t.totals["missing"]), "success_rate": passed / verdicts if verdicts else 0.0,
                 "ci95_low": low, "ci95_high": high}
    for k in range(1, trials + 1):
        values = []
        for statuses in grid.values():
            n = sum(1 for s in statuses if s in ("passed", "failed"))
            if n >= k:
                values.append(pass_at_k(n, statuses.count("passed"), k))
        if values:
            t.summary[f"pass@{k}"] = sum(values) / len(values)
    return t


@dataclass
class ScriptTable:
    """What a benchmark's own ``custom_tabulate.py`` printed for one scenario folder."""

    scenario: str
    output: str
    failed: str = ""  # why the script gave no table ("" when it did)


_RUN_SCRIPT = ("import sys\nfrom agbench.load_module import load_module\n"
               "load_module(sys.argv[1]).main(['tabulate', *sys.argv[2:]])\n")


def find_script(results_dir: str | Path) -> Path | None:
    """The benchmark's ``custom_tabulate.py`` as AutoGenBench finds it: here (this folder, its Scripts/ and
    scripts/), else from the results folder up."""
    from registry_cli.engine.scenarios import find_tabulate

    here = Path.cwd()
    found = find_tabulate(here, here)
    if found is None:
        root = Path(results_dir).expanduser().resolve()
        found = find_tabulate(root, Path(root.anchor))
    return found


def script_tables(results_dir: str | Path, script: Path, sandbox: str = "auto", csv: bool = False) -> list[ScriptTable]:
    """Run ``script`` as AutoGenBench's tabulate does, once per scenario folder of ``results_dir``, in the sandbox
    (it is the benchmark's code): the results folder read-only, with a compatible ``agbench`` module."""
    import asyncio
    import shutil
    import tempfile

    from registry_cli.core.config import load_config
    from registry_cli.engine.isolation.backends import open_sandbox
    from registry_cli.engine.isolation.sandbox import Limits
    from registry_cli.engine.isolation.scratch import scratch_root
    from registry_cli.engine.scenarios import support_path

    root = Path(results_dir).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder", "pass the results folder of a scenario run (default: Results)")
    box = open_sandbox(load_config().sandbox if sandbox == "auto" else sandbox)
    def is_scenario(folder: Path) -> bool:  # holds <task>/<repeat>/ folders
        return any(t.is_dir() and any(r.is_dir() and r.name.isdigit() for r in t.iterdir()) for t in folder.iterdir())

    folders = [root] if is_scenario(root) else [p for p in sorted(root.iterdir()) if p.is_dir() and is_scenario(p)]
    tables = []
    for folder in folders:
        work = Path(tempfile.mkdtemp(prefix="tabulate-", dir=scratch_root()))
        try:
            shutil.copyfile(script, work / "custom_tabulate.py")
            argv = [box.python(), "-c", _RUN_SCRIPT, "custom_tabulate.py", str(folder), *(["-c"] if csv else [])]
            done = asyncio.run(box.run(argv, work, {"PYTHONPATH": f".:{support_path()}"},
                                       Limits(timeout_s=300.0, memory_mb=4096, disk_mb=256),
                                       expose=(root, Path(support_path()))))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        err = done.stderr.text().strip().splitlines()
        failed = "" if done.returncode == 0 else (err[-1] if err else f"exit code {done.returncode}")
        tables.append(ScriptTable(folder.name, done.stdout.text(), failed[:300]))
    if not tables:
        raise UsageError(f"no scenario folders under {root}", "expected <scenario>/<id>/<repeat>/ folders")
    return tables


def clone_benchmark(source: str, dest: str = "", path: str = "") -> Path:
    """A benchmark folder copied here, as AutoGenBench's ``clone`` fetches one: from a local folder, or a git URL
    (``path``: the benchmark's folder inside the repository). It must hold ``Templates/`` and ``Scripts/``; nothing
    is written unless it does, and an existing destination is never overwritten."""
    import shutil
    import subprocess
    import tempfile

    remote = "://" in source or source.startswith("git@") or source.endswith(".git")
    with tempfile.TemporaryDirectory(prefix="clone-") as tmp:
        if remote:
            try:
                done = subprocess.run(["git", "clone", "--depth", "1", "--quiet", source, f"{tmp}/repo"],
                                      capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.SubprocessError) as e:
                raise UsageError(f"cannot clone {source}: {e}", "check git and the URL") from None
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["git failed"])[-1]
                raise UsageError(f"cannot clone {source}: {last}", "check the URL (and that it is reachable)")
            folder = Path(tmp, "repo", path)
        else:
            folder = Path(source, path).expanduser()
        missing = [name for name in ("Templates", "Scripts") if not (folder / name).is_dir()]
        if not folder.is_dir() or missing:
            raise UsageError(f"{folder if not remote else source + ('/' + path if path else '')} is not an AutoGenBench "
                             f"benchmark (no {' or '.join(missing) or 'folder'})",
                             "a benchmark folder holds Templates/ and Scripts/ (pass --path for one inside a repository)")
        target = Path(dest or folder.resolve().name).expanduser()
        if target.exists():
            raise UsageError(f"{target} already exists", "pass another destination, or remove it first")
        shutil.copytree(folder, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    return target
