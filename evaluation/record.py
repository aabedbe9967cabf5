"""`benchmark run --record`: publish a run as an `evaluation` entry.

The manifest's metadata.details holds the small, schema-versioned summary (so tables read manifests only, which
are cached locally forever); the per-datum results, keyed by their content-addressed cache keys, are the entry's
``solutions.jsonl`` file.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from evaluation import EVALUATION_SCHEMA, SOLUTIONS_FILE
from registry_cli.errors import VersionExistsError
from registry_cli.manifest import FileEntry, Manifest
from registry_cli.names import bump_version, check_name
from registry_cli.registry import EntryInfo, Registry


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:40] or "none"


def provider_of(model: str, api_base: str) -> str:
    if "/" in model:
        prefix = model.split("/", 1)[0]
        if prefix not in ("openai", "hosted_vllm") or not api_base:
            return prefix
    if api_base:
        return urlsplit(api_base).hostname or "custom"
    return "openai" if model else ""


def agent_label(agent: str) -> str:
    """The agent's name: `name` of a `ns/name/version` entry, else the folder's base name."""
    from pathlib import PurePath

    parts = agent.strip("/").split("/")
    if len(parts) == 3 and not agent.startswith(("/", ".", "~")):
        return parts[1]
    return PurePath(agent.rstrip("/")).name or agent


def entry_name(benchmark: str, model: str, agent: str, provider: str) -> str:
    parts = ["evaluation", _slug(benchmark)]
    if model:
        parts += ["model", _slug(model.split("/", 1)[-1])]
    if agent:
        parts += ["agent", _slug(agent_label(agent))]
    if provider:
        parts += ["provider", _slug(provider)]
    return check_name("_".join(parts)[:128].rstrip("-._"))


def summary_details(registry: Registry, summary: Any) -> dict[str, Any]:
    m = dict(summary.metrics)
    m["prompt_tokens"] = int(summary.usage_total("prompt_tokens"))
    m["completion_tokens"] = int(summary.usage_total("completion_tokens"))
    m["cost"] = round(summary.usage_total("cost"), 6)
    m["duration_s"] = round(summary.duration_s, 3)
    agent_version = summary.agent.split("/")[2] if summary.agent.count("/") == 2 else ""
    return {
        "schema": EVALUATION_SCHEMA,
        "benchmark": summary.benchmark,
        "solver": summary.solver,
        "solver_version": summary.solver_version,
        "dataset": summary.dataset,
        "dataset_hash": summary.dataset_hash,
        "subset": summary.subset,
        "model": summary.model,
        "agent": summary.agent,
        "agent_hash": summary.agent_hash,
        "namespace": registry.config.namespace,
        "version": agent_version,
        "provider": provider_of(summary.model, summary.api_base),
        "num_repeats": summary.num_repeats,
        "metrics": m,
    }


def record_evaluation(registry: Registry, summary: Any) -> EntryInfo:
    details = summary_details(registry, summary)
    name = entry_name(summary.benchmark, summary.model, summary.agent, details["provider"])
    ns = check_name(registry.config.namespace, "namespace (NEARAI_NAMESPACE)")
    lines = "".join(json.dumps(o.record(), sort_keys=True) + "\n" for o in summary.outcomes).encode()
    digest = registry.put_blob(lines)
    files = [FileEntry(path=SOLUTIONS_FILE, sha256=digest, size=len(lines))]
    for _ in range(10):  # re-recording publishes the next version; a concurrent recorder makes us take the one after
        existing = registry.versions(ns, name)
        version = bump_version(existing[-1], "patch") if existing else "0.0.1"
        metadata = {"name": name, "version": version, "category": "evaluation",
                    "description": f"{summary.benchmark}: {100 * details['metrics']['score']:.2f}%",
                    "tags": ["evaluation", summary.benchmark], "details": details, "show_entry": True}
        manifest = Manifest(namespace=ns, name=name, version=version, metadata=metadata, files=files,
                            created_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"))
        try:
            return registry.publish_manifest(manifest)
        except VersionExistsError:
            continue
    raise VersionExistsError(f"could not find a free version for {ns}/{name}", "retry the recording")
