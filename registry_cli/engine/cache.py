"""Per-datum result cache: local diskcache (JSON values only, never pickle) plus a remote copy in the store.

Keys are sha256 of canonical JSON of everything that changes the answer (see ``result_key``). Values are JSON.
Errors are never cached. The cache never raises: an unreadable row is a miss, and a failed write is counted
(``ResultCache.put`` says how far the value got) so a flaky store or a full disk never ends a run. The shared
copy lives in packs under ``cache/v2/packs/<group>/`` in the registry's store, so machines sharing a store share
results.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diskcache import Cache, Disk
from diskcache.core import MODE_PICKLE

from registry_cli.engine.inference import redact
from registry_cli.manifest import canonical_json, sha256_hex
from registry_cli.store import Store

CACHE_SCHEMA = 2


class UnsafeCacheValue(Exception):
    """A cache row that is not JSON (e.g. a planted pickle). It is treated as a miss, never deserialized."""


class JSONOnlyDisk(Disk):  # type: ignore[misc]
    """diskcache storage that writes JSON and refuses to unpickle anything (CVE-2025-69872)."""

    def put(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise TypeError("cache keys must be str")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeCacheValue("pickled cache key refused")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = None) -> Any:
        if read:
            raise TypeError("file values are not supported")
        return super().store(json.dumps(value, separators=(",", ":")).encode(), False)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE or read:
            raise UnsafeCacheValue("pickled cache value refused")
        data = super().fetch(mode, filename, value, False)
        try:
            return json.loads(data)
        except (ValueError, TypeError):
            raise UnsafeCacheValue("non-JSON cache value refused") from None


def jsonable(obj: Any) -> Any:
    """Datum content as JSON-compatible data (bytes, dates, NaN and numpy scalars made stable)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else repr(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return {"$bytes": sha256_hex(bytes(obj))}
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return repr(obj)


def drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [drop_none(v) for v in obj]
    return obj


def datum_hash(datum: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(jsonable(datum)))


def result_key(parts: dict[str, Any]) -> str:
    """sha256 of canonical JSON (sorted keys, None dropped) of the answer-determining parts plus the schema."""
    return sha256_hex(canonical_json(drop_none({"schema": CACHE_SCHEMA, **parts})))


def item_keys(common: dict[str, Any]) -> Callable[[str, int], str]:
    """`result_key` of ``{**common, "datum": datum_hash, "repeat": repeat}``, with the common part cleaned once."""
    base = drop_none({"schema": CACHE_SCHEMA, **common})
    return lambda datum, repeat: sha256_hex(canonical_json({**base, "datum": datum, "repeat": repeat}))


def cache_group(common: dict[str, Any]) -> str:
    """What the items of one run share (solver, dataset, subset, model, agent): names its packs in the store."""
    return sha256_hex(canonical_json(drop_none({"schema": CACHE_SCHEMA, **common})))[:32]


def pack_prefix(group: str) -> str:
    return f"cache/v{CACHE_SCHEMA}/packs/{group}/"


def _valid(value: Any) -> bool:
    key = value.get("key") if isinstance(value, dict) else None
    return isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)


class ResultCache:
    """Verdicts by cache key: this machine's diskcache first, then the store's packs.

    The store keeps results in packs, one JSON-lines object per batch written, under a folder per group (the run's
    solver, dataset, model and agent). A run that misses locally lists its group's packs once and imports the ones
    it has not seen, so sharing costs a LIST and a GET per pack, never a request per datum. Nothing here raises:
    a store that cannot be read is a miss, one that cannot be written is counted.
    """

    def __init__(self, directory: Path, remote: Store | None) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self.directory = directory
        self.local = Cache(str(directory), disk=JSONOnlyDisk, size_limit=2**40, eviction_policy="none",
                           cull_limit=0)  # nothing expires or is evicted: skip the culling queries on every write
        self.remote = remote
        self.refused = 0  # unsafe local rows seen (treated as misses)

    def get_local(self, key: str) -> dict[str, Any] | None:
        try:
            value = self.local.get(key)
        except UnsafeCacheValue:
            self.refused += 1
            return None
        except Exception:  # a locked or damaged database is a miss, never a failed run
            return None
        return value if isinstance(value, dict) else None

    def _set_local(self, key: str, value: dict[str, Any]) -> str:
        try:
            self.local.set(key, value)
            return ""
        except Exception as e:  # e.g. a full disk
            return f"local cache: {type(e).__name__}: {e}"

    def sync(self, group: str) -> int:
        """Import the store's packs of ``group`` not imported before; how many results came in."""
        if self.remote is None or not group:
            return 0
        try:
            names = sorted(name for name, _ in self.remote.list(pack_prefix(group)))
        except Exception:  # an unreadable store is a miss
            return 0
        imported = 0
        for name in names:
            marker = f"pack:{name}"
            if self.get_local(marker) is not None:
                continue
            try:
                data = self.remote.get_bytes(name)
            except Exception:
                continue
            values = []
            for line in data.splitlines():
                try:
                    value = json.loads(line)
                except ValueError:  # a torn or foreign line: skip it, keep the rest
                    continue
                if _valid(value):
                    values.append(value)
            try:
                with self.local.transact():
                    for value in values:
                        self.local.set(value["key"], value)
                    self.local.set(marker, {"pack": name, "results": len(values)})
            except Exception:
                continue
            imported += len(values)
        return imported

    def put(self, key: str, value: dict[str, Any], group: str = "") -> tuple[bool, bool, str]:
        """Keep one result. Returns (kept locally, shared to the store, problem)."""
        return self.put_many([(key, value)], group)[0]

    def put_many(self, items: list[tuple[str, dict[str, Any]]], group: str = "") -> list[tuple[bool, bool, str]]:
        """A batch: one local transaction, then (with a store and a group) one pack in the store."""
        values = [{**value, "key": key} for key, value in items]
        try:
            with self.local.transact():
                local_errors = [self._set_local(v["key"], v) for v in values]
        except Exception as e:  # the transaction itself failed: nothing of the batch is kept locally
            local_errors = [f"local cache: {type(e).__name__}: {e}"] * len(values)
        if self.remote is None or not group:
            return [(not err, False, err) for err in local_errors]
        name = f"{pack_prefix(group)}{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.jsonl"
        try:
            self.remote.put_bytes(name, b"".join(canonical_json(v) + b"\n" for v in values))
        except Exception as e:  # StoreError, or anything a store backend lets through
            problem = redact(f"store: {e}")
            return [(not err, False, err or problem) for err in local_errors]
        self._set_local(f"pack:{name}", {"pack": name, "results": len(values)})  # ours: never imported back
        return [(not err, True, err) for err in local_errors]

    def close(self) -> None:
        self.local.close()


class CacheWriter:
    """Writes verdicts from a background thread in batches, so answering never waits on the disk or the store.

    A verdict is queued the moment it exists and written within milliseconds; a crash loses only what is queued
    (at most the answers in flight). `close` writes everything queued and returns how it went.
    """

    BATCH = 256

    def __init__(self, cache: ResultCache, stats: Any, group: str = "") -> None:
        self.cache, self.stats, self.group = cache, stats, group
        self._items: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()  # appends take no lock
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="nearai-cache-writer", daemon=True)
        self._thread.start()

    def submit(self, key: str, value: dict[str, Any]) -> None:
        self._items.append((key, value))
        if not self._wake.is_set():  # wake the writer only when it may be asleep
            self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()  # before draining: a submit from now on wakes us again
            while self._items:
                batch: list[tuple[str, dict[str, Any]]] = []
                while self._items and len(batch) < self.BATCH:
                    batch.append(self._items.popleft())
                self._write(batch)
            if self._closing and not self._items:
                return

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            results = self.cache.put_many(batch, self.group)
        except Exception as e:  # never let the writer die: count the batch as not cached
            results = [(False, False, f"{type(e).__name__}: {e}")] * len(batch)
        for kept, shared, problem in results:
            self.stats.not_cached += not kept
            self.stats.not_shared += kept and not shared
            self.stats.last_error = problem or self.stats.last_error

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join()
