"""Result packs: a run's verdicts as checksummed JSON lines, one file per run and group, here and in the store.

A line is ``{"sum":"<sha256 of the value's JSON>","value":<that JSON, compact>}``. Readers verify every line and skip
one that does not check out (the torn tail of a killed run, a flipped byte), so a damaged line is a miss and is
recomputed, never a wrong verdict.

On this machine a group's packs live in ``<cache>/packs/<group>/``:

- ``run-<time>-<id>.jsonl`` while a run appends to it, under an exclusive ``flock`` (a crash releases it);
- ``<sha256>.jsonl`` once the store holds the same bytes as ``cache/v2/packs/<group>/<sha256>.jsonl``, whether
  this machine sealed it or fetched it. Store names are the hash of their content, so a download that does not
  hash to its name is dropped, and two machines writing the same keys each add a pack: nothing is overwritten.
- ``<sha256>.bin`` beside a sealed pack: its verified results in Python's marshal format, 512 to a
  checksummed chunk (`write_chunked`), written when the pack is sealed or first read. A sealed pack never changes,
  so this stays true for as long as the pack is there; reading it is several times faster than parsing the JSON.
  It names the size, modification time and inode of the pack it was made from: one that is damaged, missing or
  made from the pack before a change (which can only be damage) is made again from the pack's verified lines.

A run that crashed leaves its ``run-`` pack unlocked; the next run sharing the store seals and uploads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from registry_cli.caches.bulk import collector_paused, json_parsed
from registry_cli.caches.snapshots import read_chunked, write_chunked
from registry_cli.core.files import atomic_write_bytes

_HEAD = b'{"sum":"'
_MID = b'","value":'
_START = len(_HEAD) + 64 + len(_MID)
SEALED = re.compile(r"^[0-9a-f]{64}\.jsonl$")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode_line(value: dict[str, Any], normalize: Callable[[Any], Any] | None = None) -> bytes:
    """One pack line; ``normalize`` makes JSON of what plain JSON refuses (NaN, numpy scalars), when given."""
    try:  # key order as given: the checksum covers these very bytes, so nothing needs sorting
        data = _dumps(value).encode()
    except (TypeError, ValueError):
        if normalize is None:
            raise
        data = _dumps(normalize(value)).encode()
    return _HEAD + hashlib.sha256(data).hexdigest().encode() + _MID + data + b"}\n"


def _checked(line: bytes) -> bytes | None:
    """The value's JSON of one pack line whose checksum holds, else None (a torn or altered line)."""
    line = line.rstrip(b"\n")
    if len(line) <= _START or not line.startswith(_HEAD) or not line.endswith(b"}"):
        return None
    data = line[_START:-1]
    if line[len(_HEAD) + 64:_START] != _MID or hashlib.sha256(data).hexdigest().encode() != line[len(_HEAD):len(_HEAD) + 64]:
        return None
    return data


def _result(value: Any) -> dict[str, Any] | None:
    key = value.get("key") if isinstance(value, dict) else None
    return value if isinstance(key, str) and len(key) == 64 else None


_BATCH = 4096
_CHUNK = 512  # results to a chunk of a digest: made at the end of a run, beside its results, so kept small


def _results(lines: Iterable[bytes], batch: int = _BATCH) -> Iterator[dict[str, Any]]:
    """The results of the good ones of ``lines``, a few thousand parsed at a time (`json_parsed`: the key names
    repeated on every line are then one string each in memory, a third of a large cache)."""
    checked = ((None, data) for data in map(_checked, lines) if data is not None)
    for _, value in json_parsed(checked, batch):
        result = _result(value)
        if result is not None:
            yield result


def verified_lines(data: bytes) -> bytes:
    """Only the lines of ``data`` that check out (checksum, one JSON result), each ending with a newline."""
    checked = ((line, value) for line in data.split(b"\n") if (value := _checked(line)) is not None)
    return b"".join(line + b"\n" for line, value in json_parsed(checked, _BATCH) if _result(value) is not None)


def each(folder: Path) -> Iterator[dict[str, Any]]:
    """Every verified result in a group's local packs, oldest pack first (so the newest wins for a reader that
    keeps the last of each key), read line by line: a whole pack in memory would be its size again."""
    try:
        paths = sorted(folder.glob("*.jsonl"), key=_age)
    except OSError:
        return
    with collector_paused():
        for path in paths:
            sealed = SEALED.match(path.name) is not None
            digest = _digested(path) if sealed else None
            if digest is not None:
                for chunk in digest:
                    yield from chunk
                continue
            try:
                f = open(path, "rb")  # closed by the `with` below, which spans the yields
            except OSError:  # sealed and renamed by another process since the listing: its new name is read next time
                continue
            with f:
                if not sealed:
                    yield from _results(f)
                    continue
                stamp = _stamp(os.fstat(f.fileno()))
                results = []  # the pack's, for its digest: they are kept by the reader anyway
                for result in _results(f):
                    results.append(result)
                    yield result
            _digest(path, stamp, results)


def _digest_of(pack: Path) -> Path:
    return pack.with_suffix(".bin")


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def _digested(pack: Path) -> Iterator[list[dict[str, Any]]] | None:
    """The chunks of a sealed pack's results from its digest, when there is one made from the pack as it is now
    (a pack changed on disk since is damaged: it is read line by line again, and a fresh digest made)."""
    chunks = read_chunked(_digest_of(pack))
    if chunks is None:
        return None
    try:
        now = _stamp(os.stat(pack))
    except OSError:
        return None
    return chunks if next(chunks, None) == now else None


def _digest(pack: Path, stamp: tuple[int, int, int], results: Iterable[dict[str, Any]]) -> None:
    """Write a sealed pack's digest from its results, a chunk at a time, after the ``stamp`` of the pack read."""
    def chunks() -> Iterator[Any]:
        yield stamp
        chunk = []
        for result in results:
            chunk.append(result)
            if len(chunk) == _CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    write_chunked(_digest_of(pack), chunks())


def _age(path: Path) -> tuple[float, str]:
    try:
        return path.stat().st_mtime, path.name
    except OSError:
        return 0.0, path.name


class PackWriter:
    """Appends verdicts to a run's own ``run-`` pack, each `append` one ``write`` straight to the file (no buffer),
    so a killed process loses only what it had not handed over yet. A write that fails (a full disk) is cut off
    again, leaving whole lines only. ``rotate`` closes the pack (to be sealed); the next append opens a new one."""

    def __init__(self, folder: Path, normalize: Callable[[Any], Any] | None = None) -> None:
        self.folder, self.normalize = folder, normalize
        self.lines = 0
        self.opened = 0.0
        self._fd = -1
        self._size = 0
        self.path: Path | None = None

    def append(self, values: Iterable[dict[str, Any]]) -> None:
        data = b"".join(encode_line(v, self.normalize) for v in values)
        if not data:
            return
        if self._fd < 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"run-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd, self.path, self._size, self.opened = fd, path, 0, time.monotonic()
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write: the rest, or the error that caused it
                written += os.write(self._fd, data[written:])
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        self.lines += data.count(b"\n")

    def rotate(self) -> Path | None:
        """Close the current pack; its path (None when nothing was written). The next append opens a new one."""
        path, fd = self.path, self._fd
        self._fd, self.path, self.lines = -1, None, 0
        if fd >= 0:
            os.close(fd)  # releases the lock
        return path


def seal(path: Path, put: Callable[[str, bytes], None] | None, prefix: str, trusted: bool = False) -> str:
    """Share a finished ``run-`` pack: upload its verified lines as ``<prefix><sha256>.jsonl`` (with ``put``) and
    rename it locally to match. Returns the sealed name ("" when the pack was empty or is still being written).
    ``trusted``: the caller wrote the whole pack and closed it, so its lines are not checked again."""
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(open(path, "rb"))
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run still appending holds it
        except OSError:
            return ""
        raw = f.read()
        data = raw if trusted else verified_lines(raw)
        if not data:
            path.unlink(missing_ok=True)
            return ""
        name = hashlib.sha256(data).hexdigest() + ".jsonl"
        if put is not None:
            put(prefix + name, data)
        final = path.parent / name
        if data == raw:
            os.replace(path, final)
        else:
            atomic_write_bytes(final, data)
            path.unlink(missing_ok=True)
        del raw
        with collector_paused():
            _digest(final, _stamp(os.stat(final)), _results(io.BytesIO(data), _CHUNK))  # what the next run reads, not the JSON
        return name


def unsealed(folder: Path) -> list[Path]:
    """This machine's packs not yet in the store (the ones being written are skipped by `seal`)."""
    try:
        return sorted(folder.glob("run-*.jsonl"))
    except OSError:
        return []


def fetch_into(folder: Path, names: Iterable[str], get: Callable[[str], bytes], prefix: str) -> list[str]:
    """Download the store's packs missing here; keep each only if it hashes to its name. The names kept."""
    got: list[str] = []
    for name in names:
        if not SEALED.match(name) or (folder / name).exists():
            continue
        try:
            data = get(prefix + name)
        except Exception:  # an unreadable pack is a miss
            continue
        if hashlib.sha256(data).hexdigest() + ".jsonl" != name:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            atomic_write_bytes(folder / name, data)
            got.append(name)
    return got


def read_sealed(path: Path) -> list[dict[str, Any]]:
    """The verified results of one sealed pack (one just fetched: its digest is made by the next full read)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    return list(_results(io.BytesIO(data)))


def store_names(listing: Iterable[tuple[str, str]], prefix: str) -> list[str]:
    return [key[len(prefix):] for key, _ in listing if key.startswith(prefix)]
