"""`evaluation read_solutions ENTRY`: the per-datum results stored with an evaluation entry."""

from __future__ import annotations

import json
from typing import Any

from evaluation import SOLUTIONS_FILE
from registry_cli.core.registry import Registry
from registry_cli.errors import IntegrityError, UsageError

STATUSES = ("passed", "failed", "error", "empty")


def read_solutions(registry: Registry, entry: str, status: str = "", with_runs: bool = False) -> list[dict[str, Any]]:
    """Per-datum results; ``with_runs`` adds each kept run folder's console log (scenarios)."""
    if status and status not in STATUSES:
        raise UsageError(f"unknown --status {status!r}", f"choose one of: {', '.join(STATUSES)}")
    info = registry.resolve(entry)
    if info.category != "evaluation":
        raise UsageError(f"{info.entry} is a {info.category or 'uncategorized'} entry, not an evaluation",
                         "list evaluations with `nearai registry list --category=evaluation`")
    files = {f.path: f for f in info.manifest.files}
    if SOLUTIONS_FILE not in files:
        raise IntegrityError(f"{info.entry} has no {SOLUTIONS_FILE}", "it was not recorded by this tool")
    folder = registry.download(info.entry).path
    rows = [json.loads(line) for line in (folder / SOLUTIONS_FILE).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if not status or r.get("status") == status]
    if with_runs:
        for r in rows:
            log = folder / str(r.get("run_folder") or "-") / "console_log.txt"
            if r.get("run_folder") and log.is_file():
                r["console_log"] = log.read_text(errors="replace")
    return rows
