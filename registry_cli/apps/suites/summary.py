"""Reading suite runs back: `suite list`, `suite summarize` and the paired comparison of cells.

Per cell: n, score with its 95% interval, pass@k where there are rollouts, tokens, cost and time. Per task: the
score of each rollout, their mean (with a 95% interval across rollouts) and max. Per run, for cells that keep a
folder per run (prepared tasks, scenarios): its status, score, tokens and tool calls, as the orchestrator's table.
For two cells of one task (the same datums, another model or agent): the paired difference of their per-datum
scores with a 95% interval — the honest way to say one model beats another on the same items, as the items' own
difficulty cancels out. Per model (or agent): its mean over every task it ran, and the paired difference with each
other model over the tasks and datums both ran (prepared tasks are one datum each: this is where two models meet on
them).

A datum's score is its graded ``total_score`` where the solver gives one (prepared tasks: the rubric total), else
1 when it passed and 0 when not; an errored answer scores 0 and is counted apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.apps.suites.run import SCHEMA
from registry_cli.errors import UsageError


@dataclass(frozen=True)
class RunInfo:
    name: str
    stamp: str
    status: str
    cells: int
    completed: int
    started_at: str
    folder: Path


@dataclass
class SuiteSummary:
    name: str
    stamp: str
    status: str
    cells: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # cells that keep a folder per run: one row each
    models: list[dict[str, Any]] = field(default_factory=list)
    model_pairs: list[dict[str, Any]] = field(default_factory=list)


def suites_dir(home: Path) -> Path:
    return home / "suites"


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"no readable manifest in {folder}: {e}", "pick another run with `nearai suite list`") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{folder}/manifest.json is not a suite run manifest")
    return data


def list_runs(home: Path, name: str = "") -> list[RunInfo]:
    root = suites_dir(home)
    names = [name] if name else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    runs = []
    for n in names:
        for folder in sorted((root / n).iterdir()) if (root / n).is_dir() else []:
            try:
                m = read_manifest(folder)
            except UsageError:
                continue
            cells = m.get("cells") or []
            runs.append(RunInfo(n, folder.name, str(m.get("status")), len(cells),
                                sum(1 for c in cells if c.get("status") == "completed"), str(m.get("started_at", "")),
                                folder))
    return runs


def find_run(home: Path, name: str, stamp: str = "") -> Path:
    """The run folder: ``stamp``, else the latest run of ``name``."""
    runs = list_runs(home, name)
    if not runs:
        raise UsageError(f"no runs of suite {name!r} in {suites_dir(home)}", "run one with `nearai suite run CONFIG.toml`")
    if not stamp:
        return max(runs, key=lambda r: (r.started_at, r.stamp)).folder
    for r in runs:
        if r.stamp == stamp:
            return r.folder
    raise UsageError(f"suite {name!r} has no run {stamp!r}", f"its runs: {', '.join(r.stamp for r in runs[-5:])}")


def read_cell_results(folder: Path, index: int) -> list[dict[str, Any]]:
    path = folder / "cells" / f"{index:03d}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def datum_score(row: dict[str, Any]) -> float:
    """One answer's score: its graded ``total_score`` when it has one, else passed (1) or not (0)."""
    graded = (row.get("metrics") or {}).get("total_score")
    if row.get("status") in ("passed", "failed") and isinstance(graded, (int, float)):
        return float(graded)
    return 1.0 if row.get("status") == "passed" else 0.0


def per_datum_scores(rows: list[dict[str, Any]]) -> dict[int, float]:
    """Each datum's mean score over its rollouts (an errored answer scores 0)."""
    sums: dict[int, list[float]] = {}
    for r in rows:
        sums.setdefault(int(r["index"]), []).append(datum_score(r))
    return {i: sum(v) / len(v) for i, v in sums.items()}


def rollout_scores(rows: list[dict[str, Any]]) -> list[float]:
    by_repeat: dict[int, list[float]] = {}
    for r in rows:
        by_repeat.setdefault(int(r.get("repeat", 0)), []).append(datum_score(r))
    return [sum(v) / len(v) for _, v in sorted(by_repeat.items()) if v]


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean with a normal-approximation 95% interval (no width for one value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_difference(a: dict[Any, float], b: dict[Any, float]) -> dict[str, float] | None:
    """Mean of a - b over the datums both answered, with a normal-approximation 95% interval."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    mean, low, high = mean_interval([a[i] - b[i] for i in common])
    return {"n": len(common), "diff": mean, "ci95_low": low, "ci95_high": high}


def summarize(folder: Path) -> SuiteSummary:
    m = read_manifest(folder)
    out = SuiteSummary(str(m.get("name")), str(m.get("stamp")), str(m.get("status")))
    scores: dict[int, dict[int, float]] = {}
    by_task: dict[int, list[dict[str, Any]]] = {}
    by_who: dict[str, dict[tuple[str, int], float]] = {}  # model or agent -> (task, datum) -> mean score
    for c in m.get("cells") or []:
        metrics = c.get("metrics") or {}
        r = c.get("resolved") or {}
        rows = read_cell_results(folder, int(c["index"]))
        row = {"cell": int(c["index"]) + 1, "task": c.get("task_name"), "model": r.get("model", ""),
               "agent": r.get("agent", ""), "status": c.get("status"), "n": metrics.get("n", 0),
               "score": metrics.get("score"), "ci95_low": metrics.get("ci95_low"), "ci95_high": metrics.get("ci95_high"),
               **{k: v for k, v in metrics.items() if k.startswith("pass@")},
               "errored": metrics.get("errored", 0), "prompt_tokens": metrics.get("prompt_tokens", 0),
               "completion_tokens": metrics.get("completion_tokens", 0), "cost": metrics.get("cost", 0.0),
               "duration_s": c.get("duration_s", 0.0)}
        out.cells.append(row)
        if rows:
            scores[row["cell"]] = per_datum_scores(rows)
            rollouts = rollout_scores(rows)
            by_task.setdefault(int(c["task"]), []).append(row)
            row["rollouts"] = rollouts
            mine = by_who.setdefault(_who(row), {})
            mine.update({(str(row["task"]), i): v for i, v in scores[row["cell"]].items()})
    for _, rows_of_task in sorted(by_task.items()):
        for row in rows_of_task:
            rollouts = row.pop("rollouts")
            mean, low, high = mean_interval(rollouts)
            out.tasks.append({"task": row["task"], "cell": row["cell"], "model": row["model"], "agent": row["agent"],
                              "rollouts": len(rollouts), "mean": mean, "ci95_low": low, "ci95_high": high,
                              "max": max(rollouts), **{k: v for k, v in row.items() if k.startswith("pass@")},
                              "per_rollout": [round(x, 4) for x in rollouts]})
        for i, a in enumerate(rows_of_task):
            for b in rows_of_task[i + 1:]:
                diff = paired_difference(scores[a["cell"]], scores[b["cell"]])
                if diff is not None and diff["n"] > 1:  # one datum each: see the per-model differences instead
                    out.pairs.append({"task": a["task"], "a": _who(a), "b": _who(b), **diff})
    for row in out.cells:
        row.pop("rollouts", None)
    out.runs = [{"run": r.get("run_id"), "task": Path(str(r.get("task_dir", ""))).name, "model": r.get("model"),
                 "rollout": r.get("rollout"), "status": r.get("status"), "score": r.get("score"),
                 "tokens": r.get("tokens"), "tool_calls": r.get("tool_calls"), "run_dir": r.get("run_dir")}
                for r in m.get("results") or []]
    _per_model(out, by_who)
    return out


def _per_model(out: SuiteSummary, by_who: dict[str, dict[tuple[str, int], float]]) -> None:
    """Each model's mean over its tasks' datums, and paired differences over what two models both ran."""
    if len(by_who) < 2:
        return
    for who, items in by_who.items():
        mean, low, high = mean_interval(list(items.values()))
        out.models.append({"who": who, "tasks": len({t for t, _ in items}), "n": len(items), "mean": mean,
                           "ci95_low": low, "ci95_high": high})
    names = list(by_who)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = paired_difference(by_who[a], by_who[b])
            if diff is not None:
                shared = {t for t, _ in set(by_who[a]) & set(by_who[b])}
                out.model_pairs.append({"a": a, "b": b, "tasks": len(shared), **diff})


def _who(row: dict[str, Any]) -> str:
    return " + ".join(x for x in (row.get("agent"), row.get("model")) if x) or f"cell {row['cell']}"
