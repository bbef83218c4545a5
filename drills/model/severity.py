"""Severities P0-P3 and the seed's severity matrix (incident-response-framework.md lines 54-60).

The matrix gives one severity per criterion; an incident's true severity is the most severe of them, because
the seed's table is read row by row and any one row is enough to raise an incident (a data-loss risk of
"High" is a P0 even if few users notice yet).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictFloat


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"

    @property
    def rank(self) -> int:
        """0 for P0 (most severe) ... 3 for P3."""
        return int(self.value[1])

    def is_high(self) -> bool:
        """P0 and P1: paged, escalated, postmortem required."""
        return self.rank <= 1


class ServiceStatus(StrEnum):
    DOWN = "down"
    DEGRADED = "degraded"
    SLOW = "slow"
    MINOR = "minor"


class Level(StrEnum):
    """Data-loss risk and revenue impact levels of the matrix."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


SEED = "incident-response-framework.md"

#: Seed line of each matrix row, for citations.
MATRIX_LINES = {"users": 56, "status": 57, "data_loss": 58, "revenue": 59, "response_time": 60}

#: Severity table "Response Time" row (line 60).
RESPONSE_TIME: dict[Severity, timedelta] = {
    Severity.P0: timedelta(minutes=15),
    Severity.P1: timedelta(hours=1),
    Severity.P2: timedelta(hours=4),
    Severity.P3: timedelta(hours=24),
}


class Impact(BaseModel):
    """The true impact of a scenario's fault, as the game master defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users_affected_pct: StrictFloat = Field(ge=0, le=100, description="Share of users affected, 0-100.")
    service_status: ServiceStatus
    data_loss_risk: Level = Field(description="high, medium, low or none")
    revenue_impact: Level = Field(description="critical, high, medium or low")
    features: list[str] = Field(default_factory=list, description="Features down or degraded.")


def severity_for_users(pct: float) -> Severity:
    if pct > 50:
        return Severity.P0
    if pct >= 10:
        return Severity.P1
    if pct >= 1:
        return Severity.P2
    return Severity.P3


_STATUS = {
    ServiceStatus.DOWN: Severity.P0,
    ServiceStatus.DEGRADED: Severity.P1,
    ServiceStatus.SLOW: Severity.P2,
    ServiceStatus.MINOR: Severity.P3,
}
_DATA_LOSS = {
    Level.CRITICAL: Severity.P0,
    Level.HIGH: Severity.P0,
    Level.MEDIUM: Severity.P1,
    Level.LOW: Severity.P2,
    Level.NONE: Severity.P3,
}
_REVENUE = {
    Level.CRITICAL: Severity.P0,
    Level.HIGH: Severity.P1,
    Level.MEDIUM: Severity.P2,
    Level.LOW: Severity.P3,
    Level.NONE: Severity.P3,
}


def matrix_rows(impact: Impact) -> dict[str, Severity]:
    """The severity each row of the seed's matrix gives for this impact."""
    return {
        "users": severity_for_users(impact.users_affected_pct),
        "status": _STATUS[impact.service_status],
        "data_loss": _DATA_LOSS[impact.data_loss_risk],
        "revenue": _REVENUE[impact.revenue_impact],
    }


def true_severity(impact: Impact) -> Severity:
    """The most severe row wins (see module docstring)."""
    return min(matrix_rows(impact).values(), key=lambda s: s.rank)
