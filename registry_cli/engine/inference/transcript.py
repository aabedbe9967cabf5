"""Model outputs kept per datum, so a finished run can be graded again without calling the model.

`Recording` wraps the run's client and notes every completion of one datum: a digest of the messages sent and the
text received. The notes travel with the datum's result (``transcript``). `Replay` answers from such notes: the
same messages get the same texts, in order, and anything the run never asked is an error — grading again with a
solver whose prompt changed needs the model, and says so.
"""

from __future__ import annotations

from typing import Any, Protocol

from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.engine.inference.client import Messages
from registry_cli.engine.inference.endpoints import ModelSpec
from registry_cli.engine.inference.usage import Usage
from registry_cli.errors import InferenceFailure


class Completer(Protocol):
    """What solvers, agents and the relay need of a model client."""

    spec: ModelSpec

    async def complete(self, messages: Messages, usage: Usage | None = None) -> str: ...

    async def chat(self, messages: Messages, usage: Usage | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]: ...


def messages_digest(messages: Messages) -> str:
    return sha256_hex(canonical_json([{"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
                                      for m in messages]))[:32]


def chat_digest(messages: Messages, options: dict[str, Any] | None) -> str:
    """A `chat` request: the whole messages (tool calls and their answers included) and the options."""
    return "chat:" + sha256_hex(canonical_json([messages, options or {}]))[:32]


class Recording:
    def __init__(self, inner: Completer) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.calls: list[dict[str, Any]] = []

    async def complete(self, messages: Messages, usage: Usage | None = None) -> str:
        text = await self.inner.complete(messages, usage)
        self.note(messages, text)
        return text

    async def chat(self, messages: Messages, usage: Usage | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        message = await self.inner.chat(messages, usage, options)
        self.calls.append({"messages": chat_digest(messages, options), "text": str(message.get("content") or ""),
                           "message": message})
        return message

    def note(self, messages: Messages, text: str) -> None:
        """Keep an answer given without a call (the relay's own cache had it)."""
        self.calls.append({"messages": messages_digest(messages), "text": text})


class Replay:
    def __init__(self, spec: ModelSpec, calls: list[dict[str, Any]]) -> None:
        self.spec = spec
        self._answers: dict[str, list[str]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        for call in calls:
            self._answers.setdefault(str(call.get("messages")), []).append(str(call.get("text", "")))
            if isinstance(call.get("message"), dict):
                self._messages.setdefault(str(call.get("messages")), []).append(call["message"])

    async def complete(self, messages: Messages, usage: Usage | None = None) -> str:
        answers = self._answers.get(messages_digest(messages))
        if not answers:
            raise InferenceFailure("the solver asked the model something the stored run did not: "
                                   "grading this datum again needs the model (run the suite again)")
        return answers.pop(0)

    async def chat(self, messages: Messages, usage: Usage | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        answers = self._messages.get(chat_digest(messages, options))
        if not answers:
            raise InferenceFailure("the agent asked the model something the stored run did not: "
                                   "grading this datum again needs the model (run the suite again)")
        return answers.pop(0)
