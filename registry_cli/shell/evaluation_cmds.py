"""`nearai evaluation ...` and `nearai scenario ...`: evaluations, tables, reports, scenario tabulation."""

from __future__ import annotations

from pathlib import Path

from registry_cli.errors import UsageError
from registry_cli.shell import render, render_evaluation
from registry_cli.shell.commands import command, open_registry


class EvaluationCommands:
    """Tabulate and inspect recorded evaluations."""

    @command
    def table(self, all_key_columns: bool = False, all_metrics: bool = False, num_columns: int = 6,
              metric_name_max_length: int = 30, benchmark: str = "", model: str = "", namespace: str = "",
              format: str = "table", all_versions: bool = False, show_all: bool = False) -> None:
        """Pivot evaluations: rows are model/agent/..., columns are benchmark metrics.

        Args:
            all_key_columns: show every key column, not only model, agent and those that differ
            all_metrics: every metric, not only the score
            num_columns: metric columns shown by table and markdown (csv and json carry all)
            metric_name_max_length: shorten metric names in table and markdown to this length
            benchmark: only this benchmark
            model: only models whose name contains this
            namespace: only this namespace
            format: table, csv, json or markdown
            all_versions: one row per recorded version instead of the latest of each evaluation
            show_all: include hidden evaluations and those of hidden agents or models
        """
        from evaluation.table import TableOptions, build_table, check_format

        if num_columns < 1 or metric_name_max_length < 4:
            raise UsageError("--num_columns must be >= 1 and --metric_name_max_length >= 4")
        check_format(format)
        opts = TableOptions(all_key_columns=all_key_columns, all_metrics=all_metrics, benchmark=benchmark,
                            model=model, namespace=namespace, all_versions=all_versions, show_all=show_all)
        from registry_cli.apps.viewer.links import page_link

        registry = open_registry()
        render_evaluation.evaluation_table(build_table(registry, opts), format, num_columns, metric_name_max_length)
        render.skipped(registry.skipped)
        render.view_link(page_link(registry.config.home, "evaluations", benchmark=benchmark, model=model))

    @command
    def read_solutions(self, entry: str, status: str = "", verbose: bool = False) -> None:
        """Show the per-datum results of evaluation ENTRY.

        Args:
            entry: the evaluation entry, namespace/name[/version|latest]
            status: only passed, failed or error
            verbose: every field of every result as JSON, with the console log of kept run folders
        """
        from evaluation.solutions import read_solutions
        from registry_cli.apps.viewer.links import evaluation_link

        registry = open_registry()
        render_evaluation.solutions(read_solutions(registry, entry, status, with_runs=verbose), verbose)
        render.view_link(evaluation_link(registry.config.home, registry.resolve(entry).entry))

    @command
    def report(self, html: str = "evaluations.html", benchmark: str = "", metric: str = "") -> None:
        """Write a static HTML page with the evaluation table and a bar chart of one metric.

        Args:
            html: the file to write
            benchmark: the benchmark charted (default: the one with most evaluations)
            metric: the metric charted (default: score)
        """
        from evaluation.report import write_report

        registry = open_registry()
        render.message(f"wrote {write_report(registry, html, benchmark, metric)}")
        render.skipped(registry.skipped)


class ScenarioCommands:
    """AutoGenBench scenarios: tabulate the runs of `benchmark run SCENARIOS ScenarioSolver`."""

    @command
    def clone(self, source: str, dest: str = "", path: str = "") -> None:
        """Copy an AutoGenBench benchmark folder (with Templates/ and Scripts/) here, from a folder or a git URL.

        Args:
            source: a benchmark folder, or a git repository URL
            dest: where to put it (default: the benchmark's folder name, here)
            path: the benchmark's folder inside the repository, e.g. python/packages/agbench/benchmarks/HumanEval
        """
        from evaluation.tabulate import clone_benchmark

        target = clone_benchmark(source, dest, path)
        render.message(f"cloned {target}; make its tasks with its Scripts/init_tasks.py, then: nearai benchmark run "
                       f"{target}/Tasks/TASKS.jsonl ScenarioSolver --model=MODEL")

    @command
    def tabulate(self, results_dir: str = "Results", format: str = "table", script: str = "auto",
                 sandbox: str = "auto") -> None:
        """Per task one column per trial, then successes, failures, errors, missing, success rate and pass@k; or
        the benchmark's own custom_tabulate.py, run in the sandbox per scenario folder, as AutoGenBench does.

        Args:
            results_dir: the folder holding <scenario>/<id>/<repeat>/ run folders
            format: table, csv or json
            script: auto (the benchmark's custom_tabulate.py when one is found here or above the results), none
                (this tool's table), or a path to a tabulate script
            sandbox: where the script runs: auto, bwrap, docker, podman or native
        """
        from evaluation.tabulate import find_script, script_tables, tabulate

        if format not in ("table", "csv", "json"):
            raise UsageError(f"unknown --format {format!r}", "choose one of: table, csv, json")
        chosen = None if script == "none" else find_script(results_dir) if script == "auto" else Path(script)
        if chosen is not None and not chosen.is_file():
            raise UsageError(f"--script {script} is not a file", "name a custom_tabulate.py, or pass --script=none")
        if chosen is None or format == "json":
            render_evaluation.tabulation(tabulate(results_dir), format)
            return
        render_evaluation.script_tables(chosen, script_tables(results_dir, chosen, sandbox, csv=format == "csv"))
