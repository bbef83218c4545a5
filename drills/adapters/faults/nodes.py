"""Node faults: a node goes NotReady, a node is lost (heartbeat stops), a drain gets stuck on a PDB.

Nodes are kwok's: a label (``drills.io/fault``) makes our Stages report NotReady, or stop the heartbeat so
the node-lifecycle controller itself marks the node Unknown, taints it and, after the toleration, evicts its
pods, as it would for a machine that vanished. The revert removes the label; the controllers do the rest
(the node reports Ready again and the node-lifecycle controller lifts its taints), so "back at baseline" is
reached by the cluster, not faked by us.

Unless the scenario names a node, the fault picks the node(s) running most of the target's pods (ties by
name), so the fault is felt. Pods of system namespaces on a node count against the safety rails, except
DaemonSet pods (on a real cluster, every node runs some; ``kubectl drain --ignore-daemonsets`` ignores them
too).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from drills.adapters.faults.base import NODE_FAULT_LABEL, Injector, PlannedChange, node_trouble
from drills.adapters.faults.revert import restore_op
from drills.adapters.kube import resources as r
from drills.engine.health import match_labels_selector
from drills.engine.impact import NODE_PARTITIONED
from drills.engine.safety import BlastRadius
from drills.errors import FaultError, NotFound
from drills.model.scenario import NodeDrainStuckFault, NodeLostFault, NodeNotReadyFault, NodePartitionFault

DRAIN_GUARD_PDB = "{workload}-drain-guard"


def _is_daemonset_pod(pod: dict[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])


class _NodeFault(Injector):
    label_value: ClassVar[str]
    words: ClassVar[str]

    def _count(self) -> int:
        return int(getattr(self.fault, "nodes", 1))

    @property
    def target(self) -> str:
        chosen = getattr(self, "_nodes", None)
        return "Node/" + ",".join(chosen) if chosen else f"Node/({self.kind})"

    def _choose_nodes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(chosen nodes, all live pods on them)."""
        nodes, _ = r.list_objects(self.kube, "Node")
        by_name = {n["metadata"]["name"]: n for n in nodes}
        wanted = getattr(self.fault, "node", None)
        if wanted:
            if wanted not in by_name:
                raise NotFound(
                    f"{self.kind}: node {wanted!r} does not exist (nodes: {', '.join(sorted(by_name))})"
                )
            chosen = [by_name[wanted]]
        else:
            dep = self.deployment()
            selector = match_labels_selector(dep["spec"]["selector"].get("matchLabels") or {})
            target_pods, _ = r.list_objects(self.kube, "Pod", self.namespace, label_selector=selector)
            per_node = Counter(p["spec"].get("nodeName") for p in target_pods if p["spec"].get("nodeName"))
            ranked = sorted(by_name, key=lambda n: (-per_node.get(n, 0), n))
            if len(ranked) < self._count():
                raise FaultError(f"{self.kind}: wants {self._count()} nodes, the cluster has {len(ranked)}")
            chosen = [by_name[n] for n in ranked[: self._count()]]
        chosen_names = {n["metadata"]["name"] for n in chosen}
        all_pods, _ = r.list_objects(self.kube, "Pod")
        on_nodes = [
            p
            for p in all_pods
            if p["spec"].get("nodeName") in chosen_names and not p["metadata"].get("deletionTimestamp")
        ]
        return chosen, on_nodes

    def _node_radius(self, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> BlastRadius:
        counted = [p for p in pods if not _is_daemonset_pod(p)]
        dep = r.get(self.kube, "Deployment", self.workload, self.namespace)
        target_pods = int(dep["spec"].get("replicas", 1)) if dep else len(counted)
        return BlastRadius(
            pods=len(counted),
            nodes=len(nodes),
            target_pods=max(target_pods, 1),
            namespaces=frozenset(p["metadata"]["namespace"] for p in counted),
        )

    def _label_changes(self, nodes: list[dict[str, Any]]) -> tuple[list[PlannedChange], list[dict[str, Any]]]:
        changes = [
            PlannedChange(
                "PATCH",
                "Node",
                None,
                n["metadata"]["name"],
                f"label {NODE_FAULT_LABEL}={self.label_value}: the node {self.words}",
                {"metadata": {"labels": {NODE_FAULT_LABEL: self.label_value}}},
                patch_type="merge",
            )
            for n in nodes
        ]
        ops = [restore_op(n, [["metadata", "labels", NODE_FAULT_LABEL]]) for n in nodes]
        return changes, ops

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        nodes, pods = self._choose_nodes()
        self._nodes = [n["metadata"]["name"] for n in nodes]
        changes, ops = self._label_changes(nodes)
        return changes, self._node_radius(nodes, pods), ops

    def effect(self) -> str | None:
        seen = []
        for name in self._nodes:
            node = r.get(self.kube, "Node", name)
            trouble = node_trouble(node) if node else "gone"
            if not trouble:
                return None
            seen.append(f"{name} {trouble}")
        return "; ".join(seen)


class NodeNotReady(_NodeFault):
    summary = "the busiest node(s) report NotReady"
    kind = "node-not-ready"
    label_value = "not-ready"
    words = "reports NotReady"
    fault: NodeNotReadyFault


class NodeLost(_NodeFault):
    """The heartbeat stops; the node-lifecycle controller notices after its grace period (~50 s)."""

    summary = "the busiest node(s) stop their heartbeat; the node controller takes over"
    kind = "node-lost"
    label_value = "lost"
    words = "stops its heartbeat, as if the machine vanished"
    fault: NodeLostFault


class NodePartition(_NodeFault):
    """The node is cut off the network: its pods stop serving, but its kubelet (kwok's) still reports Ready,
    so no controller moves anything and every probe that reads object state holds. Only the users (the
    model reads the node's ``impact.drills.io/partitioned`` annotation) see it. The fix is the seed's drain:
    ``kubectl drain`` evicts the pods, and the ReplicaSet starts them on reachable nodes."""

    summary = "the busiest node is cut off the network while it still reports Ready"
    kind = "node-partition"
    label_value = ""
    words = "is cut off the network (still Ready)"
    fault: NodePartitionFault

    def _count(self) -> int:
        return 1

    def _label_changes(self, nodes: list[dict[str, Any]]) -> tuple[list[PlannedChange], list[dict[str, Any]]]:
        changes = [
            PlannedChange(
                "PATCH",
                "Node",
                None,
                n["metadata"]["name"],
                f"annotate {NODE_PARTITIONED}=true: the node {self.words}",
                {"metadata": {"annotations": {NODE_PARTITIONED: "true"}}},
                patch_type="merge",
            )
            for n in nodes
        ]
        ops = [restore_op(n, [["metadata", "annotations", NODE_PARTITIONED]]) for n in nodes]
        return changes, ops

    def effect(self) -> str | None:
        seen = []
        for name in self._nodes:
            node = r.get(self.kube, "Node", name)
            if node is None or (node["metadata"].get("annotations") or {}).get(NODE_PARTITIONED) != "true":
                return None
            state = "still Ready" if node_trouble(node) is None else node_trouble(node)
            seen.append(f"{name} partitioned ({state})")
        return "; ".join(seen)


class NodeDrainStuck(_NodeFault):
    """A maintenance drain that hangs: the node is cordoned and a too-strict PodDisruptionBudget refuses every
    eviction, so the drain never finishes and the cluster runs with a node's worth of capacity missing.

    The PDB covering the target is tightened to allow no disruption (minAvailable = replicas), or one is
    created when none exists; ``kubectl drain`` then waits forever on "Cannot evict pod as it would violate
    the pod's disruption budget". The revert restores the PDB's recorded spec (or deletes the one it made)
    and the node's recorded ``spec.unschedulable``.
    """

    summary = "a node cordoned for a drain that a too-strict PDB blocks"
    kind = "node-drain-stuck"
    label_value = ""
    words = "is cordoned for a drain that cannot finish"
    fault: NodeDrainStuckFault

    def _count(self) -> int:
        return 1

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        nodes, pods = self._choose_nodes()
        node = nodes[0]
        self._nodes = [node["metadata"]["name"]]
        dep = self.deployment()
        replicas = int(dep["spec"].get("replicas", 1))
        match = dep["spec"]["selector"].get("matchLabels") or {}
        changes: list[PlannedChange] = []
        ops: list[dict[str, Any]] = []
        pdb = _pdb_covering(self, match)
        if pdb is not None:
            self._pdb = pdb["metadata"]["name"]
            changes.append(
                PlannedChange(
                    "PATCH",
                    "PodDisruptionBudget",
                    self.namespace,
                    self._pdb,
                    f"require all {replicas} pods available (minAvailable {replicas}): no eviction allowed",
                    {"spec": {"minAvailable": replicas, "maxUnavailable": None}},
                    patch_type="merge",
                )
            )
            ops.append(restore_op(pdb, [["spec", "minAvailable"], ["spec", "maxUnavailable"]]))
        else:
            self._pdb = DRAIN_GUARD_PDB.format(workload=self.workload)
            body = {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": self._pdb, "namespace": self.namespace},
                "spec": {"minAvailable": replicas, "selector": {"matchLabels": match}},
            }
            changes.append(
                PlannedChange(
                    "CREATE",
                    "PodDisruptionBudget",
                    self.namespace,
                    self._pdb,
                    f"a PodDisruptionBudget requiring all {replicas} pods: no eviction allowed",
                    body,
                )
            )
            ops.append(
                {
                    "op": "delete",
                    "kind": "PodDisruptionBudget",
                    "namespace": self.namespace,
                    "name": self._pdb,
                }
            )
        changes.append(
            PlannedChange(
                "PATCH",
                "Node",
                None,
                self._nodes[0],
                "cordon (spec.unschedulable: true), as `kubectl drain` does first",
                {"spec": {"unschedulable": True}},
                patch_type="merge",
            )
        )
        ops.append(restore_op(node, [["spec", "unschedulable"]]))
        return changes, self._node_radius(nodes, pods), ops

    def effect(self) -> str | None:
        node = r.get(self.kube, "Node", self._nodes[0])
        if not node or not (node.get("spec") or {}).get("unschedulable"):
            return None
        pdb = r.get(self.kube, "PodDisruptionBudget", self._pdb, self.namespace)
        if pdb is None or (pdb.get("status") or {}).get("disruptionsAllowed") != 0:
            return None
        return f"node {self._nodes[0]} cordoned; PodDisruptionBudget {self._pdb} allows 0 disruptions"


def _pdb_covering(inj: Injector, match: dict[str, str]) -> dict[str, Any] | None:
    """The namespace's PDB whose selector selects the workload's pods (its matchLabels are a subset)."""
    pdbs, _ = r.list_objects(inj.kube, "PodDisruptionBudget", inj.namespace)
    for p in pdbs:
        labels = ((p.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if labels and labels.items() <= match.items():
            return p
    return None
