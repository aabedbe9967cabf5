"""`benchmark run` as one library call: plan, execute, and record when asked. Returns data; never prints."""

from __future__ import annotations

from dataclasses import dataclass

from registry_cli.core.registry import EntryInfo, Registry
from registry_cli.engine.caching.cache import ResultCache
from registry_cli.engine.execution.execute import OutcomeFn, RemoteFn, StartFn, execute
from registry_cli.engine.execution.results import RunSummary
from registry_cli.engine.planning.params import RunParams
from registry_cli.engine.planning.plan import Plan, make_plan
from registry_cli.errors import NearaiError


@dataclass
class BenchmarkRun:
    plan: Plan
    summary: RunSummary
    recorded: EntryInfo | None = None
    record_error: NearaiError | None = None  # why --record published nothing


def run_benchmark(params: RunParams, on_start: StartFn | None = None,
                  on_outcome: OutcomeFn | None = None) -> BenchmarkRun:
    remote: RemoteFn | None = None
    if params.ray_address:
        from registry_cli.engine.execution.distributed import ray_runner

        remote = ray_runner(params.ray_address)
    registry = Registry()
    plan = make_plan(registry, params)
    cache = ResultCache(registry.config.cache_dir / "results", registry.store)
    try:
        summary = execute(plan, cache, on_start, on_outcome, remote)
    finally:
        cache.close()
    run = BenchmarkRun(plan, summary)
    from evaluation.record import record_evaluation, summary_details
    from evaluation.runs import log_run

    if params.record:
        try:
            run.recorded = record_evaluation(registry, plan, summary)
        except NearaiError as e:
            run.record_error = e
    if summary.total:
        problem = log_run(registry, summary_details(registry, plan, summary), run.recorded.entry if run.recorded else "")
        if problem:
            plan.warnings.append(f"warning: {problem}")
    return run
