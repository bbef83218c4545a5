"""The drill's timeline chart: phases against the SLA deadlines, as one inline SVG (no scripts, no assets).

Read left to right from T0, the true fault time. The top four lanes are the seed's lifecycle phases; below
them, the events that moved the incident (signals, the response, changes to the cluster, the health).
Dashed vertical lines are the SLA deadlines of the true severity, green when met and red when missed; a
deadline far beyond the end of the drill is shown as an arrow at the right edge rather than squashing the
chart. Hovering any mark shows its details (SVG ``<title>``), which works without JavaScript.

Built with ElementTree so every text is escaped, and laid out with fixed rounding so the SVG is byte-for-byte
the same for the same journal (the HTML report is a golden file).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta

from drills.model.durations import format_duration
from drills.model.scorecard import CheckStatus
from drills.reporting.view import DrillView, SlaMarker, TimelineEntry, signed_offset

WIDTH = 1160
LEFT = 130  # lane labels
RIGHT = 40
SLA_ROW = 16  # one row of SLA labels above the lanes
PHASE_LANE = 30
EVENT_LANE = 34
AXIS = 34
LEGEND_ROW = 18

PHASE_COLOURS = {
    "DETECT": "#8250df",
    "ACKNOWLEDGE": "#bc4c00",
    "TRIAGE": "#bf8700",
    "MITIGATE": "#0969da",
    "RESOLVE": "#1a7f37",
}
STATUS_COLOURS = {
    CheckStatus.PASS: "#1a7f37",
    CheckStatus.FAIL: "#cf222e",
    CheckStatus.NOT_MEASURED: "#6e7781",
    CheckStatus.NOT_APPLICABLE: "#6e7781",
}
EVENT_LANES = (("signal", "Signals"), ("response", "Response"), ("action", "Changes"), ("health", "Health"))
#: Below the health strip when the drill had virtual users: the share of users affected over time.
IMPACT_LANE = ("impact", "Users affected")

#: marker -> (shape, colour, legend text)
MARKERS: dict[str, tuple[str, str, str]] = {
    "fault": ("diamond", "#cf222e", "fault injected"),
    "alert": ("triangle", "#bc4c00", "alert / detection"),
    "alert-resolved": ("triangle", "#8c959f", "alert resolved"),
    "page": ("circle", "#bc4c00", "page"),
    "ack": ("circle", "#0969da", "acknowledged"),
    "severity": ("circle", "#8250df", "severity / role"),
    "role": ("circle", "#8250df", "severity / role"),
    "comms": ("circle", "#1b7c83", "comms posted"),
    "escalation": ("circle", "#953800", "escalation / ticket"),
    "ticket": ("circle", "#953800", "escalation / ticket"),
    "note": ("circle", "#57606a", "note / hint / runbook"),
    "hint": ("circle", "#57606a", "note / hint / runbook"),
    "runbook": ("circle", "#57606a", "note / hint / runbook"),
    "postmortem": ("circle", "#57606a", "note / hint / runbook"),
    "mitigated": ("star", "#1a7f37", "mitigated / resolved"),
    "resolved": ("star", "#1a7f37", "mitigated / resolved"),
    "reopened": ("star", "#cf222e", "reopened"),
    "action": ("square", "#0550ae", "change by responder"),
    "raised-impact": ("square", "#cf222e", "change that raised impact"),
    "system-action": ("square", "#8c959f", "change by system"),
    "healthy": ("circle", "#1a7f37", "health change"),
    "unhealthy": ("circle", "#cf222e", "health change"),
}


def _f(x: float) -> str:
    """Coordinates with one decimal: stable output, small file."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class _Scale:
    start: float  # seconds from T0 at the left edge
    end: float
    left: float
    right: float

    def x(self, seconds: float) -> float:
        span = self.end - self.start or 1.0
        return self.left + (seconds - self.start) / span * (self.right - self.left)


def tick_step(span_seconds: float, target_ticks: int = 8) -> float:
    """A step people read easily (15s, 1m, 5m, 15m, 1h ...) giving about that many ticks."""
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    raw = span_seconds / max(1, target_ticks)
    for s in steps:
        if s >= raw:
            return float(s)
    return float(86400 * math.ceil(raw / 86400))


def short(td: timedelta | None) -> str:
    """``5m`` rather than ``5m00s`` where nothing is lost: chart labels are read at a glance."""
    text = format_duration(td)
    return text[:-3] if text.endswith(("m00s", "h00m")) else text


def _tick_label(seconds: float) -> str:
    if seconds == 0:
        return "T0"
    return ("-" if seconds < 0 else "+") + short(timedelta(seconds=abs(seconds)))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _title(el: ET.Element, text: str) -> None:
    _sub(el, "title", text)


def _rect(parent: ET.Element, x: float, y: float, w: float, h: float, **attrs: str) -> ET.Element:
    return _sub(parent, "rect", x=_f(x), y=_f(y), width=_f(w), height=_f(h), **attrs)


def _line(parent: ET.Element, x1: float, y1: float, x2: float, y2: float, **attrs: str) -> ET.Element:
    return _sub(parent, "line", x1=_f(x1), y1=_f(y1), x2=_f(x2), y2=_f(y2), **attrs)


def _text(
    parent: ET.Element, text: str, x: float, y: float, cls: str, anchor: str = "start", **attrs: str
) -> None:
    if anchor != "start":
        attrs["text_anchor"] = anchor
    _sub(parent, "text", text, x=_f(x), y=_f(y), class_=cls, **attrs)


def _points(*xy: tuple[float, float]) -> str:
    return " ".join(f"{_f(x)},{_f(y)}" for x, y in xy)


def _shape(parent: ET.Element, shape: str, x: float, y: float, colour: str, tip: str) -> None:
    g = _sub(parent, "g", class_="mark")
    r = 5.5
    if shape == "circle":
        _sub(g, "circle", cx=_f(x), cy=_f(y), r=_f(r), fill=colour)
    elif shape == "square":
        _rect(g, x - r + 0.5, y - r + 0.5, 2 * r - 1, 2 * r - 1, fill=colour)
    elif shape == "diamond":
        pts = _points((x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y))
        _sub(g, "polygon", points=pts, fill=colour)
    elif shape == "triangle":
        pts = _points((x, y - r - 1), (x + r + 0.5, y + r - 0.5), (x - r - 0.5, y + r - 0.5))
        _sub(g, "polygon", points=pts, fill=colour)
    else:  # star
        corners = []
        for i in range(10):
            radius = r + 2 if i % 2 == 0 else (r + 2) * 0.45
            angle = math.pi / 2 + i * math.pi / 5
            corners.append((x + radius * math.cos(angle), y - radius * math.sin(angle)))
        _sub(g, "polygon", points=_points(*corners), fill=colour)
    _title(g, tip)


@dataclass
class LabelLayout:
    """Places chart labels so that none is clipped by the chart's edges or overlaps another.

    Each label has candidate positions in order of preference (right of its mark, then left of it; its own
    row, then the next); the first that stays inside the chart and clear of every label placed so far wins.
    Widths are estimated from the font size (generous, so the real glyphs fit: the browser test measures
    them); labels placed first win, so callers place the important ones first.
    """

    width: float
    boxes: list[tuple[float, float, float, float]]

    @staticmethod
    def box(text: str, x: float, y: float, size: float, anchor: str) -> tuple[float, float, float, float]:
        w = text_width(text, size)
        x1 = x if anchor == "start" else x - w if anchor == "end" else x - w / 2
        return (x1, y - size * 0.85, x1 + w, y + size * 0.3)

    def free(self, b: tuple[float, float, float, float]) -> bool:
        if b[0] < 2 or b[2] > self.width - 2:
            return False
        return all(b[2] <= o[0] or o[2] <= b[0] or b[3] <= o[1] or o[3] <= b[1] for o in self.boxes)

    def take(self, b: tuple[float, float, float, float]) -> None:
        self.boxes.append(b)

    def place(
        self, text: str, size: float, candidates: list[tuple[float, float, str]]
    ) -> tuple[float, float, str] | None:
        for x, y, anchor in candidates:
            b = self.box(text, x, y, size, anchor)
            if self.free(b):
                self.take(b)
                return x, y, anchor
        return None


def text_width(text: str, size: float) -> float:
    """A generous estimate of a label's width in px (wide glyphs and digits count more than narrow ones)."""
    narrow = sum(ch in "ilIj.,:;!|'()[] " for ch in text)
    wide = sum(ch in "MWmw@%" or ch.isupper() for ch in text)
    return size * (0.62 * (len(text) - narrow - wide) + 0.34 * narrow + 0.82 * wide) + 2


_FONT = {"label": 11.0, "key-action": 11.0, "sla-label": 11.5, "small": 11.0, "bar-label": 11.0, "tick": 11.0}


def timeline_svg(view: DrillView) -> str:
    """The chart as an ``<svg>`` element (text), sized to the page width by CSS."""
    t0 = view.t0

    def secs(at: datetime) -> float:
        return (at - t0).total_seconds()

    end_s = max(secs(view.end), 1.0)
    start_s = min(0.0, *(secs(e.at) for e in view.timeline)) if view.timeline else 0.0
    # Deadlines inside the drill (or shortly after) extend the axis; far ones are listed at the edge.
    horizon = end_s
    for m in view.markers:
        if m.deadline is not None and secs(m.deadline) <= end_s * 1.6:
            horizon = max(horizon, secs(m.deadline))
    pad = (horizon - start_s) * 0.03
    scale = _Scale(start_s - pad, horizon + pad, LEFT, WIDTH - RIGHT)
    layout = LabelLayout(WIDTH, [])

    # SLA labels first, in rows above the lanes: how many rows they need decides where the lanes start.
    sla_size = _FONT["sla-label"]
    sla_rows: list[tuple[SlaMarker, str, tuple[float, float, str] | None, float | None]] = []
    for marker in view.markers:
        check = marker.check
        symbol = {CheckStatus.PASS: "✓", CheckStatus.FAIL: "✗"}.get(check.status, "?")
        measured = short(check.measured) if check.measured is not None else "not measured"
        text = f"{marker.metric} ≤ {short(check.target)}  {symbol} {measured}"
        if marker.deadline is None or secs(marker.deadline) > scale.end:
            ahead = "" if marker.deadline is None else f" at {signed_offset(marker.deadline - t0)}"
            text = f"{text} → deadline{ahead}"
            candidates: list[tuple[float, float, str]] = [
                (float(WIDTH - RIGHT), 16.0 + r * SLA_ROW, "end") for r in range(8)
            ]
            x = None
        else:
            x = scale.x(secs(marker.deadline))
            candidates = []
            for r in range(8):
                y = 16.0 + r * SLA_ROW
                candidates += [(x + 5, y, "start"), (x - 5, y, "end")]
        sla_rows.append((marker, text, layout.place(text, sla_size, candidates), x))
    used_rows = max((int((p[1] - 16) // SLA_ROW) + 1 for _, _, p, _ in sla_rows if p is not None), default=0)
    lanes_top = 16 + used_rows * SLA_ROW + 6 if used_rows else 24
    phases_bottom = lanes_top + PHASE_LANE * len(view.phases)
    events_top = phases_bottom + 10
    event_lanes = EVENT_LANES + ((IMPACT_LANE,) if view.impact_series else ())
    lanes_bottom = events_top + EVENT_LANE * len(event_lanes)

    svg = ET.Element(
        "svg",
        {
            "viewBox": "",  # set once the legend is laid out
            "role": "img",
            "aria-label": "Timeline of the drill: phases against the SLA targets",
            "class": "timeline",
        },
    )
    defs = _sub(svg, "defs")
    # Diagonal stripes: paused time (grey on grey) and phases not reached before the end (grey on white).
    for pattern_id, size, background, stripe in (
        ("hatch", 6, "#f6f8fa", "#d0d7de"),
        ("unfinished", 8, "#ffffff", "#afb8c1"),
    ):
        pattern = _sub(
            defs,
            "pattern",
            id=pattern_id,
            width=str(size),
            height=str(size),
            patternUnits="userSpaceOnUse",
            patternTransform="rotate(45)",
        )
        _rect(pattern, 0, 0, size, size, fill=background)
        _line(pattern, 0, 0, 0, size, stroke=stripe, stroke_width="3")

    # Lane backgrounds and labels.
    for i, phase in enumerate(view.phases):
        y = lanes_top + i * PHASE_LANE
        _rect(svg, LEFT, y, WIDTH - RIGHT - LEFT, PHASE_LANE, fill="#ffffff" if i % 2 else "#f6f8fa")
        _text(svg, phase.name, LEFT - 12, y + PHASE_LANE / 2 + 4, "lane phase", "end")
        layout.take(layout.box(phase.name, LEFT - 12, y + PHASE_LANE / 2 + 4, 12, "end"))
    for i, (_, label) in enumerate(event_lanes):
        y = events_top + i * EVENT_LANE
        _rect(svg, LEFT, y, WIDTH - RIGHT - LEFT, EVENT_LANE, fill="#ffffff" if i % 2 else "#f6f8fa")
        _text(svg, label, LEFT - 12, y + EVENT_LANE / 2 + 4, "lane", "end")
        layout.take(layout.box(label, LEFT - 12, y + EVENT_LANE / 2 + 4, 12, "end"))

    # Grid and axis.
    step = tick_step(scale.end - scale.start)
    tick = math.ceil(scale.start / step) * step
    axis_y = lanes_bottom
    _line(svg, LEFT, axis_y, WIDTH - RIGHT, axis_y, class_="axis")
    while tick <= scale.end:
        x = scale.x(tick)
        _line(svg, x, lanes_top, x, axis_y, class_="grid")
        _line(svg, x, axis_y, x, axis_y + 5, class_="axis")
        _text(svg, _tick_label(tick), x, axis_y + 18, "tick", "middle")
        layout.take(layout.box(_tick_label(tick), x, axis_y + 18, 11, "middle"))
        tick += step
    _text(svg, "time since the fault (T0)", WIDTH - RIGHT, axis_y + 34, "axis-title", "end")

    # Paused time, across every lane.
    for p_start, p_end in view.pauses:
        x1 = scale.x(secs(p_start))
        x2 = scale.x(secs(p_end)) if p_end is not None else scale.x(scale.end)
        g = _sub(svg, "g", class_="pause")
        _rect(
            g, x1, lanes_top, max(1.0, x2 - x1), lanes_bottom - lanes_top, fill="url(#hatch)", opacity="0.9"
        )
        _text(g, "paused", x1 + 3, lanes_bottom - 4, "small")
        layout.take(layout.box("paused", x1 + 3, lanes_bottom - 4, 11, "start"))
        until = signed_offset(p_end - t0) if p_end is not None else "the end"
        _title(g, f"Paused {signed_offset(p_start - t0)} to {until}: not counted in active time")

    # SLA deadlines: a dashed line per target from its label's row down to the axis, behind bars and marks.
    for marker, text, placed, x in sla_rows:
        check = marker.check
        colour = STATUS_COLOURS[check.status]
        measured = short(check.measured) if check.measured is not None else "not measured"
        g = _sub(svg, "g", class_=f"sla {check.status.value.replace('/', '')}", data_metric=marker.metric)
        target = format_duration(check.target)
        tip = f"{check.id}: {check.rule}; target {target}, measured {measured} [{check.citation}]"
        ly = placed[1] if placed is not None else 16.0
        if x is not None:
            _line(g, x, ly + 4, x, axis_y, stroke=colour, stroke_width="1.6", stroke_dasharray="5 4")
        if placed is not None:
            _text(g, text, placed[0], placed[1], "sla-label", placed[2], fill=colour)
        _title(g, tip)

    # Phase bars: the same spans, durations and notes as the cards (DrillView.phases is their one source).
    for i, phase in enumerate(view.phases):
        y = lanes_top + i * PHASE_LANE + 6
        h = PHASE_LANE - 12
        mid = y + h / 2 + 4
        colour = PHASE_COLOURS[phase.name]
        seconds = "" if phase.seconds is None else str(phase.seconds)
        g = _sub(svg, "g", class_="phase", data_phase=phase.name, data_seconds=seconds)
        if phase.start is None:
            _text(g, phase.text, LEFT + 8, mid, "small muted")
            layout.take(layout.box(phase.text, LEFT + 8, mid, 11, "start"))
            _title(g, f"{phase.name} ({phase.metric}): {phase.measures}; {phase.text}")
            continue
        x1 = scale.x(secs(phase.start))
        finished = phase.end is not None
        x2 = scale.x(secs(phase.end)) if phase.end is not None else scale.x(end_s)
        has_duration = phase.duration is not None
        if finished and has_duration:
            _rect(g, x1, y, max(2.0, x2 - x1), h, rx="3", fill=colour)
        else:
            _rect(
                g,
                x1,
                y,
                max(2.0, x2 - x1),
                h,
                rx="3",
                fill="url(#unfinished)",
                stroke=colour,
                stroke_width="1.5",
            )
        label = phase.text
        if phase.paused:
            label += f" (wall {format_duration(phase.wall)})"
        inside = finished and has_duration and x2 - x1 > text_width(label, 11) + 14
        if inside:
            _text(g, label, (x1 + x2) / 2, mid, "bar-label", "middle")
        else:
            spot = layout.place(label, 11, [(x2 + 6, mid, "start"), (x1 - 6, mid, "end")])
            if spot is not None:
                _text(g, label, spot[0], spot[1], "small" + ("" if has_duration else " muted"), spot[2])
        if phase.end is not None:
            span = f"{signed_offset(phase.start - t0)} to {signed_offset(phase.end - t0)}"
        else:
            span = f"from {signed_offset(phase.start - t0)}, not reached before the drill ended"
        _title(g, f"{phase.name} ({phase.metric}): {phase.measures}, {label} ({span})")

    # Health strip: red while unhealthy, green while healthy, grey before the first probe result.
    health_y = events_top + 3 * EVENT_LANE + EVENT_LANE / 2
    segments: list[tuple[float, float, str]] = []
    cursor, state = start_s, "unknown"
    for at, healthy in view.health:
        s_at = secs(at)
        if s_at > cursor:
            segments.append((cursor, s_at, state))
        cursor, state = max(cursor, s_at), "healthy" if healthy else "unhealthy"
    segments.append((cursor, end_s, state))
    health_colour = {
        "unknown": "#d0d7de",
        "healthy": "#4ac26b",
        "unhealthy": "#ff8182",
        "flapping": "#d4a72c",
    }
    for s_from, s_to, st, changes in _flaps(segments, scale):
        if s_to <= s_from:
            continue
        g = _sub(svg, "g", class_="health")
        _rect(g, scale.x(s_from), health_y - 4, scale.x(s_to) - scale.x(s_from), 8, fill=health_colour[st])
        if changes:
            _title(
                g, f"flapping from {_tick_label(s_from)} to {_tick_label(s_to)}: {changes:,} health changes"
            )
        else:
            _title(g, f"{st} from {_tick_label(s_from)} to {_tick_label(s_to)}")

    if view.impact_series:
        _impact_lane(svg, view, scale, events_top + len(EVENT_LANES) * EVENT_LANE, start_s, end_s)

    # T0.
    x0 = scale.x(0)
    _line(svg, x0, lanes_top - 6, x0, axis_y, class_="t0")

    # Event marks; then labels for the key ones, the mitigating change first so it always gets one.
    lane_index = {name: i for i, (name, _) in enumerate(EVENT_LANES)}
    placed_marks: list[tuple[float, float, TimelineEntry]] = []
    # Key events last, so they are drawn on top of a mark at the same instant (the page sent with an alert).
    for entry in sorted(view.timeline, key=lambda e: e.key):
        if entry.lane not in lane_index:
            continue
        i = lane_index[entry.lane]
        mark_y = events_top + i * EVENT_LANE + EVENT_LANE / 2
        x = scale.x(entry.offset.total_seconds())
        shape, colour, _ = MARKERS.get(entry.marker, ("circle", "#57606a", ""))
        tip = f"{entry.offset_text}  {entry.what}  ({entry.who})"
        _shape(svg, shape, x, mark_y, colour, tip)
        if entry.key:
            placed_marks.append((x, mark_y, entry))
    for x, mark_y, entry in sorted(placed_marks, key=lambda m: (not m[2].mitigating, m[0])):
        label = event_label(entry)
        cls = "label key-action" if entry.mitigating else "label"
        spot = layout.place(
            label,
            11,
            [
                (x + 7, mark_y - 9, "start"),
                (x - 7, mark_y - 9, "end"),
                (x + 7, mark_y + 15, "start"),
                (x - 7, mark_y + 15, "end"),
            ],
        )
        if spot is not None:
            _text(svg, label, spot[0], spot[1], cls, spot[2], data_event=entry.marker)

    # Legend, wrapped to the chart's width.
    entries: list[tuple[str | None, str, str]] = []  # (shape or None for a deadline line, colour, text)
    for name, (marker_shape, colour, text) in MARKERS.items():
        if any(e.marker == name for e in view.timeline) and all(text != t for _, _, t in entries):
            entries.append((marker_shape, colour, text))
    entries.append((None, STATUS_COLOURS[CheckStatus.PASS], "target met"))
    entries.append((None, STATUS_COLOURS[CheckStatus.FAIL], "target missed"))
    x, legend_y = float(LEFT), float(lanes_bottom + AXIS + 20)
    for legend_shape, colour, text in entries:
        width = 30 + text_width(text, 11)
        if x + width > WIDTH - RIGHT:
            x, legend_y = float(LEFT), legend_y + LEGEND_ROW
        if legend_shape is None:
            _line(
                svg,
                x - 6,
                legend_y - 4,
                x + 8,
                legend_y - 4,
                stroke=colour,
                stroke_width="1.6",
                stroke_dasharray="5 3",
            )
        else:
            _shape(svg, legend_shape, x, legend_y - 4, colour, text)
        _text(svg, text, x + 12, legend_y, "small")
        x += width
    svg.set("viewBox", f"0 0 {WIDTH} {_f(legend_y + 10)}")

    ET.indent(svg, space=" ")
    return ET.tostring(svg, encoding="unicode")


def _flaps(segments: list[tuple[float, float, str]], scale: _Scale) -> list[tuple[float, float, str, int]]:
    """The health strip's segments, each run of two or more narrower than a pixel drawn as one "flapping"
    segment (with how many changes it holds): a probe flapping every few seconds for hours would otherwise
    be tens of thousands of invisible rectangles. A lone narrow segment is drawn as it is."""
    out: list[tuple[float, float, str, int]] = []
    run: list[tuple[float, float, str]] = []

    def flush() -> None:
        if len(run) == 1:
            out.append((*run[0], 0))
        elif run:
            out.append((run[0][0], run[-1][1], "flapping", len(run)))
        run.clear()

    # Seconds per pixel: a segment shorter than this is narrower than a pixel.
    pixel = (scale.end - scale.start or 1.0) / (scale.right - scale.left)
    for seg in segments:
        if 0 < seg[1] - seg[0] < pixel:
            run.append(seg)
            continue
        flush()
        out.append((*seg, 0))
    flush()
    return out


def _impact_lane(
    svg: ET.Element, view: DrillView, scale: _Scale, top: float, start_s: float, end_s: float
) -> None:
    """Users affected as a step area (0 % at the lane's bottom, 100 % at its top), a sample holding until
    the next; its tooltip gives the peak."""
    bottom, height = top + EVENT_LANE - 4, EVENT_LANE - 8
    t0 = view.t0
    pts: list[tuple[float, float]] = [(scale.x(start_s), bottom)]
    level = 0.0
    for at, pct in view.impact_series:
        x = scale.x(max(start_s, min(end_s, (at - t0).total_seconds())))
        pts += [(x, bottom - level / 100 * height), (x, bottom - pct / 100 * height)]
        level = pct
    pts += [(scale.x(end_s), bottom - level / 100 * height), (scale.x(end_s), bottom)]
    g = _sub(svg, "g", class_="impact")
    _sub(g, "polygon", points=_points(*pts), fill="#ff8182", stroke="#cf222e", stroke_width="1")
    peak_at, peak = max(view.impact_series, key=lambda p: (p[1], -p[0].timestamp()))
    _title(g, f"users affected: peak {peak:.1f} % at {signed_offset(peak_at - t0)}")


def event_label(entry: TimelineEntry) -> str:
    """A key event's label: short enough to read at a glance; the mitigating change says what it changed."""
    if entry.mitigating:
        text = entry.what.split(" (", 1)[0]
        return text if len(text) <= 44 else text[:43] + "…"
    return entry.what if len(entry.what) <= 28 else entry.what[:27] + "…"
