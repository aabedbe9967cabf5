"""Cache files that hold many small records at once (a store's folder listings, its entries' summaries): one
marshal document behind a magic line and a checksum, written atomically. Reading never raises: a missing, torn,
altered or foreign file reads as None and its owner rebuilds it. Only plain values go in (str, bytes, int, bool,
tuples, lists, dicts); marshal is used because it loads them several times faster than JSON. A file written by
another version of Python reads as None.
"""

from __future__ import annotations

import contextlib
import marshal
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from registry_cli.caches.bulk import collector_paused
from registry_cli.core.files import atomic_write_bytes, atomic_write_parts

MAGIC = b"nearai-snapshot/1 py%d.%d " % sys.version_info[:2]  # marshal's format may change with Python's version


def read_snapshot(path: Path) -> Any | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    end = data.find(b"\n", 0, 64)
    body = memoryview(data)[end + 1:]  # not a copy: these files run to tens of MB
    if end < 0 or not data.startswith(MAGIC) or data[len(MAGIC):end] != b"%08x" % zlib.crc32(body):
        return None
    try:
        with collector_paused():
            return marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None


def write_snapshot(path: Path, value: Any) -> None:
    """Replace the file with ``value``; a cache that cannot be written (no space, no permission) is left as it was."""
    body = marshal.dumps(value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, MAGIC + b"%08x\n" % zlib.crc32(body), body)  # tens of MB: not copied to join
    except OSError:
        pass


CHUNKED = b"nearai-chunks/1 py%d.%d\n" % sys.version_info[:2]
_FRAME = struct.Struct(">II")  # body length, crc32 of the body; a frame of length 0 ends the file


def write_chunked(path: Path, chunks: Iterable[Any]) -> None:
    """A snapshot of many values, each marshalled and checked on its own, so that neither writing nor reading it
    holds more than one in memory as bytes. Written atomically; a cache that cannot be written is left as it was."""
    def parts() -> Iterator[bytes]:
        yield CHUNKED
        for chunk in chunks:
            body = marshal.dumps(chunk)
            yield _FRAME.pack(len(body), zlib.crc32(body))
            yield body
        yield _FRAME.pack(0, 0)

    with contextlib.suppress(OSError):
        atomic_write_parts(path, parts())


def read_chunked(path: Path) -> Iterator[Any] | None:
    """The values of a `write_chunked` file one at a time, or None when it is missing, incomplete or any of it fails
    its check (all of it is checked before the first value is given)."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    try:
        frames = _frames(f) if f.read(len(CHUNKED)) == CHUNKED else None
    except OSError:
        frames = None
    if frames is None:
        f.close()
        return None
    return _values(f, frames)


def _frames(f: BinaryIO) -> list[tuple[int, int]] | None:
    """(offset, length) of each body, when every frame checks out and the end frame is there."""
    out: list[tuple[int, int]] = []
    while len(head := f.read(_FRAME.size)) == _FRAME.size:
        length, crc = _FRAME.unpack(head)
        if length == 0:
            return out
        at = f.tell()
        body = f.read(length)
        if len(body) != length or zlib.crc32(body) != crc:
            return None
        out.append((at, length))
    return None


def _values(f: BinaryIO, frames: list[tuple[int, int]]) -> Iterator[Any]:
    with f, collector_paused():
        for at, length in frames:
            f.seek(at)
            try:
                value = marshal.loads(f.read(length))
            except (ValueError, EOFError, TypeError):  # checked, so only if the file changed in place since
                return
            yield value
