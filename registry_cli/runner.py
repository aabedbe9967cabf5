"""`benchmark run`: pose every datum of a dataset to a model or agent through a solver, caching each verdict.

One asyncio event loop with ``max_concurrent`` workers (no thread per request). Each datum (times each repeat)
has a content-addressed cache key; cached verdicts are read locally first, then from the store, and only the
rest is computed. A verdict is written to the cache as soon as it exists, so an interruption loses only the
datums in flight. Errors (timeouts, provider failures, agent crashes) are reported but never cached.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.cache import ResultCache, datum_hash, result_key
from registry_cli.errors import NearaiError, SolverError, UsageError
from registry_cli.inference import Inference, InferenceFailure, ModelSpec, Usage, redact
from registry_cli.registry import Registry


@dataclass
class RunOptions:
    dataset: str
    solver: str
    model: str = ""
    agent: str = ""
    subset: str = ""
    max_concurrent: int = 16
    force: bool = False
    record: bool = False
    num_inference_retries: int = 10
    num_repeats: int = 1
    api_base: str = ""
    temperature: float = 0.0
    max_tokens: int = 0
    timeout: float = 120.0
    limit: int = 0
    ray_address: str = ""
    quiet: bool = False
    solver_args: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    index: int
    repeat: int
    key: str
    datum_hash: str
    status: str  # passed | failed | error
    cached: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def record(self) -> dict[str, Any]:
        """The per-datum line kept in evaluation entries (content-addressed by the cache key)."""
        return {"key": self.key, "datum_hash": self.datum_hash, "index": self.index, "repeat": self.repeat,
                "status": self.status, "info": self.result.get("info", {}), "metrics": self.result.get("metrics", {}),
                "usage": self.result.get("usage", {}), "error": self.error or None}


@dataclass
class RunSummary:
    benchmark: str
    solver: str
    solver_version: str
    dataset: str
    dataset_hash: str
    subset: str
    model: str
    api_base: str
    agent: str
    agent_hash: str
    num_repeats: int
    outcomes: list[Outcome]
    duration_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    recorded_entry: str = ""

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def cached(self) -> int:
        return sum(1 for o in self.outcomes if o.cached)

    def usage_total(self, field_name: str) -> float:
        return sum(float(o.result.get("usage", {}).get(field_name, 0) or 0) for o in self.outcomes)


class _DatumSession:
    """The Session given to ``solve``: one per datum, with a private working folder and usage accounting."""

    def __init__(self, inference: Inference | None, agent: Any, model: str, timeout: float) -> None:
        self._inference, self._agent, self._model, self._timeout = inference, agent, model, timeout
        self.usage = Usage()
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="nearai-datum-")
        return self._path

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        if self._inference is None:
            raise InferenceFailure("this run has no --model")
        return await self._inference.complete(messages, self.usage)

    async def run_task(self, task: str) -> str:
        if self._agent is not None:
            from registry_cli.agents import run_agent

            return await run_agent(self._agent, task, self._model, self._inference, self.usage, self.path,
                                   self._timeout)
        return await self.complete([{"role": "user", "content": task}])

    def cleanup(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def compute_metrics(outcomes: list[Outcome], repeats: int, custom: dict[str, float]) -> dict[str, float]:
    n = len(outcomes)
    passed = sum(1 for o in outcomes if o.status == "passed")
    p = passed / n if n else 0.0
    z = 1.959964
    denom = 1 + z * z / n if n else 1
    centre = (p + z * z / (2 * n)) / denom if n else 0.0
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom if n else 0.0
    m: dict[str, float] = {
        "score": p, "stderr": math.sqrt(p * (1 - p) / n) if n else 0.0,
        "ci95_low": max(0.0, centre - half), "ci95_high": min(1.0, centre + half),
        "n": n, "passed": passed, "failed": sum(1 for o in outcomes if o.status == "failed"),
        "errored": sum(1 for o in outcomes if o.status == "error"),
    }
    if repeats > 1:
        by_datum: dict[int, list[bool]] = {}
        for o in outcomes:
            by_datum.setdefault(o.index, []).append(o.status == "passed")
        for k in sorted({1, 2, 5, 10, 20, 50, 100} | {repeats}):
            if k <= repeats:
                vals = [pass_at_k(len(v), sum(v), k) for v in by_datum.values()]
                m[f"pass@{k}"] = sum(vals) / len(vals) if vals else 0.0
    for name, value in custom.items():
        m.setdefault(name, value)
    return m


def _resolve_agent(registry: Registry, spec: str) -> Any:
    from registry_cli.agents import Agent
    from registry_cli.dataset import resolve_folder

    folder, source, digest, _ = resolve_folder(registry, spec)
    Agent.check(folder)
    return Agent(folder.resolve(), digest, source)


def _make_solver(name: str, args: dict[str, str]) -> Any:
    from solvers import get_solver

    cls = get_solver(name)
    try:
        return cls(**args)
    except TypeError as e:
        raise SolverError(f"bad arguments for {name}: {e}", "check the solver's extra --flags") from None


ProgressFn = Callable[[Outcome], None]


def run_benchmark(opts: RunOptions, on_outcome: ProgressFn | None = None,
                  on_start: Callable[[int, int], None] | None = None) -> RunSummary:
    """Run the benchmark; ``on_start(total, cached)`` and ``on_outcome`` feed a progress display."""
    from registry_cli.dataset import load_dataset

    if not opts.model and not opts.agent:
        raise UsageError("pass --model or --agent", "e.g. --model=openai/gpt-4o-mini or --agent=PATH")
    solver = _make_solver(opts.solver, opts.solver_args)
    if opts.ray_address:
        from registry_cli.distributed import require_ray

        require_ray()
    registry = Registry()
    data = load_dataset(registry, opts.dataset, opts.subset, opts.limit)
    agent = _resolve_agent(registry, opts.agent) if opts.agent else None
    spec = ModelSpec(opts.model, opts.api_base, opts.temperature, opts.max_tokens, opts.timeout,
                     opts.num_inference_retries) if opts.model else None
    common = {
        "solver": {"name": type(solver).__name__, "version": getattr(solver, "version", "1"),
                   "args": getattr(solver, "solver_args", {}) or None},
        "dataset": data.content_hash,
        "subset": data.subset or None,
        "model": spec.identity() if spec else None,
        "agent": agent.identity if agent else None,
    }
    plans: list[tuple[int, int, str, str]] = []
    for i, row in enumerate(data.rows):
        dh = datum_hash(row)
        for r in range(opts.num_repeats):
            plans.append((i, r, dh, result_key({**common, "datum": dh, "repeat": r})))

    cache = ResultCache(registry.config.cache_dir / "results", registry.store)
    started = time.perf_counter()
    outcomes: dict[tuple[int, int], Outcome] = {}
    todo: list[tuple[int, int, str, str]] = []
    for i, r, dh, key in plans:
        hit = None if opts.force else cache.get_local(key)
        if hit is not None:
            outcomes[(i, r)] = Outcome(i, r, key, dh, "passed" if hit.get("passed") else "failed", True, hit)
        else:
            todo.append((i, r, dh, key))
    if on_start:
        on_start(len(plans), len(outcomes))
    if on_outcome:
        for o in outcomes.values():
            on_outcome(o)
    try:
        if todo and opts.ray_address:
            from registry_cli.distributed import run_on_ray

            for o in run_on_ray(opts, data.rows, todo, solver, spec, agent):
                outcomes[(o.index, o.repeat)] = o
                if on_outcome:
                    on_outcome(o)
        elif todo:
            asyncio.run(_execute(todo, data.rows, solver, spec, agent, cache, opts, outcomes, on_outcome))
    finally:
        cache.close()
    ordered = [outcomes[(i, r)] for i, r, _, _ in plans if (i, r) in outcomes]
    custom = solver.aggregate([o.result for o in ordered if o.status != "error"])
    summary = RunSummary(
        benchmark=solver.evaluation_name(), solver=type(solver).__name__, solver_version=str(solver.version),
        dataset=data.source, dataset_hash=data.content_hash, subset=data.subset,
        model=spec.resolved if spec else "", api_base=spec.identity()["api_base"] or "" if spec else "",
        agent=agent.entry if agent else "", agent_hash=agent.identity if agent else "",
        num_repeats=opts.num_repeats, outcomes=ordered, duration_s=time.perf_counter() - started,
    )
    summary.metrics = compute_metrics(ordered, opts.num_repeats, custom)
    if opts.record:
        from evaluation.record import record_evaluation

        summary.recorded_entry = record_evaluation(registry, summary).entry
    return summary


async def solve_one(solver: Any, row: dict[str, Any], inference: Inference | None, agent: Any, model: str,
                    timeout: float) -> tuple[str, dict[str, Any], str]:
    """(status, result, error) for one datum; never raises for per-datum failures."""
    from registry_cli.agents import AgentFailure
    from solvers import normalize

    session = _DatumSession(inference, agent, model, timeout)
    t0 = time.perf_counter()
    try:
        if inspect.iscoroutinefunction(solver.solve):
            raw = await solver.solve(row, session)
        else:
            raw = await asyncio.to_thread(solver.solve, row, session)
            if inspect.isawaitable(raw):
                raw = await raw
        verdict = normalize(raw)
    except (InferenceFailure, AgentFailure) as e:
        return "error", {"usage": session.usage.as_dict()}, redact(str(e))
    except NearaiError as e:
        return "error", {"usage": session.usage.as_dict()}, redact(str(e))
    except Exception as e:  # a solver bug on one datum must not sink the run
        return "error", {"usage": session.usage.as_dict()}, redact(f"{type(e).__name__}: {e}")[:500]
    finally:
        session.cleanup()
    result = {"passed": bool(verdict.passed), "info": verdict.info, "metrics": verdict.metrics,
              "usage": session.usage.as_dict(), "duration_s": round(time.perf_counter() - t0, 4)}
    return ("passed" if verdict.passed else "failed"), result, ""


async def _execute(todo: list[tuple[int, int, str, str]], rows: "list[dict[str, Any]] | dict[int, dict[str, Any]]", solver: Any,
                   spec: ModelSpec | None, agent: Any, cache: ResultCache, opts: RunOptions,
                   outcomes: dict[tuple[int, int], Outcome], on_outcome: ProgressFn | None) -> None:
    queue: asyncio.Queue[tuple[int, int, str, str]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    inference = Inference(spec, opts.max_concurrent) if spec else None
    model = spec.resolved if spec else ""

    async def worker() -> None:
        while True:
            try:
                i, r, dh, key = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            hit = None if opts.force else await asyncio.to_thread(cache.get_remote, key)
            if hit is not None:
                o = Outcome(i, r, key, dh, "passed" if hit.get("passed") else "failed", True, hit)
            else:
                status, result, error = await solve_one(solver, rows[i], inference, agent, model, opts.timeout)
                if status != "error":
                    await asyncio.to_thread(cache.put, key, {**result, "datum_hash": dh, "repeat": r})
                o = Outcome(i, r, key, dh, status, False, result, error)
            outcomes[(i, r)] = o
            if on_outcome:
                on_outcome(o)

    async def main() -> None:
        workers = [asyncio.create_task(worker()) for _ in range(min(opts.max_concurrent, len(todo)))]
        await asyncio.gather(*workers)

    if inference is not None:
        async with inference:
            await main()
    else:
        await main()
