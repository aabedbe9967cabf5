"""`nearai` command line: each command parses its arguments, calls one library function and renders the result.

Flags are declared once, by each command's annotated signature and docstring (or, for `benchmark run`, by
`RunParams`); the same declaration converts the values, checks them before anything runs, and writes `--help`.
Heavy libraries (boto3, datasets, litellm) are imported only inside the commands that use them.
"""

from __future__ import annotations

import difflib
import errno
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import fire
from fire.decorators import SetParseFn

from registry_cli.core import env
from registry_cli.core.flags import Flag, as_bool, as_list, convert, flags_from_dataclass, flags_from_signature, summary
from registry_cli.errors import NearaiError, UsageError
from registry_cli.shell import render

F = TypeVar("F", bound=Callable[..., Any])
HELP_FLAGS = ("--help", "-h", "--helpfull")


def run_flags() -> list[Flag]:
    from registry_cli.engine.planning.params import RunParams, run_fields

    names = [f.name for f in run_fields() if f.name not in ("dataset", "solver_strategy")]
    return flags_from_dataclass(RunParams, names)


def declared_flags(fn: Callable[..., Any]) -> list[Flag]:
    """The flags of a command: its signature's, or those named by its ``flags_from`` attribute."""
    own = flags_from_signature(fn)
    extra: Callable[[], list[Flag]] | None = getattr(fn, "flags_from", None)
    return own + (extra() if extra else [])


def command(fn: F) -> F:
    """Every value reaches the command as a string, converted here by the declared flag types."""

    @functools.wraps(fn)
    def wrapper(self: object, *args: object, **kwargs: object) -> Any:
        flags = {f.name: f for f in declared_flags(wrapper)}
        values: dict[str, Any] = dict(zip(flags, args))  # fire passes positionals in signature order
        values.update(kwargs)
        converted = {n: convert(flags[n], v) if n in flags else str(v) for n, v in values.items()}
        return fn(self, **converted)

    return SetParseFn(str)(wrapper)  # type: ignore[no-any-return]


def _registry() -> Any:
    from registry_cli.core.registry import Registry

    return Registry()


class RegistryCommands:
    """Publish, find and fetch versioned entries (datasets, agents, solvers, evaluations)."""

    @command
    def upload(self, path: str, bump: bool = False, minor_bump: bool = False, major_bump: bool = False) -> None:
        """Publish the folder PATH (with metadata.json) as namespace/name/version.

        Args:
            path: folder holding metadata.json and the files to publish
            bump: the version exists already: publish the next patch version
            minor_bump: the version exists already: publish the next minor version
            major_bump: the version exists already: publish the next major version
        """
        chosen = [n for n, v in (("patch", bump), ("minor", minor_bump), ("major", major_bump)) if v]
        if len(chosen) > 1:
            raise UsageError("pass only one of --bump, --minor_bump, --major_bump")
        render.upload(_registry().upload(path, chosen[0] if chosen else None))

    @command
    def download(self, entry: str, force: bool = False) -> None:
        """Download ENTRY into ~/.nearai/registry, verifying every file.

        Args:
            entry: namespace/name[/version|latest]
            force: download every file again
        """
        render.download(_registry().download(entry, force))

    @command
    def gc(self, dry_run: bool = False, grace: str = "24h", verify: bool = True) -> None:
        """Remove manifests and blobs no published version needs (left by killed or raced uploads) and abort
        unfinished uploads, keeping anything younger than the grace period (an upload in progress); remove every
        blob whose bytes do not match its name, whatever its age.

        Args:
            dry_run: only list what would be removed
            grace: keep unreachable objects younger than this: 24h, 30m, 90s
            verify: read every blob and check it against its name (false: skip that read)
        """
        from registry_cli.core.gc import collect_garbage, parse_grace

        render.gc_report(collect_garbage(_registry(), parse_grace(grace), dry_run, as_bool(verify, "verify")))

    @command
    def info(self, entry: str) -> None:
        """Show metadata and files of ENTRY.

        Args:
            entry: namespace/name[/version|latest]
        """
        render.info(_registry().resolve(entry))

    @command
    def list(self, namespace: str = "", category: str = "", tags: str = "", total: int = 32, offset: int = 0,
             show_all: bool = False, show_latest_version: bool = True) -> None:
        """List entries (the latest version of each unless --noshow_latest_version).

        Args:
            namespace: only this namespace
            category: only this category (dataset, agent, solver, evaluation, model)
            tags: only entries with all these comma-separated tags (any case)
            total: how many rows to show
            offset: rows to skip
            show_all: include hidden entries and evaluations of hidden agents or models
            show_latest_version: one row per entry (false: every version)
        """
        if total < 1 or offset < 0:
            raise UsageError("--total must be >= 1 and --offset >= 0", "e.g. --total=32 --offset=0")
        registry = _registry()
        found = registry.list_entries(namespace=namespace, category=category, tags=as_list(tags),
                                      show_all=show_all, show_latest_version=show_latest_version)
        render.entry_list(found[offset : offset + total], offset, len(found))
        render.skipped(registry.skipped)

    @command
    def metadata_template(self, path: str = ".", category: str = "", description: str = "") -> None:
        """Write a metadata.json template into PATH.

        Args:
            path: the folder to describe
            category: dataset, agent, solver, evaluation or model
            description: one line about the entry
        """
        render.message(f"wrote {_registry().metadata_template(path, category, description)}")

    @command
    def update(self, target: str = ".", show_entry: str = "", description: str = "", tags: str = "") -> None:
        """Change a published version's description, tags, details, category or visibility.

        Args:
            target: a folder whose metadata.json names the version, or an entry namespace/name/version
            show_entry: true or false: show or hide the entry (hidden entries need --show_all)
            description: a new description
            tags: new comma-separated tags
        """
        changes: dict[str, Any] = {}
        if show_entry:
            changes["show_entry"] = as_bool(show_entry, "show_entry")
        if description:
            changes["description"] = description
        if tags:
            changes["tags"] = as_list(tags)
        info = _registry().update(target, changes)
        render.message(f"updated metadata of {info.entry}")


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
                           **{k: v for k, v in flags.items() if k in known})
        with render.BenchmarkProgress(params.quiet) as progress:
            run = run_benchmark(params, progress.start, None if params.quiet else progress.update)
        render.benchmark_summary(run)
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
        registry = _registry()
        rows = list_benchmarks(registry, namespace, benchmark)
        render.benchmark_runs(rows[:total], len(rows))
        render.skipped(registry.skipped)


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
        registry = _registry()
        render.evaluation_table(build_table(registry, opts), format, num_columns, metric_name_max_length)
        render.skipped(registry.skipped)

    @command
    def read_solutions(self, entry: str, status: str = "", verbose: bool = False) -> None:
        """Show the per-datum results of evaluation ENTRY.

        Args:
            entry: the evaluation entry, namespace/name[/version|latest]
            status: only passed, failed or error
            verbose: every field of every result as JSON, with the console log of kept run folders
        """
        from evaluation.solutions import read_solutions

        render.solutions(read_solutions(_registry(), entry, status, with_runs=verbose), verbose)

    @command
    def report(self, html: str = "evaluations.html", benchmark: str = "", metric: str = "") -> None:
        """Write a static HTML page with the evaluation table and a bar chart of one metric.

        Args:
            html: the file to write
            benchmark: the benchmark charted (default: the one with most evaluations)
            metric: the metric charted (default: score)
        """
        from evaluation.report import write_report

        registry = _registry()
        render.message(f"wrote {write_report(registry, html, benchmark, metric)}")
        render.skipped(registry.skipped)


class ScenarioCommands:
    """AutoGenBench scenarios: tabulate the runs of `benchmark run SCENARIOS ScenarioSolver`."""

    @command
    def tabulate(self, results_dir: str = "Results", format: str = "table") -> None:
        """Per task one column per trial, then successes, failures, errors, missing, success rate and pass@k.

        Args:
            results_dir: the folder holding <scenario>/<id>/<repeat>/ run folders
            format: table, csv or json
        """
        from evaluation.tabulate import tabulate

        if format not in ("table", "csv", "json"):
            raise UsageError(f"unknown --format {format!r}", "choose one of: table, csv, json")
        render.tabulation(tabulate(results_dir), format)


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

        progress = render_suites.SuiteProgress(suite.name, verbose)
        try:
            run = run_suite(suite, record, parallel, force, ray_address, progress.events())
        finally:
            progress.end()
        render_suites.suite_summary(summarize(run.folder), "table")
        render_suites.suite_finished(run)
        if run.interrupted:
            raise SystemExit(130)
        if run.status != "completed":
            raise SystemExit(3)

    @command
    def summarize(self, name: str, latest: bool = False, run: str = "", format: str = "table") -> None:
        """Per cell n, score, 95% CI, pass@k, tokens, cost, time; per task rollouts; paired differences.

        Args:
            name: the suite's name
            latest: the latest run (the default)
            run: this run (its UTC stamp, see `nearai suite list`)
            format: table, csv, json or markdown
        """
        from registry_cli.apps.suites.summary import find_run, summarize
        from registry_cli.core.config import load_config
        from registry_cli.shell import render_suites

        if format not in ("table", "csv", "json", "markdown"):
            raise UsageError(f"unknown --format {format!r}", "choose one of: table, csv, json, markdown")
        if latest and run:
            raise UsageError("pass --latest or --run STAMP, not both")
        render_suites.suite_summary(summarize(find_run(load_config().home, name, run)), format)

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
    def eval(self, name: str, latest: bool = False, run: str = "") -> None:
        """Grade a finished run again with the current solvers, from its stored model outputs (no model calls).

        Args:
            name: the suite's name
            latest: the latest run (the default)
            run: this run (its UTC stamp)
        """
        from registry_cli.apps.suites.regrade import regrade
        from registry_cli.apps.suites.summary import find_run
        from registry_cli.shell import render_suites

        if latest and run:
            raise UsageError("pass --latest or --run STAMP, not both")
        registry = _registry()
        render_suites.regraded(regrade(registry, find_run(registry.config.home, name, run)))


class AgentCommands:
    """Create, try and publish agents (upstream nearai's agent.py format runs unchanged)."""

    @command
    def create(self, path: str, name: str = "", description: str = "", model: str = "") -> None:
        """Start a new agent in the folder PATH: metadata.json and an agent.py to edit.

        Args:
            path: the new agent's folder (absent or empty)
            name: the agent's name (default: the folder's)
            description: one line about the agent
            model: default model, used when a run gives no --model
        """
        from registry_cli.apps.agentdev import create_agent

        folder = create_agent(path, name, description, model)
        render.message(f"created agent {folder}; try it with: nearai agent task {folder} \"your task\" --model=MODEL")

    @command
    def upload(self, path: str = ".", bump: bool = False) -> None:
        """Publish the agent folder PATH (agent.py + metadata.json) to the registry.

        Args:
            path: the agent's folder
            bump: the version exists already: publish the next patch version
        """
        from registry_cli.apps.agentdev import upload_agent

        render.upload(upload_agent(_registry(), path, "patch" if bump else None))

    @command
    def task(self, agent: str, task: str, model: str = "", api_base: str = "", sandbox: str = "auto",
             timeout: float = 120.0, verbose: bool = False) -> None:
        """Run AGENT once on TASK in the sandbox and print its answer.

        Args:
            agent: agent folder or registry entry
            task: the task text (the agent's first user message)
            model: model under test (default: the agent's details.agent.defaults)
            api_base: OpenAI-compatible endpoint for the model
            sandbox: auto, bwrap, docker, podman or native
            timeout: seconds allowed
            verbose: also show the agent's messages, system logs and prints
        """
        from registry_cli.apps.agentdev import run_task
        from registry_cli.errors import AgentError

        answer = run_task(_registry(), agent, task, model, api_base, sandbox, timeout)
        render.agent_answer(answer, verbose)
        if answer.error:
            raise AgentError(answer.error, "rerun with --verbose to see its log")


class ConfigCommands:
    """Show and change settings (store, namespace, sandbox, ...) in ~/.nearai or ./.nearai."""

    @command
    def set(self, key: str, value: str, local: bool = False) -> None:
        """Set KEY to VALUE in $NEARAI_HOME/config.json (or ./.nearai/config.json with --local).

        Args:
            key: store, s3_endpoint_url, namespace, sandbox or s3_max_attempts
            value: the new value ("" removes the key)
            local: write this project's ./.nearai/config.json instead
        """
        from registry_cli.core.config import set_value

        path = set_value(key, value, local)
        render.message(f"{key} = {value} in {path}" if value else f"removed {key} from {path}")

    @command
    def get(self, key: str) -> None:
        """Print the value of KEY and where it comes from.

        Args:
            key: store, s3_endpoint_url, namespace, sandbox or s3_max_attempts
        """
        from registry_cli.core.config import check_key, settings

        check_key(key)
        found = settings().get(key)
        render.message(f"{key} = {found.value}  ({found.source})" if found else f"{key} is not set")

    @command
    def show(self) -> None:
        """Every setting in effect and where it comes from."""
        from registry_cli.core.config import effective_settings, home_dir

        render.settings(effective_settings(), str(home_dir()))


GROUPS: dict[str, type] = {"registry": RegistryCommands, "benchmark": BenchmarkCommands,
                           "evaluation": EvaluationCommands, "suite": SuiteCommands, "scenario": ScenarioCommands,
                           "agent": AgentCommands, "config": ConfigCommands}
TITLE = "nearai: a registry of datasets, agents, solvers and evaluations, and a cached benchmark runner."


class TopCommands:
    """Commands without a group."""

    @command
    def version(self) -> None:
        """Print the installed version."""
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            render.message(f"nearai {installed('nearai-bench')}")
        except PackageNotFoundError:
            render.message("nearai (not installed: running from a source tree)")

    @command
    def submit(self, command: str = "", name: str = "", nodes: int = 1, cluster: str = "", status: str = "",
               logs: str = "") -> None:
        """Run COMMAND as a Ray job on a cluster with this folder as its working directory; or follow a job.

        Args:
            command: the shell command the job runs, e.g. "nearai benchmark run ..."
            name: the experiment's name (the job id starts with it)
            nodes: alive nodes the cluster must have
            cluster: the Ray dashboard address (default: $RAY_API_SERVER_ADDRESS or http://127.0.0.1:8265)
            status: show the status of this job id instead of submitting
            logs: print the logs of this job id instead of submitting
        """
        from registry_cli.apps import jobs

        if status or logs:
            if command or name:
                raise UsageError("--status and --logs follow a job: drop --command and --name")
            if status:
                render.job(jobs.job_status(status, cluster))
            if logs:
                render.raw(jobs.job_logs(logs, cluster))
            return
        if not command or not name:
            raise UsageError("nearai submit needs --command and --name",
                             'e.g. nearai submit --command "nearai benchmark run ..." --name=my-run')
        render.job(jobs.submit(command, name, nodes, cluster))


TOP: dict[str, Callable[..., Any]] = {"version": TopCommands.version, "submit": TopCommands.submit}


class CLI(TopCommands):
    def __init__(self) -> None:
        self.registry = RegistryCommands()
        self.benchmark = BenchmarkCommands()
        self.evaluation = EvaluationCommands()
        self.suite = SuiteCommands()
        self.scenario = ScenarioCommands()
        self.agent = AgentCommands()
        self.config = ConfigCommands()


def commands_of(group: type) -> dict[str, Callable[..., Any]]:
    return {n: f for n, f in vars(group).items() if not n.startswith("_") and callable(f)}


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3)
    return f"did you mean {' or '.join(close)}?" if close else f"choose one of: {', '.join(choices)}"


def flag_text(f: Flag) -> tuple[str, str]:
    if f.kind is bool:
        name = f"--{f.name}" if f.default is not True else f"--[no]{f.name}"
    else:
        name = f"--{f.name}={f.type_name.upper()}"
    default = "" if f.required or f.default in ("", None) or (f.kind is bool and not f.default) else f" (default: {f.default})"
    return name, f"{f.help}{default}"


def command_help(words: list[str], fn: Callable[..., Any]) -> None:
    flags = declared_flags(fn)
    positional = [f for f in flags_from_signature(fn) if f.required]
    usage = " ".join(["nearai", *words, *(f.name.upper() for f in positional), "[--FLAGS]"])
    rows = [(f.name.upper(), f.help) for f in positional]
    rows += [flag_text(f) for f in flags if not f.required]
    if getattr(fn, "flags_from", None):
        rows.append(("--NAME=VALUE", "any other flag is an argument of the solver's constructor"))
    render.help_text(summary(fn), usage, rows)


def show_help(args: list[str]) -> None:
    words = [a for a in args if not a.startswith("-")]
    if not words:
        rows = [(n, (inspect.getdoc(g) or "").splitlines()[0]) for n, g in GROUPS.items()]
        rows += [(n, summary(f)) for n, f in TOP.items()]
        render.help_text(TITLE, "nearai GROUP COMMAND [ARGS] [--FLAGS]   (nearai GROUP --help for its commands)", rows)
        return
    if words[0] in TOP:
        command_help(words[:1], TOP[words[0]])
        return
    group = GROUPS[words[0]]
    commands = commands_of(group)
    if len(words) == 1:
        render.help_text((inspect.getdoc(group) or "").splitlines()[0], f"nearai {words[0]} COMMAND [ARGS] [--FLAGS]",
                         [(n, summary(f)) for n, f in commands.items()])
        return
    command_help(words[:2], commands[words[1]])


def precheck(argv: list[str]) -> bool:
    """Check the group, command and flag names before anything runs. True when help was asked for."""
    if not argv or argv[0] in HELP_FLAGS:
        return True
    if argv[0] in TOP:
        return any(a in HELP_FLAGS for a in argv[1:]) or check_flags(argv[:1], TOP[argv[0]], argv[1:])
    if argv[0] not in GROUPS:
        raise UsageError(f"unknown command group {argv[0]!r}", _close(argv[0], [*GROUPS, *TOP]))
    commands = commands_of(GROUPS[argv[0]])
    if len(argv) == 1 or argv[1] in HELP_FLAGS:
        return True
    if argv[1] not in commands:
        raise UsageError(f"unknown command `nearai {argv[0]} {argv[1]}`", _close(argv[1], list(commands)))
    if any(a in HELP_FLAGS for a in argv[2:]):
        return True
    return check_flags(argv[:2], commands[argv[1]], argv[2:])


def check_flags(words: list[str], fn: Callable[..., Any], rest: list[str]) -> bool:
    """Unknown flags and missing positionals of `nearai WORDS REST` are one-line errors. Returns False (no help)."""
    label = " ".join(["nearai", *words])
    open_flags = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    names = [f.name for f in declared_flags(fn)]
    given: set[str] = set()
    positional = 0
    tokens = iter(rest)
    for tok in tokens:
        if tok == "--":
            break
        if not tok.startswith("--"):
            positional += 1
            continue
        key = tok[2:].split("=", 1)[0].replace("-", "_")
        given.add(key)
        if "=" not in tok and not tok.startswith("--no"):  # `--flag value`: the next token is its value
            following = next(tokens, "--")
            if following.startswith("--"):
                tokens = iter([following, *tokens])
        if key in names or (key.startswith("no") and key[2:] in names) or open_flags:
            continue
        raise UsageError(f"unknown flag --{key} for `{label}`", _close(key, names))
    required = [f.name for f in flags_from_signature(fn) if f.required and f.name not in given]
    if positional < len(required):
        missing = " ".join(n.upper() for n in required[positional:])
        usage = " ".join([label, *(n.upper() for n in required)])
        raise UsageError(f"missing {missing}", f"usage: {usage} [--FLAGS]; see --help")
    return False


DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EFBIG: "file too large for the file system"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    args = [{"-v": "--verbose=1", "-vv": "--verbose=2"}.get(a, a) for a in args]
    env.default("PAGER", "cat")
    try:
        if precheck(args):
            show_help(args)
            return 0
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
        full = type(e).__name__ == "OperationalError" and ("full" in str(e) or "disk I/O" in str(e))  # SQLite
        if full or (isinstance(e, OSError) and e.errno in DISK_ERRORS):
            what = DISK_ERRORS.get(e.errno or 0, "") if isinstance(e, OSError) else f"the disk refused a write ({e})"
            where = f" ({e.filename})" if isinstance(e, OSError) and e.filename else ""
            print(f"error: {what}{where} (free space or fix the folder, then run the command again: "
                  "finished work is kept)", file=sys.stderr)
            return 1
        if env.debug():
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (set NEARAI_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main())
