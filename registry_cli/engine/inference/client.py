"""Model inference: async chat completions with retries, timeouts, token usage and cost.

Two backends share one interface:
- ``openai``: a direct HTTP/1.1 keep-alive client (``engine.http``) for OpenAI-compatible endpoints given by
  ``api_base`` (vLLM, Ollama, local servers), cheap in CPU per call, so hundreds of concurrent requests stay cheap.
- ``litellm``: every other provider (``anthropic/...``, ``gpt-4o``, ...), through ``litellm.acompletion``.
``NEARAI_INFERENCE_BACKEND=litellm`` forces litellm for OpenAI-compatible endpoints too. litellm's translation is
sent by this project's HTTP pool where it can be (OpenAI-shaped providers: `translated`; Anthropic and Gemini:
`providers`); ``NEARAI_INFERENCE_BACKEND=acompletion`` sends every request through ``litellm.acompletion`` instead.

API keys come from the environment at call time and never enter cache keys, entries, logs or results.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from registry_cli.core import env
from registry_cli.engine.inference.credentials import api_key, auth_headers, public_url, redact, without_credentials
from registry_cli.engine.inference.endpoints import ModelSpec, choose_backend, kept_route, open_session
from registry_cli.engine.inference.http import Response
from registry_cli.engine.inference.providers import (
    NativeRoute,
    import_litellm,
    load_route,
    native_route,
    save_route,
)
from registry_cli.engine.inference.translated import route
from registry_cli.engine.inference.usage import Completion, Usage, estimate_cost
from registry_cli.errors import EmptyAnswer, HttpError, InferenceError, InferenceFailure

# per-call generation options an agent may set (`Inference.chat`); they are part of what was asked
CHAT_OPTIONS = frozenset({"temperature", "max_tokens", "tools", "tool_choice", "top_p", "stop", "response_format",
                          "seed", "presence_penalty", "frequency_penalty", "parallel_tool_calls"})


Messages = list[dict[str, Any]]


def answer_text(content: Any, finish_reason: Any, where: str) -> str:
    """The answer of a completion. No content (null) or a blank one is nothing to grade: asked again like a
    transient failure, and an `EmptyAnswer` once the retries are spent, never a verdict."""
    if content is not None and not isinstance(content, str):
        raise InferenceFailure(f"malformed completion from {where}: content is {type(content).__name__}")
    if content is None or not content.strip():
        what = "no content (null, " if content is None else "an empty answer ("
        raise _Retryable(f"the model returned {what}finish_reason {finish_reason}) from {where}", empty=True)
    return redact(content)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, empty: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.empty = empty


def _litellm_failure(litellm: Any, e: Exception, model: str) -> Exception:
    """What a litellm exception means here: a missing key fails at once (retrying cannot help), rate limits,
    server errors and timeouts are retried, anything else is the datum's error."""
    message = redact(f"{type(e).__name__}: {str(e)[:200]}")
    if isinstance(e, litellm.AuthenticationError) or "Missing credentials" in str(e):
        return InferenceError(f"{model} needs an API key: {message[:160]}",
                              "export the provider's key (e.g. OPENAI_API_KEY)")
    transient = (litellm.RateLimitError, litellm.ServiceUnavailableError, litellm.InternalServerError,
                 litellm.APIConnectionError, litellm.Timeout)
    if isinstance(e, transient) or (isinstance(e, litellm.APIError)
                                    and getattr(e, "status_code", 0) in (429, 500, 502, 503, 504)):
        return _Retryable(message)
    return InferenceFailure(message)


class Inference:
    """Async completion client with bounded retries (429/5xx/connection errors/timeouts) and per-call timeout."""

    def __init__(self, spec: ModelSpec, max_connections: int = 64, session: Any = None,
                 limiter: asyncio.Semaphore | None = None) -> None:
        """``session``: an `HttpPool` to share (suites keep one per endpoint); ``limiter``: a cap on requests
        in flight shared with other clients (a suite-wide limit protecting a shared endpoint)."""
        self.spec = spec
        self.max_connections = max_connections
        self.backend = choose_backend(spec)
        self._session: Any = session
        self._owns_session = session is None
        self._limiter = limiter
        self._litellm: Any = None
        # litellm's translation sent by us: OpenAI-shaped providers (wire "openai") and Anthropic's and Gemini's
        # own formats; None: litellm.acompletion
        self._native: NativeRoute | None = None
        self._record: Path | None = None  # where the route is kept for the next run
        self._parts: tuple[str, dict[str, str]] | None = None

    async def __aenter__(self) -> Inference:
        if self.backend == "openai":
            if self._session is None:
                self._session = open_session(self.spec.api_base, self.max_connections)
        else:
            self._litellm_routes()
        return self

    def _litellm_routes(self) -> None:
        """How each request is sent when litellm knows the provider: through our pool with litellm's translation
        when it can be (a native route kept by an earlier run needs no litellm at all), else litellm.acompletion."""
        key, extra = self._litellm_credentials()
        params = self.spec.litellm_params()
        base = without_credentials(self.spec.api_base)
        whole = env.inference_backend() == "acompletion"  # litellm's own path for every request
        if not whole and not extra:
            self._record = kept_route(self.spec)
            self._native = load_route(self._record, base)
        if self._native is None:
            litellm = self._litellm = import_litellm()
            if not whole:
                self._native = (route(litellm, self.spec.resolved, base, key, params, extra)
                                or native_route(litellm, self.spec.resolved, base, params, extra))
        if self._native is not None and self._session is None:
            self._session = open_session(self._native.url, self.max_connections)
            self._owns_session = True

    def _litellm_credentials(self) -> tuple[str, dict[str, str]]:
        """(API key, extra headers) for litellm: credentials in the --api_base URL authenticate instead of a key;
        a local server needs no key, but the OpenAI SDK under litellm insists on one."""
        if not self.spec.api_base:
            return api_key(), {}
        headers = auth_headers(self.spec.api_base)
        if "Basic" in headers.get("Authorization", ""):
            return "unused", headers
        return api_key() or "none", {}

    async def __aexit__(self, *exc: object) -> None:
        if self._native is not None and self._record is not None:
            save_route(self._native, self._record)
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def _once(self, messages: Messages) -> Completion:
        if self.backend == "openai":
            return await self._openai(messages)
        if self._native is not None and self._native.wire == "openai":
            return await self._post("", self._native.body(messages), self._native.url, self._native.headers)
        if self._native is not None:
            return await self._ask_native(self._native, messages)
        return await self._via_litellm(messages)

    async def _ask_native(self, native: NativeRoute, messages: Messages) -> Completion:
        """One request in a provider's own format, built and read with litellm's translation (`providers`)."""
        body = native.body(messages)
        resp = await self._send("", body, native.url, native.headers)
        where = public_url(native.url)
        try:
            a = native.read(resp.status, resp.body, body, messages, native.key() or "none")
        except Exception:  # litellm's reader raises its own errors for answers it cannot read
            raise InferenceFailure(f"malformed completion from {where}") from None
        return self._answer(a.content, a.finish, a.tool_calls, where, a.prompt_tokens, a.completion_tokens,
                            estimate_cost(self.spec.resolved, a.prompt_tokens, a.completion_tokens))

    async def complete(self, messages: Messages, usage: Usage | None = None) -> str:
        return (await self._asked(lambda: self._once(messages), usage)).text

    async def chat(self, messages: Messages, usage: Usage | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole assistant message (content and tool calls) for ``messages`` with per-call ``options``
        (``CHAT_OPTIONS``: tools, temperature, ...), which override the run's. An answer that calls tools may
        have no text; one with neither is empty, as for `complete`."""
        body = {k: v for k, v in (options or {}).items() if k in CHAT_OPTIONS and v is not None}
        c = await self._asked(lambda: self._once_chat(messages, body), usage)
        return c.message or {"role": "assistant", "content": c.text}

    async def _once_chat(self, messages: Messages, options: dict[str, Any]) -> Completion:
        if self.backend == "openai":
            body = {**self._openai_body(messages), **options}
            url, headers = self._request_parts()
            return await self._post("/chat/completions", json.dumps(body).encode(), url, headers, whole=True)
        if self._litellm is None:  # a translated route: the options need litellm's own translation
            self._litellm = import_litellm()
        return await self._via_litellm(messages, options)

    async def _asked(self, once: Callable[[], Awaitable[Completion]], usage: Usage | None) -> Completion:
        """``once()`` with the run's retries, limiter and accounting."""
        attempt = 0
        while True:
            try:
                started = time.perf_counter()
                if self._limiter is not None:
                    async with self._limiter:
                        c = await once()
                else:
                    c = await once()
                if usage is not None:
                    usage.add(c)
                    usage.latency_s += time.perf_counter() - started
                return c
            except _Retryable as e:
                if attempt >= self.spec.num_retries:
                    message = redact(f"{e} (after {attempt + 1} attempts)")
                    if e.empty:
                        if usage is not None:
                            usage.empty += 1
                        raise EmptyAnswer(message) from None
                    raise InferenceFailure(message) from None
                delay = e.retry_after if e.retry_after is not None else min(20.0, 0.25 * 2**attempt)
                delay = min(30.0, delay) * (0.5 + random.random() / 2)
                attempt += 1
                if usage is not None:
                    usage.retries += 1
                await asyncio.sleep(delay)

    def _request_parts(self) -> tuple[str, dict[str, str]]:
        """URL and headers of every request, made once per client."""
        if self._parts is None:
            self._parts = (self.spec.api_base.rstrip("/") + "/chat/completions", auth_headers(self.spec.api_base))
        return self._parts

    def _openai_body(self, messages: Messages) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.spec.resolved.split("/", 1)[1], "messages": messages,
                                "temperature": self.spec.temperature}
        if self.spec.max_tokens:
            body["max_tokens"] = self.spec.max_tokens
        return body

    async def _openai(self, messages: Messages) -> Completion:
        url, headers = self._request_parts()
        return await self._post("/chat/completions", json.dumps(self._openai_body(messages)).encode(), url, headers)

    async def _send(self, path: str, body: bytes, url: str, headers: dict[str, str]) -> Response:
        """One request over the HTTP pool: its 2xx response; rate limits, server errors and lost connections are
        retried, other refusals are the datum's error."""
        try:
            resp: Response = await self._session.post(path, body, headers, self.spec.timeout)
        except HttpError as e:
            raise _Retryable(f"{e} ({public_url(url)})") from None
        if resp.status == 429 or resp.status >= 500:
            ra = resp.headers.get("retry-after")
            raise _Retryable(f"HTTP {resp.status} from {public_url(url)}",
                             float(ra) if ra and ra.replace(".", "", 1).isdigit() else None)
        if resp.status >= 400:
            text = resp.body[:200].decode(errors="replace")
            raise InferenceFailure(redact(f"HTTP {resp.status} from {public_url(url)}: {text}"))
        return resp

    async def _post(self, path: str, body: bytes, url: str, headers: dict[str, str], whole: bool = False) -> Completion:
        """One chat completion request over the HTTP pool, its answer read as OpenAI's format."""
        resp = await self._send(path, body, url, headers)
        try:
            data = json.loads(resp.body)
            choice = data["choices"][0]
            content, finish = choice["message"].get("content"), choice.get("finish_reason")
            calls = choice["message"].get("tool_calls") if whole else None
            u = data.get("usage") or {}
            pt, ct = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise InferenceFailure(f"malformed completion from {public_url(url)}") from None
        return self._answer(content, finish, calls, public_url(url), pt, ct,
                            estimate_cost(self.spec.resolved, pt, ct))

    @staticmethod
    def _answer(content: Any, finish: Any, calls: Any, where: str, pt: int, ct: int, cost: float) -> Completion:
        """A completion's answer: its text (never empty, see `answer_text`), or tool calls with or without text."""
        if calls:
            if not isinstance(calls, list) or (content is not None and not isinstance(content, str)):
                raise InferenceFailure(f"malformed completion from {where}: tool_calls is not a list")
            message = {"role": "assistant", "content": redact(content) if content else content, "tool_calls": calls}
            return Completion(redact(content or ""), pt, ct, cost, message)
        text = answer_text(content, finish, where)
        return Completion(text, pt, ct, cost, {"role": "assistant", "content": text})

    async def _via_litellm(self, messages: Messages, options: dict[str, Any] | None = None) -> Completion:
        litellm = self._litellm
        kwargs: dict[str, Any] = {"model": self.spec.resolved, "messages": messages,
                                  "temperature": self.spec.temperature, "timeout": self.spec.timeout,
                                  "num_retries": 0}
        if self.spec.api_base:
            kwargs["api_base"] = without_credentials(self.spec.api_base)
            kwargs["api_key"], extra = self._litellm_credentials()
            if extra:
                kwargs["extra_headers"] = extra
        if self.spec.max_tokens:
            kwargs["max_tokens"] = self.spec.max_tokens
        kwargs.update(options or {})
        try:
            resp = await litellm.acompletion(**kwargs)
        except Exception as e:
            raise _litellm_failure(litellm, e, self.spec.resolved) from None
        return self._litellm_completion(resp, whole=options is not None)

    def _litellm_completion(self, resp: Any, whole: bool = False) -> Completion:
        try:
            choice = resp.choices[0]
            content, finish = choice.message.content, getattr(choice, "finish_reason", None)
            calls = [c.model_dump() if hasattr(c, "model_dump") else dict(c)
                     for c in (getattr(choice.message, "tool_calls", None) or [])] if whole else None
        except (AttributeError, IndexError, TypeError, ValueError):
            raise InferenceFailure(f"malformed completion for {self.spec.resolved}") from None
        answer = (self._answer(content, finish, calls, self.spec.resolved, 0, 0, 0.0) if calls else
                  Completion(answer_text(content, finish, self.spec.resolved)))
        return self._priced(resp, answer)

    def _priced(self, resp: Any, answer: Completion) -> Completion:
        """``answer`` with litellm's token counts and cost of ``resp``."""
        litellm = self._litellm
        u = getattr(resp, "usage", None)
        pt = int(getattr(u, "prompt_tokens", 0) or 0)
        ct = int(getattr(u, "completion_tokens", 0) or 0)
        try:  # litellm prices each answer as it makes it; asking again would cost a second lookup
            known = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
            cost = float(known if known is not None else litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:
            cost = estimate_cost(self.spec.resolved, pt, ct)
        message = answer.message or {"role": "assistant", "content": answer.text}
        return Completion(answer.text, pt, ct, cost, message)
