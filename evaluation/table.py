"""`evaluation table`: pivot evaluation entries. Rows are key columns (model, agent, ...), columns are metrics.

Which evaluation a cell shows: evaluations are grouped by their identity (`evaluation_key`: benchmark, solver and
its arguments, dataset content, subset and selection, repeats, model and generation parameters, agent); the most
recently recorded one of each group wins. A run over 10 datums and a run over all 1,000 are different groups, so
a partial run never replaces a full one: a key column (``selection``, ``subset``, ...) appears as soon as it tells
two evaluations of one benchmark apart. This module returns data; the CLI renders it.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from registry_cli.caches.bulk import collector_paused
from registry_cli.caches.snapshots import read_snapshot, write_snapshot
from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.files import atomic_write_text
from registry_cli.core.registry import EntryInfo, Registry, each_metadata
from registry_cli.errors import UsageError

DEFAULT_KEYS = ("model", "agent")
VARYING_KEYS = ("subset", "selection", "dataset", "num_repeats", "solver", "solver_version", "solver_args",
                "temperature", "max_tokens", "api_base", "provider", "namespace", "version", "environment")
ALL_KEYS = ("model", "agent", "namespace", "version", "provider", "subset", "selection", "dataset", "num_repeats",
            "solver", "solver_version", "solver_args", "temperature", "max_tokens", "api_base", "environment")
MAIN_METRIC = "score"
METRIC_ORDER = ("score", "stderr", "ci95_low", "ci95_high", "n", "passed", "failed", "errored", "empty", "prompt_tokens",
                "completion_tokens", "cost", "duration_s")
COUNT_METRICS = frozenset({"n", "passed", "failed", "errored", "empty", "prompt_tokens", "completion_tokens"})
FORMATS = ("table", "csv", "json", "markdown")
T = TypeVar("T")
PIVOT_VERSION = 3  # raise it with any change to what the pivot makes of the same evaluations: kept tables are remade


@dataclass
class TableOptions:
    all_key_columns: bool = False
    all_metrics: bool = False
    benchmark: str = ""
    model: str = ""
    namespace: str = ""
    all_versions: bool = False
    show_all: bool = False


@dataclass
class EvalTable:
    key_columns: list[str]
    metric_columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # key column values + metric values
    errored: list[dict[str, int]] = field(default_factory=list)  # per row: benchmark -> datums without a verdict
    # per row: benchmark -> (the evaluation entry shown, its score's 95% interval low and high or None, its tags)
    sources: list[dict[str, Source]] = field(default_factory=list)
    made_from: str = ""  # the digest of what it was made from (`build_table`)


def key_value(details: dict[str, Any], name: str) -> str:
    """A key column's text: dicts as k=v pairs, nothing as the empty string."""
    return _text(details.get(name))


def labels_apart(details: list[dict[str, Any]]) -> list[list[str]]:
    """For each evaluation, what tells it apart from the others: its model and agent, and every other key column
    (and the benchmark) whose value differs among them, as ``key=value``."""
    differ = [k for k in ("benchmark", *ALL_KEYS) if k not in DEFAULT_KEYS
              and len({key_value(d, k) for d in details}) > 1]
    return [[key_value(d, k) for k in DEFAULT_KEYS if key_value(d, k)]
            + [f"{k}={key_value(d, k) or '-'}" for k in differ] for d in details]


def _text(value: Any) -> str:
    """`key_value` of a value already read."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def _varies(evaluations: list[Projected], name: str) -> bool:
    """Whether key column ``name`` takes more than one text among ``evaluations`` (raw values are compared
    first, all at once; texts are made only where they differ)."""
    if not evaluations:
        return False
    at = ALL_KEYS.index(name)
    values = [p[1][at] for p in evaluations]
    first = values[0]
    if values.count(first) == len(values) and len(set(map(type, values))) == 1:
        return False
    text = _text(first)
    return any(_text(v) != text for v in values)


def _evaluation_key(d: dict[str, Any]) -> str:
    """The recorded identity, or (for entries recorded before it existed) one made of the fields they have."""
    if d.get("evaluation_key"):
        return str(d["evaluation_key"])
    legacy = {k: d.get(k) for k in ("benchmark", "solver", "solver_version", "dataset_hash", "subset", "model",
                                    "agent_hash", "num_repeats")}
    legacy["n"] = (d.get("metrics") or {}).get("n")
    return sha256_hex(canonical_json(legacy))


def evaluation_details(registry: Registry, opts: TableOptions) -> list[dict[str, Any]]:
    """Details of the evaluations the table shows: the latest of each identity (every version with
    ``all_versions``), leaving out hidden ones unless ``show_all``; each with its ``entry`` and ``created_at``."""
    return [{**d, "entry": entry, "created_at": created}
            for created, entry, d in _latest(_listed(registry, opts), opts, lambda d, metadata: d)]


def _listed(registry: Registry, opts: TableOptions) -> list[EntryInfo]:
    return registry.list_entries(namespace=opts.namespace, category="evaluation", show_all=opts.show_all,
                                 show_latest_version=False)


def _latest(entries: list[EntryInfo], opts: TableOptions,
            keep: Callable[[dict[str, Any], dict[str, Any]], T]) -> list[tuple[str, str, T]]:
    """`evaluation_details` as (created_at, entry, what ``keep`` makes of the details and metadata), oldest
    first."""
    latest: dict[str, tuple[str, EntryInfo, T]] = {}  # group -> (created_at, entry, kept)
    for e, metadata in each_metadata(entries):
        d = metadata.get("details")
        if not isinstance(d, dict) or not str(d.get("schema", "")).startswith("nearai.evaluation/"):
            continue
        if opts.benchmark and d.get("benchmark") != opts.benchmark:
            continue
        if opts.model and opts.model not in str(d.get("model", "")):
            continue
        group = e.entry if opts.all_versions else _evaluation_key(d)
        known = latest.get(group)
        if known is None or e.created_at >= known[0]:
            latest[group] = (e.created_at, e, keep(d, metadata))
    return [(created, e.entry, kept) for created, e, kept in sorted(latest.values(), key=lambda t: t[0])]


# what the pivot reads of an evaluation: benchmark, the values of ALL_KEYS, metrics, the entry's tags
Projected = tuple[str, tuple[Any, ...], dict[str, Any], tuple[str, ...]]
Source = tuple[str, "float | None", "float | None", tuple[str, ...]]


def _projected(d: dict[str, Any], metadata: dict[str, Any]) -> Projected:
    """All that is held of each of (say) 50,000 evaluations while the table is made; metric names are shared."""
    metrics = d.get("metrics")
    metrics = {sys.intern(k): v for k, v in metrics.items() if isinstance(k, str)} if isinstance(metrics, dict) else {}
    tags = metadata.get("tags")
    shown = tuple(sys.intern(t) for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
    return str(d.get("benchmark")), tuple([d.get(k) for k in ALL_KEYS]), metrics, shown


def score_interval(metrics: dict[str, Any]) -> tuple[float | None, float | None]:
    """The 95% interval of an evaluation's score: as recorded, else from its standard error, else none."""
    lo, hi, score, err = (number(metrics.get(k)) for k in ("ci95_low", "ci95_high", MAIN_METRIC, "stderr"))
    if lo is not None and hi is not None:
        return lo, hi
    if score is not None and err is not None:
        return score - 1.96 * err, score + 1.96 * err
    return None, None


def number(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a bool), else None."""
    return float(value) if type(value) in (int, float) else None


def build_table(registry: Registry, opts: TableOptions, current: EvalTable | None = None) -> EvalTable:
    """The pivot of the evaluations listed with ``opts``. It is kept on this machine (``cache/tables/``, one file
    per store and options) with a digest of what it was made from: each listed entry's name, manifest hash and
    `registry update` changes. Manifests never change, so an equal digest means an equal table, and reading the
    kept one replaces loading every evaluation's metadata. ``current``, a table this returned before (a long-lived
    caller's), is returned itself while nothing it was made from changed."""
    entries = _listed(registry, opts)
    path, made_from = _kept_at(registry, opts, entries)
    if current is not None and current.made_from == made_from:
        return current
    digest = path.with_suffix(".digest")
    if _read_text(digest) == made_from:  # the listing is let go before the kept table is read: a lower peak
        del entries
        kept = read_snapshot(path)
        if isinstance(kept, tuple) and len(kept) == 6 and kept[0] == made_from:
            return EvalTable(*kept[1:], made_from=made_from)
        entries = _listed(registry, opts)  # torn, or made by another process meanwhile: made again
    evaluations = [(entry, p) for _, entry, p in _latest(entries, opts, _projected)]
    del entries
    table = _pivot(evaluations, opts)
    table.made_from = made_from
    write_snapshot(path, (made_from, table.key_columns, table.metric_columns, table.rows, table.errored,
                          table.sources))
    with contextlib.suppress(OSError):  # without it the table is made again next time, never shown wrong
        atomic_write_text(digest, made_from)
    return table


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _kept_at(registry: Registry, opts: TableOptions, entries: list[EntryInfo]) -> tuple[Path, str]:
    """Where the table for ``opts`` is kept, and the digest of what it is made from."""
    asked = canonical_json([PIVOT_VERSION, registry.store.url, astuple(opts)])
    made_from = hashlib.sha256(asked)
    made_from.update("\n".join([f"{e.namespace}/{e.name}/{e.version} {e.manifest_hash} {e.revision}"
                                for e in entries]).encode())
    return registry.config.cache_dir / "tables" / f"{sha256_hex(asked)[:16]}.bin", made_from.hexdigest()


def _pivot(evaluations: list[tuple[str, Projected]], opts: TableOptions) -> EvalTable:
    """The table of (entry, projected details) pairs, oldest first; it empties ``evaluations`` as it goes."""
    by_benchmark: dict[str, list[Projected]] = {}
    for _, p in evaluations:
        by_benchmark.setdefault(p[0], []).append(p)
    varying = {b: {k for k in VARYING_KEYS if _varies(ds, k)} for b, ds in by_benchmark.items()}
    benchmarks = list(by_benchmark)
    del by_benchmark  # below, each evaluation is let go once it is in the pivot
    if opts.all_key_columns:
        keys = list(ALL_KEYS)
    else:
        shown = set().union(*varying.values()) if varying else set()
        keys = list(DEFAULT_KEYS) + [k for k in VARYING_KEYS if k in shown]
    if opts.all_versions:
        keys.append("entry")
    pivot: dict[tuple[str, ...], dict[str, Any]] = {}
    errored: dict[tuple[str, ...], dict[str, int]] = {}
    sources: dict[tuple[str, ...], dict[str, Source]] = {}
    metric_names: set[str] = set()
    # per benchmark, the key columns that tell its evaluations apart (the others are left empty in its rows)
    shown_keys = {b: [(k, opts.all_key_columns or k in DEFAULT_KEYS or k == "entry" or k in varying[b]) for k in keys]
                  for b in benchmarks}
    at = {k: i for i, k in enumerate(ALL_KEYS)}
    main_column = {b: f"{b}/{MAIN_METRIC}" for b in benchmarks}
    with collector_paused():
        while evaluations:  # newest first, so a cell keeps the first value it gets
            entry, (bench, values, metrics, tags) = evaluations.pop()
            row_key = tuple([(entry if k == "entry" else _text(values[at[k]])) if on else "" for k, on in shown_keys[bench]])
            cells = pivot.get(row_key)
            if cells is None:
                cells = pivot[row_key] = {}
            if opts.all_metrics:
                for name, value in metrics.items():
                    if type(value) in (int, float):
                        col = f"{bench}/{name}"
                        metric_names.add(col)
                        cells.setdefault(col, int(value) if name in COUNT_METRICS else value)
            elif type(value := metrics.get(MAIN_METRIC)) in (int, float):
                metric_names.add(main_column[bench])
                cells.setdefault(main_column[bench], value)
            row_sources = sources.setdefault(row_key, {})
            if bench not in row_sources:
                row_sources[bench] = (entry, *score_interval(metrics), tags)
            unanswered = int(metrics.get("errored") or 0) + int(metrics.get("empty") or 0)
            if unanswered:
                errored.setdefault(row_key, {}).setdefault(bench, unanswered)
        columns = sorted(metric_names, key=_column_order)
        order = {c: i for i, c in enumerate(columns)}
        table = EvalTable(keys, columns)
        for row_key in sorted(pivot):
            row: dict[str, Any] = dict(zip(keys, row_key))
            cells = pivot.pop(row_key)
            row.update((c, cells[c]) for c in sorted(cells, key=order.__getitem__))  # in column order
            table.rows.append(row)
            table.errored.append(errored.get(row_key, {}))
            table.sources.append(sources.pop(row_key, {}))
    return table


def _column_order(column: str) -> tuple[str, int, str]:
    benchmark, _, metric = column.partition("/")
    if metric in METRIC_ORDER:
        return benchmark, METRIC_ORDER.index(metric), metric
    if metric.startswith("pass@") and metric[5:].isdigit():  # after the basics, before tokens
        return benchmark, METRIC_ORDER.index("errored"), f"{int(metric[5:]):06d}"
    return benchmark, len(METRIC_ORDER), metric


def check_format(fmt_name: str) -> str:
    if fmt_name not in FORMATS:
        raise UsageError(f"unknown --format {fmt_name!r}", f"choose one of: {', '.join(FORMATS)}")
    return fmt_name


def fmt(value: Any, column: str = "") -> str:
    """Counts as integers, everything else with 4 decimals, so columns align."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if column.rpartition("/")[2] in COUNT_METRICS or isinstance(value, int):
            return f"{value:.0f}"
        return f"{value:.4f}"
    return str(value)


def short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
