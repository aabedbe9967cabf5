"""What a model sends back is checked before it is kept: no content is an error, secrets it echoes are redacted, and
credentials in an --api_base URL work without being stored. Real CLI subprocesses against the local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env
from tests.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier

KEY = "sk-test-9f8e7d6c5b4a39281706"


def inputs(ds: Path) -> list[str]:
    import datasets

    return [str(r["input"]) for r in datasets.load_from_disk(str(ds)).to_list()]


def everything_written(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


def test_null_or_blank_answers_are_retried_counted_apart_and_never_cached(
        local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=20)
    rows = inputs(ds)
    server.raw_replies = {rows[0]: (None, "stop"), rows[1]: ("", "length"), rows[2]: ("  ", "content_filter"),
                          rows[3]: ("", "stop")}
    run = ("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}", "--quiet",
           "--num_inference_retries=2", "--record")
    first = local_env.run(*run)
    assert first.returncode == 3 and "(4 empty answers, not cached: rerun to retry them)" in first.stdout, first.stdout
    assert "Traceback" not in first.stderr and server.requests == 16 + 4 * 3  # each empty one asked 3 times
    lines = [line for p in (local_env.home / "cache").rglob("*.jsonl") if "packs" in p.parts
             for line in p.read_text().splitlines()]
    assert len(lines) == 16  # no empty answer is cached as a wrong one
    row = json.loads(local_env.run("evaluation", "table", "--format=json", "--all_metrics", check=True).stdout)["rows"][0]
    assert row["3_digit_addition/empty"] == 4 and row["3_digit_addition/errored"] == 0
    assert row["errored"] == {"3_digit_addition": 4}  # the table marks the run
    shown = local_env.run("evaluation", "table", check=True)
    assert " !" in shown.stdout and "empty answers" in shown.stderr
    server.raw_replies = {}  # the server is healthy again: the rerun asks only the four, and they count now
    second = local_env.run(*run[:-1])
    assert second.returncode == 0 and server.requests == 28 + 4 and "16 cached" in second.stdout
    assert "Final score: " in second.stdout and "empty" not in second.stdout


def test_an_empty_answer_then_a_real_one_is_a_verdict(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=4)
    rows = inputs(ds)
    server.raw_replies = {rows[0]: ("", "stop")}
    server.raw_reply_times = 1  # the first answer is empty, the retry a real one: a transient fault, not a verdict
    out = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                        f"--api_base={server.url}", "--quiet", check=True)
    assert "Final score: 4/4" in out.stdout and server.requests == 5


def test_secrets_a_model_echoes_are_never_kept_or_shown(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=10)
    rows = inputs(ds)
    server.replies = {rows[0]: f"my key is {KEY}", rows[1]: f"the proxy said user:hunter2secret and {KEY}"}
    env = Env(local_env.home, {**local_env.vars, "OPENAI_API_KEY": KEY})
    out = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}",
                  "--record", "--quiet", check=True)
    listed = env.run("evaluation", "read_solutions", "tester/evaluation_3_digit_addition_model_m_provider_127.0.0.1",
                     "--verbose", check=True)
    assert "my key is ***" in listed.stdout
    for text in (out.stdout, out.stderr, listed.stdout):
        assert KEY not in text
    assert KEY.encode() not in everything_written(env.home)


def test_credentials_in_the_api_base_url_authenticate_and_are_never_kept(local_env: Env, server: FakeOpenAI,
                                                                          tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=10)
    env = Env(local_env.home, {**local_env.vars, "OPENAI_API_KEY": KEY})
    base = server.url.replace("http://", "http://alice:s3cr3t-pass@")
    for backend in ("openai", "litellm"):
        run = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={base}",
                      "--record", "--quiet", "--force", check=True)
        assert "Final score:" in run.stdout and "s3cr3t-pass" not in run.stdout + run.stderr
        env = Env(env.home, {**env.vars, "NEARAI_INFERENCE_BACKEND": "litellm"})
    assert server.auth_headers == {"Basic YWxpY2U6czNjcjN0LXBhc3M="} and server.requests == 20
    written = everything_written(env.home)
    assert b"s3cr3t-pass" not in written and b"YWxpY2U6czNjcjN0LXBhc3M=" not in written and KEY.encode() not in written


def test_the_litellm_path_without_a_key(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=6)
    env = Env(local_env.home, {**local_env.vars, "NEARAI_INFERENCE_BACKEND": "litellm"})
    local = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}",
                    "--quiet", timeout=60)
    assert local.returncode == 0 and "Final score:" in local.stdout, local.stderr  # a local server needs no key
    hosted = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=openai/gpt-4o-mini",
                     "--quiet", "--limit=2", timeout=60)  # no key and no network: fails at once, not after retries
    assert hosted.returncode == 3 and "(2 errors, not cached" in hosted.stdout, hosted.stdout + hosted.stderr


def test_translated_litellm_requests_equal_litellms_own(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """For OpenAI-shaped providers litellm builds the request and this project sends it: the server must get what
    litellm.acompletion itself sends (body and key), and the answer must read the same."""
    import asyncio

    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    from registry_cli.engine.inference.client import Inference
    from registry_cli.engine.inference.endpoints import ModelSpec
    from registry_cli.engine.inference.usage import Usage

    monkeypatch.setenv("NEARAI_INFERENCE_BACKEND", "litellm")
    monkeypatch.setenv("NEARAI_HOME", str(tmp_path / "home"))  # where routes are kept
    monkeypatch.setenv("TOGETHERAI_API_KEY", "tk-provider-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-key")
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "add the following numbers together: 12 + 31"}]

    async def ours(model: str) -> tuple[str, Usage, bool]:
        usage = Usage()
        async with Inference(ModelSpec(model, server.url, 0.0, 64, 30.0, 0)) as client:
            return await client.complete(messages, usage), usage, client._native is not None

    async def theirs(model: str) -> str:
        key = "tk-provider-key" if model.startswith("together_ai/") else "sk-openai-key"
        resp = await litellm.acompletion(model=model, messages=messages, api_base=server.url, api_key=key,
                                         temperature=0.0, max_tokens=64, num_retries=0)
        return str(resp.choices[0].message.content)

    for model in ("together_ai/meta-llama/Llama-3-8b", "mistral/mistral-small", "openai/m"):
        if model.startswith("mistral/"):
            monkeypatch.setenv("MISTRAL_API_KEY", "sk-openai-key")
        server.bodies.clear()
        server.auth_headers.clear()
        text, usage, translated = asyncio.run(ours(model))
        assert translated and text == "43" and usage.prompt_tokens > 0
        mine, sent_key = server.bodies[-1], set(server.auth_headers)
        server.auth_headers.clear()
        assert asyncio.run(theirs(model)) == "43"
        assert mine == server.bodies[-1] and sent_key == server.auth_headers, model
    from registry_cli.engine.inference.translated import route

    for other in ("anthropic/claude-3-haiku-20240307", "gemini/gemini-1.5-flash", "azure/gpt-4o"):
        assert route(litellm, other, server.url, "k", {"temperature": 0.0}, {}) is None  # litellm.acompletion's
    assert route(litellm, "openai/gpt-4o-mini", "", "", {}, {}) is None  # no key: litellm says what is missing
    monkeypatch.delenv("TOGETHERAI_API_KEY")
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    assert route(litellm, "together_ai/x", "", "sk-openai-key", {}, {}) is None  # OpenAI's key never goes elsewhere
