"""Server-side SVG charts for the comparison pages: pure functions from numbers to markup.

No JavaScript and no CDN: every size is computed here, every text is escaped, every ``<svg>`` has
``role="img"`` and a ``<title>``, and the page puts the table with the same numbers beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

OK = "#3f7bd9"
OVER = "#d64545"
NEAR = "#d99a1e"
PRE = "#9aa5b1"
AXIS = "#66717d"
GRID = "#e4e7eb"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _n(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _bins(values: Sequence[float], low: float, high: float, count: int) -> list[int]:
    width = (high - low) / count
    bins = [0] * count
    for value in values:
        index = min(count - 1, max(0, int((value - low) / width)))
        bins[index] += 1
    return bins


def histogram(
    values: Sequence[float | None],
    *,
    title: str,
    unit: str,
    threshold: float | None = None,
    width: int = 360,
    height: int = 150,
    bins: int = 12,
) -> SafeString:
    """Bars counting hosts per range of delta; bins above the threshold in red, a dashed limit line.

    Missing values are left out and said in the title (never drawn as 0).
    """
    known = [float(v) for v in values if v is not None]
    missing = len(values) - len(known)
    note = f"; {missing} host(s) with no data" if missing else ""
    full_title = f"{title}: {len(known)} host(s){note}"
    if not known:
        return mark_safe(  # noqa: S308 (every text above is escaped)
            f'<svg class="chart" role="img" width="{width}" height="40" viewBox="0 0 {width} 40" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(full_title)}</title>'
            f'<text x="4" y="24" {FONT} fill="{AXIS}">no data</text></svg>'
        )
    low = min(min(known), 0.0)
    high = max(max(known), threshold if threshold is not None else -math.inf)
    if high <= low:
        high = low + 1
    counts = _bins(known, low, high, bins)
    left, right, top, bottom = 30, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    tallest = max(counts) or 1
    bar_w = plot_w / bins
    step = (high - low) / bins
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(full_title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{AXIS}"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {FONT} fill="{AXIS}">{tallest}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" {FONT} fill="{AXIS}">0</text>',
    ]
    for index, count in enumerate(counts):
        if not count:
            continue
        start = low + index * step
        colour = OK
        if threshold is not None and start >= threshold:
            colour = OVER
        elif threshold is not None and start + step > threshold * 0.8:
            colour = NEAR
        bar_h = plot_h * count / tallest
        x = left + index * bar_w
        parts.append(
            f'<rect x="{_n(x + 1)}" y="{_n(top + plot_h - bar_h)}" width="{_n(max(1.0, bar_w - 2))}" '
            f'height="{_n(bar_h)}" fill="{colour}"><title>{escape(_label(start))} to '
            f"{escape(_label(start + step))} {escape(unit)}: {count} host(s)</title></rect>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 6}" {FONT} fill="{AXIS}">{escape(_label(low))}</text>'
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end" {FONT} fill="{AXIS}">'
        f"{escape(_label(high))} {escape(unit)}</text>"
    )
    if threshold is not None:
        x = left + plot_w * (threshold - low) / (high - low)
        parts.append(
            f'<line x1="{_n(x)}" y1="{top - 4}" x2="{_n(x)}" y2="{top + plot_h}" stroke="{OVER}" '
            f'stroke-dasharray="4 3"/><text x="{_n(min(x, width - right - 2))}" y="{top + 2}" text-anchor="end" '
            f'{FONT} fill="{OVER}">limit {escape(_label(threshold))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text is escaped)


def paired_bars(
    rows: Sequence[dict[str, Any]], *, title: str, unit: str, width: int = 420, row_height: int = 22
) -> SafeString:
    """For each row {label, pre, post, level}, a grey pre bar above a coloured post bar on one scale."""
    label_w, right, top = 120, 56, 6
    plot_w = width - label_w - right
    height = top * 2 + max(1, len(rows)) * row_height + 14
    scale = max([abs(v) for r in rows for v in (r.get("pre"), r.get("post")) if v is not None] or [1.0]) or 1.0
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, row in enumerate(rows):
        y = top + index * row_height
        name = str(row["label"])
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" {FONT} fill="#1f2933">{escape(short)}</text>'
        )
        for offset, key, colour in ((2, "pre", PRE), (10, "post", OVER if row.get("level") == "over" else OK)):
            value = row.get(key)
            if value is None:
                parts.append(f'<text x="{label_w}" y="{y + offset + 7}" {FONT} fill="{AXIS}">{key}: no data</text>')
                continue
            bar = plot_w * max(0.0, value) / scale
            parts.append(
                f'<rect x="{label_w}" y="{y + offset}" width="{_n(max(1.0, bar))}" height="7" fill="{colour}">'
                f"<title>{escape(name)} {key}: {escape(_label(value))} {escape(unit)}</title></rect>"
            )
            if key == "post":
                parts.append(
                    f'<text x="{_n(label_w + bar + 4)}" y="{y + offset + 7}" {FONT} fill="{AXIS}">'
                    f"{escape(_label(value))}</text>"
                )
    legend_y = height - 4
    parts.append(
        f'<rect x="{label_w}" y="{legend_y - 8}" width="10" height="7" fill="{PRE}"/>'
        f'<text x="{label_w + 14}" y="{legend_y}" {FONT} fill="{AXIS}">pre</text>'
        f'<rect x="{label_w + 44}" y="{legend_y - 8}" width="10" height="7" fill="{OK}"/>'
        f'<text x="{label_w + 58}" y="{legend_y}" {FONT} fill="{AXIS}">post ({escape(unit)})</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text is escaped)


def timeline(
    points: Sequence[dict[str, Any]],
    *,
    series: Sequence[tuple[str, str, str]],
    title: str,
    width: int = 560,
    height: int = 170,
) -> SafeString:
    """A small line chart of a host's snapshots over time on a 0 to 100 % scale.

    ``points`` are {label, phase, <key>...} oldest first, drawn evenly spaced (snapshots are events,
    not a clock); ``series`` are (key, name, colour). A missing figure breaks its line, never drops to
    0; pre and post snapshots are marked with their phase under the axis.
    """
    if not points:
        return mark_safe(  # noqa: S308 (every text is escaped)
            f'<svg class="chart" role="img" width="{width}" height="40" viewBox="0 0 {width} 40" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}: no snapshot</title>'
            f'<text x="4" y="24" {FONT} fill="{AXIS}">no snapshot</text></svg>'
        )
    left, right, top, bottom = 40, 10, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(points) - 1)

    def x_at(index: int) -> float:
        return left + (index * step if len(points) > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - max(0.0, min(100.0, value)) / 100)

    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for level in (0, 50, 100):
        y = y_at(level)
        parts.append(
            f'<line x1="{left}" y1="{_n(y)}" x2="{width - right}" y2="{_n(y)}" stroke="{GRID if level else AXIS}"/>'
            f'<text x="{left - 4}" y="{_n(y + 4)}" text-anchor="end" {FONT} fill="{AXIS}">{level}%</text>'
        )
    for index, point in enumerate(points):
        phase = str(point.get("phase") or "")
        if phase in ("pre", "post"):
            x = x_at(index)
            parts.append(
                f'<line x1="{_n(x)}" y1="{top}" x2="{_n(x)}" y2="{top + plot_h}" stroke="{GRID}" stroke-dasharray="3 3"/>'
                f'<text x="{_n(x)}" y="{top + plot_h + 12}" text-anchor="middle" {FONT} fill="{AXIS}">'
                f"{escape(phase)}</text>"
            )
    for key, name, colour in series:
        run: list[str] = []
        runs: list[list[str]] = []
        for index, point in enumerate(points):
            value = point.get(key)
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            x, y = x_at(index), y_at(float(value))
            run.append(f"{_n(x)},{_n(y)}")
            parts.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="2.5" fill="{colour}"><title>{escape(name)} '
                f"{escape(_label(float(value)))} % at {escape(str(point.get('label', '')))}</title></circle>"
            )
        if run:
            runs.append(run)
        for line in runs:
            if len(line) > 1:
                parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    legend_x = left
    for _key, name, colour in series:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 10}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{height - 6}" {FONT} fill="{AXIS}">{escape(name)}</text>'
        )
        legend_x += 14 + 7 * len(name) + 16
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text is escaped)
