"""Measured impact over a drill: severity by the seed's matrix, "impact reduced", what users lost.

The virtual users (:mod:`drills.engine.impact`) give one sample a second; the journal keeps a sample only
when it changed (an ``impact.sample`` holds until the next one). From those, as the seed defines them:

- **measured severity**: the seed's matrix read row by row, the most severe row winning (as
  :func:`drills.model.severity.true_severity` does for a declared impact): the users row from the *peak*
  share of users affected, the service-status row from the worst status seen (Down: no successful request;
  Degraded: error ratio over the SLO's budget; Slow: latency SLO broken while errors stay low). Data-loss
  risk and revenue impact cannot be seen in traffic: they come from the scenario's declared impact;
- **impact reduced** (where MTTM ends): the start of the first period after T0, once users were affected,
  in which the share affected stays under the scenario's threshold for the whole healthy window;
- what users lost: user-minutes (users affected x minutes), failed requests, features that went down.

Pure: samples in (each with its own time), no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drills.model.events import Event, ImpactSampled
from drills.model.severity import Impact, Level, ServiceStatus, Severity, severity_for_users, true_severity

#: The model's statuses as the seed's "Service Status" row; "ok" is no impact at all.
STATUS_ROW: dict[str, ServiceStatus | None] = {
    "ok": None,
    "slow": ServiceStatus.SLOW,
    "degraded": ServiceStatus.DEGRADED,
    "down": ServiceStatus.DOWN,
}
_STATUS_ORDER = {
    None: 0,
    ServiceStatus.MINOR: 1,
    ServiceStatus.SLOW: 2,
    ServiceStatus.DEGRADED: 3,
    ServiceStatus.DOWN: 4,
}


@dataclass(frozen=True)
class ImpactPoint:
    """One journaled sample: the rates of one second, holding until the next sample."""

    at: datetime
    users_affected_pct: float
    users_affected: float
    status: str
    requests_per_second: float = 0.0
    failed_per_second: float = 0.0
    features_down: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasuredImpact:
    peak_users_affected_pct: float
    worst_status: ServiceStatus | None
    user_minutes: float
    failed_requests: float
    features_down: tuple[str, ...] = field(default_factory=tuple)
    requests: float = 0.0
    peak_users_affected: float = 0.0

    def as_impact(self, declared: Impact | None) -> Impact:
        """An :class:`Impact` with the measured rows and the declared data-loss and revenue rows."""
        return Impact(
            users_affected_pct=min(100.0, self.peak_users_affected_pct),
            service_status=self.worst_status or ServiceStatus.MINOR,
            data_loss_risk=declared.data_loss_risk if declared else Level.NONE,
            revenue_impact=declared.revenue_impact if declared else Level.LOW,
            features=list(self.features_down),
        )


def points(events: Sequence[Event]) -> list[ImpactPoint]:
    """The journal's impact samples as points, in time order."""
    return [
        ImpactPoint(
            at=e.at,
            users_affected_pct=e.users_affected_pct,
            users_affected=float(e.users_affected),
            status=e.status,
            requests_per_second=e.requests_per_second,
            failed_per_second=e.failed_per_second,
            features_down=tuple(e.features_down),
        )
        for e in sorted((e for e in events if isinstance(e, ImpactSampled)), key=lambda e: e.at)
    ]


def _ordered(points: Sequence[ImpactPoint]) -> list[ImpactPoint]:
    return sorted(points, key=lambda p: p.at)


def measured_impact(points: Sequence[ImpactPoint], start: datetime, end: datetime) -> MeasuredImpact:
    """What users saw between ``start`` (T0) and ``end``: a sample before T0 holds from T0 on."""
    ordered = _ordered(points)
    peak = 0.0
    worst: ServiceStatus | None = None
    user_minutes = 0.0
    failed = 0.0
    down: list[str] = []
    requests = 0.0
    peak_users = 0.0
    for i, p in enumerate(ordered):
        until = ordered[i + 1].at if i + 1 < len(ordered) else end
        lo, hi = max(p.at, start), min(until, end)
        if hi <= lo:
            continue  # not in force during the drill (before T0, after the end, or replaced at once)
        seconds = (hi - lo).total_seconds()
        peak = max(peak, p.users_affected_pct)
        peak_users = max(peak_users, p.users_affected)
        requests += p.requests_per_second * seconds
        status = STATUS_ROW.get(p.status)
        if _STATUS_ORDER[status] > _STATUS_ORDER[worst]:
            worst = status
        user_minutes += p.users_affected * seconds / 60.0
        failed += p.failed_per_second * seconds
        down.extend(f for f in p.features_down if f not in down)
    return MeasuredImpact(
        peak,
        worst,
        user_minutes,
        failed,
        tuple(sorted(down)),
        requests=requests,
        peak_users_affected=peak_users,
    )


def fault_error_ratio(points: Sequence[ImpactPoint], start: datetime, end: datetime) -> float:
    """The error ratio users saw while the fault was at its worst: over the samples from ``start`` whose
    error ratio is at least half the peak's, until ``end``. An SLO alert's floor is read at this ratio."""
    ordered = _ordered(points)
    spans: list[tuple[float, float, float]] = []  # (seconds, requests/s, failed/s)
    for i, p in enumerate(ordered):
        until = ordered[i + 1].at if i + 1 < len(ordered) else end
        lo, hi = max(p.at, start), min(until, end)
        if hi > lo and p.requests_per_second > 0:
            spans.append(((hi - lo).total_seconds(), p.requests_per_second, p.failed_per_second))
    if not spans:
        return 0.0
    peak = max(f / r for _, r, f in spans)
    if peak <= 0:
        return 0.0
    worst = [(s, r, f) for s, r, f in spans if f / r >= peak / 2]
    return sum(s * f for s, _, f in worst) / sum(s * r for s, r, _ in worst)


def measured_severity(measured: MeasuredImpact, declared: Impact | None = None) -> Severity:
    """The seed's matrix over what was measured (data loss and revenue from the declared impact)."""
    return true_severity(measured.as_impact(declared))


def users_row(measured: MeasuredImpact) -> Severity:
    return severity_for_users(measured.peak_users_affected_pct)


def impact_reduced_at(
    points: Sequence[ImpactPoint],
    start: datetime,
    *,
    threshold_pct: float,
    healthy_for: timedelta,
    now: datetime,
) -> datetime | None:
    """The first instant after ``start`` when users affected went under ``threshold_pct`` and stayed under
    for ``healthy_for`` (the journal, or ``now``, reaching past it); None while that has not happened.

    Only after users were affected at or over the threshold after T0: a drill in which nobody was affected
    has no impact to reduce.
    """
    ordered = _ordered(points)
    affected_seen = False
    candidate: datetime | None = None
    for p in ordered:
        at = max(p.at, start)
        if p.at < start and not affected_seen:
            # the sample in force at T0
            if p.users_affected_pct >= threshold_pct:
                affected_seen = True
            continue
        if p.users_affected_pct >= threshold_pct:
            affected_seen = True
            if candidate is not None and at - candidate < healthy_for:
                candidate = None
            elif candidate is not None:
                return candidate
        elif affected_seen and candidate is None:
            candidate = at
    if candidate is not None and now - candidate >= healthy_for:
        return candidate
    return None


def disagreement(measured: Severity, declared: Severity) -> str | None:
    """A warning for the scenario's author when the measured and declared severities differ."""
    if measured == declared:
        return None
    return (
        f"the scenario declares {declared.value}, but what users saw measures {measured.value}: "
        "adjust the scenario's impact, or the fault"
    )
