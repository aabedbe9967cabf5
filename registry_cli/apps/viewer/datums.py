"""An evaluation entry's datums for the viewer: its details, a filtered page of its per-datum results, and one
datum's whole record (input, output, the agent's messages and logs, a scenario's console log and files, errors).

An entry never changes, so its solutions index (`solutions.index_solutions`) is built once per process and kept
for the few entries looked at last. Nothing of an entry is executed: its files are read as bytes and shown as text.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation import SOLUTIONS_FILE
from evaluation.table import number, score_interval
from registry_cli.apps.viewer.entries import text_head
from registry_cli.apps.viewer.solutions import SolutionsIndex, index_solutions, read_lines, select
from registry_cli.core.registry import EntryInfo, Registry
from registry_cli.errors import EntryNotFoundError, UsageError

PAGE_DATUMS = 50
KEPT_INDEXES = 8


@dataclass
class Evaluation:
    """An evaluation entry as the viewer opens it."""

    info: EntryInfo
    folder: Path  # its files, downloaded and verified
    index: SolutionsIndex

    @property
    def details(self) -> dict[str, Any]:
        d = self.info.metadata.get("details")
        return d if isinstance(d, dict) else {}

    @property
    def score(self) -> tuple[float | None, float | None, float | None]:
        """Its score and the score's 95% interval, each None when the entry does not say."""
        metrics = self.details.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        return (number(metrics.get("score")), *score_interval(metrics))


@dataclass
class DatumPage:
    evaluation: Evaluation
    rows: list[dict[str, Any]]
    total: int  # after filtering
    page: int
    pages: int
    counts: dict[str, int] = field(default_factory=dict)  # per status, over the whole evaluation


class Evaluations:
    """Opened evaluations, the last few kept (thread-safe)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._kept: OrderedDict[str, Evaluation] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, entry: str) -> Evaluation:
        info = self.registry.resolve(entry)
        if info.category != "evaluation":
            raise UsageError(f"{info.entry} is a {info.category or 'uncategorized'} entry, not an evaluation",
                             "open it among the registry's entries")
        with self._lock:
            kept = self._kept.get(info.manifest_hash)
            if kept is not None:
                self._kept.move_to_end(info.manifest_hash)
                return kept
        if SOLUTIONS_FILE not in {f.path for f in info.manifest.files}:
            raise EntryNotFoundError(f"{info.entry} has no {SOLUTIONS_FILE}", "it was not recorded by this tool")
        folder = self.registry.download(info.entry).path
        opened = Evaluation(info, folder, index_solutions(folder / SOLUTIONS_FILE))
        with self._lock:
            self._kept[info.manifest_hash] = opened
            while len(self._kept) > KEPT_INDEXES:
                self._kept.popitem(last=False)
        return opened


def datum_page(evaluations: Evaluations, entry: str, status: str = "", search: str = "", page: int = 1) -> DatumPage:
    """A page of ``entry``'s results with ``status`` whose text holds ``search``."""
    ev = evaluations.open(entry)
    lines = select(ev.index, status, search)
    pages = max(1, math.ceil(len(lines) / PAGE_DATUMS))
    page = min(max(1, page), pages)
    rows = [_summary(r, ev.index.scores[r["line"]]) for r in
            read_lines(ev.index, lines[(page - 1) * PAGE_DATUMS:page * PAGE_DATUMS])]
    return DatumPage(ev, rows, len(lines), page, pages, ev.index.counts())


def _summary(row: dict[str, Any], score: float) -> dict[str, Any]:
    """What a listing shows of a result: its place, status, score, input and output in short, its error."""
    return {"line": row["line"], "index": row.get("index"), "repeat": row.get("repeat", 0),
            "status": str(row.get("status", "")), "score": score, "input": _short(row.get("input")),
            "output": _short(output_of(row)), "error": _short(row.get("error") or "")}


def output_of(row: dict[str, Any]) -> str:
    """The answer a result holds: the solver's recorded answer or output, else the last agent message."""
    info = row.get("info")
    info = info if isinstance(info, dict) else {}
    for key in ("answer", "result", "output", "response", "completion", "final_answer"):
        if isinstance(info.get(key), (str, int, float)):
            return str(info[key])
    for trace in reversed(row.get("agent") or []):
        messages = trace.get("messages") if isinstance(trace, dict) else None
        for m in reversed(messages or []):
            if isinstance(m, dict) and m.get("role") == "assistant" and m.get("content"):
                return str(m["content"])
    return ""


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else _compact(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return " · ".join(f"{k}: {v}" for k, v in value.items())
    return "" if value is None else str(value)


@dataclass
class DatumView:
    evaluation: Evaluation
    line: int
    row: dict[str, Any]
    output: str
    score: float
    files: list[tuple[str, int]]  # the datum's kept run folder: (path in the entry, size)
    console_log: str


def datum_view(evaluations: Evaluations, entry: str, line: int) -> DatumView:
    """One result, whole, with its run folder's file list and console log (scenarios, prepared tasks)."""
    ev = evaluations.open(entry)
    if not 0 <= line < len(ev.index):
        raise EntryNotFoundError(f"{ev.info.entry} has no datum {line}", f"it has {len(ev.index)}")
    row = read_lines(ev.index, [line])[0]
    folder = str(row.get("run_folder") or "")
    files = [(f.path, f.size) for f in ev.info.manifest.files if folder and f.path.startswith(folder + "/")]
    log = next((p for p, _ in files if p.endswith("/console_log.txt")), "")
    return DatumView(ev, line, row, output_of(row), ev.index.scores[line], files,
                     read_file(ev, log)[0] if log else "")


def read_file(ev: Evaluation, path: str) -> tuple[str, str]:
    """A file of the entry (downloaded with it) as `text_head` shows it."""
    found = next((f for f in ev.info.manifest.files if f.path == path), None)
    if found is None:
        raise EntryNotFoundError(f"{ev.info.entry} has no file {path!r}", "pick one from the datum's file list")
    return text_head(ev.folder / path, found.size)
