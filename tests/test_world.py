"""The world's baseline and what a drill leaves different from it (pure: drills.engine.world)."""

from __future__ import annotations

import copy
from typing import Any

from drills.engine.world import desired_state, differences, summary, world_state


def _deployment(name: str = "db-proxy", replicas: int = 2, image: str = "db-proxy:1.4") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "production",
            "labels": {"app": name},
            "uid": "u-1",
            "resourceVersion": "17",
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
        "status": {"readyReplicas": replicas},
    }


def _service(ip: str = "10.0.0.7") -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": "app", "namespace": "production", "labels": {}},
        "spec": {
            "selector": {"app": "myapp"},
            "ports": [{"port": 80, "targetPort": 8080}],
            "clusterIP": ip,
            "clusterIPs": [ip],
            "type": "ClusterIP",
        },
    }


def _node(
    name: str = "node-1", *, cordoned: bool = False, taints: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"unschedulable": cordoned, "taints": taints or []},
    }


def test_an_unchanged_world_has_no_differences_whatever_the_server_fills_in() -> None:
    before = [_deployment(), _service(), _node()]
    after = copy.deepcopy(before)
    after[0]["metadata"]["resourceVersion"] = "99"
    after[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
    after[0]["status"] = {"readyReplicas": 0}
    after[1]["spec"]["clusterIP"] = after[1]["spec"]["clusterIPs"][0] = "10.0.0.99"  # re-created Service
    assert differences(world_state(before), world_state(after)) == []


def test_a_deleted_dependency_is_missing() -> None:
    diffs = differences(world_state([_deployment(), _node()]), world_state([_node()]))
    assert [(d.ref, d.change) for d in diffs] == [("Deployment/production/db-proxy", "missing")]
    assert "db-proxy is missing" in diffs[0].describe()


def test_a_scaled_workload_differs_in_its_replicas() -> None:
    diffs = differences(world_state([_deployment(replicas=2)]), world_state([_deployment(replicas=15)]))
    assert len(diffs) == 1
    assert diffs[0].change == "changed"
    assert diffs[0].fields == ("spec.replicas",)


def test_replicas_an_hpa_of_the_baseline_drives_are_not_drift() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "db-proxy", "namespace": "production"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "db-proxy"}, "maxReplicas": 5},
    }
    assert (
        differences(world_state([_deployment(replicas=2), hpa]), world_state([_deployment(replicas=5), hpa]))
        == []
    )


def test_an_hpa_a_responder_made_is_added() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "app", "namespace": "production"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "app"}, "maxReplicas": 25},
    }
    diffs = differences(world_state([_deployment()]), world_state([_deployment(), hpa]))
    assert [(d.ref, d.change) for d in diffs] == [("HorizontalPodAutoscaler/production/app", "added")]


def test_a_restart_annotation_is_not_drift_but_an_image_is() -> None:
    restarted = _deployment()
    restarted["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
    assert differences(world_state([_deployment()]), world_state([restarted])) == []
    diffs = differences(world_state([_deployment()]), world_state([_deployment(image="db-proxy:9")]))
    assert diffs[0].fields == ("spec.template",)


def test_a_cordoned_node_differs_but_controller_taints_do_not() -> None:
    base = world_state([_node()])
    unreachable = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert differences(base, world_state([_node(taints=unreachable)])) == []
    diffs = differences(base, world_state([_node(cordoned=True)]))
    assert diffs[0].ref == "Node/node-1"
    assert diffs[0].fields == ("unschedulable",)
    people = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    assert differences(base, world_state([_node(taints=people)]))[0].fields == ("taints",)


def test_a_new_node_is_capacity_not_drift() -> None:
    assert differences(world_state([_node()]), world_state([_node(), _node("node-9")])) == []


def test_secrets_are_compared_by_digest_and_their_values_never_kept() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "app-secrets", "namespace": "production"},
        "type": "Opaque",
        "data": {"API_KEY": "c2VjcmV0LXZhbHVl"},
    }
    state = desired_state(secret)
    assert "c2VjcmV0LXZhbHVl" not in repr(state)
    rotated = copy.deepcopy(secret)
    rotated["data"]["API_KEY"] = "b3RoZXI="
    diffs = differences(world_state([secret]), world_state([rotated]))
    assert diffs[0].fields == ("data_sha256",)


def test_an_object_being_deleted_counts_as_gone() -> None:
    going = _deployment()
    going["metadata"]["deletionTimestamp"] = "2026-12-03T10:00:00Z"
    assert differences(world_state([_deployment()]), world_state([going]))[0].change == "missing"


def test_summary_caps_its_length() -> None:
    objs = [_deployment(f"w{i}") for i in range(10)]
    text = summary(differences(world_state(objs), world_state([])), limit=3)
    assert text.count("is missing") == 3
    assert text.endswith("and 7 more")
