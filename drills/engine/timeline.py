"""The drill's clocks, read from its journal: when the fault began, when people saw, acted and recovered.

This is what no chaos tool knows and drills does: the true fault time (T0) next to every human step, so each
phase of the seed's lifecycle (DETECT -> TRIAGE -> MITIGATE -> RESOLVE -> POSTMORTEM) can be timed against
the SLAs. Everything here is a pure function of the events (and of an explicit ``now`` for the live view):
no clock is read, so the same journal always gives the same clocks.

Journals arrive imperfect: an alert's time is its own ``startsAt`` (written after the fact, so out of order),
and webhooks retry (the same event twice). Events are therefore ordered by when they happened and
de-duplicated by ``id`` before anything is measured (see :func:`ordered`).

The rules of measurement are in docs/scoring.md; the ones that need judgement, in short:

- Mitigation is *observed*, not claimed: the start of the first healthy period that lasts the scenario's
  exit window (``healthy_for_seconds``, wall time: it is about the system). It is credited to the people
  only if a responder (or the bot) changed something between T0 and that start; otherwise the system healed
  itself (or drills' own revert did) and no human time to mitigate is claimed. A journal with no health
  observations at all (a real incident's) falls back to the first ``mitigated`` claim, then the first
  resolution.
- A relapse (healthy -> unhealthy once mitigated or resolved) is a reopen; an explicit ``reopened`` counts
  only if the incident was not already reopened by a relapse. The first mitigation is kept; the resolution
  is the last ``resolved`` not followed by a reopen.
- With virtual users (``impact.sample`` events), mitigation is *impact reduced*: users affected back under
  the scenario's threshold for the exit window (:func:`drills.engine.measured.impact_reduced_at`); the
  probes' healthy period is kept beside it (``health_mitigated``). A responder change followed within
  :data:`RAISE_WINDOW` by a rise of users affected is recorded as one that raised impact.
- Pauses (``drill.paused`` .. ``drill.resumed``) are cut out of every *active* duration; a pause never
  resumed runs to the end. SLAs are judged on active time; wall time is shown next to it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from drills.engine.measured import ImpactPoint, impact_reduced_at, points
from drills.engine.rules import RULE_BY_ID, RULES, Rule
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    AlertFired,
    CommsPosted,
    Detected,
    DrillEnded,
    DrillStarted,
    EscalationNotified,
    Event,
    FaultInjected,
    FaultReverted,
    HealthChanged,
    ImpactSampled,
    Mitigated,
    Paused,
    PostmortemCompleted,
    Reopened,
    Resolved,
    Resumed,
    Role,
    RoleAssigned,
    SeverityDeclared,
    Source,
)
from drills.model.policy import SlaTargets
from drills.model.scorecard import Clocks
from drills.model.severity import Severity

ZERO = timedelta(0)

#: Observations of the cluster's own state, and reads: not changes anyone made to it.
NOT_CHANGES = frozenset({ActionKind.EVIDENCE_READ, ActionKind.NODE_NOT_READY, ActionKind.NODE_READY})
#: Changes that destroy evidence whatever the observer's ``destructive`` flag says.
DESTRUCTIVE_KINDS = frozenset(
    {ActionKind.POD_DELETED, ActionKind.DELETED, ActionKind.DRAIN, ActionKind.EVICT, ActionKind.LOGS_DELETED}
)
PEOPLE = frozenset({ActorKind.RESPONDER, ActorKind.BOT})
PEOPLE_SOURCES = frozenset({Source.HUMAN, Source.BOT})
#: Messages that tell people where the incident stands: each restarts the status-update clock.
UPDATE_TEMPLATES = frozenset({"initial_alert", "status_update", "resolution"})

# At one instant, the lifecycle order: the drill starts before its fault, the fault before anything it
# causes, health is settled before a resolution reads it, and the drill ends last. Healthy sorts before
# unhealthy so a same-instant flap ends unhealthy (the cautious reading).
_RANK = {
    "drill.started": 0,
    "fault.injected": 1,
    "chaostoolkit.event": 2,
    "action.observed": 3,
    "fault.reverted": 4,
    "health.changed": 5,
    # What users saw is an observation of the system like health: after the changes that cause it, before
    # the alert and any human step that reads it.
    "impact.sample": 5,
    "alert.fired": 6,
    "page.sent": 7,
    "detected": 8,
    "acknowledged": 9,
    "severity.declared": 10,
    "role.assigned": 11,
    "mitigated": 20,
    "resolved": 21,
    "reopened": 22,
    "alert.resolved": 23,
    "postmortem.completed": 24,
    "drill.paused": 25,
    "drill.resumed": 26,
    "drill.ended": 30,
}
_MIDDLE = 15

#: A responder change followed this soon by a rise of users affected raised the impact (the model reacts
#: within a second or two of the observer seeing the change).
RAISE_WINDOW = timedelta(seconds=10)
#: The rise that counts, in points of users affected (the sampling's own noise is under 0.5).
RAISE_MIN_PCT = 5.0
#: How long a higher share must hold to count: a rollout's pods swapping within a second show as one
#: sample of a few points more, which no user lives through as an outage.
RAISE_HOLD = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RaisedImpact:
    """A responder's change after which more users were affected."""

    action: ActionObserved
    at: datetime  # when the rise was seen
    before_pct: float
    after_pct: float
    features_down: tuple[str, ...]  # features that went down with it

    def describe(self) -> str:
        what = f"{self.action.kind.value} {self.action.object}".strip()
        down = f"; {', '.join(self.features_down)} went down" if self.features_down else ""
        return (
            f"{what} by {self.action.actor} raised impact: users affected {self.before_pct:.1f} % -> "
            f"{self.after_pct:.1f} % within {(self.at - self.action.at).total_seconds():.0f}s{down}"
        )


def _key(e: Event) -> tuple[datetime, int, int, str]:
    flap = 1 if isinstance(e, HealthChanged) and not e.healthy else 0
    return (e.at, _RANK.get(e.type, _MIDDLE), flap, e.id)


def ordered(events: Iterable[Event]) -> list[Event]:
    """Events by the time they happened, each ``id`` once.

    Ties are broken by lifecycle order and then by ``id`` rather than by arrival, so that any delivery order
    of the same journal gives the same result (``score`` is a function of the set of events).
    """
    seen: set[str] = set()
    out: list[Event] = []
    for e in sorted(events, key=_key):
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


class Phase(StrEnum):
    """Where the incident stands, in the seed's lifecycle (incident-response-framework.md:10)."""

    NOT_STARTED = "NOT_STARTED"
    DETECT = "DETECT"
    TRIAGE = "TRIAGE"
    MITIGATE = "MITIGATE"
    RESOLVE = "RESOLVE"
    POSTMORTEM = "POSTMORTEM"
    PAUSED = "PAUSED"


Status = Literal["open", "mitigated", "resolved"]

_RANKS = {
    "engineering-lead": 1,
    "eng-lead": 1,
    "lead": 1,
    "engineering-leadership": 2,
    "eng-leadership": 2,
    "leadership": 2,
    "executives": 3,
    "executive": 3,
    "executive-leadership": 3,
    "execs": 3,
    "exec": 3,
}
ENG_LEAD, LEADERSHIP, EXECUTIVES = 1, 2, 3


def escalation_rank(whom: str) -> int:
    """How high up an escalation went: 1 engineering lead, 2 engineering leadership, 3 executives, 0 other.

    A rule asking for one level is met by that level or a higher one: telling leadership also tells the lead.
    """
    return _RANKS.get(whom.strip().lower().replace("_", "-").replace(" ", "-"), 0)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything the clocks and checks need, gathered in one pass over the ordered events."""

    events: tuple[Event, ...]
    started: DrillStarted | None
    t0: datetime | None
    origin: datetime | None
    horizon: datetime | None
    ended: DrillEnded | None
    first_alert: AlertFired | None
    human_detected: Detected | None
    acknowledged: Acknowledged | None
    severity_first: SeverityDeclared | None
    severity_final: SeverityDeclared | None
    ic_assigned: RoleAssigned | None
    pauses: tuple[tuple[datetime, datetime | None], ...]
    healthy_for: timedelta
    has_health: bool
    healthy_now: bool | None
    mitigated: datetime | None
    mitigated_by: Literal["human", "system", "none"]
    reopens: int
    status: Status
    resolutions: tuple[Resolved, ...]
    resolved: Resolved | None
    #: Health at the final resolution: observed, else the resolver's own ``healthy_at_resolve``; None unknown.
    health_at_resolve: bool | None
    comms: tuple[CommsPosted, ...]
    escalations: tuple[EscalationNotified, ...]
    actions: tuple[ActionObserved, ...]
    postmortems: tuple[PostmortemCompleted, ...]
    #: The virtual users' samples (empty without them), in time order.
    impact: tuple[ImpactPoint, ...] = ()
    impact_threshold_pct: float = 1.0
    #: Users affected back under the threshold for the window; None if not (yet), or nobody was affected.
    impact_reduced: datetime | None = None
    #: The steady-state probes' mitigation, kept beside impact reduced.
    health_mitigated: datetime | None = None
    health_mitigated_by: Literal["human", "system", "none"] = "none"
    raised_impact: tuple[RaisedImpact, ...] = ()
    #: Users affected (%) in force at the final resolution; None without samples or resolution.
    affected_at_resolve: float | None = None

    # ---- instants -----------------------------------------------------------------------------------------

    @property
    def first_signal(self) -> datetime | None:
        """The first moment anyone could know: the first alert or human detection."""
        times = [e.at for e in (self.first_alert, self.human_detected) if e is not None]
        return min(times) if times else None

    @property
    def tta_reference(self) -> datetime | None:
        """Acknowledgement is timed from the alert; with no alert, from human detection, else from T0."""
        if self.first_alert is not None:
            return self.first_alert.at
        if self.human_detected is not None:
            return self.human_detected.at
        return self.t0

    @property
    def response_start(self) -> datetime | None:
        """When the response began, for the comms clocks and the duty to escalate: the acknowledgement, but
        never before the alert (else human detection, else T0) that it answers; with no acknowledgement, that
        alert. Doing more (acknowledging, detecting) therefore only ever moves this instant later."""
        reference = self.tta_reference
        if self.acknowledged is None:
            return reference
        if reference is None:
            return self.acknowledged.at
        return max(self.acknowledged.at, reference)

    @property
    def triaged(self) -> datetime | None:
        if self.severity_first is None or self.ic_assigned is None:
            return None
        return max(self.severity_first.at, self.ic_assigned.at)

    @property
    def resolved_while_unhealthy(self) -> bool:
        return self.resolved is not None and self.health_at_resolve is False

    @property
    def resolved_while_affected(self) -> bool:
        """Resolved while users affected were still at or over the scenario's threshold."""
        return (
            self.resolved is not None
            and self.affected_at_resolve is not None
            and self.affected_at_resolve >= self.impact_threshold_pct
        )

    @property
    def end(self) -> datetime | None:
        """The drill's end: ``drill.ended``, else the latest instant known (last event or ``now``)."""
        return self.ended.at if self.ended is not None else self.horizon

    def paused_at(self, at: datetime) -> bool:
        return any(start <= at and (stop is None or at < stop) for start, stop in self.pauses)

    # ---- durations ----------------------------------------------------------------------------------------

    def paused_between(self, a: datetime, b: datetime) -> timedelta:
        total = ZERO
        for start, stop in self.pauses:
            lo = max(a, start)
            hi = b if stop is None else min(b, stop)
            if hi > lo:
                total += hi - lo
        return total

    def active(self, a: datetime, b: datetime) -> timedelta:
        """Active time from ``a`` to ``b``: wall time minus paused time; zero if ``b`` is not after ``a``."""
        if b <= a:
            return ZERO
        return (b - a) - self.paused_between(a, b)

    @staticmethod
    def wall(a: datetime, b: datetime) -> timedelta:
        return max(b - a, ZERO)

    # ---- results ------------------------------------------------------------------------------------------

    def clocks(self) -> Clocks:
        def both(a: datetime | None, b: datetime | None) -> tuple[timedelta | None, timedelta | None]:
            if a is None or b is None:
                return None, None
            return self.wall(a, b), self.active(a, b)

        t0 = self.t0
        ttd, ttd_active = both(t0, self.first_alert.at if self.first_alert else None)
        ttd_human, _ = both(t0, self.human_detected.at if self.human_detected else None)
        tta, tta_active = both(self.tta_reference, self.acknowledged.at if self.acknowledged else None)
        ttt, ttt_active = both(t0, self.triaged)
        human_mitigation = self.mitigated if self.mitigated_by == "human" else None
        # The seed's MTTM is "impact reduced - alert acknowledged": no acknowledgement, no MTTM.
        ttm, ttm_active = both(self.acknowledged.at if self.acknowledged else None, human_mitigation)
        _, ttm_health = both(
            self.acknowledged.at if self.acknowledged else None,
            self.health_mitigated if self.health_mitigated_by == "human" else None,
        )
        ttr, ttr_active = both(t0, self.resolved.at if self.resolved else None)
        end = self.end
        wall, active = both(t0, end)
        since = t0 or self.origin
        alert = self.first_alert
        return Clocks(
            t0=t0,
            first_alert=alert.at if alert else None,
            human_detected=self.human_detected.at if self.human_detected else None,
            acknowledged=self.acknowledged.at if self.acknowledged else None,
            triaged=self.triaged,
            mitigated=self.mitigated,
            resolved=self.resolved.at if self.resolved else None,
            ended=self.ended.at if self.ended else None,
            ttd=ttd,
            ttd_human=ttd_human,
            tta=tta,
            ttt=ttt,
            ttm=ttm,
            ttr=ttr,
            ttd_active=ttd_active,
            tta_active=tta_active,
            ttt_active=ttt_active,
            ttm_active=ttm_active,
            ttr_active=ttr_active,
            paused=self.paused_between(since, end) if since is not None and end is not None else ZERO,
            wall=wall,
            active=active,
            mitigated_by=self.mitigated_by,
            reopens=self.reopens,
            resolved_while_unhealthy=self.resolved_while_unhealthy,
            detection_gap=alert is None,
            alert_rule_delay=(
                timedelta(seconds=alert.rule_delay_seconds)
                if alert is not None and alert.rule_delay_seconds is not None
                else None
            ),
            alert_delivery_delay=(
                alert.received_at - alert.at if alert is not None and alert.received_at is not None else None
            ),
            impact_reduced=self.impact_reduced,
            health_mitigated=self.health_mitigated,
            ttm_health=ttm_health,
            resolved_while_affected=self.resolved_while_affected,
        )

    def phase(self, at: datetime) -> Phase:
        """The lifecycle phase at ``at``, from what this timeline knows (built from events up to ``at``)."""
        if self.t0 is None and self.first_signal is None and self.acknowledged is None:
            return Phase.NOT_STARTED
        if self.ended is not None and self.ended.at <= at:
            return Phase.POSTMORTEM
        if self.paused_at(at):
            return Phase.PAUSED
        if self.status == "resolved":
            return Phase.POSTMORTEM
        if self.status == "mitigated":
            return Phase.RESOLVE
        if self.triaged is not None:
            return Phase.MITIGATE
        if self.first_signal is not None or self.acknowledged is not None:
            return Phase.TRIAGE
        return Phase.DETECT


def build(events: Iterable[Event], now: datetime | None = None) -> Timeline:
    """Gather the timeline in one pass. ``now`` extends the horizon (a live drill): a healthy period that has
    lasted the exit window by ``now`` counts as a mitigation."""
    evs = ordered(events)
    started = next((e for e in evs if isinstance(e, DrillStarted)), None)
    t0 = next((e.at for e in evs if isinstance(e, FaultInjected)), None)
    origin = t0 or (started.at if started else (evs[0].at if evs else None))
    times = [e.at for e in evs] + ([now] if now is not None else [])
    horizon = max(times) if times else None
    window = timedelta(seconds=started.healthy_for_seconds if started else 30.0)
    has_health = any(isinstance(e, HealthChanged) and origin is not None and e.at >= origin for e in evs)

    def after_origin(at: datetime) -> bool:
        return origin is None or at >= origin

    first_alert: AlertFired | None = None
    detected: Detected | None = None
    ack: Acknowledged | None = None
    sev_first: SeverityDeclared | None = None
    sev_final: SeverityDeclared | None = None
    ic: RoleAssigned | None = None
    ended: DrillEnded | None = None
    pauses: list[tuple[datetime, datetime | None]] = []
    comms: list[CommsPosted] = []
    escalations: list[EscalationNotified] = []
    actions: list[ActionObserved] = []
    postmortems: list[PostmortemCompleted] = []
    resolutions: list[Resolved] = []
    samples: list[ImpactSampled] = []

    healthy: bool | None = None
    period: datetime | None = None  # start of the current healthy period, if it can count as mitigation
    confirmed = False
    status: Status = "open"
    mitigated: datetime | None = None
    mitigated_by: Literal["human", "system", "none"] = "none"
    first_change: datetime | None = None  # first responder/bot change (or claim) after T0
    reverted: datetime | None = None  # drills' own revert of the fault, after T0
    reopens = 0
    resolved: Resolved | None = None
    health_at_resolve: bool | None = None

    def mitigate(at: datetime, human: bool) -> None:
        nonlocal mitigated, mitigated_by, status
        if mitigated is None:
            mitigated = at
            mitigated_by = "human" if human else "system"
        if status == "open":
            status = "mitigated"

    def confirm(h: datetime) -> None:
        nonlocal confirmed
        confirmed = True
        acted = first_change is not None and first_change <= h
        undone_by_drills = reverted is not None and reverted <= h
        mitigate(h, human=acted and not undone_by_drills)

    for e in evs:
        at = e.at
        if healthy and period is not None and not confirmed and at - period >= window:
            confirm(period)
        if isinstance(e, HealthChanged):
            if e.healthy and healthy is not True:
                period = at if after_origin(at) else None
                confirmed = False
            elif not e.healthy and healthy is not False:
                if healthy is True and status != "open" and after_origin(at):
                    reopens += 1
                    status = "open"
                    resolved = None
                period = None
                confirmed = False
            healthy = e.healthy
        elif isinstance(e, AlertFired):
            if first_alert is None and after_origin(at):
                first_alert = e
        elif isinstance(e, Detected):
            if detected is None and after_origin(at):
                detected = e
        elif isinstance(e, Acknowledged):
            if ack is None and e.source in PEOPLE_SOURCES and after_origin(at):
                ack = e
        elif isinstance(e, SeverityDeclared):
            # A declaration, role, message or escalation before the fault is not about this incident.
            if after_origin(at):
                sev_first = sev_first or e
                sev_final = e
        elif isinstance(e, RoleAssigned):
            if ic is None and e.role == Role.IC and after_origin(at):
                ic = e
        elif isinstance(e, ActionObserved):
            actions.append(e)
            if (
                first_change is None
                and e.actor_kind in PEOPLE
                and e.kind not in NOT_CHANGES
                and after_origin(at)
            ):
                first_change = at
        elif isinstance(e, Mitigated):
            if e.source in PEOPLE_SOURCES and after_origin(at):
                if first_change is None:
                    first_change = at
                if not has_health:
                    mitigate(at, human=True)
        elif isinstance(e, FaultReverted):
            if reverted is None and e.source == Source.SYSTEM and t0 is not None and at >= t0:
                reverted = at
        elif isinstance(e, Resolved):
            if after_origin(at):
                resolutions.append(e)
                if not has_health:
                    mitigate(at, human=True)
                status = "resolved"
                resolved = e
                health_at_resolve = healthy if healthy is not None else e.healthy_at_resolve
        elif isinstance(e, Reopened):
            if status != "open":
                reopens += 1
                status = "open"
                resolved = None
        elif isinstance(e, CommsPosted):
            if after_origin(at):
                comms.append(e)
        elif isinstance(e, EscalationNotified):
            if after_origin(at):
                escalations.append(e)
        elif isinstance(e, PostmortemCompleted):
            postmortems.append(e)
        elif isinstance(e, ImpactSampled):
            samples.append(e)
        elif isinstance(e, Paused):
            if not pauses or pauses[-1][1] is not None:
                pauses.append((at, None))
        elif isinstance(e, Resumed):
            if pauses and pauses[-1][1] is None:
                pauses[-1] = (pauses[-1][0], at)
        elif isinstance(e, DrillEnded):
            ended = ended or e
    if (
        healthy
        and period is not None
        and not confirmed
        and horizon is not None
        and horizon - period >= window
    ):
        confirm(period)

    impact = tuple(points(samples))
    threshold = started.impact_threshold_pct if started else 1.0
    health_mitigated, health_mitigated_by = mitigated, mitigated_by
    reduced: datetime | None = None
    affected_at_resolve: float | None = None
    raised: tuple[RaisedImpact, ...] = ()
    if impact and origin is not None:
        start = t0 or origin
        reduced = impact_reduced_at(
            impact, start, threshold_pct=threshold, healthy_for=window, now=horizon or start
        )
        if _ever_affected(impact, start, threshold):
            # What users saw decides: the probes' health is kept beside it.
            mitigated = reduced
            if reduced is None:
                mitigated_by = "none"
                if status == "mitigated":
                    status = "open"
            else:
                acted = first_change is not None and first_change <= reduced
                undone_by_drills = reverted is not None and reverted <= reduced
                mitigated_by = "human" if acted and not undone_by_drills else "system"
                if (
                    status == "open"
                    and resolved is None
                    and _in_force(impact, horizon or reduced) < threshold
                ):
                    status = "mitigated"
        if resolved is not None:
            affected_at_resolve = _in_force(impact, resolved.at)
        raised = _raised_impact(impact, actions, t0)

    return Timeline(
        events=tuple(evs),
        started=started,
        t0=t0,
        origin=origin,
        horizon=horizon,
        ended=ended,
        first_alert=first_alert,
        human_detected=detected,
        acknowledged=ack,
        severity_first=sev_first,
        severity_final=sev_final,
        ic_assigned=ic,
        pauses=tuple(pauses),
        healthy_for=window,
        has_health=has_health,
        healthy_now=healthy,
        mitigated=mitigated,
        mitigated_by=mitigated_by,
        reopens=reopens,
        status=status,
        resolutions=tuple(resolutions),
        resolved=resolved,
        health_at_resolve=health_at_resolve,
        comms=tuple(comms),
        escalations=tuple(escalations),
        actions=tuple(actions),
        postmortems=tuple(postmortems),
        impact=impact,
        impact_threshold_pct=threshold,
        impact_reduced=reduced,
        health_mitigated=health_mitigated,
        health_mitigated_by=health_mitigated_by,
        raised_impact=raised,
        affected_at_resolve=affected_at_resolve,
    )


def _in_force(impact: Sequence[ImpactPoint], at: datetime) -> float:
    """Users affected (%) in force at ``at``: the last sample at or before it (none yet: 0)."""
    i = bisect_right(impact, at, key=lambda p: p.at)
    return impact[i - 1].users_affected_pct if i else 0.0


def _ever_affected(impact: Sequence[ImpactPoint], start: datetime, threshold: float) -> bool:
    """Users were affected at or over the threshold at some point from ``start`` on."""
    return _in_force(impact, start) >= threshold or any(
        p.at >= start and p.users_affected_pct >= threshold for p in impact
    )


def _raised_impact(
    impact: Sequence[ImpactPoint], actions: Sequence[ActionObserved], t0: datetime | None
) -> tuple[RaisedImpact, ...]:
    """Responder changes after which users affected rose by :data:`RAISE_MIN_PCT` or more, for at least
    :data:`RAISE_HOLD`, within :data:`RAISE_WINDOW`; a rise goes to the latest change before it. Each change looks only at the samples
    of its window (bisected), so a long journal costs changes x log(samples)."""
    changes = [
        a
        for a in actions
        if a.actor_kind in PEOPLE and a.kind not in NOT_CHANGES and (t0 is None or a.at >= t0)
    ]
    out: list[RaisedImpact] = []
    for i, a in enumerate(changes):
        first = bisect_right(impact, a.at, key=lambda p: p.at)
        before = impact[first - 1].users_affected_pct if first else 0.0
        down_before = set(impact[first - 1].features_down) if first else set()
        following = changes[i + 1].at if i + 1 < len(changes) else None
        for j in range(first, len(impact)):
            p = impact[j]
            if p.at - a.at > RAISE_WINDOW or (following is not None and p.at > following):
                break
            held_until = impact[j + 1].at if j + 1 < len(impact) else None
            if held_until is not None and held_until - p.at < RAISE_HOLD:
                continue
            if p.users_affected_pct - before >= RAISE_MIN_PCT:
                out.append(
                    RaisedImpact(
                        action=a,
                        at=p.at,
                        before_pct=before,
                        after_pct=p.users_affected_pct,
                        features_down=tuple(f for f in p.features_down if f not in down_before),
                    )
                )
                break
    return tuple(out)


def compute_clocks(events: Sequence[Event]) -> Clocks:
    """TTD, TTA, time to triage, TTM and TTR (wall and active), pauses, reopens and credit, from a journal."""
    return build(events).clocks()


def phase_at(events: Sequence[Event], at: datetime) -> Phase:
    """The phase at ``at``, judged only from events that had happened by then (as a live view would)."""
    return build([e for e in events if e.at <= at], now=at).phase(at)


# ---- timed rules: when each SLA clock starts and stops ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """One timed rule of one drill: its clock runs from ``start`` until ``stop`` (None: not met yet)."""

    rule: Rule
    target: timedelta
    start: datetime | None
    stop: datetime | None


def _first_at(times: Iterable[datetime]) -> datetime | None:
    return min(times, default=None)


def _escalated(tl: Timeline, rank: int) -> datetime | None:
    return _first_at(e.at for e in tl.escalations if escalation_rank(e.whom) >= rank)


def _template_posted(tl: Timeline, template: str) -> datetime | None:
    return _first_at(c.at for c in tl.comms if c.template == template)


def spans(tl: Timeline, severity: Severity, targets: SlaTargets) -> list[Span]:
    """The simple timed rules that apply to ``severity``, with their start and stop instants.

    The scorer judges these; the live view shows the open ones. Rules with a condition (executives only if
    impact passes an hour, the status-update cadence) are judged by the scorer on their own.
    """
    ack = tl.acknowledged.at if tl.acknowledged else None
    page = tl.tta_reference
    resolved = tl.resolved.at if tl.resolved else None
    stops: dict[str, tuple[datetime | None, datetime | None]] = {
        "mttd": (tl.t0, tl.first_alert.at if tl.first_alert else None),
        "triage.within": (tl.t0, tl.triaged),
        "comms.initial_alert": (tl.response_start, _template_posted(tl, "initial_alert")),
        "escalation.p0_leadership": (page, _escalated(tl, LEADERSHIP)),
        "escalation.p1_eng_lead": (page, _escalated(tl, ENG_LEAD)),
        "oncall.escalate_unresolved": (
            tl.response_start,
            _first_at(t for t in (resolved, _first_at(e.at for e in tl.escalations)) if t is not None),
        ),
        "mttr.p0": (tl.t0, resolved),
        "mttr.p1": (tl.t0, resolved),
        # "Impact reduced - alert acknowledged" (seed line 407): the clock starts at the acknowledgement only.
        "mttm.p0": (ack, tl.mitigated),
        "mttm.p1": (ack, tl.mitigated),
        "postmortem.within_48h": (
            resolved,
            _first_at(p.at for p in tl.postmortems if resolved is not None and p.at >= resolved),
        ),
    }
    for ack_rule in (
        "mtta.p0",
        "mtta.p1",
        "escalation.p0_ack",
        "escalation.p1_ack",
        "response_time",
        "oncall.respond_p0_p1",
        "oncall.ack_all",
    ):
        stops[ack_rule] = (tl.tta_reference, ack)
    out = []
    for r in RULES:
        if r.id not in stops or not r.applies_to(severity):
            continue
        target = r.target_for(severity, targets)
        assert target is not None, r.id
        start, stop = stops[r.id]
        out.append(Span(r, target, start, stop))
    return out


# ---- live view -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """An SLA still running: how much of its target is used, what is left (negative once breached)."""

    check_id: str
    name: str
    target: timedelta
    used: timedelta
    left: timedelta
    breached: bool


@dataclass(frozen=True, slots=True)
class LiveView:
    now: datetime
    phase: Phase
    elapsed: timedelta | None  # wall time since T0
    elapsed_active: timedelta | None
    paused: bool
    healthy: bool | None
    severity: Severity | None  # the severity whose budgets are shown
    budgets: tuple[Budget, ...]


_FAULT_CLOCKS = frozenset({"mttd", "triage.within", "mttr.p0", "mttr.p1"})


def _budget(tl: Timeline, r: Rule, target: timedelta, start: datetime, now: datetime) -> Budget:
    used = tl.active(start, now)
    return Budget(r.id, r.rule, target, used, target - used, not r.met(used, target))


def live_view(
    events: Sequence[Event], now: datetime, targets: SlaTargets, severity: Severity | None = None
) -> LiveView:
    """The drill at ``now``: phase, elapsed time and the budget left on each SLA still open.

    Severity-specific budgets (MTTA/MTTM/MTTR and escalation of P0 or P1) follow ``severity`` if given,
    else the severity the responders declared; before a declaration only the rules that bind every
    severity are shown, so the dashboard never gives away the true severity the drill is measuring. Before
    the first alert or detection only the clocks the fault itself starts (MTTD, triage, MTTR) run.
    """
    tl = build(events, now=now)
    if severity is None and tl.severity_final is not None:
        severity = tl.severity_final.severity
    budgets: list[Budget] = []
    if tl.ended is None:
        if severity is not None:
            pool = spans(tl, severity, targets)
        else:
            pool = [
                s
                for s in spans(tl, Severity.P3, targets)
                if s.rule.severities == frozenset(Severity) and "{sev}" not in (s.rule.target or "")
            ]
        if tl.first_signal is None and tl.acknowledged is None:
            # Nobody can know yet: only the incident's own clocks run (scoring still times an
            # acknowledgement that never had a signal from T0).
            pool = [s for s in pool if s.rule.id in _FAULT_CLOCKS]
        for s in pool:
            if s.start is not None and s.stop is None and s.start <= now:
                budgets.append(_budget(tl, s.rule, s.target, s.start, now))
        if tl.status != "resolved":
            cadence = RULE_BY_ID["comms.status_cadence"]
            updates = [c.at for c in tl.comms if c.template in UPDATE_TEMPLATES and c.at <= now]
            since = max(updates) if updates else (tl.acknowledged.at if tl.acknowledged else tl.first_signal)
            if since is not None:
                budgets.append(_budget(tl, cadence, targets.status_update_max, since, now))
    t0 = tl.t0
    return LiveView(
        now=now,
        phase=tl.phase(now),
        elapsed=tl.wall(t0, now) if t0 else None,
        elapsed_active=tl.active(t0, now) if t0 else None,
        paused=tl.paused_at(now),
        healthy=tl.healthy_now,
        severity=severity,
        budgets=tuple(budgets),
    )
