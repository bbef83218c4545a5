"""Configuration faults: a broken ConfigMap value, a Secret deleted, a Secret rotated under the app's feet.

The object change is real (a patch or a delete through the API). kwok runs no application that would read
the new value, so drills plays the application's reaction on the pods that consume the object (the target
workload's pods, when its template references the ConfigMap or Secret): a wrong ``DATABASE_URL`` or a
vanished Secret makes them crash (a start-up check fails), a rotated API key makes them fail readiness,
through the same ``drills.io/fault`` annotation the pod faults use. Consequence, as with a real app that
reads its config at start: restoring the object is not enough, the pods must be restarted
(``kubectl rollout restart``), which makes fresh, clean pods. Known gap: pods created *while* the object
is still broken come up healthy, because nothing in kwok reads the object (on kind, the fixture app does).

The revert restores the recorded data (or recreates the deleted Secret) and removes the annotations. Secret
values never reach the journal (events carry names only); the ledger keeps the baseline (mode 0600).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from drills.adapters.faults.base import (
    POD_FAULT_ANNOTATION,
    Injector,
    PlannedChange,
    pod_trouble,
    require_pod_fault_stages,
)
from drills.adapters.faults.revert import restore_op
from drills.adapters.kube import resources as r
from drills.engine.safety import BlastRadius
from drills.errors import NotFound
from drills.model.scenario import BrokenConfigFault, SecretFault


def references(template_spec: Mapping[str, Any], kind: str, name: str) -> bool:
    """Whether a pod spec reads the ConfigMap/Secret ``name`` (env, envFrom or a volume)."""
    ref_key = "configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef"
    from_key = "configMapRef" if kind == "ConfigMap" else "secretRef"
    for c in [*(template_spec.get("containers") or []), *(template_spec.get("initContainers") or [])]:
        for e in c.get("env") or []:
            if ((e.get("valueFrom") or {}).get(ref_key) or {}).get("name") == name:
                return True
        for src in c.get("envFrom") or []:
            if (src.get(from_key) or {}).get("name") == name:
                return True
    for v in template_spec.get("volumes") or []:
        if kind == "ConfigMap" and (v.get("configMap") or {}).get("name") == name:
            return True
        if kind == "Secret" and (v.get("secret") or {}).get("secretName") == name:
            return True
        for s in (v.get("projected") or {}).get("sources") or []:
            key = "configMap" if kind == "ConfigMap" else "secret"
            if (s.get(key) or {}).get("name") == name:
                return True
    return False


class _ConfigFault(Injector):
    object_kind: ClassVar[str]
    #: What consuming pods do: the value of the pod fault annotation.
    reaction: ClassVar[str]

    def _object_name(self) -> str:
        raise NotImplementedError

    def _object_changes(self, obj: dict[str, Any]) -> tuple[list[PlannedChange], list[dict[str, Any]]]:
        raise NotImplementedError

    def _object_effect(self) -> str | None:
        raise NotImplementedError

    @property
    def target(self) -> str:
        return f"{self.object_kind}/{self.namespace}/{self._object_name()}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        obj = r.get(self.kube, self.object_kind, self._object_name(), self.namespace)
        if obj is None:
            raise NotFound(
                f"{self.kind}: {self.object_kind} {self.namespace}/{self._object_name()} does not exist",
                hint="check the scenario's fault; is the fixture world applied (`drill cluster up`)?",
            )
        changes, ops = self._object_changes(obj)
        dep = self.deployment()
        pods = (
            self.pods_of(dep)
            if references(dep["spec"]["template"]["spec"], self.object_kind, obj["metadata"]["name"])
            else []
        )
        if pods:
            require_pod_fault_stages(self.kube)
        self._consumers = [p["metadata"]["name"] for p in pods]
        for p in pods:
            changes.append(
                PlannedChange(
                    "PATCH",
                    "Pod",
                    self.namespace,
                    p["metadata"]["name"],
                    f"the app reads the new {self.object_kind.lower()} and reacts: annotate "
                    f"{POD_FAULT_ANNOTATION}={self.reaction}",
                    {"metadata": {"annotations": {POD_FAULT_ANNOTATION: self.reaction}}},
                    patch_type="merge",
                )
            )
            ops.append(restore_op(p, [["metadata", "annotations", POD_FAULT_ANNOTATION]]))
        replicas = int(dep["spec"].get("replicas", 1))
        radius = BlastRadius(
            pods=len(pods), target_pods=max(replicas, 1), namespaces=frozenset({self.namespace})
        )
        return changes, radius, ops

    def effect(self) -> str | None:
        seen = self._object_effect()
        if not seen:
            return None
        if not self._consumers:
            return seen + " (no pod of the target reads it)"
        for name in self._consumers:
            pod = r.get(self.kube, "Pod", name, self.namespace)
            trouble = pod_trouble(pod) if pod else None
            if trouble:
                return f"{seen}; pod {name}: {trouble}"
        return None


class BrokenConfig(_ConfigFault):
    summary = "a ConfigMap key set to a broken value; the app's pods crash"
    kind = "broken-config"
    object_kind = "ConfigMap"
    reaction = "crash"
    fault: BrokenConfigFault

    def _object_name(self) -> str:
        return self.fault.configmap

    def _object_changes(self, obj: dict[str, Any]) -> tuple[list[PlannedChange], list[dict[str, Any]]]:
        f = self.fault
        change = PlannedChange(
            "PATCH",
            "ConfigMap",
            self.namespace,
            f.configmap,
            f"set {f.key}={f.value}",
            {"data": {f.key: f.value}},
            patch_type="merge",
        )
        return [change], [restore_op(obj, [["data", f.key]])]

    def _object_effect(self) -> str | None:
        cm = r.get(self.kube, "ConfigMap", self.fault.configmap, self.namespace)
        if cm and (cm.get("data") or {}).get(self.fault.key) == self.fault.value:
            return f"ConfigMap {self.fault.configmap} has {self.fault.key}={self.fault.value}"
        return None


class _SecretFault(_ConfigFault):
    object_kind = "Secret"
    fault: SecretFault

    def _object_name(self) -> str:
        return self.fault.secret


class SecretMissing(_SecretFault):
    summary = "a Secret deleted; the app's pods crash"
    kind = "secret-missing"
    reaction = "crash"

    def _object_changes(self, obj: dict[str, Any]) -> tuple[list[PlannedChange], list[dict[str, Any]]]:
        self._uid = obj["metadata"]["uid"]
        change = PlannedChange("DELETE", "Secret", self.namespace, self.fault.secret, "delete the Secret")
        return [change], [
            {"op": "recreate", "object": r.strip_for_create(obj), "paths": [["data"], ["type"]]}
        ]

    def _object_effect(self) -> str | None:
        s = r.get(self.kube, "Secret", self.fault.secret, self.namespace)
        if s is None or s["metadata"]["uid"] != self._uid:
            return f"Secret {self.fault.secret} is gone"
        return None


class SecretRotated(_SecretFault):
    summary = "a Secret key rotated under the app; its pods fail readiness"
    kind = "secret-rotated"
    reaction = "unready"

    def _object_changes(self, obj: dict[str, Any]) -> tuple[list[PlannedChange], list[dict[str, Any]]]:
        # a fresh random value: never the old one, never a value anyone could guess from the scenario
        self._new = base64.b64encode(secrets.token_urlsafe(24).encode()).decode()
        change = PlannedChange(
            "PATCH",
            "Secret",
            self.namespace,
            self.fault.secret,
            f"rotate key {self.fault.key} to a new random value (the app still uses the old one)",
            {"data": {self.fault.key: "<new random value>"}},
            patch_type="merge",
        )
        return [change], [restore_op(obj, [["data", self.fault.key]])]

    def execute(self, change: PlannedChange) -> None:
        if change.kind == "Secret":
            # the printed plan shows a placeholder; the request carries the real new value
            change = PlannedChange(
                change.verb,
                change.kind,
                change.namespace,
                change.name,
                change.summary,
                {"data": {self.fault.key: self._new}},
                change.patch_type,
            )
        super().execute(change)

    def _object_effect(self) -> str | None:
        s = r.get(self.kube, "Secret", self.fault.secret, self.namespace)
        if s and (s.get("data") or {}).get(self.fault.key) == self._new:
            return f"Secret {self.fault.secret} key {self.fault.key} rotated"
        return None
