"""Faults the virtual users make meaningful: a slow or erring dependency, one bad pod, a dependency's name
that no longer resolves.

On the embedded cluster kwok's pods serve nothing, so these faults change what the model of the users
(:mod:`drills.engine.impact`, docs/impact.md) reads from the cluster: an annotation on a pod or on a pod
template, or a Service that is gone. Kubernetes itself sees nothing wrong (the pods stay Running and Ready),
which is the point: only the users' metrics and the SLO alerts show these incidents, as in production.

- dependency-latency and dependency-errors annotate the dependency's **pod template** (a new rollout of
  db-proxy; every pod it starts from then on is slow or erring, so restarting pods does not help). The seed's
  fix is the circuit breaker on the callers; rolling the dependency back works too;
- partial-failure annotates the **newest pod(s)** of the target: the ReplicaSet's fresh pods are clean, so
  deleting the bad pod is the fix;
- dependency-dns deletes the dependency's **Service**: its name no longer resolves, so the callers fail at
  once (no timeout wait). The circuit breaker degrades the features instead.

Every revert is recorded in the ledger before the change (the template's, pod's or Service's baseline).
"""

from __future__ import annotations

from typing import Any, ClassVar

from drills.adapters.faults.base import Injector, PlannedChange, names, pod_trouble
from drills.adapters.faults.revert import restore_op
from drills.adapters.kube import resources as r
from drills.engine.impact import POD_ERROR_RATE, POD_EXTRA_LATENCY
from drills.engine.safety import BlastRadius
from drills.errors import FaultError, NotFound
from drills.model.scenario import (
    DependencyDnsFault,
    DependencyErrorsFault,
    DependencyLatencyFault,
    PartialFailureFault,
)


def _replicas(dep: dict[str, Any]) -> int:
    return int((dep.get("spec") or {}).get("replicas", 1))


def _annotation(obj: dict[str, Any], key: str) -> str | None:
    value = (obj["metadata"].get("annotations") or {}).get(key)
    return None if value is None else str(value)


class _DependencyTemplate(Injector):
    """Annotate the dependency's pod template: a rollout whose pods all answer the changed way."""

    annotation: ClassVar[str]
    words: ClassVar[str]

    def _value(self) -> str:
        raise NotImplementedError

    @property
    def dependency(self) -> str:
        return str(getattr(self.fault, "dependency"))  # noqa: B009 - both fault models have it

    @property
    def target(self) -> str:
        return f"Deployment/{self.namespace}/{self.dependency}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        dep = self.deployment(self.dependency)
        value = self._value()
        change = PlannedChange(
            "PATCH",
            "Deployment",
            self.namespace,
            self.dependency,
            f"annotate the pod template {self.annotation}={value}: every {self.dependency} pod {self.words}",
            {"spec": {"template": {"metadata": {"annotations": {self.annotation: value}}}}},
            patch_type="merge",
        )
        replicas = _replicas(dep)
        radius = BlastRadius(pods=replicas, target_pods=replicas, namespaces=frozenset({self.namespace}))
        ops = [restore_op(dep, [["spec", "template", "metadata", "annotations", self.annotation]])]
        return [change], radius, ops

    def effect(self) -> str | None:
        dep = self.deployment(self.dependency)
        value = self._value()
        serving = [p for p in self.pods_of(dep) if pod_trouble(p) is None]
        changed = [p for p in serving if _annotation(p, self.annotation) == value]
        if not changed:
            return None
        return f"{len(changed)} of {len(serving)} serving {self.dependency} pods {self.words}"


class DependencyLatency(_DependencyTemplate):
    summary = "the dependency (db-proxy) answers slowly; callers time out and retry (pod template annotation)"
    kind = "dependency-latency"
    fault: DependencyLatencyFault
    annotation = POD_EXTRA_LATENCY
    words = "answers slowly"

    def _value(self) -> str:
        return str(round(self.fault.latency.total_seconds() * 1000))


class DependencyErrors(_DependencyTemplate):
    summary = "a share of the dependency's (db-proxy) answers are errors (pod template annotation)"
    kind = "dependency-errors"
    fault: DependencyErrorsFault
    annotation = POD_ERROR_RATE
    words = "answers a share of calls with an error"

    def _value(self) -> str:
        return f"{self.fault.error_rate:g}"


class PartialFailure(Injector):
    """The newest ``count`` pods of the target fail ``error_rate`` of their requests; the others are fine."""

    summary = "one bad pod of N: the newest pod(s) fail a share of their requests; fresh pods are clean"
    kind = "partial-failure"
    fault: PartialFailureFault

    @property
    def target(self) -> str:
        return f"Deployment/{self.namespace}/{self.workload}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        dep = self.deployment()
        pods = self.pods_of(dep)
        if len(pods) <= self.fault.count:
            raise FaultError(
                f"{self.kind}: deployment {self.namespace}/{self.workload} runs {len(pods)} pods; "
                f"{self.fault.count} bad ones would leave no good one (that is an outage, not a partial failure)",
                hint="lower the fault's count, or use crash-loop or bad-deploy for a whole outage",
            )
        chosen = pods[-self.fault.count :]
        self._chosen = names(chosen)
        value = f"{self.fault.error_rate:g}"
        changes = [
            PlannedChange(
                "PATCH",
                "Pod",
                self.namespace,
                p["metadata"]["name"],
                f"annotate {POD_ERROR_RATE}={value}: the pod fails {self.fault.error_rate:.0%} of its requests",
                {"metadata": {"annotations": {POD_ERROR_RATE: value}}},
                patch_type="merge",
            )
            for p in chosen
        ]
        radius = BlastRadius(pods=len(chosen), target_pods=len(pods), namespaces=frozenset({self.namespace}))
        ops = [restore_op(p, [["metadata", "annotations", POD_ERROR_RATE]]) for p in chosen]
        return changes, radius, ops

    def effect(self) -> str | None:
        for name in self._chosen:
            pod = r.get(self.kube, "Pod", name, self.namespace)
            if pod is not None and _annotation(pod, POD_ERROR_RATE) is not None and pod_trouble(pod) is None:
                return f"pod {name} serves, and fails {self.fault.error_rate:.0%} of its requests"
        return None


class DependencyDns(Injector):
    """The dependency's Service is deleted: its name stops resolving while its pods run on."""

    summary = "the dependency's (db-proxy) name no longer resolves: its Service is gone"
    kind = "dependency-dns"
    fault: DependencyDnsFault

    @property
    def target(self) -> str:
        return f"Service/{self.namespace}/{self.fault.dependency}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        name = self.fault.dependency
        svc = r.get(self.kube, "Service", name, self.namespace)
        if svc is None:
            raise NotFound(
                f"{self.kind}: service {self.namespace}/{name} does not exist, so its name already fails",
                hint="check the fault's `dependency:`; is the fixture world applied (`drill cluster up`)?",
            )
        dep = r.get(self.kube, "Deployment", name, self.namespace)
        replicas = _replicas(dep) if dep else 1
        change = PlannedChange(
            "DELETE",
            "Service",
            self.namespace,
            name,
            f"delete service {name}: {name}.{self.namespace}.svc no longer resolves (its pods keep running)",
        )
        radius = BlastRadius(pods=replicas, target_pods=replicas, namespaces=frozenset({self.namespace}))
        ops = [
            {
                "op": "recreate",
                "object": r.strip_for_create(svc),
                "paths": [["spec", "selector"], ["spec", "ports"]],
            }
        ]
        return [change], radius, ops

    def effect(self) -> str | None:
        svc = r.get(self.kube, "Service", self.fault.dependency, self.namespace)
        if svc is not None and not svc["metadata"].get("deletionTimestamp"):
            return None
        return f"service {self.namespace}/{self.fault.dependency} is gone: its name does not resolve"
