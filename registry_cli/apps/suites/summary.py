"""Reading suite runs back: `suite list`, `suite summarize` and the paired comparison of cells.

Per cell: n, score with its 95% interval, pass@k where there are rollouts, tokens, cost and time. Per task: the
score of each rollout, their mean and max. For two cells of one task (the same datums, another model or agent):
the paired difference of their per-datum scores with a 95% interval — the honest way to say one model beats
another on the same items, as the items' own difficulty cancels out.
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


def per_datum_scores(rows: list[dict[str, Any]]) -> dict[int, float]:
    """Each datum's mean score over its rollouts (an errored answer counts as not passed)."""
    sums: dict[int, list[int]] = {}
    for r in rows:
        sums.setdefault(int(r["index"]), []).append(1 if r.get("status") == "passed" else 0)
    return {i: sum(v) / len(v) for i, v in sums.items()}


def rollout_scores(rows: list[dict[str, Any]]) -> list[float]:
    by_repeat: dict[int, list[int]] = {}
    for r in rows:
        by_repeat.setdefault(int(r.get("repeat", 0)), []).append(1 if r.get("status") == "passed" else 0)
    return [sum(v) / len(v) for _, v in sorted(by_repeat.items()) if v]


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict[str, float] | None:
    """Mean of a - b over the datums both answered, with a normal-approximation 95% interval."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    diffs = [a[i] - b[i] for i in common]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return {"n": n, "diff": mean, "ci95_low": mean - half, "ci95_high": mean + half}


def summarize(folder: Path) -> SuiteSummary:
    m = read_manifest(folder)
    out = SuiteSummary(str(m.get("name")), str(m.get("stamp")), str(m.get("status")))
    scores: dict[int, dict[int, float]] = {}
    by_task: dict[int, list[dict[str, Any]]] = {}
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
    for _, rows_of_task in sorted(by_task.items()):
        for row in rows_of_task:
            rollouts = row.pop("rollouts")
            out.tasks.append({"task": row["task"], "cell": row["cell"], "model": row["model"], "agent": row["agent"],
                              "rollouts": len(rollouts), "mean": sum(rollouts) / len(rollouts), "max": max(rollouts),
                              "per_rollout": [round(x, 4) for x in rollouts]})
        for i, a in enumerate(rows_of_task):
            for b in rows_of_task[i + 1:]:
                diff = paired_difference(scores[a["cell"]], scores[b["cell"]])
                if diff is not None:
                    out.pairs.append({"task": a["task"], "a": _who(a), "b": _who(b), **diff})
    for row in out.cells:
        row.pop("rollouts", None)
    return out


def _who(row: dict[str, Any]) -> str:
    return " + ".join(x for x in (row.get("agent"), row.get("model")) if x) or f"cell {row['cell']}"
