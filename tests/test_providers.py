"""Anthropic's and Gemini's own formats through this project's HTTP client (`engine.inference.providers`): every
request body and every answer must equal what litellm's own path (``litellm.acompletion``) sends and reads, against
the local server speaking both APIs."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry_cli.engine.inference.client import Inference
from registry_cli.engine.inference.endpoints import ModelSpec
from registry_cli.engine.inference.providers import NativeRoute
from tests.conftest import ROOT
from tests.openai_server import FakeOpenAI

MODELS = ("anthropic/claude-3-5-haiku-20241022", "gemini/gemini-2.0-flash")
CONVERSATIONS = [
    [{"role": "user", "content": "add the following numbers together: 12 + 30"}],
    [{"role": "system", "content": "Answer with the number."},
     {"role": "user", "content": "add the following numbers together: 5 + 2"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "add the following numbers together: 1 + 1"},
     {"role": "assistant", "content": "2"}, {"role": "user", "content": 'and "this" one?\nadd the following numbers '
                                                                         "together: 40 + 2 — ünïcode \\ back"}],
    [{"role": "user", "content": "  padded: add the following numbers together: 3 + 4\n"}],  # translated whole
    [{"role": "user", "content": [{"type": "text", "text": "add the following numbers together: 9 + 9"}]}],
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    srv = FakeOpenAI().start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of the test's own: routes are kept in its cache."""
    monkeypatch.setenv("NEARAI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _base(server: FakeOpenAI) -> str:
    return f"http://127.0.0.1:{server.port}"


async def _ours(model: str, base: str, conversations: list[Any]) -> list[str]:
    async with Inference(ModelSpec(model, base, 0.0, 64, 30, 0)) as inference:
        assert inference._native is not None, "not on the native route"
        return [await inference.complete(c) for c in conversations]


async def _litellms(model: str, base: str, conversations: list[Any]) -> list[str]:
    import litellm

    out = []
    for c in conversations:
        r = await litellm.acompletion(model=model, messages=c, api_base=base, api_key=os.environ.get(
            "TOGETHERAI_API_KEY", "none") if model.startswith("together_ai/") else "none", temperature=0.0,
                                      max_tokens=64)
        out.append(r.choices[0].message.content)
    return out


@pytest.mark.parametrize("model", MODELS)
def test_requests_and_answers_equal_litellms_own(server: FakeOpenAI, model: str) -> None:
    base = _base(server)
    start = len(server.bodies)
    ours = asyncio.run(_ours(model, base, CONVERSATIONS * 2))  # the second round is filled from templates
    mine = server.bodies[start:]
    theirs_answers = asyncio.run(_litellms(model, base, CONVERSATIONS))
    theirs = server.bodies[start + len(mine):]
    assert ours == theirs_answers * 2
    assert [json.dumps(b, sort_keys=True) for b in mine] == [json.dumps(b, sort_keys=True) for b in theirs * 2]


ANTHROPIC_ANSWERS = [
    {"id": "m1", "type": "message", "role": "assistant", "model": "c", "stop_reason": "end_turn", "stop_sequence": None,
     "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}],
     "usage": {"input_tokens": 7, "output_tokens": 4}},
    {"id": "m2", "type": "message", "role": "assistant", "model": "c", "stop_reason": "max_tokens",
     "stop_sequence": None, "content": [{"type": "text", "text": "cut"}], "usage": {"input_tokens": 3, "output_tokens": 1}},
    {"id": "m3", "type": "message", "role": "assistant", "model": "c", "stop_reason": "end_turn", "stop_sequence": None,
     "content": [{"type": "text", "text": "cached"}],
     "usage": {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 2}},
    {"id": "m4", "type": "message", "role": "assistant", "model": "c", "stop_reason": "tool_use", "stop_sequence": None,
     "content": [{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "t1", "name": "add",
                                                       "input": {"a": 1, "b": 2}}],
     "usage": {"input_tokens": 9, "output_tokens": 6}},
]
GEMINI_ANSWERS = [
    {"candidates": [{"content": {"parts": [{"text": "part one, "}, {"text": "part two"}], "role": "model"},
                     "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 4, "totalTokenCount": 11}},
    {"candidates": [{"content": {"parts": [{"text": "cut"}], "role": "model"}, "finishReason": "MAX_TOKENS",
                     "index": 0}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}},
    {"candidates": [{"content": {"parts": [{"text": "thinking hidden", "thought": True}, {"text": "answer"}],
                                 "role": "model"}, "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "thoughtsTokenCount": 5, "totalTokenCount": 9}},
    {"candidates": [{"content": {"parts": [{"functionCall": {"name": "add", "args": {"a": 1, "b": 2}}}],
                                 "role": "model"}, "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 6, "totalTokenCount": 15}},
]


@pytest.mark.parametrize(("model", "answers"), [(MODELS[0], ANTHROPIC_ANSWERS), (MODELS[1], GEMINI_ANSWERS)])
def test_every_kind_of_answer_reads_as_litellm_reads_it(server: FakeOpenAI, model: str,
                                                        answers: list[dict[str, Any]]) -> None:
    """Text split in blocks, a cut answer, cache and thinking counts, tool calls: read here or handed to litellm's
    reader, the text, finish reason, token counts and tool calls are litellm's."""
    import litellm

    base = _base(server)

    async def both(i: int, answer: dict[str, Any]) -> tuple[Any, Any]:
        needle = f"answer case {model} {i}"
        server.native_replies[needle] = answer
        messages = [{"role": "user", "content": needle}]
        async with Inference(ModelSpec(model, base, 0.0, 64, 30, 0)) as inference:
            route: NativeRoute | None = inference._native
            assert route is not None
            body = route.body(messages)
            resp = await inference._send("", body, route.url, route.headers)
            a = route.read(resp.status, resp.body, body, messages, "none")
        r = await litellm.acompletion(model=model, messages=messages, api_base=base, api_key="none", temperature=0.0,
                                      max_tokens=64)
        m = r.choices[0].message
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in (m.tool_calls or [])]
        mine = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in (a.tool_calls or [])]
        return ((a.content, a.finish, a.prompt_tokens, a.completion_tokens, mine),
                (m.content, r.choices[0].finish_reason, r.usage.prompt_tokens, r.usage.completion_tokens, calls))

    for i, answer in enumerate(answers):
        ours, theirs = asyncio.run(both(i, answer))
        assert ours == theirs, (i, ours, theirs)


class _Copying:
    """A provider translation that does more than place each text (it repeats the last one)."""

    def transform_request(self, model: str, messages: list[dict[str, Any]], *rest: Any) -> dict[str, Any]:
        return {"said": [m["content"] for m in messages], "again": messages[-1]["content"]}


def test_a_translation_that_does_more_than_place_the_text_is_never_templated() -> None:
    route = NativeRoute("anthropic", "http://127.0.0.1:9/v1/messages", {}, "m", {}, _Copying())
    for text in ("first", "second"):
        body = json.loads(route.body([{"role": "user", "content": text}]))
        assert body == {"said": [text], "again": text}
    assert route.templates == {("user",): None}


KEPT = """
import asyncio, json, sys
from registry_cli.engine.inference.client import Inference
from registry_cli.engine.inference.endpoints import ModelSpec
async def main():
    async with Inference(ModelSpec(sys.argv[1], sys.argv[2], 0.0, 64, 30, 0)) as inference:
        print(json.dumps([await inference.complete(json.loads(sys.argv[3])), inference._native is not None]))
asyncio.run(main())
print(json.dumps("litellm" in sys.modules))
"""


@pytest.mark.parametrize("model", [*MODELS, "together_ai/meta-llama/Llama-3-8b"])
def test_a_kept_route_asks_the_same_without_importing_litellm(server: FakeOpenAI, model: str, home: Path) -> None:
    """After a run, the route and its checked templates are kept (never the key): the next process sends the same
    bytes litellm would, without importing litellm (seconds of start-up). OpenAI-shaped providers too."""
    import subprocess
    import sys

    key = "sk-provider-secret-9f8e7d6c"
    os.environ["ANTHROPIC_API_KEY"] = os.environ["GEMINI_API_KEY"] = os.environ["TOGETHERAI_API_KEY"] = key
    if model.startswith("together_ai/"):
        os.environ["NEARAI_INFERENCE_BACKEND"] = "litellm"
    try:
        base = _base(server) + ("/v1" if model.startswith("together_ai/") else "")
        asyncio.run(_ours(model, base, CONVERSATIONS * 2))
        kept = list((home / "cache" / "translations").glob("*.json"))
        assert len(kept) == 1 and key not in kept[0].read_text()
        start = len(server.bodies)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-c", KEPT, model, base, json.dumps(CONVERSATIONS[2])], env=env,
                              capture_output=True, text=True, timeout=60, check=True)
        (answer, native), imported = (json.loads(line) for line in proc.stdout.splitlines())
        assert native and not imported
        assert answer == asyncio.run(_litellms(model, base, [CONVERSATIONS[2]]))[0]
        mine, theirs = server.bodies[start:]
        assert mine == theirs and any(key in sent for sent in server.auth_headers)
    finally:
        del os.environ["ANTHROPIC_API_KEY"], os.environ["GEMINI_API_KEY"], os.environ["TOGETHERAI_API_KEY"]
        os.environ.pop("NEARAI_INFERENCE_BACKEND", None)
