"""The model relay: an OpenAI-compatible endpoint the runner serves to sandboxed code, holding no key itself.

Code inside a sandbox reaches the model under test only through ``OPENAI_BASE_URL`` (with a dummy
``OPENAI_API_KEY``). The relay answers ``POST /v1/chat/completions`` by calling the run's own `Inference` — which
holds the real key, retries, and counts tokens and cost into the datum's `Usage`, and can cache completions — and
ignores the ``model`` the
code asks for: the run decides the model. It listens on a unix socket in a fresh folder (bound into bwrap and
container sandboxes, where a forwarder inside turns it back into ``127.0.0.1``) and, only for the native
backend, on a loopback TCP port.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from registry_cli.engine.caching.cache import ResultCache, jsonable, result_key
from registry_cli.engine.inference.client import CHAT_OPTIONS
from registry_cli.engine.inference.transcript import Completer, Recording
from registry_cli.engine.inference.usage import Usage
from registry_cli.engine.isolation.scratch import socket_folder
from registry_cli.errors import InferenceFailure

DUMMY_KEY = "sk-nearai-relay-no-key"
# cacheable requests being asked right now, by cache key: an identical one (another datum's, on this event loop)
# waits for that answer instead of asking again, as it would have found it in the cache a moment later
_ASKING: dict[str, asyncio.Future[dict[str, Any]]] = {}


class Relay:
    def __init__(self, inference: Completer | None, usage: Usage, tcp: bool = False, cache_dir: str = "",
                 repeat: int = 0, force: bool = False, caps: tuple[int, int] = (0, 0)) -> None:
        """``tcp``: also listen on a loopback port (the native backend's way in); otherwise only the socket.
        ``cache_dir``: cache completions there, keyed by the model's identity, the messages and the repeat (so
        repeats stay independent samples); ``force`` recomputes them. ``caps``: the calls and the tokens the
        datum's code may spend (0: no cap); past one, requests get 429 and the datum is an error."""
        self.inference, self.usage, self.tcp = inference, usage, tcp
        self.cache = ResultCache(Path(cache_dir), None) if cache_dir and inference is not None else None
        self.repeat, self.force = repeat, force
        self.max_calls, self.max_tokens = caps
        self.folder = socket_folder()
        self.folder.chmod(0o755)  # the sandbox may run as another user
        self.socket = self.folder / "relay.sock"
        self.port = 0
        self._runner: Any = None

    async def _chat(self, request: Any) -> Any:
        """Never raises: whatever the code inside sends gets a JSON answer, and nothing reaches the CLI's stderr."""
        from aiohttp import web

        try:
            return await self._answer(request)
        except Exception as e:
            return web.json_response({"error": {"message": f"relay failure: {type(e).__name__}"}}, status=500)

    async def _answer(self, request: Any) -> Any:
        from aiohttp import web

        def refuse(status: int, message: str) -> Any:
            return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)

        self.usage.relayed += 1  # every request counts against the cap, well-formed or not
        try:
            body = await request.json()
        except web.HTTPException as e:  # e.g. a body over the size limit
            return refuse(e.status, f"bad request: {e.reason}")
        except Exception:
            return refuse(400, "bad request: the body is not JSON")
        problem = _check_request(body)
        if problem:
            return refuse(400, f"bad request: {problem}")
        if self.inference is None:
            return refuse(400, "this run has no --model")
        spent = self.usage.prompt_tokens + self.usage.completion_tokens
        if self.max_calls and self.usage.relayed > self.max_calls:
            self.usage.capped = self.usage.capped or f"{self.max_calls} calls (--relay_max_calls)"
        elif self.max_tokens and spent >= self.max_tokens:
            self.usage.capped = self.usage.capped or f"{self.max_tokens} tokens (--relay_max_tokens)"
        if self.usage.capped:
            return refuse(429, f"this datum's relay cap of {self.usage.capped} is spent")
        messages = body["messages"]
        options = {k: v for k, v in body.items() if k in CHAT_OPTIONS}  # tools, tool_choice, ...: coding agents
        before = (self.usage.prompt_tokens, self.usage.completion_tokens)
        key = result_key({"completion": self.inference.spec.identity(), "messages": jsonable(messages),
                          "repeat": self.repeat, **({"options": jsonable(options)} if options else {})})
        try:
            message = await self._message(key, messages, options)
        except InferenceFailure as e:
            return web.json_response({"error": {"message": str(e)}}, status=502)
        calls = message.get("tool_calls") or []
        self.usage.tool_calls += len(calls) if isinstance(calls, list) else 0
        pt, ct = self.usage.prompt_tokens - before[0], self.usage.completion_tokens - before[1]
        return web.json_response({
            "id": f"relay-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": self.inference.spec.resolved,
            "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop", "message": message}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
        })

    async def _message(self, key: str, messages: list[Any], options: dict[str, Any]) -> dict[str, Any]:
        """The model's message: from the cache, from an identical request in flight, else asked (and cached)."""
        assert self.inference is not None
        cached = self.cache is not None and not self.force
        hit = self.cache.get_local(key) if self.cache is not None and cached else None
        asking = _ASKING.get(key) if cached and hit is None else None
        if asking is not None and asking.get_loop() is asyncio.get_running_loop():
            hit = await asyncio.shield(asking)
        if hit is not None and isinstance(hit.get("message" if options else "text"), (dict, str)):
            if isinstance(self.inference, Recording) and not options:  # the transcript holds it all the same
                self.inference.note(messages, str(hit["text"]))
            return dict(hit["message"]) if options else {"role": "assistant", "content": hit["text"]}
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda f: f.cancelled() or f.exception())  # no waiter: nothing to report
        if cached:
            _ASKING[key] = answer
        try:
            if options:
                message = await self.inference.chat(messages, self.usage, options)
            else:
                message = {"role": "assistant", "content": await self.inference.complete(messages, self.usage)}
        except InferenceFailure as e:
            answer.set_exception(e)
            raise
        except BaseException:
            answer.set_exception(InferenceFailure("the same request, asked for another datum, was abandoned"))
            raise
        finally:
            if _ASKING.get(key) is answer:
                del _ASKING[key]
        kept = {"message": message} if options else {"text": message["content"]}
        answer.set_result(kept)
        if self.cache is not None:
            self.cache.put(key, kept)
        return message

    async def __aenter__(self) -> Relay:
        from aiohttp import web

        logging.getLogger("aiohttp.server").disabled = True  # a malformed request is answered, never logged here
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        unix = web.UnixSite(self._runner, str(self.socket))
        await unix.start()
        self.socket.chmod(0o777)
        if self.tcp:
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.cache is not None:
            self.cache.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def env(self, port: int) -> dict[str, str]:
        """What code inside needs to reach the relay on ``port``."""
        base = f"http://127.0.0.1:{port}/v1"
        return {"OPENAI_BASE_URL": base, "OPENAI_API_BASE": base, "OPENAI_API_KEY": DUMMY_KEY}


ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _check_request(body: Any) -> str:
    """What is wrong with a chat completion request from the sandbox ("" when nothing)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    if len(messages) > 10_000:
        return "too many messages"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages[{i}] must be an object"
        if m.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}"
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return f"messages[{i}].content must be a string or a list of parts"
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            return f"messages[{i}].content parts must be objects"
    return ""
