"""`benchmark list`: the benchmark runs known to this machine (a log written after every `benchmark run`) and the
evaluations in the store, one row each: namespace, benchmark, solver, args, score, solved/total.

The log is ``$NEARAI_HOME/benchmarks.jsonl``, one JSON line per run appended in a single write, so concurrent
runs never interleave and a crash loses at most its own line. Writing it never fails a run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from registry_cli.core.registry import Registry

RUN_LOG = "benchmarks.jsonl"
FIELDS = ("namespace", "benchmark", "solver", "solver_args", "dataset", "subset", "selection", "model", "agent")


@dataclass(frozen=True)
class BenchmarkRow:
    when: str
    namespace: str
    benchmark: str
    solver: str
    args: str
    dataset: str
    model: str
    agent: str
    score: float
    solved: int
    total: int
    errored: int
    where: str  # "local" (run on this machine) or the evaluation entry


def log_run(registry: Registry, details: dict[str, Any], entry: str = "") -> str:
    """Append the run to this machine's log; returns the problem ("" when written). Never raises."""
    m = details.get("metrics") or {}
    line = {k: details.get(k) for k in FIELDS}
    line.update(when=datetime.now(timezone.utc).isoformat(timespec="seconds"), entry=entry,
                score=m.get("score"), passed=m.get("passed"), n=m.get("n"), errored=m.get("errored"))
    data = (json.dumps(line, sort_keys=True) + "\n").encode()
    path = registry.config.home / RUN_LOG
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        return f"could not log the run in {path}: {e.strerror or e}"
    return ""


def _args(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value or "")


def _row(d: dict[str, Any], where: str, when: str, passed: Any, n: Any, errored: Any, score: Any) -> BenchmarkRow:
    return BenchmarkRow(when, str(d.get("namespace") or ""), str(d.get("benchmark") or ""), str(d.get("solver") or ""),
                        _args(d.get("solver_args")), str(d.get("dataset") or ""), str(d.get("model") or ""),
                        str(d.get("agent") or ""), float(score or 0.0), int(passed or 0), int(n or 0),
                        int(errored or 0), where)


def local_runs(registry: Registry) -> list[BenchmarkRow]:
    path = registry.config.home / RUN_LOG
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    rows = []
    for text in lines:
        try:
            d = json.loads(text)
        except ValueError:  # a line cut short by a crash
            continue
        if isinstance(d, dict):
            rows.append(_row(d, d.get("entry") or "local", str(d.get("when") or ""), d.get("passed"), d.get("n"),
                             d.get("errored"), d.get("score")))
    return rows


def list_benchmarks(registry: Registry, namespace: str = "", benchmark: str = "") -> list[BenchmarkRow]:
    """This machine's runs and the store's evaluations, newest first; a recorded local run is listed once."""
    from evaluation.table import TableOptions, evaluation_details

    stored = []
    for d in evaluation_details(registry, TableOptions(namespace=namespace, benchmark=benchmark, all_versions=True)):
        m = d.get("metrics") or {}
        stored.append(_row(d, str(d["entry"]), str(d["created_at"])[:19] + "+00:00", m.get("passed"), m.get("n"),
                           m.get("errored"), m.get("score")))
    recorded = {r.where for r in stored}
    mine = [r for r in local_runs(registry) if r.where not in recorded
            and (not namespace or r.namespace == namespace) and (not benchmark or r.benchmark == benchmark)]
    return sorted(stored + mine, key=lambda r: r.when, reverse=True)
