"""The judges (issue #12): an ended drill judges every check, the clocks follow the seed to the letter, the
score and the pass agree, runbook discipline covers the fault's scope, and the registry matches the rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from builders import DrillBuilder, passing_drill
from hypothesis import given, settings
from hypothesis import strategies as st

from drills.engine.judges import JUDGES, Drill, Judged, judge
from drills.engine.rules import RULES, Rule
from drills.engine.scoring import score
from drills.model.events import ActionKind, FaultInjected, Source
from drills.model.policy import Policy
from drills.model.scorecard import Check, CheckStatus, Scorecard
from drills.model.severity import Severity

PASS, FAIL, NA, NOT_MEASURED = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.NOT_APPLICABLE,
    CheckStatus.NOT_MEASURED,
)
ACK_RULES = ("mtta.p0", "escalation.p0_ack", "response_time", "oncall.respond_p0_p1", "oncall.ack_all")


def check(sc: Scorecard, check_id: str) -> Check:
    return next(c for c in sc.checks if c.id == check_id)


def without(b: DrillBuilder, *types: str, template: str | None = None, whom: str | None = None) -> list:  # type: ignore[type-arg]
    def keep(e: object) -> bool:
        if getattr(e, "type", None) not in types:
            return True
        if template is not None and getattr(e, "template", None) != template:
            return True
        return whom is not None and getattr(e, "whom", None) != whom

    return [e for e in b.events if keep(e)]


# ---- the registry --------------------------------------------------------------------------------


def test_every_rule_has_exactly_one_judge() -> None:
    assert sorted(JUDGES) == sorted(r.id for r in RULES)


def test_a_second_judge_or_an_unknown_rule_is_refused() -> None:
    def noop(d: Drill, r: Rule) -> Judged:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="'mttd' has two judges"):
        judge("mttd")(noop)
    with pytest.raises(ValueError, match=r"'mttx', which is not in drills\.engine\.rules"):
        judge("mttx")(noop)
    assert JUDGES["mttd"] is not noop


def test_every_check_names_a_cause_and_a_role_that_owns_it() -> None:
    sc = score(DrillBuilder().at("20m").end("timed_out").events)
    for c in sc.checks:
        assert c.cause, c.id
        assert c.owner.startswith("the "), c.id
    failed_acks = {c.cause for c in sc.failed_checks if c.id in ACK_RULES}
    assert failed_acks == {"acknowledgement"}  # five readings of one late acknowledgement: one cause
    assert {c.owner for c in sc.checks if c.id in ACK_RULES} == {"the on-call rotation"}


# ---- 1. an ended drill judges every check -------------------------------------------------------


def test_a_p0_that_never_notified_leadership_fails_that_check_once_ended() -> None:
    events = without(passing_drill(Severity.P0), "escalation.notified")
    sc = score(events)
    c = check(sc, "escalation.p0_leadership")
    assert c.status == FAIL
    assert c.detail.startswith("not done: engineering leadership was never notified")
    assert sc.family_scores["escalation"] == 0.0
    assert sc.base_score == 90.0  # escalation weighs 10 of 100 (docs/scoring.md); it was 100 before
    # leadership notification is core for a P0: the drill does not pass (it scored 94.5 / A before #12)
    assert sc.score == 69.9 and not sc.passed
    assert sc.improve_next is not None and sc.improve_next.startswith("escalation.p0_leadership")


def test_the_same_drill_still_live_is_not_done_yet() -> None:
    events = [
        e for e in without(passing_drill(Severity.P0), "escalation.notified") if e.type != "drill.ended"
    ]
    events = [e for e in events if e.at <= events[0].at + timedelta(minutes=5)]
    c = check(score(events), "escalation.p0_leadership")
    assert c.status == NOT_MEASURED
    assert c.detail.startswith("not done yet:")


def test_not_applicable_says_why() -> None:
    c = check(score(passing_drill(Severity.P2).events), "escalation.p0_leadership")
    assert (c.status, c.detail) == (
        NA,
        "not applicable: P2 incidents need no leadership notification (P0 only)",
    )


# ---- 2. clocks to the letter ---------------------------------------------------------------------


def test_a_drill_resolved_without_any_acknowledgement_fails_the_acknowledgement_and_mttm_checks() -> None:
    events = without(passing_drill(Severity.P0), "acknowledged")
    sc = score(events)
    assert sc.clocks.acknowledged is None
    assert sc.clocks.ttm is None and sc.clocks.ttm_active is None  # MTTM = impact reduced - acknowledged
    for rule_id in ACK_RULES:
        assert check(sc, rule_id).status == FAIL, rule_id
    mttm = check(sc, "mttm.p0")
    assert mttm.status == FAIL
    assert mttm.detail.startswith("not done: no MTTM: nobody acknowledged the page")
    assert not sc.passed and sc.score < 70
    assert not any("after acknowledgement" in c.detail for c in sc.checks)


def test_comms_and_escalation_clocks_say_what_they_started_from() -> None:
    events = without(passing_drill(Severity.P0), "acknowledged")
    sc = score(events)
    assert check(sc, "comms.initial_alert").detail == "2m00s after the alert (the seed asks for within 5m00s)"
    b = passing_drill(Severity.P0)
    assert check(score(b.events), "comms.initial_alert").detail.endswith(
        "after acknowledgement (the seed asks for within 5m00s)"
    )


def test_events_before_t0_do_not_satisfy_checks() -> None:
    b = DrillBuilder(inject=False)
    b.at("-5m").escalate("engineering-leadership").comms("initial_alert").assign("ic", "alice").declare()
    b.at("-5m").ticket()
    b.at("0s").fault()
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("2m").ack()
    b.at("10m").end("timed_out")
    sc = score(b.events)
    assert check(sc, "escalation.p0_leadership").status == FAIL
    assert check(sc, "comms.initial_alert").status == FAIL
    assert check(sc, "roles.ic").status == FAIL
    assert check(sc, "severity.accuracy").status == FAIL
    assert check(sc, "triage.within").status == FAIL
    assert sc.clocks.triaged is None


@pytest.mark.parametrize(
    ("ack", "status", "detail"),
    [
        ("5m59s", PASS, "4m59s after the alert (the seed asks for under 5m00s)"),
        ("6m", FAIL, "5m00s after the alert: the seed asks for under 5m00s"),
    ],
)
def test_a_miss_right_at_the_boundary_says_so(ack: str, status: CheckStatus, detail: str) -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at(ack).ack()
    b.at("7m").end("aborted")
    c = check(score(b.events), "mtta.p0")
    assert (c.status, c.detail) == (status, detail)
    within = check(score(b.events), "escalation.p0_ack")  # "within 5 minutes": the boundary passes
    assert within.status == PASS


# ---- 3. score and pass agree ---------------------------------------------------------------------


def test_a_failed_core_sla_caps_the_score_under_the_pass_mark() -> None:
    events = without(passing_drill(Severity.P0), "acknowledged")
    sc = score(events)
    assert sc.score == min(sc.base_score, 69.9)
    assert "core SLA mtta.p0, mttm.p0 failed" in sc.score_explained or sc.base_score <= 69.9
    late = passing_drill(Severity.P0)
    late_events = [e for e in late.events if e.type != "acknowledged"]
    late.at("6m30s").ack()
    late_events.append(late.events[-1])
    capped = score(late_events, Policy(pass_score=90))
    assert capped.base_score > 89.9
    assert capped.score == 89.9
    assert not capped.passed
    assert "capped at 89.9 (just under the pass mark 90): core SLA mtta.p0 failed" in capped.score_explained


# ---- 4. runbook discipline: the fault's scope ----------------------------------------------------


def app_drill() -> DrillBuilder:
    b = DrillBuilder(inject=False, service="app", namespace="production")
    b.add(
        FaultInjected,
        source=Source.SYSTEM,
        actor="drills:injector",
        fault_kind="bad-deploy",
        target="Deployment/production/app",
        detail={"changes": ["image app:1.2 -> app:broken"], "scenario": "bad-deploy-rollback"},
    )
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("2m").ack().declare().assign("ic", "alice")
    return b


def test_deleting_a_healthy_dependency_is_a_finding() -> None:
    b = app_drill()
    b.at("3m").evidence("Pod/production/app-7d9f-x2")
    b.at("4m").action(ActionKind.DELETED, object="Deployment/production/db-proxy")
    b.at("4m").note("deleted db-proxy to reset connections")
    b.at("9m").end("aborted")
    sc = score(b.events)
    c = check(sc, "discipline.fault_scope")
    assert c.status == FAIL
    assert "deleted Deployment/production/db-proxy" in c.detail
    assert check(sc, "discipline.changes_documented").status == PASS  # the note names it
    assert any(
        f.startswith("Healthy parts of the system that were not part of the fault") for f in sc.findings
    )


def test_scaling_an_unrelated_workload_is_a_finding_and_the_faulted_one_is_not() -> None:
    b = app_drill()
    b.at("4m").action(ActionKind.SCALE, object="Deployment/production/worker").note("scaled worker")
    b.at("5m").action(ActionKind.SCALE, object="Deployment/production/app").note("scaled app")
    b.at("9m").end("aborted")
    c = check(score(b.events), "discipline.fault_scope")
    assert c.status == FAIL
    assert "Deployment/production/worker" in c.detail and "Deployment/production/app" not in c.detail


def test_changes_to_what_the_fault_touched_pass() -> None:
    b = app_drill()
    b.at("3m").evidence("Pod/production/app-7d9f-x2")
    b.at("4m").action(ActionKind.POD_DELETED, object="Pod/production/app-7d9f-x2")
    b.at("4m").note("deleted the crash-looping app pods")
    b.at("9m").end("aborted")
    assert check(score(b.events), "discipline.fault_scope").status == PASS


def test_a_dependency_named_by_the_fault_is_part_of_it() -> None:
    b = DrillBuilder(inject=False, service="app", namespace="production")
    b.add(
        FaultInjected,
        source=Source.SYSTEM,
        fault_kind="dependency-outage",
        target="Deployment/production/app",
        detail={
            "changes": [
                "scale from 2 to 0 replicas",
                "app reaction: pods of app fail while db-proxy has no ready pod",
            ]
        },
    )
    b.at("4m").action(ActionKind.SCALE, object="Deployment/production/db-proxy").note("db-proxy back to 2")
    b.at("9m").end("aborted")
    assert check(score(b.events), "discipline.fault_scope").status == PASS


def test_a_status_post_does_not_document_a_delete_but_a_note_naming_it_does() -> None:
    b = app_drill()
    b.at("3m").evidence("Pod/production/app-7d9f-x2")
    b.at("4m").action(ActionKind.POD_DELETED, object="Pod/production/app-7d9f-x2").comms("status_update")
    b.at("9m").end("aborted")
    c = check(score(b.events), "discipline.changes_documented")
    assert c.status == FAIL
    assert "a destructive change needs a note that names the object" in c.detail
    b.at("5m").note("restarted pod app-7d9f-x2")
    assert check(score(b.events), "discipline.changes_documented").status == PASS
    generic = app_drill()
    generic.at("4m").action(ActionKind.POD_DELETED, object="Pod/production/app-7d9f-x2").note("fixed it")
    generic.at("9m").end("aborted")
    assert check(score(generic.events), "discipline.changes_documented").status == FAIL


# ---- properties ----------------------------------------------------------------------------------

#: What the seed asks a responder to do, one step each. "mitigate" is a change to the faulted workload,
#: written down, after which the service recovers; "resolve" comes with the messages a resolution requires.
STEPS = (
    "detect",
    "ack",
    "declare",
    "ic",
    "initial",
    "statuspage",
    "update",
    "update2",
    "escalate",
    "executives",
    "ticket",
    "evidence",
    "mitigate",
    "resolve",
    "postmortem",
    "note",
)


def play(severity: Severity, alert: int | None, steps: dict[str, int], end: int) -> DrillBuilder:
    b = DrillBuilder(severity=severity, healthy_for="30s")
    b.at("10s").unhealthy()
    if alert is not None:
        b.at(alert).alert()
    esc = {Severity.P0: "engineering-leadership", Severity.P1: "engineering-lead"}.get(severity, "sme")
    healthy_at = steps["mitigate"] + 1 if "mitigate" in steps else None
    for step, at in sorted(steps.items(), key=lambda kv: (kv[1], STEPS.index(kv[0]))):
        b.at(at)
        match step:
            case "detect":
                b.detect()
            case "ack":
                b.ack()
            case "declare":
                b.declare()
            case "ic":
                b.assign("ic", "alice")
            case "initial":
                b.comms("initial_alert")
            case "statuspage":
                b.comms("statuspage_investigating")
            case "update" | "update2":
                b.comms("status_update")
            case "escalate":
                b.escalate(esc)
            case "executives":
                b.escalate("executives")
            case "ticket":
                b.ticket()
            case "evidence":
                b.evidence()
            case "mitigate":
                b.action("rollback").note("rolled back shop").after("1s").healthy()
            case "resolve":
                # verify first: resolving is only what the seed asks once the service is healthy again
                if healthy_at is not None and at >= healthy_at + 30:
                    b.resolve().comms("resolution")
                    if severity == Severity.P0:
                        b.comms("statuspage_resolved").comms("customer_email")
            case "postmortem":
                b.postmortem()
            case "note":
                b.note("looking at the dashboards")
    b.at(end).end("aborted")
    return b


minutes = st.integers(min_value=0, max_value=90).map(lambda m: m * 60 + 15)
responses = st.tuples(
    st.sampled_from(list(Severity)),
    st.one_of(st.none(), minutes),
    st.dictionaries(st.sampled_from(STEPS), minutes),
    st.integers(min_value=1, max_value=100).map(lambda m: m * 60 + 30),
)


@settings(max_examples=300, deadline=None)
@given(responses, st.data())
def test_doing_strictly_more_of_what_the_seed_asks_never_lowers_the_score(
    spec: tuple, data: st.DataObject
) -> None:  # type: ignore[type-arg]
    severity, alert, steps, end = spec
    steps = {k: v for k, v in steps.items() if v < end}
    fewer = data.draw(st.sets(st.sampled_from(sorted(steps))) if steps else st.just(set()))
    less = score(play(severity, alert, {k: v for k, v in steps.items() if k not in fewer}, end).events)
    more = score(play(severity, alert, steps, end).events)
    assert more.score >= less.score, (fewer, less.score_explained, more.score_explained)
    assert more.passed or not less.passed


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(Severity)), st.one_of(st.none(), minutes), st.integers(1, 200).map(lambda m: m * 60)
)
def test_doing_nothing_never_passes(severity: Severity, alert: int | None, end: int) -> None:
    sc = score(play(severity, alert, {}, end).events)
    assert not sc.passed
    assert sc.score < Policy().pass_score


@settings(max_examples=200, deadline=None)
@given(responses)
def test_an_ended_drill_has_no_not_done_yet_and_its_score_and_pass_agree(spec: tuple) -> None:  # type: ignore[type-arg]
    sc = score(play(*spec).events)
    assert not any("not done yet" in c.detail for c in sc.checks)
    assert sc.passed == (sc.score >= Policy().pass_score)
    assert not any("after acknowledgement" in c.detail for c in sc.checks if sc.clocks.acknowledged is None)


def test_a_mitigation_claim_that_names_the_command_documents_a_delete() -> None:
    b = app_drill()
    b.at("3m").evidence("Pod/production/app-7d9f-x2")
    b.at("4m").action(ActionKind.POD_DELETED, object="Pod/production/app-7d9f-x2")
    b.mitigated(summary="delete-pods: kubectl delete pods -n production -l app=app")
    b.at("9m").end("aborted")
    assert check(score(b.events), "discipline.changes_documented").status == PASS
