"""SLA targets: the seed's timed rules as named, overridable numbers.

Defaults come from ``incident-response-framework.md`` (the seed); each field's description cites the line.
A policy YAML (``drill ... --policy FILE``) or a scenario's ``sla:`` block overrides any of them. The seed
contradicts itself in places (P1 acknowledgement "within 30 minutes" vs on-call "acknowledge all alerts
within 15 minutes"): both are kept as separate targets and checked separately, never merged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from drills.model.durations import Duration, parse_duration

SEED = "incident-response-framework.md"


def cite(line: int) -> str:
    return f"{SEED}:{line}"


def _d(default: str, line: int, text: str) -> Any:
    return Field(default=parse_duration(default), description=f"{text} [{cite(line)}]")


class SlaTargets(BaseModel):
    """Every timed rule of the seed. Names are stable: scenarios and policies override them by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mttd: Duration = _d("5m", 398, "MTTD target: alert - actual incident start")
    mtta_p0: Duration = _d("5m", 402, "MTTA target for P0: acknowledgement - alert")
    mtta_p1: Duration = _d("30m", 402, "MTTA target for P1: acknowledgement - alert")
    mttm_p0: Duration = _d("15m", 406, "MTTM target for P0: impact reduced - acknowledged")
    mttm_p1: Duration = _d("1h", 406, "MTTM target for P1: impact reduced - acknowledged")
    mttr_p0: Duration = _d("1h", 410, "MTTR target for P0: resolved - incident start")
    mttr_p1: Duration = _d("4h", 410, "MTTR target for P1: resolved - incident start")
    response_p0: Duration = _d("15m", 60, "Severity table response time, P0")
    response_p1: Duration = _d("1h", 60, "Severity table response time, P1")
    response_p2: Duration = _d("4h", 60, "Severity table response time, P2")
    response_p3: Duration = _d("24h", 60, "Severity table response time, P3")
    oncall_respond_p0_p1: Duration = _d("5m", 454, "On-call: respond to P0/P1 incidents within 5 minutes")
    oncall_ack_all: Duration = _d("15m", 455, "On-call: acknowledge all alerts within 15 minutes")
    escalate_if_unresolved: Duration = _d(
        "30m", 456, "On-call: escalate if unable to resolve within 30 minutes"
    )
    p0_ack: Duration = _d("5m", 340, "P0 escalation step 2: on-call acknowledges within 5 minutes")
    p1_ack: Duration = _d("30m", 347, "P1 escalation step 2: on-call acknowledges within 30 minutes")
    p0_notify_leadership: Duration = _d("15m", 342, "P0: notify engineering leadership within 15 minutes")
    p0_notify_executives_after: Duration = _d("1h", 343, "P0: notify executive leadership if impact > 1 hour")
    p1_notify_eng_lead: Duration = _d("1h", 349, "P1: notify engineering lead within 1 hour")
    initial_alert: Duration = _d(
        "5m", 195, "Initial alert: post immediately (read as within the detection window, 0-5 min)"
    )
    status_update_target: Duration = _d(
        "15m", 207, "Status updates every 15 minutes (initial alert template)"
    )
    status_update_max: Duration = _d("30m", 212, "Status update every 15-30 minutes: the longest allowed gap")
    triage: Duration = _d("15m", 26, "Triage phase ends by minute 15: severity declared and IC assigned")
    postmortem_p0_p1: Duration = _d("48h", 148, "Postmortem within 48 hours, required for P0 and P1")

    def with_overrides(self, overrides: dict[str, timedelta]) -> SlaTargets:
        return self.model_copy(update=overrides)


SLA_TARGET_NAMES: tuple[str, ...] = tuple(SlaTargets.model_fields)


class SlaOverrides(BaseModel):
    """A partial :class:`SlaTargets`: only the rules a scenario or policy file changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mttd: Duration | None = None
    mtta_p0: Duration | None = None
    mtta_p1: Duration | None = None
    mttm_p0: Duration | None = None
    mttm_p1: Duration | None = None
    mttr_p0: Duration | None = None
    mttr_p1: Duration | None = None
    response_p0: Duration | None = None
    response_p1: Duration | None = None
    response_p2: Duration | None = None
    response_p3: Duration | None = None
    oncall_respond_p0_p1: Duration | None = None
    oncall_ack_all: Duration | None = None
    escalate_if_unresolved: Duration | None = None
    p0_ack: Duration | None = None
    p1_ack: Duration | None = None
    p0_notify_leadership: Duration | None = None
    p0_notify_executives_after: Duration | None = None
    p1_notify_eng_lead: Duration | None = None
    initial_alert: Duration | None = None
    status_update_target: Duration | None = None
    status_update_max: Duration | None = None
    triage: Duration | None = None
    postmortem_p0_p1: Duration | None = None

    def set_values(self) -> dict[str, timedelta]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ScoringWeights(BaseModel):
    """How much each family of checks weighs in the 0-100 score (normalised over families that apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detection: StrictFloat = Field(default=10, ge=0)
    acknowledgement: StrictFloat = Field(default=15, ge=0)
    triage: StrictFloat = Field(default=15, ge=0)
    mitigation: StrictFloat = Field(default=20, ge=0)
    resolution: StrictFloat = Field(default=10, ge=0)
    communication: StrictFloat = Field(default=15, ge=0)
    escalation: StrictFloat = Field(default=10, ge=0)
    discipline: StrictFloat = Field(default=5, ge=0)


class Policy(BaseModel):
    """A policy YAML: SLA overrides plus scoring weights and grade thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sla: SlaOverrides = Field(default_factory=SlaOverrides)
    weights: ScoringWeights = Field(default_factory=ScoringWeights)
    pass_score: StrictFloat = Field(
        default=70, ge=0, le=100, description="A drill passes at or above this score."
    )
    grades: dict[str, StrictFloat] = Field(
        default_factory=lambda: {"A": 90.0, "B": 80.0, "C": 70.0, "D": 60.0},
        description="Lowest score for each grade; below the lowest is F.",
    )

    def targets(self, scenario_overrides: SlaOverrides | None = None) -> SlaTargets:
        """Defaults, then the policy file, then the scenario: the most specific wins."""
        t = SlaTargets().with_overrides(self.sla.set_values())
        if scenario_overrides is not None:
            t = t.with_overrides(scenario_overrides.set_values())
        return t
