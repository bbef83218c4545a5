"""Journal events: the one record of what happened in a drill, and the only input of the timer and scorer.

A journal is a JSON Lines file, one event a line (see docs/journal.md). Every event is typed and versioned
(``v``), carries the UTC time it *happened* (``at``; an alert's own ``startsAt``, not when we heard of it),
who caused it (``source``: system, human, bot or controller, and ``actor``), and a unique ``id`` so that a
duplicate delivery (a webhook retried, two writers racing) is recognised and counted once.

Secrets never appear here: the writer scrubs values (see ``drills.engine.redact``), and events that carry
object data carry names and metadata only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from drills.model.severity import Impact, Severity
from drills.model.slo import Slo

JOURNAL_VERSION = 1


class Source(StrEnum):
    SYSTEM = "system"  # drills itself (injector, runner, monitoring)
    HUMAN = "human"  # the responder or game master, typing commands
    BOT = "bot"  # the scripted responder
    CONTROLLER = "controller"  # Kubernetes controllers: self-healing


class Role(StrEnum):
    IC = "ic"
    TECH = "tech"
    COMMS = "comms"
    SME = "sme"


class ActionKind(StrEnum):
    """What the observer saw happen to the cluster (or a responder's read of it)."""

    ROLLBACK = "rollback"
    ROLLOUT = "rollout"
    SCALE = "scale"
    AUTOSCALE = "autoscale"
    CORDON = "cordon"
    UNCORDON = "uncordon"
    DRAIN = "drain"
    EVICT = "evict"
    POD_DELETED = "pod_deleted"
    POD_CREATED = "pod_created"
    SELECTOR_CHANGED = "selector_changed"
    ENV_CHANGED = "env_changed"
    IMAGE_CHANGED = "image_changed"
    CONFIG_CHANGED = "config_changed"
    SECRET_CHANGED = "secret_changed"
    ROLLOUT_PAUSED = "rollout_paused"
    ROLLOUT_RESUMED = "rollout_resumed"
    PATCHED = "patched"
    DELETED = "deleted"
    CREATED = "created"
    EVIDENCE_READ = "evidence_read"  # logs / describe / events read: evidence preserved
    LOGS_DELETED = "logs_deleted"  # evidence destroyed (a seed don't)
    NODE_NOT_READY = "node_not_ready"
    NODE_READY = "node_ready"
    OTHER = "other"


class ActorKind(StrEnum):
    RESPONDER = "responder"
    BOT = "bot"
    DRILLS = "drills"
    CONTROLLER = "controller"
    UNKNOWN = "unknown"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    ABORTED = "aborted"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    SELF_HEALED = "self_healed"
    #: The steady state did not hold before the fault (a Chaos Toolkit hypothesis failed): nothing was
    #: injected, nobody responded. Not a crash of drills, and not a response to score.
    NOT_STEADY = "not_steady"


class Mode(StrEnum):
    TRAINING = "training"
    CHAOS_TEST = "chaos-test"
    DR = "dr"


def new_event_id() -> str:
    return uuid.uuid4().hex


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    v: Literal[1] = 1
    id: str = Field(default_factory=new_event_id, min_length=8, max_length=64)
    at: AwareDatetime = Field(description="When it happened, UTC.")
    source: Source
    actor: str | None = Field(
        default=None, max_length=200, description="Who: a person, identity or component."
    )
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When drills wrote it (may be later than `at`, e.g. an alert's startsAt)."
    )

    @field_validator("at", "recorded_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return None if v is None else v.astimezone(UTC)


class HintInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str
    after_seconds: float = 0
    cost: int = 0


class DrillStarted(EventBase):
    type: Literal["drill.started"] = "drill.started"
    drill_id: str
    scenario_id: str
    scenario_title: str
    category: str
    service: str
    namespace: str
    true_severity: Severity
    mode: Mode = Mode.TRAINING
    backend: str = "embedded"
    trainee: str | None = None
    seed: int | None = None
    is_drill: bool = Field(default=True, description="False for a journal of a real incident.")
    scenario_digest: str | None = None
    sla_overrides: dict[str, str] = Field(
        default_factory=dict, description="Scenario SLA overrides, as written."
    )
    hints: list[HintInfo] = Field(default_factory=list)
    expected_mitigations: list[str] = Field(default_factory=list)
    expected_alert: str | None = None
    healthy_for_seconds: float = 30.0
    budget_seconds: float | None = None
    plan_id: str | None = None
    team: str | None = None
    impact: Impact | None = Field(
        default=None,
        description="The scenario's declared impact (users, features, revenue), for the postmortem.",
    )
    impact_threshold_pct: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="Impact is reduced once users affected stay under this share (%) for the healthy window.",
    )
    slos: list[Slo] = Field(
        default_factory=list,
        description="The SLOs of the world's services when the drill started: the error budget it burned and "
        "the fastest each SLO alert can fire are judged from them.",
    )


class DrillEnded(EventBase):
    type: Literal["drill.ended"] = "drill.ended"
    outcome: Outcome
    reason: str = ""


class FaultInjected(EventBase):
    type: Literal["fault.injected"] = "fault.injected"
    fault_kind: str
    target: str
    detail: dict[str, Any] = Field(default_factory=dict)


class FaultReverted(EventBase):
    type: Literal["fault.reverted"] = "fault.reverted"
    fault_kind: str
    target: str
    ok: bool = True
    detail: dict[str, Any] = Field(default_factory=dict)


class AlertFired(EventBase):
    type: Literal["alert.fired"] = "alert.fired"
    alert_name: str
    fingerprint: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    rule_delay_seconds: float | None = Field(default=None, description="Scrape interval + the rule's for:.")
    received_at: AwareDatetime | None = Field(
        default=None, description="When the notification reached drills."
    )


class AlertResolved(EventBase):
    type: Literal["alert.resolved"] = "alert.resolved"
    alert_name: str
    fingerprint: str | None = None


class Detected(EventBase):
    """A person noticed the incident without an alert (human detection, timed apart)."""

    type: Literal["detected"] = "detected"
    how: str = ""


class PageSent(EventBase):
    type: Literal["page.sent"] = "page.sent"
    channel: str = "terminal"
    to: str | None = None


class Acknowledged(EventBase):
    type: Literal["acknowledged"] = "acknowledged"
    via: str = "cli"


class SeverityDeclared(EventBase):
    type: Literal["severity.declared"] = "severity.declared"
    severity: Severity


class RoleAssigned(EventBase):
    type: Literal["role.assigned"] = "role.assigned"
    role: Role
    person: str


class CommsPosted(EventBase):
    type: Literal["comms.posted"] = "comms.posted"
    template: str
    text: str = Field(default="", max_length=20000)
    missing_fields: list[str] = Field(default_factory=list)
    channel: str = "journal"


class EscalationNotified(EventBase):
    type: Literal["escalation.notified"] = "escalation.notified"
    whom: str = Field(description="engineering-leadership, executives, engineering-lead, sme, ...")
    channel: str = "journal"


class TicketCreated(EventBase):
    type: Literal["ticket.created"] = "ticket.created"
    ref: str = ""


class ActionObserved(EventBase):
    type: Literal["action.observed"] = "action.observed"
    kind: ActionKind
    actor_kind: ActorKind
    object: str = Field(description="kind/namespace/name")
    detail: str = ""
    destructive: bool = False
    attribution: Literal["audit", "managed-fields", "inferred"] = "audit"


class HealthChanged(EventBase):
    type: Literal["health.changed"] = "health.changed"
    healthy: bool
    reason: str = ""


class Mitigated(EventBase):
    """The responder *says* impact is reduced; the timer trusts observed health, this is kept for the record."""

    type: Literal["mitigated"] = "mitigated"
    summary: str = ""


class Resolved(EventBase):
    type: Literal["resolved"] = "resolved"
    root_cause: str = ""
    healthy_at_resolve: bool | None = None


class Reopened(EventBase):
    type: Literal["reopened"] = "reopened"
    reason: str = ""


class HintUsed(EventBase):
    type: Literal["hint.used"] = "hint.used"
    index: int = Field(ge=0)
    cost: int = Field(ge=0, default=0)
    text: str = ""


class Paused(EventBase):
    type: Literal["drill.paused"] = "drill.paused"
    reason: str = ""


class Resumed(EventBase):
    type: Literal["drill.resumed"] = "drill.resumed"


class Note(EventBase):
    type: Literal["note"] = "note"
    text: str = Field(max_length=20000)


class PostmortemCompleted(EventBase):
    type: Literal["postmortem.completed"] = "postmortem.completed"
    link: str = ""


class RunbookStep(EventBase):
    """A DR plan's runbook step started or finished (programs)."""

    type: Literal["runbook.step"] = "runbook.step"
    step: str
    status: Literal["started", "done", "failed", "skipped"]
    detail: str = ""


class ChaosToolkitEvent(EventBase):
    type: Literal["chaostoolkit.event"] = "chaostoolkit.event"
    phase: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ImpactSampled(EventBase):
    """What the virtual users saw in one second (drills.engine.impact); journaled when it changed, and in
    force until the next sample."""

    type: Literal["impact.sample"] = "impact.sample"
    users_affected_pct: float = Field(ge=0, le=100, description="Share of the active users affected, 0-100.")
    users_affected: int = Field(ge=0)
    users_active: int = Field(ge=0)
    status: Literal["ok", "slow", "degraded", "down"]
    requests_per_second: float = Field(ge=0)
    failed_per_second: float = Field(ge=0)
    p99_ms: float = Field(ge=0)
    features_down: list[str] = Field(default_factory=list)
    #: HTTP status -> failed requests per second.
    errors: dict[str, int] = Field(default_factory=dict)


class WorldDifferenceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ref: str
    change: Literal["missing", "added", "changed"]
    fields: list[str] = Field(default_factory=list)
    text: str


class WorldDrifted(EventBase):
    """What the drill left different from the world's baseline, after the fault's own revert."""

    type: Literal["world.drifted"] = "world.drifted"
    differences: list[WorldDifferenceInfo]


Event = Annotated[
    DrillStarted
    | DrillEnded
    | FaultInjected
    | FaultReverted
    | AlertFired
    | AlertResolved
    | Detected
    | PageSent
    | Acknowledged
    | SeverityDeclared
    | RoleAssigned
    | CommsPosted
    | EscalationNotified
    | TicketCreated
    | ActionObserved
    | HealthChanged
    | Mitigated
    | Resolved
    | Reopened
    | HintUsed
    | Paused
    | Resumed
    | Note
    | PostmortemCompleted
    | RunbookStep
    | ChaosToolkitEvent
    | ImpactSampled
    | WorldDrifted,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_TYPES: tuple[str, ...] = tuple(
    cls.model_fields["type"].default
    for cls in (
        DrillStarted,
        DrillEnded,
        FaultInjected,
        FaultReverted,
        AlertFired,
        AlertResolved,
        Detected,
        PageSent,
        Acknowledged,
        SeverityDeclared,
        RoleAssigned,
        CommsPosted,
        EscalationNotified,
        TicketCreated,
        ActionObserved,
        HealthChanged,
        Mitigated,
        Resolved,
        Reopened,
        HintUsed,
        Paused,
        Resumed,
        Note,
        PostmortemCompleted,
        RunbookStep,
        ChaosToolkitEvent,
        ImpactSampled,
        WorldDrifted,
    )
)


def parse_event(data: dict[str, Any]) -> Event:
    return EVENT_ADAPTER.validate_python(data)


def journal_json_schema() -> dict[str, Any]:
    schema = EVENT_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"drills journal event (v{JOURNAL_VERSION})"
    schema["description"] = "One line of a drills journal (JSON Lines). See docs/journal.md."
    return schema


class EventSink(Protocol):
    """Where injectors, detectors and the observer report (the drill journal): anything with ``append``."""

    def append(self, event: Event) -> Any: ...
