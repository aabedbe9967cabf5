"""The viewer's charts, drawn as plain SVG (scaled to the box they are in, so they never push a page wider): a
score with its 95% interval as an error bar, and paired differences around zero (a forest plot)."""

from __future__ import annotations

import html

from markupsafe import Markup

BAR_W, BAR_H = 100.0, 14.0


def pct(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{100 * value:.{digits}f}%"


def interval_bar(score: float | None, lo: float | None, hi: float | None) -> Markup:
    """A bar of ``score`` on 0..1 with its interval ``lo``..``hi`` drawn across it (no bar when no score)."""
    if score is None:
        return Markup("")
    x = BAR_W * _clamp(score)
    parts = [f'<rect class="track" x="0" y="3" width="{BAR_W:g}" height="8"/>',
             f'<rect class="fill" x="0" y="3" width="{x:.1f}" height="8"/>']
    title = pct(score)
    if lo is not None and hi is not None:
        x1, x2 = BAR_W * _clamp(lo), BAR_W * _clamp(hi)
        parts.append(f'<g class="whisker"><line x1="{x1:.1f}" x2="{x2:.1f}" y1="7" y2="7"/>'
                     f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="2" y2="12"/><line x1="{x2:.1f}" x2="{x2:.1f}" y1="2" '
                     f'y2="12"/></g>')
        title += f" (95% CI {pct(lo)} to {pct(hi)})"
    return Markup(f'<svg class="ci" viewBox="-2 0 {BAR_W + 4:g} {BAR_H:g}" preserveAspectRatio="none" role="img" '
                  f'data-score="{score:.6f}" data-lo="{_num(lo)}" data-hi="{_num(hi)}">'
                  f'<title>{html.escape(title)}</title>{"".join(parts)}</svg>')


def forest(rows: list[tuple[str, float, float, float]]) -> Markup:
    """Rows of (label, difference, low, high) as points with error bars around a zero line, each named on its
    left; the axis is the same both ways, so left of the line is worse than the first evaluation and right of it
    better."""
    if not rows:
        return Markup("")
    reach = max([abs(v) for _, d, lo, hi in rows for v in (d, lo, hi)] + [0.05])
    width, plot_left, row_h = 760.0, 300.0, 26.0
    middle = plot_left + (width - plot_left) / 2
    scale = (width - plot_left) / 2 / reach * 0.95

    def x(v: float) -> float:
        return middle + v * scale

    height = row_h * len(rows) + 24
    out = [f'<svg class="forest" viewBox="0 0 {width:g} {height:g}" role="img" '
           f'aria-label="paired differences against the first evaluation">',
           f'<line class="zero" x1="{middle:.1f}" x2="{middle:.1f}" y1="0" y2="{height - 18:g}"/>',
           f'<text class="axis" x="{x(-reach):.1f}" y="{height - 4:g}">{pct(-reach, 0)}</text>',
           f'<text class="axis" x="{middle - 4:.1f}" y="{height - 4:g}">0</text>',
           f'<text class="axis end" x="{x(reach):.1f}" y="{height - 4:g}">+{pct(reach, 0)}</text>']
    for i, (label, d, lo, hi) in enumerate(rows):
        y = row_h * i + row_h / 2
        shown = label if len(label) <= 42 else label[:41] + "…"
        out.append(f'<g class="pair" data-diff="{d:.6f}" data-lo="{lo:.6f}" data-hi="{hi:.6f}">'
                   f'<title>{html.escape(label)}: {pct(d)} (95% CI {pct(lo)} to {pct(hi)})</title>'
                   f'<text class="label" x="{plot_left - 10:g}" y="{y + 4:.1f}">{html.escape(shown)}</text>'
                   f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<circle cx="{x(d):.1f}" cy="{y:.1f}" r="5"/></g>')
    out.append("</svg>")
    return Markup("".join(out))


def _clamp(v: float) -> float:
    return min(1.0, max(0.0, v))


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.6f}"
