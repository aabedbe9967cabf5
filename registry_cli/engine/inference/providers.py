"""Providers with wire formats of their own (Anthropic Messages, Gemini generateContent), asked through this
project's HTTP pool with litellm's translation: litellm's provider config says where a request goes, with which
headers, and builds its body and reads its answer; the pool sends it.

``litellm.acompletion`` costs ~3.6 ms of CPU a call (client set-up, logging objects, the pydantic response), 20x the
direct path. litellm's translation alone is ~0.1 ms each way, still ~2x. So each is done once and reused:

- **Request bodies.** The first request of a conversation shape (the roles of its messages, every content a
  non-blank string without surrounding whitespace) is translated by litellm with a marker in place of each content;
  later requests of that shape are the translated body with their contents put where the markers were. The first
  `CHECKED` requests of a shape are also translated whole and compared: a difference retires the template, so a
  provider whose translation does more than place the text is always translated whole.
- **Answers.** An answer made only of text (Anthropic: text blocks; Gemini: one candidate of plain text parts) is
  read here; any other (tool calls, thinking, cache counts, several candidates) by litellm's ``transform_response``.
  Tests check both readers against litellm's own path on the same answers.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from registry_cli.core import env
from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.files import atomic_write_bytes
from registry_cli.engine.inference.credentials import secrets as secret_values

NATIVE = frozenset({"anthropic", "gemini"})
KEYS = {"anthropic": ("ANTHROPIC_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
CHECKED = 2  # requests of each shape translated whole too, and compared with the template
ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}

Messages = list[dict[str, Any]]


@dataclass
class Answer:
    """What a provider's answer says, in OpenAI's terms."""

    content: str | None
    finish: str | None
    prompt_tokens: int
    completion_tokens: int
    tool_calls: list[dict[str, Any]] | None = None


@dataclass
class _Template:
    pieces: list[bytes]  # the body around each content's place
    order: list[int]  # which message's content goes in each place, in the body's order
    checked: int = 0


class _Quiet:
    """The logging object litellm's translation reports to: nothing is logged (the request holds the key)."""

    def __init__(self, optional_params: dict[str, Any]) -> None:
        self.optional_params = optional_params  # Gemini's reader looks up the call's options here
        self.model_call_details: dict[str, Any] = {}

    def post_call(self, *args: Any, **kwargs: Any) -> None:
        return None

    def pre_call(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class NativeRoute:
    """Where and how one model is asked through litellm's translation (a provider's own format, or OpenAI's for the
    OpenAI-shaped ones of `translated`): resolved once per run, or loaded as an earlier run kept it."""

    provider: str
    url: str
    headers: dict[str, str]
    model: str
    optional_params: dict[str, Any]
    config: Any  # litellm's provider config
    templates: dict[tuple[str, ...], _Template | None] = field(default_factory=dict)
    wire: str = ""  # the answer's format: "openai" for OpenAI-shaped providers (`translated`), else the provider's
    key_name: str = ""  # the environment variable the key in ``headers`` came from ("" for none: a placeholder)

    def key(self) -> str:
        """The key in ``headers``, as the environment holds it now ("" when it is a placeholder)."""
        return env.setting(self.key_name) if self.key_name else ""

    def body(self, messages: Messages) -> bytes:
        """The request body litellm would send for ``messages``."""
        shape = _shape(messages)
        if shape is None:
            return self._translated(messages)
        if shape not in self.templates:
            self.templates[shape] = self._template(messages)
        template = self.templates[shape]
        if template is None:
            return self._translated(messages)
        filled = _fill(template.pieces, [messages[i]["content"] for i in template.order])
        if template.checked < CHECKED:
            whole = self._translated(messages)
            if json.loads(whole) != json.loads(filled):
                self.templates[shape] = None  # this provider does more than place the text: translate each
                return whole
            template.checked += 1
        return filled

    def _config(self) -> Any:
        """litellm's provider config, resolved when first needed (a route loaded from its record has none)."""
        if self.config is None:
            import_litellm()
            from litellm.types.utils import LlmProviders
            from litellm.utils import ProviderConfigManager

            self.config = ProviderConfigManager.get_provider_chat_config(model=self.model,
                                                                         provider=LlmProviders(self.provider))
        return self.config

    def _translated(self, messages: Messages) -> bytes:
        import copy

        given: Any = copy.deepcopy(messages)  # litellm's translation may edit what it is given
        if self.provider == "gemini":
            import_litellm()
            from litellm.llms.vertex_ai.gemini.transformation import transform_request_body

            data = transform_request_body(messages=given, model=self.model, custom_llm_provider="gemini",
                                          litellm_params={}, cached_content=None,
                                          optional_params=dict(self.optional_params))
        else:
            data = self._config().transform_request(self.model, given, dict(self.optional_params), {},
                                                 dict(self.headers))
        return json.dumps(data).encode()

    def _template(self, messages: Messages) -> _Template | None:
        marks = [f"nearai-slot-{i}-{secrets.token_hex(8)}".encode() for i in range(len(messages))]
        body = self._translated([{**m, "content": mark.decode()} for m, mark in zip(messages, marks, strict=True)])
        if any(body.count(mark) != 1 for mark in marks):
            return None  # a content dropped or copied: not a plain placement
        order = sorted(range(len(marks)), key=lambda i: body.index(marks[i]))  # a system prompt may move last
        pieces: list[bytes] = []
        rest = body
        for i in order:
            before, _, rest = rest.partition(marks[i])
            pieces.append(before)
        pieces.append(rest)
        return _Template(pieces, order)

    def read(self, status: int, data: bytes, request: bytes, messages: Messages, key: str) -> Answer:
        """The answer in ``data`` (a 2xx response to ``request``)."""
        parsed = json.loads(data)
        quick = _anthropic_text(parsed) if (self.wire or self.provider) == "anthropic" else _gemini_text(parsed)
        return quick if quick is not None else self._litellm_read(status, data, request, messages, key)

    def _litellm_read(self, status: int, data: bytes, request: bytes, messages: Messages, key: str) -> Answer:
        import_litellm()
        import httpx
        from litellm.types.utils import ModelResponse

        raw = httpx.Response(status, content=data, headers={"content-type": "application/json"},
                             request=httpx.Request("POST", self.url))
        resp = self._config().transform_response(self.model, raw, ModelResponse(), _Quiet(dict(self.optional_params)),
                                              json.loads(request),
                                              messages, dict(self.optional_params), {}, None, api_key=key,
                                              json_mode=False)
        choice = resp.choices[0]
        calls = [c.model_dump() if hasattr(c, "model_dump") else dict(c)
                 for c in (getattr(choice.message, "tool_calls", None) or [])]
        usage = getattr(resp, "usage", None)
        return Answer(choice.message.content, getattr(choice, "finish_reason", None),
                      int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0),
                      calls or None)


def _shape(messages: Messages) -> tuple[str, ...] | None:
    """The roles of ``messages`` when every content is plain text a template can hold, else None."""
    roles = []
    for m in messages:
        content = m.get("content")
        if len(m) != 2 or not isinstance(content, str) or not content or content != content.strip():
            return None
        roles.append(str(m.get("role")))
    return tuple(roles)


def _fill(pieces: list[bytes], contents: list[str]) -> bytes:
    out = [pieces[0]]
    for content, piece in zip(contents, pieces[1:], strict=True):
        out.append(json.dumps(content)[1:-1].encode())
        out.append(piece)
    return b"".join(out)


def _anthropic_text(data: Any) -> Answer | None:
    """An Anthropic answer of text blocks only, with plain usage; None for anything litellm should read."""
    if not isinstance(data, dict) or data.get("type") != "message":
        return None
    blocks, usage = data.get("content"), data.get("usage")
    if not isinstance(blocks, list) or not isinstance(usage, dict) or data.get("stop_reason") not in ANTHROPIC_FINISH:
        return None
    if any(not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str)
           or set(b) - {"type", "text"} for b in blocks):
        return None
    if usage.get("cache_creation_input_tokens") or usage.get("cache_read_input_tokens"):
        return None
    text = "".join(b["text"] for b in blocks)
    return Answer(text or None, ANTHROPIC_FINISH[data["stop_reason"]], int(usage.get("input_tokens") or 0),
                  int(usage.get("output_tokens") or 0))


def _gemini_text(data: Any) -> Answer | None:
    """A Gemini answer of one candidate of plain text parts, with plain usage; None for anything litellm should
    read."""
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list) or len(data["candidates"]) != 1:
        return None
    candidate, usage = data["candidates"][0], data.get("usageMetadata")
    if not isinstance(candidate, dict) or not isinstance(usage, dict) or candidate.get("finishReason") not in GEMINI_FINISH:
        return None
    parts = (candidate.get("content") or {}).get("parts")
    if not isinstance(parts, list) or set(candidate) - {"content", "finishReason", "index"}:
        return None
    if any(not isinstance(p, dict) or set(p) != {"text"} or not isinstance(p["text"], str) for p in parts):
        return None
    if set(usage) - {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"}:
        return None
    text = "".join(p["text"] for p in parts)
    return Answer(text or None, GEMINI_FINISH[candidate["finishReason"]], int(usage.get("promptTokenCount") or 0),
                  int(usage.get("candidatesTokenCount") or 0))


def provider_key(provider: str) -> str:
    """The provider's own key from the environment ("" when none is set)."""
    return next((v for name in KEYS.get(provider, ()) if (v := env.setting(name))), "")


def native_route(litellm: Any, resolved: str, api_base: str, params: dict[str, Any],
                 extra_headers: dict[str, str]) -> NativeRoute | None:
    """The route to ``resolved`` (``anthropic/...``, ``gemini/...``) through our HTTP pool, or None when
    litellm.acompletion must handle it (another provider, or no key for the provider's own endpoint: litellm then
    says what is missing). ``api_base``: the run's endpoint for the provider's API ("" for the provider's own)."""
    try:
        model, provider, _, _ = litellm.get_llm_provider(resolved)
    except Exception:
        return None
    key = provider_key(provider)
    if provider not in NATIVE or not (key or api_base):
        return None
    from litellm.types.utils import LlmProviders
    from litellm.utils import ProviderConfigManager

    try:
        config: Any = ProviderConfigManager.get_provider_chat_config(model=model, provider=LlmProviders(provider))
        optional = config.map_openai_params(dict(params), {}, model, drop_params=True)
        if provider == "gemini":
            url, headers = _gemini_endpoint(config, model, api_base, key or "none", optional)
        else:
            base = api_base or "https://api.anthropic.com"
            url = base if base.endswith("/v1/messages") else base.rstrip("/") + "/v1/messages"
            headers = config.validate_environment({}, model, [], dict(optional), {}, api_key=key or "none",
                                                  api_base=url)
    except Exception:
        return None
    own = {"content-type", "accept", "content-length", "host"}  # the HTTP pool sets these
    headers = {str(k): str(v) for k, v in {**headers, **extra_headers}.items() if str(k).lower() not in own}
    return NativeRoute(provider, url, headers, model, optional, config, key_name=env.name_holding(key))


def _gemini_endpoint(config: Any, model: str, api_base: str, key: str,
                     optional: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexLLM

    auth, url = VertexLLM()._get_token_and_url(model=model, auth_header=None, gemini_api_key=key,
                                               vertex_project=None, vertex_location=None, vertex_credentials=None,
                                               stream=False, custom_llm_provider="gemini",
                                               api_base=api_base or None)
    headers = config.validate_environment(api_key=auth, headers=None, model=model, messages=[],
                                          optional_params=optional, litellm_params={})
    return str(url), dict(headers)


def import_litellm() -> Any:
    """litellm, imported the way this project uses it (its bundled price table, no debug banners)."""
    env.default("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


_KEY_MARK = "\u0000nearai-key\u0000"  # where the provider's key goes in a kept route's headers


def record_path(folder: Path, resolved: str, api_base: str, params: dict[str, Any]) -> Path:
    """Where the route to ``resolved`` is kept: named by everything that shapes it, litellm's version included."""
    try:
        version = metadata.version("litellm")
    except metadata.PackageNotFoundError:
        version = ""
    ident = {"litellm": version, "model": resolved, "api_base": api_base, "params": params, "schema": 3}
    return folder / f"{sha256_hex(canonical_json(ident))[:32]}.json"


def save_route(route: NativeRoute, path: Path) -> None:
    """Keep ``route`` and its checked templates, so the next run of the same model asks it without importing
    litellm (seconds). The key is never written: its place in the headers is marked and the variable it came from
    named. Nothing is kept when nothing was checked, or when a secret would be written."""
    templates = {"\u001f".join(shape): {"pieces": [p.decode() for p in t.pieces], "order": t.order}
                 for shape, t in route.templates.items() if t is not None and t.checked >= CHECKED}
    if not templates or path.exists():
        return
    key = route.key()
    headers = {k: v.replace(key, _KEY_MARK) if key else v for k, v in route.headers.items()}
    data = json.dumps({"provider": route.provider, "wire": route.wire, "url": route.url, "headers": headers,
                       "key_name": route.key_name, "model": route.model, "optional_params": route.optional_params,
                       "templates": templates}).encode()
    if any(s.encode() in data for s in secret_values() if len(s) >= 8):
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def load_route(path: Path, api_base: str) -> NativeRoute | None:
    """The route kept at ``path`` with this run's key in its headers, or None (none kept, unreadable, or no key for
    the provider's own endpoint)."""
    try:
        data = json.loads(path.read_bytes())
        key_name = str(data["key_name"])
        key = env.setting(key_name) if key_name else ""
        if (key_name and not key) or not (key or api_base):
            return None  # the key it was made with is gone: litellm says what is missing
        headers = {str(k): str(v).replace(_KEY_MARK, key) for k, v in data["headers"].items()}
        templates: dict[tuple[str, ...], _Template | None] = {
            tuple(shape.split("\u001f")): _Template([p.encode() for p in t["pieces"]], [int(i) for i in t["order"]],
                                                    CHECKED)
            for shape, t in data["templates"].items()}
        return NativeRoute(str(data["provider"]), str(data["url"]), headers, str(data["model"]),
                           dict(data["optional_params"]), None, templates, str(data["wire"]), key_name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
