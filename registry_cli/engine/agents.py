"""Agents: a folder (or registry entry) with agent.py defining ``run(env)``, run in the sandbox once per task.

The agent process talks JSON lines with the engine over stdin/stdout (see ``agent_host``). Inference happens in
the engine, so the agent never holds a key; its environment is empty apart from what the sandbox gives.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from registry_cli.engine import agent_host
from registry_cli.engine.dataset import Source
from registry_cli.engine.inference import Inference, InferenceFailure, Usage
from registry_cli.engine.sandbox import STREAM_LIMIT, Captured, Limits, Sandbox, watch_disk
from registry_cli.errors import InferenceError


class AgentFailure(Exception):
    """The agent crashed, broke the protocol or timed out: the datum is an error (not cached)."""


@dataclass(frozen=True)
class Agent:
    source: Source

    @property
    def folder(self) -> Path:
        return self.source.folder.resolve()

    @property
    def identity(self) -> str:
        return self.source.content_hash

    @property
    def label(self) -> str:
        return self.source.label

    @staticmethod
    def check(path: Path) -> None:
        if not (path / "agent.py").is_file():
            raise InferenceError(f"no agent.py in {path}", "an agent folder needs agent.py defining run(env)")


async def run_agent(agent: Agent, task: str, model: str, inference: Inference | None, usage: Usage, workdir: Path,
                    timeout: float, sandbox: Sandbox) -> str:
    limits = Limits(timeout_s=timeout, memory_mb=2048, file_mb=64, disk_mb=512)
    host = Path(agent_host.__file__).resolve()
    code = Path(tempfile.mkdtemp(prefix="nearai-agent-"))
    try:  # a world-readable copy: the sandbox may run as another user, and never sees the original folder
        shutil.copytree(agent.folder, code / "agent", ignore=shutil.ignore_patterns("__pycache__", ".git"))
        for p in [code, *code.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        proc = await sandbox.spawn([sandbox.python(), "-I", str(host), str(code / "agent")], workdir, {}, limits,
                                   expose=(code, host))
    except BaseException:
        shutil.rmtree(code, ignore_errors=True)
        raise
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    log = Captured(limits.output_bytes)

    async def drain_log(stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            log.feed(chunk)

    logger = asyncio.ensure_future(drain_log(proc.stderr))

    async def converse() -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps({"task": task, "model": model}) + "\n").encode())
        await proc.stdin.drain()
        while True:
            try:
                line = await proc.stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                raise AgentFailure("agent exited without a result") from None
            except asyncio.LimitOverrunError:
                raise AgentFailure(f"agent sent a message over {STREAM_LIMIT // 2**20} MiB") from None
            try:
                msg = json.loads(line)
            except ValueError:
                raise AgentFailure("agent broke the protocol") from None
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "result":
                return str(msg.get("output", ""))
            if kind == "error":
                raise AgentFailure(f"agent failed: {msg.get('message', '')}")
            if kind != "completion":
                raise AgentFailure(f"agent sent unknown message type {kind!r}")
            if inference is None:
                reply = {"error": "no --model given for this agent"}
            else:
                try:
                    reply = {"text": await inference.complete(msg["messages"], usage)}
                except InferenceFailure as e:
                    reply = {"error": str(e)}
            proc.stdin.write((json.dumps(reply) + "\n").encode())
            await proc.stdin.drain()

    talk = asyncio.ensure_future(converse())
    watcher = asyncio.ensure_future(watch_disk(workdir, limits))
    try:
        done, _ = await asyncio.wait({talk, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if talk in done:
            return talk.result()
        if watcher in done:
            raise AgentFailure(f"agent exceeded the disk limit ({limits.disk_mb} MiB)")
        raise AgentFailure(f"agent timed out after {timeout:g}s")
    except (BrokenPipeError, ConnectionResetError):
        raise AgentFailure("agent exited without a result") from None
    finally:
        talk.cancel()
        watcher.cancel()
        sandbox.stop(proc)
        await proc.wait()
        logger.cancel()
        shutil.rmtree(code, ignore_errors=True)
