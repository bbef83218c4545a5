"""Typed options of ``run_drill``: defaults, the mode by name, the wrap-up, what a DrillRun derives from them
before it touches a cluster, and what a DR plan's launcher hands each entry."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drills.adapters.files.plans import load_plan
from drills.errors import UsageError
from drills.model.events import Mode
from drills.runner import run as run_module
from drills.runner.detector import NoDetector
from drills.runner.options import (
    ClusterTarget,
    DetectionOptions,
    DrillOptions,
    ReportingOptions,
    ResponderOptions,
    parse_mode,
)
from drills.runner.pager import RecordingPager
from drills.runner.plans import run_drill_launcher
from drills.runner.run import DrillRun

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_a_human_training_drill_on_the_embedded_cluster() -> None:
    o = DrillOptions()
    assert o.mode is Mode.TRAINING and o.responder.responder == "human"
    assert o.cluster == ClusterTarget(backend="embedded", name="drills")
    assert o.detection.detector == "health-probe" and o.reporting.dashboard
    assert o.effective_wrap_up == timedelta(seconds=60)


def test_the_wrap_up_follows_the_bots_time_scale_unless_given() -> None:
    assert DrillOptions(responder=ResponderOptions(time_scale=0.25)).effective_wrap_up == timedelta(
        seconds=15
    )
    assert DrillOptions(wrap_up=timedelta(seconds=5)).effective_wrap_up == timedelta(seconds=5)


def test_a_mode_by_name_is_accepted_and_a_wrong_one_is_a_usage_error() -> None:
    assert DrillOptions(mode="chaos-test").mode is Mode.CHAOS_TEST  # type: ignore[arg-type]
    assert parse_mode("dr") is Mode.DR
    with pytest.raises(UsageError, match="unknown mode 'panic'") as e:
        DrillOptions(mode="panic")  # type: ignore[arg-type]
    assert "training" in (e.value.hint or "")


def test_options_are_frozen_and_derived_with_replace() -> None:
    base = DrillOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.mode = Mode.DR  # type: ignore[misc]
    dr = dataclasses.replace(base, mode=Mode.DR, responder=dataclasses.replace(base.responder, seed=3))
    assert dr.mode is Mode.DR and dr.responder.seed == 3 and base.responder.seed is None


def test_a_drill_run_derives_its_parts_from_the_options_without_a_cluster() -> None:
    run = DrillRun(
        "pod-kill-self-healing",
        DrillOptions(
            mode=Mode.CHAOS_TEST,
            responder=ResponderOptions("bot:good", time_scale=0.5),
            detection=DetectionOptions("none", pagers=["memory"]),
            handle_signals=False,
        ),
    )
    assert run.scenario.id == "pod-kill-self-healing" and run.responder_kind == "bot"
    assert run.profile is not None and run.profile.name
    assert isinstance(run.detector, NoDetector)
    assert [type(p) for p in run.pagers] == [RecordingPager]
    assert run.limits.ends_on_self_healing and run.limits.wrap_up == timedelta(seconds=30)
    assert run.limits.time_budget == run.scenario.time_budget
    assert run.targets == run.policy.targets(run.scenario.sla)
    assert not run.handle_signals and run.cluster is None
    assert run.state.drill_id == "" and run.state.ending is None


def test_an_unknown_detector_fails_before_anything_starts() -> None:
    with pytest.raises(UsageError, match=r"no detector named 'psychic' \(known: "):
        DrillRun("pod-kill-self-healing", DrillOptions(detection=DetectionOptions("psychic")))


def test_a_plan_entry_gets_the_plans_ids_and_its_own_responder(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Path, DrillOptions]] = []

    class Result:
        scorecard: Any = None
        journal_path = Path("j")
        report_dir = Path("r")
        outcome = "resolved"

    def fake_run_drill(scenario: Path, options: DrillOptions) -> Result:
        seen.append((scenario, options))
        return Result()

    monkeypatch.setattr(run_module, "run_drill", fake_run_drill)
    loaded = load_plan(ROOT / "scenarios" / "plans" / "quarterly-dr.yaml")
    resolved = next(iter(loaded.entries.values()))
    base = DrillOptions(
        responder=ResponderOptions(time_scale=0.1), reporting=ReportingOptions(dashboard=True)
    )
    launch = run_drill_launcher(cluster_name="c1", backend="kind", seed=5, options=base)
    started: list[Path] = []
    launch(resolved, plan_id="plan-1", drill_id="plan-1-x", on_started=started.append)
    ((scenario, options),) = seen
    assert scenario == resolved.scenario_path
    assert options.mode is Mode.DR and options.plan_id == "plan-1" and options.drill_id == "plan-1-x"
    assert options.team == resolved.entry.team and options.on_started == started.append
    assert options.responder.seed == 5 and options.responder.time_scale == 0.1  # the base's time scale kept
    assert options.responder.trainee == resolved.entry.trainee
    assert options.cluster == ClusterTarget(backend="kind", name="c1")
    assert not options.reporting.dashboard  # plans never draw a dashboard
