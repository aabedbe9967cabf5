"""`evaluation table`: pivot evaluation entries. Rows are key columns (model, agent, ...), columns are metrics."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from registry_cli.errors import UsageError
from registry_cli.registry import Registry

DEFAULT_KEYS = ("model", "agent")
ALL_KEYS = ("model", "agent", "namespace", "version", "provider")
MAIN_METRIC = "score"
METRIC_ORDER = ("score", "stderr", "ci95_low", "ci95_high", "n", "passed", "failed", "errored", "prompt_tokens",
                "completion_tokens", "cost", "duration_s")
COUNT_METRICS = frozenset({"n", "passed", "failed", "errored", "prompt_tokens", "completion_tokens"})
FORMATS = ("table", "csv", "json", "markdown")


@dataclass
class TableOptions:
    all_key_columns: bool = False
    all_metrics: bool = False
    num_columns: int = 6
    metric_name_max_length: int = 30
    benchmark: str = ""
    model: str = ""
    namespace: str = ""
    format: str = "table"
    all_versions: bool = False


@dataclass
class EvalTable:
    key_columns: list[str]
    metric_columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # key column values + metric values
    hidden_columns: int = 0


def evaluation_details(registry: Registry, opts: TableOptions) -> list[dict[str, Any]]:
    """Details of every matching evaluation (latest version of each unless --all_versions)."""
    entries = registry.list_entries(namespace=opts.namespace, category="evaluation", show_all=True,
                                    show_latest_version=not opts.all_versions)
    out = []
    for e in entries:
        d = e.metadata.get("details") or {}
        if not isinstance(d, dict) or not str(d.get("schema", "")).startswith("nearai.evaluation/"):
            continue
        if opts.benchmark and d.get("benchmark") != opts.benchmark:
            continue
        if opts.model and opts.model not in str(d.get("model", "")):
            continue
        out.append({**d, "entry": e.entry, "created_at": e.manifest.created_at})
    return out


def build_table(registry: Registry, opts: TableOptions) -> EvalTable:
    if opts.format not in FORMATS:
        raise UsageError(f"unknown --format {opts.format!r}", f"choose one of: {', '.join(FORMATS)}")
    keys = list(ALL_KEYS if opts.all_key_columns else DEFAULT_KEYS)
    pivot: dict[tuple[str, ...], dict[str, tuple[str, float]]] = {}
    metric_names: set[str] = set()
    for d in sorted(evaluation_details(registry, opts), key=lambda d: d["created_at"]):
        row_key = tuple(str(d.get(k) or "") for k in keys)
        cells = pivot.setdefault(row_key, {})
        for name, value in (d.get("metrics") or {}).items():
            if not isinstance(value, (int, float)) or (not opts.all_metrics and name != MAIN_METRIC):
                continue
            col = f"{d.get('benchmark')}/{name}"
            metric_names.add(col)
            cells[col] = (d["created_at"], float(value))  # later recordings win
    columns = sorted(metric_names, key=_column_order)
    hidden = max(0, len(columns) - opts.num_columns)
    columns = columns[: opts.num_columns]
    table = EvalTable(keys, columns, hidden_columns=hidden)
    for row_key in sorted(pivot):
        row: dict[str, Any] = dict(zip(keys, row_key))
        row.update({c: pivot[row_key][c][1] for c in columns if c in pivot[row_key]})
        table.rows.append(row)
    return table


def _column_order(column: str) -> tuple[str, int, str]:
    benchmark, _, metric = column.partition("/")
    if metric in METRIC_ORDER:
        return benchmark, METRIC_ORDER.index(metric), metric
    if metric.startswith("pass@") and metric[5:].isdigit():  # after the basics, before tokens
        return benchmark, METRIC_ORDER.index("errored"), f"{int(metric[5:]):06d}"
    return benchmark, len(METRIC_ORDER), metric


def fmt(value: Any, column: str = "") -> str:
    """Counts as integers, everything else with 4 decimals, so columns align."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        if column.rpartition("/")[2] in COUNT_METRICS:
            return f"{value:.0f}"
        return f"{value:.4f}"
    return str(value)


def short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def render_table(t: EvalTable, opts: TableOptions) -> None:
    import sys

    if opts.format == "json":
        sys.stdout.write(json.dumps({"key_columns": t.key_columns, "metric_columns": t.metric_columns,
                                     "rows": t.rows}, indent=2) + "\n")
        return
    header = t.key_columns + [short(c, opts.metric_name_max_length) for c in t.metric_columns]
    body = [[str(r.get(k, "")) for k in t.key_columns] + [fmt(r.get(c), c) for c in t.metric_columns] for r in t.rows]
    if opts.format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(t.key_columns + t.metric_columns)
        w.writerows([[r.get(k, "") for k in t.key_columns] + [r.get(c, "") for c in t.metric_columns] for r in t.rows])
        sys.stdout.write(buf.getvalue())
        return
    if opts.format == "markdown":
        nk = len(t.key_columns)
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
        cells = lambda row: "| " + " | ".join(  # noqa: E731
            (v.ljust(widths[i]) if i < nk else v.rjust(widths[i])) for i, v in enumerate(row)) + " |"
        lines = [cells(header), "|" + "|".join(("-" * (w + 2)) if i < nk else ("-" * (w + 1) + ":")
                                                for i, w in enumerate(widths)) + "|"]
        lines += [cells(b) for b in body]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        from rich.table import Table

        from registry_cli.render import console

        table = Table(*header)
        for i in range(len(t.key_columns), len(header)):
            table.columns[i].justify = "right"
        for b in body:
            table.add_row(*b)
        c = console()
        c.print(table)
        if not t.rows:
            c.print("no evaluations found; record one with `nearai benchmark run ... --record`")
    if t.hidden_columns:
        print(f"{t.hidden_columns} more metric columns hidden; raise --num_columns", file=sys.stderr)
