"""Tool calls in a model's answer: OpenAI's ``tool_calls``, or written in the text the way Llama models do
(``<function=name>{...}</function>``, or a ``<tool_call>`` block holding ``{"name", "arguments"}``), and the
arguments turned into keyword arguments for the tool."""

from __future__ import annotations

import json
import re
from typing import Any

from nearai.agents.responses import AttrDict, tool_call

INLINE = re.compile(r"(.*?)<function=(\w+)>(.*?)(?:</function>|$)", re.DOTALL)
BLOCK = re.compile(r"(.*)<tool_call>\n(.*)\n</tool_call>(.*)", re.DOTALL)


def parse_tool_calls(message: Any) -> tuple[str | None, list[AttrDict] | None]:
    """(the text without the calls, the calls) of an assistant message; (None, None) for a message with neither."""
    calls = getattr(message, "tool_calls", None) if not isinstance(message, dict) else message.get("tool_calls")
    content = getattr(message, "content", None) if not isinstance(message, dict) else message.get("content")
    if calls:
        return content, [AttrDict(c) if isinstance(c, dict) else c for c in calls]
    if content is None:
        return None, None
    found = INLINE.findall(content)
    if found:
        rest = INLINE.sub("", content)
        made = [tool_call(f"call_{i}", name, args) for i, (_, name, args) in enumerate(found)]
        return "".join(before for before, _, _ in found) + rest, made
    block = BLOCK.match(content)
    if block:
        try:
            body = json.loads(block.group(2))
        except ValueError:
            return content, None
        if isinstance(body, dict) and body.get("name"):
            args = body.get("arguments", {})
            text_args = args if isinstance(args, str) else json.dumps(args)
            return block.group(1) + block.group(3), [tool_call("call_0", str(body["name"]), text_args)]
    return content, None


def tool_arguments(definition: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """Keyword arguments from a call's ``arguments`` (a JSON object, or its text), converted to the types the tool
    declared (a number given as text becomes a number)."""
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    if not isinstance(arguments, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {type(arguments).__name__}")
    declared = definition.get("function", {}).get("parameters", {}).get("properties", {})
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        kind = declared.get(key, {}).get("type")
        if isinstance(value, str) and kind in ("integer", "number"):
            value = int(value) if kind == "integer" else float(value)
        elif isinstance(value, str) and kind == "boolean":
            value = value.strip().lower() in ("true", "1", "yes")
        out[key] = value
    return out


def uses_text_tool_syntax(model: str, tools: list[Any] | None) -> bool:
    """Llama models are told the tools in a system message and answer with calls in their text."""
    return tools is not None and "llama" in model.lower()


def text_tool_prompt(tools: list[Any] | None) -> str:
    return ("You may call these functions, described in JSON, to answer:\n" + json.dumps(tools) +
            "\nTo call one, reply with only <function=NAME>{\"arg\": \"value\"}</function>, one call per line, "
            "with the arguments as a JSON object in double quotes and every required argument given. "
            "If no function helps, say so.")


__all__ = ["parse_tool_calls", "text_tool_prompt", "tool_arguments", "uses_text_tool_syntax"]
