"""litellm as a translator for providers that speak OpenAI's chat format: litellm's own provider config says where
to send a request, with which headers and which body; this project's HTTP pool sends it and reads the answer.

``litellm.acompletion`` costs about 10 ms of CPU per call (client set-up, logging objects, cost bookkeeping, the
OpenAI SDK's request machinery), 30-40 times the direct client, which caps one core near 100 answers a second.
For the providers below, everything provider-specific (URL, key header, message and parameter mapping) still comes
from litellm, once per run for the route and once per call for the body; only the transport is ours. Providers
with other wire formats or signed requests (Anthropic, Gemini, Bedrock, Vertex, Azure, ...) keep the full
``litellm.acompletion`` path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# providers whose chat API is OpenAI's, reached with a bearer key (litellm configs derived from OpenAIGPTConfig)
OPENAI_SHAPED = frozenset({"openai", "hosted_vllm", "together_ai", "groq", "mistral", "deepseek", "fireworks_ai",
                           "xai", "perplexity", "deepinfra", "lm_studio", "cerebras", "nvidia_nim"})
DEFAULT_BASES = {"openai": "https://api.openai.com/v1"}
_OWN_HEADERS = frozenset({"content-type", "accept", "content-length", "host"})  # the HTTP pool sets these


@dataclass
class Route:
    """Where and how one model is asked: resolved once per run."""

    url: str
    headers: dict[str, str]
    model: str  # the provider's model name
    optional_params: dict[str, Any]
    config: Any  # litellm's provider config

    def body(self, messages: list[dict[str, Any]]) -> bytes:
        """The request body litellm would send for ``messages``."""
        data = self.config.transform_request(self.model, messages, dict(self.optional_params), {}, dict(self.headers))
        return json.dumps(data).encode()


def route(litellm: Any, resolved: str, api_base: str, key: str, params: dict[str, Any],
          extra_headers: dict[str, str]) -> Route | None:
    """The translated route to ``resolved`` (``provider/model``), or None when litellm.acompletion must handle it:
    another wire format, no known endpoint, or no key for a remote one (litellm then reports what is missing).
    ``key``: the key to use when litellm finds none in the provider's own variable; ``params``: OpenAI-style
    generation parameters (temperature, max_tokens)."""
    from litellm.llms.openai.chat.gpt_transformation import OpenAIGPTConfig
    from litellm.types.utils import LlmProviders
    from litellm.utils import ProviderConfigManager

    try:
        model, provider, found_key, base = litellm.get_llm_provider(resolved, api_base=api_base or None)
        config = ProviderConfigManager.get_provider_chat_config(model=model, provider=LlmProviders(provider))
    except Exception:  # litellm cannot route it: its own path reports that
        return None
    if provider not in OPENAI_SHAPED or not isinstance(config, OpenAIGPTConfig):
        return None
    base = base or DEFAULT_BASES.get(provider, "")
    if not found_key and not api_base and provider != "openai":
        return None  # ``key`` is OpenAI's or the run's own endpoint's: never sent to another provider
    key = found_key or key
    if not base or (not key and not api_base):
        return None
    try:
        optional = config.map_openai_params(dict(params), {}, model, drop_params=True)
        headers = config.validate_environment({}, model, [], optional, {}, api_key=key or "none", api_base=base)
        url = config.get_complete_url(base, key, model, optional, {})
    except Exception:
        return None
    headers = {str(k): str(v) for k, v in {**headers, **extra_headers}.items() if str(k).lower() not in _OWN_HEADERS}
    return Route(url, headers, model, optional, config)
