"""`evaluation report --html PATH`: a static page with the evaluation table and a bar chart (with 95% CI error
bars) of the top metric. No external assets: one self-contained HTML file."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

from evaluation.table import TableOptions, build_table, evaluation_details, fmt, key_value, short
from registry_cli.core.files import atomic_write_text
from registry_cli.core.registry import Registry
from registry_cli.errors import NearaiError, UsageError

BAR_W, ROW_H, LABEL_W = 420, 28, 360


def _bars(details: list[dict[str, Any]], benchmark: str, metric: str) -> list[dict[str, Any]]:
    """One bar per evaluation of ``benchmark`` (the table's latest of each identity)."""
    bars = []
    for d in details:
        if d.get("benchmark") != benchmark or not isinstance((d.get("metrics") or {}).get(metric), (int, float)):
            continue
        m = d["metrics"]
        value = float(m[metric])
        lo, hi = (m.get("ci95_low"), m.get("ci95_high")) if metric == "score" else (None, None)
        if lo is None and "stderr" in m and metric == "score":
            lo, hi = value - 1.96 * m["stderr"], value + 1.96 * m["stderr"]
        parts = [key_value(d, k) for k in ("model", "agent", "subset", "selection")]
        bars.append({"label": " + ".join(x for x in parts if x) or d["entry"], "value": value,
                     "lo": lo, "hi": hi, "entry": d["entry"]})
    return sorted(bars, key=lambda b: -b["value"])


def _svg(bars: list[dict[str, Any]], metric: str) -> str:
    top = max([b["hi"] if b["hi"] is not None else b["value"] for b in bars] + [1e-9])
    scale = 1.0 if top <= 1.0 else top
    h = ROW_H * len(bars) + 30
    out = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + BAR_W + 90}" height="{h}" '
           f'role="img" aria-label="{html.escape(metric)} by model and agent">']
    for i, b in enumerate(bars):
        y = 10 + i * ROW_H
        w = BAR_W * b["value"] / scale
        out.append(f'<text x="{LABEL_W - 8}" y="{y + 17}" text-anchor="end" class="label">{html.escape(short(b["label"], 48))}</text>')
        out.append(f'<rect class="bar" data-entry="{html.escape(b["entry"])}" data-value="{b["value"]:.6f}" '
                   f'x="{LABEL_W}" y="{y + 4}" width="{w:.1f}" height="{ROW_H - 10}"/>')
        if b["lo"] is not None and b["hi"] is not None:
            x1, x2 = LABEL_W + BAR_W * max(0.0, b["lo"]) / scale, LABEL_W + BAR_W * b["hi"] / scale
            ym = y + ROW_H / 2
            out.append(f'<g class="errorbar"><line x1="{x1:.1f}" x2="{x2:.1f}" y1="{ym}" y2="{ym}"/>'
                       f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="{ym - 5}" y2="{ym + 5}"/>'
                       f'<line x1="{x2:.1f}" x2="{x2:.1f}" y1="{ym - 5}" y2="{ym + 5}"/></g>')
        out.append(f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 17}" class="value">{fmt(b["value"])}</text>')
    out.append("</svg>")
    return "".join(out)


def render_html(registry: Registry, benchmark: str = "", metric: str = "") -> str:
    details = evaluation_details(registry, TableOptions())
    if not details:
        raise NearaiError("no evaluations to report", "record one with `nearai benchmark run ... --record`")
    benchmarks = Counter(str(d.get("benchmark")) for d in details)
    chosen = benchmark or benchmarks.most_common(1)[0][0]
    if chosen not in benchmarks:
        raise UsageError(f"no evaluations of benchmark {chosen!r}", f"choose one of: {', '.join(sorted(benchmarks))}")
    metric = metric or "score"
    bars = _bars(details, chosen, metric)
    if not bars:
        raise UsageError(f"no metric {metric!r} in {chosen} evaluations", "try --metric=score")
    table = build_table(registry, TableOptions(all_key_columns=True))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.key_columns + table.metric_columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in table.key_columns)
        + "".join(f'<td class="num">{fmt(r.get(c), c)}</td>' for c in table.metric_columns) + "</tr>"
        for r in table.rows)
    title = f"{chosen}: {metric}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nearai evaluations — {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.bar {{ fill: #4a7bd0; }} .errorbar line {{ stroke: #222; stroke-width: 1.5; }}
.label, .value {{ font-size: 13px; }}
</style></head>
<body>
<h1>Evaluations</h1>
<h2 id="chart-title">{html.escape(title)} <small>(95% confidence intervals)</small></h2>
{_svg(bars, metric)}
<h2>All evaluations</h2>
<table id="evaluations"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<p id="summary"></p>
<script>
const bars = document.querySelectorAll('#chart rect.bar');
const n = document.querySelectorAll('#evaluations tbody tr').length;
document.getElementById('summary').textContent = `${{n}} rows, ${{bars.length}} bars`;
document.body.dataset.rendered = String(bars.length);
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
