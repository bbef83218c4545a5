"""When a drill ends: the engine's pure ``drill_end`` over journals built by hand, one test per way of ending
and per edge (the budget's boundary, pauses, the wrap-up, precedence), in milliseconds."""

from __future__ import annotations

from datetime import timedelta

from builders import DrillBuilder

from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.engine.ending import AbortRequest, DrillLimits, Ending, drill_end
from drills.model.events import ActorKind, Mode, Outcome

BUDGET = timedelta(minutes=10)
WRAP_UP = timedelta(seconds=60)
LIMITS = DrillLimits(time_budget=BUDGET, wrap_up=WRAP_UP)
SELF_HEALING = DrillLimits(time_budget=BUDGET, wrap_up=WRAP_UP, ends_on_self_healing=True)


def test_a_drill_under_way_goes_on() -> None:
    b = DrillBuilder()
    b.at("1m").unhealthy()
    b.at("2m").alert()
    assert drill_end(b.events, b.time("3m"), LIMITS) is None


def test_drill_ended_in_the_journal_ends_it_with_its_outcome_and_reason() -> None:
    b = DrillBuilder()
    b.at("1m").end(Outcome.ABORTED, "game master stopped it")
    assert drill_end(b.events, b.time("2m"), LIMITS) == Ending(Outcome.ABORTED, "game master stopped it")


def test_drill_ended_without_a_reason_says_another_writer_ended_it() -> None:
    b = DrillBuilder()
    b.at("1m").end(Outcome.RESOLVED)
    assert drill_end(b.events, b.time("2m"), LIMITS) == Ending(Outcome.RESOLVED, "ended by another writer")


def test_an_abort_request_ends_the_drill_naming_who_asked() -> None:
    b = DrillBuilder()
    b.at("1m").unhealthy()
    ending = drill_end(b.events, b.time("2m"), LIMITS, abort=AbortRequest(by="gm", reason="fire alarm"))
    assert ending == Ending(Outcome.ABORTED, "fire alarm (by gm)")


def test_the_journals_own_end_wins_over_an_abort_request() -> None:
    b = DrillBuilder()
    b.at("1m").end(Outcome.RESOLVED, "done")
    ending = drill_end(b.events, b.time("2m"), LIMITS, abort=AbortRequest())
    assert ending is not None and ending.outcome == Outcome.RESOLVED


def test_the_budget_ends_the_drill_exactly_at_its_boundary_not_before() -> None:
    b = DrillBuilder()  # the fault at +0
    b.at("1m").unhealthy()
    assert drill_end(b.events, b.time(BUDGET - timedelta(milliseconds=1)), LIMITS) is None
    ending = drill_end(b.events, b.time(BUDGET), LIMITS)
    assert ending == Ending(Outcome.TIMED_OUT, "time budget of 0:10:00 used up")


def test_the_budget_counts_from_the_fault_not_from_the_start() -> None:
    b = DrillBuilder(inject=False)
    b.at("2m").fault()
    assert drill_end(b.events, b.time("11m"), LIMITS) is None
    assert drill_end(b.events, b.time("12m"), LIMITS) is not None


def test_without_a_fault_the_budget_never_runs_out() -> None:
    b = DrillBuilder(inject=False)
    assert drill_end(b.events, b.time("10h"), LIMITS) is None


def test_paused_time_does_not_count_against_the_budget() -> None:
    b = DrillBuilder()
    b.at("1m").pause()
    b.at("4m").resume()
    assert drill_end(b.events, b.time("12m"), LIMITS) is None  # 9 minutes active
    ending = drill_end(b.events, b.time("13m"), LIMITS)
    assert ending is not None and ending.outcome == Outcome.TIMED_OUT


def test_a_pause_still_open_stops_the_budget() -> None:
    b = DrillBuilder()
    b.at("5m").pause()
    assert drill_end(b.events, b.time("1h"), LIMITS) is None


def test_an_abort_request_wins_over_a_spent_budget() -> None:
    b = DrillBuilder()
    ending = drill_end(b.events, b.time("20m"), LIMITS, abort=AbortRequest(by="gm", reason="stop"))
    assert ending is not None and ending.outcome == Outcome.ABORTED


def test_a_resolution_ends_the_drill_after_the_wrap_up() -> None:
    b = DrillBuilder()
    b.at("1m").unhealthy()
    b.at("3m").healthy()
    b.at("5m").resolve(by="alice")
    assert drill_end(b.events, b.time("5m59s"), LIMITS) is None  # time for the postmortem notes
    assert drill_end(b.events, b.time("6m"), LIMITS) == Ending(Outcome.RESOLVED, "resolved by alice")


def test_a_scripted_responder_done_ends_a_resolved_drill_at_once() -> None:
    b = DrillBuilder()
    b.at("1m").unhealthy()
    b.at("3m").healthy()
    b.at("5m").resolve(by="bot:good")
    ending = drill_end(b.events, b.time("5m"), LIMITS, responder_done=True)
    assert ending == Ending(Outcome.RESOLVED, "resolved by bot:good")


def test_a_responder_done_without_a_resolution_does_not_end_the_drill() -> None:
    b = DrillBuilder()
    b.at("1m").unhealthy()
    assert drill_end(b.events, b.time("2m"), LIMITS, responder_done=True) is None


def test_a_resolution_undone_by_a_relapse_does_not_end_the_drill() -> None:
    b = DrillBuilder()
    b.at("1m").unhealthy()
    b.at("3m").healthy()
    b.at("4m").resolve()
    b.at("4m30s").unhealthy()  # reopened
    assert drill_end(b.events, b.time("8m"), LIMITS, responder_done=True) is None


def _self_healed() -> DrillBuilder:
    b = DrillBuilder(healthy_for="30s")
    b.at("10s").unhealthy()
    b.at("40s").action("pod_created", actor="replicaset-controller", actor_kind=ActorKind.CONTROLLER)
    b.at("1m").healthy()
    return b


def test_a_chaos_test_of_a_self_healing_scenario_ends_when_health_comes_back_on_its_own() -> None:
    b = _self_healed()
    assert drill_end(b.events, b.time("1m10s"), SELF_HEALING) is None  # not healthy for the window yet
    ending = drill_end(b.events, b.time("1m30s"), SELF_HEALING)
    assert ending == Ending(Outcome.SELF_HEALED, "health came back without anyone acting")


def test_self_healing_does_not_end_a_training_drill() -> None:
    b = _self_healed()
    assert drill_end(b.events, b.time("2m"), LIMITS) is None


def test_a_human_mitigation_is_not_self_healing() -> None:
    b = DrillBuilder(healthy_for="30s")
    b.at("10s").unhealthy()
    b.at("40s").action("rollback")
    b.at("1m").healthy()
    assert drill_end(b.events, b.time("2m"), SELF_HEALING) is None


def test_limits_of_a_scenario_follow_its_budget_and_the_mode() -> None:
    scenario = load_scenario(find_scenario("pod-kill-self-healing"))
    assert scenario.self_healing
    chaos = DrillLimits.of(scenario, Mode.CHAOS_TEST, WRAP_UP)
    assert chaos == DrillLimits(scenario.time_budget, WRAP_UP, ends_on_self_healing=True)
    assert not DrillLimits.of(scenario, Mode.TRAINING, WRAP_UP).ends_on_self_healing
