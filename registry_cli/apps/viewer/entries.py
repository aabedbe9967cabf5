"""Registry entries for the viewer: a filtered page of them, one entry's metadata, versions and files, and a
file's text. A file is fetched (verified) into a scratch folder and read as bytes; nothing in it is run."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from registry_cli.core.registry import EntryInfo, Registry
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.errors import EntryNotFoundError

PAGE_ENTRIES = 100
FILE_SHOWN_MAX = 256 * 1024  # a file is shown up to this size (then cut, with a note)
FILE_FETCHED_MAX = 16 * 2**20  # larger files are listed, not shown: `nearai registry download` fetches them


@dataclass
class EntryPage:
    entries: list[EntryInfo]
    total: int
    page: int
    pages: int
    categories: list[str]


def entry_page(registry: Registry, category: str = "", text: str = "", page: int = 1) -> EntryPage:
    """The latest version of each entry (hidden ones left out), of ``category``, whose name holds ``text``."""
    listed = registry.list_entries(show_latest_version=True)
    categories = sorted({e.category for e in listed if e.category})
    chosen = [e for e in listed if (not category or e.category == category)
              and (not text or text.lower() in f"{e.namespace}/{e.name}".lower())]
    pages = max(1, math.ceil(len(chosen) / PAGE_ENTRIES))
    page = min(max(1, page), pages)
    return EntryPage(chosen[(page - 1) * PAGE_ENTRIES:page * PAGE_ENTRIES], len(chosen), page, pages, categories)


def entry_view(registry: Registry, entry: str) -> tuple[EntryInfo, list[str]]:
    """An entry and every version of it."""
    info = registry.resolve(entry)
    return info, registry.versions(info.namespace, info.name)


def entry_file(registry: Registry, entry: str, path: str) -> tuple[str, str]:
    """A file of ``entry`` as text, and a note when it is not shown whole ("" when it is)."""
    info = registry.resolve(entry)
    found = next((f for f in info.manifest.files if f.path == path), None)
    if found is None:
        raise EntryNotFoundError(f"{info.entry} has no file {path!r}", "pick one from the entry's file list")
    if found.size > FILE_FETCHED_MAX:
        return "", f"{found.size:,} bytes: too large to show here (`nearai registry download {info.entry}`)"
    scratch = Path(tempfile.mkdtemp(prefix="view-", dir=scratch_root()))
    try:
        registry.fetch_blob(found.sha256, scratch / "file")
        return text_head(scratch / "file", found.size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def text_head(path: Path, size: int) -> tuple[str, str]:
    """A file of ``size`` bytes as text, up to FILE_SHOWN_MAX, and a note saying so when it was cut ("" when
    whole)."""
    with path.open("rb") as f:
        data = f.read(FILE_SHOWN_MAX + 1)
    note = f"the first {FILE_SHOWN_MAX // 1024} KiB of {size:,} bytes" if len(data) > FILE_SHOWN_MAX else ""
    return data[:FILE_SHOWN_MAX].decode("utf-8", "replace"), note
