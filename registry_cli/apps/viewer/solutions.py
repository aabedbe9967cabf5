"""An evaluation's per-datum results (its ``solutions.jsonl``) as the viewer pages through them.

One pass over the raw bytes finds each line's place, status, datum, rollout and score without parsing the line (an
evaluation of 100,000 datums is indexed in a fraction of a second); only the lines a page shows are parsed. The
lines are JSON objects written with sorted keys, so the top-level keys come in a known order: ``agent``,
``datum_hash``, ``error``, ``index``, ``info``, ``input``, ``key``, ``metrics``, ``repeat``, ``run_folder``,
``status``, ``usage``. A quote inside a string is escaped, so ``"status": "`` in the raw bytes is always a key: the
first ``datum_hash`` key is the top-level one (only ``agent``, whose traces have no such key, comes before it), and
the last ``metrics``, ``repeat`` and ``status`` keys are (only ``run_folder`` and ``usage``, numbers, come after).
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUSES = ("passed", "failed", "error", "empty")
_CODES = {s.encode(): i for i, s in enumerate(STATUSES)}
_OTHER = len(STATUSES)  # a status this viewer does not know
_INT = re.compile(rb"-?[0-9]+")


@dataclass
class SolutionsIndex:
    """Where each line is, and what a listing or a comparison needs of it."""

    path: Path
    starts: array[int]  # line i is bytes starts[i] .. starts[i+1]-1 (newline included)
    status: bytearray  # a code per line: its place in STATUSES
    datums: list[str]  # datum hash per line
    indexes: array[int]  # the datum's place in its dataset
    repeats: array[int]
    scores: array[float]  # `datum_score`: the graded total_score when there is one, else passed (1) or not (0)

    def __len__(self) -> int:
        return len(self.status)

    def counts(self) -> dict[str, int]:
        return {s: self.status.count(i) for i, s in enumerate(STATUSES)}

    def status_of(self, line: int) -> str:
        code = self.status[line]
        return STATUSES[code] if code < _OTHER else "other"


def index_solutions(path: Path) -> SolutionsIndex:
    """The index of a solutions file, read once line by line (never held whole: its memory is the index's)."""
    idx = SolutionsIndex(path, array("q"), bytearray(), [], array("l"), array("l"), array("d"))
    pos = 0
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                idx.starts.append(pos)
                _add(idx, line)
            pos += len(line)
    idx.starts.append(pos)
    return idx


def _add(idx: SolutionsIndex, line: bytes) -> None:
    """Index one line (see the module's note for why the keys are found where they are)."""
    d = line.find(b'"datum_hash": ')
    idx.datums.append(_string(line, d + 14) if d >= 0 else "")
    i = line.find(b'"index": ', max(d, 0))
    idx.indexes.append(_int(line, i + 9) if i >= 0 else -1)
    s = line.rfind(b'"status": ')
    code = _CODES.get(_string(line, s + 10).encode(), _OTHER) if s >= 0 else _OTHER
    idx.status.append(code)
    r = line.rfind(b'"repeat": ', 0, max(s, 0))
    idx.repeats.append(_int(line, r + 10) if r >= 0 else 0)
    score = 1.0 if code == 0 else 0.0
    m = line.rfind(b'"metrics": ', 0, max(r, 0))
    if m >= 0 and code in (0, 1) and b'"total_score"' in line[m:r]:
        try:
            graded = json.loads(line[m + 11:r].rstrip(b", "))
        except ValueError:
            graded = None
        total = graded.get("total_score") if isinstance(graded, dict) else None
        if isinstance(total, (int, float)) and not isinstance(total, bool):
            score = float(total)
    idx.scores.append(score)


def _string(line: bytes, at: int) -> str:
    """The JSON string starting at ``at`` (its opening quote), as written; "" when there is none (null)."""
    if line[at:at + 1] != b'"':
        return ""
    return line[at + 1:line.find(b'"', at + 1)].decode("utf-8", "replace")


def _int(line: bytes, at: int) -> int:
    """The JSON integer starting at ``at``; -1 when there is none."""
    found = _INT.match(line, at)
    return int(found.group()) if found else -1


def select(idx: SolutionsIndex, status: str = "", search: str = "") -> list[int]:
    """The lines with ``status`` (any when "") whose text holds ``search`` (any case; JSON-escaped text is matched
    as written, so a search for ``é`` finds ``\\u00e9``)."""
    code = STATUSES.index(status) if status in STATUSES else None
    lines = [i for i in range(len(idx)) if code is None or idx.status[i] == code]
    if not search or not lines:
        return lines
    needles = {search.lower().encode(), json.dumps(search.lower())[1:-1].encode()}
    wanted = set(lines)
    found = []
    with idx.path.open("rb") as f:
        f.seek(idx.starts[lines[0]])
        for i in range(lines[0], lines[-1] + 1):
            text = f.read(idx.starts[i + 1] - idx.starts[i])
            if i in wanted and any(n in text.lower() for n in needles):
                found.append(i)
    return found


def read_lines(idx: SolutionsIndex, lines: list[int]) -> list[dict[str, Any]]:
    """The parsed results of ``lines``, each with its ``line`` number."""
    rows = []
    with idx.path.open("rb") as f:
        for i in lines:
            f.seek(idx.starts[i])
            try:
                row = json.loads(f.read(idx.starts[i + 1] - idx.starts[i]))
            except ValueError:  # a line damaged in the file: shown as such, the others as they are
                row = {"error": "this result's line is not valid JSON"}
            rows.append({**row, "line": i} if isinstance(row, dict) else {"line": i, "status": "other"})
    return rows
