"""`benchmark run --record`: publish a run as an `evaluation` entry.

An evaluation's identity (`evaluation_key`) covers everything that makes two runs comparable or not: benchmark,
solver class + version + bound arguments, dataset content, subset and datum selection, repeats, model and its
generation parameters, agent. The manifest's metadata.details holds that identity and the metrics (tables read
manifests only, which are cached locally forever); the per-datum results are the entry's ``solutions.jsonl``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evaluation import EVALUATION_SCHEMA, SOLUTIONS_FILE
from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.manifest import FileEntry, Manifest
from registry_cli.core.names import bump_version, check_name
from registry_cli.core.registry import EntryInfo, Registry, scan_folder
from registry_cli.engine.caching.cache import drop_none, jsonable
from registry_cli.engine.execution.results import RunSummary
from registry_cli.engine.planning.plan import Plan
from registry_cli.errors import RecordRefused, VersionExistsError

RUNS_FOLDER = "runs"
RUN_FILE_MAX = 2**20  # larger files of a kept run folder are left out of the entry
RUN_FILES_MAX = 64 * 2**20


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


def agent_name(label: str) -> str:
    """The agent's name: `name` of a `ns/name/version` entry, else the part before `@` of a local label."""
    parts = label.split("/")
    return parts[1] if len(parts) == 3 else label.split("@", 1)[0]


def entry_name(details: dict[str, Any]) -> str:
    parts = ["evaluation", _slug(details["benchmark"])]
    if details["model"]:
        parts += ["model", _slug(details["model"].split("/", 1)[-1])]
    if details["agent"]:
        parts += ["agent", _slug(agent_name(details["agent"]))]
    if details["provider"]:
        parts += ["provider", _slug(details["provider"])]
    if details["subset"]:
        parts += ["subset", _slug(details["subset"])]
    if details.get("environment"):
        parts += ["env", details["evaluation_key"][:8]]
    if details["selection"]:
        parts += ["n", str(details["n_datums"]), details["evaluation_key"][:8]]
    return check_name("_".join(parts)[:128].rstrip("-._"))


def evaluation_identity(plan: Plan) -> dict[str, Any]:
    p, sel = plan.params, plan.data.selection
    identity: dict[str, Any] = drop_none({
        "benchmark": plan.benchmark,
        "solver": plan.solver.identity(),
        "dataset": plan.data.source.content_hash,
        "subset": sel.subset or None,
        "selection": sel.label or None,
        "num_repeats": p.num_repeats,
        "model": plan.model.identity() if plan.model else None,
        "agent": plan.agent.identity if plan.agent else None,
        "environment": sha256_hex(canonical_json(sorted(p.environment_variables.items())))
        if p.environment_variables else None,  # a suite's setting: hashed, values may be secrets
    })
    return identity


def shown_environment(values: dict[str, str]) -> dict[str, str]:
    """A run's environment variables as an evaluation shows them: the names, and each value's hash (a value may be
    a secret whatever its name, so none is stored in clear; equal settings show equal hashes)."""
    return {k: f"sha256:{sha256_hex(v.encode())[:12]}" for k, v in sorted(values.items())}


def run_metrics(summary: RunSummary) -> dict[str, Any]:
    """The run's metrics with its token counts, cost and duration."""
    m: dict[str, Any] = dict(summary.metrics)
    m["prompt_tokens"] = int(summary.usage_total("prompt_tokens"))
    m["completion_tokens"] = int(summary.usage_total("completion_tokens"))
    m["cost"] = round(summary.usage_total("cost"), 6)
    m["duration_s"] = round(summary.duration_s, 3)
    return m


def summary_details(registry: Registry, plan: Plan, summary: RunSummary) -> dict[str, Any]:
    return {**run_details(registry, plan), "metrics": run_metrics(summary)}


def run_details(registry: Registry, plan: Plan) -> dict[str, Any]:
    """What a run used, named so it can be fetched again: the identity part of an evaluation's details."""
    p, sel = plan.params, plan.data.selection
    agent = plan.agent.label if plan.agent else ""
    model = plan.model
    return {
        "schema": EVALUATION_SCHEMA,
        "evaluation_key": sha256_hex(canonical_json(evaluation_identity(plan))),
        "benchmark": plan.benchmark,
        "solver": plan.solver.name,
        "solver_class": plan.solver.path,
        "solver_version": plan.solver.version,
        "solver_args": json.loads(canonical_json(plan.solver.identity()["args"])),
        "dataset": plan.data.source.label,
        "dataset_hash": plan.data.source.content_hash,
        "subset": sel.subset,
        "selection": sel.label,
        "n_datums": len(sel.indices),
        "dataset_size": sel.total,
        "limit": sel.limit,
        "subsample": sel.subsample,
        "seed": sel.seed,
        "num_repeats": p.num_repeats,
        "model": model.resolved if model else "",
        "api_base": model.identity()["api_base"] or "" if model else "",
        "temperature": model.temperature if model else None,
        "max_tokens": model.max_tokens if model else None,
        "provider": provider_of(model.resolved, model.api_base) if model else "",
        "agent": agent,
        "agent_hash": plan.agent.identity if plan.agent else "",
        "namespace": registry.config.namespace,
        "version": agent.split("/")[2] if agent.count("/") == 2 else "",
        "sandbox": plan.sandbox_kind,
        "environment": shown_environment(p.environment_variables),
    }


def kept_run_folders(registry: Registry, plan: Plan, summary: RunSummary) -> tuple[list[FileEntry], dict[str, str]]:
    """The run folders solvers kept (scenarios: ``info.run`` under ``--results_dir``) as entry files under
    ``runs/``, bounded per file and in all; and where each outcome's folder landed."""
    results = Path(plan.params.results_dir)
    entries: list[FileEntry] = []
    where: dict[str, str] = {}
    total = 0
    for o in summary.outcomes:
        run = (o.result.get("info") or {}).get("run")
        folder = results / str(run) if run else None
        if folder is None or not folder.is_dir():
            continue
        prefix = f"{RUNS_FOLDER}/{run}"
        for rel, path in scan_folder(folder):
            size = path.stat().st_size
            if size > RUN_FILE_MAX or total + size > RUN_FILES_MAX:
                continue
            total += size
            entries.append(FileEntry(path=f"{prefix}/{rel}", sha256=registry.put_blob(path.read_bytes()), size=size))
        where[o.key] = prefix
    return entries, where


def record_evaluation(registry: Registry, plan: Plan, summary: RunSummary) -> EntryInfo:
    if summary.total and summary.unanswered == summary.total:
        raise RecordRefused(f"not recorded: all {summary.total} datums errored or got empty answers",
                            "fix the errors shown above and rerun with --record")
    if not summary.total:
        raise RecordRefused("not recorded: the run has no datums", "check --limit, --subsample and the dataset")
    details = summary_details(registry, plan, summary)
    name = entry_name(details)
    ns = check_name(registry.config.namespace, "namespace (NEARAI_NAMESPACE)")
    run_files, run_folders = kept_run_folders(registry, plan, summary)
    rows = plan.data.rows
    lines = "".join(json.dumps(dict(o.record(), run_folder=run_folders.get(o.key), input=jsonable(rows.get(o.index))),
                               sort_keys=True) + "\n" for o in summary.outcomes).encode()
    digest = registry.put_blob(lines)
    files = [FileEntry(path=SOLUTIONS_FILE, sha256=digest, size=len(lines)), *run_files]
    score = 100 * details["metrics"]["score"]
    errored = f", {details['metrics']['errored']} errored" if details["metrics"]["errored"] else ""
    for _ in range(10):  # re-recording publishes the next version; a concurrent recorder makes us take the one after
        existing = registry.versions(ns, name)
        version = bump_version(existing[-1], "patch") if existing else "0.0.1"
        metadata = {"name": name, "version": version, "category": "evaluation",
                    "description": f"{details['benchmark']}: {score:.2f}% of {details['metrics']['n']}{errored}",
                    "tags": ["evaluation", details["benchmark"]], "details": details, "show_entry": True}
        manifest = Manifest(namespace=ns, name=name, version=version, metadata=metadata, files=files,
                            created_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"))
        try:
            return registry.publish_manifest(manifest)
        except VersionExistsError:
            continue
    raise VersionExistsError(f"could not find a free version for {ns}/{name}", "retry the recording")
