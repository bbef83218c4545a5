"""Namespace lost, the quarterly DR drill: the whole namespace is deleted and must be restored from backups.

Before deleting, drills captures every object people put in the namespace (Deployments, Services, ConfigMaps,
Secrets, PDBs, HPAs, ServiceAccounts, Roles, RoleBindings; not what controllers make from them: ReplicaSets,
Pods, EndpointSlices, the default ServiceAccount and root CA ConfigMap, token Secrets). The revert waits until
the namespace is really gone (it passes through Terminating), recreates it and re-applies every captured
object; objects the responder already restored from the backup are brought back to the captured spec.
"""

from __future__ import annotations

from typing import Any

from drills.adapters.faults.base import Injector, PlannedChange
from drills.adapters.kube import resources as r
from drills.engine.safety import BlastRadius
from drills.errors import NotFound
from drills.model.scenario import NamespaceLostFault

CAPTURED_KINDS = (
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Role",
    "RoleBinding",
    "Service",
    "PodDisruptionBudget",
    "Deployment",
    "HorizontalPodAutoscaler",
)


def _made_by_the_cluster(obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    if meta.get("ownerReferences"):
        return True
    kind, name = obj["kind"], meta["name"]
    if kind == "ServiceAccount" and name == "default":
        return True
    if kind == "ConfigMap" and name == "kube-root-ca.crt":
        return True
    return kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token"


def capture_namespace(kube: Any, namespace: str) -> list[dict[str, Any]]:
    """The objects of a namespace worth restoring, ready to POST again, in dependency order."""
    captured: list[dict[str, Any]] = []
    for kind in CAPTURED_KINDS:
        items, _ = r.list_objects(kube, kind, namespace)
        captured.extend(r.strip_for_create(o) for o in items if not _made_by_the_cluster(o))
    return captured


class NamespaceLost(Injector):
    summary = "the whole namespace deleted (quarterly DR: restore from backups)"
    kind = "namespace-lost"
    fault: NamespaceLostFault

    @property
    def target(self) -> str:
        return f"Namespace/{self.namespace}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        ns = r.get(self.kube, "Namespace", self.namespace)
        if ns is None:
            raise NotFound(f"namespace-lost: namespace {self.namespace} does not exist")
        self._uid = ns["metadata"]["uid"]
        objects = capture_namespace(self.kube, self.namespace)
        pods, _ = r.list_objects(self.kube, "Pod", self.namespace)
        kinds = sorted({o["kind"] for o in objects})
        change = PlannedChange(
            "DELETE",
            "Namespace",
            None,
            self.namespace,
            f"delete namespace {self.namespace} with its {len(objects)} objects ({', '.join(kinds)}) "
            f"and {len(pods)} pods",
        )
        radius = BlastRadius(
            pods=len(pods), target_pods=max(len(pods), 1), namespaces=frozenset({self.namespace})
        )
        ops = [{"op": "namespace", "object": r.strip_for_create(ns), "objects": objects}]
        return [change], radius, ops

    def effect(self) -> str | None:
        ns = r.get(self.kube, "Namespace", self.namespace)
        if ns is None or ns["metadata"]["uid"] != self._uid:
            return f"namespace {self.namespace} is gone"
        if ns["metadata"].get("deletionTimestamp"):
            return f"namespace {self.namespace} is Terminating"
        return None
