"""`nearai` command line: each command parses its arguments, calls one library function and renders the result.

Heavy libraries (boto3, datasets, litellm) are imported only inside the commands that use them.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import fire
from fire.decorators import SetParseFn

from registry_cli import render
from registry_cli.args import as_bool, as_float, as_int, as_list, as_str
from registry_cli.errors import NearaiError, UsageError

F = TypeVar("F", bound=Callable[..., Any])


def command(fn: F) -> F:
    """Every value reaches the command as a string: `--version=1.10` stays "1.10", not 1.1."""
    return SetParseFn(str)(fn)  # type: ignore[no-any-return]


def _registry() -> Any:
    from registry_cli.registry import Registry

    return Registry()


def _bump(bump: object, minor_bump: object, major_bump: object) -> str | None:
    chosen = [n for n, v in (("patch", bump), ("minor", minor_bump), ("major", major_bump)) if as_bool(v, n)]
    if len(chosen) > 1:
        raise UsageError("pass only one of --bump, --minor_bump, --major_bump")
    return chosen[0] if chosen else None


class RegistryCommands:
    """Publish, find and fetch versioned entries (datasets, agents, solvers, evaluations)."""

    @command
    def upload(self, path: str, bump: object = False, minor_bump: object = False, major_bump: object = False) -> None:
        """Publish the folder PATH (with metadata.json) as namespace/name/version."""
        render.upload(_registry().upload(path, _bump(bump, minor_bump, major_bump)))

    @command
    def download(self, entry: str, force: object = False) -> None:
        """Download ENTRY (namespace/name[/version]) into ~/.nearai/registry, verifying every file."""
        render.download(_registry().download(entry, as_bool(force, "force")))

    @command
    def info(self, entry: str) -> None:
        """Show metadata and files of ENTRY."""
        render.info(_registry().resolve(entry))

    @command
    def list(
        self,
        namespace: object = "",
        category: object = "",
        tags: object = "",
        total: object = 32,
        offset: object = 0,
        show_all: object = False,
        show_latest_version: object = True,
    ) -> None:
        """List entries (latest version of each unless --noshow_latest_version)."""
        found = _registry().list_entries(
            namespace=as_str(namespace, "namespace"),
            category=as_str(category, "category"),
            tags=as_list(tags),
            show_all=as_bool(show_all, "show_all"),
            show_latest_version=as_bool(show_latest_version, "show_latest_version"),
        )
        start = as_int(offset, "offset", 0)
        render.entry_list(found[start : start + as_int(total, "total", 1)], start, len(found))

    @command
    def metadata_template(self, path: str = ".", category: object = "", description: object = "") -> None:
        """Write a metadata.json template into PATH."""
        target = _registry().metadata_template(path, as_str(category, "category"), as_str(description, "description"))
        render.message(f"wrote {target}")

    @command
    def update(self, path: str = ".") -> None:
        """Apply description/tags/details/category/show_entry of PATH/metadata.json to the published version."""
        info = _registry().update(path)
        render.message(f"updated metadata of {info.entry}")


class BenchmarkCommands:
    """Run a solver over a dataset with a model or an agent."""

    @command
    def run(
        self,
        dataset: str,
        solver_strategy: str,
        model: object = "",
        agent: object = "",
        subset: object = "",
        max_concurrent: object = 16,
        force: object = False,
        record: object = False,
        num_inference_retries: object = 10,
        num_repeats: object = 1,
        api_base: object = "",
        temperature: object = 0.0,
        max_tokens: object = 0,
        timeout: object = 120,
        limit: object = 0,
        ray_address: object = "",
        quiet: object = False,
        **solver_args: Any,
    ) -> None:
        """Run SOLVER_STRATEGY over DATASET (registry entry or save_to_disk folder); results are cached per datum."""
        from registry_cli.runner import RunOptions, run_benchmark

        opts = RunOptions(
            dataset=dataset,
            solver=solver_strategy,
            model=as_str(model, "model"),
            agent=as_str(agent, "agent"),
            subset=as_str(subset, "subset"),
            max_concurrent=as_int(max_concurrent, "max_concurrent", 1),
            force=as_bool(force, "force"),
            record=as_bool(record, "record"),
            num_inference_retries=as_int(num_inference_retries, "num_inference_retries", 0),
            num_repeats=as_int(num_repeats, "num_repeats", 1),
            api_base=as_str(api_base, "api_base"),
            temperature=as_float(temperature, "temperature"),
            max_tokens=as_int(max_tokens, "max_tokens", 0),
            timeout=as_float(timeout, "timeout"),
            limit=as_int(limit, "limit", 0),
            ray_address=as_str(ray_address, "ray_address"),
            quiet=as_bool(quiet, "quiet"),
            solver_args={k: str(v) for k, v in solver_args.items()},
        )
        with render.BenchmarkProgress(opts.quiet) as progress:
            summary = run_benchmark(opts, progress.update, progress.start)
        render.benchmark_summary(summary)
        if summary.count("error"):
            raise SystemExit(3)


class EvaluationCommands:
    """Tabulate and inspect recorded evaluations."""

    @command
    def table(
        self,
        all_key_columns: object = False,
        all_metrics: object = False,
        num_columns: object = 6,
        metric_name_max_length: object = 30,
        benchmark: object = "",
        model: object = "",
        namespace: object = "",
        format: object = "table",
        all_versions: object = False,
    ) -> None:
        """Pivot evaluations: rows are model/agent/..., columns are metrics."""
        from evaluation.table import TableOptions, build_table, render_table

        opts = TableOptions(
            all_key_columns=as_bool(all_key_columns, "all_key_columns"),
            all_metrics=as_bool(all_metrics, "all_metrics"),
            num_columns=as_int(num_columns, "num_columns", 1),
            metric_name_max_length=as_int(metric_name_max_length, "metric_name_max_length", 4),
            benchmark=as_str(benchmark, "benchmark"),
            model=as_str(model, "model"),
            namespace=as_str(namespace, "namespace"),
            format=as_str(format, "format"),
            all_versions=as_bool(all_versions, "all_versions"),
        )
        render_table(build_table(_registry(), opts), opts)

    @command
    def read_solutions(self, entry: str, status: object = "", verbose: object = False) -> None:
        """Show per-datum results of evaluation ENTRY; --status=passed|failed|error filters."""
        from evaluation.solutions import read_solutions, render_solutions

        rows = read_solutions(_registry(), entry, as_str(status, "status"))
        render_solutions(rows, as_bool(verbose, "verbose"))

    @command
    def report(self, html: str = "evaluations.html", benchmark: object = "", metric: object = "") -> None:
        """Write a static HTML page with the evaluation table and a bar chart of the top metric."""
        from evaluation.report import write_report

        path = write_report(_registry(), as_str(html, "html"), as_str(benchmark, "benchmark"), as_str(metric, "metric"))
        render.message(f"wrote {path}")


class CLI:
    """nearai: a registry of datasets/agents/solvers/evaluations and a cached benchmark runner."""

    def __init__(self) -> None:
        self.registry = RegistryCommands()
        self.benchmark = BenchmarkCommands()
        self.evaluation = EvaluationCommands()


def _precheck(argv: list[str]) -> None:
    """Reject unknown flags before anything runs (fire would run the command first and complain after)."""
    groups = {"registry": RegistryCommands, "benchmark": BenchmarkCommands, "evaluation": EvaluationCommands}
    if len(argv) < 2 or argv[0] not in groups or argv[1].startswith("-"):
        return
    fn = getattr(groups[argv[0]], argv[1], None)
    if fn is None or argv[1].startswith("_"):
        raise UsageError(f"unknown command `nearai {argv[0]} {argv[1]}`", f"see `nearai {argv[0]} --help`")
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    names = set(sig.parameters) - {"self"}
    for tok in argv[2:]:
        if tok == "--":
            break
        if not tok.startswith("--") or tok in ("--help", "--helpfull"):
            continue
        key = tok[2:].split("=", 1)[0].replace("-", "_")
        if key in names or (key.startswith("no") and key[2:] in names):
            continue
        raise UsageError(
            f"unknown flag --{key} for `nearai {argv[0]} {argv[1]}`",
            f"valid flags: {', '.join('--' + n for n in sorted(names))}",
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("PAGER", "cat")
    try:
        _precheck(args)
        fire.Fire(CLI(), command=args, name="nearai")
        return 0
    except NearaiError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except fire.core.FireExit as e:
        return int(e.code or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # last resort: one line, not a traceback
        if os.environ.get("NEARAI_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (set NEARAI_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main())
