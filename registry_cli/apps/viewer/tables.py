"""The viewer's evaluation table: `evaluation table`'s pivot (the same rows, key columns and kept state), filtered,
sorted and paged for a page, each score with its 95% interval and the evaluation entry behind it.

The server holds the last table and asks `build_table` again at most every ``fresh_s`` seconds: that call lists
the evaluations and compares a digest, and hands the held table back while it is unchanged (nothing is read again
and the filters' choices stand), so a new recording shows up within that time while a page over 50,000
evaluations costs a filter and a sort of rows already in memory.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from evaluation.table import EvalTable, TableOptions, build_table, number
from registry_cli.core.registry import Registry

PAGE_ROWS = 50


@dataclass(frozen=True)
class TableQuery:
    benchmark: str = ""  # only the columns of this benchmark (and rows that have one)
    model: str = ""  # a part of the model's name
    agent: str = ""  # a part of the agent's name
    tag: str = ""  # rows with an evaluation that has this tag
    sort: str = ""  # a key column or a benchmark; "" keeps the table's order
    descending: bool = False
    page: int = 1


@dataclass(frozen=True)
class Cell:
    score: float | None
    lo: float | None
    hi: float | None
    entry: str
    errored: int


@dataclass
class TablePage:
    key_columns: list[str]
    benchmarks: list[str]
    rows: list[tuple[dict[str, str], dict[str, Cell]]]  # (key column values, benchmark -> cell)
    total_rows: int  # after filtering
    all_rows: int
    page: int
    pages: int
    choices: dict[str, list[str]] = field(default_factory=dict)  # what the filters can take


class TableKeeper:
    """The table as last built, rebuilt when older than ``fresh_s`` (thread-safe: the server answers from
    several threads)."""

    def __init__(self, registry: Registry, fresh_s: float = 2.0) -> None:
        self.registry = registry
        self.fresh_s = fresh_s
        self._lock = threading.Lock()
        self._table: EvalTable | None = None
        self._choices: dict[str, list[str]] = {}
        self._at = 0.0

    def table(self) -> tuple[EvalTable, dict[str, list[str]]]:
        with self._lock:
            if self._table is None or time.monotonic() - self._at > self.fresh_s:
                table = build_table(self.registry, TableOptions(), self._table)  # the same one while unchanged
                if table is not self._table:
                    self._choices = _choices(table)
                self._table, self._at = table, time.monotonic()
            return self._table, self._choices


def _choices(table: EvalTable) -> dict[str, list[str]]:
    benchmarks = sorted({c.partition("/")[0] for c in table.metric_columns})
    models = sorted({str(r.get("model", "")) for r in table.rows} - {""})
    agents = sorted({str(r.get("agent", "")) for r in table.rows} - {""})
    tags = sorted({t for s in table.sources for src in s.values() for t in src[3]})
    return {"benchmark": benchmarks, "model": models, "agent": agents, "tag": tags}


def table_page(keeper: TableKeeper, q: TableQuery) -> TablePage:
    """One page of the table as ``q`` asks for it."""
    table, choices = keeper.table()
    benchmarks = [b for b in choices["benchmark"] if not q.benchmark or b == q.benchmark]
    chosen = []
    for i, row in enumerate(table.rows):
        sources = table.sources[i] if i < len(table.sources) else {}
        if q.benchmark and q.benchmark not in sources:
            continue
        if q.model and q.model.lower() not in str(row.get("model", "")).lower():
            continue
        if q.agent and q.agent.lower() not in str(row.get("agent", "")).lower():
            continue
        if q.tag and not any(q.tag in src[3] for b, src in sources.items() if b in benchmarks):
            continue
        chosen.append(i)
    if q.sort:
        chosen = _sorted(table, chosen, q.sort, q.descending)
    pages = max(1, math.ceil(len(chosen) / PAGE_ROWS))
    page = min(max(1, q.page), pages)
    shown = []
    for i in chosen[(page - 1) * PAGE_ROWS:page * PAGE_ROWS]:
        row, sources = table.rows[i], table.sources[i]
        cells = {b: Cell(number(row.get(f"{b}/score")), src[1], src[2], src[0], table.errored[i].get(b, 0))
                 for b, src in sources.items() if b in benchmarks}
        shown.append(({k: str(row.get(k, "")) for k in table.key_columns}, cells))
    return TablePage(table.key_columns, benchmarks, shown, len(chosen), len(table.rows), page, pages, choices)


def _sorted(table: EvalTable, rows: list[int], column: str, descending: bool) -> list[int]:
    """``rows`` by a key column (its text, any case) or a benchmark's score; rows without a score go last either
    way."""
    if column in table.key_columns:
        return sorted(rows, key=lambda i: str(table.rows[i].get(column, "")).lower(), reverse=descending)
    scores = {i: number(table.rows[i].get(f"{column}/score")) for i in rows}
    have = sorted((i for i in rows if scores[i] is not None), key=lambda i: scores[i] or 0.0, reverse=descending)
    return have + [i for i in rows if scores[i] is None]
