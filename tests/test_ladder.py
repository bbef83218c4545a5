"""The training ladder: promotion follows the documented criteria, exactly at their thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drills.adapters.files.scenarios import load_scenario
from drills.engine.ladder import (
    CHANGE_HINT_COST,
    READ_HINT_COST,
    DrillRecord,
    DrillStatus,
    HeldRole,
    LadderRules,
    Level,
    TraineeHistory,
    criteria,
    debrief,
    level_of,
    next_step,
    scores_by_check,
    training_hints,
)
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Clocks, Scorecard
from drills.model.severity import Severity

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
P, F = CheckStatus.PASS, CheckStatus.FAIL


class Person:
    """Builds a history drill by drill, like the database would return it."""

    def __init__(self, name: str = "ana") -> None:
        self.name = name
        self.records: list[DrillRecord] = []

    def _add(self, **kw: object) -> Person:
        n = len(self.records)
        base: dict[str, object] = {
            "drill_id": f"d{n:02d}",
            "scenario": "bad-deploy-rollback",
            "started": T0 + timedelta(days=n),
        }
        base.update(kw)
        self.records.append(DrillRecord(**base))  # type: ignore[arg-type]
        return self

    def observe(self, n: int = 1) -> Person:
        for _ in range(n):
            self._add(roles=frozenset({HeldRole.OBSERVER}))
        return self

    def scribe(self, n: int = 1) -> Person:
        for _ in range(n):
            self._add(roles=frozenset({HeldRole.SCRIBE}))
        return self

    def respond(
        self,
        score: float = 85,
        *,
        ic: bool = True,
        severity: Severity = Severity.P1,
        mtta: CheckStatus = P,
        mttm: CheckStatus = P,
        status: DrillStatus = DrillStatus.FINISHED,
        extra: dict[str, CheckStatus] | None = None,
    ) -> Person:
        roles = {HeldRole.RESPONDER} | ({HeldRole.IC} if ic else set())
        sev = severity.value.lower()
        checks = {
            f"mtta.{sev}": mtta,
            f"mttm.{sev}": mttm,
            f"mttr.{sev}": P,
            "response_time": P,
            "comms.initial_alert": P,
            **(extra or {}),
        }
        return self._add(
            roles=frozenset(roles),
            trainee=self.name,
            score=score,
            passed=score >= 70,
            true_severity=severity,
            checks=checks,
            status=status,
        )

    @property
    def history(self) -> TraineeHistory:
        return TraineeHistory(self.name, tuple(self.records))


def test_everyone_starts_as_observer_and_is_told_what_is_next() -> None:
    step = next_step(TraineeHistory("new"))
    assert step.level == Level.OBSERVER and step.next_level == Level.SCRIBE
    assert [c.id for c in step.missing] == ["observed"]
    assert step.missing[0].describe() == "drills observed: 0 of 2"
    assert "Next: Scribe" in step.summary()


def test_scribe_needs_two_observed_drills_exactly() -> None:
    assert level_of(Person().observe(1).history) == Level.OBSERVER
    assert level_of(Person().observe(2).history) == Level.SCRIBE


def test_responder_needs_three_observed_and_two_scribed() -> None:
    assert level_of(Person().observe(3).scribe(1).history) == Level.SCRIBE
    assert level_of(Person().observe(2).scribe(2).history) == Level.SCRIBE
    step = next_step(Person().observe(2).scribe(2).history)
    assert [c.id for c in step.missing] == ["observed"]
    assert level_of(Person().observe(3).scribe(2).history) == Level.RESPONDER


def ready_for_ic() -> Person:
    return Person().observe(3).scribe(2).respond(80).respond(80, severity=Severity.P0).respond(80).respond(80)


def test_incident_commander_when_every_criterion_is_met() -> None:
    p = ready_for_ic()
    assert level_of(p.history) == Level.INCIDENT_COMMANDER
    step = next_step(p.history)
    assert step.next_level is None and "top of the ladder" in step.summary()


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        (lambda p: p.records.pop(), {"responded"}),  # only 3 drills responded
        (lambda p: p.respond(40), {"recent_score"}),  # last 3: 80, 80, 40 -> 66.7 < 75
    ],
)
def test_one_missing_criterion_blocks_promotion_and_is_named(change: object, missing: set[str]) -> None:
    p = ready_for_ic()
    change(p)  # type: ignore[operator]
    step = next_step(p.history)
    assert step.level == Level.RESPONDER
    assert {c.id for c in step.missing} >= missing


def test_crashed_drills_do_not_count_as_completed() -> None:
    p = Person().observe(3).scribe(2).respond().respond(severity=Severity.P0).respond()
    p.respond(status=DrillStatus.CRASHED, score=90)
    assert level_of(p.history) == Level.RESPONDER
    assert {c.id for c in next_step(p.history).missing} == {"responded"}


def test_a_high_severity_pass_is_required() -> None:
    p = Person().observe(3).scribe(2)
    for _ in range(4):
        p.respond(90, severity=Severity.P2)
    assert {c.id for c in next_step(p.history).missing} == {"high_severity_passed"}


def test_sla_checks_must_pass_in_three_drills() -> None:
    p = Person().observe(3).scribe(2).respond(90, severity=Severity.P0)
    p.respond(90, mtta=F).respond(90, mttm=F).respond(90)
    c = {x.id: x for x in criteria(p.history)[Level.INCIDENT_COMMANDER]}
    assert c["sla_clean"].have == 2 and not c["sla_clean"].met
    assert level_of(p.history) == Level.RESPONDER


def test_the_ic_role_must_have_been_held_twice() -> None:
    p = Person().observe(3).scribe(2).respond(90, ic=False, severity=Severity.P0).respond(90, ic=False)
    p.respond(90, ic=False).respond(90, ic=True)
    assert {c.id for c in next_step(p.history).missing} == {"ic_held"}


def test_levels_are_cumulative_even_with_a_strong_responder_record() -> None:
    # Four great drills as responder, but never observed nor scribed: still an observer.
    p = Person()
    for _ in range(4):
        p.respond(95, severity=Severity.P0)
    assert level_of(p.history) == Level.OBSERVER


def test_rules_are_tunable() -> None:
    assert level_of(Person().observe(1).history, LadderRules(scribe_observed=1)) == Level.SCRIBE


def test_scores_by_check_over_time() -> None:
    p = Person().respond(mtta=F).respond(mtta=P)
    series = scores_by_check(p.history)
    assert series["mtta.p1"] == [("d00", F), ("d01", P)]


# ---- debrief -------------------------------------------------------------------------------------


def card(*checks: Check, improve_next: str | None = None, drill_id: str = "now") -> Scorecard:
    return Scorecard(
        drill_id=drill_id,
        scenario_id="s",
        scenario_title="S",
        category="c",
        mode="training",
        true_severity=Severity.P0,
        clocks=Clocks(),
        checks=list(checks),
        score=50,
        grade="F",
        passed=False,
        improve_next=improve_next,
    )


MTTA = Check(
    id="mtta.p0",
    family=CheckFamily.ACKNOWLEDGEMENT,
    rule="Acknowledge a P0 page within 5 minutes",
    citation="incident-response-framework.md:402",
    target=timedelta(minutes=5),
    measured=timedelta(minutes=7, seconds=12),
    status=F,
)
COMMS = Check(
    id="comms.initial_alert",
    family=CheckFamily.COMMUNICATION,
    rule="Post the initial alert",
    citation="incident-response-framework.md:195",
    status=F,
)


def test_debrief_names_one_check_in_blameless_words() -> None:
    d = debrief(card(COMMS, MTTA, improve_next="mtta.p0: Acknowledgement took 7m12s against a 5m target."))
    assert d.check_id == "mtta.p0"
    assert "7m12s against a 5m00s target" in d.text
    lowered = d.text.lower()
    for blame in ("you failed", "your fault", "should have", "mistake", "careless"):
        assert blame not in lowered


def test_debrief_prefers_a_recurring_failure() -> None:
    history = Person().respond(extra={"comms.initial_alert": F}).history
    d = debrief(card(COMMS, MTTA, improve_next="mtta.p0"), history)
    assert d.check_id == "comms.initial_alert" and d.recurring
    assert "earlier drill too" in d.text


def test_debrief_when_everything_passed() -> None:
    d = debrief(card(MTTA.model_copy(update={"status": P})))
    assert d.check_id is None and "harder scenario" in d.text


# ---- training hints ------------------------------------------------------------------------------


def test_training_hints_offer_the_runbook_steps_with_their_cost() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "bad-deploy-rollback.yaml")
    hints = training_hints(scenario)
    own = list(scenario.hints)
    assert [h for h in hints if h in own] == own  # the scenario's own hints, in their order
    runbook = [h for h in hints if h not in own]
    texts = [h.text for h in runbook]
    # The scenario's own hints already give `rollout undo` and `rollout history`: not offered twice.
    assert not any("rollout undo" in t or "rollout history" in t for t in texts)
    assert texts[0] == "Runbook step: `kubectl get pods -n production`"
    for h in runbook:
        assert h.text.startswith("Runbook step: `kubectl")
        assert h.cost == READ_HINT_COST  # every remaining step only reads
    afters = [h.after for h in hints]
    assert afters == sorted(afters)  # offered in time order, so `drill hint` gives them in turn


def test_changing_commands_cost_more_and_never_come_before_the_scenarios_own_hints() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "bad-deploy-rollback.yaml")
    bare = scenario.model_copy(update={"hints": scenario.hints[:1]})  # keep only the 3m hint
    by_text = {h.text: h for h in training_hints(bare)}
    undo = by_text["Runbook step: `kubectl rollout undo deployment/app -n production`"]
    logs = by_text["Runbook step: `kubectl logs -n production deployment/app --tail=100 --since=10m`"]
    assert undo.cost == CHANGE_HINT_COST > logs.cost == READ_HINT_COST
    assert logs.after < undo.after  # logs come before the undo in the runbook
    assert undo.after > bare.hints[0].after


# ---- the CLI --------------------------------------------------------------------------------------


def test_cli_trainee_shows_level_next_step_and_checks_over_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from drills.adapters.store.history import History
    from drills.cli import cli
    from drills.model.events import DrillEnded, DrillStarted, Note, Outcome, Source

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    with History() as h:
        for i in range(3):
            h.record_role(f"obs-{i}", "ana", HeldRole.OBSERVER, T0 + timedelta(days=i))
        for i in range(2):
            at = T0 + timedelta(days=10 + i)
            started = DrillStarted(
                at=at,
                source=Source.SYSTEM,
                drill_id=f"scribe-{i}",
                scenario_id="bad-deploy-rollback",
                scenario_title="Bad deploy",
                category="deployment",
                service="app",
                namespace="production",
                true_severity=Severity.P1,
                trainee="ben",
            )
            events = [
                started,
                Note(at=at + timedelta(minutes=1), source=Source.HUMAN, actor="ana", text="ben rolled back"),
                DrillEnded(at=at + timedelta(minutes=9), source=Source.SYSTEM, outcome=Outcome.RESOLVED),
            ]
            h.record_start(started)
            checks = [
                Check(
                    id="mtta.p1",
                    family=CheckFamily.ACKNOWLEDGEMENT,
                    rule="r",
                    citation="c",
                    status=F if i == 0 else P,
                )
            ]
            sc = card(*checks, drill_id=f"scribe-{i}").model_copy(update={"trainee": "ben"})
            h.record_result(sc, events)
    runner = CliRunner()
    r = runner.invoke(cli, ["trainee", "ana", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["level"] == "responder" and data["next_level"] == "incident-commander"
    assert {c["id"] for c in data["missing"]} >= {"responded", "ic_held"}
    r = runner.invoke(cli, ["trainee", "ben", "--json"])
    ben = json.loads(r.output)
    assert ben["checks_over_time"]["mtta.p1"] == [
        {"drill_id": "scribe-0", "status": "fail"},
        {"drill_id": "scribe-1", "status": "pass"},
    ]
    text = runner.invoke(cli, ["trainee", "ana"]).output
    assert "Responder. Next: Incident commander" in text and "drills completed as responder" in text


def test_cli_observe_without_a_drill_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from drills.cli import cli

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    r = CliRunner().invoke(cli, ["observe", "--once"])
    assert r.exit_code == 2 and "no drill is running" in r.output and "Traceback" not in r.output
