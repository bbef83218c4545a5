"""The observer replayed: recordings of the real cluster (tests/recordings/, made by the cluster tests with
DRILLS_RECORD_DIR, see docs/observer.md) fed back through the observer's own classification, audit join and
health pacing, on one thread with a FakeClock. Each test asserts what the matching test in
tests/test_observer_cluster.py asserts live, in milliseconds; and every replay must journal the actions the
live observer journaled while the recording was made."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from drills.adapters.kube import recording
from drills.errors import UsageError
from drills.model.events import ActionKind, ActionObserved, ActorKind, Event, HealthChanged, Note

RECORDINGS = Path(__file__).parent / "recordings"


def _path(case: str) -> Path:
    for name in (f"{case}.jsonl", f"{case}.jsonl.gz"):
        if (RECORDINGS / name).exists():
            return RECORDINGS / name
    raise AssertionError(f"no recording {case} in {RECORDINGS}: record it (docs/observer.md)")


@cache
def replayed(case: str) -> tuple[recording.Recording, tuple[Event, ...]]:
    rec = recording.load(_path(case))
    return rec, tuple(recording.replay(rec))


def of(events: tuple[Event, ...] | list[Event], cls: type[Any], **fields: Any) -> list[Any]:
    return [e for e in events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items())]


CASES = (
    "rollout-undo",
    "fault-reinjected",
    "pod-kill-self-healing",
    "responder-deletes-pod",
    "responder-drains-node",
    "managed-fields-scale",
    "bot-and-drills-writes",
    "responder-selector-and-delete",
    "namespace-lost-restored",
    "apiserver-restart",
)


def action_key(e: ActionObserved) -> tuple[str, str, str, str, str]:
    return (e.kind.value, e.actor or "", e.actor_kind.value, e.object, e.attribution or "")


#: Where the live observer that made a recording was wrong and the observer now is right: the live journal's
#: action, and what the replay journals instead. In namespace-lost-restored, kwok deletes the namespace's three
#: app pods, and their audit lines are written ~250 ms after the watch events (the first: received 37.035,
#: logged 37.295, its event 37.051). The observer then took a line missing 5 ms after the event as absent and
#: journaled each delete as unknown; it now waits up to AUDIT_LATE for a missing line, and finds the writer.
CORRECTED: dict[str, dict[tuple[str, str, str, str, str], tuple[str, str, str, str, str]]] = {
    "namespace-lost-restored": {
        ("pod_deleted", "unknown", "unknown", pod, "inferred"): (
            "pod_deleted",
            "kwok-admin (kwok-controller)",
            "controller",
            pod,
            "audit",
        )
        for pod in (f"Pod/production/app-5b4cdf9677-{n}" for n in ("f4fmw", "tfn72", "wb6v7"))
    }
}


@pytest.mark.parametrize("case", CASES)
def test_a_replay_journals_the_actions_the_live_observer_journaled(case: str) -> None:
    rec, events = replayed(case)
    fixes = CORRECTED.get(case, {})
    recorded = [action_key(e) for e in of(rec.journal, ActionObserved)]
    assert set(fixes) <= set(recorded), "a correction names an action the live journal has"
    live = sorted(fixes.get(k, k) for k in recorded)
    again = sorted(action_key(e) for e in of(events, ActionObserved))
    assert live, "the recording holds the live journal"
    assert again == live
    # and the health verdicts flip the same way; the live processor judges health after it has finished a
    # change, from what its watches cached meanwhile, while a replay judges on arrival: in the last moments
    # of a recording (the processor stopped behind its watches) the live observer may flip once more
    replayed_health = [e.healthy for e in of(events, HealthChanged)]
    live_health = [e.healthy for e in of(rec.journal, HealthChanged)]
    assert replayed_health == live_health[: len(replayed_health)], (replayed_health, live_health)
    assert len(live_health) - len(replayed_health) <= 1, (replayed_health, live_health)


def test_rollout_undo_is_the_responders_rollback_and_the_log_read_evidence() -> None:
    _, events = replayed("rollout-undo")
    (rollback,) = of(events, ActionObserved, kind=ActionKind.ROLLBACK, actor_kind=ActorKind.RESPONDER)
    assert rollback.actor == "drills:responder:tester" and rollback.attribution == "audit"
    assert rollback.object == "Deployment/production/app" and "myapp:v2.0.0" in rollback.detail
    (evidence,) = of(events, ActionObserved, kind=ActionKind.EVIDENCE_READ)
    assert evidence.actor_kind == ActorKind.RESPONDER and evidence.object.startswith("Pod/production/app-")
    assert evidence.detail == "read the logs of the previous container"
    (image,) = of(events, ActionObserved, actor_kind=ActorKind.DRILLS, object="Deployment/production/app")[:1]
    assert image.actor == "drills:injector"
    healthy = [e.healthy for e in of(events, HealthChanged)]
    assert healthy[0] and False in healthy and healthy[-1]


def test_a_fault_injected_again_is_drills_change_not_a_rollback() -> None:
    _, events = replayed("fault-reinjected")
    changes = of(events, ActionObserved, object="Deployment/production/app")
    assert changes and all(c.actor_kind == ActorKind.DRILLS for c in changes), changes
    assert not [c for c in changes if c.kind == ActionKind.ROLLBACK], changes
    assert changes[0].kind in (ActionKind.IMAGE_CHANGED, ActionKind.ENV_CHANGED), changes[0]
    assert "same template as revision" in (changes[0].detail or ""), changes[0]


def test_pods_replaced_by_the_replicaset_are_the_controllers() -> None:
    _, events = replayed("pod-kill-self-healing")
    (killed,) = of(events, ActionObserved, kind=ActionKind.POD_DELETED)
    assert killed.actor_kind == ActorKind.DRILLS and killed.actor == "drills:injector"
    created = of(events, ActionObserved, kind=ActionKind.POD_CREATED)
    assert created
    for c in created:
        assert c.actor_kind == ActorKind.CONTROLLER
        assert c.actor == "kube-controller-manager/replicaset-controller"
    assert not of(events, ActionObserved, actor_kind=ActorKind.RESPONDER)


def test_a_responders_pod_delete_is_theirs_and_the_replacement_the_controllers() -> None:
    _, events = replayed("responder-deletes-pod")
    (deleted,) = of(events, ActionObserved, kind=ActionKind.POD_DELETED)
    assert deleted.actor_kind == ActorKind.RESPONDER and deleted.destructive
    (created,) = of(events, ActionObserved, kind=ActionKind.POD_CREATED)
    assert created.actor_kind == ActorKind.CONTROLLER and created.at >= deleted.at


def test_a_responders_drain_is_cordon_evictions_and_drain() -> None:
    _, events = replayed("responder-drains-node")
    for kind in (ActionKind.CORDON, ActionKind.DRAIN, ActionKind.UNCORDON):
        (a,) = of(events, ActionObserved, kind=kind)
        assert a.actor_kind == ActorKind.RESPONDER, a
    evictions = of(events, ActionObserved, kind=ActionKind.EVICT)
    assert evictions and all(e.actor_kind == ActorKind.RESPONDER for e in evictions)
    (drain,) = of(events, ActionObserved, kind=ActionKind.DRAIN)
    assert drain.destructive and drain.object.startswith("Node/")


def test_without_an_audit_log_managed_fields_stand_in_and_the_journal_says_so() -> None:
    rec, events = replayed("managed-fields-scale")
    assert rec.attribution == "managed-fields"
    (note,) = of(events, Note)
    assert "managedFields" in note.text
    (scale,) = of(events, ActionObserved, kind=ActionKind.SCALE)
    assert scale.attribution == "managed-fields" and scale.actor_kind == ActorKind.RESPONDER
    assert scale.actor == "kubectl"


def test_the_bots_writes_are_the_bots_and_drills_config_write_is_drills() -> None:
    _, events = replayed("bot-and-drills-writes")
    (scale,) = of(events, ActionObserved, kind=ActionKind.SCALE)
    assert (scale.actor, scale.actor_kind, scale.detail) == ("drills:bot", ActorKind.BOT, "replicas 3 -> 4")
    (env,) = of(events, ActionObserved, kind=ActionKind.ENV_CHANGED)
    assert env.actor_kind == ActorKind.BOT and env.detail == "env changed: CIRCUIT_BREAKER_ENABLED"
    (config,) = of(events, ActionObserved, kind=ActionKind.CONFIG_CHANGED)
    assert config.actor == "drills:injector" and config.detail == "keys changed: DRILL_MARK"
    created = of(events, ActionObserved, kind=ActionKind.POD_CREATED)
    assert created and all(c.actor_kind == ActorKind.CONTROLLER for c in created)
    assert not of(events, ActionObserved, actor_kind=ActorKind.RESPONDER)


def test_a_responders_selector_change_and_deployment_delete_are_theirs() -> None:
    _, events = replayed("responder-selector-and-delete")
    (selector,) = of(events, ActionObserved, kind=ActionKind.SELECTOR_CHANGED)
    assert selector.actor_kind == ActorKind.RESPONDER and selector.object == "Service/production/app"
    assert selector.detail.endswith("-> app=myapp,healthy=true"), selector.detail
    (deleted,) = of(events, ActionObserved, kind=ActionKind.DELETED)
    assert deleted.object == "Deployment/production/db-proxy" and deleted.destructive
    assert deleted.actor == "drills:responder:tester" and deleted.attribution == "audit"


def test_a_lost_namespace_and_its_restore_are_drills() -> None:
    _, events = replayed("namespace-lost-restored")
    (lost,) = of(events, ActionObserved, kind=ActionKind.DELETED, object="Namespace/production")
    assert lost.actor_kind == ActorKind.DRILLS and lost.destructive
    (restored,) = of(events, ActionObserved, kind=ActionKind.CREATED, object="Namespace/production")
    assert restored.actor_kind == ActorKind.DRILLS and restored.at > lost.at
    cleanup = [e for e in of(events, ActionObserved) if e.at > lost.at and e.object != "Namespace/production"]
    assert cleanup and not [e for e in cleanup if e.actor_kind in (ActorKind.RESPONDER, ActorKind.BOT)]
    healthy = [e.healthy for e in of(events, HealthChanged)]
    assert healthy[0] and False in healthy and healthy[-1]


def test_an_apiserver_restart_misses_no_scale() -> None:
    rec, events = replayed("apiserver-restart")
    broken = [e for e in rec.entries if "error" in e or e.get("event", {}).get("type") == "ERROR"]
    assert broken, "the recording holds the broken watches"
    details = [s.detail for s in of(events, ActionObserved, kind=ActionKind.SCALE)]
    assert details[0] == "replicas 3 -> 4" and details[-1].endswith("-> 3") and len(details) >= 3, details
    scales = of(events, ActionObserved, kind=ActionKind.SCALE)
    assert all(s.attribution == "audit" for s in scales)
    # every scale write the recorded audit log holds is one scale here, at its time
    writes = sorted(
        {
            (a["stageTimestamp"], a["user"]["username"])
            for e in rec.entries
            if "audit" in e
            for a in e["audit"]
            if a["objectRef"].get("resource") == "deployments"
            and a["objectRef"].get("name") == "app"
            and a["verb"] == "patch"
            and "subresource" not in a["objectRef"]
            and a["user"]["username"] != "drills:injector"
            and 200 <= a["responseStatus"].get("code", 0) < 300
        }
    )
    assert [w[0] for w in writes] == [s.at.isoformat().replace("+00:00", "Z") for s in scales]


def test_a_replay_starts_no_threads() -> None:
    """A replay is a plain function call on the caller's thread (benchmarks/observer_coverage.py prints how
    long the replays take)."""
    import threading

    before = threading.active_count()
    for case in CASES:
        replayed(case)
    assert threading.active_count() == before


# ---- the recording format --------------------------------------------------------------------------------


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def header(**over: Any) -> dict[str, Any]:
    head: dict[str, Any] = json.loads(_read(_path("responder-deletes-pod")).splitlines()[0])
    head.update(over)
    return head


def _read(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode()


def test_a_bad_recording_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"x\.jsonl:1: not a drills watch recording"):
        recording.load(write(tmp_path / "x.jsonl", [{"hello": 1}]))
    bad = tmp_path / "y.jsonl"
    bad.write_text(json.dumps(header()) + "\n{not json\n")
    with pytest.raises(UsageError, match=r"y\.jsonl:2: not JSON"):
        recording.load(bad)
    with pytest.raises(UsageError, match=r"z\.jsonl:2: an entry needs a 't'"):
        recording.load(write(tmp_path / "z.jsonl", [header(), {"kind": "Pod"}]))
    with pytest.raises(UsageError, match=r"w\.jsonl:1: bad recording header"):
        recording.load(write(tmp_path / "w.jsonl", [header(started="yesterday")]))


def test_scrub_hides_configmap_values_but_keeps_their_changes() -> None:
    cm = {"metadata": {"name": "c"}, "data": {"PASSWORD": "hunter2", "B": "1"}}
    a, b = recording.scrub("ConfigMap", cm), recording.scrub("ConfigMap", {**cm, "data": {"PASSWORD": "x"}})
    assert "hunter2" not in json.dumps(a) and a["data"]["PASSWORD"] != b["data"]["PASSWORD"]
    assert cm["data"]["PASSWORD"] == "hunter2"  # a copy: the observer's own view is untouched


@pytest.mark.parametrize("case", CASES)
def test_recordings_are_small_and_hold_no_credentials(case: str) -> None:
    path = _path(case)
    assert path.stat().st_size < 200_000, f"{path} is {path.stat().st_size} bytes: record less"
    text = _read(path)
    for secret in ("BEGIN CERTIFICATE", "BEGIN RSA", "PRIVATE KEY", "client-certificate-data", 'token":'):
        assert secret not in text, (path, secret)


def test_a_replay_can_stream_its_events(tmp_path: Path) -> None:
    rec = recording.load(_path("responder-deletes-pod"))
    seen: list[Event] = []
    sink: Callable[[Event], None] = seen.append
    events = recording.replay(rec, on_event=sink)
    assert seen == events and of(events, ActionObserved)


# ---- paced: the observer's own threads (watch loops, reconnects, re-lists, the tail) fed a recording ------


def test_a_paced_replay_of_an_apiserver_restart_reconnects_and_misses_no_scale() -> None:
    rec = recording.load(_path("apiserver-restart"))
    events, observer = recording.paced_replay(rec, speed=10)
    stats = observer.stats["Deployment"]
    assert stats.reconnects + stats.gone >= 1, vars(stats)
    scales = of(events, ActionObserved, kind=ActionKind.SCALE)
    assert len(scales) >= 3 and all(s.attribution == "audit" for s in scales), scales
    assert [s.at for s in scales] == [s.at for s in of(rec.journal, ActionObserved, kind=ActionKind.SCALE)]


def test_a_paced_replay_without_an_audit_log_falls_back_to_managed_fields() -> None:
    rec = recording.load(_path("managed-fields-scale"))
    events, _ = recording.paced_replay(rec, speed=10)
    (note,) = of(events, Note)
    assert "managedFields" in note.text
    (scale,) = of(events, ActionObserved, kind=ActionKind.SCALE)
    assert (scale.attribution, scale.actor_kind, scale.actor) == (
        "managed-fields",
        ActorKind.RESPONDER,
        "kubectl",
    )


def test_a_drain_whose_cordon_reaches_its_watch_after_the_evictions_is_still_a_drain() -> None:
    """One watch per kind, each at its own pace: under load the Node watch can deliver the cordon after the
    Pod watch delivered the evictions (seen once on the cluster tier). The recorded drain, with the cordon
    moved behind the last eviction, must journal the same drain."""
    rec = recording.load(_path("responder-drains-node"))
    cordon = next(
        e
        for e in rec.entries
        if e.get("kind") == "Node"
        and "event" in e
        and (e["event"]["object"].get("spec") or {}).get("unschedulable")
    )
    evictions = [
        e
        for e in rec.entries
        if e.get("kind") == "Pod"
        and "event" in e
        and e["event"]["object"]["metadata"].get("deletionTimestamp")
    ]
    last = max(e["t"] for e in evictions)
    node = cordon["event"]["object"]["metadata"]["name"]
    held = [
        e
        for e in rec.entries
        if e.get("kind") == "Node"
        and "event" in e
        and e["event"]["object"]["metadata"]["name"] == node
        and cordon["t"] <= e["t"] <= last
    ]
    # the node's versions from the cordon on arrive after the last eviction, in their order
    late = [dict(e, t=last + 0.001 * (i + 1)) for i, e in enumerate(held)]
    entries = [e for e in rec.entries if not any(e is h for h in held) and "handled" not in e] + late
    moved = recording.Recording(**{**vars(rec), "entries": sorted(entries, key=lambda e: e["t"])})
    events = recording.replay(moved)
    (drain,) = of(events, ActionObserved, kind=ActionKind.DRAIN)
    assert drain.actor_kind == ActorKind.RESPONDER and drain.destructive
    (cordoned,) = of(events, ActionObserved, kind=ActionKind.CORDON)
    assert cordoned.actor_kind == ActorKind.RESPONDER
