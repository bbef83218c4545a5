"""The scripted responder: its schedule, its kubectl commands, and its profiles judged by the real scorer.

The profile tests play each shipped responder file against a real journal on disk with the bot's real
thread, the real responder session and the real scorer; only the cluster is simulated (a stand-in for
kubectl that records the commands and, like the cluster would, turns the mitigation into observed actions and
health coming back). Times are compressed with ``time_scale`` and the SLA targets by the same factor, so the
pass/fail of every timed rule is what it would be at full scale. The same profiles run against the real
embedded cluster in tests/test_run_cluster.py.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drills.adapters.files.scenarios import load_model, load_scenario
from drills.adapters.store.journal import JOURNAL_FILE, Journal, read_journal
from drills.engine.scoring import score
from drills.errors import ScenarioError
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    AlertFired,
    DrillEnded,
    FaultInjected,
    HealthChanged,
    Mode,
    Note,
    Outcome,
    PageSent,
    Paused,
    Resumed,
    Source,
)
from drills.model.policy import Policy, SlaOverrides, SlaTargets
from drills.model.responder import ResponderProfile, SeverityCall, severity_for
from drills.model.scenario import Mitigation, Scenario
from drills.model.scorecard import CheckStatus
from drills.model.severity import Severity
from drills.runner import respond
from drills.runner.bot import Bot, Kubectl, KubectlResult, bot_message, mitigation_commands, schedule
from drills.runner.run import started_event
from drills.timing import SYSTEM_CLOCK

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "fixtures" / "responders"
SCENARIOS = ROOT / "scenarios"


def profile(name: str) -> ResponderProfile:
    return load_model(PROFILES / f"{name}.yaml", ResponderProfile)


def scenario(name: str) -> Scenario:
    return load_scenario(SCENARIOS / f"{name}.yaml")


def scaled_policy(factor: float) -> Policy:
    """Every SLA target of the seed multiplied by ``factor`` (runs a drill ``1/factor`` times faster)."""
    defaults = SlaTargets()
    return Policy(sla=SlaOverrides(**{k: getattr(defaults, k) * factor for k in SlaTargets.model_fields}))


# ---- schedule -----------------------------------------------------------------------------------------


def test_schedule_is_reproducible_from_the_seed_and_keeps_file_order() -> None:
    p = profile("good")
    a, b, c = schedule(p, 7), schedule(p, 7), schedule(p, 8)
    assert [s.offset for s in a] == [s.offset for s in b]
    assert [s.offset for s in a] != [s.offset for s in c]
    offsets = [s.offset for s in a]
    assert offsets == sorted(offsets)
    for item in a:
        step = p.steps[item.index]
        assert item.step is step
        # within the jitter, unless pushed later to keep the file order
        assert item.offset >= step.offset - step.jitter


def test_schedule_jitter_stays_within_bounds_and_scales() -> None:
    p = ResponderProfile.model_validate(
        {"steps": [{"step": "ack", "offset": "60s", "jitter": "10s"}, {"step": "note", "text": "x"}]}
    )
    for seed in range(50):
        first, second = schedule(p, seed)
        assert timedelta(seconds=50) <= first.offset <= timedelta(seconds=70)
        assert second.offset == first.offset  # a step at 0 written later never runs earlier
    scaled = schedule(p, 3, time_scale=0.1)[0].offset
    assert abs(scaled - schedule(p, 3)[0].offset * 0.1) < timedelta(microseconds=2)


def test_severity_calls_are_relative_to_the_truth() -> None:
    assert severity_for(SeverityCall.TRUE, Severity.P1) == Severity.P1
    assert severity_for(SeverityCall.UNDERSTATED, Severity.P0) == Severity.P1
    assert severity_for(SeverityCall.UNDERSTATED, Severity.P3) == Severity.P2  # still wrong
    assert severity_for(SeverityCall.OVERSTATED, Severity.P0) == Severity.P1
    assert severity_for(SeverityCall.OVERSTATED, Severity.P2) == Severity.P1
    assert severity_for(Severity.P3, Severity.P0) == Severity.P3


def test_every_shipped_profile_loads() -> None:
    names = sorted(p.stem for p in PROFILES.glob("*.yaml"))
    assert {"good", "slow", "wrong", "zero"} <= set(names)
    for name in names:
        assert profile(name).steps


def test_a_broken_responder_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - step: ack\n    offset: soon\n  - step: dance\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as e:
        load_model(bad, ResponderProfile)
    text = str(e.value)
    assert f"{bad}:4: steps[0].offset:" in text or f"{bad}:4: steps.0.offset:" in text
    assert ":5:" in text and "dance" in text


# ---- kubectl commands -----------------------------------------------------------------------------------


def _pod(name: str, *, ready: bool = True, node: str = "node-a1", fault: str | None = None) -> dict[str, Any]:
    annotations = {"drills.io/fault": fault} if fault else {}
    return {
        "metadata": {"name": name, "namespace": "production", "annotations": annotations},
        "spec": {"nodeName": node},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "app", "ready": ready, "state": {"running": {}}}],
        },
    }


def _node(name: str, *, ready: bool = True, cordoned: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]},
    }


class CannedKubectl(Kubectl):
    """kubectl that answers reads from a canned cluster and records writes (pure logic tests only)."""

    def __init__(self, world: dict[str, list[dict[str, Any]]], on_write: Any = None) -> None:
        super().__init__(Path("/nonexistent/kubeconfig"), binary=Path("/bin/false"))
        self.world = world
        self.writes: list[list[str]] = []
        self.on_write = on_write

    def run(self, args: Any, *, check: bool = True, timeout: float | None = None) -> KubectlResult:
        args = list(args)
        now = datetime.now(UTC)
        out = ""
        if args[:2] == ["get", "deployment/app"]:
            out = json.dumps({"spec": {"selector": {"matchLabels": {"app": "myapp"}}}})
        elif args[:2] == ["get", "pods"] and "-o" in args and args[args.index("-o") + 1] == "json":
            out = json.dumps({"items": self.world.get("pods", [])})
        elif args[:2] == ["get", "nodes"]:
            out = json.dumps({"items": self.world.get("nodes", [])})
        elif args[0] in ("get", "logs", "describe") or args[:2] == ["rollout", "history"]:
            out = "..."
        else:
            self.writes.append(args)
            if self.on_write is not None:
                self.on_write(args)
        result = KubectlResult(tuple(args), 0, out, "", now, now)
        self.history.append(result)
        return result


WORLD = {
    "pods": [_pod("app-1", fault="crash", ready=False), _pod("app-2"), _pod("app-3", node="node-b1")],
    "nodes": [_node("node-a1"), _node("node-b1", ready=False), _node("node-b2", cordoned=True)],
}


@pytest.mark.parametrize(
    ("name", "mitigation", "expected"),
    [
        (
            "bad-deploy-rollback",
            Mitigation.ROLLBACK,
            [["rollout", "undo", "deployment/app", "-n", "production"]],
        ),
        (
            "image-pull-fix-forward",
            Mitigation.FIX_FORWARD,
            [["set", "image", "deployment/app", "-n", "production", "app=myapp:v2.1.1"]],
        ),
        (
            "load-spike-scale",
            Mitigation.SCALE,
            [["scale", "deployment/app", "-n", "production", "--replicas=15"]],
        ),
        (
            "load-spike-autoscale",
            Mitigation.AUTOSCALE,
            [["autoscale", "deployment/app", "-n", "production", "--cpu-percent=70", "--min=5", "--max=25"]],
        ),
        (
            "node-not-ready-drain",
            Mitigation.DRAIN,
            [["drain", "node-b1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s"]],
        ),
        ("node-drain-stuck-uncordon", Mitigation.UNCORDON, [["uncordon", "node-b2"]]),
        (
            "crash-loop-delete-pods",
            Mitigation.DELETE_PODS,
            [["delete", "pod", "app-1", "app-3", "-n", "production", "--wait=false"]],
        ),
        (
            "readiness-set-selector",
            Mitigation.SET_SELECTOR,
            [
                ["label", "pod", "app-2", "app-3", "healthy=true", "--overwrite", "-n", "production"],
                ["set", "selector", "service/app", "-n", "production", "app=myapp,healthy=true"],
            ],
        ),
        (
            "dependency-outage-circuit-breaker",
            Mitigation.CIRCUIT_BREAKER,
            [
                [
                    "set",
                    "env",
                    "deployment/app",
                    "-n",
                    "production",
                    "CIRCUIT_BREAKER_ENABLED=true",
                    "CIRCUIT_BREAKER_THRESHOLD=50",
                    "CIRCUIT_BREAKER_TIMEOUT=30000",
                ]
            ],
        ),
    ],
)
def test_mitigations_are_the_seeds_commands_with_names_from_the_cluster(
    name: str, mitigation: Mitigation, expected: list[list[str]]
) -> None:
    assert mitigation_commands(mitigation, scenario(name), CannedKubectl(WORLD)) == expected


def test_restores_apply_the_backup_files_from_the_fixtures() -> None:
    cmds = mitigation_commands(
        Mitigation.RESTORE_CONFIG, scenario("broken-config-restore"), CannedKubectl(WORLD)
    )
    assert cmds[0][:2] == ["apply", "-f"]
    assert cmds[0][2].endswith("fixtures/backups/production/configmap-app-config.yaml")
    assert Path(cmds[0][2]).is_absolute()
    assert cmds[1] == ["rollout", "restart", "deployment/app", "-n", "production"]
    dr = mitigation_commands(
        Mitigation.RESTORE_BACKUP, scenario("quarterly-dr-namespace-lost"), CannedKubectl(WORLD)
    )
    assert dr[0][:2] == ["apply", "-f"] and dr[0][2].rstrip("/").endswith("fixtures/backups/production")


# ---- messages -------------------------------------------------------------------------------------------


def test_the_bots_complete_messages_pass_the_template_checker() -> None:
    from drills.engine import comms

    s = scenario("bad-deploy-rollback")
    t0 = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    events = [
        started_event(s, "d1", t0, mode=Mode.TRAINING, backend="embedded", trainee=None, seed=None),
        FaultInjected(at=t0, source=Source.SYSTEM, fault_kind="bad-deploy", target="x"),
        AlertFired(at=t0 + timedelta(seconds=5), source=Source.SYSTEM, alert_name="A"),
    ]
    now = t0 + timedelta(minutes=2)
    for template in comms.TEMPLATE_IDS:
        text = bot_message(template, events, s, now, name="good-bot")
        assert comms.validate(template, text, expected_incident_id=comms.incident_id(t0)) == [], template
        rushed = bot_message(template, events, s, now, name="good-bot", complete=False)
        assert comms.validate(template, rushed) != [], template


# ---- profiles against the scorer (simulated cluster) ------------------------------------------------------

SCALE = 0.01  # 1 minute of the profile takes 0.6 s


class SimulatedCluster:
    """Turns the bot's kubectl writes into what the observer would journal: its action, then health back."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.timers: list[threading.Timer] = []

    def on_write(self, args: list[str]) -> None:
        now = SYSTEM_CLOCK.now()
        self.journal.append(
            ActionObserved(
                at=now,
                source=Source.BOT,
                actor="drills:bot",
                kind=ActionKind.ROLLBACK if args[:2] == ["rollout", "undo"] else ActionKind.PATCHED,
                actor_kind=ActorKind.BOT,
                object="deployment/production/app",
            )
        )
        timer = threading.Timer(0.2, self._healthy)
        self.timers.append(timer)
        timer.start()

    def _healthy(self) -> None:
        self.journal.append(
            HealthChanged(at=SYSTEM_CLOCK.now(), source=Source.SYSTEM, healthy=True, reason="ok")
        )


def simulate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    s: Scenario,
    *,
    broken: bool = True,
    writes: list[list[str]] | None = None,
) -> list[Any]:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    # a short exit window keeps the test quick; it is about the scenario, not about the responder
    s = s.model_copy(
        update={"steady_state": s.steady_state.model_copy(update={"healthy_for": timedelta(seconds=1)})}
    )
    drill_id = f"20260106-090000-{name}"
    path = tmp_path / "state" / "drills" / drill_id / JOURNAL_FILE
    t0 = SYSTEM_CLOCK.now()
    journal = Journal.create(
        path, started_event(s, drill_id, t0, mode=Mode.TRAINING, backend="embedded", trainee=None, seed=1)
    )
    cluster = SimulatedCluster(journal)
    journal.append(
        FaultInjected(at=t0, source=Source.SYSTEM, fault_kind="bad-deploy", target="deployment/app")
    )
    journal.append(
        HealthChanged(at=t0 + timedelta(milliseconds=50), source=Source.SYSTEM, healthy=not broken)
    )
    journal.append(AlertFired(at=t0 + timedelta(milliseconds=50), source=Source.SYSTEM, alert_name="A"))
    journal.append(PageSent(at=t0 + timedelta(milliseconds=60), source=Source.SYSTEM))
    session = respond.ResponderSession(
        respond.find_drill(drill_id), actor=profile(name).name, source=Source.BOT, journal=journal
    )

    def on_write(args: list[str]) -> None:
        if writes is not None:
            writes.append(args)
        cluster.on_write(args)

    kubectl = CannedKubectl(WORLD, on_write)
    bot = Bot(profile(name), s, session, kubectl, seed=1, time_scale=SCALE).start()
    bot.join(timeout=60)
    assert bot.done, "the bot did not finish"
    assert [a.error for a in bot.actions if a.error] == []
    journal.append(DrillEnded(at=SYSTEM_CLOCK.now(), source=Source.SYSTEM, outcome=Outcome.RESOLVED))
    for t in cluster.timers:
        t.cancel()
    return read_journal(path).events


def failed(events: list[Any]) -> set[str]:
    card = score(events, scaled_policy(SCALE))
    return {c.id for c in card.checks if c.status == CheckStatus.FAIL}


def test_good_profile_passes_every_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = simulate(tmp_path, monkeypatch, "good", scenario("bad-deploy-rollback"))
    card = score(events, scaled_policy(SCALE))
    assert failed(events) == set(), [c for c in card.checks if c.status == CheckStatus.FAIL]
    assert card.passed and card.severity_correct
    assert card.clocks.mitigated_by == "human"


def test_the_bot_never_mitigates_a_healthy_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[list[str]] = []
    events = simulate(
        tmp_path, monkeypatch, "good", scenario("bad-deploy-rollback"), broken=False, writes=writes
    )
    assert writes == []  # no kubectl write: nothing was rolled back or scaled
    notes = [e.text for e in events if isinstance(e, Note)]
    assert any("the service is healthy: no rollback" in n for n in notes), notes


def test_slow_profile_fails_exactly_the_timed_checks_it_breaches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = simulate(tmp_path, monkeypatch, "slow", scenario("bad-deploy-rollback"))
    assert failed(events) == {
        "mtta.p0",
        "escalation.p0_ack",
        "oncall.respond_p0_p1",
        "triage.within",
        "comms.initial_alert",
        "escalation.p0_leadership",
        "mttm.p0",
    }


def test_wrong_profile_fails_exactly_the_judgement_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = simulate(tmp_path, monkeypatch, "wrong", scenario("bad-deploy-rollback"))
    assert failed(events) == {
        "severity.accuracy",
        "comms.initial_alert",
        "comms.required",
        "comms.fields",
        "escalation.p0_leadership",
    }


def test_a_pause_holds_the_bot_and_resume_releases_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    s = scenario("bad-deploy-rollback")
    drill_id = "20260106-090000-paused"
    path = tmp_path / "state" / "drills" / drill_id / JOURNAL_FILE
    t0 = SYSTEM_CLOCK.now()
    journal = Journal.create(
        path, started_event(s, drill_id, t0, mode=Mode.TRAINING, backend="embedded", trainee=None, seed=1)
    )
    journal.append(
        FaultInjected(at=t0, source=Source.SYSTEM, fault_kind="bad-deploy", target="deployment/app")
    )
    journal.append(PageSent(at=t0, source=Source.SYSTEM))
    journal.append(Paused(at=t0, source=Source.SYSTEM, reason="game master break"))
    session = respond.ResponderSession(
        respond.find_drill(drill_id), actor="good-bot", source=Source.BOT, journal=journal
    )
    # The first step (ack) is due 20s +-5s after the page: 0.15-0.25 s at this scale.
    bot = Bot(profile("good"), s, session, CannedKubectl(WORLD, lambda args: None), seed=1, time_scale=0.01)
    bot.start()
    try:
        time.sleep(1.0)
        assert not any(isinstance(e, Acknowledged) for e in read_journal(path).events), "acked while paused"
        resumed = SYSTEM_CLOCK.now()
        journal.append(Resumed(at=resumed, source=Source.SYSTEM))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            acks = [e for e in read_journal(path).events if isinstance(e, Acknowledged)]
            if acks:
                break
            time.sleep(0.05)
        assert acks, "the bot never acknowledged after the resume"
        # Active time from the page to the ack is the step's offset, not the offset plus the pause.
        assert timedelta(0) <= acks[0].at - resumed <= timedelta(seconds=0.9)
    finally:
        bot.stop()
