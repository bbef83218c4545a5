"""Measured severity, impact reduced and user-minutes from synthetic impact samples (drills.engine.measured)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drills.engine.measured import (
    ImpactPoint,
    disagreement,
    impact_reduced_at,
    measured_impact,
    measured_severity,
)
from drills.model.severity import Impact, Level, ServiceStatus, Severity

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def point(
    s: float,
    pct: float,
    status: str = "ok",
    users: float = 0.0,
    failed: float = 0.0,
    down: tuple[str, ...] = (),
) -> ImpactPoint:
    return ImpactPoint(at(s), pct, users or pct * 10, status, 1000.0, failed, down)


BAD_DEPLOY = [
    point(-30, 0.0),
    point(2, 100.0, "down", 950, 1000, ("browse", "cart", "checkout")),
    point(120, 0.4),
    point(121, 0.0),
]


def test_a_crashing_release_measures_p0_from_users_and_status() -> None:
    m = measured_impact(BAD_DEPLOY, T0, at(300))
    assert m.peak_users_affected_pct == 100.0
    assert m.worst_status == ServiceStatus.DOWN
    assert measured_severity(m) == Severity.P0
    # 950 users affected for 118 s
    assert abs(m.user_minutes - (950 * 118 / 60 + 4 * 1 / 60)) < 0.5
    assert abs(m.failed_requests - 1000 * 118) < 1e-6
    assert m.features_down == ("browse", "cart", "checkout")


def test_a_slow_service_is_p2_by_status_when_few_users_are_affected() -> None:
    m = measured_impact([point(0, 0.0), point(5, 6.0, "slow"), point(200, 0.0)], T0, at(400))
    assert m.worst_status == ServiceStatus.SLOW
    assert measured_severity(m) == Severity.P2


def test_the_most_severe_row_wins() -> None:
    # few users, but the declared data-loss risk is high: P0 (users and status can't show data loss)
    m = measured_impact([point(5, 3.0, "degraded")], T0, at(60))
    declared = Impact(
        users_affected_pct=3,
        service_status=ServiceStatus.DEGRADED,
        data_loss_risk=Level.HIGH,
        revenue_impact=Level.LOW,
    )
    assert measured_severity(m) == Severity.P1  # degraded
    assert measured_severity(m, declared) == Severity.P0


def test_samples_before_t0_do_not_count_but_the_one_in_force_at_t0_does() -> None:
    m = measured_impact([point(-100, 80.0, "down"), point(-10, 0.0)], T0, at(60))
    assert m.peak_users_affected_pct == 0.0
    assert m.worst_status is None
    in_force = measured_impact([point(-5, 40.0, "degraded")], T0, at(10))
    assert in_force.peak_users_affected_pct == 40.0


def test_impact_reduced_is_the_start_of_the_first_period_that_lasts_the_window() -> None:
    window = timedelta(seconds=30)
    # under 1 % at 60 s, back over at 70 s (a flap), under again at 90 s for good
    points = [
        point(-5, 0.0),
        point(1, 100.0, "down"),
        point(60, 0.5),
        point(70, 60.0, "down"),
        point(90, 0.2),
    ]
    assert impact_reduced_at(points, T0, threshold_pct=1.0, healthy_for=window, now=at(110)) is None
    assert impact_reduced_at(points, T0, threshold_pct=1.0, healthy_for=window, now=at(121)) == at(90)


def test_no_impact_means_nothing_to_reduce() -> None:
    points = [point(-5, 0.0), point(30, 0.3)]
    assert (
        impact_reduced_at(points, T0, threshold_pct=1.0, healthy_for=timedelta(seconds=10), now=at(600))
        is None
    )


def test_impact_reduced_at_the_threshold_is_not_reduced() -> None:
    points = [point(0, 50.0, "degraded"), point(10, 1.0, "degraded")]
    assert (
        impact_reduced_at(points, T0, threshold_pct=1.0, healthy_for=timedelta(seconds=5), now=at(100))
        is None
    )


def test_the_author_is_warned_when_measured_and_declared_disagree() -> None:
    assert disagreement(Severity.P1, Severity.P1) is None
    text = disagreement(Severity.P2, Severity.P0)
    assert text is not None and "declares P0" in text and "measures P2" in text
