"""Build drill journals in tests, one typed event at a time, at times written like a person would.

    b = DrillBuilder(severity="P0")            # drill.started and fault.injected at b.start (T0)
    b.at("30s").alert()                        # times are offsets from the start ...
    b.at("2m").ack("alice").declare("P0").assign("ic", "alice")
    b.after("1m").note("rolled back")          # ... or from the previous event
    events = b.events

Ids are sequential (``evt-00001`` ...) so a journal built twice is identical. ``passing_drill`` builds a
response that meets every rule that applies to its severity: tests start from it and break one thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from drills.model.durations import parse_duration
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
    EventBase,
    FaultInjected,
    FaultReverted,
    HealthChanged,
    HintInfo,
    HintUsed,
    ImpactSampled,
    Mitigated,
    Mode,
    Note,
    Outcome,
    PageSent,
    Paused,
    PostmortemCompleted,
    Reopened,
    Resolved,
    Resumed,
    Role,
    RoleAssigned,
    SeverityDeclared,
    Source,
    TicketCreated,
)
from drills.model.severity import Severity

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def _source(actor_kind: ActorKind) -> Source:
    return Source.BOT if actor_kind == ActorKind.BOT else Source.HUMAN


class DrillBuilder:
    """A journal under construction. Every method appends one event at the cursor and returns the builder."""

    def __init__(
        self,
        *,
        start: datetime = START,
        severity: Severity | str = Severity.P0,
        healthy_for: str | float = "30s",
        inject: bool = True,
        sla: dict[str, str] | None = None,
        hints: Iterable[tuple[str, int]] = (),
        drill_id: str = "drill-0001",
        scenario_id: str = "bad-deploy-rollback",
        **started: Any,
    ) -> None:
        self.start = start
        self.cursor = start
        self._events: list[Event] = []
        self._n = 0
        self.severity = Severity(severity)
        self.add(
            DrillStarted,
            source=Source.SYSTEM,
            drill_id=drill_id,
            scenario_id=scenario_id,
            scenario_title=started.pop("scenario_title", "Bad deploy, roll back"),
            category=started.pop("category", "deployment"),
            service=started.pop("service", "shop"),
            namespace=started.pop("namespace", "drills-shop"),
            true_severity=self.severity,
            mode=started.pop("mode", Mode.TRAINING),
            trainee=started.pop("trainee", "alice"),
            sla_overrides=dict(sla or {}),
            hints=[HintInfo(text=t, cost=c) for t, c in hints],
            healthy_for_seconds=parse_duration(healthy_for).total_seconds(),
            **started,
        )
        if inject:
            self.fault()

    # ---- time ----------------------------------------------------------------------------

    def at(self, offset: str | float | timedelta) -> Self:
        """Move the cursor to ``start + offset`` ("90s", "5m", "+2m" the same, "-10s" before the start)."""
        self.cursor = self.start + _duration(offset)
        return self

    def after(self, offset: str | float | timedelta) -> Self:
        """Move the cursor forward from where it is."""
        self.cursor = self.cursor + _duration(offset)
        return self

    def time(self, offset: str | float | timedelta) -> datetime:
        return self.start + _duration(offset)

    # ---- raw ----------------------------------------------------------------------------

    def add(self, cls: type[EventBase], **fields: Any) -> Self:
        self._n += 1
        fields.setdefault("id", f"evt-{self._n:05d}")
        fields.setdefault("at", self.cursor)
        self._events.append(cls(**fields))  # type: ignore[arg-type]
        return self

    def event(self, e: Event) -> Self:
        self._events.append(e)
        return self

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    # ---- the drill ----------------------------------------------------------------------------

    def fault(self, kind: str = "bad-image", target: str = "deployment/drills-shop/shop") -> Self:
        return self.add(FaultInjected, source=Source.SYSTEM, actor="drills", fault_kind=kind, target=target)

    def revert(self, kind: str = "bad-image", target: str = "deployment/drills-shop/shop") -> Self:
        return self.add(FaultReverted, source=Source.SYSTEM, actor="drills", fault_kind=kind, target=target)

    def alert(
        self,
        name: str = "ShopDown",
        *,
        rule_delay: float | None = None,
        received_after: str | float | None = None,
    ) -> Self:
        received = self.cursor + _duration(received_after) if received_after is not None else None
        return self.add(
            AlertFired,
            source=Source.SYSTEM,
            actor="alertmanager",
            alert_name=name,
            rule_delay_seconds=rule_delay,
            received_at=received,
        )

    def page(self, to: str = "alice") -> Self:
        return self.add(PageSent, source=Source.SYSTEM, to=to)

    def detect(self, by: str = "alice", how: str = "saw errors on the dashboard") -> Self:
        return self.add(Detected, source=Source.HUMAN, actor=by, how=how)

    def ack(self, by: str = "alice", *, bot: bool = False) -> Self:
        return self.add(Acknowledged, source=Source.BOT if bot else Source.HUMAN, actor=by)

    def declare(self, severity: Severity | str | None = None, by: str = "alice") -> Self:
        return self.add(
            SeverityDeclared, source=Source.HUMAN, actor=by, severity=Severity(severity or self.severity)
        )

    def assign(self, role: Role | str = Role.IC, person: str = "alice") -> Self:
        return self.add(RoleAssigned, source=Source.HUMAN, actor=person, role=Role(role), person=person)

    def comms(self, template: str, *, missing: Iterable[str] = (), by: str = "alice") -> Self:
        return self.add(
            CommsPosted, source=Source.HUMAN, actor=by, template=template, missing_fields=list(missing)
        )

    def escalate(self, whom: str = "engineering-leadership", by: str = "alice") -> Self:
        return self.add(EscalationNotified, source=Source.HUMAN, actor=by, whom=whom)

    def ticket(self, ref: str = "OPS-1", by: str = "alice") -> Self:
        return self.add(TicketCreated, source=Source.HUMAN, actor=by, ref=ref)

    def action(
        self,
        kind: ActionKind | str = ActionKind.ROLLBACK,
        *,
        actor: str = "alice",
        actor_kind: ActorKind | str = ActorKind.RESPONDER,
        object: str = "deployment/drills-shop/shop",
        destructive: bool = False,
        detail: str = "",
    ) -> Self:
        kind_, actor_kind_ = ActionKind(kind), ActorKind(actor_kind)
        return self.add(
            ActionObserved,
            source=_source(actor_kind_)
            if actor_kind_ in (ActorKind.RESPONDER, ActorKind.BOT)
            else Source.SYSTEM,
            actor=actor,
            kind=kind_,
            actor_kind=actor_kind_,
            object=object,
            destructive=destructive,
            detail=detail,
        )

    def evidence(self, object: str = "pod/drills-shop/shop-1", actor: str = "alice") -> Self:
        return self.action(ActionKind.EVIDENCE_READ, actor=actor, object=object)

    def healthy(self, reason: str = "steady state holds") -> Self:
        return self.add(HealthChanged, source=Source.SYSTEM, actor="observer", healthy=True, reason=reason)

    def unhealthy(self, reason: str = "deployment unavailable") -> Self:
        return self.add(HealthChanged, source=Source.SYSTEM, actor="observer", healthy=False, reason=reason)

    def impact(
        self,
        pct: float,
        status: str | None = None,
        *,
        rps: float = 1000.0,
        failed: float | None = None,
        p99_ms: float = 120.0,
        down: Iterable[str] = (),
        active: int = 1000,
    ) -> Self:
        """An ``impact.sample``: ``pct`` % of ``active`` users affected; by default the failed requests are
        the same share of ``rps`` and the status follows (down at 100 %, degraded over 0, else ok)."""
        fails = rps * pct / 100 if failed is None else failed
        st = status or ("down" if pct >= 100 else "degraded" if pct > 0 else "ok")
        return self.add(
            ImpactSampled,
            source=Source.SYSTEM,
            actor="drills-users",
            users_affected_pct=pct,
            users_affected=round(active * pct / 100),
            users_active=active,
            status=st,
            requests_per_second=rps,
            failed_per_second=fails,
            p99_ms=p99_ms,
            features_down=sorted(down),
        )

    def mitigated(self, by: str = "alice", summary: str = "rolled back") -> Self:
        return self.add(Mitigated, source=Source.HUMAN, actor=by, summary=summary)

    def resolve(self, by: str = "alice", root_cause: str = "bad image", healthy: bool | None = None) -> Self:
        return self.add(
            Resolved, source=Source.HUMAN, actor=by, root_cause=root_cause, healthy_at_resolve=healthy
        )

    def reopen(self, by: str = "alice", reason: str = "errors are back") -> Self:
        return self.add(Reopened, source=Source.HUMAN, actor=by, reason=reason)

    def hint(self, index: int = 0, cost: int = 5, by: str = "alice") -> Self:
        return self.add(HintUsed, source=Source.HUMAN, actor=by, index=index, cost=cost)

    def pause(self, reason: str = "game master break") -> Self:
        return self.add(Paused, source=Source.HUMAN, actor="gm", reason=reason)

    def resume(self) -> Self:
        return self.add(Resumed, source=Source.HUMAN, actor="gm")

    def note(self, text: str = "rolled back to the previous revision", by: str = "alice") -> Self:
        return self.add(Note, source=Source.HUMAN, actor=by, text=text)

    def postmortem(self, link: str = "https://wiki.example/pm/1", by: str = "alice") -> Self:
        return self.add(PostmortemCompleted, source=Source.HUMAN, actor=by, link=link)

    def end(self, outcome: Outcome | str = Outcome.RESOLVED, reason: str = "") -> Self:
        return self.add(
            DrillEnded, source=Source.SYSTEM, actor="drills", outcome=Outcome(outcome), reason=reason
        )


def _duration(value: str | float | timedelta) -> timedelta:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            return -parse_duration(text[1:])
        value = text.removeprefix("+")
    return parse_duration(value)


def passing_drill(severity: Severity | str = Severity.P0, **kwargs: Any) -> DrillBuilder:
    """A response that meets every rule binding ``severity``: alert in 1m, ack in 2m, triage, comms,
    escalation, evidence before a documented rollback, healthy from 6m (30 s window), resolved at 8m."""
    b = DrillBuilder(severity=severity, **kwargs)
    sev = b.severity
    b.at("10s").unhealthy()
    b.at("1m").alert(received_after="2s").page()
    b.at("2m").ack().declare().assign("ic", "alice")
    b.at("3m").comms("initial_alert")
    if sev == Severity.P0:
        b.at("3m10s").comms("statuspage_investigating").escalate("engineering-leadership")
    elif sev == Severity.P1:
        b.at("3m10s").escalate("engineering-lead")
    else:
        b.at("3m10s").ticket()
    b.at("4m").evidence()
    b.at("5m").action(ActionKind.ROLLBACK).note("rolled back shop to the previous revision")
    b.at("6m").healthy()
    b.at("8m").resolve().comms("resolution")
    if sev == Severity.P0:
        b.at("8m30s").comms("statuspage_resolved").comms("customer_email")
    if sev.is_high():
        b.at("9m").postmortem()
    b.at("10m").end()
    return b
