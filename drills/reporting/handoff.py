"""The seed's On-Call Handoff (incident-response-framework.md:480-498), filled from the week's drills.

The heading gives the handoff's real period (``--since`` to now), not just today's date. "Incidents This
Week" lists every drill and incident that started in the window with its status; "Ongoing
Issues" are the action items still open from any drill (owner and due date from the postmortem). What drills
cannot know (scheduled maintenance, expected high traffic) stays a ``[placeholder]`` for the person to fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from drills.engine.comms import incident_id
from drills.model.durations import format_duration
from drills.model.summary import DrillSummary, TrackedAction
from drills.reporting import _templates
from drills.reporting.text import plural


class HandoffIncident(BaseModel):
    model_config = ConfigDict(frozen=True)

    drill_id: str
    incident_id: str
    title: str
    is_drill: bool
    severity: str
    started: datetime
    status: str
    summary: str


class Handoff(BaseModel):
    model_config = ConfigDict(frozen=True)

    date: date
    since: datetime
    until: datetime
    incidents: list[HandoffIncident]
    ongoing: list[TrackedAction]


def _status(s: DrillSummary) -> str:
    if s.resolved:
        return "resolved"
    return s.outcome.replace("_", " ") if s.outcome else "open"


def _summary(s: DrillSummary) -> str:
    parts = [f"{'drill' if s.is_drill else 'incident'}, {s.true_severity}"]
    if s.ttr is not None:
        parts.append(f"resolved in {format_duration_seconds(s.ttr)}")
    if s.is_drill:
        parts.append(f"score {s.score:.1f} ({s.grade}{'' if s.passed else ', did not pass'})")
    open_items = sum(not a.done for a in s.actions)
    if open_items:
        parts.append(f"{plural(open_items, 'open action item')}")
    return "; ".join(parts)


def period_text(since: datetime, until: datetime) -> str:
    """The handoff's real period, as its heading gives it: ``2025-03-03 to 2025-03-10``."""
    fmt = "%Y-%m-%d" if since.time() == until.time() == datetime.min.time() else "%Y-%m-%d %H:%M"
    return f"{since.astimezone(UTC):{fmt}} to {until.astimezone(UTC):{fmt}} UTC"


def format_duration_seconds(seconds: float) -> str:
    return format_duration(timedelta(seconds=round(seconds)))


def build_handoff(
    summaries: Sequence[DrillSummary], *, since: datetime, until: datetime, today: date
) -> Handoff:
    week = sorted(
        (s for s in summaries if s.started is not None and since <= s.started < until),
        key=lambda s: (s.started, s.drill_id),
    )
    incidents = [
        HandoffIncident(
            drill_id=s.drill_id,
            incident_id=incident_id(s.started),
            title=s.title,
            is_drill=s.is_drill,
            severity=s.true_severity,
            started=s.started,
            status=_status(s),
            summary=_summary(s),
        )
        for s in week
        if s.started is not None
    ]
    ongoing = [a for s in sorted(summaries, key=lambda s: s.drill_id) for a in s.actions if not a.done]
    return Handoff(date=today, since=since, until=until, incidents=incidents, ongoing=ongoing)


def render_handoff_markdown(handoff: Handoff, *, limit: int = 20) -> str:
    week = handoff.until - handoff.since == timedelta(days=7)
    return _templates.render(
        "handoff.md.j2",
        h=handoff,
        limit=limit,
        period=period_text(handoff.since, handoff.until),
        incidents_heading="Incidents This Week" if week else f"Incidents Since {handoff.since:%Y-%m-%d}",
        drills=sum(i.is_drill for i in handoff.incidents),
        real=sum(not i.is_drill for i in handoff.incidents),
    )
