"""`nearai registry gc`: remove what no published version needs, never what an upload in progress is writing.

Mark: every ref names a manifest, every manifest its blobs. Sweep: manifests, blobs, create-only probes and publish
claims that nothing marks and that are older than the grace period, plus unfinished writes (temp files of the local
store, multipart uploads on S3) started before it, and (``verify``) every blob whose bytes do not match its name.
An upload in progress writes its blobs and manifest before its ref, so they are younger than the grace period
until it commits; the mark is taken again just before deleting, so a version published meanwhile keeps what it
reuses. Result packs (``cache/``) are shared results, not garbage.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from registry_cli.core.registry import Registry
from registry_cli.errors import IntegrityError, UsageError

SWEPT_PREFIXES = ("manifests/", "blobs/", "_nearai/probes/", "claims/")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class GcReport:
    dry_run: bool
    grace_s: float
    removed: list[str] = field(default_factory=list)  # unreachable objects older than the grace period
    removed_bytes: int = 0
    aborted: list[str] = field(default_factory=list)  # unfinished writes
    young: int = 0  # unreachable but within the grace period: maybe an upload in progress
    kept: int = 0  # reachable
    corrupt: list[str] = field(default_factory=list)  # blobs whose bytes do not match their name (removed at any age)
    unverified: int = 0  # blobs whose bytes could not be checked (they arrived altered): kept


def parse_grace(text: str) -> float:
    """``24h``, ``30m``, ``7d``, ``90s`` or a number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not m:
        raise UsageError(f"--grace must be a duration like 24h, 30m or 90s, got {text!r}", "e.g. --grace=24h")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def collect_garbage(registry: Registry, grace_s: float, dry_run: bool = False, verify: bool = True) -> GcReport:
    """``verify``: read every blob; one whose bytes do not match its name (a failed upload's damaged copy) is
    garbage at any age and even when a version names it (that version could never be downloaded anyway; the next
    upload of the same file writes it again). Only a copy the store's own digest confirms is judged."""
    report = GcReport(dry_run, grace_s)
    cutoff = time.time() - grace_s
    keep = _marked(registry)
    old: dict[str, int] = {}
    for prefix in SWEPT_PREFIXES:
        for key, size, modified in registry.store.stat_list(prefix):
            if verify and key.startswith("blobs/"):
                state = registry.check_blob(key.rsplit("/", 1)[-1])
                if state == "corrupt":
                    if not dry_run:
                        registry.store.delete(key)
                    report.corrupt.append(key)
                    continue
                report.unverified += state == "unknown"
            if key in keep:
                report.kept += 1
            elif modified < cutoff:
                old[key] = size
            else:
                report.young += 1
    partials = registry.store.partials(cutoff)
    keep = _marked(registry)  # again: a version committed since the first mark keeps the old objects it reuses
    for key in sorted(old):
        if key in keep:
            report.kept += 1
            continue
        if not dry_run:
            registry.store.delete(key)
        report.removed.append(key)
        report.removed_bytes += old[key]
    for name in partials:
        if not dry_run:
            registry.store.drop_partial(name)
        report.aborted.append(name)
    return report


def _marked(registry: Registry) -> set[str]:
    keep, problems = registry.reachable()
    if problems:
        raise IntegrityError(f"gc stopped before removing anything: {len(problems)} damaged objects leave unknown "
                             f"what is in use ({problems[0]})", "repair or remove them, then run gc again")
    return keep
