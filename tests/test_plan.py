"""DR plans: the model and its file errors, ordering (sequence, parallel, offsets), step timing, the report.

The cluster run of the shipped quarterly plan is in tests/test_programs_cluster.py. Here the drills are
stand-ins that write real journals (B's Journal) on a fake clock, so ordering and timing are exact.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drills.adapters.files.plans import load_plan
from drills.adapters.files.scenarios import load_model
from drills.adapters.kube.runbook import StepVerdict, backup_age, backup_taken_at
from drills.adapters.store.journal import Journal, read_journal
from drills.engine.scoring import score
from drills.errors import ScenarioError
from drills.model.events import (
    DrillEnded,
    DrillStarted,
    FaultInjected,
    FaultReverted,
    Outcome,
    RunbookStep,
    Source,
)
from drills.model.plan import DrPlan
from drills.model.plan import RunbookStep as PlanStep
from drills.runner.plans import Launched, run_plan
from drills.timing import FakeClock

ROOT = Path(__file__).resolve().parents[1]
T_START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))


HEADER = """\
id: test-plan
title: Test plan
objectives: [Everything restored in time]
teams:
  - {id: platform, name: Platform}
  - {id: app, name: Application}
"""


def write(tmp_path: Path, body: str, name: str = "plan.yaml") -> Path:
    p = tmp_path / name
    p.write_text(HEADER + body)
    return p


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as e:
        load_plan(path)
    return [str(p) for p in e.value.problems]


# ---- the shipped plan ----------------------------------------------------------------------------------


def test_the_quarterly_plan_is_valid_with_three_teams_and_the_namespace_restore() -> None:
    loaded = load_plan(ROOT / "scenarios" / "plans" / "quarterly-dr.yaml")
    plan = loaded.plan
    assert len(plan.entries) == 3 and len({e.team for e in plan.entries}) == 3
    first = loaded.resolved("namespace-restore")
    assert first.scenario.id == "quarterly-dr-namespace-lost"
    assert any(s.backup for s in first.entry.runbook) and first.backups
    assert all(e.runbook for e in plan.entries)
    # Sequential: each waits for the previous one's end (they share the production namespace).
    assert plan.ends_before("namespace-restore", "database-failover")
    assert plan.ends_before("namespace-restore", "release-rollback")


# ---- file errors ---------------------------------------------------------------------------------------


def test_unknown_team_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "entries:\n  - id: a\n    scenario: bad-deploy-rollback\n    team: nobody\n")
    (problem,) = problems_of(p)
    assert problem.startswith(f"{p}:") and "team 'nobody' is not one of the plan's teams" in problem


def test_a_cycle_is_shown_as_a_circle(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "entries:\n"
        "  - {id: a, scenario: bad-deploy-rollback, team: app, after: b}\n"
        "  - {id: b, scenario: load-spike-scale, team: app, after: a}\n",
    )
    (problem,) = problems_of(p)
    assert "wait for each other in a circle: a -> b -> a" in problem


def test_missing_scenario_and_responder_point_at_their_fields(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "entries:\n"
        "  - id: a\n"
        "    scenario: no-such-scenario\n"
        "    team: app\n"
        "  - id: b\n"
        "    scenario: bad-deploy-rollback\n"
        "    team: app\n"
        "    responder: bot:does-not-exist\n",
    )
    probs = problems_of(p)
    assert any(f"{p}:9: entries[0].scenario: no scenario 'no-such-scenario'" in x for x in probs), probs
    assert any(f"{p}:14: entries[1].responder: no responder profile 'does-not-exist'" in x for x in probs), (
        probs
    )


def test_parallel_entries_on_the_same_target_are_refused(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "entries:\n"
        "  - {id: a, scenario: bad-deploy-rollback, team: app}\n"
        "  - {id: b, scenario: image-pull-fix-forward, team: app, with: a}\n",
    )
    (problem,) = problems_of(p)
    assert "may run at the same time in namespace production and both break app" in problem
    assert "add `after: a`" in problem


def test_a_human_responder_needs_a_trainee(tmp_path: Path) -> None:
    p = write(tmp_path, "entries:\n  - {id: a, scenario: bad-deploy-rollback, team: app, responder: human}\n")
    (problem,) = problems_of(p)
    assert "needs `trainee`" in problem


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "{name: Undo it, owner: x, command: kubectl rollout undo deployment/app -n production}",
            "needs a `check`",
        ),
        ("{name: Check it, owner: x, check: {kubectl: delete pod x}}", "a check only reads"),
        ("{name: Restore, owner: x, command: kubectl get ns, rpo: 1h}", "give `backup`"),
        ("{name: Nothing, owner: x}", "a command, a check, or both"),
        (
            "{name: Check it, owner: x, check: {kubectl: 'get deploy app -o jsonpath={.a[?(@.name==\"X\")].v}'}}",
            "compares with a bare word",
        ),
        (
            '{name: Check it, owner: x, check: {kubectl: "get deploy app -o \'jsonpath={.a}"}}',
            "as a shell would",
        ),
    ],
)
def test_runbook_step_rules(tmp_path: Path, step: str, message: str) -> None:
    p = write(
        tmp_path,
        f"entries:\n  - id: a\n    scenario: bad-deploy-rollback\n    team: app\n    runbook:\n      - {step}\n",
    )
    probs = problems_of(p)
    assert any(message in x and "entries[0].runbook[0]" in x for x in probs), probs


# ---- ordering ------------------------------------------------------------------------------------------


def plan_of(entries: str) -> DrPlan:
    import yaml

    data = yaml.safe_load(HEADER + entries)
    return DrPlan.model_validate(data)


def test_a_quoted_jsonpath_filter_is_a_valid_check() -> None:
    from drills.model.plan import KubectlCheck

    check = KubectlCheck(kubectl="get deploy app -o 'jsonpath={.a[?(@.name==\"X\")].v}'")
    assert check.kubectl.startswith("get deploy app")


def test_default_is_a_sequence_and_with_makes_a_parallel_group() -> None:
    plan = plan_of(
        "entries:\n"
        "  - {id: a, scenario: s, team: app}\n"
        "  - {id: b, scenario: s, team: app}\n"
        "  - {id: c, scenario: s, team: app, with: b}\n"
        "  - {id: d, scenario: s, team: app, after: [b, c]}\n"
        "  - {id: e, scenario: s, team: app, start: 10m}\n"
    )
    deps = {k: [(d.entry, d.on) for d in v] for k, v in plan.dependencies().items()}
    assert deps == {
        "a": [],
        "b": [("a", "end")],
        "c": [("b", "start")],
        "d": [("b", "end"), ("c", "end")],
        "e": [],
    }
    assert plan.may_overlap("b", "c") and plan.may_overlap("a", "e")
    assert plan.ends_before("a", "c")  # c starts with b, which starts after a ended
    assert not plan.may_overlap("a", "d")


# ---- running, with stand-in drills -----------------------------------------------------------------------


class SharedClock(FakeClock):
    """A fake clock several threads share: each sleep also yields a moment of real time to the others."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._lock = threading.Lock()

    def advance(self, seconds: float | timedelta) -> None:
        with self._lock:
            super().advance(seconds)

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        time.sleep(0.001)


class StandIn:
    """A drill that writes a real journal: started, fault at +10s, ended after ``lasts``; scored for real."""

    def __init__(self, clock: SharedClock, lasts: dict[str, float], revert_at: float | None = None) -> None:
        self.clock = clock
        self.lasts = lasts
        self.revert_at = revert_at
        self.spans: dict[str, tuple[datetime, datetime]] = {}
        self.lock = threading.Lock()

    def __call__(self, resolved, *, plan_id, drill_id, on_started):  # type: ignore[no-untyped-def]
        from drills.adapters.store.paths import drill_dir

        sc = resolved.scenario
        start = self.clock.now()
        path = drill_dir(drill_id) / "journal.jsonl"
        started = DrillStarted(
            at=start,
            source=Source.SYSTEM,
            drill_id=drill_id,
            scenario_id=sc.id,
            scenario_title=sc.title,
            category=sc.category,
            service=sc.service,
            namespace=sc.target.namespace,
            true_severity=sc.true_severity,
            plan_id=plan_id,
            team=resolved.entry.team,
            mode="dr",
        )
        j = Journal.create(path, started, self.clock)
        on_started(path)
        self.clock.sleep(10)
        j.append(
            FaultInjected(
                at=self.clock.now(),
                source=Source.SYSTEM,
                fault_kind=sc.faults[0].kind,
                target="production/app",
            )
        )
        end = start + timedelta(seconds=self.lasts[resolved.entry.id])
        # The step timer moves the fake clock (one second a poll); this drill only watches it, and moves it
        # itself once the timer has stopped polling, so exactly one thread drives time at any moment.
        last, still = self.clock.now(), 0
        reverted = self.revert_at is None
        while self.clock.now() < end:
            if not reverted and self.clock.now() >= start + timedelta(seconds=self.revert_at or 0):
                j.append(
                    FaultReverted(
                        at=self.clock.now(),
                        source=Source.SYSTEM,
                        fault_kind="bad-deploy",
                        target="production/app",
                    )
                )
                reverted = True
            time.sleep(0.002)
            if self.clock.now() != last:
                last, still = self.clock.now(), 0
                continue
            still += 1
            if still > 50:  # nobody moved time for 0.1 s of real time: the timer is done
                self.clock.advance(end - self.clock.now())
        j.append(DrillEnded(at=self.clock.now(), source=Source.SYSTEM, outcome=Outcome.RESOLVED))
        with self.lock:
            self.spans[resolved.entry.id] = (start, self.clock.now())
        return Launched(score(read_journal(path).events), path, None, "resolved")


class Steps:
    """Each step's check holds from a given number of seconds after the drill's fault."""

    def __init__(self, clock: SharedClock, ready_after: dict[str, float]) -> None:
        self.clock = clock
        self.ready_after = ready_after
        self.t0: dict[str, datetime] = {}

    def __call__(self, namespace: str) -> Steps:
        return self

    def check(self, step: PlanStep, *, now: datetime) -> StepVerdict:
        from drills.runner.plans import describe_check

        first = self.t0.setdefault(step.name, now)
        ok = (now - first).total_seconds() >= self.ready_after[step.name]
        return StepVerdict(ok, f"{describe_check(step)}: {'ok' if ok else 'not yet'}")


RUN_PLAN = """\
entries:
  - id: first
    scenario: bad-deploy-rollback
    team: app
    rto: 5m
    runbook:
      - name: Roll back
        owner: lucia
        command: kubectl rollout undo deployment/app -n production
        check: {kubectl: get deployment app -n production, expect: v2.0.0}
        rto: 2m
      - name: Ready again
        owner: kofi
        check: {probe: {probe: deployment-available, name: app}}
        rto: 3m
  - id: second
    scenario: node-not-ready-drain
    team: platform
    rto: 1m
    runbook:
      - name: Drain the node
        owner: priya
        command: kubectl get nodes
        rto: 30s
"""


def test_entries_run_in_sequence_and_every_step_is_timed_and_journaled(tmp_path: Path) -> None:
    loaded = load_plan(write(tmp_path, RUN_PLAN))
    clock = SharedClock(T_START)
    drills = StandIn(clock, {"first": 400, "second": 200})
    steps = Steps(clock, {"Roll back": 90, "Ready again": 60, "Drain the node": 45})
    result = run_plan(loaded, launcher=drills, checkers=steps, clock=clock, out_dir=tmp_path / "out")

    first, second = result.entries
    assert drills.spans["first"][1] <= drills.spans["second"][0]  # second waited for first's end
    assert first.t0 is not None and first.drill_id and first.drill_id.endswith("test-plan-first")
    roll, ready = first.steps
    assert roll.status == ready.status == "done"
    assert roll.started == first.t0
    assert 90 <= roll.duration.total_seconds() <= 92  # polled every second
    assert ready.started == roll.done  # a step starts when the previous one is confirmed
    assert roll.rto_met(first.t0) and ready.rto_met(first.t0)
    assert first.recovery == ready.done - first.t0 and first.rto_met
    (drain,) = second.steps
    assert drain.status == "done" and drain.rto_met(second.t0) is False  # 45s against 30s
    assert not second.objectives_met and not result.objectives_met

    # The steps are in the drill's own journal, as runbook.step events.
    events = read_journal(first.journal).events
    marks = [(e.step, e.status) for e in events if isinstance(e, RunbookStep)]
    assert marks == [
        ("Roll back", "started"),
        ("Roll back", "done"),
        ("Ready again", "started"),
        ("Ready again", "done"),
    ]

    # The combined report: per team, per step, against the objectives.
    assert result.report is not None
    md = result.report.markdown.read_text()
    assert "## Application (`app`)" in md and "## Platform (`platform`)" in md
    assert "| 1 | Drain the node | priya | done |" in md and "30s missed" in md
    data = json.loads(result.report.json.read_text())
    assert data["objectives_met"] is False
    assert data["entries"][0]["steps"][0]["rto_met"] is True
    html = result.report.html.read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_a_step_that_never_holds_fails_and_skips_the_rest(tmp_path: Path) -> None:
    loaded = load_plan(write(tmp_path, RUN_PLAN))
    clock = SharedClock(T_START)
    drills = StandIn(clock, {"first": 200, "second": 100})
    steps = Steps(clock, {"Roll back": 10_000, "Ready again": 1, "Drain the node": 1})
    result = run_plan(loaded, launcher=drills, checkers=steps, clock=clock, out_dir=tmp_path / "out")
    roll, ready = result.entries[0].steps
    assert roll.status == "failed" and "the drill ended (or drills reverted the fault) before" in roll.detail
    assert ready.status == "skipped"
    assert result.entries[0].recovery is None and result.entries[0].rto_met is False


def test_a_step_that_only_holds_after_drills_reverted_the_fault_is_not_credited(tmp_path: Path) -> None:
    loaded = load_plan(write(tmp_path, RUN_PLAN))
    clock = SharedClock(T_START)
    # The drill gives up (budget) and reverts at +60s, but stays alive until +300s writing its reports;
    # the rollback check would hold from +120s (because of the revert, not the team).
    drills = StandIn(clock, {"first": 300, "second": 100}, revert_at=60)
    steps = Steps(clock, {"Roll back": 120, "Ready again": 1, "Drain the node": 1})
    result = run_plan(loaded, launcher=drills, checkers=steps, clock=clock, out_dir=tmp_path / "out")
    roll, _ = result.entries[0].steps
    assert roll.status == "failed" and "reverted the fault" in roll.detail
    assert roll.done is None


def test_parallel_entries_overlap(tmp_path: Path) -> None:
    staging = (ROOT / "scenarios" / "node-not-ready-drain.yaml").read_text()
    staging = staging.replace("id: node-not-ready-drain", "id: staging-node-not-ready")
    assert "target:" not in staging or "namespace:" not in staging.split("target:")[1].split("faults:")[0]
    (tmp_path / "staging.yaml").write_text(staging + "target:\n  namespace: staging\n")
    body = RUN_PLAN.replace(
        "    scenario: node-not-ready-drain\n    team: platform\n",
        "    scenario: staging.yaml\n    team: platform\n    with: first\n",
    )
    loaded = load_plan(write(tmp_path, body))
    clock = SharedClock(T_START)
    drills = StandIn(clock, {"first": 300, "second": 300})
    steps = Steps(clock, {"Roll back": 5, "Ready again": 5, "Drain the node": 5})
    run_plan(loaded, launcher=drills, checkers=steps, clock=clock, out_dir=tmp_path / "out")
    (a0, a1), (b0, b1) = drills.spans["first"], drills.spans["second"]
    assert a0 < b1 and b0 < a1


def test_a_drill_that_crashes_is_reported_not_lost(tmp_path: Path) -> None:
    loaded = load_plan(write(tmp_path, RUN_PLAN))
    clock = SharedClock(T_START)

    def broken(resolved, *, plan_id, drill_id, on_started):  # type: ignore[no-untyped-def]
        raise RuntimeError("the injector fell over")

    result = run_plan(loaded, launcher=broken, checkers=Steps(clock, {}), clock=clock, out_dir=tmp_path / "o")
    assert all(e.error and "the injector fell over" in e.error for e in result.entries)
    assert all(s.status == "skipped" for e in result.entries for s in e.steps)
    assert "Did not complete: RuntimeError: the injector fell over" in result.report.markdown.read_text()


# ---- RPO -------------------------------------------------------------------------------------------------


def test_backup_age_from_a_stamp_or_the_files(tmp_path: Path) -> None:
    stamped = tmp_path / "b1"
    stamped.mkdir()
    (stamped / "ns.yaml").write_text(
        "metadata:\n  annotations:\n    drills.io/backup-taken-at: '2026-03-02T10:00:00Z'\n"
    )
    t0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert backup_taken_at(stamped) == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert backup_age(stamped, t0) == timedelta(days=1)
    plain = tmp_path / "b2"
    plain.mkdir()
    f = plain / "x.yaml"
    f.write_text("kind: ConfigMap\n")
    import os

    os.utime(f, (t0.timestamp() - 3600, t0.timestamp() - 3600))
    assert backup_age(plain, t0) == timedelta(hours=1)
    assert backup_taken_at(tmp_path / "empty-does-not-exist") is None


def test_plan_schema_rejects_unknown_keys(tmp_path: Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_text(HEADER + "entries:\n  - {id: a, scenario: s, team: app, teem: app}\n")
    with pytest.raises(ScenarioError) as e:
        load_model(p, DrPlan)
    assert "teem" in str(e.value)


def test_a_step_past_its_timeout_aborts_the_drill_so_the_plan_moves_on(tmp_path: Path) -> None:
    from drills.runner.respond import ABORT_MARKER

    loaded = load_plan(write(tmp_path, RUN_PLAN))
    clock = SharedClock(T_START)
    drills = StandIn(clock, {"first": 1000, "second": 100})
    steps = Steps(clock, {"Roll back": 10_000, "Ready again": 1, "Drain the node": 1})
    result = run_plan(loaded, launcher=drills, checkers=steps, clock=clock, out_dir=tmp_path / "out")
    first = result.entries[0]
    roll = first.steps[0]
    assert roll.status == "failed" and roll.detail.startswith("timed out")
    assert first.journal is not None
    request = json.loads((first.journal.parent / ABORT_MARKER).read_text())
    assert request["by"] == "drills-plan" and "'Roll back' was not confirmed in time" in request["reason"]
    assert any("drill aborted" in w for w in first.warnings)


@pytest.mark.browser
def test_plan_report_chart_in_chromium(tmp_path: Path) -> None:
    from PIL import Image
    from terminal_shots import ARTIFACTS, CHROMIUM, screenshot

    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium is not installed: apt-get install -y chromium")
    loaded = load_plan(write(tmp_path, RUN_PLAN))
    clock = SharedClock(T_START)
    result = run_plan(
        loaded,
        launcher=StandIn(clock, {"first": 400, "second": 200}),
        checkers=Steps(clock, {"Roll back": 90, "Ready again": 60, "Drain the node": 45}),
        clock=clock,
        out_dir=tmp_path / "out",
    )
    assert result.report is not None
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "plan-report-standin.png"
    png.unlink(missing_ok=True)
    assert screenshot(result.report.html, png, size=(1280, 1300))
    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    green = sum(
        n for n, (r, g, b) in colours if abs(r - 0x1A) < 10 and abs(g - 0x7F) < 10 and abs(b - 0x37) < 10
    )
    assert green > 300, "no confirmed-step markers or 'met' cells drawn"


def test_cli_plan_validate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from drills.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["plan", "validate", str(ROOT / "scenarios" / "plans" / "quarterly-dr.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "plan quarterly-dr: 3 drills, 3 teams, 10 runbook steps" in ok.output
    bad = write(tmp_path, "entries:\n  - {id: a, scenario: bad-deploy-rollback, team: nobody}\n")
    r = runner.invoke(cli, ["plan", "validate", str(bad)])
    assert r.exit_code == 3 and f"{bad}:" in r.output and "0 plans valid, 1 problem" in r.output
    assert "Traceback" not in r.output
