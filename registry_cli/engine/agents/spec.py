"""An agent as a run sees it: its folder (or registry entry), its metadata read as upstream nearai wrote it, and
what it did on one task (`AgentTrace`).

metadata.json is read once, strictly: a file that is not JSON, or a ``details.agent.defaults`` that is not an
object, is a one-line error for every command. Upstream's default keys (``model``, ``model_provider``,
``model_temperature``, ``model_max_tokens``, ``models[]``, ``max_iterations``) and this project's
(``temperature``, ``max_tokens``) are understood; any other key is named once in a warning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.names import METADATA_FILE
from registry_cli.engine.planning.dataset import Source
from registry_cli.errors import InferenceError

TRACE_TEXT_LIMIT = 8192  # characters kept of each message and of the agent's prints
DEFAULT_KEYS = frozenset({"model", "model_provider", "model_temperature", "model_max_tokens", "temperature",
                          "max_tokens", "models", "max_iterations"})
PROVIDERS = {"fireworks": "fireworks_ai", "hyperbolic": "hyperbolic", "local": "openai"}  # upstream -> litellm


@dataclass
class AgentTrace:
    """One run of an agent on one task: its messages, system logs and the tail of its prints."""

    messages: list[dict[str, str]] = field(default_factory=list)
    logs: list[dict[str, str]] = field(default_factory=list)
    stderr: str = ""

    def as_dict(self) -> dict[str, Any]:
        def cut(text: object) -> str:
            return str(text)[-TRACE_TEXT_LIMIT:]

        return {"messages": [{"role": str(m.get("role", "")), "content": cut(m.get("content", ""))} for m in self.messages],
                "logs": [{"level": str(m.get("level", "")), "message": cut(m.get("message", ""))} for m in self.logs],
                "stderr": cut(self.stderr)}


@dataclass(frozen=True)
class AgentDefaults:
    """``details.agent.defaults`` of the agent's metadata.json. The model applies when the run gives no --model;
    temperature and max_tokens whenever the run does not set them itself."""

    model: str = ""
    model_provider: str = ""
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def model_id(self) -> str:
        """The model as litellm names it: ``provider/model`` unless the model already names its provider."""
        if not self.model or "/" in self.model or not self.model_provider:
            return self.model
        return f"{PROVIDERS.get(self.model_provider, self.model_provider)}/{self.model}"


def read_metadata(folder: Path) -> dict[str, Any]:
    """The agent's metadata.json ({} when it has none); a one-line error when it is not a JSON object."""
    path = folder / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InferenceError(f"the agent's {path} is not valid JSON ({e})",
                             "fix the file, or start from `nearai registry metadata_template`") from None
    if not isinstance(meta, dict):
        raise InferenceError(f"the agent's {path} must be a JSON object", "start from `nearai registry metadata_template`")
    return meta


def _section(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InferenceError(f"{where}.{key} in the agent's metadata.json must be an object", "e.g. {}")
    return value


def _number(value: Any, kind: type[float] | type[int], key: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InferenceError(f"details.agent.defaults.{key} is {value!r}, not a number",
                             "fix the agent's metadata.json") from None


def parse_defaults(raw: dict[str, Any]) -> tuple[AgentDefaults, list[str]]:
    """The defaults and the unknown keys among them. ``models[0]`` is the default model when ``model`` is not set,
    as upstream's agent pages listed them."""
    unknown = sorted(k for k in raw if k not in DEFAULT_KEYS)
    first: dict[str, Any] = {}
    models = raw.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise InferenceError("details.agent.defaults.models must be a list of objects",
                                 'e.g. [{"model": "...", "model_provider": "fireworks"}]')
        first = models[0] if models else {}
    merged = {**first, **{k: v for k, v in raw.items() if k != "models"}}
    temperature = merged.get("model_temperature", merged.get("temperature"))
    max_tokens = merged.get("model_max_tokens", merged.get("max_tokens"))
    return AgentDefaults(str(merged.get("model") or ""), str(merged.get("model_provider") or ""),
                         _number(temperature, float, "model_temperature"),
                         _number(max_tokens, int, "model_max_tokens")), unknown


@dataclass(frozen=True)
class Agent:
    source: Source
    env_vars: tuple[tuple[str, str], ...] = ()  # details.env_vars, then the run's own (a suite's)
    defaults: AgentDefaults = AgentDefaults()
    metadata: str = "{}"  # the metadata.json as canonical JSON (what the agent sees as get_primary_agent())
    warnings: tuple[str, ...] = ()
    site_dirs: tuple[str, ...] = ()  # its installed requirements, mounted read-only in the sandbox
    state_dir: str = ""  # where agent data is kept between tasks ("" for nowhere)

    @classmethod
    def load(cls, source: Source, extra_env: dict[str, str] | None = None, state_dir: str = "",
             site_dirs: tuple[str, ...] = ()) -> Agent:
        cls.check(source.folder)
        meta = read_metadata(source.folder)
        details = _section(meta, "details", "")
        declared = details.get("env_vars") or {}
        if not isinstance(declared, dict):
            raise InferenceError("details.env_vars in the agent's metadata.json must be an object", "e.g. {\"KEY\": \"value\"}")
        merged = {str(k): str(v) for k, v in {**declared, **(extra_env or {})}.items()}
        defaults, unknown = parse_defaults(_section(_section(details, "agent", "details"), "defaults", "details.agent"))
        warnings = (f"warning: {source.label}: metadata key(s) details.agent.defaults.{', '.join(unknown)} not used "
                    "here",) if unknown else ()
        return cls(source, tuple(sorted(merged.items())), defaults, canonical_json(meta).decode(), warnings,
                   site_dirs, state_dir)

    @property
    def folder(self) -> Path:
        return self.source.folder.resolve()

    @property
    def identity(self) -> str:
        """The agent's content, plus its environment variables when it has any (hashed: values may be secrets)."""
        if not self.env_vars:
            return self.source.content_hash
        return sha256_hex(canonical_json([self.source.content_hash, list(self.env_vars)]))

    @property
    def label(self) -> str:
        return self.source.label

    def describe(self) -> dict[str, Any]:
        """What the agent's process is told about itself (upstream's ``env.get_primary_agent()``)."""
        meta = json.loads(self.metadata)
        parts = self.source.entry.split("/") if self.source.entry else []
        return {"namespace": parts[0] if len(parts) == 3 else "local",
                "name": parts[1] if len(parts) == 3 else str(meta.get("name") or self.source.name),
                "version": parts[2] if len(parts) == 3 else str(meta.get("version") or "0.0.1"), "metadata": meta}

    @property
    def data_key(self) -> str:
        """Agent data is kept per namespace/name, shared by its versions (as upstream kept it)."""
        about = self.describe()
        return f"{about['namespace']}/{about['name']}"

    @staticmethod
    def check(path: Path) -> None:
        if not (path / "agent.py").is_file():
            raise InferenceError(f"no agent.py in {path}", "an agent folder needs agent.py defining run(env)")


__all__ = ["PROVIDERS", "Agent", "AgentDefaults", "AgentTrace", "parse_defaults", "read_metadata"]
