"""litellm as a translator for providers that speak OpenAI's chat format: litellm's own provider config says where
to send a request, with which headers and which body; this project's HTTP pool sends it and reads the answer.

``litellm.acompletion`` costs about 10 ms of CPU per call (client set-up, logging objects, cost bookkeeping, the
OpenAI SDK's request machinery), 30-40 times the direct client, which caps one core near 100 answers a second.
For the providers below, everything provider-specific (URL, key header, message and parameter mapping) still comes
from litellm, once per run for the route and for the body of each conversation shape (`providers.NativeRoute`:
request templates, checked, and kept for the next run); only the transport is ours. Providers
with other wire formats or signed requests (Anthropic, Gemini, Bedrock, Vertex, Azure, ...) keep the full
``litellm.acompletion`` path.
"""

from __future__ import annotations

from typing import Any

from registry_cli.core import env
from registry_cli.engine.inference.providers import NativeRoute

# providers whose chat API is OpenAI's, reached with a bearer key (litellm configs derived from OpenAIGPTConfig)
OPENAI_SHAPED = frozenset({"openai", "hosted_vllm", "together_ai", "groq", "mistral", "deepseek", "fireworks_ai",
                           "xai", "perplexity", "deepinfra", "lm_studio", "cerebras", "nvidia_nim"})
DEFAULT_BASES = {"openai": "https://api.openai.com/v1"}
_OWN_HEADERS = frozenset({"content-type", "accept", "content-length", "host"})  # the HTTP pool sets these


def route(litellm: Any, resolved: str, api_base: str, key: str, params: dict[str, Any],
          extra_headers: dict[str, str]) -> NativeRoute | None:
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
    return NativeRoute(provider, url, headers, model, optional, config, wire="openai",
                       key_name=env.name_holding(key))
