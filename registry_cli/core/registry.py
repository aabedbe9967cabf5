"""The registry: publish, resolve, download and list versioned entries in a content-addressed object store.

Layout (same keys on disk and S3):
    blobs/sha256/ab/<hex>                    file bodies, written once
    manifests/sha256/ab/<hex>.json           one per entry version, content-addressed
    refs/<ns>/<name>/<version>.json          {"manifest": hex}: the commit point, create-only, written last; a small
                                             manifest travels inside it too ({"inline": ..., "manifest": hex})
    meta/<ns>/<name>/<version>.json          metadata updates from `registry update` (mutable overlay)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from registry_cli.caches.bulk import collector_paused, json_parsed
from registry_cli.caches.catalog import Catalog, MetadataLog, Reader, Row, listable, summary
from registry_cli.caches.index import ObjectIndex
from registry_cli.core.config import Config, load_config
from registry_cli.core.content import canonical_json, sha256_file, sha256_hex
from registry_cli.core.files import atomic_write_text, partial_prefix, sha256_own_file, sweep_partials
from registry_cli.core.names import (
    METADATA_FILE,
    EntryRef,
    bump_version,
    check_name,
    check_rel_path,
    parse_entry,
    same_version,
    version_key,
)
from registry_cli.core.store import Store, open_store
from registry_cli.errors import (
    EntryNotFoundError,
    IntegrityError,
    InvalidNameError,
    MetadataError,
    NearaiError,
    NotFoundInStore,
    StoreError,
    VersionExistsError,
)

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    from registry_cli.core.manifest import FileEntry, Manifest, Metadata

DOWNLOAD_MARKER = ".nearai_download.json"
EXCLUDED_NAMES = frozenset({".git", "__pycache__", ".DS_Store", DOWNLOAD_MARKER, ".ipynb_checkpoints"})
UPDATABLE_FIELDS = ("category", "description", "tags", "details", "show_entry")
T = TypeVar("T")
R = TypeVar("R")


CREATE_ONLY_KEY = "_nearai/create-only.json"
CLAIM_STALE_S = 3600.0  # a claim older than this is one whose upload died between claiming and committing
CLAIM_TRIES = 6  # rounds of claiming before a publish racing another one gives up


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{digest[:2]}/{digest}"


def manifest_key(digest: str) -> str:
    return f"manifests/sha256/{digest[:2]}/{digest}.json"


def claims_prefix(namespace: str, name: str, version: str) -> str:
    return f"claims/{namespace}/{name}/{version}/"


def ref_key(namespace: str, name: str, version: str) -> str:
    return f"refs/{namespace}/{name}/{version}.json"


def meta_key(namespace: str, name: str, version: str) -> str:
    return f"meta/{namespace}/{name}/{version}.json"


def ref_bytes(digest: str, manifest: bytes) -> bytes:
    """A ref's body: the manifest hash and, when the manifest is small, the manifest itself, so that a listing
    reads one object per version instead of two. Canonical JSON either way: ``manifest`` is canonical JSON, and
    "inline" sorts before "manifest". Readers check the inline bytes against the hash beside them."""
    if len(manifest) > INLINE_MANIFEST_MAX:
        return b'{"manifest":"%s"}' % digest.encode()
    return b'{"inline":%s,"manifest":"%s"}' % (manifest, digest.encode())


def parse_ref(data: bytes) -> tuple[str, bytes | None]:
    """(manifest hash, the inline manifest's bytes or None) of a ref's body; ValueError when it is none. The inline
    bytes are unchecked: they are the manifest only when they hash to it."""
    if m := _PLAIN_REF.fullmatch(data):
        return m.group(1).decode(), None
    if m := _INLINE_REF.fullmatch(data):
        return m.group(2).decode(), m.group(1)
    try:
        digest = json.loads(data)["manifest"]  # a ref written by hand, or by another tool: the hash alone
    except (KeyError, TypeError) as e:
        raise ValueError("no manifest hash") from e
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise ValueError("not a manifest hash")
    return digest, None


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


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PLAIN_REF = re.compile(rb'\{"manifest":"([0-9a-f]{64})"\}')
_INLINE_REF = re.compile(rb'\{"inline":(\{.*\}),"manifest":"([0-9a-f]{64})"\}', re.DOTALL)
INLINE_MANIFEST_MAX = 16 * 1024  # a recorded evaluation's manifest is 1-2 KiB; a dataset's lists every file


def _parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = 16) -> list[R]:
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


class Registry:
    def __init__(self, config: Config | None = None, store: Store | None = None) -> None:
        self.config = config or load_config()
        self.store = store or open_store(self.config)
        self._index: ObjectIndex | None = None
        self._index_lock = threading.Lock()  # a suite's cells share one registry from several threads
        self._create_only = False
        self.skipped: list[str] = []  # what the last listing left out, and why

    @property
    def index(self) -> ObjectIndex:
        with self._index_lock:
            if self._index is None:
                self._index = ObjectIndex(self.config.cache_dir / "objects.sqlite", self.store.url)
            return self._index

    # ---- reading -----------------------------------------------------------------------------------------------
    def versions(self, namespace: str, name: str) -> list[str]:
        prefix = f"refs/{namespace}/{name}/"
        out = [k[len(prefix) : -len(".json")] for k in self.store.keys(prefix) if k.endswith(".json")]
        return sorted((v for v in out if "/" not in v), key=version_key)

    def _ref_hashes(self, keys: list[str], problems: list[str] | None = None,
                    fresh: bool = False) -> tuple[dict[str, str], set[str], dict[str, bytes]]:
        """Manifest hash for each ref key, which of them came from the store rather than this machine's index
        (refs are create-only: `_remember_refs` keeps them once their manifest checked out), and the manifests the
        refs read carry, unchecked, by hash (for `_manifest_docs`). ``problems``: note a corrupt ref there and go
        on, instead of failing. ``fresh``: ignore the index."""
        cached = self.store.remote and not fresh
        out = {k: v.decode() for k, (_, v) in self.index.get_many(keys).items()} if cached else {}
        missing = [k for k in keys if k not in out]

        def fetch(k: str) -> tuple[str, str, bytes | None, str]:
            try:
                digest, inline = parse_ref(self.store.get_bytes(k))
            except NotFoundInStore:
                return k, "", None, ""
            except ValueError:
                return k, "", None, f"ref {k} is corrupt"
            return k, digest, inline, ""

        inlined: dict[str, bytes] = {}
        for k, digest, inline, problem in _parallel(fetch, missing, self.store.workers):
            _damaged(problem, problems)
            if digest:
                out[k] = digest
                if inline is not None:
                    inlined[digest] = inline
        return out, set(missing) & set(out), inlined

    def _remember_refs(self, hashes: dict[str, str], fetched: set[str], manifests: Mapping[str, object]) -> None:
        """Keep in the index the refs read from the store whose manifest was fetched and verified: a ref altered
        on the way is never remembered."""
        good = [(k, "", hashes[k].encode()) for k in fetched if hashes[k] in manifests]
        if good and self.store.remote:
            self.index.put_many(good)

    def manifests(self, digests: list[str], problems: list[str] | None = None, fresh: bool = False,
                  inlined: Mapping[str, bytes] | None = None) -> dict[str, Manifest]:
        """The verified manifests by hash. ``problems``: note one that is missing or corrupt there and leave it
        out, instead of failing. ``fresh``: ignore the index. ``inlined``: manifests that refs carried, by hash,
        read instead of the store's copy when they check out."""
        from registry_cli.core.manifest import manifest_from_doc

        docs = self._manifest_docs(digests, problems, fresh, inlined=inlined)
        return {d: manifest_from_doc(doc) for d, doc in docs.items()}

    def _manifest_docs(self, digests: list[str], problems: list[str] | None = None, fresh: bool = False,
                       shape: bool = True, inlined: Mapping[str, bytes] | None = None) -> dict[str, dict[str, Any]]:
        """`manifests` as their JSON documents: what listings of many entries read (a model each costs more).
        Each is checked against its hash; ``shape``: and validated as a manifest, which is what lets this
        machine's index keep it (a listing, which reads the metadata alone, need not). A manifest in ``inlined``
        goes through the same checks, and one that fails them is read from the store."""
        keys = {manifest_key(d): d for d in digests}
        out: dict[str, dict[str, Any]] = {}
        if self.store.remote and not fresh:
            with collector_paused():
                cached = json_parsed(((k, v) for k, _, v in self.index.iter_many(keys)), 500)
                out = {keys[k]: doc for k, doc in cached if isinstance(doc, dict)}  # a damaged row: read again
        missing = [k for k, d in keys.items() if d not in out]
        if not missing:
            return out
        if shape:
            from registry_cli.core.manifest import manifest_from_bytes

        def fetch(k: str) -> tuple[str, bytes, str]:
            inline = inlined.get(keys[k]) if inlined else None
            if inline is not None and not (got := verified(k, inline))[2]:
                return got
            try:
                return verified(k, self.store.get_bytes(k))
            except NotFoundInStore:
                return k, b"", f"manifest {keys[k][:12]} is missing from the store"

        def verified(k: str, data: bytes) -> tuple[str, bytes, str]:
            if shape:
                try:
                    manifest_from_bytes(data, keys[k])
                except IntegrityError as e:
                    return k, b"", e.message
            elif sha256_hex(data) != keys[k]:
                return k, b"", f"manifest {keys[k][:12]} is corrupt (hash mismatch)"
            return k, data, ""

        good = []
        for k, data, problem in _parallel(fetch, missing, self.store.workers):
            _damaged(problem, problems)
            if data:
                good.append((k, data))
        fetched = []
        for (k, data), (_, doc) in zip(good, json_parsed(good, 500)):  # parsed together: one call, shared key names
            if not listable(doc):
                _damaged(f"manifest {keys[k][:12]} is invalid", problems)
                continue
            fetched.append((k, "", data))
            out[keys[k]] = doc
        if fetched and shape and self.store.remote:
            self.index.put_many(fetched)
        return out

    def _overlays(self, prefix: str = "meta/", problems: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The metadata overlays under ``prefix``; a corrupt one is noted in ``problems`` and left out."""
        listed = dict(self.store.list(prefix))
        if not listed:
            return {}
        cached = self.index.get_many(listed)
        out: dict[str, dict[str, Any]] = {}
        stale = [k for k, etag in listed.items() if k not in cached or cached[k][0] != etag]
        for k, (_, v) in cached.items():
            if k not in stale:
                out[k] = json.loads(v)

        def fetch(k: str) -> tuple[str, str, bytes] | None:
            try:
                return k, listed[k], self.store.get_bytes(k)
            except NotFoundInStore:
                return None

        good = []
        for k, etag, data in filter(None, _parallel(fetch, stale, self.store.workers)):
            overlay = _overlay(data)
            if overlay is None:
                if problems is not None:
                    problems.append(f"metadata overlay {k} is corrupt (ignored)")
                continue
            good.append((k, etag, data))
            out[k] = overlay
        self.index.put_many(good)
        return out

    def _info(self, ns: str, name: str, version: str, digest: str, manifest: Manifest,
              overlay: dict[str, Any] | None) -> EntryInfo:
        return EntryInfo(ns, name, version, digest, manifest, manifest.metadata, overlay=overlay)

    def resolve(self, entry: str | EntryRef, fresh: bool = False) -> EntryInfo:
        """The published version ``entry`` names (the latest when it names none). ``fresh``: read the store, not
        this machine's index."""
        ref = parse_entry(entry) if isinstance(entry, str) else entry
        version = ref.version
        if version is None:
            versions = self.versions(ref.namespace, ref.name)
            if not versions:
                raise EntryNotFoundError(f"entry {ref} not found", "check `nearai registry list`")
            version = versions[-1]
        key = ref_key(ref.namespace, ref.name, version)
        hashes, fetched, inlined = self._ref_hashes([key], fresh=fresh)
        if key not in hashes:
            known = self.versions(ref.namespace, ref.name)
            hint = f"available versions: {', '.join(known[-5:])}" if known else "check `nearai registry list`"
            raise EntryNotFoundError(f"entry {ref.namespace}/{ref.name}/{version} not found", hint)
        digest = hashes[key]
        manifests = self.manifests([digest], fresh=fresh, inlined=inlined)
        self._remember_refs(hashes, fetched, manifests)
        overlay_key = meta_key(ref.namespace, ref.name, version)
        try:
            overlay = _overlay(self.store.get_bytes(overlay_key))
        except NotFoundInStore:
            overlay = {}
        if overlay is None:
            raise IntegrityError(f"the metadata overlay {overlay_key} in the store is corrupt",
                                 f"rewrite it with `nearai registry update {ref.namespace}/{ref.name}/{version}`")
        return self._info(ref.namespace, ref.name, version, digest, manifests[digest], overlay or None)

    def list_entries(
        self,
        namespace: str = "",
        category: str = "",
        tags: list[str] | None = None,
        show_all: bool = False,
        show_latest_version: bool = True,
    ) -> list[EntryInfo]:
        """All entries matching the filters, sorted by (namespace, name, version). Entries that cannot be read (a
        corrupt ref, a missing or altered manifest) are left out and named in ``self.skipped``."""
        self.skipped = []
        everything: list[EntryInfo] | None = None
        if not show_all and not namespace:  # hiding by subject may need any version: read them all, once
            everything = self._entries("", False)
            listed = _newest(everything, lambda i: (i.namespace, i.name, i.version)) if show_latest_version else everything
        else:
            listed = self._entries(namespace, show_latest_version)
        wanted_tags = {t.lower() for t in tags or []}
        if wanted_tags:
            load_metadata(listed)  # every entry's tags are read: parse them all at once
        out: list[EntryInfo] = []
        for info in listed:
            if category and info.category != category:
                continue
            if wanted_tags and not wanted_tags.issubset({str(t).lower() for t in info.metadata.get("tags") or []}):
                continue
            if not show_all and info.hidden:
                continue
            out.append(info)
        if not show_all and any(any(i.subjects) for i in out):
            out = without_hidden_subjects(out, everything if everything is not None else self._entries("", False))
        out.sort(key=lambda i: (i.namespace, i.name, version_key(i.version)))
        self.skipped = list(dict.fromkeys(self.skipped))  # a second pass over the store notes the same ones
        return out

    def _entries(self, namespace: str, latest_only: bool) -> list[EntryInfo]:
        """Every entry version under ``namespace`` (all when empty), or the latest of each entry: the store's
        listing, with each ref's summary from this machine's catalog; only refs new to it are read."""
        prefix = f"refs/{check_name(namespace, 'namespace')}/" if namespace else "refs/"
        triples: list[tuple[str, str, str, str]] = []
        for key in self.store.keys_remembered(prefix):
            parts = key[len("refs/") :].split("/")
            if len(parts) != 3 or not parts[2].endswith(".json"):
                continue
            triples.append((parts[0], parts[1], parts[2][: -len(".json")], key))
        if latest_only:
            triples = _newest(triples, lambda t: t[:3])
        catalog = Catalog(self.config.cache_dir, self.store.url)
        rows = catalog.rows
        missing = catalog.unread(key for *_, key in triples)
        for i in range(0, len(missing), 2000):  # a few thousand manifests in memory at a time
            with collector_paused():
                hashes, fetched, inlined = self._ref_hashes(missing[i : i + 2000], self.skipped)
                docs = self._manifest_docs(sorted(set(hashes.values())), self.skipped, shape=self.store.remote,
                                           inlined=inlined)
                del inlined
                self._remember_refs(hashes, fetched, docs)
                catalog.add_many([(key, digest, docs[digest]) for key, digest in hashes.items() if digest in docs])
                del docs
        if not latest_only:
            catalog.keep_only(prefix, {t[3] for t in triples})
        catalog.save()
        overlays = self._overlays(f"meta/{namespace}/" if namespace else "meta/", self.skipped)
        out = []
        load, listed, log = self._manifest_of, EntryInfo.listed, catalog.log
        with collector_paused():
            for ns, name, version, key in triples:
                row = rows.get(key)
                if row is None:
                    continue
                info = listed(ns, name, version, row, load, log)
                if overlays and (overlay := overlays.get(meta_key(ns, name, version))) is not None:
                    info = EntryInfo(ns, name, version, row[0], load, info.metadata, info.created_at, overlay)
                out.append(info)
        return out

    def _manifest_of(self, digest: str) -> Manifest:
        return self.manifests([digest])[digest]

    def reachable(self) -> tuple[set[str], list[str]]:
        """Every store key a published version needs (its manifest and blobs), read afresh from the store, and
        what could not be read (a ref or manifest that is damaged keeps an unknown set of objects)."""
        problems: list[str] = []
        refs = [key for key in self.store.keys("refs/") if key.endswith(".json")]
        hashes, _, _ = self._ref_hashes(refs, problems, fresh=True)  # each manifest object read: gc keeps them
        manifests = self.manifests(sorted(set(hashes.values())), problems, fresh=True)
        keep = {manifest_key(d) for d in manifests}
        keep.update(blob_key(f.sha256) for m in manifests.values() for f in m.files)
        return keep, problems

    # ---- publishing -------------------------------------------------------------------------------------------
    def upload(self, path: str | Path, bump: str | None = None) -> UploadResult:
        from registry_cli.core.manifest import FileEntry, Manifest, read_metadata

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InvalidNameError(f"{folder} is not a folder", "pass the folder that holds metadata.json")
        meta = read_metadata(folder)
        ns = check_name(self.config.namespace, "namespace (NEARAI_NAMESPACE)")
        existing = self.versions(ns, meta.name)
        bumped_from = None
        if any(same_version(meta.version, v) for v in existing):
            same = self._published_as_is(ns, meta, folder) if bump is None else None
            if same is not None:
                return same
            if bump is None:
                raise VersionExistsError(
                    f"{ns}/{meta.name}/{meta.version} already exists",
                    "change the version in metadata.json or pass --bump / --minor_bump / --major_bump",
                )
            newest = max([*existing, meta.version], key=version_key)
            bumped_from, new_version = meta.version, bump_version(newest, bump)
            meta = self._write_version(folder, new_version)
        files = scan_folder(folder)
        known = self._blobs_of_newest(ns, meta.name, existing)

        def push(pair: tuple[str, Path]) -> tuple[FileEntry, bool]:
            """Hash and (unless the store has it) store one file, reading it once."""
            rel, src = pair
            digest, size, sent = self.store.ingest(src, blob_key, known)
            return FileEntry(path=rel, sha256=digest, size=size), sent

        pushed = _parallel(push, files, self.store.transfers)
        entries = [entry for entry, _ in pushed]
        manifest = Manifest(
            namespace=ns,
            name=meta.name,
            version=meta.version,
            metadata=meta.model_dump(),
            files=entries,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        data = manifest.to_bytes()
        digest = sha256_hex(data)
        self._put_once(manifest_key(digest), data)
        self._commit(ns, meta.name, meta.version, data)
        info = self._info(ns, meta.name, meta.version, digest, manifest, None)
        sent = [e for e, up in pushed if up]
        return UploadResult(info, len(entries), len(sent), sum(e.size for e in sent), bumped_from)

    def _blobs_of_newest(self, ns: str, name: str, versions: list[str]) -> frozenset[str]:
        """The blobs the newest published version of ``ns/name`` holds: in the store for as long as it is (gc keeps
        what a ref reaches), so an upload of mostly unchanged files need not ask about each."""
        if not versions:
            return frozenset()
        try:
            return frozenset(f.sha256 for f in self.resolve(EntryRef(ns, name, versions[-1])).manifest.files)
        except NearaiError:  # a damaged previous version: ask the store about every blob
            return frozenset()

    def _published_as_is(self, ns: str, meta: Metadata, folder: Path) -> UploadResult | None:
        """The existing version when it holds exactly this folder (a retried upload that had already committed)."""
        version = next(v for v in self.versions(ns, meta.name) if same_version(meta.version, v))
        info = self.resolve(EntryRef(ns, meta.name, version))
        files = scan_folder(folder)
        if info.manifest.metadata != meta.model_dump() or len(files) != len(info.manifest.files):
            return None
        published = {f.path: (f.sha256, f.size) for f in info.manifest.files}
        for rel, path in files:
            if published.get(rel, ("", -1))[1] != path.stat().st_size or published[rel][0] != sha256_file(path):
                return None
        return UploadResult(info, len(files), 0, 0, None, unchanged=True)

    def check_create_only(self) -> None:
        """Refuse to publish where create-only writes do not hold (a store or proxy ignoring If-None-Match would let
        two publishers overwrite one version). Probed once per store: a key written twice must be refused the second
        time. A store that passed says so in ``_nearai/create-only.json``; one that failed is probed again."""
        if self._create_only:
            return
        if self.index.get_many([CREATE_ONLY_KEY]):
            self._create_only = True
            return
        try:
            said = json.loads(self.store.get_bytes(CREATE_ONLY_KEY)).get("create_only") is True
        except (NotFoundInStore, ValueError, AttributeError):
            said = False
        if not said:
            probe = f"_nearai/probes/{uuid.uuid4().hex}"
            holds = self.store.create(probe, b"first") and not self.store.create(probe, b"second")
            with contextlib.suppress(StoreError):
                self.store.delete(probe)
            self.store.put_bytes(CREATE_ONLY_KEY, canonical_json({
                "create_only": holds, "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
            if not holds:
                raise StoreError(f"the store {self.store.url} does not enforce create-only writes (If-None-Match): "
                                 "two uploads of one version could overwrite each other, so nothing is published",
                                 "use an endpoint that supports conditional writes (AWS S3, MinIO, moto >= 5.0.15) "
                                 "and no proxy that drops the If-None-Match header")
        self.index.put_many([(CREATE_ONLY_KEY, "", b"true")])
        self._create_only = True

    def publish_manifest(self, manifest: Manifest) -> EntryInfo:
        """Publish a manifest whose blobs already exist (used for generated entries such as evaluations)."""
        data = manifest.to_bytes()
        digest = sha256_hex(data)
        self.store.put_bytes(manifest_key(digest), data)
        self._commit(manifest.namespace, manifest.name, manifest.version, data)
        return self._info(manifest.namespace, manifest.name, manifest.version, digest, manifest, None)

    def put_blob(self, data: bytes) -> str:
        """Store bytes as a blob (once) and return their sha256."""
        digest = sha256_hex(data)
        self._put_once(blob_key(digest), data)
        return digest

    def _put_once(self, key: str, data: bytes) -> None:
        """A content-addressed object, written unless the store is known to hold exactly these bytes."""
        if not self.store.holds(key, hashlib.md5(data).hexdigest(), len(data)):
            self.store.put_bytes(key, data)

    def _commit(self, ns: str, name: str, version: str, manifest: bytes) -> None:
        """Publish ``ns/name/version`` as the manifest ``manifest``: the create-only ref, which names it by its hash
        (taken here, so that a ref never carries a manifest other than the one it names)."""
        key = ref_key(ns, name, version)
        digest = sha256_hex(manifest)
        self.check_create_only()
        claim = self._claim(ns, name, version, digest) if self.store.remote else ""
        try:
            self._write_ref(key, ns, name, version, digest, manifest)
        finally:
            if claim:  # won or lost, it has done its work: a retry after a lost race must not find it
                with contextlib.suppress(StoreError):
                    self.store.delete(claim)

    def _write_ref(self, key: str, ns: str, name: str, version: str, digest: str, manifest: bytes) -> None:
        if self.store.create(key, ref_bytes(digest, manifest)):
            try:  # read back: a store that let another publisher overwrite it must not pass for a success
                kept, _ = parse_ref(self.store.get_bytes(key))
            except (NotFoundInStore, ValueError):
                kept = None
            if kept != digest:
                raise VersionExistsError(f"{ns}/{name}/{version} was overwritten right after this upload wrote it",
                                         "use a store that enforces create-only writes (If-None-Match)")
            return
        try:
            current, _ = parse_ref(self.store.get_bytes(key))
        except (NotFoundInStore, ValueError):
            current = None
        if current != digest:  # someone else's manifest: a real conflict, not our own retried write
            raise VersionExistsError(
                f"{ns}/{name}/{version} already exists", "another upload published this version first; bump the version"
            )

    def _claim(self, ns: str, name: str, version: str, digest: str) -> str:
        """Make this upload the only one that may write the ref of ``ns/name/version``, without trusting the store
        to honour If-None-Match (a proxy or gateway may drop it at any time, after any probe). Each upload writes a
        claim of its own (a key nobody else writes), then lists the claims: it goes on only when no claim for
        another manifest is there. Listings are strongly consistent after a write, so of two racing uploads the
        later lister sees the earlier one's claim: at most one goes on. When each saw the other, both withdraw
        and try again after a random pause, so that one of them gets through; a rival still there after
        `CLAIM_TRIES` tries stops this upload (nothing written, the version said to be busy). A claim older than
        `CLAIM_STALE_S` belongs to an upload that died and is passed over; gc removes claims after its grace
        period; a ref already there is never written over. Returns the claim's key (removed once the ref is
        written or refused)."""
        prefix = claims_prefix(ns, name, version)
        for attempt in range(CLAIM_TRIES):
            mine = f"{prefix}{digest}.{uuid.uuid4().hex}"
            self.store.put_bytes(mine, b"")
            now = time.time()
            rivals = [k for k, _, modified in self.store.stat_list(prefix) if k != mine
                      and not k[len(prefix):].startswith(digest + ".") and now - modified < CLAIM_STALE_S]
            try:
                current, _ = parse_ref(self.store.get_bytes(ref_key(ns, name, version)))
            except (NotFoundInStore, ValueError):
                current = None
            if current == digest or (current is None and not rivals):
                return mine
            with contextlib.suppress(StoreError):
                self.store.delete(mine)
            if current is not None:
                raise VersionExistsError(f"{ns}/{name}/{version} already exists",
                                         "another upload published this version first; bump the version")
            time.sleep(random.uniform(0.05, 0.4) * (attempt + 1))
        raise VersionExistsError(f"{ns}/{name}/{version} is being published by another upload at the same time",
                                 "bump the version, or check `nearai registry info` in a moment and retry")

    def _write_version(self, folder: Path, version: str) -> Metadata:
        from registry_cli.core.manifest import read_metadata

        path = folder / METADATA_FILE
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["version"] = version
        atomic_write_text(path, json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
        return read_metadata(folder)

    def update(self, target: str | Path, changes: dict[str, Any] | None = None) -> EntryInfo:
        """Change category/description/tags/details/show_entry of a published version.

        ``target`` is a folder whose metadata.json names the version (its updatable fields are applied), or an
        entry ``ns/name/version`` with ``changes``. ``details`` are merged into the published details, key by key,
        so hiding an evaluation keeps its metrics.
        """
        from registry_cli.core.manifest import read_metadata

        folder = Path(target).expanduser()
        if folder.is_dir():
            meta = read_metadata(folder)
            ns = check_name(self.config.namespace, "namespace (NEARAI_NAMESPACE)")
            info = self.resolve(EntryRef(ns, meta.name, meta.version))
            update = {k: getattr(meta, k) for k in UPDATABLE_FIELDS}
        else:
            info = self.resolve(str(target))
            update = {}
        update.update(changes or {})
        unknown = sorted(set(update) - set(UPDATABLE_FIELDS))
        if unknown:
            raise MetadataError(f"cannot update {', '.join(unknown)}", f"updatable: {', '.join(UPDATABLE_FIELDS)}")
        key = meta_key(info.namespace, info.name, info.version)
        try:
            previous = json.loads(self.store.get_bytes(key))
        except (NotFoundInStore, ValueError):
            previous = {}
        overlay = dict(previous) if isinstance(previous, dict) else {}
        details = {**(overlay.get("details") or {}), **(update.pop("details", None) or {})}
        overlay.update(update)
        overlay["details"] = details
        self.store.put_bytes(key, canonical_json(overlay))
        return self._info(info.namespace, info.name, info.version, info.manifest_hash, info.manifest, overlay)

    def identify_local(self, folder: Path) -> EntryInfo | None:
        """The entry that ``folder`` is an intact download of (its download marker names it and every file
        matches the manifest), else None."""
        try:
            marker = json.loads((folder / DOWNLOAD_MARKER).read_text())
            info = self.resolve(str(marker["entry"]))
        except (OSError, ValueError, KeyError, TypeError, NearaiError):
            return None
        if info.manifest_hash != marker.get("manifest"):
            return None
        on_disk = dict(scan_folder(folder))
        wanted = {f.path: f for f in info.manifest.files}
        if set(on_disk) != set(wanted):
            return None
        seen = _read_stats(folder / DOWNLOAD_MARKER, info.manifest_hash)
        return info if all(_intact(on_disk[p], f, seen.get(p)) for p, f in wanted.items()) else None

    # ---- downloading ------------------------------------------------------------------------------------------
    def local_path(self, info: EntryInfo) -> Path:
        return self.config.registry_dir / info.namespace / info.name / info.version

    def download(self, entry: str | EntryRef, force: bool = False, target: Path | None = None) -> DownloadResult:
        """Fetch every file of ``entry``, verified; ``force`` also reads the entry afresh from the store."""
        info = self.resolve(entry, fresh=force)
        dest = target or self.local_path(info)
        result = DownloadResult(info, dest)
        marker = dest / DOWNLOAD_MARKER
        seen = _read_stats(marker, info.manifest_hash) if not force else {}
        dest.mkdir(parents=True, exist_ok=True)
        sweep_partials(dest)  # what a download killed here before left behind
        root = dest.resolve()
        for f in info.manifest.files:
            target_path = (root / f.path).resolve()
            if not target_path.is_relative_to(root):
                raise InvalidNameError(f"manifest path {f.path!r} escapes {dest}", "refusing to download this entry")

        def fetch(f: FileEntry) -> int:
            """-1 when the file here is intact: unchanged since it was verified (size and mtime), or re-hashed."""
            out = root / f.path
            if not force and _intact(out, f, seen.get(f.path)):
                return -1
            self.fetch_blob(f.sha256, out)
            return f.size

        for f, n in zip(info.manifest.files, _parallel(fetch, info.manifest.files, self.store.transfers)):
            if n < 0:
                result.files_skipped += 1
                result.skipped_paths.append(f.path)
            else:
                result.files_downloaded += 1
                result.bytes_downloaded += n
        if result.files_downloaded or seen.keys() != {f.path for f in info.manifest.files}:
            stats = {f.path: _stat(root / f.path) for f in info.manifest.files}
            atomic_write_text(marker, json.dumps({"manifest": info.manifest_hash, "entry": info.entry, "files": stats}))
        return result

    def fetch_blob(self, digest: str, out: Path, attempts: int = 3) -> None:
        """Stream a blob into ``out`` atomically, verifying its sha256; transient failures and bytes altered on the
        way are fetched again. A copy the store itself holds damaged (its own digest says so) is not."""
        out.parent.mkdir(parents=True, exist_ok=True)
        last: Exception | None = None
        for _ in range(attempts):
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=partial_prefix())
            try:
                try:
                    arrived_intact = self.store.read_into(blob_key(digest), fd)
                    got = sha256_own_file(fd)
                finally:
                    os.close(fd)
                if got != digest and arrived_intact:
                    raise IntegrityError(f"the store's copy of blob {digest[:12]} is corrupt (its bytes do not match "
                                         "its name)", "upload the entry again; `nearai registry gc` removes such blobs")
                if got != digest:
                    said = "arrived altered in transit" if arrived_intact is False else "did not match its name"
                    last = IntegrityError(f"blob {digest[:12]} {said} {attempts} times",
                                          "check the network path to the store (a proxy altering responses?)")
                    continue
                os.replace(tmp, out)
                return
            except NotFoundInStore:
                raise IntegrityError(f"blob {digest[:12]} is missing from the store", "re-upload the entry") from None
            except StoreError as e:
                last = e
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        assert last is not None
        raise last

    def check_blob(self, digest: str) -> str:
        """``ok``, ``corrupt`` (the store holds bytes that do not match the name, as its own digest confirms),
        ``unknown`` (they arrived altered, or the store gives no digest to tell) or ``missing``."""
        self.config.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.config.cache_dir, prefix=partial_prefix())
        try:
            arrived_intact = self.store.read_into(blob_key(digest), fd)
            got = sha256_own_file(fd)
        except NotFoundInStore:
            return "missing"
        finally:
            os.close(fd)
            os.unlink(tmp)
        if got == digest:
            return "ok"
        return "corrupt" if arrived_intact else "unknown"

    def metadata_template(self, path: str | Path, category: str = "", description: str = "") -> Path:
        from registry_cli.core.manifest import Metadata

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InvalidNameError(f"{folder} is not a folder", "create it first")
        target = folder / METADATA_FILE
        if target.exists():
            raise MetadataError(f"{target} already exists", "edit it, or delete it to start from a template")
        name = folder.resolve().name
        try:
            check_name(name)
        except InvalidNameError:
            name = "my-entry"
        tpl = Metadata(name=name, version="0.0.1", category=category, description=description,
                       tags=[], details={}, show_entry=True)
        atomic_write_text(target, json.dumps(tpl.model_dump(), indent=2) + "\n")
        return target

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


def _read_stats(marker: Path, manifest_hash: str) -> dict[str, list[int]]:
    """What a download of ``manifest_hash`` recorded of its files once verified: ``{path: [size, mtime_ns]}``."""
    try:
        data = json.loads(marker.read_text())
        if data["manifest"] != manifest_hash or not isinstance(data.get("files"), dict):
            return {}
        return {str(k): v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 2}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _intact(path: Path, f: FileEntry, recorded: list[int] | None) -> bool:
    """Whether ``path`` holds the manifest's bytes: the stat recorded at verification still holds (fast), or the
    file hashes to the manifest's sha256 (any change since, even one keeping the size)."""
    try:
        now = _stat(path)
    except OSError:
        return False
    if now[0] != f.size:
        return False
    return now == recorded or sha256_file(path) == f.sha256


def _damaged(problem: str, problems: list[str] | None) -> None:
    """A damaged object in the store: an error, or (``problems`` given, as listings do) noted there."""
    if problem and problems is None:
        raise IntegrityError(problem, "restore it from a backup of the store, or publish a new version")
    if problem and problems is not None:
        problems.append(problem)


def _overlay(data: bytes) -> dict[str, Any] | None:
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


def _newest(items: list[T], naming: Callable[[T], tuple[str, str, str]]) -> list[T]:
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

