"""The DR plan's combined report: per team, per runbook step, against the objectives.

A quarterly DR drill answers questions a single drill's report cannot: did each team's runbook work step by
step, how long did each step take from the failure, was each recovery objective (RTO, RPO) met, and how did
the drills go as drills (score, grade). ``plan.md`` is for people to read and edit, ``plan.html`` is one
self-contained page (inline CSS and SVG, nothing fetched) with a chart of the plan's timeline, and
``plan.json`` is for scripts. Each drill keeps its own reports in its own directory; this one links to them.

Pure rendering of a :class:`PlanResult`: the same result gives the same files.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from drills.model.durations import format_duration
from drills.model.plan import DrPlan
from drills.model.scorecard import Scorecard
from drills.reporting import _templates

StepStatus = Literal["not-started", "done", "failed", "skipped"]

PLAN_MD = "plan.md"
PLAN_HTML = "plan.html"
PLAN_JSON = "plan.json"


@dataclass
class StepResult:
    name: str
    owner: str
    command: str | None
    check: str
    rto: timedelta | None = None
    rpo: timedelta | None = None
    started: datetime | None = None
    done: datetime | None = None
    status: StepStatus = "not-started"
    detail: str = ""
    checks: int = 0
    data_age: timedelta | None = None

    def elapsed(self, t0: datetime | None) -> timedelta | None:
        """Failure to step confirmed: what the RTO is judged on."""
        return None if t0 is None or self.done is None else self.done - t0

    @property
    def duration(self) -> timedelta | None:
        return None if self.started is None or self.done is None else self.done - self.started

    def rto_met(self, t0: datetime | None) -> bool | None:
        if self.rto is None:
            return None
        if self.status != "done":
            return False
        e = self.elapsed(t0)
        return None if e is None else e <= self.rto

    @property
    def rpo_met(self) -> bool | None:
        if self.rpo is None:
            return None
        return None if self.data_age is None else self.data_age <= self.rpo


@dataclass
class EntryResult:
    entry_id: str
    team: str
    scenario_id: str
    scenario_title: str
    responder: str
    rto: timedelta | None = None
    rpo: timedelta | None = None
    steps: list[StepResult] = field(default_factory=list)
    drill_id: str | None = None
    journal: Path | None = None
    report_dir: Path | None = None
    scorecard: Scorecard | None = None
    outcome: str = ""
    error: str | None = None
    trace: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    t0: datetime | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def recovery(self) -> timedelta | None:
        """Failure to the last runbook step confirmed (every step done), the entry's RTO measure."""
        if self.t0 is None or not self.steps or any(s.status != "done" for s in self.steps):
            return None
        return max(s.done for s in self.steps if s.done is not None) - self.t0

    @property
    def data_age(self) -> timedelta | None:
        ages = [s.data_age for s in self.steps if s.data_age is not None]
        return max(ages) if ages else None

    @property
    def rto_met(self) -> bool | None:
        if self.rto is None:
            return None
        r = self.recovery
        return False if r is None else r <= self.rto

    @property
    def rpo_met(self) -> bool | None:
        if self.rpo is None:
            return None
        a = self.data_age
        return None if a is None else a <= self.rpo

    @property
    def steps_done(self) -> int:
        return sum(1 for s in self.steps if s.status == "done")

    @property
    def objectives_met(self) -> bool:
        verdicts = [
            self.rto_met,
            self.rpo_met,
            *(s.rto_met(self.t0) for s in self.steps),
            *(s.rpo_met for s in self.steps),
        ]
        return (
            self.error is None
            and all(v is not False for v in verdicts)
            and self.steps_done == len(self.steps)
        )

    @property
    def passed(self) -> bool:
        return self.objectives_met and self.scorecard is not None and self.scorecard.passed


@dataclass
class PlanReportPaths:
    directory: Path
    markdown: Path
    html: Path
    json: Path


@dataclass
class PlanResult:
    plan: DrPlan
    plan_path: Path
    started: datetime
    ended: datetime
    entries: list[EntryResult]
    report: PlanReportPaths | None = None

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.entries)

    @property
    def objectives_met(self) -> bool:
        return all(e.objectives_met for e in self.entries)

    def by_team(self) -> list[tuple[str, str, list[EntryResult]]]:
        out = []
        for t in self.plan.teams:
            entries = [e for e in self.entries if e.team == t.id]
            if entries:
                out.append((t.id, t.name, entries))
        return out


# ---- rendering -------------------------------------------------------------------------------------------


def verdict(v: bool | None) -> str:
    return {True: "met", False: "missed", None: "-"}[v]


def _offset(at: datetime | None, origin: datetime | None) -> str:
    if at is None or origin is None:
        return "-"
    return "T+" + format_duration(at - origin)


def _rel(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


def as_dict(result: PlanResult) -> dict[str, Any]:
    def td(x: timedelta | None) -> float | None:
        return None if x is None else round(x.total_seconds(), 3)

    def ts(x: datetime | None) -> str | None:
        return None if x is None else x.astimezone(UTC).isoformat()

    return {
        "plan": result.plan.id,
        "title": result.plan.title,
        "plan_file": str(result.plan_path),
        "started": ts(result.started),
        "ended": ts(result.ended),
        "passed": result.passed,
        "objectives_met": result.objectives_met,
        "objectives": list(result.plan.objectives),
        "entries": [
            {
                "id": e.entry_id,
                "team": e.team,
                "scenario": e.scenario_id,
                "responder": e.responder,
                "drill_id": e.drill_id,
                "journal": None if e.journal is None else str(e.journal),
                "report_dir": None if e.report_dir is None else str(e.report_dir),
                "started": ts(e.started),
                "t0": ts(e.t0),
                "ended": ts(e.ended),
                "score": None if e.scorecard is None else e.scorecard.score,
                "grade": None if e.scorecard is None else e.scorecard.grade,
                "drill_passed": None if e.scorecard is None else e.scorecard.passed,
                "outcome": e.outcome,
                "error": e.error,
                "rto_seconds": td(e.rto),
                "recovery_seconds": td(e.recovery),
                "rto_met": e.rto_met,
                "rpo_seconds": td(e.rpo),
                "data_age_seconds": td(e.data_age),
                "rpo_met": e.rpo_met,
                "objectives_met": e.objectives_met,
                "steps": [
                    {
                        "name": s.name,
                        "owner": s.owner,
                        "command": s.command,
                        "check": s.check,
                        "status": s.status,
                        "detail": s.detail,
                        "started": ts(s.started),
                        "done": ts(s.done),
                        "duration_seconds": td(s.duration),
                        "elapsed_seconds": td(s.elapsed(e.t0)),
                        "rto_seconds": td(s.rto),
                        "rto_met": s.rto_met(e.t0),
                        "rpo_seconds": td(s.rpo),
                        "data_age_seconds": td(s.data_age),
                        "rpo_met": s.rpo_met,
                        "checks": s.checks,
                    }
                    for s in e.steps
                ],
            }
            for e in result.entries
        ],
    }


# ---- the chart -------------------------------------------------------------------------------------------

_COLOURS = {"done": "#1a7f37", "failed": "#cf222e", "skipped": "#8c959f", "not-started": "#8c959f"}
_TEAM_COLOURS = ("#0969da", "#8250df", "#bf8700", "#1b7c83", "#bc4c00", "#57606a")


def timeline_svg(result: PlanResult) -> str:
    """One lane per entry: the drill as a bar, each step as a marker at its confirmation, RTO as a tick."""
    width, left, right, lane_h, top = 1120, 230, 30, 46, 34
    origin = result.started
    ends = (
        [result.ended]
        + [e.ended for e in result.entries if e.ended]
        + [e.t0 + e.rto for e in result.entries if e.t0 and e.rto]
    )
    span = max((max(ends) - origin).total_seconds(), 60.0)
    height = top + lane_h * len(result.entries) + 44
    scale = (width - left - right) / span

    def x(at: datetime) -> float:
        return left + (at - origin).total_seconds() * scale

    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height}",
            "class": "plan-timeline",
            "role": "img",
            "aria-label": f"Timeline of plan {result.plan.id}",
        },
    )
    step = _tick_step(span)
    t = 0.0
    axis_y = top + lane_h * len(result.entries) + 6
    while t <= span + 0.001:
        xx = left + t * scale
        ET.SubElement(
            svg,
            "line",
            {"x1": f"{xx:.1f}", "x2": f"{xx:.1f}", "y1": str(top - 8), "y2": str(axis_y), "class": "grid"},
        )
        label = ET.SubElement(
            svg, "text", {"x": f"{xx:.1f}", "y": str(axis_y + 16), "class": "tick", "text-anchor": "middle"}
        )
        label.text = "+" + format_duration(timedelta(seconds=t))
        t += step
    teams = [tm.id for tm in result.plan.teams]
    for i, e in enumerate(result.entries):
        y = top + i * lane_h
        colour = _TEAM_COLOURS[teams.index(e.team) % len(_TEAM_COLOURS)] if e.team in teams else "#57606a"
        name = ET.SubElement(svg, "text", {"x": "8", "y": f"{y + 15}", "class": "lane"})
        name.text = e.entry_id
        sub = ET.SubElement(svg, "text", {"x": "8", "y": f"{y + 31}", "class": "lane small"})
        sub.text = f"{e.team} · {e.scenario_id}"[:34]
        if e.started and e.ended:
            bar = ET.SubElement(
                svg,
                "rect",
                {
                    "x": f"{x(e.started):.1f}",
                    "y": f"{y + 6}",
                    "width": f"{max(2.0, x(e.ended) - x(e.started)):.1f}",
                    "height": "26",
                    "rx": "4",
                    "fill": colour,
                    "opacity": "0.18",
                },
            )
            ET.SubElement(bar, "title").text = f"{e.entry_id}: {format_duration(e.ended - e.started)}"
        if e.t0:
            ET.SubElement(
                svg,
                "line",
                {
                    "x1": f"{x(e.t0):.1f}",
                    "x2": f"{x(e.t0):.1f}",
                    "y1": f"{y + 3}",
                    "y2": f"{y + 35}",
                    "class": "t0",
                },
            )
            if e.rto:
                rx = x(e.t0 + e.rto)
                ET.SubElement(
                    svg,
                    "line",
                    {
                        "x1": f"{rx:.1f}",
                        "x2": f"{rx:.1f}",
                        "y1": f"{y + 3}",
                        "y2": f"{y + 35}",
                        "class": "rto",
                    },
                )
                lbl = ET.SubElement(svg, "text", {"x": f"{rx + 3:.1f}", "y": f"{y + 12}", "class": "small"})
                lbl.text = "RTO"
        for s in e.steps:
            at = s.done or s.started
            if at is None:
                continue
            g = ET.SubElement(svg, "g", {"class": "mark"})
            ET.SubElement(
                g, "circle", {"cx": f"{x(at):.1f}", "cy": f"{y + 19}", "r": "6", "fill": _COLOURS[s.status]}
            )
            met = s.rto_met(e.t0)
            ET.SubElement(g, "title").text = f"{s.name} ({s.owner}): {s.status}, {_offset(s.done, e.t0)}" + (
                f", RTO {format_duration(s.rto)} {verdict(met)}" if s.rto else ""
            )
    ET.SubElement(
        svg,
        "line",
        {"x1": str(left), "x2": str(width - right), "y1": str(axis_y), "y2": str(axis_y), "class": "axis"},
    )
    cap = ET.SubElement(svg, "text", {"x": str(left), "y": str(top - 14), "class": "tick"})
    cap.text = "time since the plan started"
    return ET.tostring(svg, encoding="unicode")


def _tick_step(span: float) -> float:
    for s in (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span / s <= 10:
            return float(s)
    return span / 10


def render_markdown(result: PlanResult) -> str:
    base = result.report.directory if result.report else Path.cwd()
    return _templates.render(
        "plan.md.j2",
        r=result,
        verdict=verdict,
        offset=_offset,
        rel=lambda p: _rel(p, base),
        duration=format_duration,
    )


def render_html(result: PlanResult) -> str:
    base = result.report.directory if result.report else Path.cwd()
    from markupsafe import Markup

    return _templates.render(
        "plan.html.j2",
        r=result,
        verdict=verdict,
        offset=_offset,
        rel=lambda p: _rel(p, base),
        duration=format_duration,
        chart=Markup(timeline_svg(result)),  # noqa: S704 - built with ElementTree
    )


def write_plan_report(result: PlanResult, out_dir: Path) -> PlanReportPaths:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = PlanReportPaths(out_dir, out_dir / PLAN_MD, out_dir / PLAN_HTML, out_dir / PLAN_JSON)
    result.report = paths
    paths.markdown.write_text(render_markdown(result), encoding="utf-8")
    paths.html.write_text(render_html(result), encoding="utf-8")
    paths.json.write_text(json.dumps(as_dict(result), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths


__all__ = [
    "EntryResult",
    "PlanReportPaths",
    "PlanResult",
    "StepResult",
    "as_dict",
    "render_html",
    "render_markdown",
    "timeline_svg",
    "verdict",
    "write_plan_report",
]
