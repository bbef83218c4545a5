"""The scorer: every check passing and failing, the score formula, blameless findings and determinism."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from builders import DrillBuilder, passing_drill
from hypothesis import given, settings
from hypothesis import strategies as st

from drills.engine.rules import RULES
from drills.engine.scoring import HINT_COST_CAP, grade, score
from drills.errors import JournalError
from drills.model.events import ActionKind, ActorKind, Mode, Outcome
from drills.model.policy import Policy, ScoringWeights, SlaOverrides
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Scorecard
from drills.model.severity import Severity

PASS, FAIL, NA, NOT_MEASURED = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.NOT_APPLICABLE,
    CheckStatus.NOT_MEASURED,
)


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def check(sc: Scorecard, check_id: str) -> Check:
    return next(c for c in sc.checks if c.id == check_id)


def status(b: DrillBuilder, check_id: str, policy: Policy | None = None) -> CheckStatus:
    return check(score(b.events, policy), check_id).status


def response(
    severity: str = "P0",
    *,
    alert: str | None = "1m",
    ack: str | None = "2m",
    triage: str | None = "2m",
    mitigate: str | None = "6m",
    resolve: str | None = "8m",
    end: str | None = "10m",
    **kwargs: object,
) -> DrillBuilder:
    """A bare response (no comms, escalation or discipline events) with the main instants movable."""
    b = DrillBuilder(severity=severity, **kwargs)  # type: ignore[arg-type]
    b.at("10s").unhealthy()
    if alert:
        b.at(alert).alert()
    if ack:
        b.at(ack).ack()
    if triage:
        b.at(triage).declare().assign("ic", "alice")
    if mitigate:
        b.at(mitigate).action("rollback").note().after("1s").healthy()
    if resolve:
        b.at(resolve).resolve()
    if end:
        b.at(end).end("resolved" if resolve else "timed_out")
    return b


# ---- the whole scorecard -------------------------------------------------------------------------


@pytest.mark.parametrize("severity", list(Severity))
def test_a_complete_response_passes_every_rule_that_applies(severity: Severity) -> None:
    sc = score(passing_drill(severity).events)
    assert [c.id for c in sc.checks] == [r.id for r in RULES]
    judged = {c.id: c.status for c in sc.checks if c.status != NA}
    assert set(judged.values()) <= {PASS, NOT_MEASURED}, judged
    assert sc.score == 100.0
    assert sc.grade == "A"
    assert sc.passed
    assert sc.findings == []
    assert sc.improve_next is None
    assert sc.severity_correct
    assert sc.true_severity == sc.declared_severity == severity


def test_rules_for_other_severities_are_listed_as_not_applicable_with_their_targets() -> None:
    sc = score(passing_drill(Severity.P0).events)
    p1 = check(sc, "mtta.p1")
    assert p1.status == NA
    assert p1.target == m(30)
    assert p1.detail.startswith("not applicable: the rule binds P1; this incident is P0")
    p2 = check(score(passing_drill(Severity.P2).events), "escalation.p0_leadership")
    assert p2.detail == "not applicable: P2 incidents need no leadership notification (P0 only)"
    assert check(sc, "escalation.p2p3_ticket").status == NA


def test_every_check_cites_a_seed_line_and_states_its_rule() -> None:
    for c in score(passing_drill().events).checks:
        assert re.fullmatch(r"incident-response-framework\.md:\d+", c.citation), c
        assert c.rule


def test_scorecard_carries_the_scenario_and_the_observed_actions() -> None:
    b = passing_drill(Severity.P1)
    sc = score(b.events)
    assert (sc.drill_id, sc.scenario_id, sc.mode, sc.trainee) == (
        "drill-0001",
        "bad-deploy-rollback",
        "training",
        "alice",
    )
    assert sc.outcome == "resolved"
    assert sc.started == b.start
    assert [(a["kind"], a["actor"], a["actor_kind"]) for a in sc.actions] == [
        ("evidence_read", "alice", "responder"),
        ("rollback", "alice", "responder"),
    ]
    assert sc.actions[1]["at"] == b.time("5m").isoformat()


def test_a_journal_without_drill_started_cannot_be_scored() -> None:
    events = passing_drill().events[1:]
    with pytest.raises(JournalError, match=r"no drill\.started"):
        score(events)


def test_invalid_sla_overrides_name_the_field() -> None:
    b = DrillBuilder(sla={"mtta_p9": "5m"})
    with pytest.raises(JournalError, match=r"sla_overrides\.mtta_p9"):
        score(b.events)
    b = DrillBuilder(sla={"mtta_p0": "soon"})
    with pytest.raises(JournalError, match=r"sla_overrides\.mtta_p0"):
        score(b.events)


# ---- detection -----------------------------------------------------------------------------------


def test_mttd_is_strictly_under_five_minutes() -> None:
    assert status(response(alert="4m59s", ack="5m"), "mttd") == PASS
    assert status(response(alert="5m", ack="5m"), "mttd") == FAIL
    sc = score(response(alert="7m", ack="8m").events)
    assert check(sc, "mttd").measured == m(7)
    assert any(f.startswith("Detection took 7m00s: the seed asks for under 5m00s") for f in sc.findings)


def test_no_alert_is_a_detection_gap_that_fails_once_the_budget_is_spent() -> None:
    b = response(alert=None)
    b.at("3m").detect()
    sc = score(b.events)
    mttd = check(sc, "mttd")
    assert mttd.status == FAIL
    assert "no alert fired" in mttd.detail
    assert "a person detected it 3m00s after the fault" in mttd.detail
    assert sc.clocks.detection_gap
    assert any(f.startswith("No alert fired for this fault") for f in sc.findings)


def test_no_alert_fails_once_the_drill_ended_and_is_not_done_yet_while_live() -> None:
    b = DrillBuilder()
    b.at("1m").detect()
    live = score(b.events)
    assert check(live, "mttd").status == NOT_MEASURED
    assert check(live, "mttd").detail.startswith("not done yet: no alert so far")
    assert any(f.startswith("No alert fired before the journal ended") for f in live.findings)
    b.at("2m").end("aborted")
    c = check(score(b.events), "mttd")
    assert c.status == FAIL
    assert c.detail.startswith("not done: no alert fired (detection gap)")


# ---- acknowledgement: the seed's readings side by side -------------------------------------------


def test_p0_acknowledgement_rules() -> None:
    sc = score(response(alert="1m", ack="7m", triage="7m").events)
    got = {
        c: check(sc, c).status
        for c in ("mtta.p0", "escalation.p0_ack", "response_time", "oncall.respond_p0_p1", "oncall.ack_all")
    }
    assert got == {
        "mtta.p0": FAIL,
        "escalation.p0_ack": FAIL,
        "response_time": PASS,
        "oncall.respond_p0_p1": FAIL,
        "oncall.ack_all": PASS,
    }
    assert check(sc, "mtta.p0").measured == m(6)


def test_mtta_exactly_at_target_misses_the_strict_kpi_but_meets_the_within_rule() -> None:
    sc = score(response(alert="1m", ack="6m", triage="6m").events)
    assert check(sc, "mtta.p0").status == FAIL  # "<5 minutes"
    assert check(sc, "escalation.p0_ack").status == PASS  # "within 5 minutes"


def test_p1_shows_both_contradictory_readings_of_the_seed() -> None:
    sc = score(
        response("P1", alert="1m", ack="21m", triage="21m", mitigate="25m", resolve="30m", end="31m").events
    )
    assert check(sc, "mtta.p1").status == PASS  # < 30 min (line 402)
    assert check(sc, "escalation.p1_ack").status == PASS  # within 30 min (line 347)
    assert check(sc, "oncall.ack_all").status == FAIL  # all alerts within 15 min (line 455)
    assert check(sc, "oncall.respond_p0_p1").status == FAIL  # P0/P1 within 5 min (line 454)
    assert check(sc, "response_time").status == PASS  # 1 hour (line 60)
    assert check(sc, "mtta.p1").measured == check(sc, "oncall.ack_all").measured == m(20)
    assert {check(sc, "mtta.p1").citation, check(sc, "oncall.ack_all").citation} == {
        "incident-response-framework.md:402",
        "incident-response-framework.md:455",
    }


@pytest.mark.parametrize(
    ("severity", "ack", "expected"),
    [("P2", "4h", PASS), ("P2", "4h2m", FAIL), ("P3", "23h", PASS), ("P3", "25h", FAIL)],
)
def test_severity_table_response_time(severity: str, ack: str, expected: CheckStatus) -> None:
    b = response(severity, alert="1m", ack=ack, triage="5m", mitigate=None, resolve=None, end=None)
    assert status(b, "response_time") == expected


def test_never_acknowledged_fails_once_the_budget_is_spent_else_is_not_measured() -> None:
    late = response(ack=None, triage=None, mitigate=None, resolve=None, end="20m")
    sc = score(late.events)
    assert check(sc, "mtta.p0").status == FAIL
    assert check(sc, "mtta.p0").measured is None
    assert check(sc, "mtta.p0").detail == (
        "not done: nobody acknowledged the page (19m00s after the alert when the drill ended)"
    )
    assert check(sc, "oncall.ack_all").status == FAIL
    # ended inside every budget: still a failure, the drill is over
    early = response(ack=None, triage=None, mitigate=None, resolve=None, end="3m")
    assert status(early, "mtta.p0") == FAIL
    assert status(early, "oncall.ack_all") == FAIL
    # live, inside the budget: not done yet; past it: failed
    live = response(ack=None, triage=None, mitigate=None, resolve=None, end=None)
    live.at("3m").note("looking")
    assert check(score(live.events), "mtta.p0").detail.startswith(
        "not done yet: 2m00s after the alert so far"
    )
    live.at("20m").note("still looking")
    assert check(score(live.events), "mtta.p0").detail.startswith("not done: nobody acknowledged the page by")


def test_pauses_do_not_count_against_the_slas() -> None:
    b = response(alert="1m", ack="12m", triage="12m", mitigate="14m", resolve="16m", end="17m")
    b.at("2m").pause()
    b.at("10m").resume()
    sc = score(b.events)
    assert check(sc, "mtta.p0").status == PASS
    assert check(sc, "mtta.p0").measured == m(3)
    assert "3m00s active (11m00s wall)" in check(sc, "mtta.p0").detail
    assert any("paused for 8m00s" in f for f in sc.findings)


# ---- triage --------------------------------------------------------------------------------------


def test_triage_within_fifteen_minutes() -> None:
    assert status(response(triage="15m"), "triage.within") == PASS
    b = response(triage=None)
    b.at("3m").declare()
    b.at("16m").assign("ic", "bob")
    assert status(b, "triage.within") == FAIL


def test_an_incident_commander_must_be_assigned() -> None:
    b = response(triage=None)
    b.at("3m").declare().assign("tech", "bob")
    sc = score(b.events)
    assert check(sc, "roles.ic").status == FAIL
    # the drill ended without an incident commander: triage was never completed
    triage = check(sc, "triage.within")
    assert triage.status == FAIL
    assert triage.detail.startswith("not done: no incident commander was assigned")
    short = response(triage=None, mitigate=None, resolve=None, end=None)
    assert status(short, "roles.ic") == NOT_MEASURED


def test_severity_accuracy_uses_the_final_declaration() -> None:
    b = response("P0", triage=None)
    b.at("2m").declare("P2").assign("ic", "alice")
    sc = score(b.events)
    c = check(sc, "severity.accuracy")
    assert c.status == FAIL
    assert "under-declared by 2 levels" in c.detail
    assert sc.declared_severity == Severity.P2
    assert not sc.severity_correct
    b.at("4m").declare("P0")
    c = check(score(b.events), "severity.accuracy")
    assert c.status == PASS
    assert "first declared P2, revised" in c.detail


def test_severity_rules_follow_the_true_severity_not_the_declared_one() -> None:
    b = response("P0", triage=None, alert="1m", ack="10m")
    b.at("10m").declare("P1").assign("ic", "alice")
    sc = score(b.events)
    assert check(sc, "mtta.p0").status == FAIL
    assert check(sc, "mtta.p1").status == NA


# ---- communication -------------------------------------------------------------------------------


def test_initial_alert_is_posted_within_five_minutes_of_acknowledgement() -> None:
    ok = response()
    ok.at("7m").comms("initial_alert")
    assert status(ok, "comms.initial_alert") == PASS
    late = response()
    late.at("7m1s").comms("initial_alert")
    assert status(late, "comms.initial_alert") == FAIL
    assert status(response(), "comms.initial_alert") == FAIL  # never posted, resolved: budget spent


def test_status_update_cadence() -> None:
    def drill(*updates: str) -> DrillBuilder:
        b = response("P1", ack="2m", mitigate="40m", resolve="62m", end="63m")
        b.at("3m").comms("initial_alert")
        for u in updates:
            b.at(u).comms("status_update")
        b.at("62m").comms("resolution")
        return b

    sc = score(drill("20m", "45m").events)
    c = check(sc, "comms.status_cadence")
    assert c.status == PASS
    assert c.measured == m(25)
    assert "the 15m00s aim was missed" in c.detail
    sc = score(drill("15m", "30m", "45m", "60m").events)
    assert "the 15m00s aim was met" in check(sc, "comms.status_cadence").detail
    c = check(score(drill("35m").events), "comms.status_cadence")
    assert c.status == FAIL
    assert c.measured == m(32)


def test_status_cadence_passes_when_no_update_was_due_and_waits_while_live() -> None:
    c = check(score(passing_drill().events), "comms.status_cadence")
    assert c.status == PASS
    assert "no status update was due" in c.detail
    live = response(resolve=None, end=None)
    assert status(live, "comms.status_cadence") == NOT_MEASURED


def test_required_messages_depend_on_severity() -> None:
    b = passing_drill(Severity.P0)
    events = [e for e in b.events if getattr(e, "template", None) != "customer_email"]
    c = check(score(events), "comms.required")
    assert c.status == FAIL
    assert c.detail.startswith("not done: customer_email never posted")
    p1 = check(score(passing_drill(Severity.P1).events), "comms.required")
    assert p1.status == PASS
    assert "statuspage" not in p1.detail


def test_a_long_incident_requires_a_status_update() -> None:
    b = response("P1", mitigate="30m", resolve="40m", end="41m")
    b.at("3m").comms("initial_alert")
    b.at("40m").comms("resolution")
    c = check(score(b.events), "comms.required")
    assert c.status == FAIL
    assert c.detail.startswith("not done: status_update never posted")


def test_message_fields() -> None:
    assert status(response(), "comms.fields") == NA
    b = response()
    b.at("3m").comms("initial_alert", missing=["impact", "symptom"])
    c = check(score(b.events), "comms.fields")
    assert c.status == FAIL
    assert "initial_alert: impact, symptom" in c.detail


# ---- escalation ----------------------------------------------------------------------------------


def test_p0_leadership_within_fifteen_minutes_of_detection() -> None:
    ok = response()
    ok.at("16m").escalate("engineering-leadership")
    assert status(ok, "escalation.p0_leadership") == PASS
    late = response()
    late.at("16m1s").escalate("engineering-leadership")
    assert status(late, "escalation.p0_leadership") == FAIL
    higher = response()
    higher.at("5m").escalate("executives")
    assert status(higher, "escalation.p0_leadership") == PASS
    lower = response(resolve="20m", end="21m")
    lower.at("5m").escalate("sme")
    assert status(lower, "escalation.p0_leadership") == FAIL


def test_p0_executives_only_when_impact_passes_an_hour() -> None:
    assert status(response(), "escalation.p0_executives") == NA
    long = response(mitigate="70m", resolve="75m", end="76m")
    assert status(long, "escalation.p0_executives") == FAIL
    told = response(mitigate="70m", resolve="75m", end="76m")
    told.at("65m").escalate("executives")
    c = check(score(told.events), "escalation.p0_executives")
    assert c.status == PASS
    assert c.target == m(75)


def test_p1_engineering_lead_within_an_hour() -> None:
    b = response("P1", mitigate="50m", resolve="70m", end="71m")
    assert status(b, "escalation.p1_eng_lead") == FAIL
    b.at("50m").escalate("engineering-lead")
    assert status(b, "escalation.p1_eng_lead") == PASS


def test_p2_and_p3_need_a_ticket_and_no_escalation() -> None:
    b = response("P2")
    assert status(b, "escalation.p2p3_ticket") == FAIL
    b.at("3m").ticket("OPS-42")
    sc = score(b.events)
    assert check(sc, "escalation.p2p3_ticket").status == PASS
    assert check(sc, "escalation.p0_leadership").status == NA
    assert check(sc, "escalation.p1_eng_lead").status == NA


def test_escalate_if_unable_to_resolve_within_thirty_minutes() -> None:
    assert status(response(resolve="31m", end="32m"), "oncall.escalate_unresolved") == NA
    slow = response(mitigate="40m", resolve="45m", end="46m")
    assert status(slow, "oncall.escalate_unresolved") == FAIL
    slow.at("25m").escalate("sme")
    assert status(slow, "oncall.escalate_unresolved") == PASS
    late = response(mitigate="40m", resolve="45m", end="46m")
    late.at("35m").escalate("sme")
    assert status(late, "oncall.escalate_unresolved") == FAIL
    running = response(mitigate=None, resolve=None, end=None)
    assert status(running, "oncall.escalate_unresolved") == NOT_MEASURED


# ---- mitigation and resolution -------------------------------------------------------------------


def test_mttm_from_acknowledgement() -> None:
    # health comes back 1 s after the change
    sc = score(response(ack="2m", mitigate="16m58s", resolve="20m", end="21m").events)
    assert check(sc, "mttm.p0").status == PASS
    assert check(sc, "mttm.p0").measured == m(15) - timedelta(seconds=1)
    exactly = check(score(response(ack="2m", mitigate="16m59s", resolve="20m", end="21m").events), "mttm.p0")
    assert exactly.measured == m(15)
    assert exactly.status == FAIL  # "<15 minutes"
    p1 = response("P1", ack="2m", mitigate="50m", resolve="60m", end="61m")
    assert status(p1, "mttm.p1") == PASS


def test_self_healing_makes_mttm_not_applicable_and_is_told_in_the_findings() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("1m30s").healthy()
    b.at("2m").ack().declare().assign()
    b.at("4m").resolve()
    b.at("5m").end()
    sc = score(b.events)
    c = check(sc, "mttm.p0")
    assert c.status == NA
    assert "by itself" in c.detail
    assert sc.clocks.mitigated_by == "system"
    assert any(f.startswith("The service recovered by itself 1m30s after the fault") for f in sc.findings)
    assert "mitigation" not in sc.family_scores


def test_never_mitigated_fails_when_the_budget_is_spent() -> None:
    assert status(response(mitigate=None, resolve=None, end="30m"), "mttm.p0") == FAIL
    assert status(response(mitigate=None, resolve=None, end="10m"), "mttm.p0") == FAIL  # ended
    assert status(response(mitigate=None, resolve=None, end=None), "mttm.p0") == NOT_MEASURED  # live


def test_mttr_from_the_fault() -> None:
    assert status(response(resolve="59m", end="60m"), "mttr.p0") == PASS
    assert status(response(resolve="60m", end="61m"), "mttr.p0") == FAIL
    assert status(response("P1", resolve="60m", end="61m"), "mttr.p1") == PASS


def test_resolving_while_unhealthy_fails() -> None:
    b = response(mitigate=None, resolve="8m", end="9m")
    c = check(score(b.events), "resolution.healthy")
    assert c.status == FAIL
    assert status(response(), "resolution.healthy") == PASS
    assert status(response(resolve=None, end="9m"), "resolution.healthy") == FAIL  # ended unresolved
    assert status(response(resolve=None, end=None), "resolution.healthy") == NOT_MEASURED  # live


def test_a_reopen_is_reported_and_the_final_resolution_judged() -> None:
    b = response(mitigate="4m", resolve="30m", end="31m")
    b.at("10m").unhealthy()
    b.at("12m").action("scale").note().healthy()
    sc = score(b.events)
    assert sc.clocks.reopens == 1
    assert sc.clocks.mitigated == b.time("4m1s")
    assert check(sc, "mttr.p0").measured == m(30)
    assert any(f.startswith("The incident reopened 1 time(s)") for f in sc.findings)


def test_postmortem_within_48_hours() -> None:
    b = response()
    assert status(b, "postmortem.within_48h") == NOT_MEASURED  # the journal ends long before 48 h
    b.at("50h").postmortem()
    assert status(b, "postmortem.within_48h") == FAIL
    b = response()
    b.at("49h").note("still no postmortem")
    assert status(b, "postmortem.within_48h") == FAIL
    b = response()
    b.at("47h").postmortem()
    assert status(b, "postmortem.within_48h") == PASS
    assert status(response("P2"), "postmortem.within_48h") == NA
    unresolved = check(score(response(resolve=None, end="20m").events), "postmortem.within_48h")
    assert unresolved.status == NA
    assert unresolved.detail == "not applicable: the incident was never resolved, so no postmortem was due"
    due = check(score(response().events), "postmortem.within_48h")
    assert due.detail.startswith("not measured: the postmortem is due within 2d00h of the resolution")


# ---- discipline ----------------------------------------------------------------------------------


def test_evidence_before_the_first_destructive_change() -> None:
    assert status(response(), "discipline.evidence") == NA  # a rollback is not flagged destructive
    b = response()
    b.at("3m").action(ActionKind.POD_DELETED, object="pod/drills-shop/shop-1")
    c = check(score(b.events), "discipline.evidence")
    assert c.status == FAIL
    assert "pod_deleted pod/drills-shop/shop-1" in c.detail
    b = response()
    b.at("2m30s").evidence()
    b.at("3m").action(ActionKind.PATCHED, destructive=True)
    assert status(b, "discipline.evidence") == PASS


def test_deleted_logs() -> None:
    b = response()
    b.at("3m").action(ActionKind.LOGS_DELETED, actor="kubelet", actor_kind=ActorKind.CONTROLLER)
    assert status(b, "discipline.no_deleted_logs") == PASS
    b.at("4m").action(ActionKind.LOGS_DELETED, object="pod/drills-shop/shop-1")
    assert status(b, "discipline.no_deleted_logs") == FAIL


def test_changes_are_documented_within_five_minutes() -> None:
    assert status(response(), "discipline.changes_documented") == PASS
    b = response(mitigate=None, end="20m")
    b.at("3m").action("scale")
    b.at("8m").note("scaled to 5")
    assert status(b, "discipline.changes_documented") == PASS
    b = response(mitigate=None, resolve="15m", end="20m")
    b.at("3m").action("scale")
    b.at("8m1s").note("scaled to 5")
    c = check(score(b.events), "discipline.changes_documented")
    assert c.status == FAIL
    assert "1 of 1 change(s)" in c.detail
    pending = response(mitigate=None, resolve=None, end=None)
    pending.at("17m").action("scale")
    assert status(pending, "discipline.changes_documented") == NOT_MEASURED  # live: can still be noted
    pending.at("18m").end("aborted")
    assert status(pending, "discipline.changes_documented") == FAIL  # ended: it never was
    none = response(mitigate=None, resolve="9m", end="9m")
    assert status(none, "discipline.changes_documented") == NA


# ---- the score -----------------------------------------------------------------------------------


def slow_ack() -> DrillBuilder:
    """passing_drill(P0) with the page acknowledged 6 min after the alert: ack rules 2 of 5 pass."""
    b = passing_drill(Severity.P0)
    events = [e for e in b.events if e.type != "acknowledged"]
    b = DrillBuilder()
    b._events = events
    b._n = 1000
    b.at("7m").ack()
    return b


def test_score_is_the_weighted_share_of_judged_checks() -> None:
    sc = score(slow_ack().events)
    assert sc.family_scores["acknowledgement"] == 40.0
    assert {k: v for k, v in sc.family_scores.items() if k != "acknowledgement"} == dict.fromkeys(
        ("detection", "triage", "mitigation", "resolution", "communication", "escalation", "discipline"),
        100.0,
    )
    # weights 10+15+15+20+10+15+10+5 = 100; acknowledgement (15) at 40 %
    assert sc.base_score == pytest.approx(100 - 15 * 0.6)
    # a core SLA (mtta.p0) failed: the score is capped just under the pass mark, so score and pass agree
    assert sc.score == 69.9
    assert sc.grade == "D"
    assert not sc.passed
    assert sc.score_explained == (
        "weighted family mean 91.0, capped at 69.9 (just under the pass mark 70): core SLA mtta.p0 failed; "
        "failed (pass mark 70)"
    )


def test_weights_come_from_the_policy_and_only_judged_families_count() -> None:
    only_ack = ScoringWeights(
        **{f.value: (1 if f == CheckFamily.ACKNOWLEDGEMENT else 0) for f in CheckFamily}
    )
    sc = score(slow_ack().events, Policy(weights=only_ack))
    assert sc.score == 40.0
    assert sc.grade == "F"
    b = passing_drill(Severity.P2)  # no mitigation family at all for P2
    assert "mitigation" not in score(b.events).family_scores
    assert score(b.events).score == 100.0


def test_policy_and_scenario_overrides() -> None:
    relaxed = Policy(sla=SlaOverrides(mtta_p0="10m"))
    assert status(slow_ack(), "mtta.p0", relaxed) == PASS
    b = slow_ack()
    b._events[0] = b._events[0].model_copy(update={"sla_overrides": {"mtta_p0": "2m"}})
    assert status(b, "mtta.p0", relaxed) == FAIL  # the scenario is more specific than the policy
    assert check(score(b.events, relaxed), "mtta.p0").target == m(2)


def test_hints_cost_points_once_each_and_capped() -> None:
    b = passing_drill()
    b.at("3m").hint(0, cost=5).hint(0, cost=5).hint(1, cost=10)
    sc = score(b.events)
    assert (sc.hints_used, sc.hint_cost, sc.score) == (2, 15, 85.0)
    assert sc.passed
    b.at("4m").hint(2, cost=40)
    sc = score(b.events)
    assert sc.hint_cost == 55
    assert sc.score == 100 - HINT_COST_CAP
    assert any("capped at 30" in f for f in sc.findings)


def test_grades_and_the_pass_mark() -> None:
    policy = Policy()
    assert [grade(v, policy) for v in (100, 90, 89.9, 80, 70, 60, 59.9, 0)] == [
        "A",
        "A",
        "B",
        "B",
        "C",
        "D",
        "F",
        "F",
    ]
    b = passing_drill()
    b.at("3m").hint(0, cost=25)
    sc = score(b.events, Policy(pass_score=80))
    assert sc.score == 75.0
    assert sc.grade == "C"
    assert not sc.passed


def test_a_journal_with_nothing_judged_scores_zero() -> None:
    sc = score(DrillBuilder().events)
    assert sc.score == 0.0
    assert sc.grade == "F"
    assert not sc.passed


# ---- findings ------------------------------------------------------------------------------------


def test_findings_are_blameless_and_most_important_first() -> None:
    b = response(alert="1m", ack="8m", triage="8m", mitigate="30m", resolve="40m", end="41m")
    b.at("8m").comms("initial_alert")
    sc = score(b.events)
    text = " ".join(sc.findings)
    assert "alice" not in text
    assert (
        "Acknowledgement took 7m00s: the seed asks for under 5m00s; the page may not have reached the "
        "responder quickly." in sc.findings
    )
    # mitigation (weight 20, one judged check) outweighs one of five acknowledgement checks (15 / 5)
    assert sc.findings[0].startswith("Mitigation took 22m01s: the seed asks for under 15m00s")
    assert sc.improve_next is not None and sc.improve_next.startswith("mttm.p0: Mitigation took")


def test_improve_next_breaks_ties_by_lifecycle_order() -> None:
    # Only discipline fails, twice, with equal weight: the earlier rule in the lifecycle comes first.
    b = passing_drill()
    b.at("3m30s").action(ActionKind.POD_DELETED, object="pod/drills-shop/shop-1")
    b.at("3m40s").action(ActionKind.LOGS_DELETED, object="pod/drills-shop/shop-1")
    sc = score(b.events)
    assert [c.id for c in sc.failed_checks] == ["discipline.evidence", "discipline.no_deleted_logs"]
    assert sc.improve_next is not None and sc.improve_next.startswith(
        "discipline.evidence: A destructive change"
    )
    assert sc.findings[0].startswith("A destructive change (pod_deleted pod/drills-shop/shop-1)")
    assert sc.findings[1].startswith("Logs or evidence were deleted (pod/drills-shop/shop-1)")


def test_failed_acknowledgement_rules_are_all_reported() -> None:
    sc = score(response(alert="1m", ack="7m", triage="7m").events)
    failed = [c.id for c in sc.failed_checks]
    assert failed == [
        "mtta.p0",
        "escalation.p0_ack",
        "oncall.respond_p0_p1",
        "comms.initial_alert",
        "escalation.p0_leadership",
        "comms.required",
    ]
    # the only judged escalation check (10 / 1) outweighs one of three communication checks (15 / 3) and
    # one of five acknowledgement checks (15 / 5)
    assert sc.improve_next is not None and sc.improve_next.startswith(
        "escalation.p0_leadership: Notifying engineering leadership: not done (engineering leadership was "
        "never notified)"
    )


def test_a_slow_alert_delivery_is_noted() -> None:
    b = passing_drill()
    b._events = [e for e in b._events if e.type != "alert.fired"]
    b.at("1m").alert(received_after="2m")
    assert any("from firing to reaching drills" in f for f in score(b.events).findings)


# ---- determinism and bounds (properties) ---------------------------------------------------------

OPS = (
    "alert",
    "detect",
    "ack",
    "declare_p0",
    "declare_p2",
    "ic",
    "initial",
    "update",
    "resolution_msg",
    "statuspage",
    "escalate_lead",
    "escalate_exec",
    "ticket",
    "evidence",
    "rollback",
    "delete_pod",
    "delete_logs",
    "note",
    "healthy",
    "unhealthy",
    "mitigated",
    "resolve",
    "reopen",
    "hint",
    "pause",
    "resume",
    "postmortem",
)


def apply(b: DrillBuilder, op: str) -> None:
    actions = {
        "alert": lambda: b.alert(),
        "detect": lambda: b.detect(),
        "ack": lambda: b.ack(),
        "declare_p0": lambda: b.declare("P0"),
        "declare_p2": lambda: b.declare("P2"),
        "ic": lambda: b.assign("ic", "alice"),
        "initial": lambda: b.comms("initial_alert"),
        "update": lambda: b.comms("status_update", missing=["eta"]),
        "resolution_msg": lambda: b.comms("resolution"),
        "statuspage": lambda: b.comms("statuspage_investigating"),
        "escalate_lead": lambda: b.escalate("engineering-lead"),
        "escalate_exec": lambda: b.escalate("executives"),
        "ticket": lambda: b.ticket(),
        "evidence": lambda: b.evidence(),
        "rollback": lambda: b.action("rollback"),
        "delete_pod": lambda: b.action(ActionKind.POD_DELETED),
        "delete_logs": lambda: b.action(ActionKind.LOGS_DELETED),
        "note": lambda: b.note(),
        "healthy": lambda: b.healthy(),
        "unhealthy": lambda: b.unhealthy(),
        "mitigated": lambda: b.mitigated(),
        "resolve": lambda: b.resolve(),
        "reopen": lambda: b.reopen(),
        "hint": lambda: b.hint(0, cost=7),
        "pause": lambda: b.pause(),
        "resume": lambda: b.resume(),
        "postmortem": lambda: b.postmortem(),
    }
    actions[op]()


# Whole minutes, so that many events share an instant: ties must not depend on delivery order either.
journals = st.tuples(
    st.sampled_from(list(Severity)),
    st.sampled_from(["10s", "30s", "2m"]),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=120).map(lambda minute: minute * 60), st.sampled_from(OPS)
        ),
        max_size=40,
    ),
    st.one_of(st.none(), st.integers(min_value=0, max_value=130 * 60)),
)


def build_journal(spec: tuple[Severity, str, list[tuple[int, str]], int | None]) -> DrillBuilder:
    severity, window, ops, end = spec
    b = DrillBuilder(severity=severity, healthy_for=window)
    for seconds, op in ops:
        b.at(seconds)
        apply(b, op)
    if end is not None:
        b.at(end).end("aborted")
    return b


@settings(max_examples=150, deadline=None)
@given(journals, st.randoms(use_true_random=False))
def test_any_order_and_duplicates_give_the_same_scorecard(spec: tuple, rnd: random.Random) -> None:  # type: ignore[type-arg]
    events = build_journal(spec).events
    messy = events + rnd.sample(events, k=min(len(events), 5))
    rnd.shuffle(messy)
    assert score(messy).model_dump_json() == score(events).model_dump_json()


@settings(max_examples=150, deadline=None)
@given(journals)
def test_score_is_always_within_0_and_100_with_a_known_grade(spec: tuple) -> None:  # type: ignore[type-arg]
    sc = score(build_journal(spec).events)
    assert 0 <= sc.score <= 100
    assert sc.grade in {"A", "B", "C", "D", "F"}
    assert all(0 <= v <= 100 for v in sc.family_scores.values())
    assert [c.id for c in sc.checks] == [r.id for r in RULES]
    assert (sc.improve_next is None) == (not sc.failed_checks)
    assert Scorecard.model_validate_json(sc.model_dump_json()) == sc


def test_a_chaos_test_the_system_heals_alone_passes_without_a_responder() -> None:
    b = DrillBuilder(severity="P3", mode=Mode.CHAOS_TEST, trainee=None)
    b.at("2s").unhealthy()
    b.at("20s").healthy()
    b.at("50s").end(Outcome.SELF_HEALED)
    sc = score(b.events)
    assert sc.passed and sc.grade == "A"
    assert status(b, "resolution.healthy") == PASS
    for rule in ("roles.ic", "severity.accuracy", "escalation.p2p3_ticket", "comms.required"):
        c = check(sc, rule)
        assert c.status == NA and "healed by itself 20s after the fault" in c.detail


def test_a_chaos_test_that_does_not_heal_is_judged_as_an_incident() -> None:
    b = DrillBuilder(severity="P3", mode=Mode.CHAOS_TEST, trainee=None)
    b.at("2s").unhealthy()
    b.at("5m").end(Outcome.TIMED_OUT)
    sc = score(b.events)
    assert not sc.passed
    assert status(b, "roles.ic") == FAIL


def test_a_self_healing_drill_people_responded_to_is_scored_as_usual() -> None:
    b = DrillBuilder(severity="P3", mode=Mode.CHAOS_TEST)
    b.at("2s").unhealthy()
    b.at("10s").ack()
    b.at("20s").healthy()
    b.at("50s").end(Outcome.SELF_HEALED)
    assert status(b, "roles.ic") == FAIL


def test_looking_after_the_system_healed_is_not_a_response() -> None:
    b = DrillBuilder(severity="P3", mode=Mode.CHAOS_TEST)
    b.at("2s").unhealthy()
    b.at("20s").healthy()
    b.at("25s").ack()
    b.at("50s").end(Outcome.SELF_HEALED)
    assert status(b, "roles.ic") == NA
    assert score(b.events).passed


@settings(max_examples=150, deadline=None)
@given(journals)
def test_no_check_of_an_ended_drill_is_left_not_done_yet(spec: tuple) -> None:  # type: ignore[type-arg]
    severity, window, ops, end = spec
    sc = score(build_journal((severity, window, ops, 131 * 60 if end is None else end)).events)
    assert not [c.id for c in sc.checks if c.detail.startswith("not done yet")]
    assert sc.passed == (sc.score >= Policy().pass_score)
