"""The embedded cluster's configuration and fixture files, checked without a cluster.

What the cluster does with them is tested against the real cluster (test_cluster_*.py with the cluster
marker); here: loopback only, its own files, the Stage rules hold together (weights, delays, the rollout
stalling before a crash), the audit policy decides what the observer needs, the backup equals the world.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.adapters.clusters import embedded, fixtures
from drills.adapters.clusters.binaries import Binaries, kubectl_binary
from drills.adapters.clusters.embedded import Layout, context_name, kwokctl_configuration, kwokctl_env

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "fixtures"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _binaries(tmp: Path) -> Binaries:
    names = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl")
    return Binaries(
        **{n.replace("-", "_"): tmp / n for n in names},
        metrics_server=tmp / "metrics-server",
        kubectl=tmp / "kubectl",
    )


# ---- kwokctl configuration ---------------------------------------------------------------------------------


def test_every_component_binds_loopback_and_uses_the_local_binaries(tmp_path: Path) -> None:
    cfg = kwokctl_configuration(_binaries(tmp_path))
    opts = cfg["options"]
    assert opts["runtime"] == "binary"
    assert opts["bindAddress"] == "127.0.0.1"
    assert opts["kubeApiserverBinary"] == str(tmp_path / "kube-apiserver")
    assert opts["kwokControllerBinary"] == str(tmp_path / "kwok")
    assert opts["etcdBinary"] == str(tmp_path / "etcd")
    assert opts["kubectlBinary"] == str(tmp_path / "kubectl")
    assert opts["metricsServerBinary"] == str(tmp_path / "metrics-server")
    # Nothing is fetched: the metrics-server manifests are a local directory, kustomize-buildable.
    for manifest in opts["metricsServerManifests"]:
        assert not manifest.startswith(("http://", "https://"))
        assert (Path(manifest) / "kustomization.yaml").is_file()
    assert Path(opts["kubeAuditPolicy"]).is_file()
    assert opts["enableCRDs"] == ["Stage", "Metric", "ClusterResourceUsage", "ClusterLogs"]


def test_the_api_server_reaches_kubelets_by_ip_so_no_dns_lookup_leaves_the_machine(tmp_path: Path) -> None:
    patches = {
        p["name"]: p["extraArgs"] for p in kwokctl_configuration(_binaries(tmp_path))["componentsPatches"]
    }
    apiserver = {a["key"]: a["value"] for a in patches["kube-apiserver"]}
    assert apiserver["kubelet-preferred-address-types"] == "InternalIP"
    for node in _docs(FIX / "manifests" / "10-nodes.yaml"):
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == "127.0.0.1"
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_a_node_labelled_lost_is_no_longer_managed_by_kwok(tmp_path: Path) -> None:
    patches = {
        p["name"]: p["extraArgs"] for p in kwokctl_configuration(_binaries(tmp_path))["componentsPatches"]
    }
    kwok = {a["key"]: a for a in patches["kwok-controller"]}
    assert kwok["manage-all-nodes"]["value"] == "false" and kwok["manage-all-nodes"]["override"] is True
    assert kwok["manage-nodes-with-label-selector"]["value"] == "drills.io/fault!=lost"


def test_kwokctl_works_in_drills_state_and_cannot_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_CLUSTERS", str(tmp_path / "clusters"))
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate.example:3128")
    layout = Layout.for_name("drills-x")
    env = kwokctl_env(layout)
    assert env["KWOK_WORKDIR"] == str(tmp_path / "clusters" / "drills-x" / "kwok")
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == embedded.DEAD_PROXY
    assert "127.0.0.1" in env["NO_PROXY"]
    assert layout.kubeconfig == tmp_path / "clusters" / "drills-x" / "kubeconfig"
    assert layout.kubeconfig != Path.home() / ".kube" / "config"
    assert layout.ca_key.name == "ca.key" and layout.ca_key.is_relative_to(layout.root)


def test_contexts_always_carry_the_drills_prefix() -> None:
    assert context_name("drills") == "drills-drills"
    assert context_name("drills-test") == "drills-test"
    assert context_name("demo") == "drills-demo"


def test_context_renaming_rewrites_names_and_current_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_CLUSTERS", str(tmp_path))
    layout = Layout.for_name("demo")
    layout.root.mkdir(parents=True)
    layout.kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kwok-demo", "cluster": {"server": "https://127.0.0.1:32766"}}],
                "users": [{"name": "kwok-demo", "user": {}}],
                "contexts": [{"name": "kwok-demo", "context": {"cluster": "kwok-demo", "user": "kwok-demo"}}],
                "current-context": "kwok-demo",
            }
        )
    )
    embedded.rename_context(layout)
    cfg = yaml.safe_load(layout.kubeconfig.read_text())
    assert cfg["current-context"] == "drills-demo"
    assert cfg["contexts"][0] == {
        "name": "drills-demo",
        "context": {"cluster": "drills-demo", "user": "drills-demo"},
    }
    assert embedded.server_url(layout) == "https://127.0.0.1:32766"
    assert layout.kubeconfig.stat().st_mode & 0o077 == 0  # holds the admin key


def test_the_metrics_server_kustomization_builds_with_the_wheels_kubectl() -> None:
    out = subprocess.run(
        [str(kubectl_binary()), "kustomize", str(FIX / "cluster" / "metrics-server")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d}
    assert ("APIService", "v1beta1.metrics.k8s.io") in kinds
    assert ("Service", "metrics-server") in kinds
    assert ("ClusterRole", "system:metrics-server") in kinds
    assert not any(kind == "Deployment" for kind, _ in kinds)  # kwokctl runs the binary itself


# ---- Stages --------------------------------------------------------------------------------------------------


def _stages() -> list[dict[str, Any]]:
    return [d for p in sorted((FIX / "kwok").glob("*.yaml")) for d in _docs(p)]


def test_our_stages_outweigh_kwoks_defaults_and_have_sane_delays() -> None:
    stages = _stages()
    assert len(stages) >= 9
    for s in stages:
        assert s["kind"] == "Stage"
        assert s["metadata"]["name"].startswith("drills-")
        assert s["spec"]["weight"] == 10000, s["metadata"]["name"]
        delay = s["spec"].get("delay")
        if delay:
            # kwok reads jitter as the upper bound, not an addition: below the duration it replaces it.
            assert delay["jitterDurationMilliseconds"] > delay["durationMilliseconds"], s["metadata"]["name"]


def test_every_pod_fault_is_keyed_on_an_api_visible_trigger() -> None:
    keys = {
        s["metadata"]["name"]: [e["jq"]["key"] for e in s["spec"]["selector"]["matchExpressions"]]
        for s in _stages()
    }
    triggers = {
        "drills-pod-crash": "FAULT",
        "drills-pod-oom-killed": "FAULT",
        "drills-pod-restart": "FAULT",
        "drills-pod-unready": "FAULT",
        "drills-pod-err-image-pull": "does-not-exist",
        "drills-pod-image-pull-backoff": "does-not-exist",
        "drills-pod-image-pull-retry": "does-not-exist",
        "drills-node-not-ready": "drills.io/fault",
        "drills-node-not-ready-heartbeat": "drills.io/fault",
    }
    for name, needle in triggers.items():
        assert any(needle in k for k in keys[name]), name
    # Pods being deleted are left to kwok's pod-delete stage, or a crash loop could keep a pod forever.
    for name, ks in keys.items():
        if name.startswith("drills-pod-"):
            assert ".metadata.deletionTimestamp" in ks, name


def test_a_crashing_template_crashes_before_minreadyseconds_so_the_rollout_stalls() -> None:
    crash = next(s for s in _stages() if s["metadata"]["name"] == "drills-pod-crash")
    unready = next(s for s in _stages() if s["metadata"]["name"] == "drills-pod-unready")
    app = next(d for d in _docs(FIX / "manifests" / "40-app.yaml") if d["kind"] == "Deployment")
    min_ready_ms = app["spec"]["minReadySeconds"] * 1000
    assert crash["spec"]["delay"]["jitterDurationMilliseconds"] < min_ready_ms
    assert unready["spec"]["delay"]["jitterDurationMilliseconds"] < min_ready_ms


# ---- the runbook's world ---------------------------------------------------------------------------------


def test_the_app_is_what_the_runbook_expects() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _docs(FIX / "manifests" / "40-app.yaml")}
    dep = docs[("Deployment", "app")]
    assert dep["metadata"]["namespace"] == "production"
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "myapp"}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "app" and container["image"] == fixtures.BASELINE_IMAGE
    assert container["resources"]["requests"]["cpu"] == "100m"
    assert {"name": "FAULT", "value": ""} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert docs[("Service", "app")]["spec"]["selector"] == {"app": "myapp"}
    assert docs[("PodDisruptionBudget", "app")]["spec"]["minAvailable"] == 2
    config = {(d["kind"], d["metadata"]["name"]): d for d in _docs(FIX / "manifests" / "20-config.yaml")}
    assert "API_KEY" in config[("Secret", "app-secrets")]["stringData"]
    assert "dummy" in config[("Secret", "app-secrets")]["stringData"]["API_KEY"]
    nodes = _docs(FIX / "manifests" / "10-nodes.yaml")
    assert [n["metadata"]["name"] for n in nodes] == list(fixtures.NODES)
    assert {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes} == {"zone-a", "zone-b"}


def test_the_published_images_and_the_pull_rule_agree() -> None:
    rule = next(s for s in _stages() if s["metadata"]["name"] == "drills-pod-err-image-pull")
    key = next(
        e["jq"]["key"] for e in rule["spec"]["selector"]["matchExpressions"] if "image" in e["jq"]["key"]
    )
    for image in fixtures.PUBLISHED_IMAGES:
        assert f'"{image}"' in key
    assert (
        fixtures.BASELINE_IMAGE in fixtures.PUBLISHED_IMAGES
        and fixtures.PREVIOUS_IMAGE in fixtures.PUBLISHED_IMAGES
    )


def test_the_backup_restores_exactly_the_namespaced_world() -> None:
    def objects(directory: Path, names: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(d["kind"], d["metadata"]["name"]): d for n in names for d in _docs(directory / n)}

    files = ["00-namespace.yaml", "20-config.yaml", "30-db-proxy.yaml", "40-app.yaml"]
    assert sorted(p.name for p in (FIX / "backups" / "production").glob("*.yaml")) == files
    assert objects(FIX / "backups" / "production", files) == objects(FIX / "manifests", files)


# ---- audit policy ----------------------------------------------------------------------------------------


def _audit_level(verb: str, group: str, resource: str, user: str = "kwok-admin") -> str:
    """The level the API server would pick: the first rule that matches (audit.k8s.io/v1 semantics)."""
    policy = yaml.safe_load((FIX / "cluster" / "audit-policy.yaml").read_text())
    for rule in policy["rules"]:
        if "users" in rule and user not in rule["users"]:
            continue
        if "verbs" in rule and verb not in rule["verbs"]:
            continue
        if "resources" in rule:
            matched = False
            for gr in rule["resources"]:
                if gr.get("group", "") != group:
                    continue
                for r in gr.get("resources", ["*"]):
                    sub = resource.partition("/")[2]
                    if r in (resource, "*") or (r.startswith("*/") and sub and r[2:] == sub):
                        matched = True
            if not matched:
                continue
        return str(rule["level"])
    return "None"


@pytest.mark.parametrize(
    ("verb", "group", "resource", "level"),
    [
        ("create", "", "pods/eviction", "Metadata"),  # kubectl drain
        ("patch", "", "nodes", "Metadata"),  # cordon, label
        ("patch", "apps", "deployments/scale", "Metadata"),  # kubectl scale
        ("patch", "apps", "deployments", "Metadata"),  # set image, set env, rollout undo
        ("update", "", "services", "Metadata"),  # set selector
        ("delete", "", "pods", "Metadata"),
        ("create", "autoscaling", "horizontalpodautoscalers", "Metadata"),
        ("create", "", "pods/exec", "Metadata"),
        ("get", "", "pods/log", "Metadata"),  # evidence read
        ("get", "", "secrets", "Metadata"),  # "audit logged" in the runbook
        ("list", "", "pods", "None"),
        ("watch", "apps", "deployments", "None"),
        ("update", "coordination.k8s.io", "leases", "None"),
        ("create", "", "events", "None"),
        ("patch", "", "nodes/status", "None"),  # kwok's heartbeats
        ("patch", "", "pods/status", "None"),
    ],
)
def test_the_audit_policy_logs_writes_and_evidence_reads_only(
    verb: str, group: str, resource: str, level: str
) -> None:
    assert _audit_level(verb, group, resource) == level


def test_the_audit_policy_never_logs_bodies() -> None:
    policy = yaml.safe_load((FIX / "cluster" / "audit-policy.yaml").read_text())
    assert {r["level"] for r in policy["rules"]} <= {"None", "Metadata"}


# ---- container logs --------------------------------------------------------------------------------------

_CRI = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) F (.*)$")


@pytest.mark.parametrize("fault", [None, "crash", "oom", "unready"])
def test_container_logs_are_cri_lines_ending_now(fault: str | None) -> None:
    now = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    current, previous = fixtures.app_log_lines(now, fault=fault)
    for text in (current, previous):
        stamps = []
        for line in text.splitlines():
            m = _CRI.match(line)
            assert m, line
            stamps.append(datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC))
        assert stamps == sorted(stamps)
        assert all(now - timedelta(minutes=16) <= s <= now for s in stamps)
    recent = [
        ln
        for ln in current.splitlines()
        if ln[:19] >= (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    ]
    assert recent  # `kubectl logs --since=10m` has something to show
    if fault == "crash":
        assert "panic: runtime error" in previous
    if fault == "unready":
        assert "readiness check failed" in current
    if fault is None:
        assert "panic" not in current + previous


def test_cluster_logs_objects_point_kwok_at_the_files(tmp_path: Path) -> None:
    objs = fixtures.cluster_logs_objects(tmp_path)
    app = next(o for o in objs if o["metadata"]["name"] == "drills-app")
    assert app["spec"]["selector"] == {"matchNamespaces": ["production"]}
    assert app["spec"]["logs"][0]["containers"] == ["app"]
    assert app["spec"]["logs"][0]["logsFile"] == str(tmp_path / "app.log")
    assert app["spec"]["logs"][0]["previousLogsFile"] == str(tmp_path / "app-previous.log")
