"""Local cache of immutable store objects (refs, manifests) and etag-checked mutable ones, in one SQLite file.

Refs and manifests never change once written, so they are cached forever; this is what makes `registry list` and
`evaluation table` fast over thousands of entries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path


class ObjectIndex:
    def __init__(self, path: Path, store_url: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (store TEXT, key TEXT, etag TEXT, value BLOB, PRIMARY KEY (store, key))"
        )
        self._store = store_url

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        """Return ``{key: (etag, value)}`` for the keys present in the cache."""
        wanted = list(keys)
        out: dict[str, tuple[str, bytes]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            q = f"SELECT key, etag, value FROM objects WHERE store=? AND key IN ({','.join('?' * len(chunk))})"
            for key, etag, value in self._db.execute(q, [self._store, *chunk]):
                out[key] = (etag, bytes(value))
        return out

    def put_many(self, items: Iterable[tuple[str, str, bytes]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO objects (store, key, etag, value) VALUES (?, ?, ?, ?)",
                [(self._store, k, e, v) for k, e, v in items],
            )

    def close(self) -> None:
        self._db.close()
