"""Each fault Stage (fixtures/kwok/) on the real embedded cluster: its trigger produces the status a
responder would see, and removing the trigger clears it. Node faults also exercise the real node-lifecycle
controller (taints, evictions)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Kubectl
from test_cluster_runbook import NS, active_replicaset, pods, ready, rollout_done, wait_until

from drills.adapters.clusters.facade import ClusterHandle

pytestmark = pytest.mark.cluster


def new_pods(kubectl: Kubectl, old_rs: str) -> list[dict[str, Any]]:
    return [p for p in pods(kubectl) if not p["metadata"]["name"].startswith(old_rs + "-")]


def status_of(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod["status"].get("containerStatuses") or [{}]
    return statuses[0]


def heal_with_undo(kubectl: Kubectl, healthy_rs: str) -> None:
    kubectl("rollout", "undo", "deployment/app", *NS)
    rollout_done(kubectl)
    current = pods(kubectl)
    assert active_replicaset(kubectl)["metadata"]["name"] == healthy_rs
    assert len(current) == 3 and all(ready(p) for p in current)
    assert all(status_of(p).get("restartCount", 0) == 0 for p in current)


@pytest.mark.parametrize(
    ("fault", "reason", "exit_code"),
    [("crash", "Error", 2), ("oom", "OOMKilled", 137)],
)
def test_a_crashing_template_crash_loops_stalls_the_rollout_and_undo_heals_it(
    world: ClusterHandle, kubectl: Kubectl, fault: str, reason: str, exit_code: int
) -> None:
    healthy = active_replicaset(kubectl)["metadata"]["name"]
    kubectl("set", "env", "deployment/app", *NS, f"FAULT={fault}")

    def restarts() -> int | None:
        bad = new_pods(kubectl, healthy)
        return max((status_of(p).get("restartCount", 0) for p in bad), default=0) or None

    first = wait_until("a first restart", restarts, timeout=30)
    climbed = wait_until("restartCount to climb", lambda: (r := restarts()) and r > first and r, timeout=45)
    assert climbed > first
    crashing = wait_until(
        "CrashLoopBackOff",
        lambda: next(
            (p for p in new_pods(kubectl, healthy) if status_of(p).get("state", {}).get("waiting")), None
        ),
        timeout=20,
    )
    cs = status_of(crashing)
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["reason"] == reason
    assert cs["lastState"]["terminated"]["exitCode"] == exit_code
    assert not ready(crashing)
    printed = kubectl("get", "pods", *NS, "-l", "app=myapp").stdout
    assert "CrashLoopBackOff" in printed or "Running" in printed
    # minReadySeconds outlasts the time to the first crash: the rollout is stuck, the old pods still serve.
    dep = kubectl.json("get", "deployment", "app", *NS)["status"]
    assert dep["updatedReplicas"] < 3 and dep.get("availableReplicas", 0) >= 2  # type: ignore[index,operator]
    heal_with_undo(kubectl, healthy)


def test_readiness_failing_keeps_pods_running_but_out_of_the_service(
    world: ClusterHandle, kubectl: Kubectl
) -> None:
    healthy = active_replicaset(kubectl)["metadata"]["name"]
    kubectl("set", "env", "deployment/app", *NS, "FAULT=unready")

    def unready() -> dict[str, Any] | None:
        for p in new_pods(kubectl, healthy):
            if (
                p["status"].get("phase") == "Running"
                and not ready(p)
                and status_of(p).get("state", {}).get("running")
            ):
                return p
        return None

    pod = wait_until("a running, unready pod", unready, timeout=30)
    assert status_of(pod).get("restartCount", 0) == 0
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert cond["reason"] == "ContainersNotReady"
    slices = kubectl.json("get", "endpointslices", *NS, "-l", "kubernetes.io/service-name=app")["items"]
    ready_ips = {
        a
        for s in slices  # type: ignore[union-attr]
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready")
        for a in e["addresses"]
    }
    assert pod["status"]["podIP"] not in ready_ips
    heal_with_undo(kubectl, healthy)


@pytest.mark.parametrize("image", ["myapp:does-not-exist", "myapp:v2.0.1"])
def test_an_image_that_does_not_exist_backs_off_and_a_fix_clears_it(
    world: ClusterHandle, kubectl: Kubectl, image: str
) -> None:
    healthy = active_replicaset(kubectl)["metadata"]["name"]
    kubectl("set", "image", "deployment/app", *NS, f"app={image}")

    def reason() -> str | None:
        for p in new_pods(kubectl, healthy):
            waiting = status_of(p).get("state", {}).get("waiting") or {}
            if waiting.get("reason") == "ImagePullBackOff":
                return str(p["status"]["phase"])
        return None

    assert wait_until("ImagePullBackOff", reason, timeout=30) == "Pending"
    assert "ImagePullBackOff" in kubectl("get", "pods", *NS, "-l", "app=myapp").stdout
    heal_with_undo(kubectl, healthy)


def _node(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return kubectl.json("get", "node", name)


def _ready_status(node: dict[str, Any]) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def _taints(node: dict[str, Any]) -> set[str]:
    return {f"{t['key']}:{t['effect']}" for t in node["spec"].get("taints") or []}


def _busiest_node(kubectl: Kubectl) -> str:
    counts: dict[str, int] = {}
    for p in pods(kubectl):
        counts[p["spec"]["nodeName"]] = counts.get(p["spec"]["nodeName"], 0) + 1
    return max(counts, key=lambda n: counts[n])


def test_node_not_ready_taints_the_node_evicts_its_pods_and_clears(
    world: ClusterHandle, kubectl: Kubectl
) -> None:
    node = _busiest_node(kubectl)
    victims = {p["metadata"]["name"] for p in pods(kubectl) if p["spec"]["nodeName"] == node}
    kubectl("label", "node", node, "drills.io/fault=not-ready")
    wait_until("NotReady", lambda: _ready_status(_node(kubectl, node)) == "False", timeout=20)
    wait_until(
        "the not-ready NoExecute taint",
        lambda: "node.kubernetes.io/not-ready:NoExecute" in _taints(_node(kubectl, node)),
        timeout=20,
    )

    # After the pods' 30 s toleration the taint manager evicts them; the ReplicaSet replaces them elsewhere.
    def replaced() -> bool:
        current = pods(kubectl)
        return (
            not victims & {p["metadata"]["name"] for p in current}
            and len(current) == 3
            and all(ready(p) and p["spec"]["nodeName"] != node for p in current)
        )

    wait_until("the node's pods evicted and replaced", replaced, timeout=90, interval=2)
    kubectl("label", "node", node, "drills.io/fault-")
    wait_until("Ready again", lambda: _ready_status(_node(kubectl, node)) == "True", timeout=20)
    wait_until("the taints lifted", lambda: not _taints(_node(kubectl, node)), timeout=30)


def test_a_lost_node_stops_heartbeating_is_tainted_its_pods_evicted_and_it_comes_back(
    world: ClusterHandle, kubectl: Kubectl
) -> None:
    node = _busiest_node(kubectl)
    victims = {p["metadata"]["name"] for p in pods(kubectl) if p["spec"]["nodeName"] == node}
    kubectl("label", "node", node, "drills.io/fault=lost")
    # No lease renewal: after the 20 s grace period the node-lifecycle controller marks it Unknown.
    wait_until(
        "Ready=Unknown", lambda: _ready_status(_node(kubectl, node)) == "Unknown", timeout=60, interval=2
    )
    wait_until(
        "the unreachable NoExecute taint",
        lambda: "node.kubernetes.io/unreachable:NoExecute" in _taints(_node(kubectl, node)),
        timeout=20,
    )

    def evicted() -> bool:
        everything: list[dict[str, Any]] = kubectl.json("get", "pods", *NS, "-l", "app=myapp")["items"]  # type: ignore[assignment]
        stuck = [p for p in everything if p["metadata"]["name"] in victims]
        # Nobody is there to confirm the kill: the pods stay Terminating, as on a real lost node.
        live = [p for p in everything if not p["metadata"].get("deletionTimestamp")]
        return (
            all(p["metadata"].get("deletionTimestamp") for p in stuck)
            and len(live) == 3
            and all(ready(p) and p["spec"]["nodeName"] != node for p in live)
        )

    wait_until("the lost node's pods evicted and replaced", evicted, timeout=90, interval=2)
    kubectl("label", "node", node, "drills.io/fault-")
    wait_until("Ready again", lambda: _ready_status(_node(kubectl, node)) == "True", timeout=30)
    wait_until("the taints lifted", lambda: not _taints(_node(kubectl, node)), timeout=30)

    def stuck_gone() -> bool:
        names = {p["metadata"]["name"] for p in kubectl.json("get", "pods", *NS)["items"]}  # type: ignore[union-attr]
        return not victims & names

    wait_until("the Terminating pods finalised", stuck_gone, timeout=30)
