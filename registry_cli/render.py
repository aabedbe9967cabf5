"""Rich rendering of library results. Kept apart so the library never prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from registry_cli.registry import DownloadResult, EntryInfo, UploadResult


def console(stderr: bool = False) -> "Console":
    import os
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))
    return Console(stderr=stderr, highlight=False, width=width)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def upload(r: "UploadResult") -> None:
    c = console()
    if r.bumped_from:
        c.print(f"version {r.bumped_from} existed; bumped to {r.info.version} (metadata.json updated)")
    c.print(
        f"uploaded {r.info.entry}: {r.files_total} files, {r.files_uploaded} new "
        f"({human_size(r.bytes_uploaded)} transferred), manifest {r.info.manifest_hash[:12]}"
    )


def download(r: "DownloadResult") -> None:
    c = console()
    c.print(
        f"{r.info.entry} -> {r.path}: {r.files_downloaded} files downloaded "
        f"({human_size(r.bytes_downloaded)}), {r.files_skipped} already present"
    )


def info(i: "EntryInfo") -> None:
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


def entry_list(entries: list["EntryInfo"], offset: int, total_found: int) -> None:
    from rich.table import Table

    c = console()
    t = Table("entry", "category", "description", "tags")
    for e in entries:
        t.add_row(e.entry, e.category, str(e.metadata.get("description", "")), ", ".join(e.metadata.get("tags") or []))
    c.print(t)
    if total_found > len(entries):
        shown = f"{offset + 1}-{offset + len(entries)}" if entries else "none"
        c.print(f"showing {shown} of {total_found}; use --total and --offset to page")


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

    def __enter__(self) -> "BenchmarkProgress":
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
        self.errors += outcome.status == "error"
        self.cost += float(outcome.result.get("usage", {}).get("cost", 0) or 0)
        if self._progress is not None and self._task is not None:
            stats = f"score {self.passed}/{self.done} ({100 * self.passed / self.done:.1f}%)  errors {self.errors}  ${self.cost:.4f}"
            self._progress.update(self._task, advance=1, stats=stats)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def benchmark_summary(s: Any) -> None:
    c = console()
    m = s.metrics
    errors = [o for o in s.outcomes if o.status == "error"]
    for o in errors[:5]:
        c.print(f"error on datum {o.index} (repeat {o.repeat}): {o.error}", markup=False)
    if len(errors) > 5:
        c.print(f"... and {len(errors) - 5} more errors", markup=False)
    extra = "".join(f", {k}={m[k]:.4f}" for k in m if k.startswith("pass@"))
    c.print(f"{s.total} results: {s.cached} cached, {s.total - s.cached} computed in {s.duration_s:.2f}s; "
            f"tokens {int(s.usage_total('prompt_tokens'))}+{int(s.usage_total('completion_tokens'))}, "
            f"cost ${s.usage_total('cost'):.4f}{extra}", markup=False)
    line = f"Final score: {s.count('passed')}/{s.total} - {100 * m['score']:.2f}%"
    if errors:
        line += f" ({len(errors)} errors, not cached: rerun to retry them)"
    c.print(line, markup=False)
    if s.recorded_entry:
        c.print(f"recorded evaluation {s.recorded_entry}", markup=False)
