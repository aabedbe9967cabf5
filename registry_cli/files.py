"""Local files: written so that a crash never leaves one half-written, and copied while they are hashed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from registry_cli.content import CHUNK


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename: readers see the old or the new text, never half."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes, *more: bytes) -> None:
    """`atomic_write_text` for bytes: ``data`` then each of ``more`` (not joined in memory first)."""
    atomic_write_parts(path, (data, *more))


def atomic_write_parts(path: Path, parts: Iterable[bytes]) -> None:
    """`atomic_write_bytes` of parts written as they come: a generator's are never all in memory at once."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def copy_hashed(src: str | Path, dst_fd: int) -> tuple[int, str]:
    """Append the whole of ``src`` to the open file ``dst_fd``, reading it once: each chunk is hashed and then
    written from the same buffer, so what lands in ``dst_fd`` is exactly what was hashed, even if ``src`` changes
    meanwhile. (size, sha256 hex). One pass over the bytes: a kernel copy followed by hashing the copy costs more
    CPU in all (measured: docs/bench.md)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            write_all(dst_fd, view[:n])
            total += n
    return total, h.hexdigest()


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
