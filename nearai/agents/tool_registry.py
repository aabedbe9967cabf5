"""The agent's tools: Python callables the model may ask for by name. A tool's definition (the JSON schema sent to
the model) is read from its signature and docstring: the first docstring line describes the tool, a later line
``name: text`` describes a parameter; parameters without a default are required. Tools run in the agent's own
process, so inside the sandbox."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

JSON_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean", "list": "array",
              "dict": "object"}


def _json_type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "string"
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _json_type(args[0]) if args else "string"
    if origin is not None:
        hint = origin
    return JSON_TYPES.get(getattr(hint, "__name__", "str").lower(), "string")


def _hints(tool: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(tool)
    except Exception:  # an annotation that does not resolve: the parameter is then a string
        return {}


def definition(tool: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI function-tool definition of ``tool``."""
    name = getattr(tool, "__name__", "tool")
    doc = (tool.__doc__ or "").strip()
    if not doc:
        raise ValueError(f"tool {name!r} has no docstring: its first line is the description the model sees")
    lines = [line.strip() for line in doc.splitlines()]
    schema = getattr(tool, "__schema__", None)
    if isinstance(schema, dict):
        return {"type": "function", "function": {"name": name, "description": lines[0], "parameters": schema}}
    hints = _hints(tool)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(tool).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        described = next((line.split(":", 1)[1].strip() for line in lines[1:]
                          if line.startswith(param.name) and ":" in line), "")
        properties[param.name] = {"description": described, "type": _json_type(hints.get(param.name, str))}
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    return {"type": "function", "function": {"name": name, "description": lines[0],
                                             "parameters": {"type": "object", "properties": properties,
                                                            "required": required}}}


class ToolRegistry:
    """Tools by name, and their definitions for the model."""

    def __init__(self) -> None:
        self.tools: dict[str, Callable[..., Any]] = {}

    def register_tool(self, tool: Callable[..., Any]) -> None:
        self.tools[tool.__name__] = tool

    def register_mcp_tool(self, mcp_tool: Any, call_tool: Callable[..., Any]) -> None:
        """A tool described by an MCP tool object (``name``, ``description``, ``inputSchema``), called through
        ``call_tool(name, arguments)``."""
        name = str(mcp_tool.name)

        def tool(**kwargs: Any) -> Any:
            return call_tool(name, kwargs)

        tool.__name__ = name
        tool.__doc__ = str(getattr(mcp_tool, "description", "") or name)
        tool.__schema__ = getattr(mcp_tool, "inputSchema", None) or {"type": "object", "properties": {}}  # type: ignore[attr-defined]
        self.tools[name] = tool

    def get_tool(self, name: str) -> Callable[..., Any] | None:
        return self.tools.get(name)

    def get_all_tools(self) -> dict[str, Callable[..., Any]]:
        return self.tools

    def call_tool(self, name: str, **kwargs: Any) -> Any:
        tool = self.get_tool(name)
        if tool is None:
            raise ValueError(f"no tool named {name!r}")
        return tool(**kwargs)

    def get_tool_definition(self, name: str) -> dict[str, Any] | None:
        tool = self.get_tool(name)
        return None if tool is None else definition(tool)

    def get_all_tool_definitions(self) -> list[dict[str, Any]]:
        return [definition(tool) for tool in self.tools.values()]


__all__ = ["ToolRegistry", "definition"]
