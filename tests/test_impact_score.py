"""Measured impact in the scorecard, from synthetic impact samples: severity accuracy against what users saw,
TTM to impact reduced (the probes' health beside it), the error budget burned, responder changes that
raised impact, resolving while users are affected, and the SLO alert's floor against the MTTD target."""

from __future__ import annotations

from datetime import timedelta

from builders import DrillBuilder, passing_drill
from hypothesis import given, settings
from hypothesis import strategies as st

from drills.engine.scoring import score
from drills.engine.timeline import build, ordered
from drills.model.events import ActionKind
from drills.model.policy import Policy
from drills.model.scorecard import Check, CheckStatus, Scorecard
from drills.model.severity import Impact, Level, ServiceStatus, Severity
from drills.model.slo import Slo

PASS, FAIL = CheckStatus.PASS, CheckStatus.FAIL
APP_SLO = Slo(service="app", availability_pct=99.9, time_scale=60)
P0_IMPACT = Impact(
    users_affected_pct=100,
    service_status=ServiceStatus.DOWN,
    data_loss_risk=Level.NONE,
    revenue_impact=Level.LOW,
)


def check(sc: Scorecard, check_id: str) -> Check:
    return next(c for c in sc.checks if c.id == check_id)


def outage(b: DrillBuilder, *, reduced: str = "5m20s") -> DrillBuilder:
    """Everyone affected from 10 s until ``reduced`` (then nobody)."""
    b.at("10s").impact(100, down=("browse", "cart", "checkout"))
    b.at(reduced).impact(0)
    return b


def test_ttm_runs_to_impact_reduced_with_the_probes_health_beside_it() -> None:
    b = outage(passing_drill("P0"))  # ack at 2m, probes healthy from 6m
    sc = score(b.events)
    clocks = sc.clocks
    assert clocks.impact_reduced == b.time("5m20s")
    assert clocks.mitigated == b.time("5m20s")
    assert clocks.health_mitigated == b.time("6m")
    assert clocks.ttm == timedelta(minutes=3, seconds=20)
    assert clocks.ttm_health == timedelta(minutes=4)
    assert clocks.mitigated_by == "human"
    assert check(sc, "mttm.p0").measured == timedelta(minutes=3, seconds=20)
    assert sc.passed


def test_users_still_affected_when_the_probes_say_healthy_is_no_mitigation() -> None:
    # the probes hold from 6m but half the users still fail (a dependency the probes don't see)
    b = passing_drill("P0")
    b.at("10s").impact(100)
    b.at("5m").impact(50, down=("cart", "checkout"))
    sc = score(b.events)
    assert sc.clocks.health_mitigated == b.time("6m")
    assert sc.clocks.mitigated is None and sc.clocks.ttm is None
    mttm = check(sc, "mttm.p0")
    assert mttm.status == FAIL
    assert "users affected never stayed under 1 %" in mttm.detail


def test_severity_accuracy_is_judged_against_the_measured_severity() -> None:
    # declared impact P0, but only 5 % of users saw slow responses: measured P2
    b = passing_drill("P0", impact=P0_IMPACT)
    b.at("10s").impact(5, "slow", failed=0)
    b.at("5m20s").impact(0)
    sc = score(b.events)
    acc = check(sc, "severity.accuracy")
    assert acc.status == FAIL
    assert "measured P2" in acc.detail and "over-declared by 2 levels" in acc.detail
    assert sc.impact is not None and sc.impact.severity == Severity.P2
    assert sc.impact.declared_severity == Severity.P0
    assert sc.scenario_warnings and "declares P0" in sc.scenario_warnings[0]
    assert "measures P2" in sc.scenario_warnings[0]
    # the author's check is not the responder's fault: no finding blames the declaration
    assert not any("Scenario check" in f for f in sc.findings)


def test_declaring_the_measured_severity_passes_and_the_declared_impact_is_the_fallback() -> None:
    b = passing_drill("P2", impact=P0_IMPACT)
    b.at("10s").impact(5, "slow", failed=0)
    b.at("5m20s").impact(0)
    assert check(score(b.events), "severity.accuracy").status == PASS
    # no samples: the declared (true) severity decides, as before
    plain = passing_drill("P2")
    assert check(score(plain.events), "severity.accuracy").status == PASS
    assert score(plain.events).impact is None


def test_no_warning_when_measured_and_declared_agree() -> None:
    sc = score(outage(passing_drill("P0", impact=P0_IMPACT)).events)
    assert sc.impact is not None and sc.impact.severity == Severity.P0
    assert sc.scenario_warnings == []
    assert check(sc, "severity.accuracy").status == PASS


def test_the_measured_figures_for_the_postmortem() -> None:
    sc = score(outage(passing_drill("P0")).events)
    m = sc.impact
    assert m is not None
    assert m.peak_users_affected_pct == 100 and m.peak_users_affected == 1000
    assert m.worst_status == "down"
    assert m.features_down == ["browse", "cart", "checkout"]
    # 1000 users for 310 s
    assert abs(m.user_minutes - 1000 * 310 / 60) < 0.1
    assert m.failed_requests == 1000 * 310


def test_the_error_budget_burned_per_slo() -> None:
    b = outage(passing_drill("P0", slos=[APP_SLO]))
    sc = score(b.events)
    (burn,) = sc.error_budget
    assert burn.service == "app"
    # samples from 10 s of a 10 min drill: 590,000 requests, 983 req/s; the 30 d window / 60 = 12 h:
    # 0.001 x 983.3 x 43200 = 42,480 failures allowed
    assert burn.requests == 590_000
    assert burn.budget_requests == 42480
    assert burn.failed == 310_000
    assert burn.burned_pct == round(100 * 310_000 / 42480, 1)


def test_a_responder_change_that_raised_impact_is_recorded_in_the_timeline_and_findings() -> None:
    b = passing_drill("P0")
    b.at("10s").impact(100)
    b.at("5m20s").impact(0)
    b.at("7m").action(ActionKind.DELETED, object="deployment/production/db-proxy", destructive=True)
    b.at("7m3s").impact(48.5, "degraded", down=("cart", "checkout"))
    b.at("7m30s").action(ActionKind.SCALE, object="deployment/production/worker")  # no rise after this
    tl = build(b.events)
    (raised,) = tl.raised_impact
    assert raised.action.object == "deployment/production/db-proxy"
    assert (raised.before_pct, raised.after_pct) == (0.0, 48.5)
    assert raised.features_down == ("cart", "checkout")
    sc = score(b.events)
    deleted = next(a for a in sc.actions if a["object"] == "deployment/production/db-proxy")
    assert "raised impact: users affected 0.0 % -> 48.5 % within 3s" in str(deleted["raised_impact"])
    assert not any(
        "raised_impact" in a for a in sc.actions if a["object"] != "deployment/production/db-proxy"
    )
    assert any(
        f.startswith("A responder change raised impact: deleted deployment/production/db-proxy")
        for f in sc.findings
    )


def test_a_blip_while_a_rollback_swaps_pods_is_not_a_rise() -> None:
    # seen on the cluster: 87.6 % when the rollback was made, 93.8 % for a tenth of a second, then 0.1 %
    b = passing_drill("P0")
    b.at("10s").impact(87.6, "degraded")
    b.at("60s").action(ActionKind.ROLLBACK, object="deployment/production/app")
    b.at("60.1s").impact(93.8, "degraded")
    b.at("60.2s").impact(0.1)
    assert build(b.events).raised_impact == ()
    # the same rise held for a second is one
    b2 = passing_drill("P0")
    b2.at("10s").impact(87.6, "degraded")
    b2.at("60s").action(ActionKind.ROLLBACK, object="deployment/production/app")
    b2.at("60.1s").impact(93.8, "degraded")
    b2.at("61.1s").impact(0.1)
    assert len(build(b2.events).raised_impact) == 1


def test_a_rise_long_after_a_change_or_caused_by_the_fault_is_not_the_responders() -> None:
    b = passing_drill("P0")
    b.at("5m").action(ActionKind.SCALE, object="deployment/drills-shop/shop")
    b.at("5m30s").impact(60)  # 30 s later: not the change's
    b.at("6m").impact(0)
    assert build(b.events).raised_impact == ()
    # the fault raising impact before anyone changed anything is no responder's
    b2 = DrillBuilder()
    b2.at("2s").impact(100)
    assert build(b2.events).raised_impact == ()


def test_resolving_while_users_are_still_affected_cannot_pass() -> None:
    b = passing_drill("P2")
    b.at("10s").impact(40)
    b.at("5m20s").impact(0)
    b.at("7m50s").impact(30, down=("checkout",))  # resolved at 8m with 30 % affected
    b.at("8m10s").impact(0)
    sc = score(b.events)
    res = check(sc, "resolution.healthy")
    assert res.status == FAIL
    assert "30.0 % of users were still affected" in res.detail
    assert sc.clocks.resolved_while_affected
    assert not sc.passed and sc.score <= Policy().pass_score - 0.1
    assert "core SLA resolution.healthy failed" in sc.score_explained
    # the same drill without the relapse at resolution passes
    ok = passing_drill("P2")
    ok.at("10s").impact(40)
    ok.at("5m20s").impact(0)
    assert score(ok.events).passed


def test_an_impact_sample_sorts_after_the_action_and_before_the_alert_at_one_instant() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("1m").impact(100)
    b.at("1m").action(ActionKind.SCALE)
    types = [e.type for e in ordered(reversed(b.events)) if e.at == b.time("1m")]
    assert types == ["action.observed", "impact.sample", "alert.fired"]


def test_an_slo_alert_too_slow_for_the_seeds_mttd_is_a_finding() -> None:
    # 2 % of requests fail: the page alert's fastest row needs 14.4 x 0.1 % / 2 % of its 60 s window and
    # its 5 s short window: 43 s of drill time = 43 min in production, over the seed's 5 min
    b = passing_drill("P2", slos=[APP_SLO], expected_alert="AppAvailabilityBurnRatePage")
    b.at("10s").impact(2, failed=20)
    b.at("5m20s").impact(0)
    sc = score(b.events)
    (floor,) = sc.alert_floors
    assert floor.alert == "AppAvailabilityBurnRatePage"
    assert floor.error_ratio == 0.02
    assert floor.production_seconds is not None and floor.production_seconds > 40 * 60
    assert not floor.meets_mttd
    assert floor.mttd_target_seconds == 300
    assert any("cannot meet the seed's MTTD" in f and "AppAvailabilityBurnRatePage" in f for f in sc.findings)


def test_an_slo_alert_fast_enough_is_shown_without_a_finding() -> None:
    b = outage(passing_drill("P0", slos=[APP_SLO], expected_alert="AppAvailabilityBurnRatePage"))
    sc = score(b.events)
    (floor,) = sc.alert_floors
    assert floor.meets_mttd and floor.drill_seconds is not None and floor.drill_seconds < 10
    assert not any("cannot meet" in f for f in sc.findings)


# ---- doing less never scores more, with users measured -------------------------------------------------

_PCT = {Severity.P0: 100.0, Severity.P1: 30.0, Severity.P2: 5.0, Severity.P3: 0.5}
_STATUS = {Severity.P0: "down", Severity.P1: "degraded", Severity.P2: "slow", Severity.P3: "ok"}
STEPS = ("ack", "declare", "ic", "initial", "escalate", "ticket", "evidence", "mitigate", "resolve")


def play(severity: Severity, steps: dict[str, int], end: int) -> DrillBuilder:
    b = DrillBuilder(severity=severity)
    b.at("10s").unhealthy().impact(
        _PCT[severity], _STATUS[severity], failed=0 if severity.rank >= 2 else None
    )
    b.at("1m").alert()
    mitigate = steps.get("mitigate")
    for step, at in sorted(steps.items(), key=lambda kv: (kv[1], STEPS.index(kv[0]))):
        b.at(at)
        match step:
            case "ack":
                b.ack()
            case "declare":
                b.declare()
            case "ic":
                b.assign("ic", "alice")
            case "initial":
                b.comms("initial_alert")
            case "escalate":
                b.escalate({Severity.P0: "engineering-leadership"}.get(severity, "engineering-lead"))
            case "ticket":
                b.ticket()
            case "evidence":
                b.evidence()
            case "mitigate":
                b.action("rollback").note("rolled back shop").after("1s").healthy().after("1s").impact(0)
            case "resolve":
                if mitigate is not None and at >= mitigate + 40:
                    b.resolve().comms("resolution")
                    if severity == Severity.P0:
                        b.comms("statuspage_resolved").comms("customer_email")
    b.at(end).end("aborted")
    return b


minutes = st.integers(min_value=0, max_value=60).map(lambda m: m * 60 + 15)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(list(Severity)),
    st.dictionaries(st.sampled_from(STEPS), minutes),
    st.integers(min_value=1, max_value=70).map(lambda m: m * 60 + 30),
    st.data(),
)
def test_doing_less_never_scores_more_with_measured_impact(
    severity: Severity, steps: dict[str, int], end: int, data: st.DataObject
) -> None:
    steps = {k: v for k, v in steps.items() if v < end}
    fewer = data.draw(st.sets(st.sampled_from(sorted(steps))) if steps else st.just(set()))
    less = score(play(severity, {k: v for k, v in steps.items() if k not in fewer}, end).events)
    more = score(play(severity, steps, end).events)
    assert more.score >= less.score, (fewer, less.score_explained, more.score_explained)
    assert more.passed or not less.passed


def test_drill_score_prints_what_users_saw_beside_the_checks() -> None:
    from io import StringIO

    from rich.console import Console

    from drills.reporting.terminal import scorecard_renderable

    b = outage(passing_drill("P0", slos=[APP_SLO]))
    out = StringIO()
    Console(file=out, width=160).print(scorecard_renderable(score(b.events)))
    text = out.getvalue()
    assert "TTM to impact reduced 3m20s; to the probes' health 4m00s" in text
    assert "users affected peak 1,000 (100%)" in text and "features down: browse, cart, checkout" in text
    assert "of app's 99.9% budget burned" in text
    plain = StringIO()
    Console(file=plain, width=160).print(scorecard_renderable(score(passing_drill("P0").events)))
    assert "What users saw" not in plain.getvalue()
