"""The ``env`` an agent gets: upstream nearai's ``Environment``, every method that makes sense without the hub.

Threads, messages, files and agent data live in the agent's process for the task (`threads`), and agent data is
kept per agent by the benchmark process between tasks. Inference and other agents go through the `channel` to the
benchmark process, which holds the keys and the registry; tools run here, in the sandbox. What only the hub could
do raises `HubOnlyError` (see `hub`). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nearai.agents.channel import Channel
from nearai.agents.hub import HUB_ONLY, HubClient, HubOnlyError, hub_only
from nearai.agents.inference import InferenceMethods
from nearai.agents.responses import AttrDict
from nearai.agents.threads import Threads
from nearai.agents.tool_registry import ToolRegistry
from nearai.shared.models import RunMode, ThreadMode

SYSTEM_LOG_FILENAME = "system_log.txt"
AGENT_LOG_FILENAME = "agent_log.txt"
CHAT_HISTORY_FILENAME = "chat_history_log.txt"
LIST_MESSAGES_LIMIT = 10000
MAX_AGENT_DEPTH = 3  # agents started by agents, at most this deep


class AgentInfo:
    """The running agent as upstream's ``Agent`` object showed it to ``env.get_primary_agent()``."""

    def __init__(self, spec: dict[str, Any], temp_dir: str) -> None:
        meta = spec.get("metadata") if isinstance(spec.get("metadata"), dict) else {}
        self.metadata: dict[str, Any] = dict(meta or {})
        self.namespace = str(spec.get("namespace") or "local")
        self.name = str(spec.get("name") or self.metadata.get("name") or "agent")
        self.version = str(spec.get("version") or self.metadata.get("version") or "0.0.1")
        self.identifier = f"{self.namespace}/{self.name}/{self.version}"
        details = self.metadata.get("details") if isinstance(self.metadata.get("details"), dict) else {}
        agent = (details or {}).get("agent") if isinstance((details or {}).get("agent"), dict) else {}
        defaults = (agent or {}).get("defaults") if isinstance((agent or {}).get("defaults"), dict) else {}
        self.model = str((defaults or {}).get("model") or "")
        self.model_provider = str((defaults or {}).get("model_provider") or "")
        self.model_temperature = (defaults or {}).get("model_temperature")
        self.model_max_tokens = (defaults or {}).get("model_max_tokens")
        self.env_vars: dict[str, Any] = dict((details or {}).get("env_vars") or {})
        self.temp_dir = temp_dir
        self.file_cache: dict[str, str | bytes] = {}

    def get_full_name(self) -> str:
        return self.identifier


class Environment(InferenceMethods):
    """What an agent may do during one task. Relative paths are inside its working folder (its current
    directory, which starts with a copy of the agent's own files, as upstream's did)."""

    def __init__(self, request: dict[str, Any], channel: Channel, agent_dir: Path | None = None,
                 rerun: Callable[[], None] | None = None) -> None:
        self._channel = channel
        self._rerun = rerun
        self._agent_dir = agent_dir
        self._depth = int(request.get("depth") or 0)
        self.model = str(request.get("model") or "")
        self.env_vars: dict[str, Any] = {str(k): str(v) for k, v in (request.get("env_vars") or {}).items()}
        self.path = os.getcwd()
        self.tool_resources: dict[str, Any] = {}
        self.signer_account_id = ""
        self.print_system_log = False
        self.calls = 0  # how often the agent used env: tells a module-level agent from a run(env) one
        self.done = False
        self.failed = False
        self.waiting_for_user = False
        self._threads = Threads()
        self._thread_id = self._threads.new()
        self._run_id = "run_" + hashlib.sha256(self._thread_id.encode()).hexdigest()[:12]
        task = request.get("task")
        self.task = "" if task is None else str(task)  # the task as given (agents also read it from the thread)
        for m in request.get("messages") or ([{"role": "user", "content": task}] if task is not None else []):
            self._threads.add(self._thread_id, str(m.get("role", "user")), m.get("content", ""))
        self._agents = [AgentInfo(request.get("agent") or {}, self.path)]
        self._agent_data: dict[str, dict[str, Any]] = dict(request.get("agent_data") or {})
        self._agent_data_changed: dict[str, dict[str, Any]] = {}
        self._logs: list[dict[str, str]] = []
        self._warned_model = False
        self._last_used_model = ""
        self._tools = ToolRegistry()
        self.openai = HubClient("openai")  # upstream's clients to the hub: any use says it is gone
        self.async_openai = HubClient("async_openai")
        self.hub_client = HubClient("hub_client")
        self.register_standard_tools()

    def __getattr__(self, name: str) -> Any:
        if name in HUB_ONLY:
            return hub_only(name)
        raise AttributeError(f"the nearai Environment has no method {name!r}")

    # threads and messages
    def get_thread(self, thread_id: str | None = None) -> AttrDict:
        self.calls += 1
        return self._threads.get(thread_id or self._thread_id)

    def get_thread_id(self) -> str:
        return self._thread_id

    def list_messages(self, thread_id: str | None = None, limit: Any = LIST_MESSAGES_LIMIT,
                      order: str = "asc") -> list[AttrDict]:
        self.calls += 1
        return self._threads.listed(thread_id or self._thread_id, limit, order)

    def _list_messages(self, limit: Any = LIST_MESSAGES_LIMIT, order: str = "asc",
                       thread_id: str | None = None) -> list[AttrDict]:
        return self._threads.listed(thread_id or self._thread_id, limit, order, hidden=True)

    def get_last_message(self, role: str = "user") -> AttrDict | None:
        self.calls += 1
        return next((m for m in reversed(self.list_messages()) if m.get("role") == role), None)

    def add_reply(self, message: Any, attachments: Any = None, message_type: str | None = None,
                  thread_id: str | None = None) -> AttrDict:
        self.calls += 1
        meta = {"message_type": message_type} if message_type else {}
        return self._threads.add(thread_id or self._thread_id, "assistant", message, attachments, meta)

    def add_message(self, role: str, message: Any, attachments: Any = None, **kwargs: Any) -> AttrDict:
        """As upstream: the message is the assistant's whatever ``role`` says (an agent cannot put words in the
        user's mouth); ``role`` and any other keywords are kept in the message's metadata."""
        self.calls += 1
        meta = {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool))}
        if role != "assistant":
            meta["requested_role"] = role
        return self._threads.add(self._thread_id, "assistant", message, attachments, meta)

    def _add_message(self, role: str, message: Any, attachments: Any = None, **kwargs: Any) -> AttrDict:
        return self._threads.add(self._thread_id, role, message, attachments, kwargs)

    # files
    def _local(self, name: str) -> Path:
        return Path(self.path, name)

    def write_file(self, filename: str, content: str | bytes, encoding: str | None = "utf-8",
                   filetype: str = "text/plain", write_to_disk: bool = True, logging: bool = True) -> AttrDict:
        """Write a file to the working folder and attach it to the thread.

        filename: the file's name, relative to the working folder
        content: what to write
        """
        self.calls += 1
        data = content if isinstance(content, bytes) else str(content).encode(encoding or "utf-8")
        if write_to_disk:
            target = self._local(filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        file = self._threads.add_file(filename, data)
        self.add_reply(f"Output file: {filename}", attachments=[{"file_id": file.id}],
                       message_type="system:output_file")
        if logging:
            self.add_system_log(f"Wrote file {filename} ({len(data)} bytes), id {file.id}")
        return file

    def read_file(self, filename: str, decode: str | None = "utf-8") -> str | bytes | None:
        """Read a file from the working folder, the thread's files or the agent's own files.

        filename: the file's name, relative to the working folder
        """
        self.calls += 1
        data: bytes | None = None
        local = self._local(filename)
        if local.is_file():
            data = local.read_bytes()
        if data is None:
            found = next((f for f in self._threads.thread_files(self._thread_id) if f.filename == filename), None)
            data = self._threads.file_content(found.id) if found is not None else None
        if data is None and self._agent_dir is not None and (self._agent_dir / filename).is_file():
            data = (self._agent_dir / filename).read_bytes()
        if data is None:
            self.add_system_log(f"Warn: File {filename} not found during read_file operation")
            return None
        return data.decode(decode) if decode else data

    def list_files(self, path: str = ".", order: str = "asc") -> list[str]:
        """List the files in a folder of the working folder.

        path: the folder, relative to the working folder
        """
        self.calls += 1
        folder = self._local(path)
        return sorted(os.listdir(folder), reverse=order == "desc") if folder.is_dir() else []

    def list_files_from_thread(self, order: str = "desc", thread_id: str | None = None) -> list[AttrDict]:
        self.calls += 1
        return self._threads.thread_files(thread_id or self._thread_id, order)

    def read_file_by_id(self, file_id: str, decode: str | None = "utf-8") -> str | bytes:
        data = self._threads.file_content(file_id)
        return data.decode(decode) if decode else data

    def upload_file(self, file_content: str | bytes, purpose: str = "assistants",
                    encoding: str | None = "utf-8", file_name: str | None = "file.txt",
                    file_type: str | None = "text/plain") -> AttrDict:
        data = file_content if isinstance(file_content, bytes) else str(file_content).encode(encoding or "utf-8")
        return self._threads.add_file(file_name or "file.txt", data, purpose)

    def remove_file(self, file_id: str) -> AttrDict:
        return self._threads.remove_file(file_id)

    def get_primary_agent_temp_dir(self) -> Path:
        return Path(self.path)

    def get_agent_temp_path(self) -> Path:
        return Path(self.path)

    def clear_temp_agent_files(self, verbose: bool = True) -> None:
        """Upstream removed its temporary copy of the agent; here the working folder is the task's and stays."""

    def generate_folder_hash_id(self, path: str) -> str:
        digest = hashlib.md5()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                digest.update(Path(root, name).read_bytes())
        return digest.hexdigest()

    def set_next_actor(self, who: str) -> None:
        self._local(".next_action").write_text(who)

    def get_next_actor(self) -> str:
        marker = self._local(".next_action")
        return marker.read_text().strip(" \n") if marker.is_file() else "user"

    # agent data, kept per agent between tasks by the benchmark process
    def save_agent_data(self, key: str, data: Any) -> dict[str, Any]:
        self.calls += 1
        json.dumps(data)  # it must survive the trip: a TypeError here names the culprit
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        agent = self.get_primary_agent()
        record = {"key": str(key), "value": data, "namespace": agent.namespace, "name": agent.name,
                  "created_at": (self._agent_data.get(str(key)) or {}).get("created_at", now), "updated_at": now}
        self._agent_data[str(key)] = record
        self._agent_data_changed[str(key)] = record
        return record

    def get_agent_data(self) -> list[dict[str, Any]]:
        self.calls += 1
        return [dict(v) for v in self._agent_data.values()]

    def get_agent_data_by_key(self, key: str, default: Any = None) -> dict[str, Any]:
        self.calls += 1
        found = self._agent_data.get(str(key))
        if found:
            return dict(found)
        agent = self.get_primary_agent()
        return {"value": default, "namespace": agent.namespace, "key": key, "name": agent.name,
                "updated_at": "", "created_at": ""}

    # other agents
    def run_agent(self, agent_id: str, query: str | None = None, thread_mode: ThreadMode = ThreadMode.FORK,
                  run_mode: RunMode = RunMode.SIMPLE) -> str:
        """Run the registry agent ``agent_id`` (``namespace/name/version``, or a local folder) on a thread: this
        one (SAME), a copy (FORK) or a new sub-thread (CHILD). It runs to its end, in a sandbox of its own,
        before this returns the thread's id; its replies are on that thread."""
        self.calls += 1
        if self._depth + 1 >= MAX_AGENT_DEPTH:
            raise RuntimeError(f"run_agent({agent_id!r}): agents may start agents only {MAX_AGENT_DEPTH - 1} deep")
        mode = ThreadMode(thread_mode.value if isinstance(thread_mode, ThreadMode) else thread_mode)
        thread_id = self._thread_id
        if mode is ThreadMode.FORK:
            thread_id = self._threads.new(copy_from=self._thread_id)
        elif mode is ThreadMode.CHILD:
            thread_id = self._threads.new(parent_id=self._thread_id)
        if query:
            self._threads.add(thread_id, "user", query)
        self.add_system_log(f"Running agent {agent_id} on {thread_id}")
        sent = [{"role": m["role"], "content": m["content"]} for m in self._threads.listed(thread_id)]
        reply = self._channel.ask({"type": "run_agent", "agent": str(agent_id), "messages": sent,
                                   "depth": self._depth + 1})
        if "error" in reply:
            raise RuntimeError(f"agent {agent_id} failed: {reply['error']}")
        for m in (reply.get("messages") or [])[len(sent):]:
            if isinstance(m, dict):
                self._threads.add(thread_id, str(m.get("role", "assistant")), m.get("content", ""))
        return thread_id

    def call_agent(self, agent_index: int | str, task: str) -> None:
        """Upstream ran agent number ``agent_index`` of this environment on ``task`` in the same thread. The
        environment has one agent (0, this one); a name runs that registry agent on this thread."""
        if isinstance(agent_index, str):
            self.run_agent(agent_index, task, ThreadMode.SAME)
            return
        if agent_index != 0 or self._rerun is None:
            raise IndexError(f"call_agent({agent_index}): this environment has one agent, number 0")
        self._add_message("user", task)
        self._rerun()

    def get_agents(self) -> list[AgentInfo]:
        return list(self._agents)

    def get_primary_agent(self) -> AgentInfo:
        return self._agents[0]

    def environment_run_info(self, base_id: str, run_type: str) -> dict[str, Any]:
        agent = self.get_primary_agent()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        return {"name": f"environment_run_{agent.identifier.replace('/', '_')}_{self._run_id}", "version": "0",
                "description": f"Agent {run_type} {agent.identifier} {stamp}", "category": "environment",
                "tags": ["environment"], "show_entry": True,
                "details": {"base_id": base_id, "timestamp": stamp, "agents": [agent.name],
                            "primary_agent_namespace": agent.namespace, "primary_agent_name": agent.name,
                            "primary_agent_version": agent.version, "run_id": self._run_id,
                            "run_type": run_type}}

    # control and logs
    def mark_done(self) -> None:
        self.calls += 1
        self.done = True

    def mark_failed(self) -> None:
        self.calls += 1
        self.failed = True

    def request_user_input(self) -> None:
        self.calls += 1
        self.waiting_for_user = True

    def request_agent_input(self) -> None:
        self.calls += 1
        self.waiting_for_user = True

    def add_system_log(self, log: Any, level: int = logging.INFO) -> None:
        self._log(SYSTEM_LOG_FILENAME, "system", log, level)

    def add_agent_log(self, log: Any, level: int = logging.INFO) -> None:
        self._log(AGENT_LOG_FILENAME, "agent", log, level)

    def add_chat_log(self, role: str, content: Any, level: int = logging.INFO) -> None:
        self._log(CHAT_HISTORY_FILENAME, "chat", f"{role.upper()}: {content}", level)

    def add_agent_start_system_log(self, agent_idx: int) -> None:
        agent = self._agents[agent_idx]
        self.add_system_log(f"Running agent {agent.name}" + (f" that will connect to {self.model}" if self.model else ""))

    def _log(self, filename: str, kind: str, text: Any, level: int) -> None:
        self.calls += 1
        name = logging.getLevelName(level)
        self._logs.append({"level": name, "message": str(text), "kind": kind})
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self._local(filename), "a", encoding="utf-8") as f:
                f.write(f"{stamp} - {name} - {text}\n")
        except OSError:
            pass  # a full or read-only folder must not turn a log line into the agent's failure

    # the host's view of the task
    def output(self) -> str:
        """The task's answer when run() returned nothing: the agent's last visible reply."""
        last = self.get_last_message("assistant")
        return str(last["content"]) if last else ""

    def trace(self) -> dict[str, Any]:
        messages = [{"role": m["role"], "content": m["content"]} for m in self._threads.listed(self._thread_id)]
        return {"messages": messages, "logs": self._logs, "agent_data": self._agent_data_changed}


__all__ = ["AgentInfo", "Environment", "HubOnlyError", "RunMode", "ThreadMode"]
