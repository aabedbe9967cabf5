"""The sandbox seam: every piece of untrusted code (model-written programs, dataset tests, agents) runs through
here, never in the CLI process.

`Sandbox.run` runs a command to completion with bounded captured output; `Sandbox.spawn` starts an interactive
one (stdin/stdout pipes) for agents. Both give the code an empty environment apart from what the caller passes,
a private working folder, resource limits, and kill the whole process tree at the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registry_cli.core import env as env_vars
from registry_cli.engine.isolation import uids
from registry_cli.errors import SandboxUnavailable

if TYPE_CHECKING:
    from registry_cli.engine.isolation.relay import Relay

OUTPUT_CHUNK = 64 * 1024
STREAM_LIMIT = 64 * 2**20  # the longest line an interactive process may send


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0
    memory_mb: int = 1024
    file_mb: int = 64  # largest single file
    disk_mb: int = 512  # everything written under the work folder
    nproc: int = 256
    output_bytes: int = 256 * 1024  # captured per stream: the head and the tail are kept, the rest counted

    @property
    def cpu_s(self) -> int:
        return int(self.timeout_s) + 1


@dataclass
class Captured:
    """A stream's head and tail, and how many bytes it had in all."""

    limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        half = self.limit // 2
        room = half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > half:
                del self.tail[: len(self.tail) - half]

    @property
    def omitted(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        middle = f"\n[... {self.omitted} bytes omitted ...]\n" if self.omitted else ""
        return self.head.decode(errors="replace") + middle + self.tail.decode(errors="replace")


@dataclass
class Completed:
    returncode: int | None
    stdout: Captured
    stderr: Captured
    timed_out: bool = False
    exceeded: str = ""  # a limit the host enforced by killing the run, e.g. "disk"


def _child_setup(limits: Limits) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        import resource

        os.setsid()
        if sys.platform.startswith("linux"):  # die with the parent, even on kill -9 (before the memory limit)
            import ctypes

            with contextlib.suppress(Exception):
                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        for res, value in ((resource.RLIMIT_AS, limits.memory_mb * 2**20), (resource.RLIMIT_CPU, limits.cpu_s),
                           (resource.RLIMIT_FSIZE, limits.file_mb * 2**20), (resource.RLIMIT_NPROC, limits.nproc),
                           (resource.RLIMIT_CORE, 0)):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(res, (value, value))

    return setup


def kill_tree(proc: asyncio.subprocess.Process) -> None:
    """Kill the process group the sandboxed command leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def folder_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


async def watch_disk(workdir: Path, limits: Limits) -> str:
    """Returns "disk" once the work folder holds more than the limit (the caller then kills the run)."""
    while True:
        await asyncio.sleep(0.1)
        if await asyncio.to_thread(folder_size, workdir) > limits.disk_mb * 2**20:
            return "disk"


def base_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment code inside gets: nothing of the host's but PATH and the locale."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(workdir)}
    env.update(extra or {})
    return env


class Sandbox:
    """The native backend: rlimits, a new session, an empty environment, death with the parent. It does not hide
    the host's files or network: opt in with ``--sandbox=native`` only for code you trust."""

    kind = "native"

    def python(self) -> str:
        """The interpreter code inside runs with."""
        return sys.executable

    def command(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                expose: tuple[Path, ...], relay: Relay | None = None,
                started_fd: int = -1) -> tuple[list[str], dict[str, str], str]:
        """(argv, environment, cwd) of the host process that runs ``argv`` in this sandbox; with ``started_fd`` (where
        `reports_start`), a byte is written to that descriptor inside just before ``argv`` runs."""
        extra = {**env, **(relay.env(relay.port) if relay else {})}
        return argv, base_env(workdir, extra), str(workdir)

    async def _start(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                     stdin: int | None, expose: tuple[Path, ...], relay: Relay | None = None,
                     started_fd: int = -1) -> asyncio.subprocess.Process:
        full, environ, cwd = self.command(argv, workdir, env, limits, expose, relay, started_fd)
        try:
            proc = await asyncio.create_subprocess_exec(
                *full, cwd=cwd, env=environ, stdin=stdin,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=_child_setup(limits),
                limit=STREAM_LIMIT, pass_fds=(started_fd,) if started_fd >= 0 else (),
            )
        except BaseException as e:
            self.release(full)
            if isinstance(e, OSError):
                raise SandboxUnavailable(f"the sandbox could not start: {e.strerror or e}",
                                         "the machine is short of processes or memory; the datum is retried next run"
                                         ) from None
            raise
        self.track(proc, full)
        return proc

    def track(self, proc: asyncio.subprocess.Process, full: list[str]) -> None:
        """Called with each started process and its host command line (containers note their name)."""

    def release(self, full: list[str]) -> None:
        """Give back what `command` reserved for the host command line ``full`` (a sandbox uid)."""

    def stop(self, proc: asyncio.subprocess.Process) -> None:
        """Kill everything the sandboxed command started."""
        kill_tree(proc)

    def reports_start(self) -> bool:
        """Whether the code inside says it started (through ``started_fd``) before the command runs."""
        return False

    async def spawn(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                    expose: tuple[Path, ...] = ()) -> asyncio.subprocess.Process:
        """An interactive process (stdin/stdout/stderr pipes). The caller ends it with `stop`.
        ``expose``: host paths the code may read (at the same path)."""
        return await self._start(argv, workdir, env, limits, asyncio.subprocess.PIPE, expose)

    async def run(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                  expose: tuple[Path, ...] = (), relay: Relay | None = None) -> Completed:
        """Run to completion (or the timeout, or the disk limit); output bounded to head and tail. With
        ``relay``, the code reaches the model under test at ``$OPENAI_BASE_URL`` and nowhere else. Raises
        `SandboxUnavailable` when the sandbox never got to start the command."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC) if self.reports_start() else (-1, -1)
        try:
            proc = await self._start(argv, workdir, env, limits, asyncio.subprocess.DEVNULL, expose, relay,
                                     write_end)
        finally:
            if write_end >= 0:
                os.close(write_end)
        try:
            done = await self._wait(proc, workdir, limits)
        finally:
            started = read_end < 0 or _said_started(read_end)
        if not started and not done.timed_out:
            lines = done.stderr.text().strip().splitlines()
            raise SandboxUnavailable(f"the {self.kind} sandbox could not start the code"
                                     f"{': ' + lines[-1][:200] if lines else ''}",
                                     "the machine's fault, not the code's: the datum is retried next run")
        return done

    async def _wait(self, proc: asyncio.subprocess.Process, workdir: Path, limits: Limits) -> Completed:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Captured(limits.output_bytes), Captured(limits.output_bytes)

        async def pump(stream: asyncio.StreamReader, sink: Captured) -> None:
            while chunk := await stream.read(OUTPUT_CHUNK):
                sink.feed(chunk)

        pumps = asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err))
        waiter = asyncio.ensure_future(proc.wait())
        watcher = asyncio.ensure_future(watch_disk(workdir, limits))
        timed_out, exceeded = False, ""
        try:
            done, _ = await asyncio.wait({waiter, watcher}, timeout=limits.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if watcher in done:
                exceeded = watcher.result()
            elif not done:
                timed_out = True
        finally:
            watcher.cancel()
            self.stop(proc)  # also whatever the command left running in the background
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pumps, 5)
            await waiter
        return Completed(proc.returncode, out, err, timed_out, exceeded)


def _said_started(read_end: int) -> bool:
    try:
        os.set_blocking(read_end, False)
        return bool(os.read(read_end, 1))
    except BlockingIOError:
        return False
    finally:
        os.close(read_end)


WORK = "/nearai/work"  # the work folder's path inside a bwrap sandbox
INSIDE_PORT = 8800  # where code inside a bwrap sandbox finds the model relay
NOBODY = 65534
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
            _chown_tree(workdir, uid)
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


def with_forwarder(python: str, argv: list[str], env: dict[str, str], expose: tuple[Path, ...],
                   relay: Relay | None) -> tuple[list[str], dict[str, str], tuple[Path, ...]]:
    """For sandboxes without a network: a forwarder inside turns the relay's unix socket into
    ``127.0.0.1:INSIDE_PORT`` before ``argv`` runs."""
    if relay is None:
        return argv, env, expose
    from registry_cli.engine.isolation import relay_forwarder

    forwarder = Path(relay_forwarder.__file__).resolve()
    return ([python, "-I", str(forwarder), str(relay.socket), str(INSIDE_PORT), "--", *argv],
            {**env, **relay.env(INSIDE_PORT)}, (*expose, relay.folder, forwarder))


class ContainerSandbox(Sandbox):
    """docker or podman (same CLI), for AutoGenBench users: a fresh container per run from ``--docker_image``,
    no network but the relay, uid 65534, no capabilities, memory/pids/file-size limits, a size-bounded /tmp.
    The image must have ``python``. The container is killed by name when the run ends."""

    def __init__(self, kind: str, image: str) -> None:
        self.kind, self.image = kind, image
        self._names: dict[int, str] = {}  # host pid -> container name, until stopped

    def python(self) -> str:
        return "python"

    def command(self, argv: list[str], workdir: Path, env: dict[str, str], limits: Limits,
                expose: tuple[Path, ...], relay: Relay | None = None,
                started_fd: int = -1) -> tuple[list[str], dict[str, str], str]:
        import uuid

        argv, env, expose = with_forwarder(self.python(), argv, env, expose, relay)
        if os.geteuid() == 0:
            _chown_tree(workdir)
        args = [self.kind, "run", "--rm", "-i", "--init", "--name", f"nearai-{uuid.uuid4().hex[:16]}",
                "--network", "none",
                "--user", f"{NOBODY}:{NOBODY}", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--memory", f"{limits.memory_mb}m", "--pids-limit", str(limits.nproc),
                "--ulimit", f"fsize={limits.file_mb * 2**20}", "--tmpfs", f"/tmp:rw,size={limits.disk_mb}m",
                "-v", f"{workdir}:{WORK}", "-w", WORK]
        for p in expose:
            args += ["-v", f"{p}:{p}:ro"]
        for k, v in base_env(Path(WORK), env).items():
            args += ["-e", f"{k}={v}"]
        return [*args, self.image, *argv], {"PATH": env_vars.host_path()}, str(workdir)

    def track(self, proc: asyncio.subprocess.Process, full: list[str]) -> None:
        self._names[proc.pid] = full[full.index("--name") + 1]

    def stop(self, proc: asyncio.subprocess.Process) -> None:
        import subprocess

        name = self._names.pop(proc.pid, "")
        if name and proc.returncode is None:  # never block the event loop: the kill runs on its own
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.Popen([self.kind, "kill", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_tree(proc)


def container_works(kind: str) -> bool:
    import shutil
    import subprocess

    if not shutil.which(kind):
        return False
    try:
        return subprocess.run([kind, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _chown_tree(path: Path, uid: int = NOBODY) -> None:
    for dirpath, dirs, files in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
            with contextlib.suppress(OSError):
                os.lchown(name, uid, uid)


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


def open_sandbox(kind: str, docker_image: str = "") -> Sandbox:
    """The backend for ``--sandbox``: ``auto`` is bwrap where it works. Raises when the choice is unavailable."""
    from registry_cli.errors import UsageError

    if kind in ("auto", "bwrap"):
        if bwrap_works():
            return BwrapSandbox()
        raise UsageError("the bwrap sandbox is not available here",
                         "install it (apt-get install bubblewrap), or pass --sandbox=native to run untrusted code "
                         "without isolation")
    if kind == "native":
        return Sandbox()
    if not container_works(kind):
        raise UsageError(f"--sandbox={kind}: no {kind} daemon answers here",
                         f"install and start {kind}, or use --sandbox=bwrap")
    if not image_present(kind, docker_image):
        raise UsageError(f"image {docker_image} is not on this machine",
                         f"build or import it first ({kind} build / {kind} import), or pull it where a registry is "
                         "reachable")
    return ContainerSandbox(kind, docker_image)


def image_present(kind: str, image: str) -> bool:
    import subprocess

    try:
        return subprocess.run([kind, "image", "inspect", image], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
