"""The monthly report's trend charts: twelve months of drills by team and by category, and MTTA/MTTR.

Inline SVG built with ElementTree (every text escaped), no scripts, nothing fetched, fixed rounding so the
same history gives the same bytes. Each point of a duration says what it is (median under five values, mean
from five on) and of how many drills (``n=``), in the row under the axis and in its hover title.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import timedelta

from drills.model.durations import format_duration
from drills.reporting.chart import tick_step
from drills.reporting.monthly import SMALL_SAMPLE, GroupTrend, MetricStats, headline, headline_seconds

WIDTH = 760
LEFT = 56
RIGHT = 16
TOP = 16
PLOT = 170
PALETTE = ("#0969da", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#1b7c83", "#bc4c00", "#57606a")
MAX_GROUPS = len(PALETTE) - 1  # the rest are drawn together as "other"
OTHER = "#afb8c1"


def _f(x: float) -> str:
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _svg(height: float, label: str) -> ET.Element:
    return ET.Element(
        "svg", {"viewBox": f"0 0 {WIDTH} {_f(height)}", "role": "img", "aria-label": label, "class": "trend"}
    )


def _month_label(month: str) -> str:
    year, mon = month.split("-")
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{names[int(mon) - 1]} {year[2:]}"


def _axis(
    svg: ET.Element, months: Sequence[str], top_value: float, fmt: str, steps: int = 4
) -> tuple[float, float]:
    """Grid, y labels and month labels; returns (column width, plot bottom)."""
    bottom = TOP + PLOT
    col = (WIDTH - LEFT - RIGHT) / max(1, len(months))
    for i in range(steps + 1):
        value = top_value * i / steps
        y = bottom - PLOT * i / steps
        _sub(svg, "line", x1=_f(LEFT), y1=_f(y), x2=_f(WIDTH - RIGHT), y2=_f(y), class_="grid")
        label = format_duration(timedelta(seconds=round(value))) if fmt == "duration" else f"{value:g}"
        _sub(svg, "text", label, x=_f(LEFT - 6), y=_f(y + 4), class_="tick", text_anchor="end")
    for i, month in enumerate(months):
        x = LEFT + col * (i + 0.5)
        _sub(
            svg, "text", _month_label(month), x=_f(x), y=_f(bottom + 16), class_="tick", text_anchor="middle"
        )
    return col, bottom


def count_chart(months: Sequence[str], groups: Sequence[GroupTrend], kind: str) -> str:
    """Stacked bars: drills per month, one colour per team (or category); the total on top of each bar."""
    shown = list(groups[:MAX_GROUPS])
    rest = groups[MAX_GROUPS:]
    series: list[tuple[str, list[int], str]] = [(g.name, g.counts, PALETTE[i]) for i, g in enumerate(shown)]
    if rest:
        other = [sum(g.counts[m] for g in rest) for m in range(len(months))]
        series.append((f"{len(rest)} other {kind}s", other, OTHER))
    totals = [sum(s[1][m] for s in series) for m in range(len(months))]
    peak = max(max(totals, default=0), 1)
    step = -(-peak // 4)  # whole drills per grid line
    steps = -(-peak // step)
    top_value = float(step * steps)
    legend_rows = max(1, -(-len(series) // 4))
    height = TOP + PLOT + 28 + legend_rows * 18 + 6
    svg = _svg(height, f"Drills per month, by {kind}")
    col, bottom = _axis(svg, months, top_value, "count", steps)
    for m, month in enumerate(months):
        x = LEFT + col * m + col * 0.18
        w = col * 0.64
        y = bottom
        for name, counts, colour in series:
            n = counts[m]
            if not n:
                continue
            h = PLOT * n / top_value
            g = _sub(svg, "g", class_="bar", data_month=month, data_group=name, data_count=str(n))
            _sub(g, "rect", x=_f(x), y=_f(y - h), width=_f(w), height=_f(h), fill=colour)
            _sub(g, "title", f"{month}: {name}: {n} drill{'s' if n != 1 else ''}")
            y -= h
        if totals[m]:
            _sub(
                svg,
                "text",
                str(totals[m]),
                x=_f(x + w / 2),
                y=_f(y - 4),
                class_="small",
                text_anchor="middle",
            )
    for i, (name, counts, colour) in enumerate(series):
        lx = LEFT + (i % 4) * ((WIDTH - LEFT - RIGHT) / 4)
        ly = bottom + 40 + (i // 4) * 18
        _sub(svg, "rect", x=_f(lx), y=_f(ly - 9), width="10", height="10", fill=colour)
        total = sum(counts)
        label = name if len(name) <= 22 else name[:21] + "…"
        _sub(svg, "text", f"{label} ({total})", x=_f(lx + 14), y=_f(ly), class_="small")
    ET.indent(svg, space=" ")
    return ET.tostring(svg, encoding="unicode")


def metric_chart(months: Sequence[str], metrics: Mapping[str, Sequence[MetricStats]]) -> str:
    """One line per metric: the month's median (n < 5, hollow point) or mean (filled), with n under the axis."""
    values = [headline_seconds(s) for stats in metrics.values() for s in stats]
    peak = max((v for v in values if v is not None), default=60.0)
    step = tick_step(peak, 4)
    steps = max(1, int(-(-peak // step)))
    top_value = step * steps
    height = TOP + PLOT + 28 + 18 * len(metrics) + 44
    svg = _svg(height, "MTTA and MTTR of drills per month")
    col, bottom = _axis(svg, months, top_value, "duration", steps)
    for i, (name, stats) in enumerate(metrics.items()):
        colour = PALETTE[i]
        points = []
        for m, s in enumerate(stats):
            v = headline_seconds(s)
            if v is None:
                continue
            points.append((LEFT + col * (m + 0.5), bottom - PLOT * v / top_value, m, s))
        if len(points) > 1:
            path = " ".join(f"{_f(x)},{_f(y)}" for x, y, _, _ in points)
            _sub(svg, "polyline", points=path, fill="none", stroke=colour, stroke_width="2")
        for x, y, m, s in points:
            filled = s.count >= SMALL_SAMPLE
            g = _sub(svg, "g", class_="point", data_metric=name, data_month=months[m], data_n=str(s.count))
            _sub(
                g,
                "circle",
                cx=_f(x),
                cy=_f(y),
                r="4",
                fill=colour if filled else "#ffffff",
                stroke=colour,
                stroke_width="2",
            )
            _sub(g, "title", f"{months[m]}: {name} {headline(s)}")
        # The sample size of every point, in a row under the month labels.
        row_y = bottom + 34 + i * 18
        _sub(
            svg,
            "text",
            f"{name} n",
            x=_f(LEFT - 6),
            y=_f(row_y),
            class_="small",
            text_anchor="end",
            fill=colour,
        )
        for m, s in enumerate(stats):
            _sub(
                svg,
                "text",
                str(s.count),
                x=_f(LEFT + col * (m + 0.5)),
                y=_f(row_y),
                class_="small",
                text_anchor="middle",
            )
    note_y = bottom + 34 + 18 * len(metrics) + 4
    x = float(LEFT)
    for i, name in enumerate(metrics):
        _sub(
            svg,
            "line",
            x1=_f(x),
            y1=_f(note_y - 4),
            x2=_f(x + 18),
            y2=_f(note_y - 4),
            stroke=PALETTE[i],
            stroke_width="2",
        )
        _sub(svg, "text", name, x=_f(x + 24), y=_f(note_y), class_="small")
        x += 80
    _sub(
        svg,
        "text",
        f"filled point: mean of {SMALL_SAMPLE} or more drills; hollow: median of fewer (n = drills measured)",
        x=_f(x + 10),
        y=_f(note_y),
        class_="small",
    )
    ET.indent(svg, space=" ")
    return ET.tostring(svg, encoding="unicode")


__all__ = ["count_chart", "metric_chart"]
