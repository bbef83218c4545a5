"""The observer's pure parts: classifying object changes, the watch cache's re-list diff, the audit log tail
and index, and who counts as whom. The observer against the real cluster is tests/test_observer_cluster.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.kube.audit import AuditIndex, AuditRecord, AuditTail
from drills.adapters.kube.identities import actor_kind_for
from drills.adapters.kube.observer import (
    Change,
    WatchCache,
    classify,
    managed_fields_actor,
    normalized_template,
)
from drills.model.events import ActionKind, ActorKind

T = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def change(kind: str, type_: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change:
    return Change(kind, type_, old, new, T, 0.0)


def template(image: str, env: dict[str, str] | None = None, **ann: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "myapp"}, "annotations": ann},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                }
            ]
        },
    }


def dep(
    image: str = "myapp:v2.0.0", replicas: int = 3, env: dict[str, str] | None = None, **ann: str
) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "production", "resourceVersion": "1"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "myapp"}},
            "template": template(image, env, **ann),
        },
    }


def rs(image: str, revision: str, hash_: str) -> dict[str, Any]:
    t = template(image)
    t["metadata"]["labels"]["pod-template-hash"] = hash_
    return {
        "metadata": {
            "name": f"app-{hash_}",
            "namespace": "production",
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [{"kind": "Deployment", "name": "app"}],
        },
        "spec": {"template": t},
    }


def kinds(seen: list[Any]) -> list[tuple[ActionKind, str]]:
    return [(s.kind, s.detail) for s in seen]


def test_rollback_is_the_template_going_back_to_an_older_replicaset() -> None:
    replicasets = [rs("myapp:v2.0.0", "1", "aaa"), rs("myapp:v2.1.0", "2", "bbb")]
    seen = classify(change("Deployment", "MODIFIED", dep("myapp:v2.1.0"), dep("myapp:v2.0.0")), replicasets)
    assert kinds(seen) == [(ActionKind.ROLLBACK, "pod template back to revision 1 (myapp:v2.0.0)")]


def test_a_new_image_is_an_image_change_not_a_rollback() -> None:
    seen = classify(
        change("Deployment", "MODIFIED", dep("myapp:v2.0.0"), dep("myapp:v2.2.0")),
        [rs("myapp:v2.0.0", "1", "aaa")],
    )
    assert kinds(seen) == [(ActionKind.IMAGE_CHANGED, "app: myapp:v2.0.0 -> myapp:v2.2.0")]


def test_env_change_names_keys_never_values() -> None:
    old = dep(env={"FAULT": ""})
    new = dep(env={"FAULT": "", "CIRCUIT_BREAKER_ENABLED": "true", "API_TOKEN": "s3cr3t-value"})
    ((kind, detail),) = kinds(classify(change("Deployment", "MODIFIED", old, new)))
    assert kind == ActionKind.ENV_CHANGED
    assert detail == "env changed: API_TOKEN, CIRCUIT_BREAKER_ENABLED"
    assert "s3cr3t" not in detail


def test_scale_restart_and_status_only() -> None:
    assert kinds(classify(change("Deployment", "MODIFIED", dep(replicas=3), dep(replicas=15)))) == [
        (ActionKind.SCALE, "replicas 3 -> 15")
    ]
    restarted = dep(**{"kubectl.kubernetes.io/restartedAt": "2026-03-03T12:00:00Z"})
    assert kinds(classify(change("Deployment", "MODIFIED", dep(), restarted))) == [
        (ActionKind.ROLLOUT, "rollout restart")
    ]
    status_only = dep()
    status_only["status"] = {"availableReplicas": 1}
    assert classify(change("Deployment", "MODIFIED", dep(), status_only)) == []


def test_service_selector_node_cordon_and_readiness() -> None:
    svc_old = {"metadata": {"name": "app", "namespace": "production"}, "spec": {"selector": {"app": "myapp"}}}
    svc_new = {
        "metadata": {"name": "app", "namespace": "production"},
        "spec": {"selector": {"app": "myapp", "healthy": "true"}},
    }
    assert kinds(classify(change("Service", "MODIFIED", svc_old, svc_new))) == [
        (ActionKind.SELECTOR_CHANGED, "selector app=myapp -> app=myapp,healthy=true")
    ]
    ready = {
        "metadata": {"name": "n1"},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    cordoned = {**ready, "spec": {"unschedulable": True}}
    not_ready = {**ready, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    assert kinds(classify(change("Node", "MODIFIED", ready, cordoned))) == [
        (ActionKind.CORDON, "node n1 cordoned")
    ]
    assert kinds(classify(change("Node", "MODIFIED", cordoned, ready))) == [
        (ActionKind.UNCORDON, "node n1 uncordoned")
    ]
    (s,) = classify(change("Node", "MODIFIED", ready, not_ready))
    # a node's readiness is its kubelet's report: a controller's, never a person's
    assert s.kind == ActionKind.NODE_NOT_READY and s.default_actor == ActorKind.CONTROLLER


def test_pod_deletion_is_reported_once() -> None:
    live = {"metadata": {"name": "p", "namespace": "production"}}
    terminating = {
        "metadata": {"name": "p", "namespace": "production", "deletionTimestamp": "2026-03-03T12:00:00Z"}
    }
    (s,) = classify(change("Pod", "MODIFIED", live, terminating))
    assert s.kind == ActionKind.POD_DELETED and s.destructive and "eviction" in s.subresources  # type: ignore[operator]
    assert classify(change("Pod", "DELETED", terminating, None)) == []
    assert kinds(classify(change("Pod", "DELETED", live, None))) == [(ActionKind.POD_DELETED, "pod deleted")]


def test_hpa_configmap_secret() -> None:
    hpa = {
        "metadata": {"name": "app", "namespace": "production"},
        "spec": {
            "scaleTargetRef": {"name": "app"},
            "minReplicas": 5,
            "maxReplicas": 25,
            "metrics": [{"resource": {"target": {"averageUtilization": 70}}}],
        },
    }
    assert kinds(classify(change("HorizontalPodAutoscaler", "ADDED", None, hpa))) == [
        (ActionKind.AUTOSCALE, "autoscaler for app: min 5, max 25, cpu 70%")
    ]
    cm = {"metadata": {"name": "c", "namespace": "production"}, "data": {"A": "1", "B": "2"}}
    cm2 = {"metadata": {"name": "c", "namespace": "production"}, "data": {"A": "1", "B": "3", "C": "x"}}
    assert kinds(classify(change("ConfigMap", "MODIFIED", cm, cm2))) == [
        (ActionKind.CONFIG_CHANGED, "keys changed: B, C")
    ]
    s1 = {"metadata": {"name": "s", "namespace": "production", "resourceVersion": "1"}}
    s2 = {"metadata": {"name": "s", "namespace": "production", "resourceVersion": "2"}}
    assert kinds(classify(change("Secret", "MODIFIED", s1, s2))) == [
        (ActionKind.SECRET_CHANGED, "secret changed (values not recorded)")
    ]


def test_normalized_template_ignores_the_replicaset_hash() -> None:
    assert normalized_template(rs("x", "1", "abc")["spec"]["template"]) == normalized_template(template("x"))


def test_relist_diff_misses_nothing() -> None:
    cache = WatchCache()
    a = {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"}}
    b = {"metadata": {"name": "b", "namespace": "ns", "resourceVersion": "1"}}
    cache.replace_all("Pod", [a, b], "10")
    a2 = {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "5"}}
    c = {"metadata": {"name": "c", "namespace": "ns", "resourceVersion": "6"}}
    diffs = cache.replace_all("Pod", [a2, c], "20")
    assert sorted((t, (n or o)["metadata"]["name"]) for t, o, n in diffs) == [
        ("ADDED", "c"),
        ("DELETED", "b"),
        ("MODIFIED", "a"),
    ]
    assert {p["metadata"]["name"] for p in cache.list("Pod")} == {"a", "c"}
    assert cache.list("Pod", "other") == [] and cache.resource_version("Pod") == "20"


def test_managed_fields_fallback() -> None:
    obj = {
        "metadata": {
            "managedFields": [
                {"manager": "kube-controller-manager", "time": "2026-03-03T12:00:00Z", "operation": "Update"},
                {"manager": "kubectl-rollout", "time": "2026-03-03T12:00:05Z", "operation": "Update"},
            ]
        }
    }
    assert managed_fields_actor(obj) == (ActorKind.RESPONDER, "kubectl-rollout")
    obj["metadata"]["managedFields"].append(
        {"manager": "drills-injector", "time": "2026-03-03T12:00:09Z", "operation": "Update"}
    )
    assert managed_fields_actor(obj) == (ActorKind.DRILLS, "drills-injector")
    assert managed_fields_actor({"metadata": {}}) is None


def audit_line(
    verb: str,
    resource: str,
    name: str | None,
    user: str,
    agent: str,
    at: datetime,
    *,
    ns: str = "production",
    sub: str | None = None,
    code: int = 200,
) -> str:
    ref: dict[str, Any] = {"resource": resource, "namespace": ns}
    if name:
        ref["name"] = name
    if sub:
        ref["subresource"] = sub
    stamp = at.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "auditID": f"{verb}-{name}-{stamp}",
            "stage": "ResponseComplete",
            "verb": verb,
            "objectRef": ref,
            "user": {"username": user, "groups": []},
            "userAgent": agent,
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
            "requestURI": f"/x/{name}",
        }
    )


KCM = "kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/$Format/replicaset-controller"
KUBECTL = "kubectl/v1.37.1 (linux/amd64) kubernetes/f78e722"


def test_audit_tail_reads_complete_lines_and_follows_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("")
    tail = AuditTail(log)
    line = audit_line("patch", "deployments", "app", "drills:bot", KUBECTL, T)
    with log.open("a") as f:
        f.write(line + "\n" + line[:40])  # the second line is still being written
    assert len(tail.poll()) == 1
    with log.open("a") as f:
        f.write(line[40:] + "\n")
    assert len(tail.poll()) == 1
    log.rename(tmp_path / "audit-1.log")
    log.write_text(line + "\nnot json\n")
    assert len(tail.poll()) == 1 and tail.unreadable == 1


def test_audit_index_join_window_exclusion_and_generate_name() -> None:
    idx = AuditIndex()
    recs = [
        AuditRecord.parse(json.loads(x))
        for x in (
            audit_line("patch", "deployments", "app", "drills:injector", "python", T),
            audit_line(
                "patch", "deployments", "app", "drills:responder:ana", KUBECTL, T + timedelta(seconds=3)
            ),
            audit_line(
                "patch", "deployments", "app", "drills:bot", KUBECTL, T + timedelta(seconds=4), code=409
            ),
            audit_line("create", "pods", None, "kwok-admin", KCM, T + timedelta(seconds=5)),
        )
    ]
    idx.add([r for r in recs if r is not None])
    w = idx.writer("deployments", "production", "app", at=T + timedelta(seconds=4))
    assert w is not None and w.user == "drills:responder:ana"  # the failed 409 write is no writer
    w2 = idx.writer("deployments", "production", "app", at=T + timedelta(seconds=4), exclude={w.audit_id})
    assert w2 is not None and w2.user == "drills:injector"
    assert (
        idx.writer(
            "deployments",
            "production",
            "app",
            at=T + timedelta(seconds=4),
            window=timedelta(seconds=2),
            exclude={w.audit_id},
        )
        is None
    )
    pod = idx.writer("pods", "production", None, at=T + timedelta(seconds=5), verbs=frozenset({"create"}))
    assert pod is not None and pod.actor == "kube-controller-manager/replicaset-controller"
    assert pod.actor_kind(None) == ActorKind.CONTROLLER


def test_who_is_who() -> None:
    assert actor_kind_for("drills:responder:ana", KUBECTL, None) == ActorKind.RESPONDER
    assert actor_kind_for("drills:bot", KUBECTL, None) == ActorKind.BOT
    assert actor_kind_for("drills:injector", "python", None) == ActorKind.DRILLS
    assert actor_kind_for("kwok-admin", KCM, None) == ActorKind.CONTROLLER
    assert actor_kind_for("kwok-admin", "kwok-controller/v0.8.0 (linux/amd64)", None) == ActorKind.CONTROLLER
    assert actor_kind_for("system:apiserver", "kube-apiserver/v1.37.2", None) == ActorKind.CONTROLLER
    # the admin identity typing kubectl is somebody, but not the responder: never credited
    assert actor_kind_for("kwok-admin", KUBECTL, None) == ActorKind.UNKNOWN


def test_the_cache_keeps_what_is_read_of_a_pod_and_shares_strings() -> None:
    from drills.adapters.kube.observer import shared, slim_pod

    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "labels": {"app": "a"},
            "generation": 1,
            "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "u", "apiVersion": "apps/v1"}],
        },
        "spec": {
            "nodeName": "n1",
            "volumes": [{"name": "token"}],
            "tolerations": [{"key": "x"}],
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "volumeMounts": [{"name": "token"}],
                    "env": [{"name": "FAULT", "value": ""}],
                }
            ],
        },
        "status": {
            "phase": "Running",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    slim = slim_pod(pod)
    assert slim["spec"] == {
        "nodeName": "n1",
        "containers": [{"name": "c", "image": "i", "env": [{"name": "FAULT", "value": ""}]}],
    }
    assert slim["status"] == {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert slim["metadata"]["ownerReferences"] == [{"kind": "ReplicaSet", "name": "rs", "uid": "u"}]
    a, b = shared(json.loads(json.dumps(slim))), shared(json.loads(json.dumps(slim)))
    assert a == slim and a["status"]["phase"] is b["status"]["phase"]
