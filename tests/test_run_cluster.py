"""Whole drills on the real embedded cluster: fault in, page, the bot's real kubectl, health back, scorecard.

Each drill runs the shipped responder profiles with ``time_scale`` compressing their offsets and the SLA
targets scaled by the same factor (``scaled_policy``), so every timed rule passes or fails as it would at full
scale while a drill takes about a minute. The scenario's healthy window (30 s) is *not* scaled: it is about
the system, and it is why a drill cannot be quicker than that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.store.journal import read_journal
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    AlertFired,
    DrillEnded,
    Event,
    FaultInjected,
    FaultReverted,
    HealthChanged,
    Mode,
    Outcome,
    PageSent,
)
from drills.model.policy import Policy, SlaOverrides, SlaTargets
from drills.model.scorecard import CheckStatus
from drills.runner.bot import BotAction
from drills.runner.run import (
    ClusterTarget,
    DrillOptions,
    DrillResult,
    DrillRun,
    ReportingOptions,
    ResponderOptions,
)

pytestmark = pytest.mark.cluster

SCALE = 0.05  # a profile's minute takes 3 s
ROOT = Path(__file__).resolve().parents[1]


def scaled_policy(factor: float) -> Policy:
    defaults = SlaTargets()
    return Policy(sla=SlaOverrides(**{k: getattr(defaults, k) * factor for k in SlaTargets.model_fields}))


@pytest.fixture
def drill_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ClusterHandle
) -> Iterator[ClusterHandle]:
    """Drill state and reports in this test's directory; the runbook's world reset afterwards."""
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    yield world


def run(
    handle: ClusterHandle,
    scenario: str,
    responder: str | Path,
    *,
    mode: Mode = Mode.TRAINING,
    time_scale: float = SCALE,
) -> DrillResult:
    return DrillRun(
        scenario,
        DrillOptions(
            mode=mode,
            policy=scaled_policy(SCALE),
            responder=ResponderOptions(responder, seed=11, time_scale=time_scale),
            cluster=ClusterTarget(name=handle.name, handle=handle),
            reporting=ReportingOptions(
                dashboard=False, console=Console(file=StringIO(), width=120), record_history=False
            ),
            handle_signals=False,
        ),
    ).execute()


def action(result: DrillResult, step: str, n: int = 0) -> BotAction:
    return [a for a in result.bot_actions if a.step == step][n]


def first(events: list[Event], cls: type[Any], **where: Any) -> Any:
    return next(e for e in events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in where.items()))


def close(a: datetime | None, b: datetime, within: float = 1.0) -> bool:
    assert a is not None
    return abs((a - b).total_seconds()) <= within


def test_good_bot_drill_clocks_follow_the_bots_timeline(drill_env: ClusterHandle) -> None:
    result = run(drill_env, "bad-deploy-rollback", "bot:good")
    events = read_journal(result.journal_path).events
    card, clocks = result.scorecard, result.scorecard.clocks
    assert result.outcome == Outcome.RESOLVED, result.reason
    assert [a for a in result.bot_actions if a.error] == []

    t0 = first(events, FaultInjected).at
    alert = first(events, AlertFired)
    page = first(events, PageSent)
    assert clocks.t0 == t0
    assert timedelta(0) <= clocks.ttd <= timedelta(seconds=10)  # the crash loop shows within seconds
    assert close(page.at, alert.at)
    # every clock within 1 s of the bot's own timeline
    assert close(clocks.acknowledged, action(result, "ack").due)
    triaged = max(action(result, "declare").due, action(result, "role", 0).due)
    assert close(clocks.triaged, triaged)
    mitigate = action(result, "mitigate")
    assert mitigate.finished is not None and close(clocks.mitigated, mitigate.finished)
    assert clocks.mitigated_by == "human"
    healthy_for = timedelta(seconds=30)
    # TTM runs to impact reduced; the bot resolves once the probes have held for the healthy window
    assert clocks.health_mitigated is not None
    assert close(clocks.resolved, clocks.health_mitigated + healthy_for)
    assert close(clocks.tta, action(result, "ack").due - alert.at)
    # the rollback is the bot's, seen in the cluster with its own identity
    rollback = first(events, ActionObserved, kind=ActionKind.ROLLBACK)
    assert rollback.actor_kind == ActorKind.BOT, rollback
    assert any(isinstance(e, ActionObserved) and e.kind == ActionKind.EVIDENCE_READ for e in events)
    # every check passes and the reports are on disk
    assert [c.id for c in card.checks if c.status == CheckStatus.FAIL] == []
    assert card.passed and card.severity_correct
    for path in result.reports.files:
        assert path.exists(), path
    # the fault is reverted and the drill ended after it
    assert first(events, FaultReverted).ok
    assert isinstance(events[-1], DrillEnded)


def test_slow_profile_fails_exactly_its_late_checks(drill_env: ClusterHandle) -> None:
    result = run(drill_env, "bad-deploy-rollback", "bot:slow")
    assert result.outcome == Outcome.RESOLVED, result.reason
    failed = {c.id for c in result.scorecard.failed_checks}
    assert failed == {
        "mtta.p0",
        "escalation.p0_ack",
        "oncall.respond_p0_p1",
        "triage.within",
        "comms.initial_alert",
        "escalation.p0_leadership",
        "mttm.p0",
    }
    assert not result.scorecard.passed


def test_wrong_profile_fails_exactly_its_judgement_checks(drill_env: ClusterHandle) -> None:
    result = run(drill_env, "bad-deploy-rollback", "bot:wrong")
    assert result.outcome == Outcome.RESOLVED, result.reason
    failed = {c.id for c in result.scorecard.failed_checks}
    assert failed == {
        "severity.accuracy",
        "comms.initial_alert",
        "comms.required",
        "comms.fields",
        "escalation.p0_leadership",
    }
    assert result.scorecard.declared_severity is not None
    assert not result.scorecard.severity_correct


def test_self_healing_scenario_credits_the_system(drill_env: ClusterHandle, tmp_path: Path) -> None:
    watcher = tmp_path / "watcher.yaml"
    watcher.write_text(
        "name: watcher-bot\nsteps:\n  - {step: ack, offset: 1s}\n"
        "  - {step: note, text: watching the ReplicaSet replace the pod, offset: 2s}\n",
        encoding="utf-8",
    )
    result = run(drill_env, "pod-kill-self-healing", watcher, mode=Mode.CHAOS_TEST, time_scale=1.0)
    events = read_journal(result.journal_path).events
    assert result.outcome == Outcome.SELF_HEALED, result.reason
    clocks = result.scorecard.clocks
    assert clocks.mitigated_by == "system"
    assert clocks.ttm is None  # no human time to mitigate is claimed
    assert clocks.mitigated is not None and clocks.t0 is not None
    back = [e for e in events if isinstance(e, HealthChanged) and e.healthy and e.at > clocks.t0]
    # with virtual users the mitigation is impact reduced (users served again), which can come before the
    # probes hold again; without users affected over the threshold it is the probes' healthy period
    assert back and clocks.mitigated == (clocks.impact_reduced or back[0].at)
    assert clocks.mitigated <= back[0].at
    people = [
        e
        for e in events
        if isinstance(e, ActionObserved)
        and e.actor_kind in (ActorKind.RESPONDER, ActorKind.BOT)
        and e.kind != ActionKind.EVIDENCE_READ
    ]
    assert people == []
    replaced = [e for e in events if isinstance(e, ActionObserved) and e.kind == ActionKind.POD_CREATED]
    assert replaced and all(e.actor_kind == ActorKind.CONTROLLER for e in replaced)


def test_sigterm_reverts_reports_and_exits(drill_env: ClusterHandle, tmp_path: Path, kubectl: Any) -> None:
    env = {**os.environ, "DRILLS_STATE": str(tmp_path / "state"), "DRILLS_REPORTS": str(tmp_path / "reports")}
    drill = Path(sys.executable).parent / "drill"
    proc = subprocess.Popen(
        [str(drill), "run", "bad-deploy-rollback", "--cluster", drill_env.name, "--no-dashboard", "--pager",
         "memory"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    state = tmp_path / "state"
    deadline = time.monotonic() + 90
    journal = None
    while time.monotonic() < deadline:
        found = list((state / "drills").glob("*/journal.jsonl")) if (state / "drills").exists() else []
        if found and any(isinstance(e, PageSent) for e in read_journal(found[0]).events):
            journal = found[0]
            break
        time.sleep(0.2)
    assert journal is not None, proc.communicate(timeout=5)[0] if proc.poll() is not None else "no page"
    image = kubectl("get", "deployment/app", "-n", "production", "-o", "jsonpath={..image}").stdout
    assert "v2.1.0" in image  # the fault is in
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGTERM, out
    image = kubectl("get", "deployment/app", "-n", "production", "-o", "jsonpath={..image}").stdout
    assert "v2.1.0" not in image  # reverted
    events = read_journal(journal).events
    ended = first(events, DrillEnded)
    assert ended.outcome == Outcome.ABORTED and "SIGTERM" in ended.reason
    assert first(events, FaultReverted).ok
    assert not any(isinstance(e, Acknowledged) for e in events)
    assert "report:" in out and (tmp_path / "reports").exists()
    assert not (state / "active-drill").exists()


def test_dry_run_prints_the_exact_changes_and_changes_nothing(drill_env: ClusterHandle, kubectl: Any) -> None:
    from click.testing import CliRunner

    from drills.cli import cli

    before = kubectl(
        "get", "deployment/app", "-n", "production", "-o", "jsonpath={.metadata.generation}"
    ).stdout
    result = CliRunner().invoke(cli, ["run", "bad-deploy-rollback", "--cluster", drill_env.name, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "PATCH" in result.output and "Deployment/production/app" in result.output
    assert "myapp:v2.1.0" in result.output and "blast radius" in result.output
    after = kubectl(
        "get", "deployment/app", "-n", "production", "-o", "jsonpath={.metadata.generation}"
    ).stdout
    assert before == after
    assert not (Path(os.environ["DRILLS_STATE"]) / "drills").exists()  # no drill, no journal
