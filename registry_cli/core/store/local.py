"""The local store: a folder on disk with the same key layout as S3 (the embedded default)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from registry_cli.caches.snapshots import read_snapshot, write_snapshot
from registry_cli.core.content import CHUNK
from registry_cli.core.files import copy_into, sha256_own_file
from registry_cli.core.store.base import Writer, read_file, read_whole
from registry_cli.errors import NotFoundInStore, StoreError

if TYPE_CHECKING:
    pass


class LocalStore:
    """A directory on local disk with the same key layout as the S3 store."""

    def __init__(self, root: Path, memo_dir: Path | None = None) -> None:
        """``memo_dir``: where `keys_remembered` keeps its folder listings (None: it lists every folder)."""
        self.root = root
        self.memo_dir = memo_dir
        self.url = str(root)
        self.workers = 1
        self.transfers = 2 * (os.cpu_count() or 1)  # hashing and copying: CPU and disk, not waiting
        self.remote = False  # a file here is read as fast as a copy of it in a local cache

    def _path(self, key: str) -> Path:
        return self.root / key

    def _tmp(self, final: Path) -> tuple[int, str]:
        final.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=final.parent, prefix=".tmp-")

    def get_bytes(self, key: str) -> bytes:
        try:
            return read_whole(f"{self.root}/{key}")
        except FileNotFoundError:
            raise NotFoundInStore(key) from None
        except OSError as e:
            raise StoreError(f"cannot read {self._path(key)}: {e.strerror}", "check the store folder") from None

    def _write_tmp(self, final: Path, writer: Writer, durable: bool = False) -> str:
        try:
            fd, tmp = self._tmp(final)
        except OSError as e:
            raise StoreError(f"cannot write to {final.parent}: {e.strerror}", "check permissions and free space") from None
        try:
            with os.fdopen(fd, "wb") as f:
                writer(f)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise StoreError(f"cannot write {final}: {e.strerror}", "check permissions and free space") from None
            raise
        return tmp

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        tmp = self._write_tmp(final, lambda f: f.write(data))
        os.replace(tmp, final)

    def create(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        tmp = self._write_tmp(final, lambda f: f.write(data), durable=True)
        try:
            os.link(tmp, final)  # atomic, fails if the name exists
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def holds(self, key: str, md5_hex: str, size: int) -> bool:
        """A local object is renamed into place only after its bytes were hashed to its name: existing is enough
        (its size is checked against a truncated copy)."""
        try:
            return self._path(key).stat().st_size == size
        except OSError:
            return False

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as e:
            raise StoreError(f"cannot delete {self._path(key)}: {e.strerror}", "check permissions") from None

    def put_file(self, key: str, path: Path) -> None:
        final = self._path(key)

        def copy(f: IO[bytes]) -> None:
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    f.write(chunk)

        tmp = self._write_tmp(final, copy)
        os.replace(tmp, final)

    def ingest(self, path: Path, key_of: Callable[[str], str], known: frozenset[str]) -> tuple[str, int, bool]:
        """One read of the source: small files are hashed in memory and written only when absent. Larger ones are
        copied by the kernel into a temp file, which is hashed from a memory map and renamed to its key (or
        dropped when that exists): the blob holds exactly what its name says, even if the source changes.
        ``known`` is not trusted here: a stat is cheap, and gc may have removed a blob a version names because
        it was damaged."""
        if path.stat().st_size <= SMALL_FILE:
            data = read_file(path)
            digest = hashlib.sha256(data).hexdigest()
            if self.exists(key_of(digest)):  # a stat here costs less than trusting ``known`` after a gc
                return digest, len(data), False
            self.put_bytes(key_of(digest), data)
            return digest, len(data), True
        size, digest = 0, ""

        def copy(f: IO[bytes]) -> None:
            nonlocal size, digest
            size = copy_into(path, f.fileno())
            digest = sha256_own_file(f.fileno())

        tmp = self._write_tmp(self._path("blobs/incoming"), copy)
        final = self._path(key_of(digest))
        if final.is_file():
            os.unlink(tmp)
            return digest, size, False
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return digest, size, True

    def read_into(self, key: str, fd: int) -> bool | None:
        try:
            copy_into(self._path(key), fd)
            return True  # nothing on the way: what was read is what the folder holds
        except FileNotFoundError:
            raise NotFoundInStore(key) from None
        except OSError as e:
            raise StoreError(f"cannot copy {self._path(key)}: {e.strerror}", "check the store folder and free space") from None

    def _walk(self, prefix: str, temporary: bool = False,
              stat: bool = True) -> Iterator[tuple[str, os.stat_result | None]]:
        """(key, stat) of the files under ``prefix``: the objects, or (``temporary``) the unfinished writes.
        Without ``stat``, the keys alone (a stat per file is most of the cost of a large listing)."""
        base = self._path(prefix)
        if not base.is_dir():
            return
        cut = len(str(base)) + 1  # keys are ``prefix`` + the path below ``base``: no relpath per file
        lead = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        stack = [str(base)]
        while stack:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.startswith(".tmp-") == temporary:
                        try:
                            st = e.stat() if stat else None
                        except FileNotFoundError:  # renamed or removed since the listing
                            continue
                        yield lead + e.path[cut:].replace(os.sep, "/"), st

    def _stats(self, prefix: str, temporary: bool = False) -> Iterator[tuple[str, os.stat_result]]:
        for key, st in self._walk(prefix, temporary):
            if st is not None:
                yield key, st

    def list(self, prefix: str) -> Iterator[tuple[str, str]]:
        for key, st in self._stats(prefix):
            yield key, f"{st.st_mtime_ns}-{st.st_size}"

    def keys(self, prefix: str) -> Iterator[str]:
        for key, _ in self._walk(prefix, stat=False):
            yield key

    def keys_remembered(self, prefix: str) -> Iterator[str]:
        """Each folder is listed again only when its modification time or inode changed since it was last listed;
        otherwise one `stat` stands in for the listing. A folder modified less than `SETTLED_NS` before it was
        listed is not remembered: a second change within the file system clock's granularity could leave its
        time as it was (git's "racy" entries). Keys come out folder by folder, in name order: a listing's sort of
        them has next to nothing to do."""
        if self.memo_dir is None:
            yield from self.keys(prefix)
            return
        lead = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        memo_path = self.memo_dir / (hashlib.sha256(f"{self.url}\n{lead}".encode()).hexdigest()[:16] + ".bin")
        memo = read_snapshot(memo_path)
        seen: dict[str, Folder] = memo[2] if isinstance(memo, tuple) and memo[:2] == (self.url, lead) else {}
        base = str(self._path(lead)).rstrip(os.sep)
        settled = time.time_ns() - SETTLED_NS
        now: dict[str, Folder] = {}
        stack = [""]
        while stack:
            rel = stack.pop()
            path = f"{base}/{rel}" if rel else base
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            folder = seen.get(rel)
            if folder is None or folder[0] != st.st_mtime_ns or folder[1] != st.st_ino:
                folder = _listed_folder(path, st)  # stat first: a change made while listing shows next time
                if folder is None:
                    continue
            if st.st_mtime_ns < settled:
                now[rel] = folder
            sub = lead + rel + "/" if rel else lead
            for name in folder[3]:
                yield sub + name
            if folder[2]:
                stack.extend([f"{rel}/{name}" if rel else name for name in reversed(folder[2])])  # popped in order
        if now != seen:
            write_snapshot(memo_path, (self.url, lead, now))

    def stat_list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        for key, st in self._stats(prefix):
            yield key, st.st_size, st.st_mtime

    def partials(self, older_than: float) -> tuple[str, ...]:
        return tuple(sorted(key for key, st in self._stats("", temporary=True) if st.st_mtime < older_than))

    def drop_partial(self, name: str) -> None:
        self.delete(name)


Folder = tuple[int, int, tuple[str, ...], tuple[str, ...]]  # mtime_ns, inode, sub-folders, files


SETTLED_NS = 2_000_000_000


def _listed_folder(path: str, st: os.stat_result) -> Folder | None:
    """A folder's sub-folders and object files (unfinished writes left out); None when it is gone."""
    dirs: list[str] = []
    files: list[str] = []
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    dirs.append(e.name)
                elif not e.name.startswith(".tmp-"):
                    files.append(e.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_mtime_ns, st.st_ino, tuple(sorted(dirs)), tuple(sorted(files))  # keys come out sorted


SMALL_FILE = 64 * 1024  # a local upload reads files up to this size into memory; larger ones are copied by the kernel
