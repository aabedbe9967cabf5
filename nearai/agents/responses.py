"""Completion answers shaped as upstream's litellm objects: ``response.choices[0].message.content`` and
``.tool_calls[i].function.name`` read as attributes, while the values stay plain JSON (dicts and lists)."""

from __future__ import annotations

import time
from typing import Any


class AttrDict(dict):  # type: ignore[type-arg]
    """A JSON object that also reads as attributes; nested objects read the same way. A missing attribute is
    None for the optional parts of a message (``tool_calls``, ``function_call``), as litellm's objects have them."""

    OPTIONAL = frozenset({"tool_calls", "function_call", "refusal", "audio", "reasoning_content",
                          "system_fingerprint", "usage", "name", "tool_call_id", "attachments", "metadata"})

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            if name in self.OPTIONAL:
                return None
            raise AttributeError(name) from None
        return wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return dict(self)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)

    def json(self) -> dict[str, Any]:
        return dict(self)


def wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, AttrDict):
        return AttrDict(value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


def model_response(message: dict[str, Any], model: str, usage: dict[str, int] | None = None) -> AttrDict:
    """A chat completion with one choice holding ``message`` (role, content and, when the model called tools,
    tool_calls)."""
    tool_calls: list[Any] | None = message.get("tool_calls") or None
    msg = {"role": "assistant", "content": message.get("content"), "tool_calls": tool_calls}
    return AttrDict({
        "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    })


def tool_call(call_id: str, name: str, arguments: str) -> AttrDict:
    return AttrDict({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})


__all__ = ["AttrDict", "model_response", "tool_call", "wrap"]
