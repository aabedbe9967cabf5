"""Settled reruns: what a run whose every outcome is a cached verdict adds up to, kept under
``cache/results/settled/``, so the same rerun against the same cache says it without reading a result.

A fully cached rerun of 100,000 datums otherwise makes 100,000 cache keys, reads 100,000 results and sums them:
most of a second and a quarter of a gigabyte, to print what the last rerun printed. The sum is kept under a name
made of everything it depends on, so a changed input is a different name, never a stale answer:

- the plan's identity (`cache_group`: solver, dataset content, subset, model, agent, settings) and selection
  (limit, subsample, seed, repeats), which make its datum hashes and cache keys, and how those are computed
  (the cache's and the dataset index's schemas);
- this machine's packs of the group (name, size and modification time of each; a pack being written, or left
  unsealed by a killed run, means nothing is settled).

Runs that need every outcome do not use it: ``--force``, ``--record`` (an evaluation lists each datum), a solver
that writes run folders for cached results (``restore``), Ray. A sum that cannot be read or written is a miss.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.files import atomic_write_bytes
from registry_cli.engine.caching.cache import CACHE_SCHEMA
from registry_cli.engine.execution.results import RunSummary, Settled
from registry_cli.engine.planning.datum_index import SCHEMA as INDEX_SCHEMA

if TYPE_CHECKING:
    from registry_cli.engine.caching.cache import ResultCache
    from registry_cli.engine.planning.plan import Plan

SCHEMA = 1


def settled_path(plan: Plan, cache: ResultCache) -> Path | None:
    """Where the sum of ``plan``'s outcomes against this cache is kept, or None when it cannot be settled."""
    p = plan.params
    if p.force or p.record or callable(getattr(plan.solver_instance, "restore", None)) or not plan.cache_group:
        return None
    packs = _packs(cache.pack_folder(plan.cache_group))
    if packs is None:
        return None
    sel = plan.data.selection
    ident = {"schema": [SCHEMA, CACHE_SCHEMA, INDEX_SCHEMA], "group": plan.cache_group, "repeats": p.num_repeats,
             "selection": [sel.subset, sel.total, sel.limit, sel.subsample, sel.seed, len(sel.indices)],
             "packs": packs}
    return cache.directory / "settled" / f"{sha256_hex(canonical_json(ident))[:40]}.json"


def _packs(folder: Path) -> list[list[Any]] | None:
    """Name, size and modification time of each pack (their digests are derived from them and left out)."""
    try:
        entries = sorted((e for e in os.scandir(folder) if e.name.endswith(".jsonl")), key=lambda e: e.name)
        listing = [[e.name, *_stamp(e.stat())] for e in entries]
    except OSError:
        return None
    if not listing or any(str(entry[0]).startswith("run-") for entry in listing):
        return None  # a pack being written (or a killed run's, not yet sealed): results may still change
    return listing


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def read_settled(path: Path) -> tuple[Settled, dict[str, float]] | None:
    """The kept sum and metrics at ``path``, or None."""
    try:
        doc = json.loads(path.read_bytes())
        settled = Settled(int(doc["n"]), {str(k): int(v) for k, v in doc["counts"].items()},
                          {str(k): float(v) for k, v in doc["usage"].items()})
        metrics = {str(k): v for k, v in doc["metrics"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (settled, metrics) if settled.n > 0 else None


def keep_settled(path: Path, summary: RunSummary) -> None:
    """Keep the sum of ``summary`` (a run whose every outcome is a verdict now in the cache); never raises."""
    counts: dict[str, int] = {}
    for o in summary.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    try:
        data = json.dumps({"n": summary.total, "counts": counts, "usage": summary.usage_totals(),
                           "metrics": summary.metrics}, allow_nan=False).encode()
    except (TypeError, ValueError):  # metrics a solver made that JSON cannot hold: not kept
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
