"""The world's baseline on disk, read from the cluster, and put back (``drill cluster reset``).

:mod:`drills.engine.world` says what the world is and how it differs; this module lists the objects, keeps
the baseline in a file beside the cluster (so it goes with ``drill cluster down``), and restores it. The
baseline holds each object's manifest without what the API server fills in, so a restore can re-create a
deleted Deployment or Service. Secrets are the exception: the file keeps a digest of their data, never the
values, so a Secret that was deleted or rotated is reported and left for people to restore from their own
source (on the embedded cluster the fixtures re-create it first).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.engine.world import WORLD_KINDS, WorldDifference, differences, hpa_targets, world_state
from drills.errors import ClusterError, JournalError, NotFound

FILE_VERSION = 1
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


@dataclass
class Baseline:
    """The world as it was when the baseline was taken: desired states and restorable manifests."""

    taken_at: str
    namespaces: list[str]
    state: dict[str, Any]
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def covers(self, namespaces: Iterable[str]) -> bool:
        return set(namespaces) <= set(self.namespaces)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": FILE_VERSION,
                "taken_at": self.taken_at,
                "namespaces": self.namespaces,
                "state": self.state,
                "manifests": self.manifests,
            },
            indent=1,
            sort_keys=True,
        )


def manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a restore would send it: no status, no server-set metadata, no secret values."""
    out = {k: v for k, v in obj.items() if k not in ("status",)}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    out["metadata"] = meta
    if obj.get("kind") == "Secret":
        out.pop("data", None)
        out.pop("stringData", None)
    if obj.get("kind") == "Service":
        spec = dict(out.get("spec") or {})
        for key in ("clusterIP", "clusterIPs"):
            spec.pop(key, None)
        out["spec"] = spec
    return out


def read_world(kube: Kube, namespaces: Iterable[str]) -> list[dict[str, Any]]:
    """The world's objects in ``namespaces`` (the kinds of :data:`WORLD_KINDS`) and the nodes."""
    objects: list[dict[str, Any]] = []
    for ns in sorted(set(namespaces)):
        for kind in WORLD_KINDS:
            objects += r.list_objects(kube, kind, ns)[0]
    objects += r.list_objects(kube, "Node")[0]
    return objects


def take(kube: Kube, namespaces: Iterable[str], at: datetime) -> Baseline:
    objects = read_world(kube, namespaces)
    state = world_state(objects)
    manifests = {
        ref: manifest(obj) for obj in objects if obj.get("kind") != "Node" and (ref := r.ref(obj)) in state
    }
    return Baseline(at.isoformat(), sorted(set(namespaces)), state, manifests)


def load(path: Path) -> Baseline | None:
    """The baseline kept at ``path``, or None when none was taken yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise JournalError(f"cannot read the world's baseline {path}: {e.strerror}") from e
    try:
        data = json.loads(text)
        return Baseline(
            taken_at=str(data["taken_at"]),
            namespaces=list(data["namespaces"]),
            state=dict(data["state"]),
            manifests=dict(data.get("manifests") or {}),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise JournalError(
            f"{path}: not a world baseline drills can read ({e})",
            hint="take a new one with `drill cluster baseline --record` once the world is as it should be",
        ) from e


def save(path: Path, baseline: Baseline) -> None:
    """Write atomically (a crash leaves the old baseline or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(baseline.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def extend(kube: Kube, baseline: Baseline, namespaces: Iterable[str], at: datetime) -> Baseline:
    """The baseline with the namespaces it did not cover yet taken as they are now (nodes stay as recorded)."""
    new = sorted(set(namespaces) - set(baseline.namespaces))
    if not new:
        return baseline
    more = take(kube, new, at)
    state = {**baseline.state, **{k: v for k, v in more.state.items() if not k.startswith("Node/")}}
    return Baseline(
        baseline.taken_at,
        sorted({*baseline.namespaces, *new}),
        dict(sorted(state.items())),
        {**baseline.manifests, **more.manifests},
    )


def _in_scope(ref: str, namespaces: Iterable[str]) -> bool:
    parts = ref.split("/")
    return parts[0] == "Node" or (len(parts) == 3 and parts[1] in set(namespaces))


def compare(kube: Kube, baseline: Baseline, namespaces: Iterable[str] | None = None) -> list[WorldDifference]:
    """How the world differs from ``baseline`` now, in ``namespaces`` (default: all the baseline covers)."""
    scope = list(namespaces) if namespaces is not None else baseline.namespaces
    current = world_state(read_world(kube, scope), hpa_owned=hpa_targets(baseline.manifests.values()))
    expected = {k: v for k, v in baseline.state.items() if _in_scope(k, scope)}
    return differences(expected, current)


@dataclass(frozen=True)
class Restore:
    restored: list[str]
    #: What drills could not put back, each with why (a Secret's values, an API error).
    left: list[str]


def restore(kube: Kube, baseline: Baseline, diffs: Sequence[WorldDifference]) -> Restore:
    """Put back what ``diffs`` found: re-create, replace with the baseline, delete what was added."""
    restored: list[str] = []
    left: list[str] = []
    # Re-create in the order a namespace needs (config before the workloads that mount it), delete last.
    order = {kind: i for i, kind in enumerate(WORLD_KINDS)}
    for diff in sorted(diffs, key=lambda d: (d.change == "added", order.get(d.ref.split("/")[0], 99))):
        kind, _, rest = diff.ref.partition("/")
        try:
            if kind == "Node":
                _restore_node(kube, rest, baseline.state.get(diff.ref) or {})
            elif diff.change == "added":
                ns, name = rest.split("/", 1)
                r.delete(kube, kind, name, ns)
            elif kind == "Secret":
                left.append(
                    f"{diff.describe()}: drills keeps no secret values; restore it from your own source"
                )
                continue
            else:
                _put_back(kube, baseline.manifests[diff.ref])
        except (ClusterError, KeyError) as e:
            left.append(f"{diff.describe()}: {e}")
            continue
        restored.append(diff.describe())
    return Restore(restored, left)


def _put_back(kube: Kube, wanted: dict[str, Any]) -> None:
    meta = wanted["metadata"]
    current = r.get(kube, wanted["kind"], meta["name"], meta.get("namespace"))
    body = json.loads(json.dumps(wanted))
    if current is None:
        r.create(kube, body)
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    if wanted["kind"] == "Service":
        # A Service keeps the IP it was allocated: changing it is refused by the API server.
        for key in ("clusterIP", "clusterIPs"):
            if key in (current.get("spec") or {}):
                body.setdefault("spec", {})[key] = current["spec"][key]
    r.replace(kube, body)


def _restore_node(kube: Kube, name: str, wanted: dict[str, Any]) -> None:
    current = r.get(kube, "Node", name)
    if current is None:
        raise NotFound(f"node {name} is gone: drills cannot bring back a node")
    controller_taints = [
        t
        for t in (current.get("spec") or {}).get("taints") or []
        if str(t.get("key", "")).startswith("node.kubernetes.io/")
        and not (t.get("key") == "node.kubernetes.io/unschedulable" and not wanted.get("unschedulable"))
    ]
    people_taints = []
    for text in wanted.get("taints") or []:
        key_value, _, effect = str(text).rpartition(":")
        key, _, value = key_value.partition("=")
        taint: dict[str, str] = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        people_taints.append(taint)
    with contextlib.suppress(NotFound):
        r.patch(
            kube,
            "Node",
            name,
            None,
            {
                "spec": {
                    "unschedulable": bool(wanted.get("unschedulable")) or None,
                    "taints": (controller_taints + people_taints) or None,
                }
            },
        )
