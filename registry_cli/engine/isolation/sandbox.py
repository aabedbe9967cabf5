"""The sandbox seam: every piece of untrusted code (model-written programs, dataset tests, agents) runs through
here, never in the CLI process.

`Sandbox.run` runs a command to completion with bounded captured output; `Sandbox.spawn` starts an interactive
one (stdin/stdout pipes) for agents. Both give the code an empty environment apart from what the caller passes,
a private working folder, resource limits, and kill the whole process tree at the timeout.

The backends: ``bwrap`` (the default), ``containers`` (docker, podman); ``backends.open_sandbox`` picks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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


@functools.lru_cache(maxsize=1)
def compat_paths() -> tuple[str, tuple[Path, ...]]:
    """Upstream's `nearai` package for code in every sandbox: the folder to put on ``PYTHONPATH`` and the package
    folders to mount read-only (`nearai`, and what its solvers import), found without importing them."""
    spec = importlib.util.find_spec("nearai")
    if spec is None or not spec.submodule_search_locations:
        return "", ()
    package = Path(next(iter(spec.submodule_search_locations))).resolve()
    root = package.parent
    mounts = [package] + [root / name for name in ("registry_cli", "solvers") if (root / name / "__init__.py").is_file()]
    return str(root), tuple(mounts)


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

    def relay_env(self, relay: Relay) -> dict[str, str]:
        """What code inside sees of ``relay`` (its URL and placeholder key), to write into config files."""
        return relay.env(relay.port if self.kind == "native" else INSIDE_PORT)

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
        root, mounts = compat_paths()
        if root:  # `import nearai` works in every sandbox, as upstream's code expects
            paths = [p for p in env.get("PYTHONPATH", "").split(":") if p] + [root]
            env, expose = {**env, "PYTHONPATH": ":".join(paths)}, (*expose, *mounts)
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


def chown_tree(path: Path, uid: int = NOBODY) -> None:
    for dirpath, dirs, files in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
            with contextlib.suppress(OSError):
                os.lchown(name, uid, uid)
