"""What every drill report shows, worked out once from a scorecard and its journal events.

The postmortem, the HTML report and the monthly roll-up show the same facts (the timeline in blameless words,
the phases, the SLA deadlines, the metrics, the action items); this module derives them so the renderers only
lay them out. Times are shown relative to T0, the true fault time, because that is what the SLAs count from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from drills.engine.comms import get_template as comms_template
from drills.engine.comms import incident_id
from drills.engine.timeline import Timeline, spans
from drills.engine.timeline import build as build_timeline
from drills.errors import UsageError
from drills.model.durations import format_duration
from drills.model.events import (
    Acknowledged,
    ActionObserved,
    ActorKind,
    AlertFired,
    AlertResolved,
    ChaosToolkitEvent,
    CommsPosted,
    Detected,
    DrillEnded,
    DrillStarted,
    EscalationNotified,
    Event,
    FaultInjected,
    FaultReverted,
    HealthChanged,
    HintUsed,
    Mitigated,
    Note,
    PageSent,
    Paused,
    PostmortemCompleted,
    Reopened,
    Resolved,
    Resumed,
    Role,
    RoleAssigned,
    RunbookStep,
    SeverityDeclared,
    TicketCreated,
)
from drills.model.policy import SlaTargets
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Clocks, Scorecard

#: Days after the drill's end that an action item falls due (a sprint, by default).
ACTION_DUE_DAYS = 14


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    offset: timedelta  # from T0; negative before the fault
    lane: str  # which chart lane: signal, response, action, health, drill
    marker: str  # marker style: fault, alert, ack, severity, role, comms, escalation, action, ...
    who: str
    what: str
    key: bool = False  # worth a label on the chart

    @property
    def offset_text(self) -> str:
        return signed_offset(self.offset)


@dataclass(frozen=True)
class PhaseSpan:
    name: str  # DETECT, TRIAGE, MITIGATE, RESOLVE
    start: datetime | None
    end: datetime | None  # None: not reached before the drill ended
    measures: str


@dataclass(frozen=True)
class SlaMarker:
    """An SLA deadline on the time axis: where the target falls, and whether it was met."""

    metric: str  # MTTD, MTTA, MTTM, MTTR, RESPONSE
    check: Check
    reference: datetime | None  # the clock starts here
    deadline: datetime | None  # reference + target, pauses excluded; None if it never came (open pause)

    @property
    def label(self) -> str:
        return f"{self.metric} ≤ {format_duration(self.check.target)}"


@dataclass(frozen=True)
class MetricRow:
    name: str
    measures: str
    wall: timedelta | None
    active: timedelta | None
    check: Check | None


@dataclass(frozen=True)
class ActionItem:
    id: str
    text: str
    owner: str
    due: date
    check_id: str
    status: str = "open"


@dataclass(frozen=True)
class DrillView:
    scorecard: Scorecard
    started: DrillStarted | None
    incident_id: str
    t0: datetime
    end: datetime
    timeline: list[TimelineEntry]
    phases: list[PhaseSpan]
    markers: list[SlaMarker]
    metrics: list[MetricRow]
    action_items: list[ActionItem]
    pauses: list[tuple[datetime, datetime | None]]
    health: list[tuple[datetime, bool]]
    first_why: str
    ic: str | None
    faults: list[str]
    hints: list[str]
    root_cause_stated: str
    went_well: list[Check]

    @property
    def kind(self) -> str:
        return "Drill" if self.scorecard.is_drill else "Incident"


def signed_offset(td: timedelta) -> str:
    if td < timedelta(0):
        return "-" + format_duration(-td)
    return "+" + format_duration(td)


# ---- the timeline in words ---------------------------------------------------------------------------------


def _who(e: Event) -> str:
    return e.actor or e.source.value


def describe(e: Event) -> tuple[str, str, str, bool] | None:
    """(lane, marker, text, key) for one event, in neutral words: what happened, not who was at fault."""
    match e:
        case DrillStarted():
            what = f"{'Drill started' if e.is_drill else 'Incident opened'}: {e.scenario_title}"
            return "drill", "drill", what, False
        case FaultInjected():
            return "signal", "fault", f"Fault injected: {e.fault_kind} on {e.target}", True
        case FaultReverted():
            what = f"Fault reverted: {e.fault_kind} on {e.target}" + ("" if e.ok else " (revert failed)")
            return "drill", "drill", what, False
        case AlertFired():
            return "signal", "alert", f"Alert {e.alert_name} fired", True
        case AlertResolved():
            return "signal", "alert-resolved", f"Alert {e.alert_name} resolved", False
        case Detected():
            return "signal", "alert", "Incident noticed by a person" + (f": {e.how}" if e.how else ""), True
        case PageSent():
            return "signal", "page", f"Page sent via {e.channel}" + (f" to {e.to}" if e.to else ""), False
        case Acknowledged():
            return "response", "ack", f"Acknowledged (via {e.via})", True
        case SeverityDeclared():
            return "response", "severity", f"Severity declared {e.severity.value}", True
        case RoleAssigned():
            return "response", "role", f"{e.person} took the {e.role.value.upper()} role", False
        case CommsPosted():
            try:
                title = comms_template(e.template).title
            except UsageError:
                title = e.template
            missing = f" (fields left to fill: {', '.join(e.missing_fields)})" if e.missing_fields else ""
            return "response", "comms", f"Posted {title}{missing}", False
        case EscalationNotified():
            return "response", "escalation", f"Escalated to {e.whom} via {e.channel}", False
        case TicketCreated():
            return "response", "ticket", "Ticket created" + (f": {e.ref}" if e.ref else ""), False
        case ActionObserved():
            by = {
                ActorKind.RESPONDER: "responder",
                ActorKind.BOT: "bot responder",
                ActorKind.CONTROLLER: "Kubernetes controller",
                ActorKind.DRILLS: "drills",
                ActorKind.UNKNOWN: "unattributed",
            }[e.actor_kind]
            what = f"{e.kind.value.replace('_', ' ').capitalize()} of {e.object} ({by})"
            if e.detail:
                what += f": {e.detail}"
            marker = "action" if e.actor_kind in (ActorKind.RESPONDER, ActorKind.BOT) else "system-action"
            return "action", marker, what, False
        case HealthChanged():
            if e.healthy:
                return "health", "healthy", "Service healthy" + (f": {e.reason}" if e.reason else ""), False
            return "health", "unhealthy", "Service unhealthy" + (f": {e.reason}" if e.reason else ""), False
        case Mitigated():
            return (
                "response",
                "mitigated",
                "Impact reported reduced" + (f": {e.summary}" if e.summary else ""),
                True,
            )
        case Resolved():
            return "response", "resolved", "Resolved" + (f": {e.root_cause}" if e.root_cause else ""), True
        case Reopened():
            return "response", "reopened", "Reopened" + (f": {e.reason}" if e.reason else ""), True
        case HintUsed():
            return "response", "hint", f"Hint {e.index + 1} used (cost {e.cost})", False
        case Paused():
            return "drill", "pause", "Drill paused" + (f": {e.reason}" if e.reason else ""), False
        case Resumed():
            return "drill", "pause", "Drill resumed", False
        case Note():
            return "response", "note", f"Note: {e.text}", False
        case PostmortemCompleted():
            return "response", "postmortem", "Postmortem completed" + (f": {e.link}" if e.link else ""), False
        case RunbookStep():
            return "response", "runbook", f"Runbook step {e.step}: {e.status}", False
        case ChaosToolkitEvent():
            return "drill", "drill", f"Chaos Toolkit: {e.phase}", False
        case DrillEnded():
            return (
                "drill",
                "drill",
                f"Drill ended: {e.outcome.value}" + (f" ({e.reason})" if e.reason else ""),
                False,
            )
    return None


# ---- SLA deadlines -----------------------------------------------------------------------------------------


def deadline_after(
    reference: datetime, budget: timedelta, pauses: Sequence[tuple[datetime, datetime | None]]
) -> datetime | None:
    """When an active-time budget started at ``reference`` runs out, the clock stopped while paused."""
    cursor, left = reference, budget
    for start, end in pauses:
        if end is not None and end <= cursor:
            continue
        if start >= cursor + left:
            break
        left -= max(timedelta(0), start - cursor)
        if end is None:
            return None
        cursor = max(cursor, end)
    return cursor + left


def sla_markers(scorecard: Scorecard, timeline: Timeline) -> list[SlaMarker]:
    """The deadlines of the true severity's MTTD/MTTA/MTTM/MTTR targets (the severity table's for P2/P3).

    Where each clock starts is the engine's (``timeline.spans``); the target and the verdict are the
    scorecard's, so the chart can never disagree with the checks table.
    """
    checks = {c.id: c for c in scorecard.checks}
    severity = scorecard.true_severity
    # Start instants do not depend on the targets; the scorecard's own targets are used below.
    starts = {s.rule.id: s.start for s in spans(timeline, severity, SlaTargets())}
    sev = severity.value.lower()
    wanted = [("MTTD", "mttd"), ("MTTA", f"mtta.{sev}"), ("MTTM", f"mttm.{sev}"), ("MTTR", f"mttr.{sev}")]
    if not severity.is_high():
        wanted.append(("RESPONSE", "response_time"))
    markers = []
    for metric, check_id in wanted:
        c = checks.get(check_id)
        if c is None or c.status == CheckStatus.NOT_APPLICABLE or c.target is None:
            continue
        start = starts.get(check_id)
        deadline = deadline_after(start, c.target, timeline.pauses) if start is not None else None
        markers.append(SlaMarker(metric, c, start, deadline))
    return markers


def _first(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def metric_rows(scorecard: Scorecard) -> list[MetricRow]:
    checks = {c.id: c for c in scorecard.checks}
    c = scorecard.clocks
    sev = scorecard.true_severity.value.lower()
    high = scorecard.true_severity.is_high()

    def pick(*ids: str) -> Check | None:
        return next(
            (checks[i] for i in ids if i in checks and checks[i].status != CheckStatus.NOT_APPLICABLE), None
        )

    return [
        MetricRow("TTD", "first alert − fault (T0)", c.ttd, c.ttd_active, pick("mttd")),
        MetricRow("TTD (human)", "first human detection − T0", c.ttd_human, None, None),
        MetricRow(
            "TTA",
            "acknowledged − first alert",
            c.tta,
            c.tta_active,
            pick(f"mtta.{sev}") if high else pick("response_time", "oncall.ack_all"),
        ),
        MetricRow("Triage", "severity and IC − T0", c.ttt, c.ttt_active, pick("triage.within")),
        MetricRow("TTM", "impact reduced − acknowledged", c.ttm, c.ttm_active, pick(f"mttm.{sev}")),
        MetricRow("TTR", "resolved − T0", c.ttr, c.ttr_active, pick(f"mttr.{sev}")),
    ]


# ---- phases ------------------------------------------------------------------------------------------------


def phase_spans(clocks: Clocks, t0: datetime) -> list[PhaseSpan]:
    """The seed's lifecycle (DETECT → TRIAGE → MITIGATE → RESOLVE) as spans; they may overlap in practice."""
    detected = _first(clocks.first_alert, clocks.human_detected)
    triage_from = detected or clocks.acknowledged or t0
    return [
        PhaseSpan("DETECT", t0, detected, "fault → first alert or detection"),
        PhaseSpan("TRIAGE", triage_from, clocks.triaged, "detection → severity declared and IC assigned"),
        PhaseSpan("MITIGATE", clocks.acknowledged, clocks.mitigated, "acknowledged → impact reduced"),
        PhaseSpan("RESOLVE", clocks.mitigated, clocks.resolved, "impact reduced → resolved"),
    ]


# ---- action items ------------------------------------------------------------------------------------------

_IMPROVEMENT = {
    CheckFamily.DETECTION: "Tune alerting for this failure mode",
    CheckFamily.ACKNOWLEDGEMENT: "Make sure pages reach the on-call engineer and are easy to acknowledge",
    CheckFamily.TRIAGE: "Keep the severity matrix and IC assignment at hand in the triage runbook",
    CheckFamily.MITIGATION: "Add this mitigation to the runbook and rehearse it",
    CheckFamily.RESOLUTION: "Clarify in the runbook how to confirm recovery before resolving",
    CheckFamily.COMMUNICATION: "Make the communication templates part of the incident checklist",
    CheckFamily.ESCALATION: "Put the escalation steps and contacts in the runbook",
    CheckFamily.DISCIPLINE: "Build the runbook's do's and don'ts into the incident checklist",
}


def _evidence(c: Check) -> str:
    if c.target is not None and c.measured is not None:
        return f" (target {format_duration(c.target)}, measured {format_duration(c.measured)})"
    return f" ({c.detail})" if c.detail else ""


def action_items(
    scorecard: Scorecard, owner: str, end: datetime, due_days: int = ACTION_DUE_DAYS
) -> list[ActionItem]:
    """One improvement per failed check, worded about the system and the process."""
    due = (end + timedelta(days=due_days)).date()
    items = []
    for n, c in enumerate(scorecard.failed_checks, start=1):
        text = f"{_IMPROVEMENT[c.family]}: {c.rule}{_evidence(c)}"
        items.append(ActionItem(f"A{n}", text, owner, due, c.id))
    return items


# ---- the whole view ----------------------------------------------------------------------------------------


def build_view(
    scorecard: Scorecard, events: Sequence[Event], *, due_days: int = ACTION_DUE_DAYS
) -> DrillView:
    timeline = build_timeline(events)
    evs = list(timeline.events)
    started = timeline.started
    clocks = scorecard.clocks
    first_at = evs[0].at if evs else scorecard.started
    if first_at is None:
        raise UsageError("a report needs a journal with at least one event", hint="check the journal path")
    t0 = clocks.t0 or (started.at if started else first_at)
    last_at = evs[-1].at if evs else first_at
    end = max(t for t in (clocks.ended, clocks.resolved, last_at) if t is not None)

    entries = []
    for e in evs:
        described = describe(e)
        if described is None:
            continue
        lane, marker, what, key = described
        entries.append(TimelineEntry(e.at, e.at - t0, lane, marker, _who(e), what, key))

    # The incident commander now: the last one assigned (the role can be handed over).
    ic = next((e.person for e in reversed(evs) if isinstance(e, RoleAssigned) and e.role == Role.IC), None)
    owner = scorecard.trainee or ic or (started.team if started and started.team else None) or "[owner]"
    faults = [f"`{e.fault_kind}` fault on {e.target}" for e in evs if isinstance(e, FaultInjected)]
    service = started.service if started else "the service"
    if faults:
        first_why = (
            f"Why was `{service}` unhealthy? Because of a {faults[0]} (scenario: {scorecard.scenario_title})."
        )
    else:
        first_why = f"Why was `{service}` unhealthy? [first answer]"
    return DrillView(
        scorecard=scorecard,
        started=started,
        incident_id=incident_id(started.at if started else first_at),
        t0=t0,
        end=end,
        timeline=entries,
        phases=phase_spans(clocks, t0),
        markers=sla_markers(scorecard, timeline),
        metrics=metric_rows(scorecard),
        action_items=action_items(scorecard, owner, end, due_days),
        pauses=list(timeline.pauses),
        health=[(e.at, e.healthy) for e in evs if isinstance(e, HealthChanged)],
        first_why=first_why,
        ic=ic,
        faults=faults,
        hints=[_hint_text(e, started) for e in evs if isinstance(e, HintUsed)],
        root_cause_stated=timeline.resolved.root_cause if timeline.resolved else "",
        went_well=[c for c in scorecard.checks if c.status == CheckStatus.PASS],
    )


def _hint_text(e: HintUsed, started: DrillStarted | None) -> str:
    text = e.text
    # `drill hint` may record only the index: the text is then the scenario's, carried by drill.started.
    if not text and started is not None and e.index < len(started.hints):
        text = started.hints[e.index].text
    return f"Hint {e.index + 1} (cost {e.cost}): {text or 'text not recorded'}"


def severity_call(scorecard: Scorecard) -> str:
    """Declared vs true severity in words."""
    true = scorecard.true_severity
    declared = scorecard.declared_severity
    if declared is None:
        return f"not declared (true severity {true.value})"
    if declared == true:
        return f"declared {declared.value}, matching the true severity"
    direction = "less" if declared.rank > true.rank else "more"
    return f"declared {declared.value}, true severity {true.value} (declared {direction} severe than it was)"


__all__ = [
    "ACTION_DUE_DAYS",
    "ActionItem",
    "DrillView",
    "MetricRow",
    "PhaseSpan",
    "SlaMarker",
    "TimelineEntry",
    "build_view",
    "describe",
    "severity_call",
    "signed_offset",
]
