"""A hypothesis that does not hold before the fault is its own drill result, not a crash (issue #18).

Without a cluster: where the runner decides the outcome, the exit code it gives, and every reader of outcomes
(the scorer, the history index, the trainee's record, the monthly report). The run itself, against the
embedded cluster, is tests/test_ctk_cluster.py::test_a_hypothesis_that_fails_before_the_fault_injects_nothing.
"""

from __future__ import annotations

from pathlib import Path

from builders import DrillBuilder, passing_drill

from drills.adapters.store.history import History
from drills.cli._app import ExitCode
from drills.cli.run import exit_code
from drills.engine.ladder import DrillStatus
from drills.engine.scoring import score
from drills.errors import ChaosToolkitError, SteadyStateNotMet
from drills.model.events import DrillStarted, Outcome
from drills.reporting.monthly import monthly_report, render_monthly_html, render_monthly_markdown
from drills.reporting.report import write_reports_for
from drills.runner.run import DrillResult, failure_ending, resolve_scenario

NOT_MET = SteadyStateNotMet(
    "Chaos Toolkit experiment hypothesis-fails did not run its method (status failed): its steady-state "
    "hypothesis did not hold before the fault; nothing was injected"
)


def not_steady_drill(drill_id: str = "ctk-not-steady") -> DrillBuilder:
    b = DrillBuilder(inject=False, drill_id=drill_id, trainee="alice")
    ending = failure_ending(NOT_MET)
    return b.at("5s").end(ending.outcome, ending.reason)


def test_the_runner_ends_a_drill_whose_steady_state_did_not_hold_as_not_steady_not_crashed() -> None:
    ending = failure_ending(NOT_MET)
    assert ending.outcome is Outcome.NOT_STEADY
    assert ending.reason.startswith("steady state not met before the fault: nothing injected")
    assert failure_ending(ChaosToolkitError("ended failed")).outcome is Outcome.CRASHED
    assert failure_ending(RuntimeError("boom")).outcome is Outcome.CRASHED


def test_a_not_steady_drill_is_not_scored_and_exits_7(tmp_path: Path) -> None:
    events = not_steady_drill().events
    card = score(events)
    assert card.outcome == "not_steady"
    assert (card.score, card.passed, card.improve_next) == (0.0, False, None)
    assert card.score_explained.startswith("not scored: the steady state did not hold before the fault")
    scenario, _ = resolve_scenario("pod-kill-self-healing")
    reports = write_reports_for(card, events, tmp_path / "r")
    result = DrillResult(
        drill_id=card.drill_id,
        scenario=scenario,
        outcome=Outcome.NOT_STEADY,
        reason=failure_ending(NOT_MET).reason,
        scorecard=card,
        reports=reports,
        journal_path=tmp_path / "journal.jsonl",
        drill_dir=tmp_path,
    )
    assert exit_code(result) == ExitCode.NOT_STEADY == 7
    crashed = DrillResult(**{**result.__dict__, "outcome": Outcome.CRASHED})
    assert exit_code(crashed) == ExitCode.ENVIRONMENT
    assert "not_steady" in reports.postmortem.read_text()


def test_history_keeps_a_not_steady_drill_finished_and_out_of_the_trainees_record(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as h:
        for b in (not_steady_drill(), passing_drill(drill_id="ok-drill", trainee="alice")):
            events = b.events
            assert isinstance(events[0], DrillStarted)
            assert h.record_journal(events[0], events, None) == DrillStatus.FINISHED
        rows = {d.drill_id: d for d in h.drills()}
        assert rows["ctk-not-steady"].status == DrillStatus.FINISHED  # the CHECK on status holds
        assert rows["ctk-not-steady"].outcome == "not_steady"
        alice = h.trainee("alice")
    assert {d.drill_id for d in alice.drills} >= {"ctk-not-steady", "ok-drill"}
    assert [d.drill_id for d in alice.responded] == ["ok-drill"]


def test_the_monthly_report_counts_not_steady_drills_apart() -> None:
    cards = [score(not_steady_drill().events), score(passing_drill(drill_id="ok-drill").events)]
    month = f"{cards[0].started:%Y-%m}"
    report = monthly_report(cards, month)
    assert (report.drills.total, report.drills.passed, report.drills.not_steady) == (1, 1, 1)
    assert report.drills.mean_score == cards[1].score
    line = "Not run: 1 drill whose steady state did not hold before the fault"
    assert line in render_monthly_markdown(report)
    assert line in render_monthly_html(report)
