"""The faults the virtual users make meaningful, on the real embedded cluster, and the seed's must-shows.

Part one injects each new kind (dependency-latency, dependency-errors, partial-failure, node-partition,
dependency-dns), waits for its effect, checks that the model reading the live cluster sees it while
Kubernetes sees nothing wrong, and reverts it to the baseline. Part two runs short drills with scripted
responders: the bad release with the real monitoring chain (SLO page alert, TTD from its ``startsAt``,
``kubectl rollout undo``), the circuit breaker on a dependency outage, and the slow load spike (P2, Slow)
healed by ``kubectl scale``. Drills are short: healthy windows of 10 s, small budgets, no wrap-up.
"""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Kubectl
from faults_support import scenario, wait_until
from rich.console import Console

from drills.adapters import faults
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.faults.ledger import Ledger
from drills.adapters.files.impact import load_service_graph
from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.store.journal import read_journal
from drills.engine import measured
from drills.engine.health import pod_ready
from drills.engine.impact import LOAD_FACTOR, ClusterView, derive_states, simulate_second
from drills.model.events import ActionKind, ActionObserved, AlertFired, Event, FaultInjected, ImpactSampled
from drills.model.severity import ServiceStatus, Severity
from drills.runner.options import (
    ClusterTarget,
    DetectionOptions,
    DrillOptions,
    ReportingOptions,
    ResponderOptions,
)
from drills.runner.run import DrillResult, DrillRun

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
NS = "production"
THRESHOLD_PCT = 1.0


def live_view(kube: Kube) -> ClusterView:
    def items(kind: str, namespace: str | None = NS) -> list[dict[str, Any]]:
        return r.list_objects(kube, kind, namespace)[0]

    return ClusterView(
        pods=items("Pod"),
        endpoint_slices=items("EndpointSlice"),
        nodes=items("Node", None),
        services=items("Service"),
        configmaps=items("ConfigMap"),
    )


def users_now(kube: Kube) -> Any:
    graph = load_service_graph(REPO / "fixtures" / "service-graph.yaml")
    return simulate_second(graph, derive_states(graph, live_view(kube)), 10)


def all_pods_ready(kubectl: Kubectl) -> bool:
    pods = kubectl.json("get", "pods", "-n", NS)["items"]
    assert isinstance(pods, list)
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return bool(live) and all(pod_ready(p) for p in live)


@pytest.mark.parametrize(
    ("name", "symptom"),
    [
        ("dependency-latency-circuit-breaker", lambda s: set(s.features["checkout"].errors) == {504}),
        ("dependency-errors-circuit-breaker", lambda s: set(s.features["cart"].errors) == {500}),
        ("partial-failure-delete-pod", lambda s: 0.25 < s.error_ratio < 0.4),
        ("node-partition-drain", lambda s: s.affected_ratio > 0.3),
        ("dependency-dns-circuit-breaker", lambda s: s.features_down == ["cart", "checkout"]),
    ],
)
def test_each_new_fault_shows_to_users_only_and_reverts_to_the_baseline(
    world: ClusterHandle, kube: Kube, kubectl: Kubectl, tmp_path: Path, name: str, symptom: Any
) -> None:
    before = users_now(kube)
    assert before.status == "ok", before
    handle = faults.inject(scenario(name), kube, Ledger(tmp_path / "ledger.jsonl"), None)
    try:
        effect = handle.confirm(30)
        assert effect and effect[0], effect
        wait_until(lambda: symptom(users_now(kube)), 30, f"{name}: what users see")
        # nothing Kubernetes reacts to: every node Ready, every pod that runs is Ready
        nodes = kubectl.json("get", "nodes")["items"]
        assert isinstance(nodes, list)
        assert all(
            c["status"] == "True" for n in nodes for c in n["status"]["conditions"] if c["type"] == "Ready"
        )
        wait_until(lambda: all_pods_ready(kubectl), 30, "every pod Ready")
    finally:
        handle.revert(reason="test")
    assert handle.reverted
    wait_until(lambda: users_now(kube).status == "ok", 30, f"{name}: users fine after the revert")


def test_a_reverted_spike_does_not_come_back_with_a_later_rollout_undo(
    world: ClusterHandle, kube: Kube, kubectl: Kubectl, tmp_path: Path
) -> None:
    """The users' extra traffic lives on the Service. On the Deployment, the deployment controller copied it
    onto the current ReplicaSet (and never took it off), and a later ``kubectl rollout undo`` to that
    ReplicaSet copied it back: a spike reverted drills ago returned with the next rollback."""
    base = users_now(kube).requests
    handle = faults.inject(scenario("load-spike-slow-scale"), kube, Ledger(tmp_path / "ledger.jsonl"), None)
    try:
        wait_until(lambda: users_now(kube).requests > 1.15 * base, 30, "the spike's traffic")
    finally:
        handle.revert(reason="test")
    wait_until(lambda: users_now(kube).requests < 1.1 * base, 30, "the traffic back to base")
    # a release, then its rollback to the ReplicaSet that served during the spike
    kubectl("set", "env", "deployment/app", "-n", NS, "DRILLS_TEST_RELEASE=2")
    kubectl("rollout", "status", "deployment/app", "-n", NS, "--timeout=60s", timeout=70)
    kubectl("rollout", "undo", "deployment/app", "-n", NS)
    kubectl("rollout", "status", "deployment/app", "-n", NS, "--timeout=60s", timeout=70)
    assert users_now(kube).requests < 1.1 * base
    for kind in ("deployment", "service"):
        annotations = kubectl.json("get", kind, "app", "-n", NS)["metadata"].get("annotations") or {}
        assert LOAD_FACTOR not in annotations, (kind, annotations)


# ---- drills --------------------------------------------------------------------------------------------


def variant(tmp_path: Path, name: str, **changes: Any) -> Path:
    """A shipped scenario with a short healthy window (and ``changes``), written next to the test."""
    data = yaml.safe_load((REPO / "scenarios" / f"{name}.yaml").read_text())
    data["steady_state"]["healthy_for"] = "10s"
    data["hints"] = []
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def responder(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "responder.yaml"
    path.write_text(text)
    return path


def drill(
    handle: ClusterHandle, scenario_file: Path, responder_file: Path, *, detector: str = "health-probe"
) -> DrillResult:
    return DrillRun(
        scenario_file,
        DrillOptions(
            responder=ResponderOptions(responder_file, seed=11, time_scale=1.0),
            detection=DetectionOptions(detector=detector),
            cluster=ClusterTarget(name=handle.name, handle=handle),
            reporting=ReportingOptions(
                dashboard=False, console=Console(file=StringIO(), width=120), record_history=False
            ),
            wrap_up=timedelta(seconds=4),
            time_budget=timedelta(minutes=2),
            handle_signals=False,
        ),
    ).execute()


@pytest.fixture
def drill_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ClusterHandle) -> ClusterHandle:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    return world


def samples(events: list[Event]) -> list[ImpactSampled]:
    return [e for e in events if isinstance(e, ImpactSampled)]


def trace(events: list[Event]) -> list[tuple[str, float, str]]:
    return [(f"{s.at:%H:%M:%S.%f}"[:12], s.users_affected_pct, s.status) for s in samples(events)]


def first(events: list[Event], cls: type[Any], **where: Any) -> Any:
    return next(e for e in events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in where.items()))


def test_bad_deploy_pages_on_the_slo_and_rollout_undo_brings_users_back(
    drill_env: ClusterHandle, tmp_path: Path
) -> None:
    """Users affected > 50 % within 10 s of the crash; the SLO page alert fires (TTD from its startsAt);
    ``kubectl rollout undo`` takes users affected under 1 %; "impact reduced" is the first such second."""
    sc = variant(tmp_path, "bad-deploy-no-canary", detection={"expected_alert": "AppAvailabilityBurnRatePage"})
    bot = responder(
        tmp_path,
        "name: undo-bot\nrelative_to: page\nsteps:\n"
        "  - {step: ack, offset: 1s}\n"
        "  - {step: kubectl, args: [rollout, undo, deployment/app, -n, production], offset: 2s}\n"
        "  - {step: mitigated, offset: 3s}\n"
        "  - {step: resolve, offset: 4s, wait: lasting}\n",
    )
    started = time.monotonic()
    try:
        result = drill(drill_env, sc, bot, detector="monitoring")
    finally:
        monitoring.stop_monitoring(drill_env.name)
    events = read_journal(result.journal_path).events
    t0 = first(events, FaultInjected).at

    hit = next((s for s in samples(events) if s.at >= t0 and s.users_affected_pct > 50), None)
    assert hit is not None, trace(events)
    assert hit.at - t0 <= timedelta(seconds=10), (hit.at - t0, trace(events))

    page = next(
        (e for e in events if isinstance(e, AlertFired) and e.alert_name == "AppAvailabilityBurnRatePage"),
        None,
    )
    assert page is not None, [e.type for e in events]
    # the alert's own startsAt, not when drills heard of it
    assert page.received_at is not None and page.at <= page.received_at
    alerts = sorted((e for e in events if isinstance(e, AlertFired)), key=lambda e: e.at)
    assert result.scorecard.clocks.ttd == alerts[0].at - t0

    undo = first(events, ActionObserved, kind=ActionKind.ROLLBACK)
    back = next((s for s in samples(events) if s.at > undo.at and s.users_affected_pct < 1), None)
    assert back is not None, trace(events)
    reduced = measured.impact_reduced_at(
        measured.points(events),
        t0,
        threshold_pct=THRESHOLD_PCT,
        healthy_for=timedelta(seconds=10),
        now=events[-1].at,
    )
    assert reduced is not None
    assert abs((reduced - back.at).total_seconds()) <= 1.0
    # the scorecard's TTM (from the acknowledgement, as the seed's MTTM) runs to that first second under the
    # threshold: the scorer's impact reduced
    clocks = result.scorecard.clocks
    assert clocks.impact_reduced is not None and clocks.mitigated is not None
    assert abs((clocks.impact_reduced - back.at).total_seconds()) <= 1.0
    assert abs((clocks.mitigated - back.at).total_seconds()) <= 1.0
    assert clocks.acknowledged is not None and clocks.ttm is not None
    assert abs((clocks.acknowledged + clocks.ttm - back.at).total_seconds()) <= 1.0
    print(
        f"\nbad deploy: >50 % affected {(hit.at - t0).total_seconds():.1f} s after the fault; SLO page "
        f"startsAt +{(page.at - t0).total_seconds():.1f} s; undo -> <1 % in "
        f"{(back.at - undo.at).total_seconds():.1f} s; drill {time.monotonic() - started:.0f} s"
    )


def test_the_circuit_breaker_turns_the_dependency_outage_into_degraded_checkout(
    drill_env: ClusterHandle, tmp_path: Path
) -> None:
    sc = variant(tmp_path, "dependency-outage-circuit-breaker")
    bot = responder(
        tmp_path,
        "name: breaker-bot\nrelative_to: page\nsteps:\n"
        "  - {step: ack, offset: 1s}\n"
        "  - step: kubectl\n"
        "    args: [set, env, deployment/app, -n, production, CIRCUIT_BREAKER_ENABLED=true,"
        " CIRCUIT_BREAKER_THRESHOLD=50, CIRCUIT_BREAKER_TIMEOUT=30000]\n"
        "    offset: 3s\n"
        "  - {step: mitigated, offset: 4s}\n"
        "  - {step: resolve, offset: 5s, wait: lasting}\n",
    )
    result = drill(drill_env, sc, bot)
    events = read_journal(result.journal_path).events
    t0 = first(events, FaultInjected).at
    env = first(events, ActionObserved, kind=ActionKind.ENV_CHANGED)
    during = [s for s in samples(events) if t0 <= s.at < env.at]
    worst = max(during, key=lambda s: s.users_affected_pct)
    assert worst.users_affected_pct > 40 and "checkout" in worst.features_down, trace(events)
    after = [s for s in samples(events) if s.at > env.at]
    healed = next((s for s in after if s.users_affected_pct < 1), None)
    assert healed is not None, trace(events)
    # checkout is served (degraded, without db-proxy), not failed: nothing down, no errors
    assert healed.features_down == [] and healed.failed_per_second == 0
    assert healed.users_affected_pct < worst.users_affected_pct


def test_the_slow_load_spike_is_p2_and_slow_until_kubectl_scale(
    drill_env: ClusterHandle, tmp_path: Path
) -> None:
    sc = variant(tmp_path, "load-spike-slow-scale")
    bot = responder(
        tmp_path,
        "name: scale-bot\nrelative_to: fault\nsteps:\n"
        "  - {step: detect, offset: 1s}\n"
        "  - {step: kubectl, args: [scale, deployment/app, -n, production, --replicas=5], offset: 20s}\n"
        "  - {step: mitigated, offset: 21s}\n"
        "  - {step: resolve, offset: 34s, wait: lasting}\n",
    )
    result = drill(drill_env, sc, bot)
    events = read_journal(result.journal_path).events
    t0 = first(events, FaultInjected).at
    scaled = first(events, ActionObserved, kind=ActionKind.SCALE)
    pts = measured.points(events)
    spike = measured.measured_impact(pts, t0, scaled.at)
    assert spike.worst_status == ServiceStatus.SLOW, trace(events)
    assert spike.failed_requests == 0
    assert measured.users_row(spike) == Severity.P2, spike
    assert measured.measured_severity(spike) == Severity.P2, spike
    reduced = measured.impact_reduced_at(
        pts, t0, threshold_pct=THRESHOLD_PCT, healthy_for=timedelta(seconds=10), now=events[-1].at
    )
    assert reduced is not None and reduced > scaled.at, trace(events)
