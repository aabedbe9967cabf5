"""What this machine knows of a store's published versions, for listings over many entries: per store, one cache
file holding a summary row per ref, and a log of the entries' metadata. Refs are create-only, so a row stays true for
as long as its ref is listed: a listing reads from the store only the refs it has no row for, and parses an entry's
metadata only when it is asked for (`registry list` shows 32 of 50,000; the filters it applies to all of them are in
the row). The metadata is kept out of the rows, so loading them loads none of it: a row says where its record is.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from registry_cli.caches.snapshots import read_snapshot, write_snapshot
from registry_cli.core.content import MANIFEST_SCHEMA

SCHEMA = 3

# manifest hash, created_at, category, hidden (show_entry false), subject agent, subject model, and the offset and
# length of the entry's metadata record in the log (-1, 0 when the log has none: the manifest has it)
Row = tuple[str, str, str, bool, str, str, int, int]
Reader = Callable[[str, int, int], "dict[str, Any] | None"]  # (manifest hash, offset, length) -> metadata or None
COMPACT_ABOVE = 1 << 20  # bytes of records no row points at, beyond the live ones, before a log is written anew


def summary(metadata: dict[str, Any]) -> tuple[str, bool, str, str]:
    """(category, hidden, agent, model) of published metadata: what listings filter every entry by. The agent and
    model are those an entry is about, from ``details`` (evaluations record both)."""
    details = metadata.get("details")
    agent, model = (str(details.get("agent") or ""), str(details.get("model") or "")) if isinstance(details, dict) \
        else ("", "")
    return str(metadata.get("category", "")), metadata.get("show_entry", True) is False, agent, model


def listable(doc: object) -> bool:
    """Whether a manifest document has the fields a listing reads, of the right types (every field is checked
    when the `Manifest` itself is built from it)."""
    return (isinstance(doc, dict) and doc.get("schema", MANIFEST_SCHEMA) == MANIFEST_SCHEMA
            and isinstance(doc.get("metadata"), dict) and isinstance(doc.get("files"), list)
            and all(isinstance(doc.get(k), str) for k in ("namespace", "name", "version", "created_at")))


class MetadataLog:
    """Metadata of a store's manifests, record after record: the manifest hash, a CRC32 of the body, then the body
    (marshal: 4x faster to write than JSON and faster to read; the log is this machine's own, for this Python).
    Records are appended and never changed in place. A record is read at the offset its row gives and must carry the
    row's hash and a matching CRC: one that does not reads as None, and the metadata is read from the manifest."""

    HEAD = 64 + 8

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, records: list[tuple[str, bytes]], create: bool = True) -> list[tuple[int, int]]:
        """Append (manifest hash, body) records in one write; their (offset, length), or (-1, 0) each when the log
        cannot be written (no space, no permission) or, unless ``create``, is not there."""
        data = b"".join([b"%s%08x%s" % (h.encode(), zlib.crc32(body), body) for h, body in records])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0), 0o600)
            try:
                written = os.write(fd, data)  # one write: the records of processes appending at once never interleave
                end = os.lseek(fd, 0, os.SEEK_CUR)
            finally:
                os.close(fd)
        except OSError:
            return [(-1, 0)] * len(records)
        if written != len(data):  # what a short write left is never pointed at
            return [(-1, 0)] * len(records)
        spots = []
        offset = end - len(data)
        for _, body in records:
            spots.append((offset, self.HEAD + len(body)))
            offset += self.HEAD + len(body)
        return spots

    @contextlib.contextmanager
    def reading(self) -> Iterator[Reader]:
        """A reader of records while the block runs (one open file for many reads)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            yield lambda manifest_hash, offset, length: None
            return
        try:
            yield lambda manifest_hash, offset, length: _record(fd, manifest_hash, offset, length)
        finally:
            os.close(fd)

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0


def _record(fd: int, manifest_hash: str, offset: int, length: int) -> dict[str, Any] | None:
    if offset < 0:
        return None
    try:
        data = os.pread(fd, length, offset)
    except OSError:
        return None
    body = memoryview(data)[MetadataLog.HEAD :]
    if data[:64] != manifest_hash.encode() or data[64 : MetadataLog.HEAD] != b"%08x" % zlib.crc32(body):
        return None
    try:
        value = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    return value if isinstance(value, dict) else None


class Catalog:
    """The rows of one store and their metadata log, from this machine's cache (no rows when the file is missing
    or damaged, or its log is gone)."""

    def __init__(self, cache_dir: Path, store_url: str) -> None:
        self._stem = hashlib.sha256(store_url.encode()).hexdigest()[:16]
        self._folder = cache_dir / "catalog"
        self._path = self._folder / f"{self._stem}.bin"
        self._store = store_url
        doc = read_snapshot(self._path)
        log, rows = doc[2:] if isinstance(doc, tuple) and len(doc) == 4 and doc[:2] == (SCHEMA, store_url) else ("", {})
        if not isinstance(log, str) or not isinstance(rows, dict) or not log or not (self._folder / log).is_file():
            log, rows = f"{self._stem}.first.log", {}  # rows without their log start afresh; one name for all
            # processes that start at once, so none leaves a log no row points at
        self.rows: dict[str, Row] = rows
        self.log = MetadataLog(self._folder / log)
        self._changed = False

    def _new_log(self) -> str:
        return f"{self._stem}.{uuid.uuid4().hex[:12]}.log"

    def unread(self, keys: Iterable[str]) -> list[str]:
        """Of ref ``keys``, those to read from the store: with no row, or whose metadata the log could not take (a
        full disk) and is read again to be logged."""
        rows = self.rows
        return [k for k in keys if k not in rows or rows[k][6] < 0]

    def add_many(self, listed: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Rows for (ref key, manifest hash, verified manifest document) triples; their metadata goes to the log."""
        if not listed:
            return
        heads, records = [], []
        for key, digest, doc in listed:
            metadata = doc.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            heads.append((key, (digest, str(doc.get("created_at", "")), *summary(metadata))))
            records.append((digest, marshal.dumps(metadata)))
        # a log that rows point into is never made anew here: if it is gone, another process wrote it anew since
        for (key, head), spot in zip(heads, self.log.append(records, create=not self.rows)):
            self.rows[key] = (*head, *spot)
        self._changed = True

    def keep_only(self, prefix: str, listed: set[str]) -> None:
        """Forget the rows under ``prefix`` whose ref is no longer listed (removed from the store by hand)."""
        gone = [k for k in self.rows.keys() - listed if k.startswith(prefix)]
        for k in gone:
            del self.rows[k]
        self._changed = self._changed or bool(gone)

    def save(self) -> None:
        """Write the rows; first the log anew, when most of it is records no row points at."""
        if self.log.size() > 2 * sum(row[7] for row in self.rows.values()) + COMPACT_ABOVE:
            self._compact()
        # rows whose log is gone point into a log that another process wrote anew, and saved newer rows: they stay
        if self._changed and (self.log.path.is_file() or not self.rows):
            write_snapshot(self._path, (SCHEMA, self._store, self.log.path.name, self.rows))
            self._changed = False

    def _compact(self) -> None:
        old, self.log = self.log, MetadataLog(self._folder / self._new_log())
        keys = list(self.rows)
        with old.reading() as read:
            for i in range(0, len(keys), 2000):
                part = keys[i : i + 2000]
                found = [(key, read(*_where(self.rows[key]))) for key in part]
                live = [(key, metadata) for key, metadata in found if metadata is not None]
                spots = self.log.append([(self.rows[key][0], marshal.dumps(metadata)) for key, metadata in live])
                for key, _ in found:
                    self.rows[key] = (*self.rows[key][:6], -1, 0)  # unreadable: its manifest has it
                for (key, _), spot in zip(live, spots):
                    self.rows[key] = (*self.rows[key][:6], *spot)
        self._changed = True
        for other in self._folder.glob(f"{self._stem}.*.log"):  # a reader that has one open still reads it
            if other != self.log.path:
                with contextlib.suppress(OSError):
                    other.unlink()


def _where(row: Row) -> tuple[str, int, int]:
    return row[0], row[6], row[7]
