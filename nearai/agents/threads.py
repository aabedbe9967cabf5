"""Threads, their messages and files, kept in the agent's process for one task (the hub kept them before).

The task's thread starts with the task as its user message (or, for an agent started by another, the messages it
was given). ``run_agent`` adds a copied or child thread; files written with ``write_file`` or ``upload_file``
become file objects attached to a hidden message, as upstream listed them."""

from __future__ import annotations

import time
from typing import Any

from nearai.agents.responses import AttrDict

HIDDEN_PREFIXES = ("system:", "agent:")  # message types the agent's own list_messages does not show


class Threads:
    def __init__(self) -> None:
        self.threads: dict[str, AttrDict] = {}
        self.messages: dict[str, list[AttrDict]] = {}
        self.files: dict[str, AttrDict] = {}
        self.contents: dict[str, bytes] = {}
        self._count = 0

    def _id(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count:06d}"

    def new(self, parent_id: str | None = None, copy_from: str | None = None) -> str:
        thread_id = self._id("thread")
        metadata = {"parent_id": parent_id} if parent_id else {}
        self.threads[thread_id] = AttrDict({"id": thread_id, "object": "thread", "created_at": int(time.time()),
                                            "metadata": metadata, "tool_resources": None})
        self.messages[thread_id] = [AttrDict(m) for m in self.messages.get(copy_from or "", [])]
        return thread_id

    def get(self, thread_id: str) -> AttrDict:
        if thread_id not in self.threads:
            raise ValueError(f"no thread {thread_id!r} in this run")
        return self.threads[thread_id]

    def add(self, thread_id: str, role: str, text: Any, attachments: Any = None,
            metadata: dict[str, Any] | None = None) -> AttrDict:
        self.get(thread_id)
        message = AttrDict({"id": self._id("msg"), "object": "thread.message", "thread_id": thread_id,
                            "role": role, "content": "" if text is None else str(text),
                            "attachments": list(attachments) if attachments else None,
                            "metadata": dict(metadata or {}), "created_at": int(time.time())})
        self.messages[thread_id].append(message)
        return message

    def listed(self, thread_id: str, limit: Any = None, order: str = "asc",
               hidden: bool = False) -> list[AttrDict]:
        """The thread's messages as upstream's list_messages gave them: id, content, role, attachments."""
        found = [m for m in self.messages[self.get(thread_id).id]
                 if hidden or not str(m["metadata"].get("message_type", "")).startswith(HIDDEN_PREFIXES)]
        if order == "desc":
            found = found[::-1]
        if isinstance(limit, int):
            found = found[:limit]
        return [AttrDict({"id": m["id"], "content": m["content"], "role": m["role"],
                          "attachments": m["attachments"]}) for m in found]

    def add_file(self, filename: str, data: bytes, purpose: str = "assistants") -> AttrDict:
        file_id = self._id("file")
        self.files[file_id] = AttrDict({"id": file_id, "object": "file", "bytes": len(data),
                                        "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                                        "status": "processed"})
        self.contents[file_id] = data
        return self.files[file_id]

    def remove_file(self, file_id: str) -> AttrDict:
        known = file_id in self.files
        self.files.pop(file_id, None)
        self.contents.pop(file_id, None)
        return AttrDict({"id": file_id, "object": "file", "deleted": known})

    def file_content(self, file_id: str) -> bytes:
        if file_id not in self.contents:
            raise ValueError(f"no file {file_id!r} in this run")
        return self.contents[file_id]

    def thread_files(self, thread_id: str, order: str = "desc") -> list[AttrDict]:
        ids = [a.get("file_id") for m in self.messages[self.get(thread_id).id] for a in (m["attachments"] or [])
               if isinstance(a, dict)]
        found = [self.files[i] for i in ids if i in self.files]
        return found[::-1] if order == "desc" else found


__all__ = ["HIDDEN_PREFIXES", "Threads"]
