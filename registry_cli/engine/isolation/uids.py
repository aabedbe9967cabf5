"""Sandbox uids, one per running sandbox, for a CLI running as root.

The kernel counts ``RLIMIT_NPROC`` per real uid: sandboxes sharing one uid share one process budget, so a fork
bomb in one would starve the others (and their failures would read as the code's). Each sandbox therefore runs as
a uid of its own from a range no account uses, claimed with an ``flock`` on a file per uid in a root-only folder,
so concurrent CLI processes on one machine never hand out the same uid twice. A lock dies with its process, so a
killed run leaves no uid claimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from pathlib import Path

from registry_cli.errors import NearaiError, SandboxUnavailable

FIRST = 1_700_000_000  # far above any account's uid, below the 32-bit "no uid" values
SLOTS = 4096
_held: dict[int, int] = {}  # uid -> the descriptor holding its lock
_lock = threading.Lock()
_next = 0


def _folder() -> Path:
    for base in ("/run", "/var/run", "/tmp"):
        folder = Path(base) / "nearai-sandbox-uids"
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            st = folder.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077:
            return folder
    raise NearaiError("no private folder for sandbox uid locks", "make /run writable for root")


def _still_running() -> set[int]:
    """Uids of the range that still own a process: a sandbox just stopped may not be gone yet (its killed processes
    are torn down by the kernel after the lock is given back), and they would count against the next owner's
    process limit."""
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
            except OSError:
                continue
            if FIRST <= uid < FIRST + SLOTS:
                found.add(uid)
    return found


def claim() -> int:
    """A uid no other running sandbox on this machine has, and no process left over from one; `release` gives it
    back."""
    global _next
    folder = _folder()
    with _lock:
        busy = _still_running()
        for step in range(SLOTS):
            slot = (_next + step) % SLOTS
            uid = FIRST + slot
            if uid in _held or uid in busy:
                continue
            fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held[uid] = fd
            _next = slot + 1
            return uid
    raise SandboxUnavailable(f"all {SLOTS} sandbox uids are in use on this machine",
                             "run fewer sandboxes at once (--max_concurrent)")


def release(uid: int) -> None:
    with _lock:
        fd = _held.pop(uid, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the only descriptor drops the lock
