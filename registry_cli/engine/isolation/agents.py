"""Agents: a folder (or registry entry) with agent.py, run in the sandbox once per task.

agent.py is either upstream nearai's form (module-level code using a global ``env``) or defines ``run(env)``; see
``agent_host``. The agent process talks JSON lines with the engine over stdin/stdout. Inference happens in the
engine, so the agent never holds a key; its environment holds only what the sandbox gives plus the agent's
declared ``details.env_vars`` (and a suite's ``environment_variables``). What the agent did — its messages,
system logs and prints — comes back as an `AgentTrace`, kept with the datum's result.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.names import METADATA_FILE
from registry_cli.engine.inference.transcript import Completer
from registry_cli.engine.inference.usage import Usage
from registry_cli.engine.isolation import agent_host
from registry_cli.engine.isolation.boundary import copy_out
from registry_cli.engine.isolation.sandbox import STREAM_LIMIT, Captured, Limits, Sandbox, watch_disk
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.engine.planning.dataset import Source
from registry_cli.errors import AgentFailure, InferenceError, InferenceFailure

TRACE_TEXT_LIMIT = 8192  # characters kept of each message and of the agent's prints


@dataclass
class AgentTrace:
    """One run of an agent on one task: its messages, system logs and the tail of its prints."""

    messages: list[dict[str, str]] = field(default_factory=list)
    logs: list[dict[str, str]] = field(default_factory=list)
    stderr: str = ""

    def as_dict(self) -> dict[str, Any]:
        def cut(text: object) -> str:
            return str(text)[-TRACE_TEXT_LIMIT:]

        return {"messages": [{"role": str(m.get("role", "")), "content": cut(m.get("content", ""))} for m in self.messages],
                "logs": [{"level": str(m.get("level", "")), "message": cut(m.get("message", ""))} for m in self.logs],
                "stderr": cut(self.stderr)}


@dataclass(frozen=True)
class AgentDefaults:
    """``details.agent.defaults`` of the agent's metadata.json: used when the run gives no --model."""

    model: str = ""
    model_provider: str = ""
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def model_id(self) -> str:
        """The model as litellm names it: ``provider/model`` unless the model already names its provider."""
        if not self.model or "/" in self.model or not self.model_provider:
            return self.model
        return f"{PROVIDERS.get(self.model_provider, self.model_provider)}/{self.model}"


PROVIDERS = {"fireworks": "fireworks_ai", "hyperbolic": "hyperbolic", "local": "openai"}  # upstream -> litellm


def _details(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    details = meta.get("details") if isinstance(meta, dict) else None
    return details if isinstance(details, dict) else {}


def _number(value: Any, kind: type[float] | type[int]) -> Any:
    try:
        return kind(value) if value is not None else None
    except (TypeError, ValueError):
        raise InferenceError(f"agent default {value!r} is not a number",
                             "fix details.agent.defaults in the agent's metadata.json") from None


@dataclass(frozen=True)
class Agent:
    source: Source
    env_vars: tuple[tuple[str, str], ...] = ()  # details.env_vars, then the run's own (a suite's)
    defaults: AgentDefaults = AgentDefaults()

    @classmethod
    def load(cls, source: Source, extra_env: dict[str, str] | None = None) -> Agent:
        cls.check(source.folder)
        details = _details(source.folder)
        declared = details.get("env_vars") or {}
        if not isinstance(declared, dict):
            raise InferenceError("details.env_vars in the agent's metadata.json must be an object", "e.g. {\"KEY\": \"value\"}")
        merged = {str(k): str(v) for k, v in {**declared, **(extra_env or {})}.items()}
        section = details.get("agent")
        raw = section.get("defaults") if isinstance(section, dict) else None
        raw = raw if isinstance(raw, dict) else {}
        defaults = AgentDefaults(str(raw.get("model") or ""), str(raw.get("model_provider") or ""),
                                 _number(raw.get("temperature"), float), _number(raw.get("max_tokens"), int))
        return cls(source, tuple(sorted(merged.items())), defaults)

    @property
    def folder(self) -> Path:
        return self.source.folder.resolve()

    @property
    def identity(self) -> str:
        """The agent's content, plus its environment variables when it has any (hashed: values may be secrets)."""
        if not self.env_vars:
            return self.source.content_hash
        return sha256_hex(canonical_json([self.source.content_hash, list(self.env_vars)]))

    @property
    def label(self) -> str:
        return self.source.label

    @staticmethod
    def check(path: Path) -> None:
        if not (path / "agent.py").is_file():
            raise InferenceError(f"no agent.py in {path}", "an agent folder needs agent.py defining run(env)")


AGENT_COPY_MAX = 1 << 30  # the most of an agent folder copied into its sandbox


async def run_agent(agent: Agent, task: str, model: str, inference: Completer | None, usage: Usage, workdir: Path,
                    timeout: float, sandbox: Sandbox, trace: AgentTrace) -> str:
    """The agent's answer to ``task``; ``trace`` is filled in as it runs (also when it fails)."""
    limits = Limits(timeout_s=timeout, memory_mb=2048, file_mb=64, disk_mb=512)
    proc, code = await _start(agent, sandbox, workdir, limits)
    assert proc.stderr is not None
    log = Captured(limits.output_bytes)

    async def drain_log(stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            log.feed(chunk)
        trace.stderr = log.text()

    def failure(message: str) -> AgentFailure:
        trace.stderr = log.text()
        return AgentFailure(message, trace)

    logger = asyncio.ensure_future(drain_log(proc.stderr))
    talk = asyncio.ensure_future(_converse(proc, {"task": task, "model": model, "env_vars": dict(agent.env_vars)},
                                           inference, usage, trace))
    watcher = asyncio.ensure_future(watch_disk(workdir, limits))
    try:
        done, _ = await asyncio.wait({talk, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if talk in done:
            return talk.result()
        if watcher in done:
            raise failure(f"agent exceeded the disk limit ({limits.disk_mb} MiB)")
        raise failure(f"agent timed out after {timeout:g}s")
    except (BrokenPipeError, ConnectionResetError):
        raise failure("agent exited without a result") from None
    except AgentFailure as e:
        raise failure(str(e)) from None
    finally:
        talk.cancel()
        watcher.cancel()
        sandbox.stop(proc)
        await proc.wait()
        try:  # the last of the agent's prints
            await asyncio.wait_for(logger, 1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            logger.cancel()
        trace.stderr = log.text()
        shutil.rmtree(code, ignore_errors=True)


async def _start(agent: Agent, sandbox: Sandbox, workdir: Path, limits: Limits) -> tuple[asyncio.subprocess.Process, Path]:
    """The agent host running in the sandbox over a world-readable copy of the agent's folder (the sandbox may run as
    another user, and never sees the original), and that copy's folder."""
    host = Path(agent_host.__file__).resolve()
    code = Path(tempfile.mkdtemp(prefix="agent-", dir=scratch_root()))
    try:
        copy_out(agent.folder, code / "agent", AGENT_COPY_MAX, exclude=("__pycache__", ".git"))  # no link followed
        for p in [code, *code.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        proc = await sandbox.spawn([sandbox.python(), "-I", str(host), str(code / "agent")], workdir, {}, limits,
                                   expose=(code, host))
    except BaseException:
        shutil.rmtree(code, ignore_errors=True)
        raise
    return proc, code


async def _converse(proc: asyncio.subprocess.Process, request: dict[str, Any], inference: Completer | None,
                    usage: Usage, trace: AgentTrace) -> str:
    """The protocol with the agent host: send the task, answer its completions, return its result."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(request) + "\n").encode())
    await proc.stdin.drain()
    while True:
        msg = await _message(proc.stdout)
        kind = msg.get("type")
        if kind in ("result", "error"):
            trace.messages = [m for m in msg.get("messages") or [] if isinstance(m, dict)]
            trace.logs = [m for m in msg.get("logs") or [] if isinstance(m, dict)]
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
