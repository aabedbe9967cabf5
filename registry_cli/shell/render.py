"""Rich rendering of library results. Kept apart so the library never prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry_cli.core import env
from registry_cli.engine.execution.results import EMPTY, NOT_VERDICTS

if TYPE_CHECKING:
    from rich.console import Console

    from evaluation.runs import BenchmarkRow
    from registry_cli.apps.agentdev import AgentAnswer
    from registry_cli.apps.benchmark import BenchmarkRun
    from registry_cli.apps.jobs import JobInfo
    from registry_cli.core.gc import GcReport
    from registry_cli.core.registry import DownloadResult, EntryInfo, UploadResult


def console(stderr: bool = False) -> Console:
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else env.columns(160)
    return Console(stderr=stderr, highlight=False, width=width)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def upload(r: UploadResult) -> None:
    c = console()
    if r.unchanged:
        c.print(f"{r.info.entry} is already published with these {r.files_total} files and this metadata: nothing to do")
        return
    if r.bumped_from:
        c.print(f"version {r.bumped_from} existed; bumped to {r.info.version} (metadata.json updated)")
    c.print(
        f"uploaded {r.info.entry}: {r.files_total} files, {r.files_uploaded} new "
        f"({human_size(r.bytes_uploaded)} transferred), manifest {r.info.manifest_hash[:12]}"
    )


def download(r: DownloadResult) -> None:
    c = console()
    c.print(
        f"{r.info.entry} -> {r.path}: {r.files_downloaded} files downloaded "
        f"({human_size(r.bytes_downloaded)}), {r.files_skipped} already present"
    )


def info(i: EntryInfo) -> None:
    import json

    from rich.table import Table

    c = console()
    c.print(f"[bold]{i.entry}[/bold]  manifest sha256:{i.manifest_hash}")
    c.print(f"created {i.manifest.created_at}, {len(i.manifest.files)} files, {human_size(i.manifest.total_size)}")
    c.print(json.dumps(i.metadata, indent=2, ensure_ascii=False), markup=False)
    t = Table("path", "size", "sha256")
    for f in i.manifest.files:
        t.add_row(f.path, human_size(f.size), f.sha256[:16])
    c.print(t)


NARROWEST = 10  # the least a column that gives way keeps, in cells


def named_rows(header: list[str], rows: list[list[str]], names: tuple[int, ...], right_from: int | None = None) -> None:
    """A table whose name columns (``names``: entries, models, agents) show whole, never cut or wrapped, so that
    every row can be told apart and its names copied; the other columns give way and wrap. When the names alone
    would not leave the others room, each row is listed instead: its names on one line, the rest below."""
    import textwrap

    from rich.cells import cell_len
    from rich.table import Table

    c = console()

    def widest(i: int) -> int:
        return max([cell_len(header[i]), *(cell_len(r[i]) for r in rows)])

    others = [i for i in range(len(header)) if i not in names]
    needed = sum(widest(i) for i in names) + sum(min(widest(i), NARROWEST) for i in others) + 3 * len(header) + 1
    if rows and needed > c.width:
        for r in rows:
            c.print("  ".join(r[i] for i in names if r[i]), markup=False, soft_wrap=True)
            rest = [f"{header[i]}: {r[i]}" for i in others if r[i]]
            if rest:
                c.print(textwrap.fill(" · ".join(rest), c.width, initial_indent="    ", subsequent_indent="    ",
                                      break_on_hyphens=False), markup=False, soft_wrap=True)
        return
    t = Table(*header)
    for i, column in enumerate(t.columns):
        if i in names:
            column.no_wrap, column.min_width = True, widest(i)
        else:
            column.overflow = "fold"
        if right_from is not None and i >= right_from:
            column.justify = "right"
    for r in rows:
        t.add_row(*r)
    c.print(t)


def entry_list(entries: list[EntryInfo], offset: int, total_found: int) -> None:
    c = console()
    rows = [[e.entry, e.category or "", str(e.metadata.get("description", "")), ", ".join(e.metadata.get("tags") or [])]
            for e in entries]
    named_rows(["entry", "category", "description", "tags"], rows, (0,))
    if total_found > len(entries):
        shown = f"{offset + 1}-{offset + len(entries)}" if entries else "none"
        c.print(f"showing {shown} of {total_found}; use --total and --offset to page")


def skipped(problems: list[str]) -> None:
    """Entries a listing left out because the store holds them damaged: one warning line on stderr."""
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        console(stderr=True).print(f"warning: {len(problems)} damaged objects in the store were skipped: {shown}",
                                   markup=False, soft_wrap=True)


def gc_report(r: GcReport) -> None:
    c = console()
    verb = "would remove" if r.dry_run else "removed"
    for key in r.removed[:20] if r.dry_run else []:
        c.print(f"  {key}", markup=False)
    for key in r.corrupt:
        c.print(f"  {key}: its bytes do not match its name ({verb})", markup=False)
    c.print(f"gc: {verb} {len(r.removed)} unreachable objects ({human_size(r.removed_bytes)}) and "
            f"{'would abort' if r.dry_run else 'aborted'} {len(r.aborted)} unfinished uploads; kept {r.kept} in use "
            f"and {r.young} unreachable ones younger than the grace period"
            + (f"; {len(r.corrupt)} corrupt blobs" if r.corrupt else "")
            + (f"; {r.unverified} blobs could not be verified (altered in transit)" if r.unverified else ""),
            markup=False)


def message(text: str) -> None:
    console().print(text, markup=False)


def kv(rows: dict[str, Any]) -> None:
    c = console()
    for k, v in rows.items():
        c.print(f"{k}: {v}", markup=False)


class BenchmarkProgress:
    """rich progress bar with the running score, errors and cost; silent with --quiet."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.passed = self.errors = self.done = 0
        self.cost = 0.0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> BenchmarkProgress:
        return self

    def start(self, total: int, cached: int) -> None:
        """Called once the run is validated and planned, so input errors never leave a half-drawn bar."""
        if self.quiet:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]benchmark"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), console=console(stderr=True), transient=False, refresh_per_second=8,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task("run", total=total, stats="")
        if cached:
            self._progress.console.print(f"{cached}/{total} results cached")

    def update(self, outcome: Any) -> None:
        self.done += 1
        self.passed += outcome.status == "passed"
        self.errors += outcome.status in NOT_VERDICTS
        self.cost += float(outcome.result.get("usage", {}).get("cost", 0) or 0)
        if self._progress is not None and self._task is not None:
            stats = f"score {self.passed}/{self.done} ({100 * self.passed / self.done:.1f}%)  errors {self.errors}  ${self.cost:.4f}"
            self._progress.update(self._task, advance=1, stats=stats)

    def finish(self, summary: Any) -> None:
        """A settled rerun reports no outcome one by one (see `execution.settled`): its totals fill the bar."""
        if self._progress is None or self._task is None or summary.settled is None or not summary.total:
            return
        passed, n = summary.count("passed"), summary.total
        stats = f"score {passed}/{n} ({100 * passed / n:.1f}%)  errors 0  ${summary.usage_total('cost'):.4f}"
        self._progress.update(self._task, completed=n, stats=stats)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def benchmark_summary(run: BenchmarkRun) -> None:
    c = console()
    for warning in run.plan.warnings:
        console(stderr=True).print(warning, markup=False)
    s = run.summary
    m = s.metrics
    errors = [o for o in s.outcomes if o.status in NOT_VERDICTS]
    for o in errors[:5]:
        c.print(f"{o.status} on datum {o.index} (repeat {o.repeat}): {o.error}", markup=False)
    if len(errors) > 5:
        c.print(f"... and {len(errors) - 5} more errors", markup=False)
    extra = "".join(f", {k}={m[k]:.4f}" for k in m if k.startswith("pass@"))
    c.print(f"{s.total} results: {s.cached} cached, {s.total - s.cached} computed in {s.duration_s:.2f}s; "
            f"tokens {int(s.usage_total('prompt_tokens'))}+{int(s.usage_total('completion_tokens'))}, "
            f"cost ${s.usage_total('cost'):.4f}{extra}", markup=False)
    if s.cache.not_shared:
        c.print(f"{s.cache.not_shared} results kept locally but not shared to the store ({s.cache.last_error}); "
                "they stay cached on this machine", markup=False)
    if s.cache.not_cached:
        c.print(f"{s.cache.not_cached} results could not be cached ({s.cache.last_error})", markup=False)
    selection = run.plan.data.selection.label
    line = f"Final score: {s.count('passed')}/{s.total} - {100 * m['score']:.2f}%"
    if selection:
        line += f" [{selection}]"
    if errors:
        empty = s.count(EMPTY)
        said = [f"{len(errors) - empty} errors" if len(errors) > empty else "", f"{empty} empty answers" if empty else ""]
        line += f" ({', '.join(x for x in said if x)}, not cached: rerun to retry them)"
    c.print(line, markup=False)
    standard = {"score", "stderr", "ci95_low", "ci95_high", "n", "passed", "failed", "errored", "empty"}
    own = [k for k in m if k not in standard and not k.startswith("pass@")]
    if own:  # the solver's own metrics (upstream's Custom scoring)
        c.print("metrics: " + ", ".join(f"{k}={m[k]:.4f}" for k in own), markup=False, soft_wrap=True)
    if run.recorded is not None:
        c.print(f"recorded evaluation {run.recorded.entry}", markup=False)


def view_link(url: str) -> None:
    """A running viewer's page for what the command just named, on stderr (stdout stays the command's output);
    nothing when no viewer runs."""
    if url:
        console(stderr=True).print(f"view: {url}", markup=False, soft_wrap=True)


def help_text(title: str, usage: str, rows: list[tuple[str, str]]) -> None:
    """Plain help: a title, a usage line, and aligned name / description rows."""
    import sys

    width = max((len(n) for n, _ in rows), default=0)
    lines = [title, "", f"usage: {usage}"]
    if rows:
        lines.append("")
        lines += [f"  {n.ljust(width)}  {d}".rstrip() for n, d in rows]
    sys.stdout.write("\n".join(lines) + "\n")


def benchmark_runs(rows: list[BenchmarkRow], found: int) -> None:
    from rich.table import Table

    c = console()
    t = Table("when", "namespace", "benchmark", "solver", "args", "model / agent", "score", "solved/total", "where")
    for r in rows:
        errored = f" ({r.errored} errors)" if r.errored else ""
        t.add_row(r.when[:19].replace("T", " "), r.namespace, r.benchmark, r.solver, r.args, r.agent or r.model,
                  f"{100 * r.score:.2f}%", f"{r.solved}/{r.total}{errored}", r.where)
    c.print(t)
    if found > len(rows):
        c.print(f"showing {len(rows)} of {found}; use --total to see more", markup=False)


def agent_answer(a: AgentAnswer, verbose: bool) -> None:
    c = console()
    if verbose:
        for m in a.trace.get("messages", []):
            c.print(f"[{m['role']}] {m['content']}", markup=False)
        for log in a.trace.get("logs", []):
            c.print(f"(system log, {log['level']}) {log['message']}", markup=False)
        if a.trace.get("stderr"):
            c.print("(agent output)\n" + a.trace["stderr"].rstrip(), markup=False)
        c.print(f"(model {a.model or 'none'}, sandbox {a.sandbox}, {a.usage.get('calls', 0)} model calls)", markup=False)
    if not a.error:
        c.print(a.output, markup=False, soft_wrap=True)  # never wrapped: the answer stays copyable


def settings(rows: list[tuple[str, str, str, str]], home: str) -> None:
    """One line a key: ``key = value  (where it comes from)  # meaning``; long paths never wrap."""
    import sys

    width = max(len(f"{k} = {v}") for k, v, _, _ in rows)
    lines = [f"NEARAI_HOME = {home}"]
    lines += [f"{f'{k} = {v}':<{width}}  ({source})  # {meaning}" for k, v, source, meaning in rows]
    sys.stdout.write("\n".join(lines) + "\n")


def job(j: JobInfo) -> None:
    c = console()
    c.print(f"job {j.job_id}: {j.status} on {j.cluster}", markup=False)
    if j.message:
        c.print(j.message, markup=False)
    if j.status == "PENDING":
        c.print(f"follow it: nearai submit --status {j.job_id}   |   nearai submit --logs {j.job_id}", markup=False)


def raw(text: str) -> None:
    import sys

    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
