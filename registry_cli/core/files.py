"""Local files: written so that a crash never leaves one half-written, copied and hashed without passing their
bytes through Python."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import re
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path


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


def copy_into(src: str | Path, dst_fd: int) -> int:
    """Append the whole of ``src`` to the open file ``dst_fd`` inside the kernel (copy_file_range, or a
    read/write loop where that is not supported); the number of bytes copied."""
    with open(src, "rb", buffering=0) as f:
        fd, total = f.fileno(), 0
        try:
            while n := os.copy_file_range(fd, dst_fd, COPY_BLOCK):
                total += n
            return total
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM) or total:
                raise
        while chunk := f.read(COPY_BLOCK):
            write_all(dst_fd, chunk)
            total += len(chunk)
        return total


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def sha256_own_file(fd: int) -> str:
    """sha256 of a file this process wrote and nobody else changes (a temp file), from a memory map: no copy into
    Python, and the GIL is released while hashing. Not for user files: one truncated while mapped is SIGBUS."""
    if os.fstat(fd).st_size == 0:  # an empty file cannot be mapped
        return hashlib.sha256().hexdigest()
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as m:
        return hashlib.sha256(m).hexdigest()


COPY_BLOCK = 64 * 1024 * 1024


# ---- what a killed process leaves: temp names carry their owner ------------------------------------------------
_OWNED = re.compile(r"(\d+)-(\d+)-")


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (-1: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return -1
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def owner_tag() -> str:
    """``<pid>-<start>``: this process, told apart from a later one that reuses its pid."""
    return _tag_of(os.getpid())


@lru_cache(maxsize=4)
def _tag_of(pid: int) -> str:
    return f"{pid}-{max(_start_time(pid), 0)}"


def owner_alive(name: str) -> bool:
    """Whether the process whose `owner_tag` opens ``name`` still runs (True when ``name`` carries no tag)."""
    m = _OWNED.match(name)
    if m is None:
        return True
    start = _start_time(int(m.group(1)))
    return start >= 0 and (start == int(m.group(2)) or m.group(2) == "0")


def partial_prefix() -> str:
    """The name prefix of a file being downloaded by this process."""
    return f".tmp-{owner_tag()}-"


def sweep_partials(folder: Path) -> int:
    """Remove the partial downloads under ``folder`` whose process is gone; how many."""
    count = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if name.startswith(".tmp-") and not owner_alive(name[len(".tmp-"):]):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
                    count += 1
    return count
