"""Two or more evaluations on the datums they share: the paired difference of each against the first (mean and
95% interval over the shared datums, `suites.summary.paired_difference`), which datums flip, and the answers side
by side.

A datum is the same datum in two evaluations when its content hash is; its score is the mean over its rollouts
(`solutions` scores: the graded total where there is one, else passed or not). A datum that errored or got an
empty answer in either evaluation is left out of the pair (the machine's fault is no verdict) and counted apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evaluation.table import labels_apart
from registry_cli.apps.suites.summary import paired_difference
from registry_cli.apps.viewer.datums import Evaluation, Evaluations, output_of
from registry_cli.apps.viewer.solutions import SolutionsIndex, read_lines
from registry_cli.errors import UsageError

PAGE_PAIRS = 25
SHOWN = ("flipped", "gained", "lost", "all")  # which shared datums the side-by-side lists


@dataclass
class Pair:
    """One evaluation against the first."""

    entry: str
    label: str
    diff: dict[str, float] | None  # n, diff (this minus the first), ci95_low, ci95_high; None: nothing shared
    gained: int  # datums the first failed and this one passed
    lost: int
    left_out: int  # shared datums without a verdict in one of the two


@dataclass
class Comparison:
    evaluations: list[Evaluation]
    pairs: list[Pair]
    shared: int  # datums every evaluation answered
    rows: list[dict[str, Any]]  # the page's datums: hash, index, scores, answers side by side
    total: int
    page: int
    pages: int
    shown: str = "flipped"
    labels: list[str] = field(default_factory=list)  # per evaluation, what tells it apart from the others


def _scores(index: SolutionsIndex) -> tuple[dict[str, float], dict[str, int], set[str]]:
    """Per datum hash: the mean score of its verdicts, the first line it is on, and the hashes with a line that
    is no verdict."""
    sums: dict[str, list[float]] = {}
    first: dict[str, int] = {}
    unanswered: set[str] = set()
    for i, h in enumerate(index.datums):
        first.setdefault(h, i)
        if index.status[i] in (0, 1):
            sums.setdefault(h, []).append(index.scores[i])
        else:
            unanswered.add(h)
    return {h: sum(v) / len(v) for h, v in sums.items()}, first, unanswered


def compare(evaluations: Evaluations, entries: list[str], shown: str = "flipped", page: int = 1) -> Comparison:
    if len(entries) < 2:
        raise UsageError("a comparison needs two evaluations or more", "pick them in the table, or pass e=ENTRY twice")
    if shown not in SHOWN:
        raise UsageError(f"unknown list {shown!r}", f"choose one of: {', '.join(SHOWN)}")
    opened = [evaluations.open(e) for e in entries]
    scored = [_scores(ev.index) for ev in opened]
    base, _, base_missing = scored[0]
    pairs = []
    for ev, (scores, _, missing) in zip(opened[1:], scored[1:]):
        both = {h: scores[h] for h in scores if h in base and h not in missing and h not in base_missing}
        first = {h: base[h] for h in both}
        pairs.append(Pair(ev.info.entry, "", paired_difference(both, first),
                          sum(1 for h in both if both[h] >= 0.5 > first[h]), sum(1 for h in both if first[h] >= 0.5 > both[h]),
                          len((set(scores) | missing) & (set(base) | base_missing)) - len(both)))
    shared = set(base).difference(base_missing)
    for scores, _, missing in scored[1:]:
        shared &= set(scores).difference(missing)
    listed = sorted((h for h in shared if _kept(shown, [s[0][h] for s in scored])), key=lambda h: scored[0][1][h])
    pages = max(1, math.ceil(len(listed) / PAGE_PAIRS))
    page = min(max(1, page), pages)
    rows = _side_by_side(opened, scored, listed[(page - 1) * PAGE_PAIRS:page * PAGE_PAIRS])
    labels = [" · ".join(parts) or ev.info.entry for ev, parts in zip(opened, labels_apart([ev.details for ev in opened]))]
    for pair, label in zip(pairs, labels[1:]):
        pair.label = label
    return Comparison(opened, pairs, len(shared), rows, len(listed), page, pages, shown, labels)


def _kept(shown: str, scores: list[float]) -> bool:
    """Whether a shared datum with these scores (the first evaluation's first) is listed under ``shown``."""
    passed = [s >= 0.5 for s in scores]
    if shown == "all":
        return True
    if shown == "gained":
        return not passed[0] and any(passed[1:])
    if shown == "lost":
        return passed[0] and not all(passed[1:])
    return len(set(passed)) > 1


def _side_by_side(opened: list[Evaluation], scored: list[tuple[dict[str, float], dict[str, int], set[str]]],
                  hashes: list[str]) -> list[dict[str, Any]]:
    """Each datum's input (from the first evaluation) and every evaluation's score, status and answer."""
    rows: list[dict[str, Any]] = [{"datum": h, "answers": []} for h in hashes]
    for ev, (scores, first, _) in zip(opened, scored):
        lines = read_lines(ev.index, [first[h] for h in hashes])
        for row, line in zip(rows, lines):
            if "input" not in row:
                row["input"], row["index"] = line.get("input"), line.get("index")
            row["answers"].append({"entry": ev.info.entry, "line": line["line"], "status": line.get("status"),
                                   "score": scores[row["datum"]], "output": output_of(line),
                                   "error": line.get("error") or ""})
    return rows
