"""Runs inside the sandbox, in the agent's own process: ``python -I agent_host.py AGENT_DIR``. Standard library only.

Two agent styles run unchanged:
- upstream nearai: agent.py is module-level code using a global ``env`` (``from nearai.agents.environment import
  Environment`` works), typically ending with ``run(env)``;
- ``def run(env)``: called once after the module loads, when module-level code did not use ``env`` itself.

Protocol (JSON lines on the inherited stdout; the agent's prints go to stderr): the parent writes
``{"task", "model", "env_vars"}``; a completion is ``{"type": "completion", "messages": [...]}`` answered by
``{"text": ...}`` or ``{"error": ...}`` (the parent does the inference, so no API key reaches this process); the
last line is ``{"type": "result", "output", "messages", "logs"}`` or ``{"type": "error", "message", ...}``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any, TextIO


class _Message(dict):  # type: ignore[type-arg]
    """A chat message that also reads as attributes: ``reply.choices[0].message.content``."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        if isinstance(value, dict):
            return _Message(value)
        if isinstance(value, list):
            return [_Message(v) if isinstance(v, dict) else v for v in value]
        return value


class Environment:
    """What an agent may do during one benchmark task. Paths are relative to its private working folder."""

    def __init__(self, task: str, model: str, env_vars: dict[str, str], out: TextIO, inp: TextIO) -> None:
        self.task = task
        self.model = model
        self.env_vars = dict(env_vars)
        self.path = os.getcwd()
        self.calls = 0  # how often the agent used env (tells a module-level agent from a run(env) one)
        self.done = False
        self.waiting_for_user = False
        self._messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
        self._logs: list[dict[str, str]] = []
        self._out, self._in = out, inp
        self._warned_model = False

    # the thread
    def list_messages(self, thread_id: str | None = None) -> list[dict[str, Any]]:
        self.calls += 1
        return [dict(m) for m in self._messages]

    def add_message(self, role: str, message: str, attachments: Any = None, **kwargs: Any) -> None:
        self.calls += 1
        self._messages.append({"role": role, "content": str(message)})

    def add_reply(self, message: str, attachments: Any = None, **kwargs: Any) -> None:
        self.add_message("assistant", message)

    def get_last_message(self, role: str = "user") -> dict[str, Any] | None:
        self.calls += 1
        return next((dict(m) for m in reversed(self._messages) if m["role"] == role), None)

    def get_thread_id(self) -> str:
        return "benchmark"

    # inference, done by the parent
    def completions(self, messages: list[dict[str, Any]] | str, model: str = "", stream: bool = False,
                    **kwargs: Any) -> _Message:
        self.calls += 1
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if model and model != self.model and not self._warned_model:
            self._warned_model = True
            self.add_system_log(f"model {model!r} requested; the run's model {self.model!r} answers (keys stay outside)",
                                logging.WARNING)
        self._send({"type": "completion", "messages": [{"role": str(m.get("role", "user")),
                                                          "content": str(m.get("content", ""))} for m in messages]})
        line = self._in.readline()
        if not line:
            raise SystemExit("parent closed the channel")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"inference failed: {reply['error']}")
        text = str(reply["text"])
        return _Message({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}], "model": self.model})

    def completion(self, messages: list[dict[str, Any]] | str, model: str = "", **kwargs: Any) -> str:
        return str(self.completions(messages, model, **kwargs).choices[0].message.content)

    # files
    def _inside(self, name: str) -> Path:
        return Path(self.path, name)

    def write_file(self, filename: str, content: str | bytes, encoding: str = "utf-8", **kwargs: Any) -> str:
        self.calls += 1
        target = self._inside(filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding=encoding)
        return str(target)

    def read_file(self, filename: str, decode: str | None = "utf-8") -> str | bytes | None:
        self.calls += 1
        target = self._inside(filename)
        if not target.is_file():
            return None
        return target.read_text(encoding=decode) if decode else target.read_bytes()

    def list_files(self, path: str = ".", order: str = "asc") -> list[str]:
        self.calls += 1
        folder = self._inside(path)
        names = sorted((p.name for p in folder.iterdir()), reverse=order == "desc") if folder.is_dir() else []
        return names

    def get_primary_agent_temp_dir(self) -> Path:
        return Path(self.path)

    def get_agent_temp_path(self) -> Path:
        return Path(self.path)

    # control and logs
    def mark_done(self) -> None:
        self.calls += 1
        self.done = True

    def request_user_input(self) -> None:
        self.calls += 1
        self.waiting_for_user = True

    def add_system_log(self, log: str, level: int = logging.INFO) -> None:
        self.calls += 1
        self._logs.append({"level": logging.getLevelName(level), "message": str(log)})

    def add_agent_log(self, log: str, level: int = logging.INFO) -> None:
        self.add_system_log(log, level)

    def output(self) -> str:
        """What the task returns when run() returned nothing: the agent's last reply."""
        last = self.get_last_message("assistant")
        return str(last["content"]) if last else ""

    def trace(self) -> dict[str, Any]:
        return {"messages": self._messages, "logs": self._logs}

    def _send(self, msg: dict[str, Any]) -> None:
        self._out.write(json.dumps(msg) + "\n")
        self._out.flush()


def _install_nearai_modules() -> None:
    """``from nearai.agents.environment import Environment`` as in upstream agents."""
    for name in ("nearai", "nearai.agents", "nearai.agents.environment"):
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
    sys.modules["nearai.agents.environment"].Environment = Environment  # type: ignore[attr-defined]


def main() -> int:
    agent_dir = Path(sys.argv[1])
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr  # the agent's prints must not corrupt the protocol channel
    request = json.loads(sys.stdin.readline())
    env_vars = {str(k): str(v) for k, v in (request.get("env_vars") or {}).items()}
    os.environ.update(env_vars)
    env = Environment(request["task"], request.get("model", ""), env_vars, out, sys.stdin)
    try:
        _install_nearai_modules()
        spec = importlib.util.spec_from_file_location("nearai_agent", agent_dir / "agent.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"no agent.py in {agent_dir}")
        module = importlib.util.module_from_spec(spec)
        module.env = env  # type: ignore[attr-defined]  # upstream agents use a global env
        sys.path.insert(0, str(agent_dir))
        spec.loader.exec_module(module)
        returned = None
        if env.calls == 0 and callable(getattr(module, "run", None)):
            returned = module.run(env)
        output = env.output() if returned is None else str(returned)
        env._send({"type": "result", "output": output, **env.trace()})
        return 0
    except BaseException as e:  # report any failure to the parent as one line
        env._send({"type": "error", "message": f"{type(e).__name__}: {e}"[:500], **env.trace()})
        return 1


if __name__ == "__main__":
    sys.exit(main())
