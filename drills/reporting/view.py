"""What every drill report shows, worked out once from a scorecard and its journal events.

The postmortem, the HTML report and the monthly roll-up show the same facts (the timeline in blameless words,
the phases, the SLA deadlines, the metrics, the action items); this module derives them so the renderers only
lay them out. Times are shown relative to T0, the true fault time, because that is what the SLAs count from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any

from drills.engine.comms import get_template as comms_template
from drills.engine.comms import incident_id
from drills.engine.redact import Redactor
from drills.engine.timeline import NOT_CHANGES, PEOPLE, Timeline, spans
from drills.engine.timeline import build as build_timeline
from drills.engine.traffic import ActionGroup, Traffic
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
    Source,
    TicketCreated,
    WorldDrifted,
)
from drills.model.policy import SlaTargets
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Clocks, Scorecard
from drills.model.severity import Impact
from drills.reporting.redaction import report_redactor, scrub_events, scrub_scorecard

#: Days after the drill's end that an action item falls due (a sprint, by default).
ACTION_DUE_DAYS = 14
#: An entry repeated (same lane, who and words) more often than this is shown once, with its count: a
#: health probe that flapped 20,000 times is one line of the timeline, not 20,000.
FOLD_REPEATS_AFTER = 10
#: The timeline shows at most this many entries (every key one first); the rest are counted in a last one.
MAX_TIMELINE_ENTRIES = 1000


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    offset: timedelta  # from T0; negative before the fault
    lane: str  # which chart lane: signal, response, action, health, drill
    marker: str  # marker style: fault, alert, ack, severity, role, comms, escalation, action, ...
    who: str
    what: str
    key: bool = False  # worth a label on the chart
    mitigating: bool = False  # the change that brought health back

    @property
    def offset_text(self) -> str:
        return signed_offset(self.offset)


@dataclass(frozen=True)
class PhaseSpan:
    """One phase of the lifecycle as the drill measured it: the one source of the chart's bars, the HTML
    cards and the postmortem's metrics table, so they can never disagree.

    ``start``/``end`` are the instants the phase's clock runs between (the seed's definition, as the engine
    measured it: ``end - wall`` is its start); ``active`` leaves out paused time and is what SLAs judge.
    """

    name: str  # DETECT, ACKNOWLEDGE, TRIAGE, MITIGATE, RESOLVE
    metric: str  # TTD, TTA, Triage, TTM, TTR
    measures: str
    start: datetime | None  # None: the clock never started (no acknowledgement: no MTTM)
    end: datetime | None  # None: not reached before the drill ended
    wall: timedelta | None = None
    active: timedelta | None = None
    check: Check | None = None
    note: str = ""  # why there is no duration: "not reached", "self-healed", "no acknowledgement"

    @property
    def duration(self) -> timedelta | None:
        """What the phase took in the SLA's terms: active time (wall time when nothing was paused)."""
        return self.active if self.active is not None else self.wall

    @property
    def seconds(self) -> int | None:
        d = self.duration
        return None if d is None else round(d.total_seconds())

    @property
    def text(self) -> str:
        """The duration as bar and card show it, or why there is none."""
        d = self.duration
        if d is None:
            return self.note or "not reached"
        return format_duration(d)

    @property
    def paused(self) -> bool:
        return self.wall is not None and self.active is not None and self.wall != self.active


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
class ActionItem:
    """One improvement per cause (a late acknowledgement fails three checks: it is one item), owned by a role
    or a team, never by a person: the review is blameless."""

    id: str
    text: str
    owner: str
    due: date
    check_ids: tuple[str, ...]
    status: str = "open"

    @property
    def check_id(self) -> str:
        return ", ".join(self.check_ids)


@dataclass(frozen=True)
class Participant:
    name: str
    roles: tuple[str, ...]  # "incident commander", "responder", ...
    first_seen: timedelta  # from T0


@dataclass(frozen=True)
class Message:
    """A message the responders posted (comms event), as they wrote it (secrets redacted)."""

    offset: timedelta
    at: datetime
    who: str
    template: str
    title: str
    text: str
    missing: tuple[str, ...]
    channel: str

    @property
    def offset_text(self) -> str:
        return signed_offset(self.offset)


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
    action_items: list[ActionItem]
    pauses: list[tuple[datetime, datetime | None]]
    health: list[tuple[datetime, bool]]
    whys: list[str]
    ic: str | None
    faults: list[str]
    hints: list[str]
    root_cause_stated: str
    went_well: list[Check]
    participants: list[Participant]
    messages: list[Message]
    impact: Impact | None
    mitigating: TimelineEntry | None  # the change that brought health back, when people made it
    ttd_human: timedelta | None = None
    events: tuple[Event, ...] = ()  # ordered, each once, secrets redacted; traffic: each group's first
    findings: tuple[str, ...] = ()  # the scorecard's, one per lesson
    #: What the drill left different from the world's baseline, after the fault's revert (world.drifted).
    left_behind: tuple[str, ...] = ()
    #: Users affected (%) over time, from the virtual users' samples (each holds until the next).
    impact_series: tuple[tuple[datetime, float], ...] = ()

    @property
    def kind(self) -> str:
        return "Drill" if self.scorecard.is_drill else "Incident"

    @property
    def first_why(self) -> str:
        return self.whys[0]

    def phase(self, name: str) -> PhaseSpan:
        return next(p for p in self.phases if p.name == name)


def signed_offset(td: timedelta) -> str:
    if td < timedelta(0):
        return "-" + format_duration(-td)
    return "+" + format_duration(td)


# ---- the timeline in words ---------------------------------------------------------------------------------


def _who(e: Event) -> str:
    return e.actor or e.source.value


def chaostoolkit_text(e: ChaosToolkitEvent) -> str:
    """One Chaos Toolkit run event in words: each activity by name with its status and duration."""
    d = e.detail
    title = d.get("experiment") or "experiment"
    match e.phase:
        case "started":
            versions = ", ".join(
                f"{name} {d[key]}"
                for key, name in (("chaoslib_version", "chaoslib"), ("chaosk8s_version", "chaosk8s"))
                if d.get(key)
            )
            return f"Chaos Toolkit experiment started: {title}" + (f" ({versions})" if versions else "")
        case "hypothesis-before" | "hypothesis-after":
            when = "before" if e.phase.endswith("before") else "after"
            met = "met" if d.get("met") else "NOT met"
            return f"Chaos Toolkit steady-state hypothesis {when} the method: {met}"
        case "activity":
            duration = d.get("duration")
            took = f" ({float(duration):.1f}s)" if isinstance(duration, int | float) else ""
            return f"Chaos Toolkit {d.get('kind') or 'activity'} {d.get('name')}: {d.get('status')}{took}"
        case "finished":
            summary = f", {d['summary']}" if d.get("summary") else ""
            deviated = ", deviated" if d.get("deviated") else ""
            return f"Chaos Toolkit experiment finished: {d.get('status')}{deviated}{summary}"
        case "method-started" | "method-completed" | "rollbacks-started" | "rollbacks-completed":
            what, _, when = e.phase.partition("-")
            return f"Chaos Toolkit {what} {when}"
    return f"Chaos Toolkit: {e.phase}"


def describe(e: Event) -> tuple[str, str, str, bool] | None:
    """(lane, marker, text, key) for one event, in neutral words: what happened, not who was at fault."""
    match e:
        case DrillStarted():
            what = f"{'Drill started' if e.is_drill else 'Incident opened'}: {e.scenario_title}"
            return "drill", "drill", what, False
        case FaultInjected():
            return "signal", "fault", f"Fault injected: {e.fault_kind} on {e.target}", True
        case FaultReverted() if e.detail.get("by_hand"):
            by, why = e.detail.get("by") or e.actor or "someone", e.detail.get("why") or ""
            what = f"Fault reverted by hand by {by}: {e.fault_kind} on {e.target}"
            what += f": {why}" if why else ""
            return "drill", "drill", what, False
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
            # The seed titles one template "(P0)"; the drill's own severity is in what was posted, not here.
            title = re.sub(r"\s*\(P[0-3]\)$", "", title)
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
            return "drill", "drill", chaostoolkit_text(e), False
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


# ---- phases: the one source of bars, cards and the metrics table -------------------------------------------


def _clock_starts(scorecard: Scorecard, timeline: Timeline) -> dict[str, datetime | None]:
    return {s.rule.id: s.start for s in spans(timeline, scorecard.true_severity, SlaTargets())}


def phase_spans(scorecard: Scorecard, timeline: Timeline) -> list[PhaseSpan]:
    """The lifecycle as the seed's clocks measure it (incident-response-framework.md:396-411), one span per
    clock: DETECT is TTD, ACKNOWLEDGE is TTA, TRIAGE is time to severity and IC, MITIGATE is TTM and RESOLVE
    is TTR. Each span's start is its end minus the engine's wall duration, so the bars follow the engine's
    clock definitions whatever they are; a clock that never stopped starts where the engine starts it.
    """
    c = scorecard.clocks
    checks = {ch.id: ch for ch in scorecard.checks}
    sev = scorecard.true_severity.value.lower()
    starts = _clock_starts(scorecard, timeline)
    t0 = c.t0

    def pick(*ids: str) -> Check | None:
        return next(
            (checks[i] for i in ids if i in checks and checks[i].status != CheckStatus.NOT_APPLICABLE), None
        )

    def span(
        name: str,
        metric: str,
        measures: str,
        end: datetime | None,
        wall: timedelta | None,
        active: timedelta | None,
        check: Check | None,
        open_start: datetime | None,
        note: str = "not reached",
    ) -> PhaseSpan:
        if end is not None and wall is not None:
            return PhaseSpan(name, metric, measures, end - wall, end, wall, active, check)
        return PhaseSpan(name, metric, measures, open_start, None, None, None, check, note)

    high = scorecard.true_severity.is_high()
    ack_check = pick(f"mtta.{sev}") if high else pick("response_time", "oncall.ack_all")
    ack_start = starts.get(f"mtta.{sev}") or starts.get("response_time") or starts.get("oncall.ack_all")
    if c.first_alert is None and c.human_detected is not None and c.ttd_human is not None:
        detect = PhaseSpan(
            "DETECT",
            "TTD",
            "first human detection − T0 (no alert fired)",
            c.human_detected - c.ttd_human,
            c.human_detected,
            c.ttd_human,
            None,
            pick("mttd"),
        )
    else:
        detect = span(
            "DETECT",
            "TTD",
            "first alert − fault (T0)",
            c.first_alert,
            c.ttd,
            c.ttd_active,
            pick("mttd"),
            t0,
            "no alert",
        )
    acknowledge = span(
        "ACKNOWLEDGE",
        "TTA",
        "acknowledged − first alert",
        c.acknowledged,
        c.tta,
        c.tta_active,
        ack_check,
        ack_start,
        "not acknowledged",
    )
    triage = span(
        "TRIAGE", "Triage", "severity and IC − T0", c.triaged, c.ttt, c.ttt_active, pick("triage.within"), t0
    )
    mitigate_check = pick(f"mttm.{sev}")
    if c.ttm is not None and c.mitigated is not None:
        mitigate = span(
            "MITIGATE",
            "TTM",
            "impact reduced − acknowledged",
            c.mitigated,
            c.ttm,
            c.ttm_active,
            mitigate_check,
            None,
        )
    elif c.mitigated_by == "system" and c.mitigated is not None:
        mitigate = PhaseSpan(
            "MITIGATE",
            "TTM",
            "impact reduced − acknowledged",
            c.acknowledged or c.mitigated,
            c.mitigated,
            None,
            None,
            mitigate_check,
            "self-healed",
        )
    elif c.acknowledged is None:
        mitigate = PhaseSpan(
            "MITIGATE",
            "TTM",
            "impact reduced − acknowledged",
            None,
            None,
            None,
            None,
            mitigate_check,
            "no acknowledgement",
        )
    else:
        mitigate = PhaseSpan(
            "MITIGATE",
            "TTM",
            "impact reduced − acknowledged",
            c.acknowledged,
            None,
            None,
            None,
            mitigate_check,
            "not reached",
        )
    resolve = span(
        "RESOLVE", "TTR", "resolved − fault (T0)", c.resolved, c.ttr, c.ttr_active, pick(f"mttr.{sev}"), t0
    )
    return [detect, acknowledge, triage, mitigate, resolve]


# ---- action items ------------------------------------------------------------------------------------------

#: Causes: checks that fail for one reason give one action item. (cause, improvement, owner)
_CAUSES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (
        (
            "mtta.",
            "escalation.p0_ack",
            "escalation.p1_ack",
            "oncall.respond_p0_p1",
            "oncall.ack_all",
            "response_time",
        ),
        "late-ack",
        "Make sure pages reach the on-call engineer and are quick to acknowledge (paging path, notification "
        "settings, escalation policy)",
        "the on-call rotation",
    ),
    (("mttd",), "detection", "Tune alerting for this failure mode so it fires sooner", "service"),
    (
        ("triage.", "roles."),
        "triage",
        "Keep the severity matrix and IC assignment at hand in the triage runbook",
        "the incident commander rotation",
    ),
    (
        ("severity.",),
        "severity",
        "Add a short severity decision aid (users affected, status, data loss, revenue) to the triage runbook",
        "the incident commander rotation",
    ),
    (("mttm.",), "mitigation", "Add this mitigation to the runbook and rehearse it", "service"),
    (("mttr.",), "resolution-time", "Clarify in the runbook how to confirm recovery and resolve", "service"),
    (
        ("resolution.",),
        "resolution",
        "Clarify in the runbook how to confirm recovery before resolving",
        "service",
    ),
    (
        ("comms.fields",),
        "comms-fields",
        "Prefill the communication templates with what is known",
        "the communications lead role",
    ),
    (
        ("comms.",),
        "comms",
        "Make the seed's communication templates and their timing part of the incident checklist",
        "the communications lead role",
    ),
    (
        ("escalation.", "oncall.escalate"),
        "escalation",
        "Put the escalation steps, contacts and deadlines in the runbook",
        "the on-call rotation",
    ),
    (
        ("postmortem.",),
        "postmortem",
        "Schedule the postmortem when the incident is resolved",
        "the incident commander rotation",
    ),
)

_FAMILY_IMPROVEMENT = {
    CheckFamily.DETECTION: ("Tune alerting for this failure mode", "service"),
    CheckFamily.ACKNOWLEDGEMENT: ("Make sure pages reach the on-call engineer", "the on-call rotation"),
    CheckFamily.TRIAGE: ("Keep the triage steps at hand in the runbook", "the incident commander rotation"),
    CheckFamily.MITIGATION: ("Add this mitigation to the runbook and rehearse it", "service"),
    CheckFamily.RESOLUTION: ("Clarify in the runbook how to confirm recovery", "service"),
    CheckFamily.COMMUNICATION: (
        "Make the communication templates part of the checklist",
        "the communications lead role",
    ),
    CheckFamily.ESCALATION: ("Put the escalation steps and contacts in the runbook", "the on-call rotation"),
    CheckFamily.DISCIPLINE: (
        "Build the runbook's do's and don'ts into the incident checklist",
        "the on-call rotation",
    ),
}


def cause_of(check: Check) -> tuple[str, str, str]:
    """(cause key, improvement, owner) of a failed check. Discipline checks are each their own cause."""
    if check.family != CheckFamily.DISCIPLINE:
        for prefixes, key, improvement, owner in _CAUSES:
            if any(check.id == p or (p.endswith(".") and check.id.startswith(p)) for p in prefixes):
                return key, improvement, owner
    improvement, owner = _FAMILY_IMPROVEMENT[check.family]
    return check.id, improvement, owner


def _evidence(c: Check) -> str:
    if c.target is not None and c.measured is not None:
        return f"{c.rule} (target {format_duration(c.target)}, measured {format_duration(c.measured)})"
    return f"{c.rule} ({c.detail})" if c.detail else c.rule


def service_owner(started: DrillStarted | None) -> str:
    if started is not None and started.team:
        return f"the {started.team} team (service owner)"
    service = started.service if started is not None else "the service"
    return f"the owner of {service}"


def _depersonalise(text: str, names: Iterable[str]) -> str:
    for name in sorted(set(names), key=len, reverse=True):
        if name:
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "a responder", text)
    return text


def action_items(
    scorecard: Scorecard,
    end: datetime,
    due_days: int = ACTION_DUE_DAYS,
    *,
    started: DrillStarted | None = None,
    people: Iterable[str] = (),
) -> list[ActionItem]:
    """One improvement per cause of the failed checks, worded about the system and the process, owned by a
    role or team (the on-call rotation, the service owner), never by a person."""
    due = (end + timedelta(days=due_days)).date()
    groups: dict[str, tuple[str, str, list[Check]]] = {}
    for c in scorecard.failed_checks:
        key, improvement, owner = cause_of(c)
        groups.setdefault(key, (improvement, owner, []))[2].append(c)
    names = [n for n in (*people, scorecard.trainee or "") if n]
    items = []
    for n, (improvement, owner, checks) in enumerate(groups.values(), start=1):
        seen = "; ".join(_evidence(c) for c in checks)
        text = _depersonalise(f"{improvement}. Seen: {seen}", names)
        who = service_owner(started) if owner == "service" else owner
        items.append(ActionItem(f"A{n}", text, who, due, tuple(c.id for c in checks)))
    return items


def improvement_of(text: str) -> str:
    """The improvement an action item's text asks for, without this drill's evidence (for de-duplication
    across drills in the monthly report)."""
    head = text.split(". Seen: ", 1)[0]
    return head.split(": ", 1)[0].strip() if head == text else head.strip()


# ---- people and messages ----------------------------------------------------------------------------------

ROLE_NAMES = {
    Role.IC: "incident commander",
    Role.TECH: "technical lead",
    Role.COMMS: "communications lead",
    Role.SME: "subject-matter expert",
}


def participants(events: Sequence[Event], t0: datetime, trainee: str | None) -> list[Participant]:
    """Everyone who acted (people and the bot, not systems), with the roles they held or played."""
    roles: dict[str, list[str]] = {}
    first: dict[str, datetime] = {}

    def add(name: str | None, role: str | None, at: datetime) -> None:
        if not name:
            return
        first.setdefault(name, at)
        have = roles.setdefault(name, [])
        if role and role not in have:
            have.append(role)

    for e in events:
        people = e.source in (Source.HUMAN, Source.BOT)
        if not people and not isinstance(e, RoleAssigned | PageSent):
            continue  # the system's own events (most of a big journal) name nobody who acted
        if isinstance(e, RoleAssigned):
            add(e.person, ROLE_NAMES.get(e.role, e.role.value), e.at)
        elif isinstance(e, Acknowledged) and people:
            add(e.actor, "on-call (acknowledged the page)", e.at)
        elif isinstance(e, Paused | Resumed) and people:
            add(e.actor, "game master", e.at)
        elif isinstance(e, PageSent) and e.to:
            add(e.to, "paged", e.at)
        elif people:
            add(e.actor, "bot responder" if e.source == Source.BOT else None, e.at)
    if trainee:
        add(trainee, "trainee", first.get(trainee, t0))
    out = []
    for name in sorted(first, key=lambda n: (first[n], n)):
        held = roles[name] or ["responder"]
        out.append(Participant(name, tuple(held), first[name] - t0))
    return out


def messages(events: Sequence[Event], t0: datetime) -> list[Message]:
    out = []
    for e in events:
        if isinstance(e, CommsPosted):
            try:
                title = comms_template(e.template).title
            except UsageError:
                title = e.template
            out.append(
                Message(
                    e.at - t0, e.at, _who(e), e.template, title, e.text, tuple(e.missing_fields), e.channel
                )
            )
    return out


# ---- 5 whys -------------------------------------------------------------------------------------------------


def five_whys(
    scorecard: Scorecard,
    started: DrillStarted | None,
    faults: list[str],
    phases: list[PhaseSpan],
    timeline: Timeline,
    mitigating: TimelineEntry | None,
) -> list[str]:
    """The 5 whys, prefilled with what the drill knows; what it cannot know is left as ``[answer]``."""
    service = started.service if started else "the service"
    c = scorecard.clocks
    by = {p.name: p for p in phases}
    whys = []
    if faults:
        whys.append(
            f"Why was `{service}` unhealthy? Because of a {faults[0]} (scenario: {scorecard.scenario_title})."
        )
    else:
        whys.append(f"Why was `{service}` unhealthy? [first answer]")
    detect = by["DETECT"]
    if c.first_alert is None:
        how = (
            f"a person noticed it {signed_offset(detect.end - c.t0)} after the fault"
            if detect.end is not None and c.t0 is not None
            else "nobody noticed it before the drill ended"
        )
        whys.append(
            f"Why was it not caught sooner? No alert fired: a detection gap ({how}). [which signal would have "
            "shown it?]"
        )
    else:
        alert = timeline.first_alert
        name = f"`{alert.alert_name}` " if alert is not None else ""
        delay = (
            f"; the rule itself waits {format_duration(c.alert_rule_delay)} (scrape interval + `for:`)"
            if c.alert_rule_delay is not None
            else ""
        )
        verdict = _verdict(detect)
        whys.append(
            f"Why was it not caught sooner? The alert {name}fired {detect.text} after the fault{verdict}{delay}. "
            "[could it fire sooner?]"
        )
    ack = by["ACKNOWLEDGE"]
    if c.acknowledged is None:
        whys.append(
            "Why did the response start late? No acknowledgement was recorded. [did the page arrive?]"
        )
    else:
        whys.append(
            f"Why did the response take as long as it did? The page was acknowledged {ack.text} after the "
            f"first signal{_verdict(ack)}. [what was in the way?]"
        )
    mit = by["MITIGATE"]
    if c.mitigated is None:
        whys.append(
            "Why was impact not reduced? It was not reduced before the drill ended. [what was missing?]"
        )
    elif c.mitigated_by == "system":
        whys.append(
            "Why did impact end? The system recovered on its own (self-healing); no human change was "
            "needed. [is that what we expect of it?]"
        )
    else:
        change = f" by {mitigating.what.split(' (')[0].lower()}" if mitigating is not None else ""
        at = f" at {mitigating.offset_text}" if mitigating is not None else ""
        whys.append(
            f"Why did mitigation take {mit.text} after acknowledgement? Health came back after the "
            f"{change.removeprefix(' by ') or 'responders’ change'}{at}{_verdict(mit)}. [what would make it quicker?]"
        )
    whys.append(
        f"Why could the fault reach `{service}` at all? [root cause: what let it through review, tests or the "
        "rollout?]"
    )
    return whys


def distinct_findings(findings: Sequence[str]) -> list[str]:
    """The findings, one per lesson: three checks failed by one late acknowledgement give three findings
    with the same advice (the text after the first "; "); the first, most important, is kept."""
    seen: set[str] = set()
    out = []
    for f in findings:
        advice = f.split("; ", 1)[1] if "; " in f else f
        if advice not in seen:
            seen.add(advice)
            out.append(f)
    return out


def _verdict(p: PhaseSpan) -> str:
    if p.check is None or p.check.target is None:
        return ""
    met = {CheckStatus.PASS: "met", CheckStatus.FAIL: "missed"}.get(p.check.status)
    if met is None:
        return ""
    return f" (target {format_duration(p.check.target)}: {met})"


# ---- the whole view ----------------------------------------------------------------------------------------


def mitigating_change(events: Sequence[Event], clocks: Clocks) -> ActionObserved | None:
    """The change that brought health back: the last one a responder (or the bot) made before mitigation."""
    if clocks.mitigated_by != "human" or clocks.mitigated is None or clocks.t0 is None:
        return None
    candidates = [
        e
        for e in events
        if isinstance(e, ActionObserved)
        and e.actor_kind in PEOPLE
        and e.kind not in NOT_CHANGES
        and clocks.t0 <= e.at <= clocks.mitigated
    ]
    return candidates[-1] if candidates else None


def build_view(
    scorecard: Scorecard,
    events: Sequence[Event],
    *,
    due_days: int = ACTION_DUE_DAYS,
    secrets: Iterable[str] | None = None,
    traffic: Traffic | None = None,
) -> DrillView:
    """Everything a report shows. Every text people typed has been through redaction by the time it is here
    (:mod:`drills.reporting.redaction`): renderers need not think about secrets.

    ``traffic``: the observer traffic split off ``events`` (``engine.traffic.split_traffic``), shown as one
    timeline entry per group. Long repeats are folded (:data:`FOLD_REPEATS_AFTER`) and the timeline is
    bounded (:data:`MAX_TIMELINE_ENTRIES`), so a 200k-line journal gives a report people can read."""
    redactor = report_redactor(secrets)
    scorecard = scrub_scorecard(scorecard, redactor)
    groups = _scrubbed_groups(traffic, redactor)
    last_traffic = traffic.last_at if traffic is not None else None
    firsts = [g.first for g in groups]
    # Each group of traffic is in the timeline by its first action (the only one a report shows); traffic
    # changes no clock, so the timeline is the journal's.
    timeline = build_timeline([*scrub_events(events, redactor), *firsts], now=last_traffic)
    evs = list(timeline.events)
    started = timeline.started
    clocks = scorecard.clocks
    first_at = _first(evs[0].at if evs else None, *(a.at for a in firsts)) or scorecard.started
    if first_at is None:
        raise UsageError("a report needs a journal with at least one event", hint="check the journal path")
    t0 = clocks.t0 or (started.at if started else first_at)
    last_at = max(t for t in (evs[-1].at if evs else None, last_traffic, first_at) if t is not None)
    end = max(t for t in (clocks.ended, clocks.resolved, last_at) if t is not None)

    fix = mitigating_change(evs, clocks)
    raised = {r.action.id: r for r in timeline.raised_impact}
    entries = []
    mitigating: TimelineEntry | None = None
    group_of = {id(g.first): g for g in groups}
    words = _Describer()
    described: list[tuple[Event, str, str, str, str, bool]] = []
    # (lane, marker, who, what) -> [count, last time]: repeats beyond FOLD_REPEATS_AFTER show once.
    repeats: dict[tuple[str, str, str, str], list[Any]] = {}
    # The events of each type, gathered in this one pass over them (event types are leaf classes).
    of_type: dict[type[Event], list[Any]] = {}
    for e in evs:
        of_type.setdefault(type(e), []).append(e)
        group = group_of.get(id(e))
        words_of = words(e) if group is None or group.count == 1 else _describe_group(group, t0)
        if words_of is None:
            continue
        lane, marker, what, key = words_of
        rise = raised.get(e.id)
        if rise is not None:
            # A change after which more users were affected: recorded as such, and worth a label.
            what = f"{what}; raised impact: users affected {rise.before_pct:.1f} % -> {rise.after_pct:.1f} %"
            if rise.features_down:
                what += f" ({', '.join(rise.features_down)} down)"
            marker, key = "raised-impact", True
        key = key or e is fix
        who = _who(e)
        described.append((e, lane, marker, who, what, key))
        if not key:
            seen = repeats.get((lane, marker, who, what))
            if seen is None:
                repeats[(lane, marker, who, what)] = [1, e.at]
            else:
                seen[0] += 1
                seen[1] = e.at
    for e, lane, marker, who, what, key in described:
        if not key:
            seen = repeats[(lane, marker, who, what)]
            count = seen[0]
            if count < 0:
                continue  # a folded repeat, shown at its first
            if count > FOLD_REPEATS_AFTER:
                seen[0] = -1
                what += f" (and {count - 1:,} more times until {signed_offset(seen[1] - t0)})"
        entry = TimelineEntry(e.at, e.at - t0, lane, marker, who, what, key, e is fix)
        if e is fix:
            mitigating = entry
        entries.append(entry)
    entries = _bounded(entries, t0)

    # The incident commander now: the last one assigned (the role can be handed over).
    roles: list[RoleAssigned] = of_type.get(RoleAssigned, [])
    ic = next((e.person for e in reversed(roles) if e.role == Role.IC), None)
    faults = [f"`{e.fault_kind}` fault on {e.target}" for e in of_type.get(FaultInjected, [])]
    phases = phase_spans(scorecard, timeline)
    people = participants(evs, t0, scorecard.trainee)
    return DrillView(
        scorecard=scorecard,
        started=started,
        incident_id=incident_id(started.at if started else first_at),
        t0=t0,
        end=end,
        timeline=entries,
        phases=phases,
        markers=sla_markers(scorecard, timeline),
        action_items=action_items(scorecard, end, due_days, started=started, people=[p.name for p in people]),
        pauses=list(timeline.pauses),
        health=[(e.at, e.healthy) for e in of_type.get(HealthChanged, [])],
        whys=five_whys(scorecard, started, faults, phases, timeline, mitigating),
        ic=ic,
        faults=faults,
        hints=[_hint_text(e, started) for e in of_type.get(HintUsed, [])],
        root_cause_stated=timeline.resolved.root_cause if timeline.resolved else "",
        went_well=[c for c in scorecard.checks if c.status == CheckStatus.PASS],
        participants=people,
        messages=messages(of_type.get(CommsPosted, []), t0),
        impact=started.impact if started else None,
        mitigating=mitigating,
        ttd_human=clocks.ttd_human,
        events=tuple(evs),
        findings=tuple(distinct_findings(scorecard.findings)),
        left_behind=tuple(d.text for e in of_type.get(WorldDrifted, []) for d in e.differences),
        impact_series=tuple((p.at, p.users_affected_pct) for p in timeline.impact),
    )


class _Describer:
    """:func:`describe`, once per distinct event content: a big journal says the same thing thousands of
    times (the same probe result, the same evidence read), and only id and time differ."""

    def __init__(self) -> None:
        self._known: dict[object, tuple[str, str, str, bool] | None] = {}
        self._content: dict[type[Event], Callable[[dict[str, object]], object]] = {}

    def __call__(self, e: Event) -> tuple[str, str, str, bool] | None:
        cls = type(e)
        content = self._content.get(cls)
        if content is None:
            names = [n for n in cls.model_fields if n not in ("id", "at", "recorded_at")]
            content = self._content[cls] = itemgetter(*names)
        key = (cls, content(e.__dict__))
        try:
            known = self._known.get(key, _UNKNOWN)
        except TypeError:  # a list or mapping among the values: rare event types, described each time
            return describe(e)
        if known is _UNKNOWN:
            known = self._known[key] = describe(e)
        return known  # type: ignore[return-value]


_UNKNOWN = object()


def _scrubbed_groups(traffic: Traffic | None, redactor: Redactor) -> list[ActionGroup]:
    if traffic is None:
        return []
    groups = list(traffic.groups.values())
    firsts = scrub_events([g.first for g in groups], redactor)
    out = []
    for g, first in zip(groups, firsts, strict=True):
        assert isinstance(first, ActionObserved)
        out.append(ActionGroup(first, g.last_at, g.count, g.same_object, g.same_detail))
    return out


def _describe_group(g: ActionGroup, t0: datetime) -> tuple[str, str, str, bool] | None:
    """A group of the observer's traffic as one entry: its first action, what they share, how many."""
    shown = g.first.model_copy(update={"object": g.object, "detail": g.detail})
    described = describe(shown)
    if described is None:
        return None
    lane, marker, what, key = described
    return lane, marker, f"{what} ×{g.count:,} until {signed_offset(g.last_at - t0)}", key


def _bounded(entries: list[TimelineEntry], t0: datetime) -> list[TimelineEntry]:
    """At most :data:`MAX_TIMELINE_ENTRIES`: every key entry, then the others in time order; a last entry
    says how many are left out (all are in the journal)."""
    if len(entries) <= MAX_TIMELINE_ENTRIES:
        return entries
    room = MAX_TIMELINE_ENTRIES - 1 - sum(e.key for e in entries)
    kept = []
    for e in entries:
        if e.key:
            kept.append(e)
        elif room > 0:
            kept.append(e)
            room -= 1
    left_out = len(entries) - len(kept)
    last = entries[-1].at
    kept.append(
        TimelineEntry(
            last,
            last - t0,
            "drill",
            "drill",
            "drills",
            f"{left_out:,} more events are not shown here; the journal has every one",
        )
    )
    return kept


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
    "Message",
    "Participant",
    "PhaseSpan",
    "SlaMarker",
    "TimelineEntry",
    "build_view",
    "describe",
    "severity_call",
    "signed_offset",
]
