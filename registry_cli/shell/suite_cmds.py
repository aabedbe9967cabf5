"""`nearai suite ...`: many runs from one TOML file, their summaries and regrading."""

from __future__ import annotations

from registry_cli.errors import UsageError
from registry_cli.shell import render
from registry_cli.shell.commands import command, open_registry


class SuiteCommands:
    """Many datasets x solvers x models x agents x rollouts from one TOML config (see docs/suites.md)."""

    @command
    def run(self, config: str, record: bool = False, parallel: int = 0, dry_run: bool = False, verbose: int = 0,
            force: bool = False, ray_address: str = "") -> None:
        """Run every cell of the suite CONFIG (a .toml file); finished datums come from the cache.

        Args:
            config: the suite's TOML file
            record: publish one evaluation per completed cell
            parallel: cells at once (0: the config's `parallel`)
            dry_run: show the cells, datums, cached answers and estimated cost; compute nothing
            verbose: 1 (-v): a line when a cell starts; 2 (-vv): also a line per errored datum
            force: recompute every datum, ignoring cached results
            ray_address: answer datums on a Ray cluster (auto, ray://host:10001, local)
        """
        from registry_cli.apps.suites.config import load_suite
        from registry_cli.shell import render_suites

        if parallel < 0 or verbose < 0:
            raise UsageError("--parallel and --verbose must be >= 0")
        suite = load_suite(config)
        if dry_run:
            from registry_cli.apps.suites.run import dry_run as plan_only

            render_suites.dry_run(plan_only(suite, force))
            return
        from registry_cli.apps.suites.run import run_suite
        from registry_cli.apps.suites.summary import summarize
        from registry_cli.apps.viewer.links import suite_link
        from registry_cli.core.config import load_config

        progress = render_suites.SuiteProgress(suite.name, verbose)
        try:
            run = run_suite(suite, record, parallel, force, ray_address, progress.events())
        finally:
            progress.end()
        render_suites.suite_summary(summarize(run.folder), "table")
        render_suites.suite_finished(run)
        render.view_link(suite_link(load_config().home, suite.name, run.folder.name))
        if run.interrupted:
            raise SystemExit(130)
        if run.status != "completed":
            raise SystemExit(3)

    @command
    def summarize(self, name: str, latest: bool = False, run: str = "", format: str = "table", rollout: str = "") -> None:
        """Per cell n, score, 95% CI, pass@k, tokens, cost, time; per task rollouts; paired differences per task
        and per model.

        Args:
            name: the suite's name
            latest: the latest run (the default)
            run: this run (its UTC stamp, see `nearai suite list`)
            format: table, csv, json or markdown
            rollout: the same as --run (the rollouts orchestrator's name for it)
        """
        from registry_cli.apps.suites.summary import find_run, summarize
        from registry_cli.apps.viewer.links import suite_link
        from registry_cli.core.config import load_config
        from registry_cli.shell import render_suites

        if format not in ("table", "csv", "json", "markdown"):
            raise UsageError(f"unknown --format {format!r}", "choose one of: table, csv, json, markdown")
        home = load_config().home
        folder = find_run(home, name, _stamp(latest, run, rollout))
        render_suites.suite_summary(summarize(folder), format)
        render.view_link(suite_link(home, name, folder.name))

    @command
    def list(self, name: str = "") -> None:
        """List suite runs (of NAME, or of every suite).

        Args:
            name: only this suite
        """
        from registry_cli.apps.suites.summary import list_runs
        from registry_cli.core.config import load_config
        from registry_cli.shell import render_suites

        render_suites.suite_runs(list_runs(load_config().home, name))

    @command
    def eval(self, name: str, latest: bool = False, run: str = "", rollout: str = "") -> None:
        """Grade a finished run again with the current solvers, from its stored model outputs (no model calls);
        prepared tasks are graded again from their stored diffs (the agent is not run).

        Args:
            name: the suite's name
            latest: the latest run (the default)
            run: this run (its UTC stamp)
            rollout: the same as --run (the rollouts orchestrator's name for it)
        """
        from registry_cli.apps.suites.regrade import regrade
        from registry_cli.apps.suites.summary import find_run
        from registry_cli.shell import render_suites

        registry = open_registry()
        render_suites.regraded(regrade(registry, find_run(registry.config.home, name, _stamp(latest, run, rollout))))


def _stamp(latest: bool, run: str, rollout: str) -> str:
    if run and rollout and run != rollout:
        raise UsageError("pass --run or --rollout, not both")
    stamp = run or rollout
    if latest and stamp:
        raise UsageError("pass --latest or --run STAMP, not both")
    return stamp
