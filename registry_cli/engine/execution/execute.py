"""Executing a plan: pose every planned (datum, repeat) to the model or agent through the solver.

One asyncio event loop with ``max_concurrent`` workers (no thread per request). Cached verdicts are read locally
first, then from the store, and only the rest is computed. A verdict is written to the cache as soon as it exists,
so an interruption loses only the datums in flight. Errors (timeouts, provider failures, agent crashes) are
reported but never cached, and a cache that cannot be written is counted, never fatal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.caches.bulk import collector_paused
from registry_cli.core import env
from registry_cli.engine.caching.cache import CacheWriter, ResultCache
from registry_cli.engine.execution.datum import Work, solve_one, solver_threads
from registry_cli.engine.execution.metrics import compute_metrics
from registry_cli.engine.execution.results import ERROR, FAILED, NOT_VERDICTS, PASSED, CacheStats, Outcome, RunSummary
from registry_cli.engine.execution.settled import keep_settled, read_settled, settled_path
from registry_cli.engine.inference.client import Inference
from registry_cli.engine.inference.endpoints import ModelSpec, check_reachable, check_routable, choose_backend, open_session
from registry_cli.engine.inference.transcript import Completer
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.engine.planning.plan import Item, Plan

OutcomeFn = Callable[[Outcome], None]


StartFn = Callable[[int, int], None]


# runs items elsewhere (e.g. on Ray) and yields their outcomes: (rows, items, work) -> outcomes
RemoteFn = Callable[[dict[int, dict[str, Any]], list[Item], "Work"], Iterable[Outcome]]


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
    opened: Inference | None = None
    if work.completer is None and work.model is not None:
        opened = shared.inference(work.model, work.max_concurrent) if shared else Inference(work.model, work.max_concurrent)
    inference: Completer | None = work.completer or opened
    writer = CacheWriter(cache, stats, work.cache_group)
    pool = solver_threads(work)
    elsewhere: dict[str, dict[str, Any]] = {}  # results other machines shared while this run goes on

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if on_drained is not None and queue.empty():
                on_drained()
            if item.key in elsewhere:
                on_outcome(_cached(item, elsewhere[item.key]))
                continue
            if shared is not None and item.key in shared.answers:  # another cell answers (or answered) this key
                status, result, error = await asyncio.shield(shared.answers[item.key])
                if status not in NOT_VERDICTS:
                    on_outcome(Outcome(item.index, item.repeat, item.key, item.datum_hash, status, True, result))
                    continue
            status, result, error = await _answer(item, rows[item.index], inference, work, pool, writer, shared)
            on_outcome(Outcome(item.index, item.repeat, item.key, item.datum_hash, status, False, result, error))

    async def main() -> None:
        workers = [asyncio.create_task(worker()) for _ in range(min(work.max_concurrent, queue.qsize()))]
        watching = cache.remote is not None and not work.force  # --force: answers anew, whatever others share
        watcher = asyncio.create_task(_watch(cache, work.cache_group, elsewhere)) if watching else None
        try:
            await asyncio.gather(*workers)
        finally:
            if watcher is not None:
                watcher.cancel()
            await asyncio.shield(asyncio.to_thread(writer.close))  # what finished is written, even when cancelled
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    if opened is not None:
        async with opened:
            await main()
    else:
        await main()


async def _watch(cache: ResultCache, group: str, into: dict[str, dict[str, Any]]) -> None:
    """Every ``NEARAI_SHARE_SECONDS``, take in the results of ``group`` other machines have shared since (a second
    machine on the same benchmark, Ray workers): the items still queued for them are then not asked again."""
    every = env.share_seconds()
    while group:
        await asyncio.sleep(every)
        for result in await asyncio.to_thread(cache.news, group):
            into[result["key"]] = result


def stored_outcomes(items: list[Item], cache: ResultCache, group: str) -> tuple[list[Outcome], list[Item]]:
    """The outcomes of ``items`` the cache holds (this machine's packs, then the store's), and the items left."""
    wanted: dict[str, list[Item]] = {}
    for item in items:
        wanted.setdefault(item.key, []).append(item)
    cache.sync(group)
    found: dict[str, dict[str, Any]] = {}
    with collector_paused():
        for result in cache.each_result(group):
            if result["key"] in wanted:
                found[result["key"]] = result
    outcomes = [_cached(item, found[item.key]) for item in items if item.key in found]
    return outcomes, [item for item in items if item.key not in found]


async def _answer(item: Item, row: dict[str, Any], inference: Completer | None, work: Work, pool: Executor | None,
                  writer: CacheWriter, shared: Shared | None) -> tuple[str, dict[str, Any], str]:
    """Ask for ``item``'s answer, cache a verdict, and (in a suite) hand it to the other cells waiting for the key."""
    done: asyncio.Future[tuple[str, dict[str, Any], str]] | None = None
    if shared is not None:
        done = asyncio.get_running_loop().create_future()
        shared.answers[item.key] = done
    verdict: tuple[str, dict[str, Any], str] = (ERROR, {}, "cancelled")
    try:
        verdict = await solve_one(row, inference, work, item.repeat, pool)
        status, result, _ = verdict
        if status not in NOT_VERDICTS:
            writer.submit(item.key, {**result, "datum_hash": item.datum_hash, "repeat": item.repeat})
        return verdict
    finally:
        if done is not None and shared is not None:
            done.set_result(verdict)  # waiters take it, or answer themselves when it is an error
            if verdict[0] in NOT_VERDICTS:
                shared.answers.pop(item.key, None)  # not an answer: the next cell asks again


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
        todo = _spread(take(cache.each_result(plan.cache_group)))
    return outcomes, _routable(plan, todo, probe)


def _spread(todo: list[Item]) -> list[Item]:
    """The store had results of this run this machine lacked: another machine may be answering it right now, in
    the plan's order. Going from the other end instead of behind it, each answers what the other has not reached,
    and they meet once, where what one shares the other skips (`_watch`)."""
    return todo[::-1]


def _routable(plan: Plan, todo: list[Item], probe: bool) -> list[Item]:
    """``todo``, once the model is known to be reachable when there is something to ask it, and the solver ready
    for those datums (its ``check_ready`` hook: e.g. a prepared task's FROM image is on this machine)."""
    if probe and todo and plan.model is not None:
        check_routable(plan.model)
        check_reachable(plan.model)
    ready = getattr(plan.solver_instance, "check_ready", None)
    if probe and todo and callable(ready):
        ready([plan.data.rows[i] for i in sorted({item.index for item in todo}) if i in plan.data.rows])
    return todo


def restore_cached(plan: Plan, outcomes: dict[tuple[int, int], Outcome]) -> None:
    """Let a solver that keeps run folders (scenarios) write them for results that came from the cache, so a
    cached rerun leaves the same ``--results_dir`` as a computed one."""
    restore = getattr(plan.solver_instance, "restore", None)
    if not callable(restore) or not outcomes:
        return
    results = Path(plan.params.results_dir)
    rows = plan.data.rows
    for (index, repeat), o in outcomes.items():
        if o.status not in NOT_VERDICTS and index in rows:
            restore(rows[index], o.result, results, repeat)


class _Run:
    """One plan's execution: collects outcomes as they come and summarises them."""

    def __init__(self, plan: Plan, cache: ResultCache, on_start: StartFn | None, on_outcome: OutcomeFn | None,
                 completer: Completer | None = None) -> None:
        self.plan, self.cache, self.on_outcome = plan, cache, on_outcome
        self.started = time.perf_counter()
        scratch_root()  # made once per process, after removing what killed runs left
        self.stats = CacheStats()
        self.outcomes, self.todo = local_hits(plan, cache, probe=completer is None)
        restore_cached(plan, self.outcomes)
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
    started = time.perf_counter()
    path = settled_path(plan, cache) if remote is None else None
    kept = read_settled(path) if path is not None else None
    if kept is not None:  # the same rerun against the same cache as before: its sum, without reading a result
        if on_start:
            on_start(kept[0].n, kept[0].n)
        return RunSummary([], time.perf_counter() - started, kept[1], CacheStats(), kept[0])
    run = _Run(plan, cache, on_start, on_outcome, completer)
    if run.todo and remote is not None:
        for o in remote(plan.data.rows, run.todo, run.work):
            run.report(o)
    elif run.todo:
        asyncio.run(execute_items(run.todo, plan.data.rows, run.work, cache, run.stats, run.report))
    summary = run.summary()
    if remote is None and summary.total == plan.n_items and not summary.unanswered and not run.stats.not_cached:
        after = settled_path(plan, cache)  # the packs as this run left them, its own sealed among them
        if after is not None:
            keep_settled(after, summary)
    return summary


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
