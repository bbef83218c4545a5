"""The world a drill runs in, as people configured it, and what a drill left different from it.

A drill must leave the world as it found it: the fault's own revert undoes what drills changed, but the
responders change things too (a `kubectl delete deployment db-proxy`, a `kubectl scale`, an HPA made with
`kubectl autoscale`, a cordoned node), and the next drill must not start from a world that is silently broken.
So drills keeps a *baseline* of each drill namespace and of the nodes, compares the world with it after every
drill (what was left behind) and before every drill (refuses to start from a world that differs).

What counts is the desired state people set, not what controllers do with it: a Deployment's spec (without
the restart annotation `kubectl rollout restart` stamps, and without ``replicas`` when an HPA of the baseline
drives it), a Service's selector and ports (not the cluster IP the API server allocates), a ConfigMap's data, a
Secret's type and a digest of its data (never the values), PDB and HPA specs, and a node's cordon and the taints
people set (not the ``node.kubernetes.io/*`` taints the node controller manages). Pure: plain dicts in, plain
values out; reading the cluster is :mod:`drills.adapters.kube.world`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: The kinds of a drill namespace that make up its world, in the order a restore re-creates them.
WORLD_KINDS: tuple[str, ...] = (
    "ConfigMap",
    "Secret",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
)

#: Annotations that tools and controllers write on their own, which say nothing about the desired state.
_NOISE_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubectl.kubernetes.io/restartedAt",
    "deployment.kubernetes.io/revision",
    "kubernetes.io/change-cause",
    "autoscaling.alpha.kubernetes.io/conditions",
    "autoscaling.alpha.kubernetes.io/current-metrics",
)
#: Service fields the API server allocates or defaults: a re-created Service gets new ones, and is the same.
_SERVICE_ALLOCATED = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort")
_CONTROLLER_TAINT_PREFIX = "node.kubernetes.io/"

Change = Literal["missing", "added", "changed"]


@dataclass(frozen=True)
class WorldDifference:
    """One way the world differs from its baseline: ``Kind/namespace/name`` and what differs."""

    ref: str
    change: Change
    #: The top-level fields that differ (``spec.replicas``, ``data``...), for ``changed``.
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.change == "missing":
            return f"{self.ref} is missing (it was in the baseline)"
        if self.change == "added":
            return f"{self.ref} was added (it is not in the baseline)"
        return f"{self.ref} differs: {', '.join(self.fields) or 'its desired state'}"

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "change": self.change, "fields": list(self.fields), "text": self.describe()}


def _ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def _clean_annotations(meta: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOISE_ANNOTATIONS}


def _template_without_noise(spec: dict[str, Any]) -> None:
    template_meta = (spec.get("template") or {}).get("metadata")
    if isinstance(template_meta, dict):
        annotations = _clean_annotations(template_meta)
        if annotations:
            template_meta["annotations"] = annotations
        else:
            template_meta.pop("annotations", None)
        template_meta.pop("creationTimestamp", None)


def hpa_targets(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """``Kind/namespace/name`` of the workloads an HPA among ``objects`` scales."""
    targets: set[str] = set()
    for obj in objects:
        if obj.get("kind") != "HorizontalPodAutoscaler":
            continue
        ref = ((obj.get("spec") or {}).get("scaleTargetRef")) or {}
        ns = (obj.get("metadata") or {}).get("namespace")
        targets.add(f"{ref.get('kind')}/{ns}/{ref.get('name')}")
    return targets


def desired_state(obj: Mapping[str, Any], *, autoscaled: bool = False) -> dict[str, Any]:
    """What people set on ``obj``, without what the API server and controllers fill in.

    ``autoscaled``: an HPA of the baseline drives the workload's replicas, so they are not part of it.
    """
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    state: dict[str, Any] = {"labels": dict(meta.get("labels") or {})}
    annotations = _clean_annotations(meta)
    if annotations:
        state["annotations"] = annotations
    if kind == "ConfigMap":
        state["data"] = dict(obj.get("data") or {})
        if obj.get("binaryData"):
            state["binaryData"] = dict(obj["binaryData"])
    elif kind == "Secret":
        # Only a digest: secret values never leave the cluster through drills.
        payload = json.dumps(obj.get("data") or {}, sort_keys=True).encode()
        state["type"] = obj.get("type", "Opaque")
        state["data_sha256"] = hashlib.sha256(payload).hexdigest()
    elif kind == "Node":
        spec = obj.get("spec") or {}
        state = {
            "unschedulable": bool(spec.get("unschedulable", False)),
            "taints": sorted(
                (
                    f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                    for t in spec.get("taints") or []
                    if not str(t.get("key", "")).startswith(_CONTROLLER_TAINT_PREFIX)
                ),
            ),
        }
    else:
        spec = copy.deepcopy(dict(obj.get("spec") or {}))
        if kind == "Service":
            for key in _SERVICE_ALLOCATED:
                spec.pop(key, None)
            for port in spec.get("ports") or []:
                if spec.get("type") not in ("NodePort", "LoadBalancer"):
                    port.pop("nodePort", None)
        if kind == "Deployment":
            _template_without_noise(spec)
            if autoscaled:
                spec.pop("replicas", None)
        state["spec"] = spec
    return state


def world_state(objects: Iterable[Mapping[str, Any]], *, hpa_owned: set[str] | None = None) -> dict[str, Any]:
    """``ref -> desired state`` for the world's objects (kinds in :data:`WORLD_KINDS`, and nodes).

    ``hpa_owned``: workloads whose replicas an HPA drives (by default, the HPAs among ``objects``).
    """
    objs = [o for o in objects if o.get("kind") in (*WORLD_KINDS, "Node")]
    owned = hpa_targets(objs) if hpa_owned is None else hpa_owned
    state: dict[str, Any] = {}
    for obj in objs:
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            continue  # on its way out: as good as gone
        ref = _ref(obj)
        state[ref] = desired_state(obj, autoscaled=ref in owned)
    return dict(sorted(state.items()))


def _differing_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        fields: list[str] = []
        for key in sorted(set(before) | set(after)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                fields.append(name)
            elif before[key] != after[key]:
                # Two levels are enough to say what differs (spec.replicas, spec.template), not a diff tool.
                fields.extend(
                    _differing_fields(before[key], after[key], name) if name.count(".") < 1 else [name]
                )
        return fields
    return [prefix] if before != after else []


def differences(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[WorldDifference]:
    """How ``current`` differs from ``baseline`` (both from :func:`world_state`), in a stable order."""
    found: list[WorldDifference] = []
    for ref in sorted(set(baseline) | set(current)):
        if ref not in current:
            found.append(WorldDifference(ref, "missing"))
        elif ref not in baseline:
            if not ref.startswith("Node/"):  # a node added to the cluster is capacity, not drift
                found.append(WorldDifference(ref, "added"))
        elif baseline[ref] != current[ref]:
            found.append(
                WorldDifference(ref, "changed", tuple(_differing_fields(baseline[ref], current[ref])))
            )
    return found


def summary(diffs: Iterable[WorldDifference], limit: int = 6) -> str:
    """One line for an error message or the end of a drill: the first few differences, then a count."""
    items = [d.describe() for d in diffs]
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")
