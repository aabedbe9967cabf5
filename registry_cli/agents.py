"""Agents: a folder (or registry entry) with agent.py defining ``run(env)``, run in its own process per task."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from registry_cli.errors import InferenceError
from registry_cli.inference import Inference, InferenceFailure, Usage


class AgentFailure(Exception):
    """The agent crashed, broke the protocol or timed out: the datum is an error (not cached)."""


@dataclass(frozen=True)
class Agent:
    path: Path
    identity: str  # manifest hash (registry entry) or content hash (local folder)
    entry: str  # namespace/name/version or the local path

    @staticmethod
    def check(path: Path) -> None:
        if not (path / "agent.py").is_file():
            raise InferenceError(f"no agent.py in {path}", "an agent folder needs agent.py defining run(env)")


def _child_env() -> dict[str, str]:
    """The agent process gets no secrets: inference happens in the parent."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")
    return {k: os.environ[k] for k in keep if k in os.environ}


async def run_agent(agent: Agent, task: str, model: str, inference: Inference | None, usage: Usage, cwd: str,
                    timeout: float) -> str:
    with open(os.path.join(cwd, "agent.log"), "wb") as log:  # the agent's prints and tracebacks
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "registry_cli.agent_host", str(agent.path), cwd=cwd, env=_child_env(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, start_new_session=True,
        )
    assert proc.stdin is not None and proc.stdout is not None

    async def converse() -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps({"task": task, "model": model}) + "\n").encode())
        await proc.stdin.drain()
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AgentFailure("agent exited without a result")
            try:
                msg = json.loads(line)
            except ValueError:
                raise AgentFailure("agent broke the protocol") from None
            kind = msg.get("type")
            if kind == "result":
                return str(msg.get("output", ""))
            if kind == "error":
                raise AgentFailure(f"agent failed: {msg.get('message', '')}")
            if kind == "completion":
                if inference is None:
                    reply = {"error": "no --model given for this agent"}
                else:
                    try:
                        reply = {"text": await inference.complete(msg["messages"], usage)}
                    except InferenceFailure as e:
                        reply = {"error": str(e)}
                proc.stdin.write((json.dumps(reply) + "\n").encode())
                await proc.stdin.drain()
            else:
                raise AgentFailure(f"agent sent unknown message type {kind!r}")

    try:
        return await asyncio.wait_for(converse(), timeout)
    except asyncio.TimeoutError:
        raise AgentFailure(f"agent timed out after {timeout:g}s") from None
    finally:
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        await proc.wait()
