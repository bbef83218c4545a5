"""The timer: clocks, phases and live budgets from journals built with a fake timeline (no clock is read)."""

from __future__ import annotations

import random
from datetime import timedelta
from itertools import pairwise

import pytest
from builders import DrillBuilder, passing_drill

from drills.engine.timeline import Phase, build, compute_clocks, escalation_rank, live_view, ordered, phase_at
from drills.model.events import Acknowledged, ActionKind, ActorKind, Source
from drills.model.policy import SlaTargets
from drills.model.severity import Severity


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# ---- ordering ------------------------------------------------------------------------------------


def test_events_are_ordered_by_time_and_duplicates_dropped() -> None:
    events = passing_drill().events
    messy = list(reversed(events)) + events[3:7]
    out = ordered(messy)
    assert out == ordered(events)
    assert sorted(e.id for e in out) == sorted(e.id for e in events)
    assert all(a.at <= b.at for a, b in pairwise(out))


def test_same_instant_events_follow_the_lifecycle_whatever_the_arrival_order() -> None:
    b = DrillBuilder(inject=False)
    b.at("0s").fault()
    b.at("1m").ack().declare().assign()
    b.at("1m").alert()
    forward, backward = ordered(b.events), ordered(list(reversed(b.events)))
    assert [e.type for e in forward] == [e.type for e in backward]
    assert [e.type for e in forward][:4] == ["drill.started", "fault.injected", "alert.fired", "acknowledged"]


def test_a_same_instant_flap_ends_unhealthy() -> None:
    b = DrillBuilder()
    b.at("1m").healthy().unhealthy()
    for events in (b.events, list(reversed(b.events))):
        assert build(events).healthy_now is False


# ---- clocks --------------------------------------------------------------------------------------


def test_clocks_of_a_complete_response() -> None:
    b = passing_drill(Severity.P0)
    c = compute_clocks(b.events)
    assert c.t0 == b.start
    assert (c.ttd, c.tta, c.ttt, c.ttm, c.ttr) == (m(1), m(1), m(2), m(4), m(8))
    assert (c.ttd_active, c.tta_active, c.ttt_active, c.ttm_active, c.ttr_active) == (
        m(1),
        m(1),
        m(2),
        m(4),
        m(8),
    )
    assert c.mitigated == b.time("6m")
    assert c.resolved == b.time("8m")
    assert c.ended == b.time("10m")
    assert c.wall == c.active == m(10)
    assert c.paused == timedelta(0)
    assert c.mitigated_by == "human"
    assert c.reopens == 0
    assert not c.resolved_while_unhealthy
    assert not c.detection_gap
    assert c.alert_delivery_delay == s(2)


def test_out_of_order_and_duplicated_delivery_gives_the_same_clocks() -> None:
    events = passing_drill(Severity.P1).events
    shuffled = events + events[::2]
    random.Random(7).shuffle(shuffled)
    assert compute_clocks(shuffled) == compute_clocks(events)


def test_an_alert_written_late_with_an_earlier_starts_at_is_timed_by_its_own_time() -> None:
    b = DrillBuilder()
    b.at("3m").ack()
    b.at("1m").alert()  # appended after the ack, as Alertmanager's startsAt arrives late
    c = compute_clocks(b.events)
    assert c.ttd == m(1)
    assert c.tta == m(2)


def test_pauses_are_cut_out_of_active_time_only() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("2m").pause()
    b.at("5m").resume()
    b.at("6m").ack()
    b.at("20m").resolve()
    c = compute_clocks(b.events)
    assert c.tta == m(5)
    assert c.tta_active == m(2)
    assert c.ttr == m(20)
    assert c.ttr_active == m(17)
    assert c.paused == m(3)
    assert c.wall == m(20)
    assert c.active == m(17)


def test_a_pause_never_resumed_runs_to_the_end_and_repeated_pauses_count_once() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("2m").resume()  # nothing to resume: ignored
    b.at("4m").pause()
    b.at("5m").pause()  # already paused: ignored
    b.at("10m").end("aborted")
    c = compute_clocks(b.events)
    assert c.paused == m(6)
    assert c.wall == m(10)
    assert c.active == m(4)


def test_missing_acknowledgement_leaves_tta_open() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("30m").end("timed_out")
    c = compute_clocks(b.events)
    assert c.acknowledged is None
    assert c.tta is None and c.tta_active is None
    assert c.ttm is None


def test_only_people_acknowledge() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("1m30s").add(Acknowledged, source=Source.SYSTEM, actor="auto-ack")
    b.at("4m").ack("bot-1", bot=True)
    assert compute_clocks(b.events).tta == m(3)


def test_acknowledging_before_the_alert_fires_counts_as_immediate() -> None:
    b = DrillBuilder()
    b.at("1m").detect().ack()
    b.at("3m").alert()
    c = compute_clocks(b.events)
    assert c.tta == timedelta(0)
    assert c.ttd == m(3)
    assert c.ttd_human == m(1)


def test_no_alert_is_a_detection_gap_and_tta_runs_from_human_detection() -> None:
    b = DrillBuilder()
    b.at("4m").detect()
    b.at("6m").ack()
    c = compute_clocks(b.events)
    assert c.detection_gap
    assert c.ttd is None
    assert c.ttd_human == m(4)
    assert c.tta == m(2)


def test_with_no_alert_and_no_detection_tta_runs_from_the_fault() -> None:
    b = DrillBuilder()
    b.at("7m").ack()
    c = compute_clocks(b.events)
    assert c.detection_gap
    assert c.tta == m(7)


def test_an_alert_from_before_the_fault_is_not_about_it() -> None:
    b = DrillBuilder(inject=False)
    b.at("0s").alert("Leftover")
    b.at("1m").fault()
    b.at("3m").alert("ShopDown")
    c = compute_clocks(b.events)
    assert c.t0 == b.time("1m")
    assert c.ttd == m(2)


def test_without_a_fault_the_true_start_is_unknown() -> None:
    b = DrillBuilder(inject=False, is_drill=False)
    b.at("1m").alert()
    b.at("3m").ack()
    b.at("9m").resolve()
    c = compute_clocks(b.events)
    assert c.t0 is None
    assert c.ttd is None and c.ttr is None
    assert c.tta == m(2)


def test_alert_rule_and_delivery_delays() -> None:
    b = DrillBuilder()
    b.at("1m").alert(rule_delay=75, received_after="40s")
    c = compute_clocks(b.events)
    assert c.alert_rule_delay == s(75)
    assert c.alert_delivery_delay == s(40)


def test_triage_ends_when_both_severity_and_ic_are_set() -> None:
    b = DrillBuilder()
    b.at("2m").declare("P1")
    b.at("3m").assign("tech", "bob")
    b.at("9m").assign("ic", "carol")
    b.at("10m").declare("P0")
    c = compute_clocks(b.events)
    assert c.triaged == b.time("9m")
    assert c.ttt == m(9)


# ---- mitigation ----------------------------------------------------------------------------------


def test_mitigation_is_the_start_of_the_first_healthy_period_that_lasts() -> None:
    b = DrillBuilder(healthy_for="60s")
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("2m").ack()
    b.at("3m").action("rollback")
    b.at("4m").healthy()
    b.at("4m30s").unhealthy()  # did not last 60 s: not a mitigation
    b.at("5m").healthy()
    b.at("6m").end()  # exactly 60 s later: lasted
    c = compute_clocks(b.events)
    assert c.mitigated == b.time("5m")
    assert c.ttm == m(3)
    assert c.mitigated_by == "human"
    assert c.reopens == 0


def test_a_healthy_period_cut_short_by_the_end_of_the_journal_is_not_measured() -> None:
    b = DrillBuilder(healthy_for="60s")
    b.at("10s").unhealthy()
    b.at("2m").ack().action("rollback")
    b.at("5m").healthy()
    b.at("5m30s").end()
    c = compute_clocks(b.events)
    assert c.mitigated is None
    assert c.ttm is None
    assert c.mitigated_by == "none"


def test_self_healing_is_credited_to_the_system_and_claims_no_human_ttm() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("1m30s").evidence()  # reading logs changes nothing
    b.at("1m40s").action("pod_created", actor="replicaset-controller", actor_kind=ActorKind.CONTROLLER)
    b.at("2m").healthy()
    b.at("3m").ack()
    b.at("4m").action("rollback")  # after the recovery: not what healed it
    b.at("5m").resolve()
    c = compute_clocks(b.events)
    assert c.mitigated == b.time("2m")
    assert c.mitigated_by == "system"
    assert c.ttm is None and c.ttm_active is None


def test_a_bot_responder_change_earns_the_credit() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert().ack("bot-1", bot=True)
    b.at("2m").action("rollback", actor="bot-1", actor_kind=ActorKind.BOT)
    b.at("3m").healthy()
    b.at("4m").end()
    c = compute_clocks(b.events)
    assert c.mitigated_by == "human"
    assert c.ttm == m(2)


def test_recovery_after_drills_reverted_the_fault_is_not_the_responders() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert().ack()
    b.at("2m").action("scale")  # a change that did not help
    b.at("30m").revert()
    b.at("31m").healthy()
    b.at("32m").end("timed_out")
    c = compute_clocks(b.events)
    assert c.mitigated == b.time("31m")
    assert c.mitigated_by == "system"
    assert c.ttm is None


def test_healthy_before_the_fault_is_the_baseline_not_a_mitigation() -> None:
    b = DrillBuilder(inject=False)
    b.at("0s").healthy()
    b.at("1m").fault()
    b.at("20m").end()
    assert compute_clocks(b.events).mitigated is None


def test_a_relapse_after_mitigation_is_a_reopen_and_keeps_the_first_mitigation() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("2m").ack().action("rollback")
    b.at("4m").healthy()
    b.at("9m").unhealthy()  # relapse: reopen
    b.at("9m30s").reopen()  # the same reopening, said out loud: not counted twice
    b.at("10m").action("scale")
    b.at("12m").healthy()
    b.at("15m").resolve()
    c = compute_clocks(b.events)
    assert c.reopens == 1
    assert c.mitigated == b.time("4m")
    assert c.ttm == m(2)
    assert c.resolved == b.time("15m")


def test_a_relapse_after_resolution_reopens_and_undoes_the_resolution() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("2m").ack().action("rollback")
    b.at("3m").healthy()
    b.at("5m").resolve()
    b.at("8m").unhealthy()
    b.at("12m").end("timed_out")
    c = compute_clocks(b.events)
    assert c.reopens == 1
    assert c.resolved is None
    assert c.ttr is None


def test_explicit_reopens_count_only_when_there_is_something_to_reopen() -> None:
    b = DrillBuilder()
    b.at("1m").ack()
    b.at("2m").reopen()  # nothing mitigated or resolved yet
    b.at("3m").mitigated()
    b.at("4m").resolve()
    b.at("5m").reopen()
    b.at("6m").reopen()  # already open
    b.at("7m").resolve()
    b.at("8m").resolve()
    c = compute_clocks(b.events)
    assert c.reopens == 1
    assert c.resolved == b.time("8m")


def test_without_health_observations_the_mitigated_claim_then_the_resolution_stand_in() -> None:
    b = DrillBuilder()
    b.at("1m").alert().ack()
    b.at("5m").mitigated()
    b.at("7m").resolve()
    c = compute_clocks(b.events)
    assert c.mitigated == b.time("5m")
    assert c.mitigated_by == "human"
    assert c.ttm == m(4)
    other = DrillBuilder()
    other.at("1m").alert().ack()
    other.at("7m").resolve()
    assert compute_clocks(other.events).mitigated == other.time("7m")


def test_resolving_while_unhealthy_is_flagged() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").ack()
    b.at("5m").resolve()
    assert compute_clocks(b.events).resolved_while_unhealthy
    b.at("6m").healthy()
    b.at("7m").resolve()  # the final resolution is the one judged
    assert not compute_clocks(b.events).resolved_while_unhealthy


def test_with_no_health_observations_the_resolvers_own_reading_is_used() -> None:
    b = DrillBuilder()
    b.at("5m").resolve(healthy=False)
    assert compute_clocks(b.events).resolved_while_unhealthy
    other = DrillBuilder()
    other.at("5m").resolve()
    assert not compute_clocks(other.events).resolved_while_unhealthy


# ---- phases --------------------------------------------------------------------------------------


def test_phases_follow_the_lifecycle_and_only_know_the_past() -> None:
    b = passing_drill(Severity.P0)
    events = b.events
    assert phase_at(events, b.time("-1s")) == Phase.NOT_STARTED
    assert phase_at(events, b.time("30s")) == Phase.DETECT
    assert phase_at(events, b.time("1m30s")) == Phase.TRIAGE
    assert phase_at(events, b.time("3m")) == Phase.MITIGATE
    assert phase_at(events, b.time("6m10s")) == Phase.MITIGATE  # healthy, but not yet for 30 s
    assert phase_at(events, b.time("6m30s")) == Phase.RESOLVE
    assert phase_at(events, b.time("8m")) == Phase.POSTMORTEM
    assert phase_at(events, b.time("11m")) == Phase.POSTMORTEM


def test_paused_phase_and_back() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("2m").pause()
    b.at("4m").resume()
    assert phase_at(b.events, b.time("3m")) == Phase.PAUSED
    assert phase_at(b.events, b.time("4m")) == Phase.TRIAGE


def test_a_relapse_sends_the_phase_back_to_mitigate() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert().ack().declare().assign()
    b.at("2m").action("rollback")
    b.at("3m").healthy()
    b.at("6m").unhealthy()
    assert phase_at(b.events, b.time("5m")) == Phase.RESOLVE
    assert phase_at(b.events, b.time("7m")) == Phase.MITIGATE


def test_an_aborted_drill_is_over() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("2m").end("aborted")
    assert phase_at(b.events, b.time("3m")) == Phase.POSTMORTEM


# ---- live view -----------------------------------------------------------------------------------


def budgets(view: object) -> dict[str, tuple[timedelta, timedelta, bool]]:
    return {b.check_id: (b.used, b.left, b.breached) for b in view.budgets}  # type: ignore[attr-defined]


def test_live_view_before_the_alert() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    view = live_view(b.events, b.time("30s"), SlaTargets())
    assert view.phase == Phase.DETECT
    assert view.elapsed == view.elapsed_active == s(30)
    assert not view.paused
    assert view.healthy is False
    got = budgets(view)
    assert got["mttd"] == (s(30), m(4.5), False)
    assert got["triage.within"] == (s(30), m(14.5), False)
    assert "oncall.ack_all" not in got  # nobody could acknowledge yet


def test_live_view_hides_the_true_severity_until_one_is_declared() -> None:
    b = DrillBuilder(severity=Severity.P0)
    b.at("1m").alert()
    got = budgets(live_view(b.events, b.time("4m"), SlaTargets()))
    assert got["oncall.ack_all"] == (m(3), m(12), False)
    assert not {"mtta.p0", "mttr.p0", "response_time", "oncall.respond_p0_p1"} & set(got)
    assert "mttd" not in got  # the alert fired
    told = budgets(live_view(b.events, b.time("7m"), SlaTargets(), severity=Severity.P0))
    assert told["mtta.p0"] == (m(6), -m(1), True)
    assert told["mttr.p0"] == (m(7), m(53), False)
    b.at("7m").declare("P1")
    declared = budgets(live_view(b.events, b.time("8m"), SlaTargets()))
    assert declared["mtta.p1"] == (m(7), m(23), False)
    assert "mtta.p0" not in declared


def test_live_view_after_acknowledgement_runs_mitigation_and_comms() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("2m").ack().declare("P0").assign()
    b.at("3m").comms("initial_alert")
    view = live_view(b.events, b.time("10m"), SlaTargets())
    got = budgets(view)
    assert view.phase == Phase.MITIGATE
    assert got["mttm.p0"] == (m(8), m(7), False)
    assert got["comms.status_cadence"] == (m(7), m(23), False)
    assert "comms.initial_alert" not in got and "mtta.p0" not in got and "triage.within" not in got


def test_live_view_excludes_paused_time_from_budgets() -> None:
    b = DrillBuilder()
    b.at("1m").alert()
    b.at("2m").pause()
    view = live_view(b.events, b.time("12m"), SlaTargets())
    assert view.paused
    assert view.phase == Phase.PAUSED
    assert view.elapsed == m(12)
    assert view.elapsed_active == m(2)
    assert budgets(view)["oncall.ack_all"] == (m(1), m(14), False)


def test_live_view_confirms_mitigation_once_the_window_has_passed_by_now() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert().ack().declare("P1").assign()
    b.at("2m").action("rollback")
    b.at("3m").healthy()
    assert "mttm.p1" in budgets(live_view(b.events, b.time("3m20s"), SlaTargets()))
    view = live_view(b.events, b.time("3m30s"), SlaTargets())
    assert view.phase == Phase.RESOLVE
    assert "mttm.p1" not in budgets(view)


def test_live_view_of_an_ended_drill_has_no_budgets() -> None:
    b = passing_drill()
    view = live_view(b.events, b.time("11m"), SlaTargets())
    assert view.budgets == ()
    assert view.phase == Phase.POSTMORTEM


@pytest.mark.parametrize(
    ("whom", "rank"),
    [("engineering-lead", 1), ("Engineering Leadership", 2), ("executives", 3), ("exec_team", 0), ("sme", 0)],
)
def test_escalation_ranks(whom: str, rank: int) -> None:
    assert escalation_rank(whom) == rank


def test_observed_node_state_is_not_a_change_by_anyone() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").action(ActionKind.NODE_READY, actor="alice")
    b.at("2m").healthy()
    b.at("3m").end()
    assert compute_clocks(b.events).mitigated_by == "system"


# ---- the seed's definitions to the letter (issue #12) ---------------------------------------------


def test_no_acknowledgement_means_no_ttm_even_after_a_human_mitigation() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("3m").action("rollback").note().after("1s").healthy()
    b.at("6m").end()
    c = compute_clocks(b.events)
    assert c.mitigated_by == "human" and c.mitigated == b.time("3m1s")
    assert c.acknowledged is None
    assert (c.ttm, c.ttm_active) == (None, None)


def test_the_response_starts_at_the_acknowledgement_but_never_before_the_alert() -> None:
    b = DrillBuilder()
    b.at("1m").ack()
    b.at("2m").alert()
    assert build(b.events).response_start == b.time("2m")
    later = DrillBuilder()
    later.at("2m").alert()
    assert build(later.events).response_start == later.time("2m")
    later.at("3m").ack()
    assert build(later.events).response_start == later.time("3m")
    silent = DrillBuilder()
    assert build(silent.events).response_start == silent.start  # nothing at all: from T0


def test_declarations_roles_messages_and_escalations_before_t0_are_not_about_this_fault() -> None:
    b = DrillBuilder(inject=False)
    b.at("-2m").declare().assign("ic", "alice").comms("initial_alert").escalate()
    b.at("0s").fault()
    tl = build(b.events)
    assert (tl.severity_first, tl.ic_assigned, tl.comms, tl.escalations) == (None, None, (), ())
    b.at("1m").assign("ic", "bob")
    assert build(b.events).ic_assigned is not None
