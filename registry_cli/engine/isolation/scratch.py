"""Scratch folders: where a run keeps what it needs only while it runs (datum work folders, relay sockets, agent
copies), and how what a killed run left is found and removed.

Each process keeps its scratch folders under one root, ``$TMPDIR/nearai-run-<pid>-<start>-<random>``, named by
its owner: the pid and the process's start time, so a reused pid is not taken for the owner. The first process
that needs a root removes every root whose owner is gone (a run killed with -9 cleans up nothing itself), and
the folders older versions made directly in ``$TMPDIR`` once they are a day old. (Partial downloads carry the
same owner tag: `files.partial_prefix`.)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from registry_cli.core.files import owner_alive, owner_tag

ROOT_PREFIX = "nearai-run-"
LEGACY = ("nearai-datum-", "nearai-relay-", "nearai-agent-", "nearai-exec-")
LEGACY_AGE_S = 86400


def scratch_root() -> Path:
    """This process's scratch root, made (after removing what dead processes left) on first use."""
    root = _made_root()
    if not root.is_dir():  # removed under us (tmp cleaners): make it again
        _made_root.cache_clear()
        root = _made_root()
    return root


@lru_cache(maxsize=1)
def _made_root() -> Path:
    sweep()
    root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{owner_tag()}-"))
    root.chmod(0o755)  # sandboxes may run as other users and must reach their folders inside
    atexit.register(shutil.rmtree, root, True)  # a normal exit leaves nothing; a killed one, a root the next sweeps
    return root


SOCKET_PATH_MAX = 100  # a unix socket's path must fit in 108 bytes


def socket_folder() -> Path:
    """A new folder for a unix socket: in the scratch root, or (when that path is too long for a socket) a root
    of its own in /tmp, named by its owner like the others so that a sweep finds it if the process is killed. The
    caller removes it when done (the relay does, on exit)."""
    folder = Path(tempfile.mkdtemp(prefix="relay-", dir=scratch_root()))
    if len(str(folder / "relay.sock")) <= SOCKET_PATH_MAX:
        return folder
    folder.rmdir()
    return Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{owner_tag()}-", dir="/tmp"))


def sweep(base: Path | None = None) -> list[Path]:
    """Remove the scratch roots of processes that are gone, and day-old folders of older versions; what was removed."""
    removed: list[Path] = []
    now = time.time()
    entries: list[os.DirEntry[str]] = []
    for folder in {base or Path(tempfile.gettempdir()), Path("/tmp")}:  # /tmp: where socket folders may live
        with contextlib.suppress(OSError):
            entries += os.scandir(folder)
    for e in entries:
        stale = False
        if e.name.startswith(ROOT_PREFIX):
            stale = not owner_alive(e.name[len(ROOT_PREFIX):])
        elif e.name.startswith(LEGACY):
            with contextlib.suppress(OSError):
                stale = now - e.stat(follow_symlinks=False).st_mtime > LEGACY_AGE_S
        if stale and e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
            removed.append(Path(e.path))
    return removed
