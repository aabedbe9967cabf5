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

import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from registry_cli.engine.cache import ResultCache, jsonable, result_key
from registry_cli.engine.inference import InferenceFailure, Usage
from registry_cli.engine.transcript import Completer, Recording

DUMMY_KEY = "sk-nearai-relay-no-key"


class Relay:
    def __init__(self, inference: Completer | None, usage: Usage, tcp: bool = False, cache_dir: str = "",
                 repeat: int = 0, force: bool = False) -> None:
        """``tcp``: also listen on a loopback port (the native backend's way in); otherwise only the socket.
        ``cache_dir``: cache completions there, keyed by the model's identity, the messages and the repeat (so
        repeats stay independent samples); ``force`` recomputes them."""
        self.inference, self.usage, self.tcp = inference, usage, tcp
        self.cache = ResultCache(Path(cache_dir), None) if cache_dir and inference is not None else None
        self.repeat, self.force = repeat, force
        self.folder = Path(tempfile.mkdtemp(prefix="nearai-relay-"))
        self.folder.chmod(0o755)  # the sandbox may run as another user
        self.socket = self.folder / "relay.sock"
        self.port = 0
        self._runner: Any = None

    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        try:
            body = await request.json()
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as e:
            return web.json_response({"error": {"message": f"bad request: {e}"}}, status=400)
        if self.inference is None:
            return web.json_response({"error": {"message": "this run has no --model"}}, status=400)
        before = (self.usage.prompt_tokens, self.usage.completion_tokens)
        key = result_key({"completion": self.inference.spec.identity(), "messages": jsonable(messages),
                          "repeat": self.repeat})
        hit = self.cache.get_local(key) if self.cache is not None and not self.force else None
        if hit is not None and isinstance(hit.get("text"), str):
            text = hit["text"]
            if isinstance(self.inference, Recording):  # the datum's transcript holds it all the same
                self.inference.note(messages, text)
        else:
            try:
                text = await self.inference.complete(messages, self.usage)
            except InferenceFailure as e:
                return web.json_response({"error": {"message": str(e)}}, status=502)
            if self.cache is not None:
                self.cache.put(key, {"text": text})
        pt, ct = self.usage.prompt_tokens - before[0], self.usage.completion_tokens - before[1]
        return web.json_response({
            "id": f"relay-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": self.inference.spec.resolved,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
        })

    async def __aenter__(self) -> Relay:
        from aiohttp import web

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
