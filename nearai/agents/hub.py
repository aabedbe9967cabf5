"""What only the nearai hub could do. The hub has shut down and nothing here replaces it, so each of these methods
raises `HubOnlyError`, naming the method and why, instead of an AttributeError deep inside an agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# method -> what the hub did for it
HUB_ONLY: dict[str, str] = {
    "query_vector_store": "vector stores lived on the hub",
    "create_vector_store": "vector stores lived on the hub",
    "create_vector_store_from_source": "vector stores lived on the hub",
    "add_file_to_vector_store": "vector stores lived on the hub",
    "get_vector_store": "vector stores lived on the hub",
    "get_vector_store_files": "vector stores lived on the hub",
    "find_agents": "agent discovery searched the hub's index",
    "generate_image": "image generation was a hub service",
    "add_user_memory": "user memory was kept by the hub",
    "query_user_memory": "user memory was kept by the hub",
    "schedule_run": "scheduled runs were started by the hub",
    "get_agent_public_key": "agent keys were issued by the hub",
    "signed_completion": "completion signatures were made by the hub's inference",
    "verify_signed_message": "completion signatures were made by the hub's inference",
    "verify_message": "NEAR account signatures need the NEAR chain",
    "set_near": "NEAR accounts need the NEAR chain",
}


class HubOnlyError(NotImplementedError):
    """An agent called a method only the (shut down) nearai hub could serve."""

    def __init__(self, method: str) -> None:
        why = HUB_ONLY.get(method, "it needed the nearai hub")
        super().__init__(f"env.{method}() needs the nearai hub, which has shut down ({why}); "
                         "it does not exist in a self-hosted run")
        self.method = method


def hub_only(method: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise HubOnlyError(method)

    call.__name__ = method
    call.__doc__ = f"Not available: {HUB_ONLY.get(method, 'a hub service')}."
    return call


class HubClient:
    """Stands in for upstream's hub clients (``env.openai``, ``env.async_openai``): any use says why it fails."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise HubOnlyError(f"{self._name}.{attr}")


__all__ = ["HUB_ONLY", "HubClient", "HubOnlyError", "hub_only"]
