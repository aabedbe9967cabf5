"""Running a suite: every cell planned (and so checked) before the first model call, then all cells on one event
loop — ``parallel`` cells at once, ``max_concurrent`` requests per cell, ``max_requests`` across the suite, one
HTTP connection pool per endpoint.

Each run has a folder ``$NEARAI_HOME/suites/<name>/<UTC stamp>/``: ``manifest.json`` (the config as given, every
cell resolved, package versions, the config folder's git commit, per-cell status and metrics, the evaluation entry
when recorded), rewritten atomically whenever a cell changes state, and ``cells/<n>.jsonl`` with each finished
cell's per-datum results and the model outputs behind them (what `suite eval` grades again). Resuming is the
cache: running the same config again answers every finished datum from it.

Cells whose solver keeps a run folder per datum (prepared tasks, scenarios) also list each run as the rollouts
orchestrator does, as soon as it ends: ``results[]`` in the manifest (``task_dir``, ``run_id``, ``run_dir``,
``status`` — completed, or error — ``rc``, the cell, model, datum, rollout and score) and ``runs.txt``, one run
folder a line.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evaluation.record import run_details, run_metrics
from registry_cli.apps.suites.config import Cell, SuiteConfig
from registry_cli.core.files import atomic_write_text
from registry_cli.core.provenance import git_commit, package_versions
from registry_cli.core.registry import Registry
from registry_cli.engine.caching.cache import ResultCache, jsonable
from registry_cli.engine.execution.execute import RemoteFn, Shared, execute_async, local_hits
from registry_cli.engine.execution.results import NOT_VERDICTS, Outcome, RunSummary
from registry_cli.engine.inference.usage import estimate_cost
from registry_cli.engine.planning.plan import MAX_ITEMS, Plan, check_size, make_plan
from registry_cli.errors import NearaiError

SCHEMA = "nearai.suite-run/1"
FINAL = ("completed", "failed", "cancelled", "skipped")
PROGRESS_S = 1.0  # how often a running cell's counts reach the manifest


@dataclass
class CellState:
    cell: Cell
    status: str = "pending"  # pending, running, completed, failed, cancelled, skipped
    total: int = 0
    cached: int = 0
    done: int = 0
    passed: int = 0
    errors: int = 0
    cost: float = 0.0
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    evaluation: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.cell.index, "task": self.cell.task, "task_name": self.cell.task_name,
                "label": self.cell.label, "status": self.status, "total": self.total, "cached": self.cached,
                "done": self.done, "passed": self.passed, "errors": self.errors, "cost": round(self.cost, 6),
                "error": self.error, "metrics": self.metrics, "resolved": self.resolved, "evaluation": self.evaluation,
                "started_at": self.started_at, "finished_at": self.finished_at, "duration_s": round(self.duration_s, 3)}


@dataclass
class SuiteEvents:
    """Callbacks for a display. ``outcome`` may come from a worker thread; keep it cheap."""

    begun: Callable[[list[CellState], int], None] = lambda states, parallel: None
    started: Callable[[CellState], None] = lambda state: None
    outcome: Callable[[CellState, Outcome], None] = lambda state, outcome: None
    finished: Callable[[CellState], None] = lambda state: None
    # a run of a cell that keeps run folders, with its results[] entry in the manifest
    run: Callable[[CellState, Outcome, dict[str, Any]], None] = lambda state, outcome, entry: None


@dataclass
class SuiteRun:
    config: SuiteConfig
    folder: Path
    states: list[CellState]
    interrupted: bool = False

    @property
    def status(self) -> str:
        if self.interrupted or any(s.status == "cancelled" for s in self.states):
            return "cancelled"
        if any(s.status == "failed" or s.errors for s in self.states):
            return "failed"
        return "completed"


@dataclass
class DryCell:
    cell: Cell
    datums: int
    items: int
    cached: int
    cost: float | None  # estimated for the uncached items; None when no price is known


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def plan_cells(registry: Registry, config: SuiteConfig, force: bool = False) -> list[Plan]:
    """Every cell's plan; the first invalid cell fails the suite, naming it, before any model call."""
    import dataclasses

    plans = []
    room = MAX_ITEMS  # what the suite's plans may still hold, all of them together
    for cell in config.cells:
        try:
            check_size(1, cell.params.num_repeats)  # before its dataset is even loaded
            plans.append(make_plan(registry, dataclasses.replace(cell.params, force=force), room))
        except NearaiError as e:
            raise type(e)(f"{config.path.name}: cell {cell.index + 1} ({cell.label}): {e.message}", e.hint) from None
        room -= len(plans[-1].items)
    return plans


def dry_run(config: SuiteConfig, force: bool = False) -> list[DryCell]:
    """What a run would do: datums per cell, how many are cached here, and the cost of the rest where known."""
    registry = Registry()
    cache = ResultCache(registry.config.cache_dir / "results", None)
    try:
        out = []
        for cell, plan in zip(config.cells, plan_cells(registry, config, force)):
            hits, todo = local_hits(plan, cache, sync=False)
            out.append(DryCell(cell, len(plan.data.selection.indices), len(plan.items), len(hits), _estimate(plan, hits, len(todo))))
        return out
    finally:
        cache.close()


def _estimate(plan: Plan, hits: dict[tuple[int, int], Outcome], uncached: int) -> float | None:
    """From the cost of this cell's cached datums when there are some, else from the price table and the datums'
    size (a rough guess: 4 characters a token, 256 tokens an answer)."""
    if not uncached:
        return 0.0
    costs = [float(o.usage.get("cost") or 0.0) for o in hits.values()]
    if any(costs):
        return sum(costs) / len(costs) * uncached
    if plan.model is None:
        return None
    rows = list(plan.data.rows.values())
    prompt = sum(len(json.dumps(jsonable(r))) for r in rows) // max(1, len(rows)) // 4 + 50
    per_item = estimate_cost(plan.model.resolved, prompt, plan.model.max_tokens or 256)
    return per_item * uncached if per_item else None


class _Folder:
    """The run folder; the manifest is rewritten whole, atomically, on every change of state, and with the
    cells' counts at most every PROGRESS_S while datums are answered (what `nearai view` shows live)."""

    def __init__(self, home: Path, config: SuiteConfig, options: dict[str, Any]) -> None:
        base = home / "suites" / config.name
        base.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = base / stamp
        n = 1
        while True:
            try:
                self.path.mkdir()
                break
            except FileExistsError:
                n += 1
                self.path = base / f"{stamp}-{n}"
        (self.path / "cells").mkdir()
        self.error: OSError | None = None
        self.runs: dict[tuple[int, int, int], dict[str, Any]] = {}  # (cell, datum, rollout) -> results[] entry
        self.lock = threading.Lock()  # cached outcomes are reported from a worker thread
        self.written = 0.0  # time.monotonic() of the last manifest write
        self.head = {"schema": SCHEMA, "name": config.name, "stamp": self.path.name, "created_at": self.path.name,
                     "config_path": str(config.path),
                     "config_text": config.text, "config": jsonable(config.raw),
                     "git_commit": git_commit(config.path.parent), "packages": package_versions(), "options": options,
                     "started_at": now()}

    def write(self, states: list[CellState], status: str) -> None:
        """Rewrite the manifest. While cells run, a failed write (a full disk) is kept in ``error`` rather than
        raised, so running cells finish and are cached; `check` raises it once they are done."""
        try:
            with self.lock:
                self.written = time.monotonic()
                body = {**self.head, "status": status, "finished_at": now() if status != "running" else "",
                        "cells": [s.as_dict() for s in states], "results": list(self.runs.values())}
                atomic_write_text(self.path / "manifest.json", json.dumps(body, indent=2, sort_keys=True) + "\n")
                if self.runs:
                    atomic_write_text(self.path / "runs.txt", "".join(r["run_dir"] + "\n" for r in self.runs.values()))
        except OSError as e:
            self.error = self.error or e
            if status != "running":
                raise

    def due(self) -> bool:
        """Whether the counts were last written PROGRESS_S ago or more."""
        return time.monotonic() - self.written >= PROGRESS_S

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def add_run(self, state: CellState, plan: Plan, o: Outcome,
                run_path: Callable[[dict[str, Any], int], str]) -> dict[str, Any]:
        """A finished run of a cell that keeps run folders, listed as the rollouts orchestrator lists it."""
        row = plan.data.rows.get(o.index) or {}
        info = o.result.get("info") or {}
        spent = info.get("agent_metrics") or {}
        verdict = o.status not in NOT_VERDICTS
        with self.lock:
            key = (state.cell.index, o.index, o.repeat)
            number = list(self.runs).index(key) if key in self.runs else len(self.runs)
            self.runs[key] = {
                "task_dir": str(row.get("dir") or plan.params.dataset), "run_id": f"{self.path.name}-{number}",
                "run_dir": str((Path(plan.params.results_dir) / run_path(row, o.repeat)).absolute()),
                "status": "completed" if verdict else o.status, "rc": info.get("rc", 0) if verdict else None,
                "cell": state.cell.index + 1, "model": state.resolved.get("model", ""), "datum": o.index,
                "rollout": o.repeat,
                "passed": o.status == "passed", "score": info.get("total_score", float(o.status == "passed"))
                if verdict else None, "tokens": spent.get("tokens_total"), "tool_calls": spent.get("tool_calls_total"),
                "cached": o.cached, "error": o.error or ""}
            return self.runs[key]

    def write_cell(self, index: int, summary: RunSummary) -> None:
        lines = []
        for o in summary.outcomes:
            record = {**o.record(), "cached": o.cached}
            if o.result.get("transcript"):
                record["transcript"] = o.result["transcript"]
            lines.append(json.dumps(record, sort_keys=True))
        atomic_write_text(self.path / "cells" / f"{index:03d}.jsonl", "".join(line + "\n" for line in lines))


def run_suite(config: SuiteConfig, record: bool = False, parallel: int = 0, force: bool = False,
              ray_address: str = "", events: SuiteEvents | None = None) -> SuiteRun:
    """Run every cell; returns when all are final. Ctrl-C cancels what runs, keeps what finished, and still
    leaves a valid manifest (``interrupted``)."""
    return _SuiteRunner(config, record, parallel, force, ray_address, events or SuiteEvents()).run()


class _SuiteRunner:
    """One suite run: its plans, cells' states and run folder, and the event loop that answers the cells."""

    def __init__(self, config: SuiteConfig, record: bool, parallel: int, force: bool, ray_address: str,
                 events: SuiteEvents) -> None:
        self.config, self.record, self.events = config, record, events
        self.registry = Registry()
        self.plans = plan_cells(self.registry, config, force)
        self.remote: RemoteFn | None = None
        if ray_address:
            from registry_cli.engine.execution.distributed import ray_runner

            self.remote = ray_runner(ray_address)
        self.states = [CellState(cell, resolved={**run_details(self.registry, plan), "rollouts": plan.params.num_repeats},
                                 total=len(plan.items)) for cell, plan in zip(config.cells, self.plans)]
        self.width = parallel or config.parallel
        self.folder = _Folder(self.registry.config.home, config, {
            "record": record, "parallel": self.width, "force": force, "max_requests": config.max_requests,
            "ray_address": ray_address})
        self.cache: ResultCache | None = None

    def run(self) -> SuiteRun:
        self.folder.write(self.states, "running")
        self.events.begun(self.states, self.width)
        self.cache = ResultCache(self.registry.config.cache_dir / "results", self.registry.store)
        run = SuiteRun(self.config, self.folder.path, self.states)
        try:
            asyncio.run(self._main())
        except (KeyboardInterrupt, asyncio.CancelledError):
            run.interrupted = True
        finally:
            for s in self.states:
                if s.status in ("pending", "running"):
                    s.status = "cancelled"
            self.cache.close()
            self.folder.write(self.states, run.status)
        self.folder.check()
        return run

    async def _main(self) -> None:
        gate = asyncio.Semaphore(self.width)
        limiter = asyncio.Semaphore(self.config.max_requests) if self.config.max_requests else None
        connections = self.config.max_requests or sum(p.params.max_concurrent for p in self.plans)
        shared = Shared(limiter, max(1, connections))
        tasks = [asyncio.ensure_future(self._one(s, p, gate, shared)) for s, p in zip(self.states, self.plans)]
        try:
            await asyncio.gather(*tasks)
        finally:  # one failing (a full disk) or Ctrl-C: the others are cancelled and awaited, never left behind
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await shared.close()

    async def _one(self, state: CellState, plan: Plan, gate: asyncio.Semaphore, shared: Shared) -> None:
        await gate.acquire()
        held = True
        if self.folder.error is not None:  # the run folder cannot be written: start nothing more
            gate.release()
            return

        def make_room() -> None:  # the cell's last datums are in flight: the next cell may start
            nonlocal held
            if held:
                held = False
                gate.release()

        try:
            await self._cell(state, plan, shared, make_room)
        finally:
            make_room()

    async def _cell(self, state: CellState, plan: Plan, shared: Shared, make_room: Callable[[], None]) -> None:
        """One cell, start to finish; ``make_room`` lets the next cell start once this one's datums are all under way."""
        state.status, state.started_at = "running", now()
        self.folder.write(self.states, "running")
        self.events.started(state)

        run_path = getattr(plan.solver_instance, "run_path", None)

        def on_outcome(o: Outcome) -> None:
            state.done += 1
            state.cached += o.cached
            state.passed += o.status == "passed"
            state.errors += o.status in NOT_VERDICTS
            state.cost += float(o.usage.get("cost") or 0.0)
            self.events.outcome(state, o)
            if callable(run_path):
                entry = self.folder.add_run(state, plan, o, run_path)
                self.folder.write(self.states, "running")
                self.events.run(state, o, entry)
            elif self.folder.due():
                self.folder.write(self.states, "running")

        assert self.cache is not None
        try:
            summary = await execute_async(plan, self.cache, shared, None, on_outcome, self.remote, make_room)
        except asyncio.CancelledError:
            state.status = "cancelled"
            raise
        except NearaiError as e:
            state.status, state.error = "failed", str(e)
        except Exception as e:  # one broken cell must not sink the others
            state.status, state.error = "failed", f"{type(e).__name__}: {e}"[:500]
        else:
            await self._finish(state, plan, summary)
        finally:
            state.finished_at = now()
            self.folder.write(self.states, "running")
            self.events.finished(state)

    async def _finish(self, state: CellState, plan: Plan, summary: RunSummary) -> None:
        state.metrics = run_metrics(summary)
        state.duration_s = summary.duration_s
        all_errored = bool(summary.total) and summary.unanswered == summary.total
        state.status = "failed" if all_errored else "completed"
        if all_errored:
            state.error = next((o.error for o in summary.outcomes if o.error), "every datum errored")
        await asyncio.to_thread(self.folder.write_cell, state.cell.index, summary)
        await asyncio.to_thread(_log_and_record, self.registry, plan, summary, state, self.record and not all_errored)


def _log_and_record(registry: Registry, plan: Plan, summary: RunSummary, state: CellState, record: bool) -> None:
    from evaluation.record import record_evaluation, summary_details
    from evaluation.runs import log_run

    entry = ""
    if record:
        try:
            entry = record_evaluation(registry, plan, summary).entry
            state.evaluation = entry
        except NearaiError as e:
            state.error = f"not recorded: {e}"
    log_run(registry, summary_details(registry, plan, summary), entry)
