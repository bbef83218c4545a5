"""The new fault kinds as the virtual users see them, and their seed mitigations, on synthetic cluster views.

Each test builds the cluster as the fault leaves it (the annotation or missing object the injector writes,
``drills/adapters/faults/impact.py``), then as the scenario's expected mitigation leaves it, and checks what
the model (``drills.engine.impact``) makes of both: the symptom docs/impact.md's table promises, then relief.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_impact import _node, _pod, _slice, second, world

from drills.adapters.files.impact import load_service_graph
from drills.adapters.files.scenarios import load_scenario
from drills.engine.impact import NODE_PARTITIONED, POD_ERROR_RATE, POD_EXTRA_LATENCY, ClusterView
from drills.model.scenario import (
    BadDeployFault,
    DependencyErrorsFault,
    DependencyLatencyFault,
    LoadSpikeFault,
    NodePartitionFault,
    PartialFailureFault,
)
from drills.model.service_graph import ServiceGraph

REPO = Path(__file__).resolve().parents[1]
BREAKER = {"CIRCUIT_BREAKER_ENABLED": "true", "CIRCUIT_BREAKER_THRESHOLD": "50"}


@pytest.fixture(scope="module")
def graph() -> ServiceGraph:
    return load_service_graph(REPO / "fixtures" / "service-graph.yaml")


def _fault(scenario: str) -> Any:
    return load_scenario(REPO / "scenarios" / f"{scenario}.yaml").faults[0]


def test_dependency_latency_times_checkout_out_until_the_circuit_breaker_degrades_it(
    graph: ServiceGraph,
) -> None:
    fault = _fault("dependency-latency-circuit-breaker")
    assert isinstance(fault, DependencyLatencyFault)
    ms = str(round(fault.latency.total_seconds() * 1000))
    slow = second(graph, world(db_annotations={POD_EXTRA_LATENCY: ms}))
    assert set(slow.features["checkout"].errors) == {504} and set(slow.features["cart"].errors) == {504}
    assert slow.features["browse"].failed == 0
    assert slow.status == "degraded" and 0.4 < slow.affected_ratio < 0.6
    healed = second(graph, world(db_annotations={POD_EXTRA_LATENCY: ms}, app_env=BREAKER))
    assert healed.failed == 0 and healed.features["checkout"].degraded > 0
    assert healed.affected_ratio < 0.01


def test_dependency_errors_fail_a_share_until_the_breaker_opens(graph: ServiceGraph) -> None:
    fault = _fault("dependency-errors-circuit-breaker")
    assert isinstance(fault, DependencyErrorsFault)
    rate = f"{fault.error_rate:g}"
    erring = second(graph, world(db_annotations={POD_ERROR_RATE: rate}))
    cart = erring.features["cart"]
    # 60 % per attempt, one retry: 36 % of cart requests fail; checkout makes two calls
    assert set(cart.errors) == {500} and 0.3 < cart.failed / cart.requests < 0.42
    assert erring.status == "degraded" and 0.15 < erring.affected_ratio < 0.35
    # at 60 % failures the breaker (threshold 50 %) is open: the features degrade instead of failing
    healed = second(graph, world(db_annotations={POD_ERROR_RATE: rate}, app_env=BREAKER))
    assert healed.failed == 0 and healed.affected_ratio < 0.01
    # under its threshold the breaker stays closed: the seed's threshold is part of the fix
    high = second(
        graph,
        world(db_annotations={POD_ERROR_RATE: rate}, app_env={**BREAKER, "CIRCUIT_BREAKER_THRESHOLD": "90"}),
    )
    assert high.failed > 0


def test_one_bad_pod_fails_a_third_until_it_is_deleted(graph: ServiceGraph) -> None:
    fault = _fault("partial-failure-delete-pod")
    assert isinstance(fault, PartialFailureFault) and fault.count == 1
    base = world()
    pods = list(base.pods)
    pods[2] = _pod("app", 2, **{POD_ERROR_RATE: f"{fault.error_rate:g}"})  # the newest pod
    bad = second(
        graph,
        ClusterView(pods, base.endpoint_slices, base.nodes, base.services, base.configmaps),
    )
    assert 0.28 < bad.error_ratio < 0.38 and set(bad.features["browse"].errors) == {500}
    assert bad.status == "degraded" and 0.25 < bad.affected_ratio < 0.4
    # `kubectl delete pod`: the ReplicaSet's fresh pod is clean
    assert second(graph, world()).affected_ratio < 0.01


def test_a_partitioned_node_stops_its_pods_until_the_drain_moves_them(graph: ServiceGraph) -> None:
    assert isinstance(_fault("node-partition-drain"), NodePartitionFault)
    nodes = [_node("node-1", partitioned=True)] + [_node(f"node-{i}") for i in range(2, 5)]
    apps = [_pod("app", 0, node="node-1"), _pod("app", 1, node="node-3"), _pod("app", 2, node="node-4")]
    dbs = [_pod("db-proxy", i, node="node-2") for i in range(2)]
    base = world()

    def view(app_pods: list[dict[str, Any]]) -> ClusterView:
        return ClusterView(
            app_pods + dbs,
            [_slice("app", app_pods), _slice("db-proxy", dbs)],
            nodes,
            base.services,
            base.configmaps,
        )

    cut = second(graph, view(apps))
    # two pods carry 1,000 req/s at 500 each: utilisation 1, a queue, slow requests and some shed
    assert cut.status in ("slow", "degraded") and cut.affected_ratio > 0.1
    assert NODE_PARTITIONED in nodes[0]["metadata"]["annotations"]
    # drained: the pod starts on a reachable node
    moved = [_pod("app", 3, node="node-2"), apps[1], apps[2]]
    healed = second(graph, view(moved))
    assert healed.status == "ok" and healed.affected_ratio < 0.01


def test_a_missing_dependency_service_fails_fast_until_the_breaker_degrades(graph: ServiceGraph) -> None:
    gone = second(graph, world(db_service=False))
    checkout = gone.features["checkout"]
    assert set(checkout.errors) == {503} and checkout.ok == 0
    assert checkout.p99_seconds < 0.5  # refused at once: no timeout to wait out
    assert gone.features["browse"].failed == 0
    healed = second(graph, world(db_service=False, app_env=BREAKER))
    assert healed.failed == 0 and healed.affected_ratio < 0.01


def test_the_bad_release_that_takes_two_old_pods_down_affects_most_users(graph: ServiceGraph) -> None:
    """bad-deploy-no-canary rolls out with maxUnavailable 67 %: one of three old pods is left serving."""
    fault = _fault("bad-deploy-no-canary")
    assert isinstance(fault, BadDeployFault) and fault.max_unavailable == "67%"
    one_left = second(graph, world(app_pods=1))
    assert one_left.affected_ratio > 0.5
    assert one_left.status == "degraded"
    # `kubectl rollout undo`: three good pods again
    assert second(graph, world()).affected_ratio < 0.01


def test_the_slow_load_spike_is_slow_and_p2_until_scaled(graph: ServiceGraph) -> None:
    """load-spike-slow-scale: x1.25 traffic on 3 pods that stay ready (95m of their 100m request)."""
    fault = _fault("load-spike-slow-scale")
    assert isinstance(fault, LoadSpikeFault) and fault.traffic is not None
    factor = f"{fault.traffic:g}"
    seconds = [second(graph, world(load_factor=factor), t) for t in range(180)]
    # three minutes of the request count's jitter: errors never, slow most seconds, the peak within P2
    assert all(s.error_ratio < 0.001 for s in seconds)
    assert sum(s.status == "slow" for s in seconds) > len(seconds) / 2
    peak = max(s.affected_ratio for s in seconds)
    assert 0.01 < peak < 0.10, peak  # P2 by the seed's matrix (1-10 %)
    assert max(s.p99_seconds for s in seconds) > graph.users.latency_slo.total_seconds()
    # `kubectl scale --replicas=5` (or an HPA's 5): utilisation 0.5
    scaled = [second(graph, world(load_factor=factor, app_pods=5), t) for t in range(60)]
    assert all(s.status == "ok" and s.affected_ratio < 0.01 for s in scaled)
