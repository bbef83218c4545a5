"""The scorecard: every check of a drill, measured against its target, with the seed line it comes from.

Produced by ``drills.engine.scoring.score`` from a journal (deterministic: same journal, same scorecard),
printed by ``drill score JOURNAL --json`` and published as JSON Schema (``drill schema scorecard``).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from drills.model.severity import Severity

SCORECARD_VERSION = 1


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"  # the rule does not apply (e.g. a P1 rule in a P0 drill)
    NOT_MEASURED = "not-measured"  # it applies, but cannot be judged (yet): the detail says why


class CheckFamily(StrEnum):
    DETECTION = "detection"
    ACKNOWLEDGEMENT = "acknowledgement"
    TRIAGE = "triage"
    MITIGATION = "mitigation"
    RESOLUTION = "resolution"
    COMMUNICATION = "communication"
    ESCALATION = "escalation"
    DISCIPLINE = "discipline"


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable name, e.g. 'mtta.p0', 'oncall.ack_all'.")
    family: CheckFamily
    rule: str = Field(description="The rule in words.")
    citation: str = Field(description="Seed file and line, e.g. incident-response-framework.md:402.")
    target: timedelta | None = None
    measured: timedelta | None = None
    status: CheckStatus
    detail: str = ""
    cause: str = Field(
        default="", description="What a failure is about; failed checks with one cause are one improvement."
    )
    owner: str = Field(default="", description="The role or team that owns the improvement (never a person).")


class Clocks(BaseModel):
    """The drill's clocks. ``*_active`` exclude paused time; SLAs are judged on active time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t0: AwareDatetime | None = Field(default=None, description="True fault time (first fault injected).")
    first_alert: AwareDatetime | None = None
    human_detected: AwareDatetime | None = None
    acknowledged: AwareDatetime | None = None
    triaged: AwareDatetime | None = None
    mitigated: AwareDatetime | None = Field(
        default=None, description="Start of the first lasting healthy period."
    )
    resolved: AwareDatetime | None = None
    ended: AwareDatetime | None = None
    ttd: timedelta | None = None
    ttd_human: timedelta | None = None
    tta: timedelta | None = None
    ttt: timedelta | None = Field(
        default=None, description="Time to triage: T0 to severity declared and IC assigned."
    )
    ttm: timedelta | None = None
    ttr: timedelta | None = None
    ttd_active: timedelta | None = None
    tta_active: timedelta | None = None
    ttt_active: timedelta | None = None
    ttm_active: timedelta | None = None
    ttr_active: timedelta | None = None
    paused: timedelta = timedelta(0)
    wall: timedelta | None = None
    active: timedelta | None = None
    mitigated_by: Literal["human", "system", "none"] = "none"
    reopens: int = 0
    resolved_while_unhealthy: bool = False
    detection_gap: bool = Field(default=False, description="No alert fired.")
    alert_rule_delay: timedelta | None = None
    alert_delivery_delay: timedelta | None = None
    impact_reduced: AwareDatetime | None = Field(
        default=None,
        description="Users affected back under the scenario's threshold for the healthy window (measured "
        "impact); when set, the mitigation (and TTM) ends here.",
    )
    health_mitigated: AwareDatetime | None = Field(
        default=None, description="Start of the first lasting healthy period of the steady-state probes."
    )
    ttm_health: timedelta | None = Field(
        default=None, description="TTM to the probes' health, kept beside the TTM to impact reduced."
    )
    resolved_while_affected: bool = Field(
        default=False, description="Resolved while users affected were at or over the threshold."
    )


class MeasuredImpactSummary(BaseModel):
    """What users saw during the drill, from the virtual users' samples (drills.engine.measured)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = Field(description="The seed's matrix over the measured impact.")
    declared_severity: Severity = Field(description="The scenario's declared impact through the same matrix.")
    peak_users_affected_pct: float
    peak_users_affected: int = 0
    worst_status: str = Field(description="ok, slow, degraded or down (the seed's service status).")
    user_minutes: float
    requests: float = 0.0
    failed_requests: float
    features_down: list[str] = Field(default_factory=list)
    affected_at_end_pct: float = 0.0


class ErrorBudgetBurn(BaseModel):
    """The availability error budget one SLO gave for its window, and the share of it the drill spent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    availability_pct: float
    window: timedelta
    time_scale: float
    requests: float
    failed: float
    error_ratio: float
    #: Failed requests the budget allows over the whole (drill-scaled) window at this traffic.
    budget_requests: float
    burned_pct: float = Field(description="Share of the window's budget the drill's failures spent, %.")


class AlertFloor(BaseModel):
    """The fastest an expected SLO alert can fire at this fault's error ratio (engine.slo.rule_floor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert: str
    error_ratio: float
    drill_seconds: float | None
    production_seconds: float | None
    mttd_target_seconds: float
    meets_mttd: bool
    text: str


class Scorecard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    drill_id: str
    scenario_id: str
    scenario_title: str
    category: str
    mode: str
    trainee: str | None = None
    is_drill: bool = True
    started: AwareDatetime | None = None
    true_severity: Severity
    declared_severity: Severity | None = None
    severity_correct: bool = False
    clocks: Clocks
    checks: list[Check]
    outcome: str = ""
    hints_used: int = 0
    hint_cost: int = 0
    score: float = Field(ge=0, le=100)
    base_score: float = Field(
        default=0.0, ge=0, le=100, description="The weighted mean of the family scores, before hints and cap."
    )
    score_explained: str = Field(default="", description="How the score was reached, in one sentence.")
    grade: str
    passed: bool
    family_scores: dict[str, float] = Field(default_factory=dict)
    findings: list[str] = Field(
        default_factory=list, description="Blameless observations, most important first."
    )
    improve_next: str | None = Field(default=None, description="The one check to improve next (debrief).")
    actions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Observed actions, for reports: each distinct action of a person or the bot, identical "
        "ones and the observer's traffic (controllers, drills) counted in one entry (`count`, `last_at`).",
    )
    actions_omitted: int = Field(
        default=0, ge=0, description="Actions not listed in `actions` (it holds at most 200 entries)."
    )
    people: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Who did what: each person's posted events and attributed cluster actions, in time order.",
    )
    impact: MeasuredImpactSummary | None = Field(
        default=None, description="What the virtual users saw (from the journal's impact samples)."
    )
    error_budget: list[ErrorBudgetBurn] = Field(
        default_factory=list, description="Each SLO's availability error budget the drill burned."
    )
    alert_floors: list[AlertFloor] = Field(
        default_factory=list,
        description="For each SLO alert the scenario expects: the fastest TTD its rule can reach at this "
        "fault's error rate, next to the seed's MTTD target.",
    )
    scenario_warnings: list[str] = Field(
        default_factory=list,
        description="Checks on the scenario itself (its author's, not the responder's): e.g. a declared "
        "impact the measured one contradicts.",
    )

    @model_serializer(mode="wrap")
    def _without_zero_omitted(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written only when something was left out: a scorecard that lists every action reads as before.
        data: dict[str, Any] = handler(self)
        if data.get("actions_omitted") == 0:
            del data["actions_omitted"]
        return data

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.status == CheckStatus.FAIL]
