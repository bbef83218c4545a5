"""Pod kill: delete N pods (or a percentage) of the target, as a node crash or an OOM killer would.

There is nothing to put back: the ReplicaSet controller replaces the pods, and that replacement is exactly
the self-healing a chaos test checks (the observer credits it to the controller, never to the responder).
The revert is therefore a no-op recorded in the ledger, so a crash mid-drill still closes cleanly.
"""

from __future__ import annotations

from typing import Any

from drills.adapters.faults.base import Injector, PlannedChange, count_for
from drills.adapters.kube import resources as r
from drills.engine.health import match_labels_selector
from drills.engine.safety import BlastRadius
from drills.errors import FaultError
from drills.model.scenario import PodKillFault


class PodKill(Injector):
    summary = "delete N pods or a percentage of the target's pods"
    kind = "pod-kill"
    fault: PodKillFault

    @property
    def target(self) -> str:
        if self.fault.selector:
            return f"Pod/{self.namespace}/{self.fault.selector}"
        return f"Deployment/{self.namespace}/{self.workload}"

    def _selector(self) -> str:
        if self.fault.selector:
            return self.fault.selector
        dep = self.deployment()
        return match_labels_selector(dep["spec"]["selector"].get("matchLabels") or {})

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        selector = self._selector()
        pods, _ = r.list_objects(self.kube, "Pod", self.namespace, label_selector=selector)
        live = sorted(
            (p for p in pods if not p["metadata"].get("deletionTimestamp")),
            key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]),
        )
        if not live:
            raise FaultError(f"pod-kill: no running pods match {selector!r} in {self.namespace}")
        n = count_for(len(live), count=self.fault.count, percent=self.fault.percent)
        victims = live[:n]
        self._victims = {p["metadata"]["name"]: p["metadata"]["uid"] for p in victims}
        changes = [
            PlannedChange("DELETE", "Pod", self.namespace, p["metadata"]["name"], "delete the pod")
            for p in victims
        ]
        radius = BlastRadius(pods=n, target_pods=len(live), namespaces=frozenset({self.namespace}))
        ops = [{"op": "none", "why": f"{n} killed pods are replaced by their controller"}]
        return changes, radius, ops

    def effect(self) -> str | None:
        gone = 0
        for name, uid in self._victims.items():
            pod = r.get(self.kube, "Pod", name, self.namespace)
            if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
                gone += 1
        return f"{gone} of {len(self._victims)} pods killed" if gone == len(self._victims) else None
