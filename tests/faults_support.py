"""Helpers for the fault and observer tests against the real cluster: the baseline as compared object by
object, scenarios for fault kinds no shipped scenario uses, a drill journal with the observer writing to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.files.scenarios import load_scenario
from drills.adapters.kube import identities, resources
from drills.adapters.kube.client import Kube
from drills.adapters.kube.observer import Observer
from drills.adapters.store.journal import Journal, read_journal
from drills.adapters.store.paths import repo_root
from drills.model.events import DrillStarted, Event, Source
from drills.model.scenario import Scenario

SCENARIOS = repo_root() / "scenarios"
NAMESPACE = "production"
VOLATILE_ANNOTATIONS = {"deployment.kubernetes.io/revision"}
FAULT_ANNOTATIONS = ("drills.io/fault",)


def scenario(name: str) -> Scenario:
    return load_scenario(SCENARIOS / f"{name}.yaml")


def variant(base: str, fault: dict[str, Any], probes: list[dict[str, Any]] | None = None) -> Scenario:
    """A shipped scenario with another fault (for kinds no shipped scenario uses)."""
    data = scenario(base).model_dump(mode="json")
    data["faults"] = [fault]
    if probes is not None:
        data["steady_state"]["probes"] = probes
    data["id"] = f"{base}-{fault['kind']}"[:63]
    return Scenario.model_validate(data)


def _spec_view(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in VOLATILE_ANNOTATIONS}
    return {
        "spec": obj.get("spec"),
        "data": obj.get("data"),
        "type": obj.get("type"),
        "labels": meta.get("labels"),
        "annotations": ann,
    }


def baseline(kube: Kube) -> dict[str, Any]:
    """The world as compared before and after a fault: every object's spec (or data), labels, annotations;
    nodes' labels, schedulability and taints; per Deployment, its live pods' count and fault annotations."""
    view: dict[str, Any] = {}
    if resources.get(kube, "Namespace", NAMESPACE) is None:
        return {"Namespace/production": None}
    for kind in (
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ):
        for obj in resources.list_objects(kube, kind, NAMESPACE)[0]:
            if kind == "ConfigMap" and obj["metadata"]["name"] == "kube-root-ca.crt":
                continue
            view[resources.ref(obj)] = _spec_view(obj)
    for node in resources.list_objects(kube, "Node")[0]:
        spec = node.get("spec") or {}
        view[resources.ref(node)] = {
            "labels": node["metadata"].get("labels"),
            "unschedulable": bool(spec.get("unschedulable")),
            "taints": sorted((t["key"], t.get("effect")) for t in spec.get("taints") or []),
            "ready": any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (node.get("status") or {}).get("conditions") or []
            ),
        }
    pods = [
        p
        for p in resources.list_objects(kube, "Pod", NAMESPACE)[0]
        if not p["metadata"].get("deletionTimestamp")
    ]
    for dep in resources.list_objects(kube, "Deployment", NAMESPACE)[0]:
        labels = dep["spec"]["selector"].get("matchLabels") or {}
        mine = [p for p in pods if labels.items() <= (p["metadata"].get("labels") or {}).items()]
        template_ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
        view[f"pods of {dep['metadata']['name']}"] = {
            "ready": sum(
                1
                for p in mine
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions") or []
                )
            ),
            "fault annotations": sorted(
                f"{p['metadata']['name']}:{k}"
                for p in mine
                for k in FAULT_ANNOTATIONS
                if k in (p["metadata"].get("annotations") or {})
            ),
            "usage differs from template": sorted(
                p["metadata"]["name"]
                for p in mine
                if (p["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/usage-cpu")
                != template_ann.get("kwok.x-k8s.io/usage-cpu")
            ),
            "extra labels": sorted(
                f"{p['metadata']['name']}:{k}"
                for p in mine
                for k in (p["metadata"].get("labels") or {})
                if k == "healthy"
            ),
        }
    return view


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            out.append(f"{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return out


def wait_for_baseline(kube: Kube, before: dict[str, Any], timeout: float = 180.0) -> list[str]:
    """Wait until the world equals ``before`` again; the remaining differences (empty when it did)."""
    deadline = time.monotonic() + timeout
    while True:
        diffs = differences(before, baseline(kube))
        if not diffs or time.monotonic() > deadline:
            return diffs
        time.sleep(1.0)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def drill_started(sc: Scenario, drill_id: str = "test-drill") -> DrillStarted:
    return DrillStarted(
        at=datetime.now(UTC),
        source=Source.SYSTEM,
        actor="tests",
        drill_id=drill_id,
        scenario_id=sc.id,
        scenario_title=sc.title,
        category=sc.category,
        service=sc.service,
        namespace=sc.target.namespace,
        true_severity=sc.true_severity,
        healthy_for_seconds=sc.steady_state.healthy_for.total_seconds(),
    )


@dataclass
class Watched:
    journal: Journal
    observer: Observer
    path: Path

    def events(self) -> list[Event]:
        return list(read_journal(self.path).events)

    def of(self, cls: type[Any], **fields: Any) -> list[Any]:
        return [
            e
            for e in self.events()
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items())
        ]


@contextmanager
def watched(
    handle: ClusterHandle, kube: Kube, sc: Scenario, directory: Path, ids: identities.Identities | None
) -> Iterator[Watched]:
    """A journal for ``sc`` with the observer writing to it (audit attribution on), stopped at the end."""
    path = directory / "journal.jsonl"
    journal = Journal.create(path, drill_started(sc))
    observer = Observer(kube, sc, audit_log=handle.audit_log, identities=ids, on_event=journal.append)
    observer.start()
    try:
        yield Watched(journal, observer, path)
    finally:
        observer.stop()
