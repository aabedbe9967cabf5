"""Files crossing the sandbox boundary, in both directions, without trusting a name or a link.

In: `write_inside` writes a file whose name comes from data (a scenario's ``files``, a template) strictly inside a
folder: the name is relative, has no ``..`` or empty parts, and no folder on the way may be a symbolic link (each
step is opened relative to the one before with ``O_NOFOLLOW``), so neither a crafted name nor a link planted
earlier can send bytes elsewhere.

Out: `copy_out` copies what sandboxed code left in its folder to a place the host keeps (``Results/``). Nothing is
followed: only regular files come out, each opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat``
after opening (a link to ``/proc/self/environ`` or ``/dev/zero``, a FIFO or a socket is skipped, never read), and
only within a size and count budget. Everything left behind is listed with the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from registry_cli.errors import DatasetError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 64
COPY_BLOCK = 1 << 20


def check_data_path(name: object, where: str) -> str:
    """``name`` as a safe relative POSIX path, or a one-line DatasetError naming ``where`` it came from."""
    bad = (not isinstance(name, str) or not name or len(name) > 1024 or name.startswith("/") or "\\" in name
           or any(ord(c) < 32 or ord(c) == 127 for c in name))
    if not bad:
        assert isinstance(name, str)
        parts = PurePosixPath(name).parts
        bad = any(p in ("", ".", "..") for p in parts) or "/".join(parts) != name
    if bad:
        raise DatasetError(f"{where}: unsafe file name {name!r}",
                           "file names must be relative paths inside the run folder, without '..'")
    assert isinstance(name, str)
    return name


def write_inside(root: Path, name: str, data: bytes, where: str) -> None:
    """Write ``data`` to ``root/name``, never outside ``root`` (see the module docstring)."""
    parts = check_data_path(name, where).split("/")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise DatasetError(f"{where}: {name!r} passes through a link or a file",
                                       "file names must stay inside the run folder") from None
                raise
            os.close(fd)
            fd = sub
        try:
            out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                          dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR):
                raise DatasetError(f"{where}: {name!r} names a link or a folder",
                                   "file names must name plain files inside the run folder") from None
            raise
        with os.fdopen(out, "wb") as f:
            f.write(data)
    finally:
        os.close(fd)


@dataclass
class CopyReport:
    files: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def copy_out(src: Path, dest: Path, max_bytes: int, max_files: int = 10_000,
             exclude: tuple[str, ...] = ()) -> CopyReport:
    """Copy the regular files under ``src`` to the new folder ``dest`` (see the module docstring), but for the
    top-level names in ``exclude`` (what the host writes there itself)."""
    report = CopyReport()
    dest.mkdir(parents=True)
    top = os.open(src, _DIR_FLAGS)
    try:
        _copy_dir(top, dest, "", report, max_bytes, max_files, 0, exclude)
    finally:
        os.close(top)
    return report


def _copy_dir(fd: int, dest: Path, rel: str, report: CopyReport, max_bytes: int, max_files: int, depth: int,
              exclude: tuple[str, ...] = ()) -> None:
    for name in sorted(os.listdir(fd)):
        path = f"{rel}{name}"
        if name in exclude:
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if depth >= MAX_DEPTH:
                report.skipped.append(f"{path}/: nested too deep")
                continue
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                report.skipped.append(f"{path}/: {e.strerror}")
                continue
            try:
                (dest / name).mkdir()
                _copy_dir(sub, dest / name, f"{path}/", report, max_bytes, max_files, depth + 1)
            finally:
                os.close(sub)
        elif not stat.S_ISREG(st.st_mode):
            report.skipped.append(f"{path}: {_kind(st.st_mode)}, not copied")
        elif report.files >= max_files:
            report.skipped.append(f"{path}: over the limit of {max_files} files")
        elif report.bytes + st.st_size > max_bytes:
            report.skipped.append(f"{path}: {st.st_size} bytes, over the {max_bytes}-byte budget")
        else:
            _copy_file(fd, name, dest / name, path, report, max_bytes)


def _copy_file(fd: int, name: str, target: Path, path: str, report: CopyReport, max_bytes: int) -> None:
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as e:
        report.skipped.append(f"{path}: {e.strerror}")
        return
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):  # swapped for something else since it was listed
            report.skipped.append(f"{path}: {_kind(st.st_mode)}, not copied")
            return
        room = max_bytes - report.bytes
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        copied = 0
        with os.fdopen(out, "wb") as f:
            while copied <= room and (chunk := os.read(src, min(COPY_BLOCK, room + 1 - copied))):
                f.write(chunk)
                copied += len(chunk)
        if copied > room:  # it grew while being copied
            target.unlink()
            report.skipped.append(f"{path}: grew past the {max_bytes}-byte budget")
            return
        report.files += 1
        report.bytes += copied
    finally:
        os.close(src)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
