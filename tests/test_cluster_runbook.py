"""The seed runbook against the real embedded cluster: real kubectl, real controllers, real PDB evictions.

Each test that changes the world takes the ``world`` fixture, which resets it to the baseline afterwards.
The seed runbook's commands are quoted verbatim (placeholders filled); two of them do not work as written
against any cluster, and those findings are pinned here (see docs/cluster.md, "Runbook findings").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Kubectl

from drills.adapters.clusters.facade import ClusterHandle

pytestmark = pytest.mark.cluster
NS = ["-n", "production"]


def wait_until(what: str, predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pods(kubectl: Kubectl, selector: str = "app=myapp") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "pods", *NS, "-l", selector)["items"]  # type: ignore[assignment]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def active_replicaset(kubectl: Kubectl) -> dict[str, Any]:
    rss: list[dict[str, Any]] = kubectl.json("get", "rs", *NS, "-l", "app=myapp")["items"]  # type: ignore[assignment]
    live = [rs for rs in rss if rs["spec"].get("replicas", 0) > 0]
    assert len(live) == 1, [rs["metadata"]["name"] for rs in live]
    return live[0]


def rollout_done(kubectl: Kubectl, timeout: int = 90) -> None:
    kubectl("rollout", "status", "deployment/app", *NS, f"--timeout={timeout}s", timeout=timeout + 10)


def test_rollout_then_undo_restores_the_old_replicaset(world: ClusterHandle, kubectl: Kubectl) -> None:
    before = active_replicaset(kubectl)
    kubectl("set", "image", "deployment/app", *NS, "app=myapp:v2.1.0")
    rollout_done(kubectl)
    during = active_replicaset(kubectl)
    assert during["metadata"]["name"] != before["metadata"]["name"]
    assert all(p["spec"]["containers"][0]["image"] == "myapp:v2.1.0" for p in pods(kubectl))
    kubectl("rollout", "undo", "deployment/app", *NS)
    rollout_done(kubectl)
    after = active_replicaset(kubectl)
    assert after["metadata"]["name"] == before["metadata"]["name"]  # the same ReplicaSet, scaled back up
    current = pods(kubectl)
    assert len(current) == 3 and all(ready(p) for p in current)
    assert {p["spec"]["containers"][0]["image"] for p in current} == {"myapp:v2.0.0"}


def test_scale_to_15(world: ClusterHandle, kubectl: Kubectl) -> None:
    kubectl.shell("kubectl scale deployment/app -n production --replicas=15")
    rollout_done(kubectl)
    current = pods(kubectl)
    assert len(current) == 15 and all(ready(p) for p in current)
    assert len({p["spec"]["nodeName"] for p in current}) == 4  # spread over every node


def test_drain_is_refused_by_the_pdb_then_allowed(world: ClusterHandle, kubectl: Kubectl) -> None:
    # Two replicas and minAvailable 2: the budget allows no disruption at all.
    kubectl("scale", "deployment/app", *NS, "--replicas=2")
    rollout_done(kubectl)
    node = pods(kubectl)[0]["spec"]["nodeName"]
    refused = kubectl(
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=15s",
        check=False,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "disruption budget" in refused.stderr
    assert node in {p["spec"]["nodeName"] for p in pods(kubectl)}  # the pod is still there
    assert kubectl.json("get", "node", node)["spec"]["unschedulable"] is True  # type: ignore[index]
    # A third replica (scheduled elsewhere: the node is cordoned) gives the budget room.
    kubectl("scale", "deployment/app", *NS, "--replicas=3")
    rollout_done(kubectl)
    kubectl.shell(f"kubectl drain {node} --ignore-daemonsets --delete-emptydir-data", timeout=120)
    remaining = wait_until(
        "the drained node's pods to go",
        lambda: (
            [p for p in pods(kubectl) if p["spec"]["nodeName"] != node]
            if all(p["spec"]["nodeName"] != node for p in pods(kubectl))
            else None
        ),
    )
    assert len(remaining) == 3
    wait_until("3 ready replicas", lambda: len([p for p in pods(kubectl) if ready(p)]) == 3)
    # The evictions went through the Eviction API, and the audit log says who asked.
    assert world.audit_log is not None
    evictions = [
        json.loads(line)
        for line in world.audit_log.read_text().splitlines()
        if '"subresource":"eviction"' in line
    ]
    assert any(
        e["userAgent"].startswith("kubectl/") and e["responseStatus"]["code"] == 429 for e in evictions
    )
    assert any(
        e["userAgent"].startswith("kubectl/") and e["responseStatus"]["code"] == 201 for e in evictions
    )


def test_a_deleted_pod_is_replaced(world: ClusterHandle, kubectl: Kubectl) -> None:
    victim = pods(kubectl)[0]["metadata"]["name"]
    kubectl.shell(f"kubectl delete pod {victim} -n production")

    def replaced() -> bool:
        current = pods(kubectl)
        names = {p["metadata"]["name"] for p in current}
        return len(current) == 3 and all(ready(p) for p in current) and victim not in names

    wait_until("a replacement pod", replaced)


def _endpoints(kubectl: Kubectl) -> int:
    slices: list[dict[str, Any]] = kubectl.json(  # type: ignore[assignment]
        "get", "endpointslices", *NS, "-l", "kubernetes.io/service-name=app"
    )["items"]
    return sum(
        1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
    )


def test_set_selector_takes_unlabelled_pods_out_of_the_service(
    world: ClusterHandle, kubectl: Kubectl
) -> None:
    wait_until("3 endpoints", lambda: _endpoints(kubectl) == 3)
    kubectl.shell('kubectl set selector service/app "app=myapp,healthy=true" -n production')
    wait_until("no endpoints", lambda: _endpoints(kubectl) == 0)
    for p in pods(kubectl)[:2]:
        kubectl("label", "pod", p["metadata"]["name"], *NS, "healthy=true")
    wait_until("2 endpoints", lambda: _endpoints(kubectl) == 2)


def test_set_env_triggers_a_rollout(world: ClusterHandle, kubectl: Kubectl) -> None:
    before = active_replicaset(kubectl)["metadata"]["name"]
    kubectl.shell(
        "kubectl set env deployment/app -n production \\\n"
        "  CIRCUIT_BREAKER_ENABLED=true \\\n"
        "  CIRCUIT_BREAKER_THRESHOLD=50 \\\n"
        "  CIRCUIT_BREAKER_TIMEOUT=30000"
    )
    rollout_done(kubectl)
    assert active_replicaset(kubectl)["metadata"]["name"] != before
    for p in pods(kubectl):
        env = {e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]}
        assert env["CIRCUIT_BREAKER_ENABLED"] == "true" and env["CIRCUIT_BREAKER_TIMEOUT"] == "30000"


def test_logs_of_the_deployment_print_recent_lines(drill_cluster: ClusterHandle, kubectl: Kubectl) -> None:
    out = kubectl.shell("kubectl logs -n production deployment/app --tail=100 --since=10m").stdout
    lines = out.splitlines()
    assert 10 <= len(lines) <= 100
    assert all("level=" in line for line in lines)


def test_kubectl_top_and_hpa_metrics_are_real(world: ClusterHandle, kubectl: Kubectl) -> None:
    def top_pods() -> dict[str, str] | None:
        proc = kubectl("top", "pods", *NS, "--no-headers", check=False)
        rows = {r.split()[0]: r.split()[1] for r in proc.stdout.splitlines() if r.startswith("app-")}
        return rows if proc.returncode == 0 and len(rows) == 3 else None

    rows = wait_until("kubectl top pods to list the app's pods", top_pods, timeout=120, interval=3)
    assert set(rows.values()) <= {"39m", "40m", "41m"}  # kwok.x-k8s.io/usage-cpu: 40m in the template
    nodes = kubectl("top", "nodes", "--no-headers").stdout.splitlines()
    assert len(nodes) == 4
    kubectl("autoscale", "deployment/app", *NS, "--cpu=70%", "--min=3", "--max=10")

    def hpa_utilisation() -> int | None:
        hpa = kubectl.json("get", "hpa", "app", *NS)
        for m in hpa.get("status", {}).get("currentMetrics") or []:  # type: ignore[union-attr]
            value = m.get("resource", {}).get("current", {}).get("averageUtilization")
            if value is not None:
                return int(value)
        return None

    # 40m of a 100m request: the HPA sees 40% (no scaling at a 70% target).
    assert 35 <= wait_until("the HPA to read CPU utilisation", hpa_utilisation, timeout=120, interval=3) <= 45


# ---- the seed runbook, verbatim -------------------------------------------------------------------------

#: Every command line of the seed runbook (docs: incident-response-framework.md), in its order.
#: kubectl lines run below; the others are not kubectl and are out of scope for the cluster, with why.
SEED_RUNBOOK: list[tuple[str, str]] = [
    ("kubectl get pods -n production", "run"),
    ("kubectl top pods -n production", "run"),
    ("kubectl rollout history deployment/app -n production", "run"),
    ("kubectl logs -n production deployment/app --tail=100 --since=10m", "run"),
    ("curl https://prometheus/api/v1/query?query=up", "out of scope: Prometheus (the monitoring stack)"),
    ("kubectl rollout undo deployment/app -n production", "run"),
    ("kubectl rollout status deployment/app -n production", "run"),
    ("kubectl get pods -n production -l app=myapp", "run"),
    ("kubectl scale deployment/app -n production --replicas=15", "run"),
    (
        "kubectl autoscale deployment/app -n production \\\n  --cpu-percent=70 \\\n  --min=5 \\\n  --max=25",
        "run",
    ),
    ("kubectl drain <node-name> --ignore-daemonsets --delete-emptydir-data", "run"),
    ("kubectl delete pod <pod-name> -n production", "run"),
    ('kubectl set selector service/app "app=myapp,healthy=true"', "finding: no namespace"),
    (
        "kubectl set env deployment/app -n production \\\n  CIRCUIT_BREAKER_ENABLED=true \\\n"
        "  CIRCUIT_BREAKER_THRESHOLD=50 \\\n  CIRCUIT_BREAKER_TIMEOUT=30000",
        "run",
    ),
    ("kubectl set image deployment/app -n production \\\n  app=myapp:v2.1.0 \\\n  --record", "run"),
    (
        "kubectl patch deployment app -n production -p \\\n"
        """  '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}'""",
        "run",
    ),
    (
        "watch kubectl get pods -n production -l app=myapp,version=v2.1.0",
        "out of scope: `watch` is interactive",
    ),
    ("kubectl rollout resume deployment/app -n production", "finding: nothing paused"),
    (
        "aws sts assume-role \\\n  --role-arn arn:aws:iam::ACCOUNT:role/EmergencyAccess \\\n"
        "  --role-session-name incident-response-session",
        "out of scope: AWS IAM",
    ),
    (
        "kubectl exec -it -n production db-proxy -- psql -U readonly",
        "out of scope: psql (an interactive database shell)",
    ),
    ("kubectl get secret -n production app-secrets -o jsonpath='{.data.API_KEY}' | base64 --decode", "run"),
    ("kubectl get pods -n production", "run"),
    ("aws sts get-caller-identity", "out of scope: AWS IAM"),
    ('psql -h production-db -U readonly -c "SELECT 1"', "out of scope: the production database"),
    (
        'curl -X POST https://events.pagerduty.com/v2/enqueue \\\n  -H "Authorization: Token token=${PAGERDUTY_TOKEN}" \\\n'
        """    -d '{"routing_key":"YOUR_KEY","event_action":"trigger"}'""",
        "out of scope: PagerDuty (drills' paging adapter; never from a test)",
    ),
]


def test_the_lines_out_of_scope_are_exactly_the_ones_that_are_not_kubectl() -> None:
    for line, verdict in SEED_RUNBOOK:
        is_kubectl = line.startswith("kubectl ")
        interactive = " -it " in line or line.startswith("watch ")
        if verdict.startswith("out of scope"):
            assert not is_kubectl or interactive, line
        else:
            assert is_kubectl, line


def test_every_seed_runbook_command_runs_verbatim(world: ClusterHandle, kubectl: Kubectl) -> None:
    # Filled when the line runs, as a responder would: the pods of that moment.
    filled: dict[str, Callable[[], str]] = {
        "<node-name>": lambda: "node-a1",
        "<pod-name>": lambda: pods(kubectl)[0]["metadata"]["name"],
    }
    deleted: list[str] = []
    results: dict[str, Any] = {}
    for line, verdict in SEED_RUNBOOK:
        if verdict != "run":
            continue
        command = line
        for placeholder, value in filled.items():
            if placeholder in command:
                name = value()
                command = command.replace(placeholder, name)
                if placeholder == "<pod-name>":
                    deleted.append(name)
        if command.startswith("kubectl top"):
            # metrics-server's first scrape of new pods takes up to ~30 s after `drill cluster up`.
            proc = wait_until(
                "pod metrics",
                lambda c=command: (
                    (p := kubectl.shell(c, check=False)).returncode == 0 and "app-" in p.stdout and p
                ),
                timeout=120,
                interval=3,
            )
        else:
            proc = kubectl.shell(command, timeout=180)
        results[line] = proc
    assert "NAME" in results["kubectl get pods -n production"].stdout
    assert "release v1.9.0" in results["kubectl rollout history deployment/app -n production"].stdout
    assert (
        results["kubectl logs -n production deployment/app --tail=100 --since=10m"].stdout.count("\n") >= 10
    )
    assert "rolled back" in results["kubectl rollout undo deployment/app -n production"].stdout
    assert "successfully rolled out" in results["kubectl rollout status deployment/app -n production"].stdout
    secret = "kubectl get secret -n production app-secrets -o jsonpath='{.data.API_KEY}' | base64 --decode"
    assert results[secret].stdout == "dummy-api-key-not-a-secret"
    hpa = kubectl.json("get", "hpa", "app", *NS)
    assert hpa["spec"]["minReplicas"] == 5 and hpa["spec"]["maxReplicas"] == 25  # type: ignore[index]
    assert kubectl.json("get", "node", "node-a1")["spec"]["unschedulable"] is True  # type: ignore[index]
    assert deleted and deleted[0] not in {p["metadata"]["name"] for p in pods(kubectl)}
    dep = kubectl.json("get", "deployment", "app", *NS)
    strategy = dep["spec"]["strategy"]["rollingUpdate"]  # type: ignore[index]
    assert strategy == {"maxSurge": 1, "maxUnavailable": 0}
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "myapp:v2.1.0"  # type: ignore[index]


def test_runbook_finding_set_selector_without_a_namespace_misses_the_service(
    drill_cluster: ClusterHandle, kubectl: Kubectl
) -> None:
    """As written it targets namespace `default` (the kubeconfig sets none), where there is no service/app."""
    proc = kubectl.shell('kubectl set selector service/app "app=myapp,healthy=true"', check=False)
    assert proc.returncode != 0
    assert 'services "app" not found' in proc.stderr
    assert kubectl.json("get", "service", "app", *NS)["spec"]["selector"] == {"app": "myapp"}  # type: ignore[index]


def test_runbook_finding_rollout_resume_needs_a_pause_the_canary_steps_lack(
    world: ClusterHandle, kubectl: Kubectl
) -> None:
    proc = kubectl.shell("kubectl rollout resume deployment/app -n production", check=False)
    assert proc.returncode != 0 and "is not paused" in proc.stderr
    # With the missing step (`kubectl rollout pause` right after `set image`) the canary works as meant.
    kubectl("set", "image", "deployment/app", *NS, "app=myapp:v2.1.0")
    kubectl("rollout", "pause", "deployment/app", *NS)
    time.sleep(2)
    images = {p["spec"]["containers"][0]["image"] for p in pods(kubectl)}
    assert "myapp:v2.0.0" in images  # the rollout is held part-way
    kubectl.shell("kubectl rollout resume deployment/app -n production")
    rollout_done(kubectl)
    assert {p["spec"]["containers"][0]["image"] for p in pods(kubectl)} == {"myapp:v2.1.0"}


def test_dr_the_backup_recreates_a_lost_namespace_and_reset_restores_the_history(
    world: ClusterHandle, kubectl: Kubectl, reset_fixtures: Callable[[], None]
) -> None:
    kubectl("delete", "namespace", "production", "--wait=true", timeout=120)
    # The DR runbook's restore, from the repository root.
    kubectl.shell("kubectl apply -f fixtures/backups/production/")
    rollout_done(kubectl)
    current = pods(kubectl)
    assert len(current) == 3 and all(ready(p) for p in current)
    assert kubectl.json("get", "secret", "app-secrets", *NS)["data"]["API_KEY"]  # type: ignore[index]
    reset_fixtures()
    history = kubectl("rollout", "history", "deployment/app", *NS).stdout
    assert "release v1.9.0" in history and "release v2.0.0" in history
