"""Suite runs for the viewer: this machine's runs, one run's cells and summary, and its progress while it runs
(what the run's page asks for every second: the manifest, which a running suite rewrites as its cells go)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry_cli.apps.suites.summary import RunInfo, SuiteSummary, find_run, list_runs, read_manifest, summarize

PROGRESS_FIELDS = ("index", "label", "task_name", "status", "total", "done", "cached", "passed", "errors", "error",
                   "evaluation")


def suite_runs(home: Path) -> list[RunInfo]:
    """Every suite run on this machine, newest first."""
    return sorted(list_runs(home), key=lambda r: (r.started_at, r.stamp), reverse=True)


def suite_run(home: Path, name: str, stamp: str) -> tuple[dict[str, Any], SuiteSummary]:
    """A run's progress (as `progress` gives it) and its summary so far (finished cells)."""
    folder = find_run(home, name, stamp)
    return progress(home, name, stamp), summarize(folder)


def progress(home: Path, name: str, stamp: str) -> dict[str, Any]:
    """Where a run is: its status, and per cell its state and counts."""
    m = read_manifest(find_run(home, name, stamp))
    cells = [{k: c.get(k) for k in PROGRESS_FIELDS} for c in m.get("cells") or [] if isinstance(c, dict)]
    done = sum(int(c.get("done") or 0) for c in cells)
    total = sum(int(c.get("total") or 0) for c in cells)
    return {"name": name, "stamp": stamp, "status": m.get("status"), "started_at": m.get("started_at"),
            "finished_at": m.get("finished_at"), "done": done, "total": total, "cells": cells,
            "runs": len(m.get("results") or [])}
