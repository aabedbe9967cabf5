"""What the registry hands out: entries (`EntryInfo`, their metadata read lazily), upload and download results,
and the helpers its parts share (the files of a folder to publish, overlays, newest versions, hidden subjects)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from registry_cli.caches.bulk import collector_paused
from registry_cli.caches.catalog import MetadataLog, Reader, Row, summary
from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.names import (
    check_rel_path,
    version_key,
)
from registry_cli.errors import (
    IntegrityError,
    InvalidNameError,
)

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    from registry_cli.core.manifest import Manifest


DOWNLOAD_MARKER = ".nearai_download.json"


EXCLUDED_NAMES = frozenset({".git", "__pycache__", ".DS_Store", DOWNLOAD_MARKER, ".ipynb_checkpoints"})


UPDATABLE_FIELDS = ("category", "description", "tags", "details", "show_entry")


T = TypeVar("T")


R = TypeVar("R")


class EntryInfo:
    """One published version. Listings over many entries make it from a catalog row: its metadata is parsed, and
    its `Manifest` read, only when asked for (most listings show a few and filter the rest by the row)."""

    __slots__ = ("_length", "_load", "_log", "_manifest", "_metadata", "_offset", "category", "created_at", "hidden",
                 "manifest_hash", "name", "namespace", "revision", "subjects", "version")

    def __init__(self, namespace: str, name: str, version: str, manifest_hash: str,
                 manifest: Manifest | Callable[[str], Manifest], metadata: dict[str, Any], created_at: str = "",
                 overlay: dict[str, Any] | None = None) -> None:
        """``manifest``: the model, or how to read it by its hash; ``metadata``: as published, with ``overlay``
        (`registry update` changes) applied here; ``created_at``: the manifest's, when it is not given."""
        self.namespace, self.name, self.version, self.manifest_hash = namespace, name, version, manifest_hash
        self._manifest = None if callable(manifest) else manifest
        self._load = manifest if callable(manifest) else None
        self.created_at = created_at if callable(manifest) else manifest.created_at
        self._metadata: dict[str, Any] | None = apply_overlay(metadata, overlay)  # a copy, never the manifest's
        self._log: MetadataLog | None = None
        self._offset, self._length = -1, 0
        self.revision = sha256_hex(canonical_json(overlay)) if overlay else ""  # tells an updated entry apart
        self.category, self.hidden, agent, model = summary(self._metadata)
        self.subjects = (agent, model)

    @classmethod
    def listed(cls, namespace: str, name: str, version: str, row: Row, load: Callable[[str], Manifest],
               log: MetadataLog) -> EntryInfo:
        """An entry as a catalog row describes it (its metadata in ``log``), with no `registry update` overlay."""
        self = cls.__new__(cls)
        self.namespace, self.name, self.version = namespace, name, version
        self.manifest_hash, self.created_at, self.category, self.hidden, agent, model, self._offset, self._length = row
        self.subjects = (agent, model)
        self._manifest, self._load, self._metadata, self._log, self.revision = None, load, None, log, ""
        return self

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            load_metadata([self])
        assert self._metadata is not None
        return self._metadata

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            assert self._load is not None
            self._manifest, self._load = self._load(self.manifest_hash), None
        return self._manifest

    @property
    def entry(self) -> str:
        return f"{self.namespace}/{self.name}/{self.version}"


def load_metadata(infos: Iterable[EntryInfo]) -> None:
    """Load the metadata of listed entries that is not loaded yet (what a listing that reads every entry's details
    does first)."""
    for info, metadata in each_metadata(infos):
        info._metadata = metadata


def each_metadata(infos: Iterable[EntryInfo]) -> Iterator[tuple[EntryInfo, dict[str, Any]]]:
    """Each entry with its metadata, read one at a time and not kept on the entry: for a pass over many entries that
    keeps a few fields of each. Metadata the catalog's log does not hold is read from the manifest."""
    with contextlib.ExitStack() as open_logs, collector_paused():
        readers: dict[Path, Reader] = {}
        for info in infos:
            if info._metadata is not None:
                yield info, info._metadata
                continue
            metadata = None
            if info._log is not None:
                read = readers.get(info._log.path)
                if read is None:
                    read = readers[info._log.path] = open_logs.enter_context(info._log.reading())
                metadata = read(info.manifest_hash, info._offset, info._length)
            yield info, metadata if metadata is not None else dict(info.manifest.metadata)


@dataclass
class UploadResult:
    info: EntryInfo
    files_total: int
    files_uploaded: int
    bytes_uploaded: int
    bumped_from: str | None = None
    unchanged: bool = False  # the version was already published with these very files and metadata


@dataclass
class DownloadResult:
    info: EntryInfo
    path: Path
    files_downloaded: int = 0
    files_skipped: int = 0
    bytes_downloaded: int = 0
    skipped_paths: list[str] = field(default_factory=list)


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = 16) -> list[R]:
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def scan_folder(folder: Path) -> list[tuple[str, Path]]:
    """Files to publish as ``(relative posix path, absolute path)``, sorted. Refuses symlinks leaving the folder."""
    root = folder.resolve()
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_NAMES)
        for d in list(dirnames):
            p = Path(dirpath, d)
            if p.is_symlink():
                raise InvalidNameError(f"symlinked folder {p} is not supported", "replace it with a real folder")
        for fname in sorted(filenames):
            if fname in EXCLUDED_NAMES:
                continue
            p = Path(dirpath, fname)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                try:
                    target = p.resolve(strict=True)
                except (OSError, RuntimeError):  # a loop, or a dangling link
                    raise InvalidNameError(f"symlink {rel} loops or points nowhere", "remove it") from None
                if not target.is_relative_to(root):
                    raise InvalidNameError(f"symlink {rel} points outside {folder}", "copy the file into the folder")
                if not target.is_file():
                    raise InvalidNameError(f"symlink {rel} does not point to a file", "remove it")
            elif not p.is_file():
                continue  # sockets, fifos
            try:
                check_rel_path(rel)
            except InvalidNameError:
                raise InvalidNameError(f"file name {rel!r} is not allowed", "rename it (no control characters)") from None
            out.append((rel, p))
    return out


def damaged(problem: str, problems: list[str] | None) -> None:
    """A damaged object in the store: an error, or (``problems`` given, as listings do) noted there."""
    if problem and problems is None:
        raise IntegrityError(problem, "restore it from a backup of the store, or publish a new version")
    if problem and problems is not None:
        problems.append(problem)


def overlay_of(data: bytes) -> dict[str, Any] | None:
    """A metadata overlay, or None when it is not a JSON object."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def apply_overlay(metadata: dict[str, Any], overlay: dict[str, Any] | None) -> dict[str, Any]:
    """Published metadata with `registry update` changes applied; ``details`` merge key by key."""
    meta = dict(metadata)
    if overlay:
        for k, v in overlay.items():
            if k == "details" and isinstance(v, dict):
                meta["details"] = {**(meta.get("details") or {}), **v}
            elif k in UPDATABLE_FIELDS:
                meta[k] = v
    return meta


def newest(items: list[T], naming: Callable[[T], tuple[str, str, str]]) -> list[T]:
    """The item of the newest version of each entry; ``naming`` gives an item's (namespace, name, version)."""
    newest: dict[tuple[str, str], tuple[Any, T]] = {}
    for item in items:
        ns, name, version = naming(item)
        key = version_key(version)
        cur = newest.get((ns, name))
        if cur is None or key > cur[0]:
            newest[(ns, name)] = (key, item)
    return [item for _, item in newest.values()]


def without_hidden_subjects(infos: list[EntryInfo], everything: list[EntryInfo]) -> list[EntryInfo]:
    """Drop entries about a hidden agent entry or a hidden `model` entry (e.g. evaluations), as upstream nearai
    does. ``everything`` is every version of every entry."""
    hidden_entries = {i.entry for i in everything if i.hidden}
    models = [i for i in everything if i.category == "model"]
    latest_models = {i.name: i for i in sorted(models, key=lambda i: version_key(i.version))}  # the newest decides
    hidden_models = {n for n, i in latest_models.items() if i.hidden}
    if not hidden_entries and not hidden_models:
        return infos

    def hidden(info: EntryInfo) -> bool:
        agent, model = info.subjects
        return agent in hidden_entries or (bool(model) and model.rsplit("/", 1)[-1] in hidden_models)

    return [i for i in infos if not hidden(i)]
