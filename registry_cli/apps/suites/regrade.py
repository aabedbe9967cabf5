"""`suite eval`: grade a finished run again with the solvers as they are now, from the model outputs the run
stored per datum, without calling any model.

Each datum is solved again by the current solver against a `Replay` of its stored outputs: a solver whose judging
changed gets new verdicts; one whose prompts changed finds questions the run never asked, and those datums are
reported as needing the model. Agents run again in the sandbox, answered from the same outputs. A solver that
keeps what it graded (prepared tasks: the agent's diff) grades that again with its ``regrade`` hook, in a fresh
container, without running the agent, and rewrites the run's folder. The result is kept in the run folder as
``regrade-<stamp>.json``; the cache is left as it was.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from registry_cli.apps.suites.config import parse_suite
from registry_cli.apps.suites.run import plan_cells
from registry_cli.apps.suites.summary import datum_score, read_cell_results, read_manifest
from registry_cli.core.files import atomic_write_text
from registry_cli.core.registry import Registry
from registry_cli.engine.execution.datum import Work, solve_one
from registry_cli.engine.execution.results import ERROR, PASSED
from registry_cli.engine.inference.transcript import Replay
from registry_cli.engine.planning.plan import Plan
from registry_cli.errors import NearaiError, UsageError


@dataclass
class CellRegrade:
    cell: int
    label: str
    solver_version_then: str
    solver_version_now: str
    n: int = 0
    score_then: float = 0.0
    score_now: float = 0.0
    changed: int = 0  # datums whose verdict changed
    need_model: int = 0  # datums the stored outputs cannot answer
    errored: int = 0  # datums that could not be graded again (a container failed, nothing was stored)
    skipped: str = ""  # why the cell was not graded again


@dataclass
class Regrade:
    folder: Path
    cells: list[CellRegrade] = field(default_factory=list)
    written: Path | None = None


def regrade(registry: Registry, folder: Path, max_concurrent: int = 16) -> Regrade:
    manifest = read_manifest(folder)
    config = parse_suite(Path(str(manifest.get("config_path") or "suite.toml")), str(manifest.get("config_text", "")))
    if len(config.cells) != len(manifest.get("cells") or []):
        raise UsageError(f"{folder}: the stored config no longer expands to the run's cells")
    plans = plan_cells(registry, config)
    out = Regrade(folder)
    for cell, plan, state in zip(config.cells, plans, manifest["cells"]):
        result = CellRegrade(cell.index + 1, cell.label, str((state.get("resolved") or {}).get("solver_version", "")),
                             plan.solver.version)
        rows = read_cell_results(folder, cell.index)
        runs = {(int(r.get("datum", 0)), int(r.get("rollout", 0))): str(r.get("run_dir", ""))
                for r in manifest.get("results") or [] if r.get("cell") == cell.index + 1}
        if state.get("status") != "completed" or not rows:
            result.skipped = f"the cell is {state.get('status')}"
        elif callable(getattr(plan.solver_instance, "regrade", None)):
            asyncio.run(_regrade_kept(plan, rows, result, runs, min(max_concurrent, 4)))
        else:
            asyncio.run(_regrade_cell(plan, rows, result, max_concurrent))
        out.cells.append(result)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    out.written = folder / f"regrade-{stamp}.json"
    atomic_write_text(out.written, json.dumps({"run": manifest.get("stamp"), "graded_at": stamp,
                                               "cells": [vars(c) for c in out.cells]}, indent=2) + "\n")
    return out


async def _regrade_cell(plan: Plan, rows: list[dict[str, Any]], result: CellRegrade, max_concurrent: int) -> None:
    stored = {(int(r["index"]), int(r.get("repeat", 0))): r for r in rows}
    work = Work.of(plan)
    gate = asyncio.Semaphore(max_concurrent)
    passed_then = passed_now = 0

    async def one(index: int, repeat: int) -> None:
        nonlocal passed_then, passed_now
        old = stored.get((index, repeat))
        if old is None:
            result.need_model += 1
            return
        passed_then += old.get("status") == PASSED
        if not old.get("transcript") or plan.model is None:
            result.need_model += 1
            return
        async with gate:
            status, _, error = await solve_one(plan.data.rows[index], Replay(plan.model, old["transcript"]), work, repeat)
        if status == ERROR and "needs the model" in error:
            result.need_model += 1
        passed_now += status == PASSED
        result.changed += (status == PASSED) != (old.get("status") == PASSED)

    await asyncio.gather(*(one(item.index, item.repeat) for item in plan.items))
    result.n = len(plan.items)
    result.score_then = passed_then / result.n if result.n else 0.0
    result.score_now = passed_now / result.n if result.n else 0.0


async def _regrade_kept(plan: Plan, rows: list[dict[str, Any]], result: CellRegrade,
                        run_dirs: dict[tuple[int, int], str], max_concurrent: int) -> None:
    """Grade what each run kept again with the solver's ``regrade`` hook (``run_dirs``: (datum, rollout) -> the
    run's folder, from the manifest's results[])."""
    gate = asyncio.Semaphore(max_concurrent)
    hook = plan.solver_instance.regrade
    then: list[float] = []
    now: list[float] = []

    async def one(row: dict[str, Any]) -> None:
        index, repeat = int(row["index"]), int(row.get("repeat", 0))
        then.append(datum_score(row))
        if row.get("status") not in (PASSED, "failed") or index not in plan.data.rows:
            result.errored += 1
            now.append(0.0)
            return
        where = run_dirs.get((index, repeat), "")
        folder = Path(where) if where and Path(where).is_dir() else None
        try:
            async with gate:
                graded = await hook(plan.data.rows[index], row, folder)
        except NearaiError:
            result.errored += 1
            now.append(0.0)
            return
        score = datum_score({"status": PASSED if graded.passed else "failed", "metrics": graded.metrics})
        now.append(score)
        result.changed += score != datum_score(row)

    await asyncio.gather(*(one(r) for r in rows))
    result.n = len(rows)
    result.score_then = sum(then) / len(then) if then else 0.0
    result.score_now = sum(now) / len(now) if now else 0.0
