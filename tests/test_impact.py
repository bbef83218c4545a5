"""Virtual users on the service graph (drills.engine.impact): what users see from the cluster's state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drills.adapters.files.impact import load_service_graph
from drills.engine.impact import (
    BUCKETS,
    LOAD_FACTOR,
    NODE_PARTITIONED,
    POD_ERROR_RATE,
    POD_EXTRA_LATENCY,
    ClusterView,
    derive_states,
    simulate_second,
)
from drills.errors import ScenarioError
from drills.model.service_graph import ServiceGraph

REPO = Path(__file__).resolve().parents[1]
NS = "production"


@pytest.fixture(scope="module")
def graph() -> ServiceGraph:
    return load_service_graph(REPO / "fixtures" / "service-graph.yaml")


def _node(name: str, ready: bool = True, partitioned: bool = False) -> dict[str, Any]:
    annotations = {NODE_PARTITIONED: "true"} if partitioned else {}
    return {
        "kind": "Node",
        "metadata": {"name": name, "annotations": annotations},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]},
    }


def _pod(
    app: str, i: int, node: str = "node-1", env: dict[str, str] | None = None, **annotations: str
) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-{i}",
            "namespace": NS,
            "labels": {"app": app},
            "annotations": annotations,
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": app, "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}],
        },
    }


def _slice(service: str, pods: list[dict[str, Any]], ready: bool = True) -> dict[str, Any]:
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-abc",
            "namespace": NS,
            "labels": {"kubernetes.io/service-name": service},
        },
        "endpoints": [
            {
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]},
                "nodeName": p["spec"]["nodeName"],
            }
            for p in pods
        ],
    }


def _service(name: str) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": NS}}


def _config(db_host: str = "db-proxy.production.svc.cluster.local") -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": NS},
        "data": {"DB_HOST": db_host},
    }


def world(
    *,
    app_pods: int = 3,
    db_pods: int = 2,
    app_ready: bool = True,
    app_env: dict[str, str] | None = None,
    app_annotations: dict[str, str] | None = None,
    db_annotations: dict[str, str] | None = None,
    db_service: bool = True,
    db_host: str = "db-proxy.production.svc.cluster.local",
    nodes: list[dict[str, Any]] | None = None,
    load_factor: str | None = None,
    app_node: str = "node-1",
) -> ClusterView:
    apps = [_pod("app", i, node=app_node, env=app_env, **(app_annotations or {})) for i in range(app_pods)]
    dbs = [_pod("db-proxy", i, node="node-2", **(db_annotations or {})) for i in range(db_pods)]
    app = _service("app")
    if load_factor:
        app["metadata"]["annotations"] = {LOAD_FACTOR: load_factor}
    services = [app] + ([_service("db-proxy")] if db_service else [])
    return ClusterView(
        pods=apps + dbs,
        endpoint_slices=[_slice("app", apps, ready=app_ready)]
        + ([_slice("db-proxy", dbs)] if db_service else []),
        nodes=nodes or [_node(f"node-{i}") for i in range(1, 5)],
        services=services,
        configmaps=[_config(db_host)],
    )


def second(graph: ServiceGraph, view: ClusterView, t: int = 10) -> Any:
    return simulate_second(graph, derive_states(graph, view), t)


def test_a_healthy_world_affects_almost_nobody(graph: ServiceGraph) -> None:
    s = second(graph, world())
    assert s.status == "ok"
    assert 900 < s.requests < 1100  # 10,000 users x 6/min, with a little seeded noise
    assert s.failed == 0
    assert s.affected_ratio < 0.01
    assert s.p99_seconds < graph.users.latency_slo.total_seconds()


def test_a_crashing_release_takes_every_user_down(graph: ServiceGraph) -> None:
    s = second(graph, world(app_ready=False))
    assert s.status == "down"
    assert s.affected_ratio > 0.99
    assert s.features_down == ["browse", "cart", "checkout"]
    assert set(s.features["browse"].errors) == {503}


def test_deleting_the_dependency_fails_checkout_and_cart_but_browse_keeps_working(
    graph: ServiceGraph,
) -> None:
    s = second(graph, world(db_pods=0, db_service=False))
    assert s.features["checkout"].ok == 0
    assert s.features["cart"].ok == 0
    assert s.features["browse"].failed == 0
    # half the traffic is browse: about half the active users are affected
    assert 0.4 < s.affected_ratio < 0.6
    assert s.status == "degraded"


def test_the_circuit_breaker_turns_failures_into_degraded_pages(graph: ServiceGraph) -> None:
    down = second(graph, world(db_pods=0))
    env = {
        "CIRCUIT_BREAKER_ENABLED": "true",
        "CIRCUIT_BREAKER_THRESHOLD": "50",
        "CIRCUIT_BREAKER_TIMEOUT": "30000",
    }
    broken = second(graph, world(db_pods=0, app_env=env))
    assert down.features["checkout"].failed > 0
    assert broken.features["checkout"].failed == 0
    assert broken.features["checkout"].degraded == broken.features["checkout"].requests
    assert broken.affected_ratio < 0.01 < down.affected_ratio


def test_a_slow_dependency_times_out_upstream(graph: ServiceGraph) -> None:
    s = second(graph, world(db_annotations={POD_EXTRA_LATENCY: "1500"}))
    checkout = s.features["checkout"]
    assert set(checkout.errors) == {504}
    assert checkout.ok == 0
    assert s.features["browse"].failed == 0
    # the failures waited for their timeouts and retries: the p99 is seconds, not milliseconds
    assert s.p99_seconds > 2.0


def test_a_dependency_error_rate_fails_a_share_of_requests(graph: ServiceGraph) -> None:
    s = second(graph, world(db_annotations={POD_ERROR_RATE: "0.3"}))
    cart = s.features["cart"]
    assert set(cart.errors) == {500}
    # 30 % per attempt, one retry: about 9 % of cart requests fail
    assert 0.05 < cart.failed / cart.requests < 0.13


def test_one_bad_pod_of_three_fails_a_third_of_requests(graph: ServiceGraph) -> None:
    apps = world()
    # one pod serving errors only (partial failure)
    pods = list(apps.pods)
    pods[0] = _pod("app", 0, **{POD_ERROR_RATE: "1"})
    view = ClusterView(
        pods, apps.endpoint_slices, apps.nodes, apps.services, apps.configmaps
    )
    s = second(graph, view)
    assert 0.28 < s.error_ratio < 0.38
    assert s.status == "degraded"


def test_a_dns_failure_for_the_dependency_fails_at_once(graph: ServiceGraph) -> None:
    s = second(graph, world(db_host="db-proxy-old.production.svc.cluster.local"))
    assert set(s.features["checkout"].errors) == {503}
    assert s.features["checkout"].p99_seconds < 0.5  # failed fast, not after the timeout


def test_pods_on_a_partitioned_node_stop_serving_though_the_node_says_ready(graph: ServiceGraph) -> None:
    nodes = [_node("node-1", partitioned=True)] + [_node(f"node-{i}") for i in range(2, 5)]
    states = derive_states(graph, world(nodes=nodes))
    assert states["app"].serving_pods == 0
    assert states["db-proxy"].serving_pods == 2
    not_ready = [_node("node-1", ready=False)] + [_node(f"node-{i}") for i in range(2, 5)]
    assert derive_states(graph, world(nodes=not_ready))["app"].serving_pods == 0


def test_a_load_spike_makes_it_slow_before_it_fails(graph: ServiceGraph) -> None:
    # 1,000 req/s on 3 x 500 capacity is u=0.67; twice the traffic is u=1.33: shed and queue
    calm = second(graph, world())
    busy = second(graph, world(load_factor="1.4"))  # u = 0.93: slow, hardly any errors
    assert calm.status == "ok"
    assert busy.status == "slow"
    assert busy.error_ratio < 0.001
    assert busy.p99_seconds > calm.p99_seconds
    overloaded = second(graph, world(load_factor="2"))
    assert set(overloaded.features["browse"].errors) == {503}
    scaled = second(graph, world(load_factor="1.4", app_pods=6))
    assert scaled.status == "ok"


def test_histogram_buckets_are_cumulative_and_end_with_all_requests(graph: ServiceGraph) -> None:
    s = second(graph, world(db_annotations={POD_EXTRA_LATENCY: "300"}))
    for f in s.features.values():
        assert len(f.buckets) == len(BUCKETS) + 1
        assert list(f.buckets) == sorted(f.buckets)
        assert f.buckets[-1] == f.requests


def test_the_same_seed_gives_the_same_second_and_another_seed_another(graph: ServiceGraph) -> None:
    view = world()
    assert second(graph, view, 5) == second(graph, view, 5)
    other = graph.model_copy(update={"users": graph.users.model_copy(update={"seed": 7})})
    assert second(other, view, 5).requests != second(graph, view, 5).requests


def test_a_graph_with_unknown_dependencies_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "graph.yaml"
    bad.write_text(
        "entry: app\nservices:\n  app:\n    deployment: app\n    service: app\n    capacity_rps_per_pod: 10\n"
        "    latency: {p50: 10ms, p99: 5ms}\n    features:\n      browse: {share: 1}\n"
    )
    with pytest.raises(
        ScenarioError, match=r"graph.yaml:7: services.app.latency: .*p99 must be at least p50"
    ):
        load_service_graph(bad)
    bad.write_text(
        "entry: app\nservices:\n  app:\n    deployment: app\n    service: app\n    capacity_rps_per_pod: 10\n"
        "    latency: {p50: 10ms, p99: 50ms}\n    features:\n      browse: {share: 1, calls: [{service: nope}]}\n"
    )
    with pytest.raises(ScenarioError, match=r"calls 'nope', which is not a service"):
        load_service_graph(bad)
