"""The model side of a run (`ModelSpec`), which client asks it, and whether it can be asked at all, found out before
a run rather than per datum: a model name litellm can route, a server that answers at ``--api_base``."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_cli.core import env
from registry_cli.engine.inference.credentials import public_url, without_credentials
from registry_cli.engine.inference.http import HttpPool, origin
from registry_cli.engine.inference.providers import NATIVE, record_path
from registry_cli.errors import InferenceError

if TYPE_CHECKING:
    from registry_cli.engine.planning.params import RunParams

FAST_PROVIDERS = ("", "openai", "hosted_vllm")


@dataclass(frozen=True)
class ModelSpec:
    """The model side of a run, built from `RunParams` (where the defaults are declared)."""

    model: str
    api_base: str
    temperature: float
    max_tokens: int
    timeout: float
    num_retries: int

    @classmethod
    def from_params(cls, p: RunParams) -> ModelSpec:
        return cls(p.model, p.api_base, p.temperature, p.max_tokens, p.timeout, p.num_inference_retries)

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0] if "/" in self.model else ""

    @property
    def resolved(self) -> str:
        """Model id with its provider: a bare name behind api_base is an OpenAI-compatible model."""
        if self.api_base and not self.provider:
            return f"openai/{self.model}"
        return self.model

    def litellm_params(self) -> dict[str, Any]:
        """The OpenAI-style generation parameters litellm maps to the provider's."""
        return {"temperature": self.temperature, **({"max_tokens": self.max_tokens} if self.max_tokens else {})}

    def identity(self) -> dict[str, Any]:
        """What changes the answer (part of cache keys): never keys, timeouts or retry counts."""
        return {
            "model": self.resolved,
            "api_base": public_url(self.api_base) or None,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens or None,
        }


def choose_backend(spec: ModelSpec) -> str:
    """``openai`` (the direct client) for OpenAI-compatible endpoints, else ``litellm``."""
    forced = env.inference_backend()
    if forced not in ("", "openai", "litellm", "acompletion"):
        raise InferenceError(f"unknown NEARAI_INFERENCE_BACKEND {forced!r}",
                             "set it to openai, litellm or acompletion, or unset it")
    forced = "litellm" if forced == "acompletion" else forced
    fast = bool(spec.api_base) and spec.provider in FAST_PROVIDERS
    backend = forced or ("openai" if fast else "litellm")
    if backend == "openai" and not spec.api_base:
        raise InferenceError("the openai backend needs --api_base", "pass --api_base=http://host:port/v1")
    return backend


def kept_route(spec: ModelSpec) -> Path:
    """Where the route to ``spec``'s model through litellm's translation is kept between runs (`providers`)."""
    from registry_cli.core.config import load_config

    return record_path(load_config().cache_dir / "translations", spec.resolved, without_credentials(spec.api_base),
                       spec.litellm_params())


def check_routable(spec: ModelSpec) -> None:
    """Fail before the run, not once per datum, when litellm cannot route the model name to a provider."""
    if choose_backend(spec) != "litellm" or spec.api_base or spec.provider in NATIVE or kept_route(spec).exists():
        return  # routable by definition (a native provider's prefix, a route kept): no litellm import to know it
    env.default("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    try:
        litellm.get_llm_provider(spec.resolved)
    except Exception:
        raise InferenceError(f"cannot route model {spec.model!r}: no provider is known for it",
                             "prefix the provider (openai/..., anthropic/...) or pass --api_base") from None


def check_reachable(spec: ModelSpec) -> None:
    """Fail before the run, not after every datum's retries, when nothing answers at --api_base (the direct client
    only: litellm may reach its endpoint through a proxy)."""
    if choose_backend(spec) != "openai":
        return
    try:
        host, port, _ = origin(spec.api_base)
    except ValueError:
        raise _not_http(spec.api_base) from None
    try:
        socket.create_connection((host, port), timeout=min(10.0, spec.timeout)).close()
    except OSError as e:
        raise InferenceError(f"cannot connect to {public_url(spec.api_base)}: {e.strerror or e}",
                             "start the model server or fix --api_base") from None


def open_session(api_base: str, max_connections: int) -> HttpPool:
    """Kept-alive connections to an OpenAI-compatible server (call inside a running event loop)."""
    try:
        return HttpPool(api_base, max_connections)
    except ValueError:
        raise _not_http(api_base) from None


def _not_http(api_base: str) -> InferenceError:
    return InferenceError(f"--api_base {public_url(api_base)!r} is not an http(s) URL",
                          "e.g. --api_base=http://localhost:8000/v1")
