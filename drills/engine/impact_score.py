"""What the scorecard says about measured impact: the figures, the error budget burned, how fast the
scenario's SLO alert can fire, the scenario's own consistency, and responder changes that raised impact.

Kept apart from :mod:`drills.engine.scoring` (which only calls :func:`impact_parts`) because none of this
changes the score's arithmetic: the checks that use measured impact (severity accuracy, TTM to impact
reduced, resolving while users are affected) are judged in :mod:`drills.engine.judges`; here are the facts
beside them. Pure: the journal's events in, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drills.engine.judges import Drill
from drills.engine.measured import STATUS_ROW, disagreement, fault_error_ratio
from drills.engine.slo import AlertSeverity, alert_name, rule_floor, slis
from drills.model.scorecard import AlertFloor, ErrorBudgetBurn, MeasuredImpactSummary
from drills.model.severity import true_severity
from drills.model.slo import Slo

__all__ = ["ImpactParts", "alert_floors", "error_budget", "impact_parts"]


@dataclass(frozen=True)
class ImpactParts:
    summary: MeasuredImpactSummary | None = None
    error_budget: list[ErrorBudgetBurn] = field(default_factory=list)
    alert_floors: list[AlertFloor] = field(default_factory=list)
    scenario_warnings: list[str] = field(default_factory=list)
    #: Findings: responder changes that raised impact, expected alerts too slow for the seed's MTTD.
    findings: list[str] = field(default_factory=list)


def impact_parts(d: Drill) -> ImpactParts:
    """Everything the scorecard shows about measured impact (empty without impact samples)."""
    tl, m = d.tl, d.measured
    if m is None or tl.t0 is None or d.end is None:
        return ImpactParts()
    declared = true_severity(d.started.impact) if d.started.impact is not None else d.severity
    worst = next((k for k, v in STATUS_ROW.items() if v == m.worst_status), "ok")
    summary = MeasuredImpactSummary(
        severity=d.measured_severity or d.severity,
        declared_severity=declared,
        peak_users_affected_pct=round(m.peak_users_affected_pct, 1),
        peak_users_affected=round(m.peak_users_affected),
        worst_status=worst,
        user_minutes=round(m.user_minutes, 1),
        requests=round(m.requests),
        failed_requests=round(m.failed_requests),
        features_down=list(m.features_down),
        affected_at_end_pct=tl.impact[-1].users_affected_pct if tl.impact else 0.0,
    )
    warnings = []
    if d.measured_severity is not None and d.started.impact is not None:
        words = disagreement(d.measured_severity, declared)
        if words:
            warnings.append(f"Scenario check (for its author, not the responders): {words}.")
    floors = alert_floors(d)
    findings = [
        f"A responder change raised impact: {r.describe()}; the runbook step may need a warning or a "
        "safer form."
        for r in tl.raised_impact
    ]
    findings.extend(
        f"The expected alert cannot meet the seed's MTTD at this fault's error rate: {f.text}; its burn-rate "
        "windows may be too long for this failure."
        for f in floors
        if not f.meets_mttd
    )
    return ImpactParts(summary, error_budget(d), floors, warnings, findings)


def error_budget(d: Drill) -> list[ErrorBudgetBurn]:
    """The availability budget each recorded SLO allows over its window (drill-scaled, at the drill's
    traffic) and the share of it the drill's failed requests spent."""
    m, tl = d.measured, d.tl
    if m is None or tl.t0 is None or d.end is None:
        return []
    seconds = (d.end - tl.t0).total_seconds()
    out = []
    for slo in d.started.slos:
        rate = m.requests / seconds if seconds > 0 else 0.0
        window = slo.window.total_seconds() / slo.time_scale
        budget = slo.error_budget * rate * window
        out.append(
            ErrorBudgetBurn(
                service=slo.service,
                availability_pct=slo.availability_pct,
                window=slo.window,
                time_scale=slo.time_scale,
                requests=round(m.requests),
                failed=round(m.failed_requests),
                error_ratio=round(m.failed_requests / m.requests, 6) if m.requests else 0.0,
                budget_requests=round(budget, 1),
                burned_pct=round(100.0 * m.failed_requests / budget, 1) if budget > 0 else 0.0,
            )
        )
    return out


_SEVERITIES: tuple[AlertSeverity, ...] = ("page", "ticket")


def _expected(slos: list[Slo], name: str | None) -> tuple[Slo, str, AlertSeverity] | None:
    for slo in slos:
        for sli in slis(slo):
            for severity in _SEVERITIES:
                if alert_name(slo, sli, severity) == name:
                    return slo, sli, severity
    return None


def alert_floors(d: Drill) -> list[AlertFloor]:
    """For the scenario's expected SLO alert: the fastest TTD its rule can reach at the fault's error ratio
    (:func:`drills.engine.slo.rule_floor`), against the MTTD target. Latency alerts need the share of slow
    requests, which the samples do not carry: only availability alerts get a floor."""
    tl = d.tl
    found = _expected(d.started.slos, d.started.expected_alert)
    if found is None or tl.t0 is None or d.end is None or not tl.impact:
        return []
    slo, sli, severity = found
    if sli != "availability":
        return []
    until = tl.mitigated or d.end
    ratio = fault_error_ratio(tl.impact, tl.t0, until if until > tl.t0 else d.end)
    floor = rule_floor(slo, sli, severity, ratio, mttd_target=d.targets.mttd)
    return [
        AlertFloor(
            alert=floor.alert,
            error_ratio=round(ratio, 6),
            drill_seconds=floor.drill_seconds,
            production_seconds=floor.production_seconds,
            mttd_target_seconds=floor.mttd_target_seconds,
            meets_mttd=floor.meets_mttd,
            text=floor.describe(),
        )
    ]
