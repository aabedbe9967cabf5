"""What the registry and the result cache need from an object store (`Store`), and plain whole-file reads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from registry_cli.core.content import CHUNK
from registry_cli.errors import StoreError

if TYPE_CHECKING:
    pass


class Store(Protocol):
    """What the registry and the result cache need from an object store."""

    url: str
    workers: int  # threads worth using for many small reads (one for a folder, where a thread costs more than a read)
    transfers: int  # threads worth using for file uploads and downloads
    remote: bool  # reads cross a network: objects that never change are worth keeping on this machine

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def create(self, key: str, data: bytes) -> bool:
        """Write only if ``key`` is absent; return False (writing nothing) if it exists."""
        ...

    def exists(self, key: str) -> bool: ...

    def holds(self, key: str, md5_hex: str, size: int) -> bool:
        """Whether ``key`` exists and is known to hold the ``size`` bytes whose MD5 is ``md5_hex`` (content-addressed
        objects are reused only then: a copy a failed upload left damaged is written again)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine)."""
        ...

    def put_file(self, key: str, path: Path) -> None: ...

    def ingest(self, path: Path, key_of: Callable[[str], str], known: frozenset[str]) -> tuple[str, int, bool]:
        """Store the file under ``key_of(its sha256)`` unless that is in ``known`` or present, reading it once where
        possible; ``(sha256, size, whether bytes were written)``."""
        ...

    def read_into(self, key: str, fd: int) -> bool | None:
        """Append the object's bytes to the open file ``fd``. Whether they arrived as the store holds them: True,
        False (altered on the way: worth reading again), None (the store gives no digest to tell)."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Yield ``(key, etag)`` for every key under ``prefix`` (which ends with '/')."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix``: `list` without the etags."""
        ...

    def keys_remembered(self, prefix: str) -> Iterator[str]:
        """`keys`, answered where the store can from what this machine remembers of an earlier listing that is
        provably still current (a local folder whose modification time has not changed)."""
        ...

    def stat_list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """Yield ``(key, size, modified as epoch seconds)`` for every key under ``prefix``."""
        ...

    def partials(self, older_than: float) -> tuple[str, ...]:
        """Unfinished writes (temp files, multipart uploads) started before ``older_than`` (epoch seconds)."""
        ...

    def drop_partial(self, name: str) -> None:
        """Remove one of `partials`."""
        ...


SMALL_READ = 16384


def read_whole(path: str) -> bytes:
    """A whole file with plain system calls, no Path or buffered file object (listings read 100,000 objects). A
    read of a regular file that returns less than asked for has reached its end, so a small file (a ref, a
    manifest) takes one read and no `fstat`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        first = os.read(fd, SMALL_READ)
        if len(first) < SMALL_READ:
            return first
        chunks = [first]
        size = max(os.fstat(fd).st_size - SMALL_READ, 1)
        while chunk := os.read(fd, size):  # the size may change under us: read to the end
            chunks.append(chunk)
            size = CHUNK
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file(path: Path) -> bytes:
    """A file being uploaded, whole."""
    try:
        return read_whole(str(path))
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}", "check the folder being uploaded") from None


class Writer(Protocol):
    def __call__(self, f: IO[bytes], /) -> object: ...
