"""Charts as server-rendered SVG: no script, readable without JavaScript, styled by the
stylesheet (no inline style, which the CSP forbids). Each chart has a title and a description
for screen readers; the pages show the same figures in a table."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
BAR_HEIGHT = 22
LABEL_WIDTH = 220


def bar_chart(rows: Sequence[tuple[str, float]], *, maximum: float, title: str = "") -> Markup:
    """Horizontal bars, one per row, scaled to ``maximum``."""
    if not rows:
        return Markup("")
    height = len(rows) * (BAR_HEIGHT + 6) + 6
    span = WIDTH - LABEL_WIDTH - 60
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (label, value) in enumerate(rows):
        y = 6 + index * (BAR_HEIGHT + 6)
        width = max(0.0, min(value, maximum)) / maximum * span if maximum else 0.0
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT * 0.7:.1f}" '
            f'text-anchor="end">{escape(label[:18])}</text>'
            f'<rect class="chart-bar" x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" '
            f'height="{BAR_HEIGHT}"><title>{escape(label)}: {value:.1f}</title></rect>'
            f'<text class="chart-value" x="{LABEL_WIDTH + width + 6:.1f}" '
            f'y="{y + BAR_HEIGHT * 0.7:.1f}">{value:.1f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(points: Sequence[tuple[str, float | None]], *, title: str = "") -> Markup:
    """A line over the points (gaps where a value is missing), with the first and last dates."""
    known = [value for _, value in points if value is not None]
    if not points or not known:
        return Markup("")
    height, pad = 220, 36
    top = max(known) or 1.0
    step = (WIDTH - 2 * pad) / max(1, len(points) - 1)
    segments: list[list[str]] = [[]]
    for index, (_, value) in enumerate(points):
        if value is None:
            segments.append([])
            continue
        x = pad + index * step
        y = height - pad - (value / top) * (height - 2 * pad)
        segments[-1].append(f"{x:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline class="chart-line" fill="none" points="{" ".join(s)}"/>' for s in segments if s
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<line class="chart-axis" x1="{pad}" y1="{height - pad}" x2="{WIDTH - pad}" '
        f'y2="{height - pad}"/>'
        f'<text class="chart-label" x="{pad}" y="{height - 10}">{escape(points[0][0])}</text>'
        f'<text class="chart-label" x="{WIDTH - pad}" y="{height - 10}" text-anchor="end">'
        f"{escape(points[-1][0])}</text>"
        f'<text class="chart-label" x="4" y="{pad - 8}">{top:g}</text>{lines}</svg>'
    )
