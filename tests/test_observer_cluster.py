"""The observer on the real cluster: attribution by the audit log (a responder's rollout undo is the
responder's rollback; a pod replaced by its ReplicaSet and a self-healing scenario are the controllers'),
evidence reads, drains, the bot's and drills' writes, a namespace lost and restored, the managedFields
fallback, and surviving a kube-apiserver restart without missing a transition (the journal compared with
the audit log).

With ``DRILLS_RECORD_DIR`` set, each test also records what its observer received into
``$DRILLS_RECORD_DIR/<case>.jsonl.gz``: the recordings tests/test_observer_replay.py replays (docs/observer.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_support import Watched, drill_started, scenario, wait_until, watched

from drills.adapters import faults
from drills.adapters.clusters.binaries import kubectl_binary
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.faults.ledger import Ledger
from drills.adapters.kube import identities, resources
from drills.adapters.kube.audit import AuditRecord
from drills.adapters.kube.client import Kube
from drills.adapters.kube.recording import recorded
from drills.adapters.store.journal import Journal
from drills.engine.timeline import compute_clocks
from drills.model.events import ActionKind, ActionObserved, ActorKind, HealthChanged, Note
from drills.model.scenario import Scenario
from drills.timing import SYSTEM_CLOCK as CLOCK

pytestmark = pytest.mark.cluster

RECORD_DIR = os.environ.get("DRILLS_RECORD_DIR")


@contextlib.contextmanager
def observed(
    handle: ClusterHandle,
    kube: Kube,
    sc: Scenario,
    directory: Path,
    ids: identities.Identities | None,
    case: str,
    *,
    audit: bool = True,
) -> Iterator[Watched]:
    """The observer writing a journal, as ``watched`` does; recorded as ``case`` when DRILLS_RECORD_DIR is
    set."""
    if not RECORD_DIR and audit:
        with watched(handle, kube, sc, directory, ids) as w:
            yield w
        return
    path = directory / "journal.jsonl"
    journal = Journal.create(path, drill_started(sc))
    audit_log = handle.audit_log if audit else None
    if not RECORD_DIR:
        from drills.adapters.kube.observer import Observer

        with Observer(kube, sc, audit_log=audit_log, identities=ids, on_event=journal.append) as obs:
            yield Watched(journal, obs, path)
        return
    out = Path(RECORD_DIR) / f"{case}.jsonl.gz"
    with recorded(kube, sc, out, audit_log=audit_log, identities=ids, on_event=journal.append) as obs:
        yield Watched(journal, obs, path)


def as_responder(ids: identities.Identities, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(kubectl_binary()), "--kubeconfig", str(ids.responder.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def actions(events: list[ActionObserved], kind: ActionKind) -> list[ActionObserved]:
    return [e for e in events if e.kind == kind]


def test_responders_rollout_undo_is_their_rollback_and_their_log_read_is_evidence(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    data = scenario("bad-deploy-rollback").model_dump(mode="json")
    data["steady_state"]["healthy_for"] = "5s"  # so the mitigation is confirmed within the test
    sc = Scenario.model_validate(data)
    with observed(world, injector, sc, tmp_path, ids, "rollout-undo") as w:
        handle = faults.inject(sc, injector, Ledger(tmp_path / "l.jsonl"), w.journal)
        handle.confirm(60)
        wait_until(lambda: any(not e.healthy for e in w.of(HealthChanged)), 60, "unhealthy")
        crashing = next(
            p["metadata"]["name"]
            for p in resources.list_objects(injector, "Pod", "production", label_selector="app=myapp")[0]
            if any(c["image"] == "myapp:v2.1.0" for c in p["spec"]["containers"])
        )
        as_responder(ids, "logs", "-n", "production", crashing, "--previous")
        as_responder(ids, "rollout", "undo", "deployment/app", "-n", "production")
        wait_until(
            lambda: bool(w.of(ActionObserved, kind=ActionKind.ROLLBACK, actor_kind=ActorKind.RESPONDER)),
            30,
            "the responder's rollback",
        )
        wait_until(lambda: w.of(HealthChanged)[-1].healthy, 120, "healthy after the rollback")
        CLOCK.sleep(6)  # the healthy period lasts the exit window
        handle.revert()
    (rollback,) = w.of(ActionObserved, kind=ActionKind.ROLLBACK, actor_kind=ActorKind.RESPONDER)
    assert rollback.actor == "drills:responder:tester" and rollback.attribution == "audit"
    assert rollback.object == "Deployment/production/app" and "myapp:v2.0.0" in rollback.detail
    (evidence,) = w.of(ActionObserved, kind=ActionKind.EVIDENCE_READ)
    assert evidence.actor_kind == ActorKind.RESPONDER and evidence.object == f"Pod/production/{crashing}"
    assert evidence.detail == "read the logs of the previous container"
    (image,) = w.of(ActionObserved, actor_kind=ActorKind.DRILLS, object="Deployment/production/app")[:1]
    assert image.actor == "drills:injector"
    clocks = compute_clocks(w.events())
    assert clocks.mitigated_by == "human"


def test_a_fault_injected_again_is_drills_change_not_a_rollback(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    """The second time a bad deploy goes in, its template is already in the rollout history (the first
    time's ReplicaSet): going back to it is the fault, not a rollback anyone chose."""
    sc = scenario("bad-deploy-rollback")
    first = faults.inject(sc, injector, Ledger(tmp_path / "first.jsonl"), None)
    first.confirm(60)
    first.revert()
    with observed(world, injector, sc, tmp_path, ids, "fault-reinjected") as w:
        handle = faults.inject(sc, injector, Ledger(tmp_path / "second.jsonl"), w.journal)
        handle.confirm(60)
        wait_until(
            lambda: bool(
                w.of(ActionObserved, actor_kind=ActorKind.DRILLS, object="Deployment/production/app")
            ),
            30,
            "the injection seen",
        )
        handle.revert()
        wait_until(
            lambda: len(w.of(ActionObserved, object="Deployment/production/app")) >= 2, 30, "the revert"
        )
    changes = w.of(ActionObserved, object="Deployment/production/app")
    assert changes and all(c.actor_kind == ActorKind.DRILLS for c in changes), changes
    assert not [c for c in changes if c.kind == ActionKind.ROLLBACK], changes
    assert changes[0].kind in (ActionKind.IMAGE_CHANGED, ActionKind.ENV_CHANGED), changes[0]
    assert "same template as revision" in (changes[0].detail or ""), changes[0]


def test_pods_replaced_by_the_replicaset_are_the_controllers_and_self_healing_is_the_systems(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    data = scenario("pod-kill-self-healing").model_dump(mode="json")
    data["steady_state"]["healthy_for"] = "5s"
    sc = Scenario.model_validate(data)
    with observed(world, injector, sc, tmp_path, ids, "pod-kill-self-healing") as w:
        handle = faults.inject(sc, injector, Ledger(tmp_path / "l.jsonl"), w.journal)
        handle.confirm(30)
        wait_until(
            lambda: len(w.of(ActionObserved, kind=ActionKind.POD_CREATED)) >= 1, 30, "a replacement pod"
        )
        wait_until(
            lambda: w.of(HealthChanged)[-1].healthy and any(not e.healthy for e in w.of(HealthChanged)),
            120,
            "a dip and the return of health",
        )
        CLOCK.sleep(sc.steady_state.healthy_for.total_seconds() + 1)
        handle.revert()
    (killed,) = w.of(ActionObserved, kind=ActionKind.POD_DELETED)
    assert killed.actor_kind == ActorKind.DRILLS and killed.actor == "drills:injector"
    for created in w.of(ActionObserved, kind=ActionKind.POD_CREATED):
        assert created.actor_kind == ActorKind.CONTROLLER
        assert created.actor == "kube-controller-manager/replicaset-controller"
    assert not w.of(ActionObserved, actor_kind=ActorKind.RESPONDER)
    clocks = compute_clocks(w.events())
    assert clocks.mitigated_by == "system"


def test_a_responders_pod_delete_is_theirs_and_the_replacement_the_controllers(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("crash-loop-delete-pods")
    with observed(world, injector, sc, tmp_path, ids, "responder-deletes-pod") as w:
        victim = resources.list_objects(injector, "Pod", "production", label_selector="app=myapp")[0][0]
        as_responder(ids, "delete", "pod", "-n", "production", victim["metadata"]["name"])
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.POD_CREATED)), 30, "the replacement")
    (deleted,) = w.of(ActionObserved, kind=ActionKind.POD_DELETED)
    assert deleted.actor_kind == ActorKind.RESPONDER and deleted.destructive
    (created,) = w.of(ActionObserved, kind=ActionKind.POD_CREATED)
    assert created.actor_kind == ActorKind.CONTROLLER and created.at >= deleted.at


def test_a_responders_drain_is_cordon_evictions_and_drain(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("node-not-ready-drain")
    pods = resources.list_objects(injector, "Pod", "production", label_selector="app=myapp")[0]
    node = pods[0]["spec"]["nodeName"]
    with observed(world, injector, sc, tmp_path, ids, "responder-drains-node") as w:
        as_responder(ids, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s")
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.DRAIN)), 30, "the drain")
        as_responder(ids, "uncordon", node)
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.UNCORDON)), 30, "the uncordon")
    for kind in (ActionKind.CORDON, ActionKind.DRAIN, ActionKind.UNCORDON):
        (a,) = w.of(ActionObserved, kind=kind)
        assert a.actor_kind == ActorKind.RESPONDER, a
    evictions = w.of(ActionObserved, kind=ActionKind.EVICT)
    assert evictions and all(e.actor_kind == ActorKind.RESPONDER for e in evictions)


def test_without_an_audit_log_managed_fields_stand_in_and_the_journal_says_so(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("load-spike-scale")
    with observed(world, injector, sc, tmp_path, ids, "managed-fields-scale", audit=False) as w:
        as_responder(ids, "scale", "deployment/app", "-n", "production", "--replicas=4")
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.SCALE)), 30, "the scale")
    (note,) = w.of(Note)
    assert "managedFields" in note.text
    (scale,) = w.of(ActionObserved, kind=ActionKind.SCALE)
    assert scale.attribution == "managed-fields" and scale.actor_kind == ActorKind.RESPONDER
    assert scale.actor == "kubectl"  # the field manager kubectl names itself on the scale subresource


def as_bot(ids: identities.Identities, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(kubectl_binary()), "--kubeconfig", str(ids.bot.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_bots_scale_and_env_change_are_the_bots_and_drills_config_write_is_drills(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("dependency-outage-circuit-breaker")
    with observed(world, injector, sc, tmp_path, ids, "bot-and-drills-writes") as w:
        as_bot(ids, "scale", "deployment/app", "-n", "production", "--replicas=4")
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.SCALE)), 30, "the bot's scale")
        as_bot(ids, "set", "env", "deployment/app", "-n", "production", "CIRCUIT_BREAKER_ENABLED=true")
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.ENV_CHANGED)), 30, "the env change")
        resources.patch(injector, "ConfigMap", "app-config", "production", {"data": {"DRILL_MARK": "1"}})
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.CONFIG_CHANGED)), 30, "the config")
    (scale,) = w.of(ActionObserved, kind=ActionKind.SCALE)
    assert (scale.actor, scale.actor_kind, scale.detail) == ("drills:bot", ActorKind.BOT, "replicas 3 -> 4")
    (env,) = w.of(ActionObserved, kind=ActionKind.ENV_CHANGED)
    assert env.actor_kind == ActorKind.BOT and env.detail == "env changed: CIRCUIT_BREAKER_ENABLED"
    (config,) = w.of(ActionObserved, kind=ActionKind.CONFIG_CHANGED)
    assert config.actor == "drills:injector" and config.actor_kind == ActorKind.DRILLS
    assert config.detail == "keys changed: DRILL_MARK"
    # the pods the env change rolled out are the ReplicaSet controller's
    created = w.of(ActionObserved, kind=ActionKind.POD_CREATED)
    assert created and all(c.actor_kind == ActorKind.CONTROLLER for c in created)
    assert not w.of(ActionObserved, actor_kind=ActorKind.RESPONDER)


def test_a_responders_selector_change_and_deployment_delete_are_theirs(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("readiness-set-selector")
    with observed(world, injector, sc, tmp_path, ids, "responder-selector-and-delete") as w:
        as_responder(ids, "set", "selector", "service/app", "-n", "production", "app=myapp,healthy=true")
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.SELECTOR_CHANGED)), 30, "the selector")
        as_responder(ids, "delete", "deployment", "db-proxy", "-n", "production", "--wait=false")
        wait_until(lambda: bool(w.of(ActionObserved, kind=ActionKind.DELETED)), 30, "the deletion")
    (selector,) = w.of(ActionObserved, kind=ActionKind.SELECTOR_CHANGED)
    assert selector.actor_kind == ActorKind.RESPONDER and selector.object == "Service/production/app"
    assert selector.detail.endswith("-> app=myapp,healthy=true"), selector.detail
    (deleted,) = w.of(ActionObserved, kind=ActionKind.DELETED)
    assert deleted.object == "Deployment/production/db-proxy" and deleted.destructive
    assert deleted.actor == "drills:responder:tester" and deleted.attribution == "audit"


def test_a_lost_namespace_and_its_restore_are_drills_and_the_cleanup_the_controllers(
    world: ClusterHandle, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("quarterly-dr-namespace-lost")
    with observed(world, injector, sc, tmp_path, ids, "namespace-lost-restored") as w:
        handle = faults.inject(sc, injector, Ledger(tmp_path / "l.jsonl"), w.journal)
        wait_until(
            lambda: bool(w.of(ActionObserved, kind=ActionKind.DELETED, object="Namespace/production")),
            60,
            "the namespace deleted",
        )
        wait_until(lambda: any(not e.healthy for e in w.of(HealthChanged)), 60, "unhealthy")
        handle.revert()
        wait_until(
            lambda: bool(w.of(ActionObserved, kind=ActionKind.CREATED, object="Namespace/production")),
            90,
            "the namespace restored",
        )
        wait_until(lambda: w.of(HealthChanged)[-1].healthy, 120, "healthy after the restore")
    (lost,) = w.of(ActionObserved, kind=ActionKind.DELETED, object="Namespace/production")
    assert lost.actor_kind == ActorKind.DRILLS and lost.destructive
    (restored,) = w.of(ActionObserved, kind=ActionKind.CREATED, object="Namespace/production")
    assert restored.actor_kind == ActorKind.DRILLS and restored.at > lost.at
    # the namespace controller emptying it is nobody's doing in the drill: never the responder's or the bot's
    cleanup = [e for e in w.of(ActionObserved) if e.at > lost.at and e.object != "Namespace/production"]
    assert cleanup and not [e for e in cleanup if e.actor_kind in (ActorKind.RESPONDER, ActorKind.BOT)]


# ---- an API server restart mid-drill ------------------------------------------------------------------


def restart_apiserver(handle: ClusterHandle) -> float:
    """Kill the kube-apiserver (SIGKILL, as a crash) and start it again with the same command line, as a
    supervisor would; the seconds it was down."""
    assert handle.workdir is not None
    pid_file = handle.workdir / "pids" / "kube-apiserver.pid"
    pid = int(pid_file.read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    cwd = os.readlink(f"/proc/{pid}/cwd")
    started = CLOCK.monotonic()
    os.kill(pid, signal.SIGKILL)
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0:
        CLOCK.sleep(0.01)
    CLOCK.sleep(1.0)  # really down for a moment: watches break, clients see connection refused
    log = handle.workdir / "logs" / "kube-apiserver.log"
    # started detached (not a child this test keeps), like kwokctl's own; `drill cluster down` stops it by PID
    launched = subprocess.run(
        [
            "bash",
            "-c",
            'cd "$1" && shift && { setsid "$@" >>"$LOG" 2>&1 & echo $!; }',
            "start",
            cwd,
            *[c.decode() for c in cmdline],
        ],
        env=dict(os.environ, LOG=str(log)),
        capture_output=True,
        text=True,
        check=True,
    )
    pid_file.write_text(launched.stdout.strip())
    kube = handle.kube(timeout=2)
    wait_until(lambda: _answers(kube), 60, "the API server back")
    return CLOCK.monotonic() - started


def _answers(kube: Kube) -> bool:
    try:
        kube.ping()
    except Exception:
        return False
    return True


def test_observer_survives_an_apiserver_restart_and_misses_no_transition(
    world: ClusterHandle, kube: Kube, injector: Kube, ids: identities.Identities, tmp_path: Path
) -> None:
    sc = scenario("bad-deploy-rollback")
    assert world.audit_log is not None
    start = CLOCK.now()
    with observed(world, injector, sc, tmp_path, ids, "apiserver-restart") as w:
        resources.patch(kube, "Deployment", "app", "production", {"spec": {"replicas": 4}})
        wait_until(lambda: len(w.of(ActionObserved, kind=ActionKind.SCALE)) == 1, 30, "the first scale")
        down = restart_apiserver(world)
        # right after the restart, before the watches have necessarily reconnected
        resources.patch(kube, "Deployment", "app", "production", {"spec": {"replicas": 5}})
        resources.patch(kube, "Deployment", "app", "production", {"spec": {"replicas": 3}})
        wait_until(
            lambda: any(s.detail.endswith("-> 3") for s in w.of(ActionObserved, kind=ActionKind.SCALE)),
            90,
            "the last scale",
        )
        stats = w.observer.stats["Deployment"]
        assert stats.reconnects + stats.gone >= 1, vars(stats)
        wait_until(lambda: w.of(HealthChanged)[-1].healthy, 120, "healthy")
    scales = w.of(ActionObserved, kind=ActionKind.SCALE)
    details = [s.detail for s in scales]
    # Whether the watch resumed (each version seen) or had to re-list (writes folded into one change, the
    # earlier ones journaled as "re-listing"): each write is one action. A write the client retried through
    # the restarting API server is two writes (the audit log has both): the comparison below counts them.
    assert details[0] == "replicas 3 -> 4" and details[-1].endswith("-> 3") and len(details) >= 3, details
    # the journal against the audit log: every scale write there is one scale here, same time, same writer
    audit = [
        AuditRecord.parse(json.loads(line))
        for line in world.audit_log.read_text().splitlines()
        if '"deployments"' in line and '"app"' in line
    ]
    writes = [
        a
        for a in audit
        if a is not None
        and a.at >= start
        and a.ok
        and a.verb == "patch"
        and a.subresource is None
        and a.user not in ("drills:injector",)
    ]
    assert [a.at for a in writes] == [s.at for s in scales], (
        down,
        [(a.at, a.verb, a.subresource, a.user) for a in writes],
        [(s.at, s.detail, s.actor, s.attribution) for s in scales],
    )
    assert all(s.actor.startswith(a.user) for a, s in zip(writes, scales, strict=True))
    assert all(s.attribution == "audit" for s in scales)
