"""Executing a plan: pose every planned (datum, repeat) to the model or agent through the solver.

One asyncio event loop with ``max_concurrent`` workers (no thread per request). Cached verdicts are read locally
first, then from the store, and only the rest is computed. A verdict is written to the cache as soon as it exists,
so an interruption loses only the datums in flight. Errors (timeouts, provider failures, agent crashes) are
reported but never cached, and a cache that cannot be written is counted, never fatal.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.caches.bulk import collector_paused
from registry_cli.engine.caching.cache import CacheWriter, ResultCache
from registry_cli.engine.execution.blocking import CURRENT
from registry_cli.engine.execution.metrics import compute_metrics
from registry_cli.engine.execution.results import EMPTY, ERROR, FAILED, NOT_VERDICTS, PASSED, CacheStats, Outcome, RunSummary
from registry_cli.engine.inference.client import Inference, ModelSpec, check_reachable, check_routable, choose_backend, open_session
from registry_cli.engine.inference.credentials import redact
from registry_cli.engine.inference.transcript import Completer, Recording
from registry_cli.engine.inference.usage import Usage
from registry_cli.engine.isolation.agents import Agent, AgentTrace, run_agent
from registry_cli.engine.isolation.relay import Relay
from registry_cli.engine.isolation.sandbox import Sandbox
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.engine.planning.plan import Item, Plan
from registry_cli.errors import AgentFailure, EmptyAnswer, InferenceFailure, NearaiError

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
    cache_group: str = ""  # names the result packs written to the store
    relay_caps: tuple[int, int] = (0, 0)  # calls and tokens a datum's sandboxed code may spend (0: no cap)
    completer: Completer | None = None  # a model client the caller gives (embedders, tests): used instead of one
    # opened for ``model``; not sent to Ray workers

    @classmethod
    def of(cls, plan: Plan, completions_dir: str = "") -> Work:
        p = plan.params
        return cls(plan.solver_instance, plan.model, plan.agent, plan.sandbox, p.timeout, p.max_concurrent, p.force,
                   p.results_dir, completions_dir, plan.cache_group, (p.relay_max_calls, p.relay_max_tokens))


class DatumSession:
    """The Session given to ``solve``: one per datum, with a private working folder and usage accounting."""

    def __init__(self, inference: Completer | None, work: Work, repeat: int = 0) -> None:
        self._recording = Recording(inference) if inference is not None else None
        self._inference: Completer | None = self._recording
        self._work = work
        self.repeat = repeat
        self.usage = Usage()
        self.agent_runs: list[AgentTrace] = []
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="datum-", dir=scratch_root())
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
                     repeat=self.repeat, force=w.force, caps=w.relay_caps)

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        if self._inference is None:
            raise InferenceFailure("this run has no --model")
        return await self._inference.complete(messages, self.usage)

    async def run_task(self, task: str) -> str:
        w = self._work
        if w.agent is not None:
            trace = AgentTrace()
            self.agent_runs.append(trace)
            return await run_agent(w.agent, task, w.model.resolved if w.model else "", self._inference, self.usage,
                                   Path(self.path), w.timeout, w.sandbox, trace)
        return await self.complete([{"role": "user", "content": task}])

    def extras(self) -> dict[str, Any]:
        """What the result keeps besides the verdict: usage, and each agent run's trace."""
        extra: dict[str, Any] = {"usage": self.usage.as_dict()}
        if self.agent_runs:
            extra["agent"] = [t.as_dict() for t in self.agent_runs]
        if self._recording is not None and self._recording.calls:
            extra["transcript"] = self._recording.calls
        return extra

    def cleanup(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def _verdict(raw: Any) -> tuple[bool, dict[str, Any], dict[str, float]]:
    from registry_cli.engine.solver_api import normalize

    v = normalize(raw)
    return bool(v.passed), v.info, v.metrics


_STYLE: dict[type[Any], bool] = {}


def _takes_session(solver: Any) -> bool:
    cls = type(solver)
    if cls not in _STYLE:
        from registry_cli.engine.solver_api import takes_session

        _STYLE[cls] = takes_session(solver.solve)
    return _STYLE[cls]


async def _in_thread(pool: Executor | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a worker thread with this task's context (so a blocking session finds its datum)."""
    if pool is None:
        return await asyncio.to_thread(fn, *args)
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(context.run, fn, *args))


async def _call_solve(solver: Any, row: dict[str, Any], session: DatumSession, pool: Executor | None) -> Any:
    if not _takes_session(solver):  # nearai's documented style: solve(datum) with start_inference_session()
        token = CURRENT.set((session, asyncio.get_running_loop()))
        try:
            if inspect.iscoroutinefunction(solver.solve):
                return await solver.solve(row)
            return await _in_thread(pool, solver.solve, row)
        finally:
            CURRENT.reset(token)
    if inspect.iscoroutinefunction(solver.solve):
        return await solver.solve(row, session)
    raw = await _in_thread(pool, solver.solve, row, session)
    return await raw if inspect.isawaitable(raw) else raw


def solver_threads(work: Work) -> Executor | None:
    """Threads for a synchronous ``solve``, one per datum in flight (asyncio's default pool has only a few)."""
    if inspect.iscoroutinefunction(work.solver.solve):
        return None
    return ThreadPoolExecutor(max_workers=max(1, work.max_concurrent), thread_name_prefix="nearai-solve")


async def solve_one(row: dict[str, Any], inference: Completer | None, work: Work,
                    repeat: int = 0, pool: Executor | None = None) -> tuple[str, dict[str, Any], str]:
    """(status, result, error) for one datum; never raises for per-datum failures. ``pool`` runs a synchronous
    ``solve`` (default: asyncio's own threads). A model call that ended in an empty answer makes the datum
    ``empty`` whatever the solver made of it (it may have graded the error text an agent or scenario received)."""
    session = DatumSession(inference, work, repeat)
    t0 = time.perf_counter()
    try:
        passed, info, metrics = _verdict(await _call_solve(work.solver, row, session, pool))
    except (InferenceFailure, AgentFailure, NearaiError) as e:
        return _unanswered(session, e), session.extras(), redact(str(e))
    except Exception as e:  # a solver bug on one datum must not sink the run
        return _unanswered(session, e), session.extras(), redact(f"{type(e).__name__}: {e}")[:500]
    finally:
        session.cleanup()
    if session.usage.capped:
        return ERROR, session.extras(), f"the sandboxed code ran into the relay's cap of {session.usage.capped}"
    if session.usage.empty:
        return EMPTY, session.extras(), f"the model answered {session.usage.empty} call(s) with nothing, every retry"
    result = {"passed": passed, "info": info, "metrics": metrics, **session.extras(),
              "duration_s": round(time.perf_counter() - t0, 4)}
    return (PASSED if passed else FAILED), result, ""


def _unanswered(session: DatumSession, e: Exception) -> str:
    if session.usage.capped:
        return ERROR
    return EMPTY if isinstance(e, EmptyAnswer) or session.usage.empty else ERROR


def _cached(item: Item, hit: dict[str, Any]) -> Outcome:
    if hit.get("key") == item.key:  # the plan's copies of the two hashes: one string each in memory, not two
        hit["key"], hit["datum_hash"] = item.key, item.datum_hash
    return Outcome(item.index, item.repeat, item.key, item.datum_hash, PASSED if hit.get("passed") else FAILED, True, hit)


@dataclass
class Shared:
    """What the cells of a suite share on one event loop: one HTTP session per endpoint, a cap on requests, and
    the answers given or in flight by cache key (two cells needing the same answer ask once, whichever runs first)."""

    limiter: asyncio.Semaphore | None = None
    max_connections: int = 256
    sessions: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, asyncio.Future[tuple[str, dict[str, Any], str]]] = field(default_factory=dict)

    def inference(self, spec: ModelSpec, max_concurrent: int) -> Inference:
        session = None
        if choose_backend(spec) == "openai":
            if spec.api_base not in self.sessions:
                self.sessions[spec.api_base] = open_session(spec.api_base, self.max_connections)
            session = self.sessions[spec.api_base]
        return Inference(spec, max_concurrent, session, self.limiter)

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()
        self.sessions.clear()


async def execute_items(items: Iterable[Item], rows: dict[int, dict[str, Any]], work: Work, cache: ResultCache,
                        stats: CacheStats, on_outcome: OutcomeFn, shared: Shared | None = None,
                        on_drained: Callable[[], None] | None = None) -> None:
    """Answer ``items``, reporting each outcome as it exists. ``on_drained`` is called once every item has been
    started (only the last ones are in flight): a suite starts its next cell then, keeping the endpoint busy."""
    queue: asyncio.Queue[Item] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    inference: Completer | None = work.completer
    opened: Inference | None = None
    if inference is None and work.model is not None:
        opened = shared.inference(work.model, work.max_concurrent) if shared else Inference(work.model, work.max_concurrent)
        inference = opened
    writer = CacheWriter(cache, stats, work.cache_group)
    pool = solver_threads(work)

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if on_drained is not None and queue.empty():
                on_drained()
            if shared is not None and item.key in shared.answers:  # another cell answers (or answered) this key
                status, result, error = await asyncio.shield(shared.answers[item.key])
                if status not in NOT_VERDICTS:
                    on_outcome(Outcome(item.index, item.repeat, item.key, item.datum_hash, status, True, result))
                    continue
            status, result, error = await answer(item)
            on_outcome(Outcome(item.index, item.repeat, item.key, item.datum_hash, status, False, result, error))

    async def answer(item: Item) -> tuple[str, dict[str, Any], str]:
        done: asyncio.Future[tuple[str, dict[str, Any], str]] | None = None
        if shared is not None:
            done = asyncio.get_running_loop().create_future()
            shared.answers[item.key] = done
        verdict: tuple[str, dict[str, Any], str] = (ERROR, {}, "cancelled")
        try:
            verdict = await solve_one(rows[item.index], inference, work, item.repeat, pool)
            status, result, _ = verdict
            if status not in NOT_VERDICTS:
                writer.submit(item.key, {**result, "datum_hash": item.datum_hash, "repeat": item.repeat})
            return verdict
        finally:
            if done is not None and shared is not None:
                done.set_result(verdict)  # waiters take it, or answer themselves when it is an error
                if verdict[0] in NOT_VERDICTS:
                    shared.answers.pop(item.key, None)  # not an answer: the next cell asks again

    async def main() -> None:
        workers = [asyncio.create_task(worker()) for _ in range(min(work.max_concurrent, queue.qsize()))]
        try:
            await asyncio.gather(*workers)
        finally:
            await asyncio.shield(asyncio.to_thread(writer.close))  # what finished is written, even when cancelled
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    if opened is not None:
        async with opened:
            await main()
    else:
        await main()


def local_hits(plan: Plan, cache: ResultCache, sync: bool = True,
               probe: bool = True) -> tuple[dict[tuple[int, int], Outcome], list[Item]]:
    """The outcomes the cache holds — this machine's, then (``sync``) the store's packs for what is missing —
    and the items left to answer (``probe``: once the model is known to answer when there are any)."""
    outcomes: dict[tuple[int, int], Outcome] = {}
    if plan.params.force:
        return outcomes, _routable(plan, list(plan.items), probe)
    first: dict[str, Item] = {}
    again: dict[str, list[Item]] = {}  # items whose datum and repeat another item has too: the same key
    for item in plan.items:
        if item.key in first:
            again.setdefault(item.key, []).append(item)
        else:
            first[item.key] = item

    def take(hits: Iterable[dict[str, Any]]) -> list[Item]:
        """Outcomes of the ``hits`` the plan has items for, as they are read (nothing else of them is kept);
        the items still missing after them and this machine's single entries."""
        with collector_paused():  # many outcomes, all kept
            for hit in hits:
                item = first.get(hit["key"])
                if item is not None:
                    for each in (item, *again.get(item.key, ())):
                        outcomes[(each.index, each.repeat)] = _cached(each, hit)
            missing = []
            for item in plan.items:
                if (item.index, item.repeat) not in outcomes:
                    single = cache.get_local(item.key)
                    if single is not None:
                        outcomes[(item.index, item.repeat)] = _cached(item, single)
                    else:
                        missing.append(item)
        return missing

    todo = take(cache.each_result(plan.cache_group))
    if todo and sync and cache.sync(plan.cache_group):
        todo = take(cache.each_result(plan.cache_group))
    return outcomes, _routable(plan, todo, probe)


def _routable(plan: Plan, todo: list[Item], probe: bool) -> list[Item]:
    """``todo``, once the model is known to be reachable when there is something to ask it."""
    if probe and todo and plan.model is not None:
        check_routable(plan.model)
        check_reachable(plan.model)
    return todo


class _Run:
    """One plan's execution: collects outcomes as they come and summarises them."""

    def __init__(self, plan: Plan, cache: ResultCache, on_start: StartFn | None, on_outcome: OutcomeFn | None,
                 completer: Completer | None = None) -> None:
        self.plan, self.cache, self.on_outcome = plan, cache, on_outcome
        self.started = time.perf_counter()
        scratch_root()  # made once per process, after removing what killed runs left
        self.stats = CacheStats()
        self.outcomes, self.todo = local_hits(plan, cache, probe=completer is None)
        self.work = Work.of(plan, str(cache.directory.parent / "completions"))
        self.work.completer = completer
        if on_start:
            on_start(len(plan.items), len(self.outcomes))
        if on_outcome:
            for o in list(self.outcomes.values()):
                on_outcome(o)

    def report(self, o: Outcome) -> None:
        self.outcomes[(o.index, o.repeat)] = o
        if self.on_outcome:
            self.on_outcome(o)

    def summary(self) -> RunSummary:
        plan = self.plan
        ordered = [self.outcomes[(i.index, i.repeat)] for i in plan.items if (i.index, i.repeat) in self.outcomes]
        custom = plan.solver_instance.aggregate([o.result for o in ordered if o.status not in NOT_VERDICTS])
        metrics = compute_metrics(ordered, plan.params.num_repeats, custom)
        return RunSummary(ordered, time.perf_counter() - self.started, metrics, self.stats)


def execute(plan: Plan, cache: ResultCache, on_start: StartFn | None = None, on_outcome: OutcomeFn | None = None,
            remote: RemoteFn | None = None, completer: Completer | None = None) -> RunSummary:
    """Run the plan; ``on_start(total, cached)`` and ``on_outcome`` feed a progress display. With ``remote``,
    the uncached items are answered there instead of on this machine's event loop. With ``completer``, that
    client answers instead of one opened for the plan's model (which is then neither routed nor probed)."""
    run = _Run(plan, cache, on_start, on_outcome, completer)
    if run.todo and remote is not None:
        for o in remote(plan.data.rows, run.todo, run.work):
            run.report(o)
    elif run.todo:
        asyncio.run(execute_items(run.todo, plan.data.rows, run.work, cache, run.stats, run.report))
    return run.summary()


async def execute_async(plan: Plan, cache: ResultCache, shared: Shared, on_start: StartFn | None = None,
                        on_outcome: OutcomeFn | None = None, remote: RemoteFn | None = None,
                        on_drained: Callable[[], None] | None = None) -> RunSummary:
    """`execute` on an event loop that is already running (suites run many plans at once on one loop)."""
    run = await asyncio.to_thread(_Run, plan, cache, on_start, on_outcome)
    if run.todo and remote is not None:
        for o in await asyncio.to_thread(lambda: list(remote(plan.data.rows, run.todo, run.work))):
            run.report(o)
    elif run.todo:
        await execute_items(run.todo, plan.data.rows, run.work, cache, run.stats, run.report, shared, on_drained)
    return run.summary()
