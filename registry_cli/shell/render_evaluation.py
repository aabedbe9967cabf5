"""Rendering evaluations: the pivot table (rich, drawn boxes for long tables, csv, json, markdown), stored
solutions and scenario tabulations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry_cli.shell.render import console, named_rows

if TYPE_CHECKING:
    from pathlib import Path

    from evaluation.table import EvalTable
    from evaluation.tabulate import ScriptTable, Tabulation

RICH_ROWS = 500  # rich lays a table out in about 0.7 ms a row: longer ones are drawn by `boxed`
INPUT_FIELDS = ("input", "question", "text", "prompt", "task", "id", "task_id")  # a datum's most telling field


NAME_COLUMNS = ("model", "agent", "entry", "dataset", "solver")  # shown whole: they tell rows apart


def evaluation_table(t: EvalTable, fmt_name: str, num_columns: int, name_length: int) -> None:
    """table and markdown show ``num_columns`` metrics with names shortened; csv and json carry every column."""
    import csv
    import json
    import sys

    from evaluation.table import fmt, short

    if fmt_name == "json":
        rows = [dict(r, errored=e) if e else r for r, e in zip(t.rows, t.errored)]
        sys.stdout.write(json.dumps({"key_columns": t.key_columns, "metric_columns": t.metric_columns,
                                     "rows": rows}, indent=2) + "\n")
        return
    if fmt_name == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        every = t.key_columns + t.metric_columns
        w.writerow(every)
        w.writerows([r.get(c, "") for c in every] for r in t.rows)
        return
    columns = t.metric_columns[:num_columns]
    hidden = len(t.metric_columns) - len(columns)
    header = t.key_columns + [short(col, name_length) for col in columns]

    def cell(row: dict[str, Any], errored: dict[str, int], col: str) -> str:
        text = fmt(row.get(col), col)
        bench, _, metric = col.rpartition("/")
        return text + " !" if text and metric == "score" and errored.get(bench) else text

    body = [[str(r.get(k, "")) for k in t.key_columns] + [cell(r, e, col) for col in columns]
            for r, e in zip(t.rows, t.errored)]
    if fmt_name == "markdown":
        nk = len(t.key_columns)
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(v.ljust(widths[i]) if i < nk else v.rjust(widths[i])
                                     for i, v in enumerate(cells)) + " |"

        rule = "|" + "|".join(("-" * (w + 2)) if i < nk else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
        sys.stdout.write("\n".join([line(header), rule, *(line(b) for b in body)]) + "\n")
    elif len(body) > RICH_ROWS:
        sys.stdout.write(boxed(header, body, len(t.key_columns)))
    else:
        names = tuple(i for i, k in enumerate(t.key_columns) if k in NAME_COLUMNS)
        named_rows(header, body, names or (0,), right_from=len(t.key_columns))
        if not t.rows:
            console().print("no evaluations found; record one with `nearai benchmark run ... --record`")
    if any(t.errored):
        print("! some datums of this evaluation errored or got empty answers (counted as not passed); "
              "see --all_metrics", file=sys.stderr)
    if hidden:
        print(f"{hidden} more metric columns hidden; raise --num_columns or use --format=csv", file=sys.stderr)


def boxed(header: list[str], body: list[list[str]], right_from: int) -> str:
    """A table drawn as rich draws one (heavy head, columns from ``right_from`` on right-aligned), without fitting
    it to the terminal: for tables of thousands of rows, which are scrolled or piped, not read at a glance."""
    from rich.cells import cell_len

    def size(text: str) -> int:  # terminal cells: wide characters take two
        return len(text) if text.isascii() else cell_len(text)

    widths = [max(size(h), *(size(b[i]) for b in body)) if body else size(h) for i, h in enumerate(header)]

    def line(cells: list[str], bar: str) -> str:
        padded = (" " * (w - size(v)) for v, w in zip(cells, widths))
        return bar + bar.join(f" {pad}{v} " if i >= right_from else f" {v}{pad} "
                              for i, (v, pad) in enumerate(zip(cells, padded))) + bar

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    lines = [rule("┏", "━", "┳", "┓"), line(header, "┃"), rule("┡", "━", "╇", "┩")]
    lines.extend(line(b, "│") for b in body)
    lines.append(rule("└", "─", "┴", "┘"))
    return "\n".join(lines) + "\n"


def solutions(rows: list[dict[str, Any]], verbose: bool) -> None:
    import json

    from rich.table import Table

    c = console()
    if verbose:
        for r in rows:
            c.print(json.dumps(r, indent=2, ensure_ascii=False), markup=False)
        return
    t = Table("datum", "repeat", "status", "input", "answer", "expected", "error")
    for r in rows:
        info = r.get("info") or {}
        given = r.get("input")
        shown = next((str(given[k]) for k in INPUT_FIELDS if isinstance(given, dict) and k in given), "")
        t.add_row(str(r.get("index")), str(r.get("repeat")), str(r.get("status")), shown.replace("\n", " ")[:40],
                  str(info.get("answer", info.get("result", "")))[:40], str(info.get("expected", ""))[:40],
                  str(r.get("error") or "")[:60])
    c.print(t)
    c.print(f"{len(rows)} results")


def tabulation(t: Tabulation, fmt_name: str) -> None:
    """Per task one column per trial, then per-trial totals and the summary."""
    import csv
    import io
    import json
    import sys

    header = ["task"] + [f"trial {r}" for r in range(t.trials)]
    rows = [[task, *t.grid[task]] for task in t.tasks]
    totals = [[status, *map(str, counts)] for status, counts in t.totals.items()]
    if fmt_name == "json":
        sys.stdout.write(json.dumps({"trials": t.trials, "tasks": t.grid, "totals": t.totals, "summary": t.summary},
                                    indent=2) + "\n")
        return
    if fmt_name == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows, *totals])
        sys.stdout.write(buf.getvalue())
        return
    from rich.table import Table

    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    table.add_section()
    for row in totals:
        table.add_row(*row)
    c = console()
    c.print(table)
    s = t.summary
    rate = f"success rate {100 * s['success_rate']:.2f}% (95% CI {100 * s['ci95_low']:.1f}-{100 * s['ci95_high']:.1f}%)"
    passes = ", ".join(f"{k}={v:.4f}" for k, v in s.items() if k.startswith("pass@"))
    c.print(f"{rate} over {s['successes'] + s['failures']:.0f} verdicts; {s['errors']:.0f} errors, "
            f"{s['missing']:.0f} missing; {passes}", markup=False)


def script_tables(script: Path, tables: list[ScriptTable]) -> None:
    """What a benchmark's tabulate script printed, per scenario folder."""
    import sys

    print(f"using the tabulation method of {script}", file=sys.stderr)
    for t in tables:
        if len(tables) > 1:
            sys.stdout.write(f"== {t.scenario}\n")
        sys.stdout.write(t.output if t.output.endswith("\n") or not t.output else t.output + "\n")
        if t.failed:
            print(f"error: {script.name} failed on {t.scenario}: {t.failed}", file=sys.stderr)
