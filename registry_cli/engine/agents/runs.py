"""Running an agent on one task: in the sandbox, once, over a world-readable copy of its folder.

The agent process (`host`, with upstream's `nearai` package on its path) talks JSON lines with the engine. The
engine answers its completions with the run's model (so the agent never holds a key), runs the registry agents it
starts (``env.run_agent``) the same way, each in a sandbox of its own, and keeps its agent data between tasks.
What the agent did — its messages, system logs and prints — comes back as an `AgentTrace`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.engine.agents import host, state
from registry_cli.engine.agents.spec import Agent, AgentTrace
from registry_cli.engine.inference.transcript import Completer
from registry_cli.engine.inference.usage import Usage
from registry_cli.engine.isolation.boundary import copy_out
from registry_cli.engine.isolation.sandbox import STREAM_LIMIT, Captured, Limits, Sandbox, compat_paths, watch_disk
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.errors import AgentFailure, InferenceFailure, NearaiError

AGENT_COPY_MAX = 1 << 30  # the most of an agent folder copied into its sandbox
MAX_MESSAGES = 4096  # messages in one completion request from an agent
EXIT_GRACE_S = 5.0  # how long an agent that answered has to exit, and its last prints to arrive


@dataclass
class AgentCall:
    """One agent run's inputs besides the agent: the task (or the thread it is given), the model and where."""

    task: str | None
    model: str
    inference: Completer | None
    usage: Usage
    workdir: Path
    timeout: float
    sandbox: Sandbox
    resolve: Callable[[str], Agent] | None = None  # a registry agent for ``env.run_agent``
    messages: list[dict[str, Any]] | None = None
    depth: int = 0
    workspace: str = ""  # where the agent works in its sandbox (e.g. a task's repository); "": a copy of its files
    before: str = ""  # shell steps the host runs there before the agent, and after it
    after: str = ""


async def run_agent(agent: Agent, call: AgentCall, trace: AgentTrace) -> str:
    """The agent's answer to the task; ``trace`` is filled in as it runs (also when it fails)."""
    limits = Limits(timeout_s=call.timeout, memory_mb=2048, file_mb=64, disk_mb=512)
    proc, code = await _start(agent, call.sandbox, call.workdir, limits)
    assert proc.stderr is not None
    log = Captured(limits.output_bytes)

    async def drain_log(stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            log.feed(chunk)
        trace.stderr = log.text()

    def failure(message: str) -> AgentFailure:
        trace.stderr = log.text()
        return AgentFailure(message, trace)

    request = {"task": call.task, "messages": call.messages, "model": call.model, "env_vars": dict(agent.env_vars),
               "agent": agent.describe(), "agent_data": state.load(agent.state_dir, agent.data_key),
               "depth": call.depth, "workspace": call.workspace, "before": call.before, "after": call.after}
    logger = asyncio.ensure_future(drain_log(proc.stderr))
    talk = asyncio.ensure_future(_converse(proc, request, agent, call, trace))
    watcher = asyncio.ensure_future(watch_disk(call.workdir, limits))
    try:
        done, _ = await asyncio.wait({talk, watcher}, timeout=call.timeout, return_when=asyncio.FIRST_COMPLETED)
        if talk in done:
            return talk.result()
        if watcher in done:
            raise failure(f"agent exceeded the disk limit ({limits.disk_mb} MiB)")
        raise failure(f"agent timed out after {call.timeout:g}s")
    except (BrokenPipeError, ConnectionResetError):
        raise failure("agent exited without a result") from None
    except AgentFailure as e:
        raise failure(str(e)) from None
    finally:
        answered = talk.done() and not talk.cancelled() and talk.exception() is None
        talk.cancel()
        watcher.cancel()
        await _end(proc, call.sandbox, logger, answered)
        trace.stderr = log.text()
        shutil.rmtree(code, ignore_errors=True)


async def _end(proc: asyncio.subprocess.Process, sandbox: Sandbox, logger: asyncio.Future[None], answered: bool) -> None:
    """Stop the agent's process and take in the last of its prints. An agent that answered is given time to exit
    by itself first: its answer (on stdout) can arrive before its prints (on stderr, relayed separately by a
    container's runtime), and stopping it at once would lose them."""
    if answered:
        try:
            await asyncio.wait_for(proc.wait(), EXIT_GRACE_S)
        except asyncio.TimeoutError:
            pass
    sandbox.stop(proc)
    await proc.wait()
    try:
        await asyncio.wait_for(logger, EXIT_GRACE_S)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        logger.cancel()


async def _start(agent: Agent, sandbox: Sandbox, workdir: Path, limits: Limits) -> tuple[asyncio.subprocess.Process, Path]:
    """The agent host running in the sandbox over a world-readable copy of the agent's folder (the sandbox may run as
    another user, and never sees the original), and that copy's folder."""
    host_file = Path(host.__file__).resolve()
    root, _ = compat_paths()  # the sandbox mounts the package; the host puts it first on sys.path
    code = Path(tempfile.mkdtemp(prefix="agent-", dir=scratch_root()))
    try:
        copy_out(agent.folder, code / "agent", AGENT_COPY_MAX, exclude=("__pycache__", ".git"))  # no link followed
        for p in [code, *code.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        sites = tuple(Path(s) for s in agent.site_dirs)
        argv = [sandbox.python(), "-I", str(host_file), str(code / "agent"), str(root), *agent.site_dirs]
        proc = await sandbox.spawn(argv, workdir, {}, limits, expose=(code, host_file, *sites))
    except BaseException:
        shutil.rmtree(code, ignore_errors=True)
        raise
    return proc, code


def _check_messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_MESSAGES or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in raw):
        raise AgentFailure("agent sent a malformed completion request (messages must be a list of role objects)")
    return raw


async def _complete(msg: dict[str, Any], call: AgentCall) -> dict[str, Any]:
    """The answer to one completion request of the agent (an error reply, never an exception, for the model's
    failures: the agent may handle them, and the run counts them)."""
    if call.inference is None:
        return {"error": "no --model given for this agent"}
    messages = _check_messages(msg.get("messages"))
    options = msg.get("options") if isinstance(msg.get("options"), dict) else {}
    try:
        if options:
            message = await call.inference.chat(messages, call.usage, options)
            return {"message": message, "text": message.get("content") or ""}
        return {"text": await call.inference.complete(messages, call.usage)}
    except InferenceFailure as e:
        return {"error": str(e)}


async def _child(msg: dict[str, Any], call: AgentCall, trace: AgentTrace) -> dict[str, Any]:
    """Run the registry agent another agent started (``env.run_agent``), in a sandbox and folder of its own."""
    name = str(msg.get("agent") or "")
    if call.resolve is None:
        return {"error": "this run cannot start other agents"}
    try:
        child = call.resolve(name)
    except NearaiError as e:
        return {"error": f"{name}: {e.message}"}
    workdir = Path(tempfile.mkdtemp(prefix="child-", dir=scratch_root()))
    sub = AgentTrace()
    try:
        nested = AgentCall(None, call.model, call.inference, call.usage, workdir, call.timeout, call.sandbox,
                           call.resolve, _check_messages(msg.get("messages")), int(msg.get("depth") or 1))
        output = await run_agent(child, nested, sub)
        return {"output": output, "messages": sub.messages}
    except AgentFailure as e:
        return {"error": str(e)}
    finally:
        trace.logs.append({"level": "INFO", "message": f"child agent {name}: {len(sub.messages)} messages"})
        shutil.rmtree(workdir, ignore_errors=True)


async def _converse(proc: asyncio.subprocess.Process, request: dict[str, Any], agent: Agent, call: AgentCall,
                    trace: AgentTrace) -> str:
    """The protocol with the agent host: send the task, answer its requests, return its result."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(request) + "\n").encode())
    await proc.stdin.drain()
    while True:
        msg = await _message(proc.stdout)
        kind = msg.get("type")
        if kind in ("result", "error"):
            trace.messages = [m for m in msg.get("messages") or [] if isinstance(m, dict)]
            trace.logs = [m for m in msg.get("logs") or [] if isinstance(m, dict)] + trace.logs
            state.merge(agent.state_dir, agent.data_key, msg.get("agent_data"))
        if kind == "result":
            return str(msg.get("output", ""))
        if kind == "error":
            raise AgentFailure(f"agent failed: {msg.get('message', '')}")
        if kind == "completion":
            reply = await _complete(msg, call)
        elif kind == "run_agent":
            reply = await _child(msg, call, trace)
        else:
            raise AgentFailure(f"agent sent unknown message type {kind!r}")
        proc.stdin.write((json.dumps(reply) + "\n").encode())
        await proc.stdin.drain()


async def _message(stdout: asyncio.StreamReader) -> dict[str, Any]:
    """The agent host's next message (a JSON object on one line)."""
    try:
        line = await stdout.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise AgentFailure("agent exited without a result") from None
    except asyncio.LimitOverrunError:
        raise AgentFailure(f"agent sent a message over {STREAM_LIMIT // 2**20} MiB") from None
    try:
        msg = json.loads(line)
    except ValueError:
        raise AgentFailure("agent broke the protocol") from None
    return msg if isinstance(msg, dict) else {}


__all__ = ["AGENT_COPY_MAX", "AgentCall", "run_agent"]
