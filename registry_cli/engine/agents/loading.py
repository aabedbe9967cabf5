"""Loading an agent for a run: its folder or registry entry, its installed requirements and where its agent data
is kept; and `RegistryAgents`, which loads the agents an agent starts (registry entries only: an agent in the
sandbox must not name a folder of this machine to have it copied in)."""

from __future__ import annotations

from typing import Any

from registry_cli.core.registry import Registry
from registry_cli.engine.agents import requirements
from registry_cli.engine.agents.spec import Agent
from registry_cli.engine.planning.dataset import Source, resolve_source
from registry_cli.errors import InferenceError, NearaiError


def _ready(registry: Registry, source: Source, extra_env: dict[str, str] | None) -> Agent:
    Agent.check(source.folder)
    sites = requirements.install(source.folder, registry.config.cache_dir / "envs")
    return Agent.load(source, extra_env, str(registry.config.home / "agent_data"), sites)


def load_agent(registry: Registry, spec: str, extra_env: dict[str, str] | None = None) -> Agent:
    """The agent ``spec`` names (a folder or a registry entry), ready to run."""
    return _ready(registry, resolve_source(registry, spec, "agent"), extra_env)


class RegistryAgents:
    """Resolves ``env.run_agent`` names to registry agents. Picklable: a Ray worker opens its own registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry = registry

    def __getstate__(self) -> dict[str, Any]:
        return {"_registry": None}

    def __call__(self, spec: str) -> Agent:
        if not spec or spec.startswith(("/", ".", "~")) or spec.count("/") > 2:
            raise InferenceError(f"{spec!r} is not a registry agent", "name it as namespace/name/version")
        if self._registry is None:
            self._registry = Registry()
        try:
            found = self._registry.download(spec)
        except NearaiError as e:
            raise InferenceError(f"no registry agent {spec!r}: {e.message}", e.hint) from None
        if found.info.category not in ("agent", None, ""):
            raise InferenceError(f"{spec} is a {found.info.category}, not an agent", "name an agent entry")
        return _ready(self._registry, Source(found.path, found.info.entry, found.info.name, found.info.manifest_hash),
                      None)


__all__ = ["RegistryAgents", "load_agent"]
