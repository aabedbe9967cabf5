"""Local cache of immutable store objects (refs, manifests) and etag-checked mutable ones, in one SQLite file.

Refs and manifests never change once written, so they are cached forever; this is what makes `registry list` and
`evaluation table` fast over thousands of entries.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_SCAN_FROM = 2000  # this many keys or more are read by one scan of the range they span

# what SQLite says of a file that is not (or no longer) a database it can use: the cache is then started afresh
_DAMAGED = ("file is not a database", "database disk image is malformed", "disk I/O error")


class ObjectIndex:
    """Safe to share between threads: they take turns on its one connection, whose transaction they would share."""

    def __init__(self, path: Path, store_url: str) -> None:
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._db = _open(path)
        except sqlite3.DatabaseError as e:  # e.g. the file was deleted under a running process, leaving its -wal
            if not any(m in str(e) for m in _DAMAGED):
                raise
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._db = _open(path)
        self._store = store_url

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        """Return ``{key: (etag, value)}`` for the keys present in the cache."""
        return {key: (etag, value) for key, etag, value in self.iter_many(keys)}

    def iter_many(self, keys: Iterable[str]) -> Iterator[tuple[str, str, bytes]]:
        """``(key, etag, value)`` of the keys present in the cache, a few hundred rows in memory at a time."""
        wanted = list(keys)
        span = [self._store, min(wanted), max(wanted)] if len(wanted) >= _SCAN_FROM else []
        where = "store=? AND key >= ? AND key <= ?"
        # many keys that are most of the rows in their range: one pass over it beats hundreds of IN (...) lookups
        if span and self._rows(f"SELECT COUNT(*) FROM objects WHERE {where}", span)[0][0] <= 4 * len(wanted):
            want = set(wanted)
            page = f"SELECT key, etag, value FROM objects WHERE {where} ORDER BY key LIMIT 500"
            while rows := self._rows(page, span):
                for key, etag, value in rows:
                    if key in want:
                        yield key, etag, bytes(value)
                span = [self._store, rows[-1][0] + "\0", span[2]]  # the next page starts just after this one
            return
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            q = f"SELECT key, etag, value FROM objects WHERE store=? AND key IN ({','.join('?' * len(chunk))})"
            for key, etag, value in self._rows(q, [self._store, *chunk]):
                yield key, etag, bytes(value)

    def _rows(self, query: str, args: list[str]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def put_many(self, items: Iterable[tuple[str, str, bytes]]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO objects (store, key, etag, value) VALUES (?, ?, ?, ?)",
                [(self._store, k, e, v) for k, e, v in items],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, check_same_thread=False)
    try:
        for attempt in range(_SETUP_ATTEMPTS):
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("CREATE TABLE IF NOT EXISTS objects (store TEXT, key TEXT, etag TEXT, value BLOB, "
                           "PRIMARY KEY (store, key))")
                break
            except sqlite3.OperationalError as e:
                # two processes setting up a new index at once: the switch to WAL does not wait for the other's lock
                if "locked" not in str(e) or attempt == _SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))
    except BaseException:
        db.close()
        raise
    return db


_SETUP_ATTEMPTS = 25  # about 6 s of waiting in all
