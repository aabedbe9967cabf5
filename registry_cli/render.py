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
