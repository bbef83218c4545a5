"""Steady-state probes judged from snapshots (pure): each probe holding and failing, with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drills.engine.health import Snapshot, judge, parse_selector, pod_restart_trouble, selector_matches
from drills.model.scenario import SteadyState

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def steady(*probes: dict[str, Any], healthy_for: str = "30s") -> SteadyState:
    return SteadyState.model_validate({"probes": list(probes), "healthy_for": healthy_for})


def deployment(name: str, available: int, replicas: int = 3, ns: str = "production") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available},
    }


def pod(
    name: str,
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    waiting: str | None = None,
    finished: datetime | None = None,
    deleting: bool = False,
    ns: str = "production",
) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "app", "state": {"running": {}}, "restartCount": 0}
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting}}
    if finished:
        cs["lastState"] = {
            "terminated": {"reason": "Error", "finishedAt": finished.isoformat().replace("+00:00", "Z")}
        }
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {"app": "myapp"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-03-03T11:59:00Z"
    return {
        "metadata": meta,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [cs],
        },
    }


def node(name: str, ready: bool = True, unschedulable: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def slice_(service: str, ready: list[bool | None], ns: str = "production") -> dict[str, Any]:
    eps = [{"conditions": {} if r is None else {"ready": r}} for r in ready]
    return {
        "metadata": {"namespace": ns, "labels": {"kubernetes.io/service-name": service}},
        "endpoints": eps,
    }


def test_deployment_available_defaults_to_the_baseline_replicas() -> None:
    s = steady({"probe": "deployment-available", "name": "app"})
    snap = Snapshot(deployments=[deployment("app", available=3, replicas=15)])
    v = judge(s, snap, namespace="production", now=NOW, baseline_replicas={"production/app": 3})
    assert v.healthy and v.reason == "all 1 steady-state probe hold"
    v = judge(
        s,
        Snapshot(deployments=[deployment("app", available=2)]),
        namespace="production",
        now=NOW,
        baseline_replicas={"production/app": 3},
    )
    assert not v.healthy and v.reason == "deployment production/app has 2/3 replicas available"


def test_deployment_missing_is_unhealthy() -> None:
    v = judge(
        steady({"probe": "deployment-available", "name": "app"}), Snapshot(), namespace="production", now=NOW
    )
    assert v.failing == ("deployment production/app does not exist",)


def test_service_endpoints_ready_and_max_not_ready() -> None:
    s = steady({"probe": "service-endpoints", "name": "app", "min_ready": 1, "max_not_ready": 0})
    ok = Snapshot(endpoint_slices=[slice_("app", [True, None])])
    assert judge(s, ok, namespace="production", now=NOW).healthy
    flapping = Snapshot(endpoint_slices=[slice_("app", [True, False, False]), slice_("other", [False])])
    v = judge(s, flapping, namespace="production", now=NOW)
    assert v.reason == "service production/app routes to 2 not-ready endpoints (at most 0)"
    none = Snapshot(endpoint_slices=[slice_("app", [False])])
    assert (
        judge(
            steady({"probe": "service-endpoints", "name": "app"}), none, namespace="production", now=NOW
        ).reason
        == "service production/app has 0/1 ready endpoints"
    )


def test_nodes_ready_and_schedulable() -> None:
    snap = Snapshot(nodes=[node("a"), node("b", unschedulable=True), node("c", ready=False)])
    assert judge(steady({"probe": "nodes-ready", "min_ready": 2}), snap, namespace="x", now=NOW).healthy
    v = judge(
        steady({"probe": "nodes-ready", "min_ready": 2, "schedulable": True}), snap, namespace="x", now=NOW
    )
    assert v.reason == "1/2 nodes Ready and schedulable"


def test_pods_ready_counts_matching_live_ready_pods() -> None:
    snap = Snapshot(
        pods=[
            pod("a"),
            pod("b", ready=False),
            pod("c", deleting=True),
            pod("d", labels={"app": "db"}),
            pod("e", ns="staging"),
        ]
    )
    s = steady({"probe": "pods-ready", "selector": "app=myapp", "min_ready": 2})
    assert (
        judge(s, snap, namespace="production", now=NOW).reason == "1/2 pods ready for app=myapp in production"
    )


def test_no_restarts_crash_loop_and_recent_restart_window() -> None:
    s = steady({"probe": "no-restarts", "selector": "app=myapp"}, healthy_for="30s")
    crash = Snapshot(pods=[pod("a", waiting="CrashLoopBackOff")])
    assert (
        judge(s, crash, namespace="production", now=NOW).reason == "pod a container app is CrashLoopBackOff"
    )
    recent = Snapshot(pods=[pod("a", finished=NOW - timedelta(seconds=10))])
    assert "restarted (Error) within 30s" in judge(s, recent, namespace="production", now=NOW).reason
    # the same pod, judged later: the restart is out of the window, health came back with time alone
    assert judge(s, recent, namespace="production", now=NOW + timedelta(seconds=25)).healthy


def test_every_failing_probe_is_reported() -> None:
    s = steady({"probe": "deployment-available", "name": "app"}, {"probe": "nodes-ready", "min_ready": 1})
    v = judge(s, Snapshot(), namespace="production", now=NOW)
    assert len(v.failing) == 2 and "; " in v.reason


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("app=myapp", {"app": "myapp"}, True),
        ("app==myapp,healthy=true", {"app": "myapp"}, False),
        ("app=myapp,tier!=db", {"app": "myapp"}, True),
        ("app=myapp,tier!=db", {"app": "myapp", "tier": "db"}, False),
        ("env in (a, b)", {"env": "b"}, True),
        ("env notin (a,b)", {}, True),
        ("env notin (a,b)", {"env": "a"}, False),
        ("legacy", {"legacy": ""}, True),
        ("!legacy", {"legacy": "x"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_bad_selector_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot read label selector part"):
        parse_selector("app=myapp,(oops")


def test_restart_trouble_without_status_is_none() -> None:
    assert pod_restart_trouble({"metadata": {"name": "x"}}, now=NOW, window=timedelta(seconds=30)) is None


def test_no_restarts_remembers_restarts_the_status_forgot() -> None:
    s = steady({"probe": "no-restarts", "selector": "app=myapp"}, healthy_for="30s")
    quiet = pod("a")  # running, ready, no last state: the status alone looks fine
    seen = Snapshot(pods=[quiet], restarts={"production/a": NOW - timedelta(seconds=12)})
    assert judge(s, seen, namespace="production", now=NOW).reason == "pod a restarted within 30s"
    assert judge(s, seen, namespace="production", now=NOW + timedelta(seconds=19)).healthy
