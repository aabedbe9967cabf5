"""The bubblewrap backend: namespaces, a read-only root, a private work folder, a uid of its own per sandbox when
the CLI runs as root, and a launcher inside that says the code started."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from registry_cli.core import env as env_vars
from registry_cli.engine.isolation import uids
from registry_cli.engine.isolation.sandbox import (
    WORK,
    Limits,
    Sandbox,
    base_env,
    chown_tree,
    kill_tree,
    with_forwarder,
)

if TYPE_CHECKING:
    from registry_cli.engine.isolation.relay import Relay

# Runs first inside a bwrap sandbox: says "started" on the descriptor argv[1], drops to uid/gid argv[2] (unless -1),
# then becomes the command.
_LAUNCH = ("import os,sys;fd,uid=int(sys.argv[1]),int(sys.argv[2])\n"
           "if uid>=0:os.setgroups([]);os.setgid(uid);os.setuid(uid)\n"
           "if fd>=0:os.write(fd,b'1');os.close(fd)\n"
           "os.execvp(sys.argv[3],sys.argv[3:])")


class BwrapSandbox(Sandbox):
    """bubblewrap: new pid/net/ipc/uts (and, unprivileged, user) namespaces; a read-only root made of read-only
    system folders, the interpreter and what the caller exposes; a private writable work folder and a size-bounded
    /tmp; no network; rlimits; the whole tree dies with its parent. As root, each sandbox runs as a uid of its own
    (`uids.claim`), so root's private files stay unreadable and the process limit is its own: a fork bomb in one
    sandbox cannot starve another. Unprivileged, each sandbox is a user namespace of its own, which the kernel
    counts processes in apart."""

    kind = "bwrap"

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0

    def python(self) -> str:
        return sys.executable

    def _mounts(self, expose: tuple[Path, ...]) -> list[str]:
        args: list[str] = []
        for top in ("usr", "etc"):
            args += ["--ro-bind", f"/{top}", f"/{top}"]
        for link in ("bin", "lib", "lib64", "sbin", "lib32"):
            host = Path("/") / link
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{link}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{link}"]
        made: set[str] = {"/", "/usr", "/etc", "/tmp", "/proc", "/dev", "/nearai"}
        roots = {Path(sys.base_prefix), Path(sys.prefix), *expose}
        for path in sorted(str(p) for p in roots):
            for parent in reversed(Path(path).parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", path, path]
        return args

    def reports_start(self) -> bool:
        return True

    def command(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                expose: tuple[Path, ...], relay: Relay | None = None,
                started_fd: int = -1) -> tuple[list[str], dict[str, str], str]:
        argv, env, expose = with_forwarder(self.python(), argv, env, expose, relay)
        inside = base_env(Path(WORK), env)
        args = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--clearenv"]
        if not self.as_root:
            args.append("--unshare-user")
        for k, v in inside.items():
            args += ["--setenv", k, v]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(limits.disk_mb * 2**20),
                 "--tmpfs", "/tmp"]
        args += self._mounts(expose)
        args += ["--perms", "0755", "--dir", "/nearai", "--bind", str(workdir), WORK, "--chdir", WORK,
                 "--remount-ro", "/"]  # last: the root bwrap built is read-only for any user; binds keep their own
        uid = -1
        if self.as_root:  # a uid of its own inside: no capabilities, root's files unreadable, its own RLIMIT_NPROC
            uid = uids.claim()
            chown_tree(workdir, uid)
        if started_fd >= 0 or uid >= 0:
            args += [self.python(), "-I", "-c", _LAUNCH, str(started_fd), str(uid)]
        return args + argv, {"PATH": env_vars.host_path()}, str(workdir)

    def track(self, proc: asyncio.subprocess.Process, full: list[str]) -> None:
        uid = _launch_uid(full)
        if uid >= 0:
            _UIDS_OF[proc.pid] = uid

    def release(self, full: list[str]) -> None:
        uid = _launch_uid(full)
        if uid >= 0:
            uids.release(uid)

    def stop(self, proc: asyncio.subprocess.Process) -> None:
        kill_tree(proc)  # bwrap dies, so its pid namespace does: nothing that ran as the uid survives it
        uid = _UIDS_OF.pop(proc.pid, -1)
        if uid >= 0:
            uids.release(uid)


_UIDS_OF: dict[int, int] = {}  # bwrap's pid -> the uid its sandbox runs as, until stopped


def _launch_uid(full: list[str]) -> int:
    """The uid a bwrap command line's launcher drops to (-1: none)."""
    try:
        i = full.index(_LAUNCH)
    except ValueError:
        return -1
    return int(full[i + 2])


def bwrap_works() -> bool:
    import shutil
    import subprocess

    if not shutil.which("bwrap"):
        return False
    try:
        probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent",
                                *([] if os.geteuid() == 0 else ["--unshare-user"]), "true"],
                               capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0
