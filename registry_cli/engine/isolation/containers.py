"""The docker and podman backends: a fresh container per run from a local image, no network but the relay.

Each container is labelled with the process that started it (``nearai.owner``: its pid and start time). A process
killed with -9 cannot stop its containers, and a container outlives the ``podman run`` that started it: the next
process to start one removes every labelled container whose owner is gone, so a killed run's agents do not run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from registry_cli.core import env as env_vars
from registry_cli.engine.isolation.sandbox import (
    NOBODY,
    WORK,
    Completed,
    Limits,
    Sandbox,
    base_env,
    chown_tree,
    kill_tree,
    with_forwarder,
)
from registry_cli.errors import SandboxUnavailable

OWNER_LABEL = "nearai.owner"
_REAPED: set[str] = set()  # engines whose orphans this process has removed

if TYPE_CHECKING:
    from registry_cli.engine.isolation.relay import Relay


class ContainerSandbox(Sandbox):
    """docker or podman (same CLI), for AutoGenBench users: a fresh container per run from ``--docker_image``,
    no network but the relay, uid 65534, no capabilities, memory/pids/file-size limits, a size-bounded /tmp.
    The image must have ``python``. The container is killed by name when the run ends."""

    def __init__(self, kind: str, image: str) -> None:
        self.kind, self.image = kind, image
        self._names: dict[int, str] = {}  # host pid -> container name, until stopped

    def python(self) -> str:
        return "python3"  # Debian images (and the tasks' own) have python3; not all have `python`

    def command(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                expose: tuple[Path, ...], relay: Relay | None = None,
                started_fd: int = -1) -> tuple[list[str], dict[str, str], str]:
        import uuid

        argv, env, expose = with_forwarder(self.python(), argv, env, expose, relay)
        if os.geteuid() == 0:
            chown_tree(workdir)
        args = [self.kind, "run", "--rm", "-i", "--init", "--name", f"nearai-{uuid.uuid4().hex[:16]}",
                "--network", "none", "--label", f"{OWNER_LABEL}={owner_of(os.getpid())}",
                "--user", f"{NOBODY}:{NOBODY}", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--memory", f"{limits.memory_mb}m", "--pids-limit", str(limits.nproc),
                # every rlimit given: with one alone, podman adds defaults the kernel may refuse (runc: "error
                # setting rlimit type 7")
                "--ulimit", f"fsize={limits.file_mb * 2**20}", "--ulimit", "nofile=1024:1024",
                "--ulimit", f"nproc={limits.nproc}:{limits.nproc}", "--tmpfs", f"/tmp:rw,size={limits.disk_mb}m",
                "-v", f"{workdir}:{WORK}", "-w", WORK]
        for p in expose:
            args += ["-v", f"{p}:{p}:ro"]
        for k, v in base_env(Path(WORK), env).items():
            args += ["-e", f"{k}={v}"]
        return [*args, self.image, *argv], {**env_vars.container_settings(), "PATH": env_vars.host_path()}, str(workdir)

    def track(self, proc: asyncio.subprocess.Process, full: list[str]) -> None:
        self._names[proc.pid] = full[full.index("--name") + 1]

    async def run(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                  expose: tuple[Path, ...] = (), relay: Relay | None = None) -> Completed:
        """`Sandbox.run`; a container that never started (the engine's own error, exit 125-127 with its
        ``Error:`` line and no output) is the machine's fault, not the code's."""
        if self.kind not in _REAPED:
            _REAPED.add(self.kind)
            await asyncio.to_thread(reap_orphans, self.kind)
        done = await super().run(argv, workdir, env, limits, expose, relay)
        said = done.stderr.text().strip().splitlines()
        if done.returncode in (125, 126, 127) and not done.stdout.text().strip() and said and \
                said[-1].startswith("Error:"):
            raise SandboxUnavailable(f"the {self.kind} sandbox could not start the code: {said[-1][:200]}",
                                     f"the machine's fault, not the code's: fix {self.kind} (see docs/sandbox.md); "
                                     "the datum is retried next run")
        return done

    def stop(self, proc: asyncio.subprocess.Process) -> None:
        import subprocess

        name = self._names.pop(proc.pid, "")
        if name and proc.returncode is None:  # never block the event loop: the kill runs on its own
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.Popen([self.kind, "kill", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_tree(proc)


def owner_of(pid: int) -> str:
    """``pid:start time`` (the start time tells a reused pid apart); "" when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def reap_orphans(kind: str) -> list[str]:
    """Remove the containers whose owning process is gone (killed with -9); their names. Never raises."""
    import subprocess

    settings = {**env_vars.container_settings(), "PATH": env_vars.host_path()}
    try:
        listed = subprocess.run([kind, "ps", "-a", "--filter", f"label={OWNER_LABEL}", "--format",
                                 f'{{{{.Names}}}} {{{{index .Labels "{OWNER_LABEL}"}}}}'],
                                capture_output=True, text=True, timeout=60, env=settings)
    except (OSError, subprocess.SubprocessError):
        return []
    gone = []
    for line in listed.stdout.splitlines():
        name, _, owner = line.strip().partition(" ")
        pid = owner.split(":", 1)[0]
        if name and pid.isdigit() and owner_of(int(pid)) != owner:
            gone.append(name)
    if gone:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([kind, "rm", "-f", *gone], capture_output=True, timeout=120, env=settings)
    return gone


def container_works(kind: str) -> bool:
    import shutil
    import subprocess

    if not shutil.which(kind):
        return False
    try:
        return subprocess.run([kind, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def image_present(kind: str, image: str) -> bool:
    import subprocess

    try:
        return subprocess.run([kind, "image", "inspect", image], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
