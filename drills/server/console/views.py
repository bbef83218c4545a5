"""What each page of the web console shows, worked out from a drill's journal at an explicit ``now``.

The console draws the same facts as the terminal dashboard (:mod:`drills.reporting.dashboard`): the phase and
the SLA budgets come from the engine's live view (:func:`drills.engine.timeline.live_view`), the journal's
lines are the report's blameless sentences (:func:`drills.reporting.view.describe`), the comms forms are the
seed's templates prefilled by :mod:`drills.engine.comms`. This module only gathers them into plain values for
the templates: no clock, no I/O, so the pages are rendered in tests from synthetic journals.

Like the dashboard, nothing here gives away what the drill measures: the true severity, the expected
mitigations and the text of hints not yet taken are never in a view. Every text people typed is passed
through the reports' secret redaction first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drills.engine import comms
from drills.engine.timeline import Budget, Phase, build, live_view, ordered
from drills.model.durations import format_duration
from drills.model.events import (
    Acknowledged,
    AlertFired,
    CommsPosted,
    Detected,
    DrillEnded,
    DrillStarted,
    Event,
    HealthChanged,
    HintUsed,
    ImpactSampled,
    PageSent,
    Role,
    RoleAssigned,
)
from drills.model.policy import SlaTargets
from drills.model.severity import Severity
from drills.reporting.dashboard import offset_from as offset_text
from drills.reporting.dashboard import short_actor
from drills.reporting.redaction import report_redactor, scrub_events
from drills.reporting.view import describe

#: Whom a responder escalates to, as the seed's escalation paths name them (engine.timeline's ranks).
ESCALATION_TARGETS: tuple[tuple[str, str], ...] = (
    ("engineering-lead", "Engineering lead"),
    ("engineering-leadership", "Engineering leadership"),
    ("executives", "Executives"),
    ("sme", "Subject-matter expert"),
)
ROLE_NAMES = {
    Role.IC: "Incident commander",
    Role.TECH: "Technical lead",
    Role.COMMS: "Communications lead",
    Role.SME: "Subject-matter expert",
}
#: Labels of the comms fields whose placeholder does not say what they are.
FIELD_LABELS = {
    "severity": "Severity (P0-P3)",
    "ic": "Incident commander",
    "team": "Response team",
    "incident_id": "Incident id",
    "update_number": "Update number",
    "time": "Time (HH:MM)",
    "status": "Current status",
}
STATUS_PAGE_STATES = {
    "statuspage_investigating": "Investigating",
    "statuspage_identified": "Identified",
    "statuspage_resolved": "Resolved",
}


# ---- the parts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalLine:
    id: str
    offset: str
    who: str
    lane: str
    text: str
    key: bool


@dataclass(frozen=True)
class BudgetRow:
    check_id: str
    name: str
    target: str
    used: str
    left: str
    share: int  # percent of the target used, 0-100 (the bar)
    level: str  # ok, warn, breached
    breached: bool

    @classmethod
    def of(cls, b: Budget) -> BudgetRow:
        share = 1.0 if b.target <= timedelta(0) else min(b.used / b.target, 1.0)
        level = "breached" if b.breached else "warn" if share >= 0.75 else "ok"
        left = f"breached by {format_duration(-b.left)}" if b.breached else format_duration(b.left)
        return cls(
            b.check_id,
            b.name,
            format_duration(b.target),
            format_duration(b.used),
            left,
            round(share * 100),
            level,
            b.breached,
        )


@dataclass(frozen=True)
class Health:
    state: str  # healthy, unhealthy, unknown
    reason: str
    since: str  # offset of the last change
    changes: tuple[JournalLine, ...]


@dataclass(frozen=True)
class Impact:
    """What the virtual users saw last (the journal's latest ``impact.sample``), and the worst so far."""

    measured: bool
    status: str = "unknown"
    users_affected_pct: float = 0.0
    users_affected: int = 0
    users_active: int = 0
    error_rate_pct: float = 0.0
    p99_ms: float = 0.0
    features_down: tuple[str, ...] = ()
    peak_affected_pct: float = 0.0
    peak_p99_ms: float = 0.0
    since: str = ""


@dataclass(frozen=True)
class HintRow:
    number: int
    cost: int
    state: str  # used, available, waiting
    text: str  # only once used
    available_in: str


@dataclass(frozen=True)
class Header:
    drill_id: str
    title: str
    service: str
    namespace: str
    mode: str
    incident_id: str
    phase: str
    paused: bool
    ended: bool
    outcome: str
    elapsed: str
    active: str
    budget_left: str
    declared: str  # the declared severity, "" when none yet


@dataclass(frozen=True)
class Person:
    """The person looking at the page, as the server authenticated them."""

    name: str
    role: str  # the drill role the game master gave them: gm, ic, tech, comms, sme, observer, responder

    @property
    def is_game_master(self) -> bool:
        return self.role == "gm"

    @property
    def can_respond(self) -> bool:
        return self.role not in ("observer",)


# ---- the pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GameMasterView:
    header: Header
    budgets: tuple[BudgetRow, ...]
    budgets_note: str
    health: Health
    impact: Impact
    hints: tuple[HintRow, ...]
    journal: tuple[JournalLine, ...]
    people: tuple[tuple[str, str], ...]  # (person, roles they took)


@dataclass(frozen=True)
class CommsFieldForm:
    key: str
    label: str
    value: str
    required: bool
    missing: bool  # required and not filled in by what the drill knows


@dataclass(frozen=True)
class CommsForm:
    template: str
    title: str
    audience: str
    citation: str
    fields: tuple[CommsFieldForm, ...]
    preview: str  # the template with what the drill knows filled in

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields if f.missing)


@dataclass(frozen=True)
class PageInfo:
    """What paged the responder: the page, the alert or detection behind it."""

    paged: bool
    channel: str
    to: str
    at: str
    alert: str
    signal_at: str


@dataclass(frozen=True)
class ResponderView:
    header: Header
    page: PageInfo
    acknowledged_by: str
    roles: tuple[tuple[str, str, str], ...]  # (role id, role name, who holds it)
    comms: tuple[CommsForm, ...]
    posted: tuple[JournalLine, ...]
    budgets: tuple[BudgetRow, ...]
    health: Health
    severities: tuple[str, ...] = tuple(s.value for s in Severity)
    escalation_targets: tuple[tuple[str, str], ...] = ESCALATION_TARGETS
    role_choices: tuple[tuple[str, str], ...] = tuple((r.value, n) for r, n in ROLE_NAMES.items())


@dataclass(frozen=True)
class StatusPost:
    state: str
    at: str
    text: str


@dataclass(frozen=True)
class StatusPageView:
    service: str
    state: str  # operational, investigating, identified, resolved
    headline: str
    posts: tuple[StatusPost, ...] = field(default_factory=tuple)


# ---- building them --------------------------------------------------------------------------------------


def _scrubbed(events: Iterable[Event], secrets: Iterable[str] | None) -> list[Event]:
    return scrub_events(ordered(events), report_redactor(secrets))


def _header(evs: Sequence[Event], now: datetime, targets: SlaTargets) -> tuple[Header, list[BudgetRow], str]:
    view = live_view(evs, now, targets)
    tl = build(evs, now=now)
    started = tl.started
    ended = tl.ended
    budget_left = ""
    if started is not None and started.budget_seconds is not None and view.elapsed_active is not None:
        left = timedelta(seconds=started.budget_seconds) - view.elapsed_active
        budget_left = format_duration(max(left, timedelta(0)))
    declared = tl.severity_final.severity.value if tl.severity_final is not None else ""
    header = Header(
        drill_id=started.drill_id if started else "",
        title=started.scenario_title if started else "(no drill.started yet)",
        service=started.service if started else "",
        namespace=started.namespace if started else "",
        mode=started.mode.value if started else "",
        incident_id=comms.incident_id(started.at) if started else "",
        phase=view.phase.value if view.phase != Phase.NOT_STARTED else "NOT STARTED",
        paused=view.paused,
        ended=ended is not None,
        outcome=ended.outcome.value if ended else "",
        elapsed=format_duration(view.elapsed) if view.elapsed is not None else "-",
        active=format_duration(view.elapsed_active) if view.elapsed_active is not None else "-",
        budget_left=budget_left,
        declared=declared,
    )
    note = "" if declared else "Severity-specific budgets start when a severity is declared."
    return header, [BudgetRow.of(b) for b in view.budgets], note


def _origin(evs: Sequence[Event]) -> datetime | None:
    tl = build(evs)
    return tl.t0 or (tl.started.at if tl.started else None)


def journal_lines(events: Sequence[Event], origin: datetime | None) -> list[JournalLine]:
    """The journal in the report's words, one line per event that has words (impact samples do not)."""
    out = []
    for e in events:
        described = describe(e)
        if described is None:
            continue
        lane, _marker, text, key = described
        who = short_actor(e.actor) or e.source.value
        out.append(JournalLine(e.id, offset_text(e.at, origin), who, lane, text, key))
    return out


def _health(evs: Sequence[Event], origin: datetime | None) -> Health:
    changes = [e for e in evs if isinstance(e, HealthChanged)]
    lines = tuple(journal_lines(changes, origin))
    if not changes:
        return Health("unknown", "no health probe has reported yet", "", lines)
    last = changes[-1]
    return Health(
        "healthy" if last.healthy else "unhealthy", last.reason, offset_text(last.at, origin), lines
    )


def impact(evs: Sequence[Event], origin: datetime | None) -> Impact:
    samples = [e for e in evs if isinstance(e, ImpactSampled)]
    if not samples:
        return Impact(measured=False)
    last = samples[-1]
    error = 100.0 * last.failed_per_second / last.requests_per_second if last.requests_per_second else 0.0
    return Impact(
        measured=True,
        status=last.status,
        users_affected_pct=last.users_affected_pct,
        users_affected=last.users_affected,
        users_active=last.users_active,
        error_rate_pct=round(error, 1),
        p99_ms=last.p99_ms,
        features_down=tuple(last.features_down),
        peak_affected_pct=max(s.users_affected_pct for s in samples),
        peak_p99_ms=max(s.p99_ms for s in samples),
        since=offset_text(last.at, origin),
    )


def _hints(started: DrillStarted | None, evs: Sequence[Event], now: datetime) -> list[HintRow]:
    if started is None:
        return []
    used = {e.index: e for e in evs if isinstance(e, HintUsed)}
    tl = build(evs, now=now)
    elapsed = tl.active(tl.t0, now) if tl.t0 is not None else None
    rows = []
    for i, h in enumerate(started.hints):
        if i in used:
            rows.append(HintRow(i + 1, h.cost, "used", used[i].text or h.text, ""))
        elif elapsed is not None and elapsed.total_seconds() >= h.after_seconds:
            rows.append(HintRow(i + 1, h.cost, "available", "", ""))
        else:
            wait = timedelta(seconds=h.after_seconds) - (elapsed or timedelta(0))
            rows.append(HintRow(i + 1, h.cost, "waiting", "", format_duration(wait)))
    return rows


def _people(evs: Sequence[Event]) -> list[tuple[str, str]]:
    roles: dict[str, list[str]] = {}
    for e in evs:
        if isinstance(e, RoleAssigned):
            roles.setdefault(e.person, [])
            if e.role.value not in roles[e.person]:
                roles[e.person].append(e.role.value)
        elif e.source.value == "human" and e.actor:
            roles.setdefault(short_actor(e.actor), [])
    return [(p, ", ".join(r) or "responder") for p, r in roles.items()]


def game_master_view(
    events: Sequence[Event],
    now: datetime,
    targets: SlaTargets,
    *,
    secrets: Iterable[str] | None = None,
    recent: int = 200,
) -> GameMasterView:
    evs = _scrubbed((e for e in events if e.at <= now), secrets)
    header, budgets, note = _header(evs, now, targets)
    origin = _origin(evs)
    started = next((e for e in evs if isinstance(e, DrillStarted)), None)
    return GameMasterView(
        header=header,
        budgets=tuple(budgets),
        budgets_note=note,
        health=_health(evs, origin),
        impact=impact(evs, origin),
        hints=tuple(_hints(started, evs, now)),
        journal=tuple(journal_lines(evs, origin)[-recent:]),
        people=tuple(_people(evs)),
    )


def comms_form(template: str, context: dict[str, str]) -> CommsForm:
    """One template as a form: a field per placeholder, prefilled where the drill knows the value."""
    t = comms.get_template(template)
    by_key: dict[str, comms.CommsField] = {}
    for f in t.fields:
        by_key.setdefault(f.key, f)
    required = set(t.required_keys)
    fields = []
    for key in t.keys:
        f = by_key[key]
        value = context.get(key, "")
        if key in ("ic", "team") and value:
            value = "@" + value.lstrip("@")
        label = FIELD_LABELS.get(key) or f.token.replace("[", "").replace("]", "").strip("@# ")
        label = label[:1].upper() + label[1:]
        fields.append(CommsFieldForm(key, label, value, key in required, key in required and not value))
    return CommsForm(t.id, t.title, t.audience, t.citation, tuple(fields), comms.render(t, context))


def filled_comms(template: str, values: dict[str, str]) -> str:
    """The message a comms form's fields make: the seed's text with each filled field written in."""
    t = comms.get_template(template)
    cleaned = {k: v.strip() for k, v in values.items() if k in t.keys and v.strip()}
    for key in ("ic", "team"):
        if key in cleaned:
            cleaned[key] = cleaned[key].lstrip("@")
    return comms.render(t, cleaned)


def _page(evs: Sequence[Event], origin: datetime | None) -> PageInfo:
    page = next((e for e in evs if isinstance(e, PageSent)), None)
    alert = next((e for e in evs if isinstance(e, AlertFired)), None)
    detected = next((e for e in evs if isinstance(e, Detected)), None)
    signal: AlertFired | Detected | None = alert or detected
    what = (
        f"Alert {alert.alert_name}"
        if alert
        else (f"Noticed by {short_actor(detected.actor)}: {detected.how}" if detected else "")
    )
    return PageInfo(
        paged=page is not None,
        channel=page.channel if page else "",
        to=page.to or "" if page else "",
        at=offset_text(page.at, origin) if page else "",
        alert=what,
        signal_at=offset_text(signal.at, origin) if signal else "",
    )


def responder_view(
    events: Sequence[Event],
    now: datetime,
    targets: SlaTargets,
    *,
    secrets: Iterable[str] | None = None,
) -> ResponderView:
    evs = _scrubbed((e for e in events if e.at <= now), secrets)
    header, budgets, _note = _header(evs, now, targets)
    origin = _origin(evs)
    ack = next((e for e in evs if isinstance(e, Acknowledged)), None)
    holders: dict[Role, str] = {}
    for e in evs:
        if isinstance(e, RoleAssigned):
            holders[e.role] = e.person
    context = comms.drill_context(evs, now)
    posted = [e for e in evs if isinstance(e, CommsPosted)]
    return ResponderView(
        header=header,
        page=_page(evs, origin),
        acknowledged_by=short_actor(ack.actor) or "someone" if ack else "",
        roles=tuple((r.value, ROLE_NAMES[r], holders.get(r, "")) for r in Role),
        comms=tuple(comms_form(t, context) for t in comms.TEMPLATE_IDS),
        posted=tuple(journal_lines(posted, origin)),
        budgets=tuple(budgets),
        health=_health(evs, origin),
    )


def status_page_view(events: Sequence[Event], *, secrets: Iterable[str] | None = None) -> StatusPageView:
    """The public status page: only what was posted with the status-page templates, newest first."""
    evs = _scrubbed(events, secrets)
    started = next((e for e in evs if isinstance(e, DrillStarted)), None)
    posts = [e for e in evs if isinstance(e, CommsPosted) and e.template in STATUS_PAGE_STATES]
    service = started.service if started else "service"
    shown = tuple(
        StatusPost(STATUS_PAGE_STATES[p.template], comms.format_time(p.at), p.text or "(no text)")
        for p in reversed(posts)
    )
    if not posts:
        return StatusPageView(service, "operational", "All systems operational", shown)
    state = STATUS_PAGE_STATES[posts[-1].template]
    headline = {
        "Investigating": "We are investigating an issue",
        "Identified": "The issue has been identified",
        "Resolved": "The issue has been resolved",
    }[state]
    return StatusPageView(service, state.lower(), headline, shown)


def is_over(events: Sequence[Event]) -> bool:
    return any(isinstance(e, DrillEnded) for e in events)


__all__ = [
    "ESCALATION_TARGETS",
    "BudgetRow",
    "CommsForm",
    "GameMasterView",
    "Header",
    "Impact",
    "JournalLine",
    "Person",
    "ResponderView",
    "StatusPageView",
    "comms_form",
    "filled_comms",
    "game_master_view",
    "impact",
    "is_over",
    "journal_lines",
    "responder_view",
    "short_actor",
    "status_page_view",
]
