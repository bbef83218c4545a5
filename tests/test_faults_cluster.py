"""Every fault on the real embedded cluster: injected, its effect observed in the journal, reverted, and the
cluster back at baseline, compared object by object. Also the refusals: each refused fault changes nothing.

The observer writes to a real journal while the fault runs (audit attribution on), injections go through
drills' own identity, and the revert ledger is a real file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Kubectl
from faults_support import (
    SCENARIOS,
    baseline,
    differences,
    scenario,
    variant,
    wait_for_baseline,
    wait_until,
    watched,
)

from drills.adapters import faults
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.faults.ledger import Ledger
from drills.adapters.kube import identities, resources
from drills.adapters.kube.client import Kube
from drills.engine.health import pod_ready
from drills.errors import FaultError, Forbidden, SafetyError
from drills.model.events import (
    ActionKind,
    ActionObserved,
    ActorKind,
    ChaosToolkitEvent,
    FaultInjected,
    FaultReverted,
    HealthChanged,
)
from drills.model.revert import ChaosToolkitRollbacks
from drills.model.scenario import Scenario

pytestmark = pytest.mark.cluster

CASES: dict[str, Callable[[], Scenario]] = {
    "bad-deploy": lambda: scenario("bad-deploy-rollback"),
    "crash-loop": lambda: scenario("crash-loop-delete-pods"),
    "oom": lambda: variant("crash-loop-delete-pods", {"kind": "oom"}),
    "readiness-failure": lambda: scenario("readiness-set-selector"),
    # the shipped scenario's probes stay green while old pods serve the stuck rollout; no-restarts sees it
    "image-pull": lambda: variant(
        "image-pull-fix-forward",
        {"kind": "image-pull", "image": "myapp:v2.1.0-rc-does-not-exist"},
        [{"probe": "no-restarts", "selector": "app=myapp"}],
    ),
    "scale-to-zero": lambda: variant(
        "pod-kill-self-healing",
        {"kind": "scale-to-zero"},
        [{"probe": "deployment-available", "name": "app", "min_available": 3}],
    ),
    "load-spike": lambda: scenario("load-spike-scale"),
    "dependency-outage": lambda: scenario("dependency-outage-circuit-breaker"),
    "pod-kill": lambda: scenario("pod-kill-self-healing"),
    "node-not-ready": lambda: scenario("node-not-ready-drain"),
    "node-lost": lambda: scenario("node-lost-drain"),
    "node-drain-stuck": lambda: scenario("node-drain-stuck-uncordon"),
    "broken-config": lambda: scenario("broken-config-restore"),
    "secret-missing": lambda: variant(
        "secret-rotated-restore", {"kind": "secret-missing", "secret": "app-secrets"}
    ),
    "secret-rotated": lambda: scenario("secret-rotated-restore"),
    "namespace-lost": lambda: scenario("quarterly-dr-namespace-lost"),
    "chaostoolkit": lambda: scenario("chaostoolkit-terminate-pod"),
}

#: How long until the effect shows: the node-lifecycle controller needs its grace period for a lost node.
EFFECT_TIMEOUT = {"node-lost": 90.0}


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.mark.parametrize("kind", list(CASES))
def test_fault_injected_observed_reverted_back_at_baseline(
    kind: str,
    world: ClusterHandle,
    kube: Kube,
    injector: Kube,
    ids: identities.Identities,
    tmp_path: Path,
) -> None:
    sc = CASES[kind]()
    assert sc.faults[0].kind == kind
    before = baseline(kube)
    ledger = Ledger(tmp_path / "ledger.jsonl", drill_id=f"test-{kind}")
    with watched(world, injector, sc, tmp_path, ids) as w:
        handle = faults.inject(sc, injector, ledger, w.journal, scenario_dir=SCENARIOS)
        t0 = handle.injected_at
        assert t0 is not None
        effects = handle.confirm(EFFECT_TIMEOUT.get(kind, 60.0))
        assert effects and all(effects)
        # the effect reaches the journal: the steady state breaks after the fault
        wait_until(
            lambda: any(not e.healthy and e.at >= t0 for e in w.of(HealthChanged)),
            120,
            f"{kind}: an unhealthy health.changed in the journal",
        )
        (injected,) = w.of(FaultInjected)
        assert injected.at == t0 and injected.fault_kind == kind and injected.actor == "drills:injector"
        # drills' own changes are attributed to drills, never to a person
        for action in w.of(ActionObserved):
            assert action.actor_kind != ActorKind.RESPONDER, action
        handle.revert(reason="test")
        assert ledger.pending() == []
        (reverted,) = w.of(FaultReverted)
        assert reverted.ok and reverted.fault_kind == kind
        wait_until(
            lambda: w.observer.verdict is not None and w.observer.verdict.healthy,
            240,
            f"{kind}: healthy again",
        )
        last = w.of(HealthChanged)[-1]
        assert last.healthy, last
    diffs = wait_for_baseline(kube, before)
    assert diffs == [], "\n".join(diffs)


def test_revert_is_idempotent(world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path) -> None:
    sc = scenario("node-drain-stuck-uncordon")
    before = baseline(kube)
    handle = faults.inject(sc, injector, Ledger(tmp_path / "ledger.jsonl"), None)
    handle.confirm(30)
    first = handle.revert()
    assert handle.revert() == []  # already reverted: nothing to do
    again = faults.base.apply_ops(injector, handle.faults[0].injector.revert_ops())
    assert all("already at baseline" in note for note in again), (first, again)
    assert wait_for_baseline(kube, before) == []


def test_a_namespace_restored_from_backup_meanwhile_is_still_reverted_to_its_baseline(
    world: ClusterHandle, kube: Kube, injector: Kube, kubectl: Kubectl, tmp_path: Path
) -> None:
    """The DR drill's own path: the responder re-applies the backup manifests, so the Service comes back with
    a new cluster IP (which the API server will not let anyone change); the revert still restores the rest."""
    sc = scenario("quarterly-dr-namespace-lost")
    before = baseline(kube)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    handle = faults.inject(sc, injector, ledger, None)
    handle.confirm(60)
    wait_until(lambda: resources.get(kube, "Namespace", "production") is None, 120, "the namespace gone")
    kubectl.shell("kubectl apply -f fixtures/backups/production/")
    restored = resources.get(kube, "Service", "app", "production")
    assert restored is not None
    handle.revert(reason="test")
    assert ledger.pending() == []
    after = resources.get(kube, "Service", "app", "production")
    assert after is not None and after["spec"]["clusterIP"] == restored["spec"]["clusterIP"]

    def without_cluster_ips(view: dict[str, Any]) -> dict[str, Any]:
        out = dict(view)
        for key, value in view.items():
            if key.startswith("Service/") and value:
                spec = {k: v for k, v in value["spec"].items() if k not in ("clusterIP", "clusterIPs")}
                out[key] = {**value, "spec": spec}
        return out

    diffs: list[str] = []

    def back() -> bool:
        diffs[:] = differences(without_cluster_ips(before), without_cluster_ips(baseline(kube)))
        return not diffs

    try:
        wait_until(back, 180, "the world back at baseline (cluster IPs aside)")
    except AssertionError as e:
        now = without_cluster_ips(baseline(kube))
        was = without_cluster_ips(before)
        changed = {
            key: [
                f for f in (was.get(key) or {}) if (was.get(key) or {}).get(f) != (now.get(key) or {}).get(f)
            ]
            for key in sorted(set(was) | set(now))
            if was.get(key) != now.get(key)
        }
        raise AssertionError(f"{e}; differing fields: {changed}\n" + "\n".join(diffs)) from None


def test_revert_restores_the_recorded_baseline_not_the_previous_revision(
    world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    """A responder who rolls out yet another template during the fault does not change what the revert
    restores: the template recorded before the fault."""
    sc = scenario("bad-deploy-rollback")
    before = baseline(kube)
    handle = faults.inject(sc, injector, Ledger(tmp_path / "ledger.jsonl"), None)
    resources.patch(
        kube,
        "Deployment",
        "app",
        "production",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "myapp:v2.1.0",
                                "env": [{"name": "FAULT", "value": "unready"}],
                            }
                        ]
                    }
                }
            }
        },
        patch_type="strategic",
        field_manager="kubectl-set",
    )
    handle.revert()
    assert wait_for_baseline(kube, before) == []


# ---- refusals: a clear message and no change ---------------------------------------------------------


def test_refuses_a_context_that_is_not_allow_listed(world: ClusterHandle, kube: Kube, tmp_path: Path) -> None:
    cfg = yaml.safe_load(world.kubeconfig.read_text())
    for ctx in cfg["contexts"]:
        ctx["name"] = "prod-eu-1"
    cfg["current-context"] = "prod-eu-1"
    other = tmp_path / "kubeconfig"
    other.write_text(yaml.safe_dump(cfg))
    before = baseline(kube)
    with pytest.raises(SafetyError, match=r"kubeconfig context 'prod-eu-1' is not allow-listed"):
        faults.inject(scenario("pod-kill-self-healing"), Kube(other), Ledger(tmp_path / "l.jsonl"), None)
    assert differences(before, baseline(kube)) == []
    assert not (tmp_path / "l.jsonl").exists()  # refused before anything, even the ledger


def test_refuses_kube_system_without_the_flag(
    world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    data = scenario("pod-kill-self-healing").model_dump(mode="json")
    data["target"] = {"namespace": "kube-system", "workload": "app"}
    data["safety"] = {"allow_system_namespaces": True}
    data["faults"] = [{"kind": "pod-kill", "count": 1, "selector": "app=anything"}]
    sc = Scenario.model_validate(data)
    kube_system_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "drills-test-victim", "namespace": "kube-system", "labels": {"app": "anything"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    resources.create(kube, kube_system_pod)
    try:
        before = baseline(kube)
        with pytest.raises(
            SafetyError,
            match=r"namespace 'kube-system' is a system namespace \(the scenario allows "
            r"it, but --allow-system-namespaces was not given\)",
        ):
            faults.inject(sc, injector, Ledger(tmp_path / "l.jsonl"), None)
        assert resources.get(kube, "Pod", "drills-test-victim", "kube-system") is not None
        assert differences(before, baseline(kube)) == []
    finally:
        resources.delete(kube, "Pod", "drills-test-victim", "kube-system", grace_period_seconds=0)


def test_refuses_an_over_cap_blast_radius(
    world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    data = scenario("pod-kill-self-healing").model_dump(mode="json")
    data["faults"] = [{"kind": "pod-kill", "percent": 100}]
    data["safety"] = {"max_pods": 2}
    before = baseline(kube)
    with pytest.raises(SafetyError, match=r"it would touch 3 pods; safety.max_pods is 2") as e:
        faults.inject(Scenario.model_validate(data), injector, Ledger(tmp_path / "l.jsonl"), None)
    assert e.value.hint and "nothing was changed" in e.value.hint
    assert differences(before, baseline(kube)) == []


def test_the_responder_identity_is_refused_outside_its_namespace_by_the_api_server(
    world: ClusterHandle, kube: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    responder = Kube(ids.responder.kubeconfig, ids.responder.context)
    # inside the drill's namespace: allowed
    resources.patch(responder, "Deployment", "app", "production", {"metadata": {"annotations": {"t": "1"}}})
    # outside: the API server itself says 403
    with pytest.raises(
        Forbidden, match=r'User "drills:responder:tester" cannot delete resource "configmaps"'
    ):
        resources.delete(responder, "ConfigMap", "extension-apiserver-authentication", "kube-system")
    assert resources.get(kube, "ConfigMap", "extension-apiserver-authentication", "kube-system") is not None
    with pytest.raises(Forbidden):
        resources.create(
            responder,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}},
        )
    # and a drill fault run with the responder's identity cannot get through either
    data = scenario("pod-kill-self-healing").model_dump(mode="json")
    data["target"] = {"namespace": "default", "workload": "app"}
    with pytest.raises(Forbidden):
        faults.inject(Scenario.model_validate(data), responder, Ledger(tmp_path / "l.jsonl"), None)
    responder.close()


def test_dry_run_plans_exact_changes_and_changes_nothing(
    world: ClusterHandle, kube: Kube, injector: Kube
) -> None:
    before = baseline(kube)
    changes = faults.plan(scenario("bad-deploy-rollback"), injector, scenario_dir=SCENARIOS)
    (change,) = changes
    assert (
        change.request_line() == "PATCH /apis/apps/v1/namespaces/production/deployments/app (strategic patch)"
    )
    assert change.body["spec"]["template"]["spec"]["containers"][0]["image"] == "myapp:v2.1.0"
    assert differences(before, baseline(kube)) == []


def test_injection_failure_is_undone_at_once(
    world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    """A fault whose effect never shows (a confirm timeout) is reverted before inject() raises."""
    before = baseline(kube)
    sc = scenario("crash-loop-delete-pods")
    ledger = Ledger(tmp_path / "l.jsonl")
    handle_list: list[faults.FaultHandle] = []
    # the first crash comes 2-5 s after the annotation (the kwok Stage's delay): 0.5 s is too short to see it
    with pytest.raises(FaultError, match="no effect visible after 0s"):
        faults.inject(sc, injector, ledger, None, confirm_timeout=0.5, handles=handle_list)
    assert handle_list and handle_list[0].reverted
    assert ledger.pending() == []
    # kwok scheduled the crashes before the revert took the annotation off, and plays them anyway: the revert
    # waited them out, so none lands afterwards (in the next drill's world)
    def app_pods() -> dict[str, tuple[bool, int]]:
        pods = resources.list_objects(kube, "Pod", "production", label_selector="app=myapp")[0]
        return {
            p["metadata"]["name"]: (
                pod_ready(p),
                sum(c.get("restartCount", 0) for c in (p.get("status") or {}).get("containerStatuses") or []),
            )
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
        }

    settled = app_pods()
    assert settled and all(ready for ready, _ in settled.values()), settled
    time.sleep(6)
    assert app_pods() == settled
    assert wait_for_baseline(kube, before, timeout=120) == []


def test_chaostoolkit_experiment_runs_as_a_fault_and_its_rollback_runs_on_abort(
    world: ClusterHandle, kube: Kube, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("chaostoolkit-replicas-lost")
    before = baseline(kube)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with watched(world, injector, sc, tmp_path, ids) as w:
        handle = faults.inject(sc, injector, ledger, w.journal, scenario_dir=SCENARIOS, confirm_timeout=30)
        dep = resources.get(kube, "Deployment", "app", "production")
        assert dep is not None and dep["spec"]["replicas"] == 1  # the experiment's method ran for real
        (op,) = ledger.pending()[0].ops
        assert isinstance(op, ChaosToolkitRollbacks) and op.rollbacks == 1
        handle.revert(reason="drill aborted")
        wait_until(lambda: bool(w.of(ChaosToolkitEvent, phase="rollbacks-completed")), 30, "the rollbacks")
        # the watch reports the rollback's scale a moment after Chaos Toolkit says it is done
        wait_until(lambda: len(w.of(ActionObserved, kind=ActionKind.SCALE)) >= 2, 30, "the scale back")
    phases = [e.phase for e in w.of(ChaosToolkitEvent)]
    # the hypothesis' own probes are activities too, reported as each completes
    assert [p for p in phases if p != "activity"][:3] == ["started", "hypothesis-before", "method-started"]
    assert "activity" in phases[phases.index("hypothesis-before") + 1 :]
    assert "finished" in phases and phases.index("rollbacks-started") > phases.index("finished")
    rollback = [
        e for e in w.of(ChaosToolkitEvent, phase="activity") if e.detail["name"].startswith("scale-app-back")
    ]
    assert rollback and rollback[0].detail["status"] == "succeeded"
    # the scale by Chaos Toolkit ran with drills' identity: the observer says so
    scales = w.of(ActionObserved, kind=ActionKind.SCALE)
    assert [s.actor for s in scales] == ["drills:injector", "drills:injector"]
    assert ledger.pending() == []
    assert wait_for_baseline(kube, before) == []


def test_a_chaostoolkit_ref_step_runs_as_chaos_run_runs_it(
    world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    """A method step `{"ref": ...}` re-runs the named probe (chaoslib's activity cache is filled)."""
    corpus = Path(__file__).parent / "ctk"
    sc = variant(
        "chaostoolkit-terminate-pod", {"kind": "chaostoolkit", "experiment": str(corpus / "valid-ref.json")}
    )
    before = baseline(kube)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    events: list[Any] = []

    class Sink:
        def append(self, event: Any) -> None:
            events.append(event)

    handle = faults.inject(sc, injector, ledger, Sink(), scenario_dir=corpus, confirm_timeout=30)
    handle.revert(reason="test over")
    activities = [e.detail for e in events if isinstance(e, ChaosToolkitEvent) and e.phase == "activity"]
    counted = [a for a in activities if a["name"] == "count-app-pods"]
    assert len(counted) == 2, activities  # the probe, then the ref to it
    assert all(a["status"] == "succeeded" for a in activities), activities
    assert wait_for_baseline(kube, before) == []
