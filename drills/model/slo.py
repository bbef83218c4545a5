"""Service level objectives: what a service promises its users, from which drills makes burn-rate alerts.

One file per service (``fixtures/slo/<service>.yaml``): an availability objective (the share of requests
that are not 5xx) and a latency objective (the share faster than a threshold) over a window, as the SRE
Workbook writes them. :mod:`drills.engine.slo` turns it into Prometheus recording rules and the workbook's
multiwindow, multi-burn-rate alerts, with the windows scaled down to drill time (``time_scale``). No I/O here.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drills.model.durations import Duration

_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class LatencyObjective(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    objective_pct: float = Field(gt=0, lt=100, description="Share of requests faster than `threshold`, %.")
    threshold: Duration = Field(description="One of the latency histogram's bucket bounds (e.g. 500ms).")


class Slo(BaseModel):
    """An SLO file: a service's availability and latency objectives over a window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(pattern=_NAME, description="The service of the service graph (the `service` label).")
    window: Duration = Field(
        default=timedelta(days=30), description="The SLO window the budget is spent over."
    )
    availability_pct: float = Field(gt=0, lt=100, description="Share of requests that are not 5xx, %.")
    latency: LatencyObjective | None = None
    time_scale: float = Field(
        default=60,
        ge=1,
        le=100_000,
        description="Drill time runs this many times faster than the workbook's windows: with 60, the 1 h "
        "page window is 60 s in a drill and its 5 m short window 5 s.",
    )

    @model_validator(mode="after")
    def _window(self) -> Slo:
        if self.window < timedelta(hours=1):
            raise ValueError("window must be at least 1h (SLO windows are days or weeks)")
        return self

    @property
    def error_budget(self) -> float:
        """The availability SLO's budget as a ratio (99.9 % -> 0.001)."""
        return 1.0 - self.availability_pct / 100.0
