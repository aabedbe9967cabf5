"""Per-datum result cache: packs of checksummed JSON lines per run (see `packs`), shared through the store, plus a
diskcache for single entries (JSON kept in the database only, never pickle, never files named by a row).

Keys are sha256 of canonical JSON of everything that changes the answer (see ``result_key``). Values are JSON.
Errors are never cached. The cache never raises: an unreadable or altered value is a miss, and a failed write is
counted, so a flaky store or a full disk never ends a run. The shared copy lives in packs under
``cache/v2/packs/<group>/`` in the registry's store, so machines sharing a store share results.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from diskcache import Cache, Disk
from diskcache.core import MODE_RAW

from registry_cli.core import env
from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.store import Store
from registry_cli.engine.caching import packs
from registry_cli.engine.inference.credentials import redact
from registry_cli.errors import UnsafeCacheValue

CACHE_SCHEMA = 2
_DATUM_MARK, _REPEAT_MARK = "nearai:datum:7f3c", "nearai:repeat:7f3c"  # placeholders in a key template


class JSONOnlyDisk(Disk):  # type: ignore[misc]
    """diskcache storage that keeps JSON inside the database and nothing else: it never unpickles (CVE-2025-69872),
    never reads a file a row names and never deletes one, so a planted row is a miss, not a file read or removal."""

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
        return 0, MODE_RAW, None, sqlite3.Binary(json.dumps(value, separators=(",", ":")).encode())

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode != MODE_RAW or filename is not None or read:
            raise UnsafeCacheValue("only JSON kept in the database is read")
        try:
            return json.loads(bytes(value) if isinstance(value, (bytes, memoryview)) else value)
        except (ValueError, TypeError):
            raise UnsafeCacheValue("non-JSON cache value refused") from None

    def remove(self, file_path: Any) -> None:
        """Rows written here name no file; a file named by any other row is left alone."""


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
    """A datum's content hash (changing how it is computed needs a new `datum_index.SCHEMA`: indexes keep them)."""
    return sha256_hex(canonical_json(jsonable(datum)))


def result_key(parts: dict[str, Any]) -> str:
    """sha256 of canonical JSON (sorted keys, None dropped) of the answer-determining parts plus the schema."""
    return sha256_hex(canonical_json(drop_none({"schema": CACHE_SCHEMA, **parts})))


def item_keys(common: dict[str, Any]) -> Callable[[str, int], str]:
    """`result_key` of ``{**common, "datum": datum_hash, "repeat": repeat}``, with the common part cleaned once."""
    base = drop_none({"schema": CACHE_SCHEMA, **common})
    template = canonical_json({**base, "datum": _DATUM_MARK, "repeat": _REPEAT_MARK})
    head, _, rest = template.partition(b'"' + _DATUM_MARK.encode() + b'"')
    middle, _, tail = rest.partition(b'"' + _REPEAT_MARK.encode() + b'"')
    if template.count(_DATUM_MARK.encode()) != 1 or template.count(_REPEAT_MARK.encode()) != 1 or not tail:
        return lambda datum, repeat: sha256_hex(canonical_json({**base, "datum": datum, "repeat": repeat}))
    head += b'"'
    middle = b'"' + middle

    def key(datum: str, repeat: int) -> str:
        """The same bytes canonical_json would give (a datum hash is hex, a repeat an int), without building them."""
        return hashlib.sha256(b"%s%s%s%d%s" % (head, datum.encode(), middle, repeat, tail)).hexdigest()

    return key


def cache_group(common: dict[str, Any]) -> str:
    """What the items of one run share (solver, dataset, subset, model, agent): names its packs in the store."""
    return sha256_hex(canonical_json(drop_none({"schema": CACHE_SCHEMA, **common})))[:32]


def pack_prefix(group: str) -> str:
    return f"cache/v{CACHE_SCHEMA}/packs/{group}/"


class ResultCache:
    """Verdicts by cache key, on this machine and in the store.

    A run's verdicts go to packs (see `packs`): appended locally as they come, one file per run and group, and
    shared with the store as one content-addressed object when the run ends, so sharing costs a PUT per run and
    reading a LIST plus a GET per pack, never a request per datum. Single entries (completions cached by the model
    relay, results put one by one) and the rows of earlier versions live in a diskcache. Nothing here raises: what
    cannot be read is a miss, what cannot be written is counted.
    """

    def __init__(self, directory: Path, remote: Store | None) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self.directory = directory
        self.remote = remote
        self.refused = 0  # unsafe local rows seen (treated as misses)
        self.local: Cache | None = None
        self.problem = ""
        try:
            self.local = Cache(str(directory), disk=JSONOnlyDisk, size_limit=2**40, eviction_policy="none",
                               cull_limit=0,  # nothing expires or is evicted: skip the culling queries on writes
                               disk_min_file_size=2**40)  # values stay in the database, never in files
        except Exception as e:  # a full disk, a damaged database: single entries are misses, packs still work
            self.problem = f"local cache: {type(e).__name__}: {e}"
        self._rows = self._count()

    def _count(self) -> int:
        if self.local is None:
            return 0
        try:
            return len(self.local)
        except Exception:
            return 1  # unknown: keep looking there

    def get_local(self, key: str) -> dict[str, Any] | None:
        """A single entry kept on this machine (not the packs: see `each_result`). An empty database is counted again
        (one query, as a lookup would be) rather than trusted: another process or instance may have written since."""
        if self.local is None:
            return None
        if not self._rows:
            self._rows = self._count()
            if not self._rows:
                return None
        try:
            value = self.local.get(key)
        except UnsafeCacheValue:
            self.refused += 1
            return None
        except Exception:  # a locked or damaged database is a miss, never a failed run
            return None
        return value if isinstance(value, dict) else None

    def each_result(self, group: str) -> Iterator[dict[str, Any]]:
        """Every verified verdict of ``group`` on this machine, one at a time, oldest pack first: a reader keeping
        the last of each key has the newest."""
        return packs.each(self.pack_folder(group)) if group else iter(())

    def pack_folder(self, group: str) -> Path:
        return self.directory / "packs" / group

    def sync(self, group: str) -> int:
        """Share this machine's packs of ``group`` the store lacks, then fetch the store's packs missing here; how
        many packs came in."""
        if self.remote is None or not group:
            return 0
        self.share(group)
        return len(self._fetch(group))

    def news(self, group: str) -> list[dict[str, Any]]:
        """The verified results of the store's packs of ``group`` that came in since the last look (other machines'
        work on the same run, shared while it is in flight: see `CacheWriter`)."""
        if self.remote is None or not group:
            return []
        folder = self.pack_folder(group)
        return [result for name in self._fetch(group) for result in packs.read_sealed(folder / name)]

    def _fetch(self, group: str) -> list[str]:
        if self.remote is None:
            return []
        prefix = pack_prefix(group)
        try:
            names = packs.store_names(self.remote.list(prefix), prefix)
        except Exception:  # an unreadable store is a miss
            return []
        return packs.fetch_into(self.pack_folder(group), names, self.remote.get_bytes, prefix)

    def share(self, group: str, ours: Path | None = None) -> str:
        """Seal every finished pack of ``group`` (uploading it when there is a store); the last problem, or "".
        ``ours``: a pack this process wrote and closed, whole, so its lines need no checking."""
        problem = ""
        put = self.remote.put_bytes if self.remote is not None else None
        for path in packs.unsealed(self.pack_folder(group)):
            try:
                packs.seal(path, put, pack_prefix(group), trusted=path == ours)
            except Exception as e:  # StoreError, a full disk: the pack stays and is shared by a later run
                problem = redact(f"store: {e}")
        return problem

    def put(self, key: str, value: dict[str, Any]) -> tuple[bool, str]:
        """Keep one entry on this machine. Returns (kept, problem)."""
        if self.local is None:
            return False, self.problem
        try:
            self.local.set(key, {**value, "key": key})
        except Exception as e:  # e.g. a full disk
            return False, f"local cache: {type(e).__name__}: {e}"
        self._rows = 1
        return True, ""

    def close(self) -> None:
        if self.local is not None:
            self.local.close()


class CacheWriter:
    """Appends a run's verdicts to its pack as they come: one small write each, from the thread that has the
    verdict, so it is in the kernel's hands before that worker takes its next datum and kill -9 loses only the
    datums in flight. (A writer thread woken per verdict cost more CPU than the writes.)

    With a store, a background thread shares the pack once it is ``NEARAI_SHARE_SECONDS`` old (5) and starts a new one, so
    another machine (or a Ray worker taking over a chunk) sees this run's results at most about twice that long
    after they exist, while the run goes on. Without one, the pack is sealed when it grows large or old. Either
    way what is left is shared when the run ends (`close`); a run that could not share it leaves it for the next.
    """

    ROTATE_LINES, ROTATE_SECONDS = 50_000, 300.0

    def __init__(self, cache: ResultCache, stats: Any, group: str = "") -> None:
        self.cache, self.stats, self.group = cache, stats, group or "ungrouped"
        self.pack = packs.PackWriter(cache.pack_folder(self.group), jsonable)
        self._sharing: list[threading.Thread] = []
        self._lock = threading.Lock()  # the pack is appended to by solver threads and rotated by the ticker
        self._closing = threading.Event()
        self._ticker: threading.Thread | None = None
        self.share_seconds = env.share_seconds()
        if cache.remote is not None:
            self._ticker = threading.Thread(target=self._tick, name="nearai-cache-share", daemon=True)
            self._ticker.start()

    def submit(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` (a dict of this call's own, which gains its ``key``)."""
        value["key"] = key
        with self._lock:
            try:
                self.pack.append([value])
            except Exception as e:  # a full disk, a value JSON cannot hold: counted, never fatal
                self.stats.not_cached += 1
                self.stats.last_error = f"local cache: {type(e).__name__}: {e}"
                return
            if self.pack.lines < self.ROTATE_LINES and time.monotonic() - self.pack.opened < self.ROTATE_SECONDS:
                return
            lines, path = self.pack.lines, self.pack.rotate()
        thread = threading.Thread(target=self._share, args=(path, lines), name="nearai-cache-share", daemon=True)
        thread.start()
        self._sharing.append(thread)

    def _tick(self) -> None:
        while not self._closing.wait(self.share_seconds / 5):
            with self._lock:
                if not self.pack.lines or time.monotonic() - self.pack.opened < self.share_seconds:
                    continue
                lines, path = self.pack.lines, self.pack.rotate()
            self._share(path, lines)

    def _share(self, path: Path | None, lines: int) -> None:
        problem = self.cache.share(self.group, path)
        if problem:
            self.stats.not_shared += lines
            self.stats.last_error = problem

    def close(self) -> None:
        """Share what this run wrote (and packs earlier runs left unshared); blocks on the store."""
        self._closing.set()
        if self._ticker is not None:
            self._ticker.join()
        for thread in self._sharing:
            thread.join()
        with self._lock:
            lines, path = self.pack.lines, self.pack.rotate()
        self._share(path, lines)
