"""`evaluation report --html PATH`: a static page with the evaluation table and a bar chart (with 95% CI error
bars) of the top metric. No external assets: one self-contained HTML file."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

from evaluation.table import DEFAULT_KEYS, MAIN_METRIC, EvalTable, TableOptions, build_table, fmt, number
from registry_cli.core.files import atomic_write_text
from registry_cli.core.registry import Registry
from registry_cli.errors import NearaiError, UsageError

BAR_W, LINE_H, LABEL_W, LABEL_CHARS = 420, 16, 380, 46  # a label wraps at LABEL_CHARS to fit LABEL_W px
PAGE_W = 1280  # the page fits this width (a laptop's browser)


def _label_lines(parts: list[str]) -> list[str]:
    """A bar's label in lines of at most LABEL_CHARS characters, broken between parts (and inside a part only
    when it is longer than a line): nothing is cut off."""
    lines: list[str] = []
    for part in parts:
        while len(part) > LABEL_CHARS:
            lines.append(part[:LABEL_CHARS])
            part = part[LABEL_CHARS:]
        if lines and len(lines[-1]) + 3 + len(part) <= LABEL_CHARS:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines or [""]


def _bars(table: EvalTable, benchmark: str, metric: str) -> list[dict[str, Any]]:
    """One bar per row of the table that has ``benchmark``'s ``metric`` (so the chart and the table agree), named
    by what tells its row apart: the model and agent, and every other key column the benchmark's rows fill in (the
    pivot leaves a key column empty for a benchmark whose evaluations it does not tell apart)."""
    column = f"{benchmark}/{metric}"
    mine = [(row, sources[benchmark]) for row, sources in zip(table.rows, table.sources)
            if number(row.get(column)) is not None and benchmark in sources]
    filled = [k for k in table.key_columns if k not in DEFAULT_KEYS and any(row.get(k) for row, _ in mine)]
    bars = []
    for row, (entry, lo, hi, _) in mine:
        parts = [str(row[k]) for k in DEFAULT_KEYS if row.get(k)] + [f"{k}={row.get(k) or '-'}" for k in filled]
        bars.append({"lines": _label_lines(parts or [entry]), "value": float(row[column]),
                     "lo": lo if metric == MAIN_METRIC else None, "hi": hi if metric == MAIN_METRIC else None,
                     "entry": entry})
    return sorted(bars, key=lambda b: -b["value"])


def _svg(bars: list[dict[str, Any]], metric: str) -> str:
    top = max([b["hi"] if b["hi"] is not None else b["value"] for b in bars] + [1e-9])
    scale = 1.0 if top <= 1.0 else top
    heights = [max(28, LINE_H * len(b["lines"]) + 12) for b in bars]
    out = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + BAR_W + 90}" '
           f'height="{sum(heights) + 20}" role="img" aria-label="{html.escape(metric)} by model and agent">']
    y = 10
    for b, h in zip(bars, heights):
        w = BAR_W * b["value"] / scale
        first = y + h / 2 - LINE_H * (len(b["lines"]) - 1) / 2 + 4
        spans = "".join(f'<tspan x="{LABEL_W - 8}" y="{first + i * LINE_H:.1f}">{html.escape(line)}</tspan>'
                        for i, line in enumerate(b["lines"]))
        out.append(f'<text text-anchor="end" class="label">{spans}</text>')
        out.append(f'<rect class="bar" data-entry="{html.escape(b["entry"])}" data-value="{b["value"]:.6f}" '
                   f'x="{LABEL_W}" y="{y + h / 2 - 9:.1f}" width="{w:.1f}" height="18"/>')
        ym = y + h / 2
        if b["lo"] is not None and b["hi"] is not None:
            x1, x2 = LABEL_W + BAR_W * max(0.0, b["lo"]) / scale, LABEL_W + BAR_W * b["hi"] / scale
            out.append(f'<g class="errorbar"><line x1="{x1:.1f}" x2="{x2:.1f}" y1="{ym}" y2="{ym}"/>'
                       f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="{ym - 5}" y2="{ym + 5}"/>'
                       f'<line x1="{x2:.1f}" x2="{x2:.1f}" y1="{ym - 5}" y2="{ym + 5}"/></g>')
        out.append(f'<text x="{LABEL_W + BAR_W + 8}" y="{ym + 4:.1f}" class="value">{fmt(b["value"])}</text>')
        y += h
    out.append("</svg>")
    return "".join(out)


def render_html(registry: Registry, benchmark: str = "", metric: str = "") -> str:
    table = build_table(registry, TableOptions())
    if not table.rows:
        raise NearaiError("no evaluations to report", "record one with `nearai benchmark run ... --record`")
    benchmarks = Counter(b for sources in table.sources for b in sources)
    chosen = benchmark or benchmarks.most_common(1)[0][0]
    if chosen not in benchmarks:
        raise UsageError(f"no evaluations of benchmark {chosen!r}", f"choose one of: {', '.join(sorted(benchmarks))}")
    metric = metric or MAIN_METRIC
    charted = table if metric == MAIN_METRIC else build_table(registry, TableOptions(all_metrics=True))
    bars = _bars(charted, chosen, metric)
    if not bars:
        raise UsageError(f"no metric {metric!r} in {chosen} evaluations", "try --metric=score")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.key_columns + table.metric_columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in table.key_columns)
        + "".join(f'<td class="num">{fmt(r.get(c), c)}</td>' for c in table.metric_columns) + "</tr>"
        for r in table.rows)
    title = f"{chosen}: {metric}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nearai evaluations — {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: {PAGE_W - 80}px; color: #222; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; overflow-wrap: anywhere; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.bar {{ fill: #4a7bd0; }} .errorbar line {{ stroke: #222; stroke-width: 1.5; }}
.label, .value {{ font-size: 13px; }}
</style></head>
<body>
<h1>Evaluations</h1>
<h2 id="chart-title">{html.escape(title)} <small>(95% confidence intervals)</small></h2>
{_svg(bars, metric)}
<h2>All evaluations</h2>
<div class="scroll"><table id="evaluations"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>
<p id="summary"></p>
<script>
const bars = document.querySelectorAll('#chart rect.bar');
const n = document.querySelectorAll('#evaluations tbody tr').length;
document.getElementById('summary').textContent = `${{n}} rows, ${{bars.length}} bars`;
document.body.dataset.rendered = String(bars.length);
// what a test in a browser checks: the page fits its width and no bar label is cut off on the left
document.body.dataset.pageWidth = String(document.documentElement.scrollWidth);
const labels = [...document.querySelectorAll('#chart text.label')];
document.body.dataset.labelsInside = String(labels.every(t => t.getBBox().x >= 0));
</script>
</body></html>
"""


def write_report(registry: Registry, path: str, benchmark: str = "", metric: str = "") -> Path:
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{target} is a folder", "pass a file path such as report.html")
    page = render_html(registry, benchmark, metric)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    return target
