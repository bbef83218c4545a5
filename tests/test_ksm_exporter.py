"""The kube-state-metrics-compatible exporter: names, labels and values the alert rules rely on, served on
127.0.0.1 and read back over HTTP with Prometheus' own text parser (and linted by ``promtool check metrics``).
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drills.adapters.monitoring.ksm_exporter import KubeListSource, StateMetricsExporter, StaticStateSource
from drills.errors import UsageError


def deployment(
    name: str, *, spec: int, available: int, unavailable: int = 0, ready: int | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "production", "generation": 4},
        "spec": {"replicas": spec},
        "status": {
            "observedGeneration": 4,
            "replicas": spec,
            "availableReplicas": available,
            "unavailableReplicas": unavailable or None,  # the API server leaves zeros out
            "updatedReplicas": spec,
            "readyReplicas": available if ready is None else ready,
            "conditions": [
                {"type": "Available", "status": "True" if available >= spec else "False"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }


def pod(
    name: str,
    *,
    phase: str = "Running",
    ready: str = "True",
    state: dict[str, Any] | None = None,
    restarts: int = 0,
    last_reason: str | None = None,
) -> dict[str, Any]:
    cs: dict[str, Any] = {
        "name": "app",
        "ready": ready == "True",
        "restartCount": restarts,
        "state": state or {"running": {"startedAt": "2026-03-02T10:00:00Z"}},
        "lastState": {"terminated": {"reason": last_reason, "exitCode": 1}} if last_reason else {},
    }
    return {
        "metadata": {
            "name": name,
            "namespace": "production",
            "uid": f"uid-{name}",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "app-7d9", "controller": True}],
        },
        "spec": {"nodeName": "node-1"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": ready}],
            "containerStatuses": [cs],
        },
    }


WORLD: dict[str, list[dict[str, Any]]] = {
    "Deployment": [
        deployment("app", spec=3, available=1, unavailable=2),
        deployment("db-proxy", spec=1, available=1),
    ],
    "Pod": [
        pod("app-1"),
        pod(
            "app-2",
            ready="False",
            state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
            restarts=4,
            last_reason="Error",
        ),
        pod("app-3", phase="Pending", ready="False", state={"waiting": {"reason": "ImagePullBackOff"}}),
        {  # just created: no status at all yet
            "metadata": {"name": "app-4", "namespace": "production", "uid": "uid-app-4"},
            "spec": {},
            "status": {},
        },
    ],
    "Node": [
        {
            "metadata": {"name": "node-1"},
            "spec": {},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "MemoryPressure", "status": "False"},
                ],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "kwok-0.8.0"},
            },
        },
        {
            "metadata": {"name": "node-2"},
            "spec": {
                "unschedulable": True,
                "taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}],
            },
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
        },
    ],
    "HorizontalPodAutoscaler": [
        {
            "metadata": {"name": "app", "namespace": "production"},
            "spec": {"minReplicas": 3, "maxReplicas": 10},
            "status": {"currentReplicas": 10, "desiredReplicas": 12},
        }
    ],
    "Job": [
        {
            "metadata": {"name": "migrate", "namespace": "production"},
            "status": {
                "failed": 6,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            },
        }
    ],
}


@pytest.fixture(scope="module")
def scraped() -> str:
    with StateMetricsExporter(StaticStateSource(WORLD)) as exporter:
        assert exporter.address.startswith("127.0.0.1:")
        with urllib.request.urlopen(exporter.url, timeout=10) as r:
            assert r.status == 200
            return r.read().decode()


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    found: dict[frozenset[tuple[str, str]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[frozenset(s.labels.items())] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    want = frozenset(labels.items())
    matches = [v for k, v in samples(text, name).items() if want <= k]
    assert len(matches) == 1, f"{name}{labels}: {matches}"
    return matches[0]


def test_deployment_metrics(scraped: str) -> None:
    d = {"namespace": "production", "deployment": "app"}
    assert value(scraped, "kube_deployment_spec_replicas", **d) == 3
    assert value(scraped, "kube_deployment_status_replicas", **d) == 3
    assert value(scraped, "kube_deployment_status_replicas_available", **d) == 1
    assert value(scraped, "kube_deployment_status_replicas_unavailable", **d) == 2
    assert value(scraped, "kube_deployment_status_replicas_ready", **d) == 1
    assert (
        value(
            scraped,
            "kube_deployment_status_replicas_unavailable",
            namespace="production",
            deployment="db-proxy",
        )
        == 0
    )
    assert value(scraped, "kube_deployment_status_condition", **d, condition="Available", status="false") == 1
    assert value(scraped, "kube_deployment_status_condition", **d, condition="Available", status="true") == 0
    assert (
        value(scraped, "kube_deployment_status_condition", **d, condition="Available", status="unknown") == 0
    )


def test_pod_and_container_metrics(scraped: str) -> None:
    crash = {"namespace": "production", "pod": "app-2", "uid": "uid-app-2", "container": "app"}
    assert value(scraped, "kube_pod_container_status_restarts_total", **crash) == 4
    assert value(scraped, "kube_pod_container_status_waiting_reason", **crash, reason="CrashLoopBackOff") == 1
    assert value(scraped, "kube_pod_container_status_waiting", **crash) == 1
    assert value(scraped, "kube_pod_container_status_last_terminated_reason", **crash, reason="Error") == 1
    # only the current waiting reason is exported, as kube-state-metrics does
    assert {dict(k)["reason"] for k in samples(scraped, "kube_pod_container_status_waiting_reason")} == {
        "CrashLoopBackOff",
        "ImagePullBackOff",
    }
    assert value(scraped, "kube_pod_container_status_waiting", namespace="production", pod="app-1") == 0
    assert value(scraped, "kube_pod_container_status_running", namespace="production", pod="app-1") == 1
    assert value(scraped, "kube_pod_status_ready", pod="app-2", condition="false") == 1
    assert value(scraped, "kube_pod_status_ready", pod="app-2", condition="true") == 0
    assert value(scraped, "kube_pod_status_phase", pod="app-3", phase="Pending") == 1
    assert value(scraped, "kube_pod_status_phase", pod="app-3", phase="Running") == 0
    assert (
        value(scraped, "kube_pod_owner", pod="app-1", owner_kind="ReplicaSet", owner_is_controller="true")
        == 1
    )
    assert value(scraped, "kube_pod_info", pod="app-1", node="node-1", created_by_kind="ReplicaSet") == 1
    # a pod without a status has an info series and no phase/ready series (as in kube-state-metrics)
    assert value(scraped, "kube_pod_info", pod="app-4") == 1
    assert not [k for k in samples(scraped, "kube_pod_status_phase") if ("pod", "app-4") in k]


def test_node_metrics(scraped: str) -> None:
    assert value(scraped, "kube_node_status_condition", node="node-1", condition="Ready", status="true") == 1
    assert (
        value(scraped, "kube_node_status_condition", node="node-2", condition="Ready", status="unknown") == 1
    )
    assert value(scraped, "kube_node_status_condition", node="node-2", condition="Ready", status="true") == 0
    assert value(scraped, "kube_node_spec_unschedulable", node="node-2") == 1
    assert value(scraped, "kube_node_spec_unschedulable", node="node-1") == 0
    assert value(scraped, "kube_node_spec_taint", node="node-2", key="node.kubernetes.io/unreachable") == 1
    assert value(scraped, "kube_node_info", node="node-1", internal_ip="127.0.0.1") == 1


def test_hpa_and_job_metrics(scraped: str) -> None:
    h = {"namespace": "production", "horizontalpodautoscaler": "app"}
    assert value(scraped, "kube_horizontalpodautoscaler_spec_max_replicas", **h) == 10
    assert value(scraped, "kube_horizontalpodautoscaler_spec_min_replicas", **h) == 3
    assert value(scraped, "kube_horizontalpodautoscaler_status_current_replicas", **h) == 10
    assert value(scraped, "kube_horizontalpodautoscaler_status_desired_replicas", **h) == 12
    j = {"namespace": "production", "job_name": "migrate"}
    assert value(scraped, "kube_job_status_failed", **j) == 6
    assert value(scraped, "kube_job_failed", **j, condition="true") == 1


def test_metric_types_match_kube_state_metrics(scraped: str) -> None:
    types = {f.name: f.type for f in text_string_to_metric_families(scraped)}
    assert types["kube_pod_container_status_restarts"] == "counter"
    assert types["kube_deployment_status_replicas_available"] == "gauge"


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed"
)
def test_exposition_passes_promtool_lint(scraped: str) -> None:
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=scraped, capture_output=True, text=True, check=False
    )
    # promtool's lint notes missing HELP/naming issues; exit 0 means it parsed and found nothing to fix.
    assert done.returncode == 0, done.stdout + done.stderr


def test_state_changes_show_at_the_next_scrape() -> None:
    source = StaticStateSource(WORLD)
    with StateMetricsExporter(source) as exporter:
        source.set("Deployment", [deployment("app", spec=3, available=3)])
        with urllib.request.urlopen(exporter.url, timeout=10) as r:
            text = r.read().decode()
    assert value(text, "kube_deployment_status_replicas_available", deployment="app") == 3
    assert not [k for k in samples(text, "kube_deployment_spec_replicas") if ("deployment", "db-proxy") in k]


def test_only_loopback() -> None:
    with pytest.raises(UsageError, match=r"127\.0\.0\.1 only"):
        StateMetricsExporter(StaticStateSource(), host="0.0.0.0")


class _CountingKube:
    """Just enough of drills.adapters.kube.client.Kube for KubeListSource: counts list calls."""

    def __init__(self) -> None:
        self.calls = 0
        outer = self

        class _Api:
            def __getattr__(self, name: str) -> Any:
                def listing(*args: Any, **kwargs: Any) -> Any:
                    outer.calls += 1
                    return type("L", (), {"items": [{"metadata": {"name": name}}]})()

                return listing

        self.apps = self.core = self.autoscaling = self.batch = _Api()

    def call(self, what: str) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def to_dict(self, obj: Any) -> dict[str, Any]:
        return dict(obj)


def test_list_source_caches_each_kind_briefly() -> None:
    now = [0.0]
    kube = _CountingKube()
    source = KubeListSource(kube, max_age=0.5, monotonic=lambda: now[0])
    assert source.list("Deployment") == [{"metadata": {"name": "list_deployment_for_all_namespaces"}}]
    source.list("Deployment")
    assert kube.calls == 1
    now[0] = 0.6
    source.list("Deployment")
    assert kube.calls == 2
    assert source.list("Node")[0]["metadata"]["name"] == "list_node"
    assert source.list("ConfigMap") == []
    namespaced = KubeListSource(kube, namespaces=["production", "staging"], monotonic=lambda: now[0])
    assert [o["metadata"]["name"] for o in namespaced.list("Pod")] == ["list_namespaced_pod"] * 2


def test_the_observers_watch_cache_is_a_state_source() -> None:
    """During a drill the exporter can read the observer's cache (same list(kind) shape), not a second watch."""
    from drills.adapters.kube.observer import WatchCache

    cache = WatchCache()
    for d in WORLD["Deployment"]:
        cache.apply("Deployment", "ADDED", d)
    with StateMetricsExporter(cache) as exporter, urllib.request.urlopen(exporter.url, timeout=10) as r:
        text = r.read().decode()
    assert value(text, "kube_deployment_status_replicas_available", deployment="app") == 1
    assert value(text, "kube_deployment_spec_replicas", deployment="db-proxy") == 1
