"""`nearai benchmark ...`: run a dataset through a solver; list the runs."""

from __future__ import annotations

from typing import Any

from registry_cli.errors import UsageError
from registry_cli.shell import render
from registry_cli.shell.commands import command, open_registry, run_flags


class BenchmarkCommands:
    """Run a solver over a dataset with a model or an agent."""

    @command
    def run(self, dataset: str, solver_strategy: str, **flags: Any) -> None:
        """Run SOLVER_STRATEGY over DATASET with a model or an agent; every result is cached per datum.

        Args:
            dataset: registry entry (ns/name[/version|latest]) or a save_to_disk folder
            solver_strategy: a built-in solver name, an installed entry point, or module:Class
        """
        from registry_cli.apps.benchmark import run_benchmark
        from registry_cli.engine.planning.params import RunParams

        known = {f.name for f in run_flags()}
        params = RunParams(dataset=dataset, solver_strategy=solver_strategy,
                           solver_args={k: str(v) for k, v in flags.items() if k not in known},
                           explicit=frozenset(flags), **{k: v for k, v in flags.items() if k in known})
        with render.BenchmarkProgress(params.quiet) as progress:
            run = run_benchmark(params, progress.start, None if params.quiet else progress.update)
            progress.finish(run.summary)
        render.benchmark_summary(run)
        if run.recorded is not None:
            from registry_cli.apps.viewer.links import evaluation_link
            from registry_cli.core.config import load_config

            render.view_link(evaluation_link(load_config().home, run.recorded.entry))
        if run.record_error is not None:
            raise run.record_error  # after the results are shown
        if run.summary.unanswered:
            raise SystemExit(3)

    run.flags_from = run_flags  # type: ignore[attr-defined]

    @command
    def list(self, namespace: str = "", benchmark: str = "", total: int = 32) -> None:
        """List benchmark runs: this machine's and the evaluations in the store, newest first.

        Args:
            namespace: only this namespace
            benchmark: only this benchmark
            total: how many rows to show
        """
        from evaluation.runs import list_benchmarks

        if total < 1:
            raise UsageError("--total must be >= 1", "e.g. --total=32")
        registry = open_registry()
        rows = list_benchmarks(registry, namespace, benchmark)
        render.benchmark_runs(rows[:total], len(rows))
        render.skipped(registry.skipped)
