"""The agent's model calls and tools, as upstream's ``Environment`` offered them. Every completion is asked of
the benchmark process (which holds the keys and the run's model); tools are called here, in the agent's process."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from nearai.agents.responses import AttrDict, model_response
from nearai.agents.tool_calls import parse_tool_calls, text_tool_prompt, tool_arguments, uses_text_tool_syntax
from nearai.agents.tool_registry import ToolRegistry

if TYPE_CHECKING:
    from nearai.agents.channel import Channel

# generation parameters an agent may set per call; they travel with the request (and so into its cache key)
PASSED_OPTIONS = ("temperature", "max_tokens", "tools", "tool_choice", "top_p", "stop", "response_format", "seed",
                  "presence_penalty", "frequency_penalty", "parallel_tool_calls")


MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "function_call")


def plain_message(m: Any) -> dict[str, Any]:
    """A message as the chat API takes it: dicts, objects with ``model_dump`` (pydantic, litellm) or with role and
    content attributes are read; what the API does not know (a thread message's id, attachments) is left out."""
    if isinstance(m, dict):
        raw = dict(m)
    elif hasattr(m, "model_dump"):
        raw = m.model_dump()
    else:
        raw = {k: getattr(m, k, None) for k in MESSAGE_KEYS}
    kept = {k: raw[k] for k in MESSAGE_KEYS if raw.get(k) is not None}
    kept.setdefault("role", "user")
    kept.setdefault("content", "")
    return dict(json.loads(json.dumps(kept, default=str)))


class InferenceParameters:
    def __init__(self, model: str, messages: Any, stream: bool, temperature: Any = None,
                 max_tokens: Any = None) -> None:
        self.model, self.messages, self.stream = model, messages, stream
        self.temperature, self.max_tokens = temperature, max_tokens


class InferenceMethods:
    """Mixed into the Environment: completions, tool registry and tool calls."""

    model: str
    _channel: Channel
    _tools: ToolRegistry
    _warned_model: bool
    _last_used_model: str
    calls: int

    if TYPE_CHECKING:  # provided by the Environment
        def add_system_log(self, log: Any, level: int = logging.INFO) -> None: ...
        def add_message(self, role: str, message: Any, attachments: Any = None, **kwargs: Any) -> AttrDict: ...
        def read_file(self, filename: str, decode: str | None = "utf-8") -> Any: ...
        def write_file(self, filename: str, content: Any, encoding: str | None = "utf-8",
                       filetype: str = "text/plain", write_to_disk: bool = True, logging: bool = True) -> Any: ...
        def list_files(self, path: str = ".", order: str = "asc") -> list[str]: ...
        def __getattr__(self, name: str) -> Any: ...

    def get_model_for_inference(self, model: str = "") -> str:
        """The model that answers: always the run's (an agent holds no key, so it cannot choose what is paid
        for); asking for another is noted once in the system log."""
        if model and model != self.model and not self._warned_model:
            self._warned_model = True
            self.add_system_log(f"model {model!r} requested; the run's model {self.model!r} answers "
                                "(keys stay with the benchmark process)", logging.WARNING)
        return self.model

    def get_inference_parameters(self, messages: Any, model: Any, stream: bool,
                                 **kwargs: Any) -> tuple[InferenceParameters, dict[str, Any]]:
        if isinstance(messages, str) and not isinstance(model, str):  # upstream's old (model, messages) order
            messages, model = model, messages
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        resolved = self.get_model_for_inference(str(model or ""))
        temperature, max_tokens = kwargs.pop("temperature", None), kwargs.pop("max_tokens", None)
        return InferenceParameters(resolved, messages, stream, temperature, max_tokens), kwargs

    def _run_inference_completions(self, messages: Any, model: Any, stream: bool, **kwargs: Any) -> AttrDict:
        params, rest = self.get_inference_parameters(messages, model, stream, **kwargs)
        options = {k: v for k, v in rest.items() if k in PASSED_OPTIONS and v is not None}
        if params.temperature is not None:
            options["temperature"] = params.temperature
        if params.max_tokens is not None:
            options["max_tokens"] = params.max_tokens
        self.calls += 1
        reply = self._channel.ask({"type": "completion", "messages": [plain_message(m) for m in params.messages],
                                   "options": options})
        if "error" in reply:
            raise RuntimeError(f"inference failed: {reply['error']}")
        message = reply.get("message") or {"role": "assistant", "content": reply.get("text", "")}
        return model_response(message, params.model or self.model, reply.get("usage"))

    def completions(self, messages: Any, model: Any = "", stream: bool = False, thread_id: str | None = None,
                    attachments: Any = None, message_type: str | None = None, **kwargs: Any) -> AttrDict:
        """A chat completion (a streamed one is answered whole)."""
        return self._run_inference_completions(messages, model, stream, **kwargs)

    def completion(self, messages: Any, model: Any = "", **kwargs: Any) -> str:
        content = self.completions(messages, model, **kwargs).choices[0].message.content
        if not content:
            raise RuntimeError("No completions returned")
        return str(content)

    def get_tool_registry(self, new: bool = False) -> ToolRegistry:
        if new:
            self._tools = ToolRegistry()
        return self._tools

    def register_standard_tools(self) -> None:
        registry = self.get_tool_registry()
        for tool in (self.read_file, self.write_file, self.list_files, self.query_vector_store):
            registry.register_tool(tool)

    @staticmethod
    def _parse_tool_call(message: Any) -> tuple[str | None, list[AttrDict] | None]:
        return parse_tool_calls(message)

    @staticmethod
    def _use_llama_tool_syntax(model: str, tools: list[Any] | None) -> bool:
        return uses_text_tool_syntax(model, tools)

    @staticmethod
    def _llama_tool_prompt(tools: list[Any] | None) -> str:
        return text_tool_prompt(tools)

    def completions_and_run_tools(self, messages: list[Any], model: str = "", tools: list[Any] | None = None,
                                  add_responses_to_messages: bool = True, agent_role_name: str = "assistant",
                                  tool_role_name: str = "tool", **kwargs: Any) -> AttrDict:
        """A completion offered ``tools``; each tool the model calls is run here and its answer added to the
        thread (as upstream did)."""
        if uses_text_tool_syntax(model or self.model, tools):
            messages.append({"role": "system", "content": text_tool_prompt(tools)})
        response = self._run_inference_completions(messages, model, False, tools=tools, **kwargs)
        self._handle_tool_calls(response.choices[0].message, add_responses_to_messages, agent_role_name,
                                tool_role_name)
        return response

    def _handle_tool_calls(self, message: Any, add_responses_to_messages: bool, agent_role_name: str,
                           tool_role_name: str) -> None:
        text, calls = parse_tool_calls(message)
        if add_responses_to_messages and getattr(message, "content", None):
            self.add_message(agent_role_name, text)
        for call in calls or []:
            name = call.function.name
            try:
                definition = self._tools.get_tool_definition(name) if name else None
                if definition is None:
                    raise ValueError(f"Tool {name} not found")
                args = tool_arguments(definition, call.function.arguments)
                self.add_system_log(f"Calling tool {name} with args {args}")
                answer = self._tools.call_tool(name, **args)
                if answer and add_responses_to_messages:
                    self.add_message(tool_role_name, json.dumps(answer, default=str), tool_call_id=call.id,
                                     name=name)
            except Exception as e:  # a failing tool is the model's problem to see, as upstream
                error = f"Error calling tool {name}: {e}"
                self.add_system_log(error, logging.ERROR)
                if add_responses_to_messages:
                    self.add_message(tool_role_name, error, tool_call_id=call.id, name=name)

    def completion_and_get_tools_calls(self, messages: list[Any], model: str = "",
                                       **kwargs: Any) -> SimpleNamespace:
        """The answer's text and the tool calls it asked for (OpenAI's, or written in the text), not run."""
        response = self._run_inference_completions(messages, model, False, **kwargs)
        message = response.choices[0].message
        text, calls = parse_tool_calls(message)
        return SimpleNamespace(message=message.content if text is None else text, tool_calls=calls)

    def completion_and_run_tools(self, messages: list[Any], model: str = "", tools: list[Any] | None = None,
                                 **kwargs: Any) -> str | None:
        response = self.completions_and_run_tools(messages, model, tools, **kwargs)
        content = response.choices[0].message.content
        return None if content is None else str(content)


__all__ = ["PASSED_OPTIONS", "InferenceMethods", "InferenceParameters", "plain_message"]
