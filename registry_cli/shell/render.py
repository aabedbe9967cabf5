"""Rich rendering of library results. Kept apart so the library never prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry_cli.core import env
from registry_cli.engine.execution.results import EMPTY, NOT_VERDICTS

if TYPE_CHECKING:
    from rich.console import Console

    from evaluation.runs import BenchmarkRow
    from evaluation.table import EvalTable
    from evaluation.tabulate import Tabulation
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


def entry_list(entries: list[EntryInfo], offset: int, total_found: int) -> None:
    from rich.table import Table

    c = console()
    t = Table("entry", "category", "description", "tags")
    for e in entries:
        t.add_row(e.entry, e.category, str(e.metadata.get("description", "")), ", ".join(e.metadata.get("tags") or []))
    c.print(t)
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
    if run.recorded is not None:
        c.print(f"recorded evaluation {run.recorded.entry}", markup=False)


def evaluation_table(t: EvalTable, fmt_name: str, num_columns: int, name_length: int) -> None:
    """table and markdown show ``num_columns`` metrics with names shortened; csv and json carry every column."""
    import csv
    import json
    import sys

    from evaluation.table import fmt, short

    if fmt_name == "json":
        rows = [dict(r, errored=e) if e else r for r, e in zip(t.rows, t.errored)]
        sys.stdout.write(json.dumps({"key_columns": t.key_columns, "metric_columns": t.metric_columns,
                                     "rows": rows}, indent=2) + "\n")
        return
    if fmt_name == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        every = t.key_columns + t.metric_columns
        w.writerow(every)
        w.writerows([r.get(c, "") for c in every] for r in t.rows)
        return
    columns = t.metric_columns[:num_columns]
    hidden = len(t.metric_columns) - len(columns)
    header = t.key_columns + [short(col, name_length) for col in columns]

    def cell(row: dict[str, Any], errored: dict[str, int], col: str) -> str:
        text = fmt(row.get(col), col)
        bench, _, metric = col.rpartition("/")
        return text + " !" if text and metric == "score" and errored.get(bench) else text

    body = [[str(r.get(k, "")) for k in t.key_columns] + [cell(r, e, col) for col in columns]
            for r, e in zip(t.rows, t.errored)]
    if fmt_name == "markdown":
        nk = len(t.key_columns)
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(v.ljust(widths[i]) if i < nk else v.rjust(widths[i])
                                     for i, v in enumerate(cells)) + " |"

        rule = "|" + "|".join(("-" * (w + 2)) if i < nk else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
        sys.stdout.write("\n".join([line(header), rule, *(line(b) for b in body)]) + "\n")
    elif len(body) > RICH_ROWS:
        sys.stdout.write(boxed(header, body, len(t.key_columns)))
    else:
        from rich.table import Table

        table = Table(*header)
        for i in range(len(t.key_columns), len(header)):
            table.columns[i].justify = "right"
        for b in body:
            table.add_row(*b)
        c = console()
        c.print(table)
        if not t.rows:
            c.print("no evaluations found; record one with `nearai benchmark run ... --record`")
    if any(t.errored):
        print("! some datums of this evaluation errored or got empty answers (counted as not passed); "
              "see --all_metrics", file=sys.stderr)
    if hidden:
        print(f"{hidden} more metric columns hidden; raise --num_columns or use --format=csv", file=sys.stderr)


RICH_ROWS = 500  # rich lays a table out in about 0.7 ms a row: longer ones are drawn by `boxed`


def boxed(header: list[str], body: list[list[str]], right_from: int) -> str:
    """A table drawn as rich draws one (heavy head, columns from ``right_from`` on right-aligned), without fitting
    it to the terminal: for tables of thousands of rows, which are scrolled or piped, not read at a glance."""
    from rich.cells import cell_len

    def size(text: str) -> int:  # terminal cells: wide characters take two
        return len(text) if text.isascii() else cell_len(text)

    widths = [max(size(h), *(size(b[i]) for b in body)) if body else size(h) for i, h in enumerate(header)]

    def line(cells: list[str], bar: str) -> str:
        padded = (" " * (w - size(v)) for v, w in zip(cells, widths))
        return bar + bar.join(f" {pad}{v} " if i >= right_from else f" {v}{pad} "
                              for i, (v, pad) in enumerate(zip(cells, padded))) + bar

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    lines = [rule("┏", "━", "┳", "┓"), line(header, "┃"), rule("┡", "━", "╇", "┩")]
    lines.extend(line(b, "│") for b in body)
    lines.append(rule("└", "─", "┴", "┘"))
    return "\n".join(lines) + "\n"


INPUT_FIELDS = ("input", "question", "text", "prompt", "task", "id", "task_id")  # a datum's most telling field


def solutions(rows: list[dict[str, Any]], verbose: bool) -> None:
    import json

    from rich.table import Table

    c = console()
    if verbose:
        for r in rows:
            c.print(json.dumps(r, indent=2, ensure_ascii=False), markup=False)
        return
    t = Table("datum", "repeat", "status", "input", "answer", "expected", "error")
    for r in rows:
        info = r.get("info") or {}
        given = r.get("input")
        shown = next((str(given[k]) for k in INPUT_FIELDS if isinstance(given, dict) and k in given), "")
        t.add_row(str(r.get("index")), str(r.get("repeat")), str(r.get("status")), shown.replace("\n", " ")[:40],
                  str(info.get("answer", info.get("result", "")))[:40], str(info.get("expected", ""))[:40],
                  str(r.get("error") or "")[:60])
    c.print(t)
    c.print(f"{len(rows)} results")


def tabulation(t: Tabulation, fmt_name: str) -> None:
    """Per task one column per trial, then per-trial totals and the summary."""
    import csv
    import io
    import json
    import sys

    header = ["task"] + [f"trial {r}" for r in range(t.trials)]
    rows = [[task, *t.grid[task]] for task in t.tasks]
    totals = [[status, *map(str, counts)] for status, counts in t.totals.items()]
    if fmt_name == "json":
        sys.stdout.write(json.dumps({"trials": t.trials, "tasks": t.grid, "totals": t.totals, "summary": t.summary},
                                    indent=2) + "\n")
        return
    if fmt_name == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows, *totals])
        sys.stdout.write(buf.getvalue())
        return
    from rich.table import Table

    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    table.add_section()
    for row in totals:
        table.add_row(*row)
    c = console()
    c.print(table)
    s = t.summary
    rate = f"success rate {100 * s['success_rate']:.2f}% (95% CI {100 * s['ci95_low']:.1f}-{100 * s['ci95_high']:.1f}%)"
    passes = ", ".join(f"{k}={v:.4f}" for k, v in s.items() if k.startswith("pass@"))
    c.print(f"{rate} over {s['successes'] + s['failures']:.0f} verdicts; {s['errors']:.0f} errors, "
            f"{s['missing']:.0f} missing; {passes}", markup=False)


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
        c.print(a.output, markup=False)


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
