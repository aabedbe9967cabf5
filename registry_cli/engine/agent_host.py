"""Runs inside the agent's own process: ``python -m registry_cli.agent_host AGENT_DIR``.

Protocol (JSON lines): the parent writes ``{"task": ..., "model": ...}``; the agent's ``run(env)`` may call
``env.completion(messages)``, which sends ``{"type": "completion", "messages": [...]}`` and reads the parent's
``{"text": ...}`` reply (the parent does the inference, so no API key reaches the agent). The final line is
``{"type": "result", "output": ...}`` or ``{"type": "error", "message": ...}``. The agent's prints go to stderr.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO


class AgentEnv:
    def __init__(self, task: str, model: str, out: TextIO, inp: TextIO) -> None:
        self.task = task
        self.model = model
        self.path = os.getcwd()
        self._out, self._in = out, inp

    def completion(self, messages: list[dict[str, Any]] | str) -> str:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        self._send({"type": "completion", "messages": messages})
        line = self._in.readline()
        if not line:
            raise SystemExit("parent closed the channel")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"inference failed: {reply['error']}")
        return str(reply["text"])

    def write_file(self, name: str, content: str) -> None:
        Path(self.path, name).write_text(content)

    def _send(self, msg: dict[str, Any]) -> None:
        self._out.write(json.dumps(msg) + "\n")
        self._out.flush()


def main() -> int:
    agent_dir = Path(sys.argv[1])
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr  # the agent's prints must not corrupt the protocol channel
    request = json.loads(sys.stdin.readline())
    env = AgentEnv(request["task"], request.get("model", ""), out, sys.stdin)
    try:
        spec = importlib.util.spec_from_file_location("nearai_agent", agent_dir / "agent.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"no agent.py in {agent_dir}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(agent_dir))
        spec.loader.exec_module(module)
        output = module.run(env)
        env._send({"type": "result", "output": "" if output is None else str(output)})
        return 0
    except BaseException as e:  # report any failure to the parent as one line
        env._send({"type": "error", "message": f"{type(e).__name__}: {e}"[:500]})
        return 1


if __name__ == "__main__":
    sys.exit(main())
