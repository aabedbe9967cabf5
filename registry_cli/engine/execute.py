"""Executing a plan: pose every planned (datum, repeat) to the model or agent through the solver.

One asyncio event loop with ``max_concurrent`` workers (no thread per request). Cached verdicts are read locally
first, then from the store, and only the rest is computed. A verdict is written to the cache as soon as it exists,
so an interruption loses only the datums in flight. Errors (timeouts, provider failures, agent crashes) are
reported but never cached, and a cache that cannot be written is counted, never fatal.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.engine.agents import Agent, AgentFailure, run_agent
from registry_cli.engine.cache import ResultCache
from registry_cli.engine.inference import Inference, InferenceFailure, ModelSpec, Usage, check_routable, redact
from registry_cli.engine.metrics import compute_metrics
from registry_cli.engine.plan import Item, Plan
from registry_cli.engine.relay import Relay
from registry_cli.engine.results import ERROR, FAILED, PASSED, CacheStats, Outcome, RunSummary
from registry_cli.engine.sandbox import Sandbox
from registry_cli.errors import NearaiError

OutcomeFn = Callable[[Outcome], None]
StartFn = Callable[[int, int], None]
# runs items elsewhere (e.g. on Ray) and yields their outcomes: (rows, items, work) -> outcomes
RemoteFn = Callable[[dict[int, dict[str, Any]], list[Item], "Work"], Iterable[Outcome]]


@dataclass
class Work:
    """What a worker needs to answer items; picklable, so Ray workers receive it whole."""

    solver: Any
    model: ModelSpec | None
    agent: Agent | None
    sandbox: Sandbox
    timeout: float
    max_concurrent: int
    force: bool
    results_dir: str
    completions_dir: str  # where the model relay caches completions ("" for none)

    @classmethod
    def of(cls, plan: Plan, completions_dir: str = "") -> Work:
        p = plan.params
        return cls(plan.solver_instance, plan.model, plan.agent, plan.sandbox, p.timeout, p.max_concurrent, p.force,
                   p.results_dir, completions_dir)


class DatumSession:
    """The Session given to ``solve``: one per datum, with a private working folder and usage accounting."""

    def __init__(self, inference: Inference | None, work: Work, repeat: int = 0) -> None:
        self._inference, self._work = inference, work
        self.repeat = repeat
        self.usage = Usage()
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="nearai-datum-")
        return self._path

    @property
    def sandbox(self) -> Sandbox:
        return self._work.sandbox

    @property
    def timeout(self) -> float:
        return self._work.timeout

    @property
    def results_dir(self) -> Path:
        return Path(self._work.results_dir)

    def relay(self) -> Relay:
        """A key-less OpenAI-compatible endpoint for sandboxed code, billed to this datum."""
        w = self._work
        return Relay(self._inference, self.usage, tcp=w.sandbox.kind == "native", cache_dir=w.completions_dir,
                     repeat=self.repeat, force=w.force)

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        if self._inference is None:
            raise InferenceFailure("this run has no --model")
        return await self._inference.complete(messages, self.usage)

    async def run_task(self, task: str) -> str:
        w = self._work
        if w.agent is not None:
            return await run_agent(w.agent, task, w.model.resolved if w.model else "", self._inference, self.usage,
                                   Path(self.path), w.timeout, w.sandbox)
        return await self.complete([{"role": "user", "content": task}])

    def cleanup(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def _verdict(raw: Any) -> tuple[bool, dict[str, Any], dict[str, float]]:
    from solvers import normalize

    v = normalize(raw)
    return bool(v.passed), v.info, v.metrics


async def solve_one(row: dict[str, Any], inference: Inference | None, work: Work,
                    repeat: int = 0) -> tuple[str, dict[str, Any], str]:
    """(status, result, error) for one datum; never raises for per-datum failures."""
    session = DatumSession(inference, work, repeat)
    t0 = time.perf_counter()
    solver = work.solver
    try:
        if inspect.iscoroutinefunction(solver.solve):
            raw = await solver.solve(row, session)
        else:
            raw = await asyncio.to_thread(solver.solve, row, session)
            if inspect.isawaitable(raw):
                raw = await raw
        passed, info, metrics = _verdict(raw)
    except (InferenceFailure, AgentFailure, NearaiError) as e:
        return ERROR, {"usage": session.usage.as_dict()}, redact(str(e))
    except Exception as e:  # a solver bug on one datum must not sink the run
        return ERROR, {"usage": session.usage.as_dict()}, redact(f"{type(e).__name__}: {e}")[:500]
    finally:
        session.cleanup()
    result = {"passed": passed, "info": info, "metrics": metrics, "usage": session.usage.as_dict(),
              "duration_s": round(time.perf_counter() - t0, 4)}
    return (PASSED if passed else FAILED), result, ""


def _cached(item: Item, hit: dict[str, Any]) -> Outcome:
    return Outcome(item.index, item.repeat, item.key, item.datum_hash, PASSED if hit.get("passed") else FAILED, True, hit)


async def execute_items(items: Iterable[Item], rows: dict[int, dict[str, Any]], work: Work, cache: ResultCache,
                        stats: CacheStats, on_outcome: OutcomeFn) -> None:
    """Answer ``items`` (remote cache first unless forced), reporting each outcome as it exists."""
    queue: asyncio.Queue[Item] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    inference = Inference(work.model, work.max_concurrent) if work.model else None

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            hit = None if work.force else await asyncio.to_thread(cache.get_remote, item.key)
            if hit is not None:
                on_outcome(_cached(item, hit))
                continue
            status, result, error = await solve_one(rows[item.index], inference, work, item.repeat)
            if status != ERROR:
                kept, shared, problem = await asyncio.to_thread(
                    cache.put, item.key, {**result, "datum_hash": item.datum_hash, "repeat": item.repeat})
                stats.not_cached += not kept
                stats.not_shared += kept and not shared
                stats.last_error = problem or stats.last_error
            on_outcome(Outcome(item.index, item.repeat, item.key, item.datum_hash, status, False, result, error))

    async def main() -> None:
        workers = [asyncio.create_task(worker()) for _ in range(min(work.max_concurrent, queue.qsize()))]
        await asyncio.gather(*workers)

    if inference is not None:
        async with inference:
            await main()
    else:
        await main()


def execute(plan: Plan, cache: ResultCache, on_start: StartFn | None = None, on_outcome: OutcomeFn | None = None,
            remote: RemoteFn | None = None) -> RunSummary:
    """Run the plan; ``on_start(total, cached)`` and ``on_outcome`` feed a progress display. With ``remote``,
    the uncached items are answered there instead of on this machine's event loop."""
    started = time.perf_counter()
    outcomes: dict[tuple[int, int], Outcome] = {}
    stats = CacheStats()

    def report(o: Outcome) -> None:
        outcomes[(o.index, o.repeat)] = o
        if on_outcome:
            on_outcome(o)

    todo: list[Item] = []
    for item in plan.items:
        hit = None if plan.params.force else cache.get_local(item.key)
        if hit is not None:
            outcomes[(item.index, item.repeat)] = _cached(item, hit)
        else:
            todo.append(item)
    if todo and plan.model is not None:
        check_routable(plan.model)
    if on_start:
        on_start(len(plan.items), len(outcomes))
    if on_outcome:
        for o in list(outcomes.values()):
            on_outcome(o)
    work = Work.of(plan, str(cache.directory.parent / "completions"))
    if todo and remote is not None:
        for o in remote(plan.data.rows, todo, work):
            report(o)
    elif todo:
        asyncio.run(execute_items(todo, plan.data.rows, work, cache, stats, report))
    ordered = [outcomes[(i.index, i.repeat)] for i in plan.items if (i.index, i.repeat) in outcomes]
    custom = plan.solver_instance.aggregate([o.result for o in ordered if o.status != ERROR])
    metrics = compute_metrics(ordered, plan.params.num_repeats, custom)
    return RunSummary(ordered, time.perf_counter() - started, metrics, stats)
