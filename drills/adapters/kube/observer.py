"""The cluster observer: what changed, who changed it, and whether the service is healthy, as journal events.

A drill is scored on what really happened in the cluster, so drills watches it instead of asking the
responder. One thread per resource kind keeps a Kubernetes *watch* open (list, then watch from the list's
resourceVersion; bookmarks keep it current; on a dropped connection it reconnects with backoff from the last
resourceVersion; on ``410 Gone`` it lists again and turns the difference into changes, so nothing is missed,
not even across an API server restart). Every change lands in a shared watch cache (read by the monitoring
exporter: :attr:`Observer.cache`) and a queue; a processor thread turns changes into journal events:

- ``action.observed`` for what people and machines do: rollback (the pod template went back to an earlier
  ReplicaSet's), scale, autoscaler created, cordon / uncordon, drain (evictions on a cordoned node), pod
  deleted / created, Service selector changed, image or env changed, ConfigMap or Secret changed, and the
  evidence a responder reads (``kubectl logs``, from the audit log);
- ``health.changed`` when the scenario's steady-state verdict flips (:mod:`drills.engine.health`), judged
  on every relevant change and on a one-second tick (some probes depend on time alone).

Attribution joins each change with the API server's audit log (:mod:`drills.adapters.kube.audit`): the user
names drills' identities, the user agent names the controllers. A change the controllers made (a ReplicaSet
replacing a pod, an HPA scaling, a node coming back) is the controller's, never the responder's. Without an
audit log (a ``context`` cluster), managedFields managers stand in and every event says
``attribution="managed-fields"``. Secrets are watched as metadata only: their values never reach drills.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from drills.adapters.kube import resources as r
from drills.adapters.kube.audit import AuditIndex, AuditRecord, AuditTail
from drills.adapters.kube.client import Kube
from drills.adapters.kube.identities import Identities, actor_kind_for, grant
from drills.engine.health import Snapshot, Verdict, judge, node_ready
from drills.errors import DrillError
from drills.model.events import ActionKind, ActionObserved, ActorKind, Event, HealthChanged, Note, Source
from drills.model.scenario import (
    DeploymentAvailable,
    NoRestarts,
    PodsReady,
    Scenario,
    ServiceEndpoints,
)
from drills.timing import SYSTEM_CLOCK, Clock

log = logging.getLogger("drills.observer")

#: What the observer watches, in start order (the caches rollback detection needs come first).
WATCHED_KINDS: tuple[str, ...] = (
    "ReplicaSet",
    "Deployment",
    "Pod",
    "Node",
    "Service",
    "EndpointSlice",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ConfigMap",
    "Secret",
    "Event",
    "Namespace",
)
#: How long after a watch event its audit line is surely written (the API server logs as it answers).
AUDIT_LAG = timedelta(milliseconds=5)
HEALTH_KINDS = frozenset({"Deployment", "EndpointSlice", "Node", "Pod"})
METADATA_ONLY = frozenset({"Secret"})
TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"

Attribution = Literal["audit", "managed-fields", "inferred"]


@dataclass(frozen=True)
class Change:
    """One object change as the watch (or a re-list) delivered it."""

    kind: str
    type: str  # ADDED, MODIFIED, DELETED
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    received: datetime
    received_mono: float
    relisted: bool = False

    @property
    def obj(self) -> dict[str, Any]:
        obj = self.new if self.new is not None else self.old
        assert obj is not None
        return obj

    @property
    def namespace(self) -> str | None:
        ns = (self.obj.get("metadata") or {}).get("namespace")
        return str(ns) if ns else None

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass(frozen=True)
class Seen:
    """A change classified as an action, before we know who did it."""

    kind: ActionKind
    object: str
    detail: str
    resource: str
    namespace: str | None
    name: str | None
    verbs: frozenset[str] = frozenset({"update", "patch", "create", "delete"})
    subresources: frozenset[str | None] | None = frozenset({None})
    destructive: bool = False
    #: When no audit record matches: who it must have been (e.g. a node's own status), or None.
    default_actor: ActorKind | None = None
    #: The write cannot be older than this (a new object's creationTimestamp, to the second).
    not_before: datetime | None = None
    #: The field the action changed, for the managedFields fallback (its owner is the writer).
    field: tuple[str, ...] | None = None


# ---- the watch cache ------------------------------------------------------------------------------------


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name"))


class WatchCache:
    """The latest version of every watched object, by kind and namespace; thread-safe, read by others."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._rv: dict[str, str] = {}

    def list(self, kind: str, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """The cached objects of a kind (treat them as read-only)."""
        with self._lock:
            by_ns = self._objects.get(kind, {})
            if namespace is not None:
                return list(by_ns.get(namespace, {}).values())
            return [o for objs in by_ns.values() for o in objs.values()]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(kind, {}).get(namespace or "", {}).get(name)

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(len(v) for v in self._objects.get(kind, {}).values())

    def kinds(self) -> builtins.list[str]:
        with self._lock:
            return list(self._objects)

    def resource_version(self, kind: str) -> str | None:
        return self._rv.get(kind)

    def apply(self, kind: str, type_: str, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Store an event's object; the previous version (None if new)."""
        ns, name = _key(obj)
        with self._lock:
            by_ns = self._objects.setdefault(kind, {}).setdefault(ns, {})
            old = by_ns.get(name)
            if type_ == "DELETED":
                by_ns.pop(name, None)
            else:
                by_ns[name] = obj
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._rv[kind] = str(rv)
            return old

    def replace_all(
        self, kind: str, items: builtins.list[dict[str, Any]], rv: str
    ) -> builtins.list[tuple[str, Any, Any]]:
        """Swap in a fresh list; the differences as (type, old, new), so a re-list misses no transition."""
        fresh: dict[str, dict[str, dict[str, Any]]] = {}
        for obj in items:
            ns, name = _key(obj)
            fresh.setdefault(ns, {})[name] = obj
        diffs: builtins.list[tuple[str, Any, Any]] = []
        with self._lock:
            before = self._objects.get(kind, {})
            for ns, objs in fresh.items():
                for name, obj in objs.items():
                    old = before.get(ns, {}).get(name)
                    if old is None:
                        diffs.append(("ADDED", None, obj))
                    elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                        diffs.append(("MODIFIED", old, obj))
            for ns, objs in before.items():
                for name, old in objs.items():
                    if name not in fresh.get(ns, {}):
                        diffs.append(("DELETED", old, None))
            self._objects[kind] = fresh
            self._rv[kind] = rv
        return diffs


# ---- classification (pure: dicts in, Seen out) ----------------------------------------------------------


def _spec(o: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((o or {}).get("spec") or {})


def _meta(o: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((o or {}).get("metadata") or {})


def normalized_template(template: Mapping[str, Any] | None) -> str:
    """A pod template as comparable text: the ReplicaSet's hash label removed (a Deployment has none)."""
    t = json.loads(json.dumps(template or {}))
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(TEMPLATE_HASH, None)
    return json.dumps(t, sort_keys=True)


def _containers(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("name"): c for c in ((template.get("spec") or {}).get("containers") or [])}


def _env(c: Mapping[str, Any]) -> dict[str, str]:
    return {
        e.get("name"): json.dumps(e.get("valueFrom")) if "valueFrom" in e else str(e.get("value", ""))
        for e in c.get("env") or []
    }


def template_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[ActionKind, str]:
    """What kind of pod-template change this is (not counting rollbacks): image, env, restart or other."""
    oc, nc = _containers(old), _containers(new)
    images = [
        f"{n}: {oc[n].get('image')} -> {c.get('image')}"
        for n, c in nc.items()
        if n in oc and oc[n].get("image") != c.get("image")
    ]
    if images:
        return ActionKind.IMAGE_CHANGED, "; ".join(images)
    env_changes: list[str] = []
    for n, c in nc.items():
        if n not in oc:
            continue
        before, after = _env(oc[n]), _env(c)
        env_changes += [f"{k}" for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    if env_changes:
        # names only: values may be credentials
        return ActionKind.ENV_CHANGED, "env changed: " + ", ".join(env_changes)
    old_ann = dict((old.get("metadata") or {}).get("annotations") or {})
    new_ann = dict((new.get("metadata") or {}).get("annotations") or {})
    if old_ann.get("kubectl.kubernetes.io/restartedAt") != new_ann.get("kubectl.kubernetes.io/restartedAt"):
        return ActionKind.ROLLOUT, "rollout restart"
    return ActionKind.ROLLOUT, "pod template changed"


def _ref(kind: str, ns: str | None, name: str) -> str:
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def classify(change: Change, replicasets: Sequence[Mapping[str, Any]] = ()) -> list[Seen]:
    """The actions a change shows (none for status-only updates, which are the controllers' bookkeeping)."""
    kind, old, new = change.kind, change.old, change.new
    ns, name = change.namespace, change.name
    res = r.RESOURCES[kind].plural if kind in r.RESOURCES else kind.lower() + "s"
    obj_ref = _ref(kind, ns, name)

    def seen(action: ActionKind, detail: str, **kw: Any) -> Seen:
        return Seen(action, obj_ref, detail, res, ns, name, **kw)

    if change.type == "ADDED":
        if kind == "HorizontalPodAutoscaler":
            s = _spec(new)
            target = (s.get("scaleTargetRef") or {}).get("name")
            metrics = [
                m.get("resource", {}).get("target", {}).get("averageUtilization")
                for m in s.get("metrics") or []
            ]
            cpu = next((f", cpu {m}%" for m in metrics if m), "")
            return [
                seen(
                    ActionKind.AUTOSCALE,
                    f"autoscaler for {target}: min {s.get('minReplicas', 1)}, "
                    f"max {s.get('maxReplicas')}{cpu}",
                    verbs=frozenset({"create"}),
                )
            ]
        if kind == "Pod":
            owners = [o.get("kind") for o in _meta(new).get("ownerReferences") or []]
            return [
                Seen(
                    ActionKind.POD_CREATED,
                    obj_ref,
                    f"pod created ({', '.join(owners) or 'no owner'})",
                    "pods",
                    ns,
                    None,
                    verbs=frozenset({"create"}),
                    default_actor=ActorKind.CONTROLLER if owners else None,
                    not_before=_created(new),
                )
            ]
        if kind in ("Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Namespace"):
            return [seen(ActionKind.CREATED, f"{kind} created", verbs=frozenset({"create"}))]
        return []

    if change.type == "DELETED":
        if kind == "Pod":
            if _meta(old).get("deletionTimestamp"):
                return []  # already reported when the deletion began
            return [_pod_deleted(obj_ref, ns, name)]
        if kind in (
            "Deployment",
            "Service",
            "ConfigMap",
            "Secret",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "Namespace",
        ):
            return [
                seen(ActionKind.DELETED, f"{kind} deleted", verbs=frozenset({"delete"}), destructive=True)
            ]
        return []

    # MODIFIED
    assert old is not None and new is not None
    if kind == "Pod":
        out: list[Seen] = []
        if _meta(new).get("deletionTimestamp") and not _meta(old).get("deletionTimestamp"):
            out.append(_pod_deleted(obj_ref, ns, name))
        if _meta(old).get("labels") != _meta(new).get("labels"):
            # the scheduler's binding copies the node's topology labels onto the pod: that is a write too
            out.append(
                seen(
                    ActionKind.PATCHED,
                    "labels: " + _labels_diff(old, new),
                    subresources=frozenset({None, "binding", "status"}),
                    verbs=frozenset({"create", "update", "patch"}),
                )
            )
        return out
    if kind == "Deployment":
        return _deployment_changes(old, new, seen, replicasets)
    if kind == "Service":
        if _spec(old).get("selector") != _spec(new).get("selector"):
            return [
                seen(
                    ActionKind.SELECTOR_CHANGED,
                    f"selector {_fmt_labels(_spec(old).get('selector'))} -> {_fmt_labels(_spec(new).get('selector'))}",
                    field=("spec", "selector"),
                )
            ]
        if _spec(old) != _spec(new):
            return [seen(ActionKind.PATCHED, "service spec changed")]
        return []
    if kind == "ConfigMap":
        od, nd = old.get("data") or {}, new.get("data") or {}
        keys = sorted(k for k in set(od) | set(nd) if od.get(k) != nd.get(k))
        if not keys:
            return []
        return [seen(ActionKind.CONFIG_CHANGED, "keys changed: " + ", ".join(keys), field=("data", keys[0]))]
    if kind == "Secret":
        # metadata only: a new resourceVersion with the same labels is a data change (values never seen)
        if _meta(old).get("resourceVersion") != _meta(new).get("resourceVersion"):
            return [seen(ActionKind.SECRET_CHANGED, "secret changed (values not recorded)")]
        return []
    if kind == "Node":
        out = []
        was, now = bool(_spec(old).get("unschedulable")), bool(_spec(new).get("unschedulable"))
        if now and not was:
            out.append(seen(ActionKind.CORDON, f"node {name} cordoned", field=("spec", "unschedulable")))
        elif was and not now:
            out.append(seen(ActionKind.UNCORDON, f"node {name} uncordoned"))
        r_old, r_new = node_ready(old), node_ready(new)
        if r_old != r_new:
            # a node's Ready condition is reported by the node itself (its kubelet: kwok), never by a person
            out.append(
                Seen(
                    ActionKind.NODE_READY if r_new else ActionKind.NODE_NOT_READY,
                    obj_ref,
                    f"node {name} {'Ready' if r_new else 'NotReady'}",
                    "nodes",
                    None,
                    name,
                    subresources=frozenset({"status"}),
                    default_actor=ActorKind.CONTROLLER,
                )
            )
        if _meta(old).get("labels") != _meta(new).get("labels"):
            out.append(seen(ActionKind.PATCHED, "labels: " + _labels_diff(old, new)))
        return out
    if kind == "HorizontalPodAutoscaler":
        if _spec(old) != _spec(new):
            return [seen(ActionKind.AUTOSCALE, "autoscaler changed")]
        return []
    if kind == "PodDisruptionBudget":
        if _spec(old) != _spec(new):
            s = _spec(new)
            what = (
                f"minAvailable {s['minAvailable']}"
                if "minAvailable" in s
                else f"maxUnavailable {s.get('maxUnavailable')}"
            )
            return [seen(ActionKind.PATCHED, f"disruption budget now {what}")]
        return []
    return []


def _created(obj: Mapping[str, Any] | None) -> datetime | None:
    text = _meta(obj).get("creationTimestamp")
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) - timedelta(seconds=1)
    except ValueError:
        return None


def _pod_deleted(obj_ref: str, ns: str | None, name: str) -> Seen:
    return Seen(
        ActionKind.POD_DELETED,
        obj_ref,
        "pod deleted",
        "pods",
        ns,
        name,
        verbs=frozenset({"delete", "create", "deletecollection"}),
        subresources=frozenset({None, "eviction"}),
        destructive=True,
    )


def _fmt_labels(labels: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "(none)"


def _labels_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    a, b = _meta(old).get("labels") or {}, _meta(new).get("labels") or {}
    parts = [f"{k}={b[k]}" for k in sorted(b) if a.get(k) != b[k]] + [
        f"{k}-" for k in sorted(a) if k not in b
    ]
    return ", ".join(parts)


def _deployment_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    seen: Callable[..., Seen],
    replicasets: Sequence[Mapping[str, Any]],
) -> list[Seen]:
    so, sn = _spec(old), _spec(new)
    out: list[Seen] = []
    if so.get("replicas") != sn.get("replicas"):
        out.append(
            seen(
                ActionKind.SCALE,
                f"replicas {so.get('replicas')} -> {sn.get('replicas')}",
                subresources=frozenset({None, "scale"}),
                field=("spec", "replicas"),
            )
        )
    if normalized_template(so.get("template")) != normalized_template(sn.get("template")):
        target = normalized_template(sn.get("template"))
        previous = normalized_template(so.get("template"))
        name = _meta(new).get("name")
        ns = _meta(new).get("namespace")
        back_to = next(
            (
                rs
                for rs in replicasets
                if _meta(rs).get("namespace") == ns
                and any(
                    o.get("kind") == "Deployment" and o.get("name") == name
                    for o in _meta(rs).get("ownerReferences") or []
                )
                and normalized_template(_spec(rs).get("template")) == target
                and normalized_template(_spec(rs).get("template")) != previous
            ),
            None,
        )
        if back_to is not None:
            revision = (_meta(back_to).get("annotations") or {}).get(REVISION, "?")
            images = ", ".join(
                str(c.get("image")) for c in _containers(_spec(back_to).get("template") or {}).values()
            )
            out.append(
                seen(
                    ActionKind.ROLLBACK,
                    f"pod template back to revision {revision} ({images})",
                    field=("spec", "template"),
                )
            )
        else:
            action, detail = template_change(so.get("template") or {}, sn.get("template") or {})
            out.append(seen(action, detail, field=("spec", "template")))
    if bool(so.get("paused")) != bool(sn.get("paused")):
        out.append(
            seen(
                ActionKind.ROLLOUT_PAUSED if sn.get("paused") else ActionKind.ROLLOUT_RESUMED,
                "rollout paused" if sn.get("paused") else "rollout resumed",
            )
        )
    if so.get("selector") != sn.get("selector"):
        out.append(seen(ActionKind.SELECTOR_CHANGED, "deployment selector changed"))
    rest_old = {k: v for k, v in so.items() if k not in ("replicas", "template", "paused", "selector")}
    rest_new = {k: v for k, v in sn.items() if k not in ("replicas", "template", "paused", "selector")}
    if rest_old != rest_new:
        keys = sorted(k for k in set(rest_old) | set(rest_new) if rest_old.get(k) != rest_new.get(k))
        out.append(seen(ActionKind.PATCHED, "deployment spec changed: " + ", ".join(keys)))
    return out


def _owns(fields_v1: Mapping[str, Any] | None, path: Sequence[str]) -> bool:
    cur: Any = fields_v1 or {}
    for key in path:
        if not isinstance(cur, Mapping) or f"f:{key}" not in cur:
            return False
        cur = cur[f"f:{key}"]
    return True


def managed_fields_actor(
    obj: Mapping[str, Any] | None, field: Sequence[str] | None = None
) -> tuple[ActorKind, str] | None:
    """Who last wrote ``field`` (or, without one, the object) by its managedFields: the fallback when there
    is no audit log. Managers are named by the client: ``kubectl-*`` a person, ``drills-injector`` drills,
    anything else a controller."""
    entries = list(_meta(obj).get("managedFields") or [])
    owners = [e for e in entries if _owns(e.get("fieldsV1"), field)] if field else []
    # the field's owner wrote it (a subresource update such as scale carries no time); else the latest writer
    entries = owners or [e for e in entries if e.get("time")]
    if not entries:
        return None
    latest = max(entries, key=lambda e: (str(e.get("time")), e.get("subresource") != "status"))
    manager = str(latest.get("manager", ""))
    if manager == r.FIELD_MANAGER:
        return ActorKind.DRILLS, manager
    if manager.startswith("kubectl"):
        return ActorKind.RESPONDER, manager
    if manager:
        return ActorKind.CONTROLLER, manager
    return None


_POD_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "managedFields",
)
_POD_STATUS = (
    "phase",
    "conditions",
    "containerStatuses",
    "initContainerStatuses",
    "podIP",
    "startTime",
    "reason",
    "message",
)


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a pod drills reads (health, classification, the monitoring exporter): no volumes,
    tolerations, scheduling or security details, which make up most of a pod."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = [
        {k: c[k] for k in ("name", "image", "env", "resources") if c.get(k)}
        for c in spec.get("containers") or []
    ]
    out: dict[str, Any] = {
        "kind": pod.get("kind", "Pod"),
        "apiVersion": pod.get("apiVersion", "v1"),
        "metadata": {k: meta[k] for k in _POD_META if k in meta},
        "spec": {"nodeName": spec.get("nodeName"), "containers": containers},
        "status": {k: status[k] for k in _POD_STATUS if k in status},
    }
    if "ownerReferences" in out["metadata"]:
        out["metadata"]["ownerReferences"] = [
            {k: o[k] for k in ("kind", "name", "uid", "controller") if k in o}
            for o in meta["ownerReferences"]
        ]
    return out


_SHARED: dict[str, str] = {}


def shared(value: Any) -> Any:
    """The same structure with dict keys and short strings shared between objects (thousands of pods repeat
    the same keys, node names, timestamps and reasons)."""
    if isinstance(value, dict):
        return {_share(k): shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shared(v) for v in value]
    if isinstance(value, str) and len(value) <= 64:
        return _share(value)
    return value


def _share(text: str) -> str:
    if len(_SHARED) > 200_000:
        _SHARED.clear()  # bounded: a long drill with ever new names should not grow without end
    return _SHARED.setdefault(text, text)


def _source(kind: ActorKind, user_agent: str = "") -> Source:
    return {
        ActorKind.RESPONDER: Source.HUMAN,
        ActorKind.BOT: Source.BOT,
        ActorKind.DRILLS: Source.SYSTEM,
        ActorKind.CONTROLLER: Source.CONTROLLER,
    }.get(kind, Source.HUMAN if user_agent.startswith("kubectl") else Source.SYSTEM)


# ---- the observer ---------------------------------------------------------------------------------------


@dataclass
class WatchStats:
    events: int = 0
    relists: int = 0
    reconnects: int = 0
    gone: int = 0
    errors: list[str] = field(default_factory=list)


class Observer:
    """Watches the cluster during a drill; see the module docstring.

    ``kube`` should be an identity that may read everything (drills' injector, or the admin); its own writes
    are never attributed to people. ``audit_log`` is the embedded cluster's audit log (None: managedFields
    fallback). ``identities`` name the responder and the bot; when given, RBAC is granted again on a drill
    namespace that reappears (a restored namespace loses its RoleBindings).
    """

    def __init__(
        self,
        kube: Kube,
        scenario: Scenario,
        clock: Clock = SYSTEM_CLOCK,
        audit_log: Path | None = None,
        identities: Identities | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        kinds: Sequence[str] = WATCHED_KINDS,
        baseline_replicas: Mapping[str, int] | None = None,
        audit_wait: float = 0.5,
        health_interval: float = 0.05,
        tick: float = 1.0,
        watch_timeout: int = 240,
    ) -> None:
        self.kube = kube
        self.scenario = scenario
        self.clock = clock
        self.audit_log = audit_log
        self.identities = identities
        self.on_event = on_event
        self.kinds = tuple(kinds)
        self.attribution: Attribution = "audit" if audit_log is not None else "managed-fields"
        self.cache = WatchCache()
        self.audit = AuditIndex()
        self.stats: dict[str, WatchStats] = {k: WatchStats() for k in self.kinds}
        self.namespaces = self._namespaces(scenario)
        self.verdict: Verdict | None = None
        self._baseline = dict(baseline_replicas or {})
        self._audit_wait = audit_wait
        self._health_interval = health_interval
        self._tick = tick
        self._watch_timeout = watch_timeout
        self._changes: queue.Queue[Change | AuditRecord | None] = queue.Queue()
        self._out: queue.Queue[Event | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._drains: set[tuple[str, str]] = set()
        self._kubes: list[Kube] = []
        self._used: deque[str] = deque()
        self._used_set: set[str] = set()
        self._catchup: Change | None = None
        self._responses: dict[str, Any] = {}
        #: When each object's previous version was seen: no write older than that can explain a new version.
        self._seen_at: dict[tuple[str, str, str], datetime] = {}
        # when the API server received the write matched to each object's latest change
        self._written_at: dict[tuple[str, str, str], datetime] = {}
        #: ``ns/pod`` -> when a restartCount last went up (for the no-restarts probe)
        self._restarts: dict[str, datetime] = {}
        self._started_at: datetime | None = None
        self._catchup_rec: AuditRecord | None = None
        self._catchup_ok = False

    @staticmethod
    def _namespaces(scenario: Scenario) -> frozenset[str]:
        ns = {scenario.target.namespace}
        for p in scenario.steady_state.probes:
            if isinstance(p, DeploymentAvailable | ServiceEndpoints | PodsReady | NoRestarts) and p.namespace:
                ns.add(p.namespace)
        return frozenset(ns)

    # ---- life cycle ----------------------------------------------------------------------------------

    def start(self) -> Observer:
        """List everything (so the cache is warm and the first verdict known), then watch in the background."""
        if self._started:
            return self
        self._started = True
        self._started_at = self.clock.now()
        if self.audit_log is not None:
            tail = AuditTail(self.audit_log)
            self._spawn(self._tail_audit, "audit", tail)
        rvs = {}
        for kind in self.kinds:
            items, rv = self._list(self.kube, kind)
            self.cache.replace_all(kind, items, rv)
            rvs[kind] = rv
        if not self._baseline:
            for d in self.cache.list("Deployment"):
                meta = d["metadata"]
                self._baseline[f"{meta.get('namespace')}/{meta['name']}"] = int(_spec(d).get("replicas", 1))
        for kind in self.kinds:
            self._spawn(self._watch, f"watch-{kind}", kind, rvs[kind])
        if self.attribution == "managed-fields":
            self._emit(
                Note(
                    at=self.clock.now(),
                    source=Source.SYSTEM,
                    actor="drills-observer",
                    text="attribution: no audit log access on this cluster; actions are attributed "
                    "from managedFields managers (kubectl* -> responder, others -> controller)",
                )
            )
        self._judge(self.clock.now(), force=True)
        self._spawn(self._process, "process")
        return self

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=f"drills-observer-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._changes.put(None)
        for resp in list(self._responses.values()):
            # wake the watch threads blocked in a streaming read
            with contextlib.suppress(Exception):
                resp.shutdown()
        for t in self._threads:
            t.join(timeout=timeout)
        self._out.put(None)
        for k in self._kubes:
            k.close()

    def __enter__(self) -> Observer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The journal events as they come, until :meth:`stop` (or ``timeout`` s of silence)."""
        while True:
            try:
                item = self._out.get(timeout=timeout)
            except queue.Empty:
                return
            if item is None:
                return
            yield item

    def _emit(self, event: Event) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("observer event callback failed")
        self._out.put(event)

    # ---- watching ------------------------------------------------------------------------------------

    def _list(self, kube: Kube, kind: str) -> tuple[list[dict[str, Any]], str]:
        namespace = self.scenario.target.namespace if kind == "Event" else None
        return r.list_objects(
            kube, kind, namespace, metadata_only=kind in METADATA_ONLY, page=500, transform=self._slim
        )

    def _slim(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What the cache keeps of an object: all of it, less what nobody reads (managedFields unless they
        are the attribution, kubectl's last-applied copy, a pod's volumes and scheduling details), with
        repeated strings shared. 10,000 pods must fit in the observer's memory budget."""
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            if self.attribution == "audit":
                meta.pop("managedFields", None)
            annotations = meta.get("annotations")
            if isinstance(annotations, dict):
                annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        if obj.get("kind") == "Pod":
            obj = slim_pod(obj)
        return shared(obj)  # type: ignore[no-any-return]

    def _watch(self, kind: str, rv: str) -> None:
        kube = Kube(self.kube.kubeconfig, self.kube.context)
        self._kubes.append(kube)
        stats = self.stats[kind]
        backoff = 0.1
        namespace = self.scenario.target.namespace if kind == "Event" else None
        while not self._stop.is_set():
            try:
                for event in r.watch_lines(
                    kube,
                    kind,
                    on_response=functools.partial(self._responses.__setitem__, kind),
                    namespace=namespace,
                    resource_version=rv,
                    timeout_seconds=self._watch_timeout,
                    metadata_only=kind in METADATA_ONLY,
                ):
                    if self._stop.is_set():
                        return
                    backoff = 0.1
                    etype = event.get("type")
                    obj = event.get("object") or {}
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            stats.gone += 1
                            rv = self._relist(kube, kind)
                            break
                        raise DrillError(f"watch error: {obj.get('message')}")
                    new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if etype == "BOOKMARK":
                        rv = new_rv or rv
                        continue
                    stats.events += 1
                    old = self.cache.apply(kind, str(etype), self._slim(obj))
                    rv = new_rv or rv
                    deleted = etype == "DELETED"
                    self._changes.put(
                        Change(
                            kind,
                            str(etype),
                            (old or obj) if deleted else old,
                            None if deleted else obj,
                            self.clock.now(),
                            SYSTEM_CLOCK.monotonic(),
                        )
                    )
            except DrillError as e:
                if self._stop.is_set():
                    return
                if getattr(e.__cause__, "status", None) == 410 or "410" in str(e):
                    stats.gone += 1
                    with contextlib.suppress(DrillError):  # still down: the next round retries
                        rv = self._relist(kube, kind)
                    continue
                stats.reconnects += 1
                if len(stats.errors) < 20:
                    stats.errors.append(str(e).splitlines()[0][:200])
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 0.5)

    def _relist(self, kube: Kube, kind: str) -> str:
        """List again after 410 Gone; every difference becomes a change (nothing is missed)."""
        items, rv = self._list(kube, kind)
        self.stats[kind].relists += 1
        now, mono = self.clock.now(), SYSTEM_CLOCK.monotonic()
        for type_, old, new in self.cache.replace_all(kind, items, rv):
            self._changes.put(Change(kind, type_, old, new, now, mono, relisted=True))
        return rv

    def _tail_audit(self, tail: AuditTail) -> None:
        while not self._stop.is_set():
            try:
                records = tail.poll()
            except OSError as e:
                log.warning("cannot read the audit log: %s", e)
                records = []
            polled = self.clock.now()
            if records:
                self.audit.add(records)
                for rec in records:
                    if rec.verb == "get" and rec.resource == "pods" and rec.subresource == "log" and rec.ok:
                        self._changes.put(rec)
            self.audit.mark_polled(polled)
            self._stop.wait(0.02)

    # ---- processing ----------------------------------------------------------------------------------

    def _process(self) -> None:
        dirty_since: datetime | None = None
        last_judge = SYSTEM_CLOCK.monotonic()
        while not self._stop.is_set():
            try:
                item = self._changes.get(timeout=self._health_interval)
            except queue.Empty:
                item = None
            if item is not None:
                try:
                    if isinstance(item, AuditRecord):
                        self._evidence(item)
                    else:
                        self._handle(item)
                        if item.kind in HEALTH_KINDS and (
                            item.namespace in self.namespaces or item.kind == "Node"
                        ):
                            dirty_since = dirty_since or item.received
                        if item.kind == "Namespace" and item.type == "ADDED" and not item.relisted:
                            self._regrant(item.name)
                except DrillError as e:
                    log.warning("observer: %s", e)
            now_mono = SYSTEM_CLOCK.monotonic()
            if dirty_since is not None and (
                self._changes.empty() or now_mono - last_judge >= self._health_interval
            ):
                self._judge(self.clock.now())
                dirty_since, last_judge = None, now_mono
            elif now_mono - last_judge >= self._tick:
                self._judge(self.clock.now())
                last_judge = now_mono

    def _handle(self, change: Change) -> None:
        if change.kind not in ("Node", "Namespace") and change.namespace not in self.namespaces:
            return
        if change.kind in ("ReplicaSet", "EndpointSlice", "Event"):
            return
        if change.kind == "Pod":
            self._track_restarts(change)
        if change.kind == "Namespace" and change.name not in self.namespaces:
            return
        replicasets = self.cache.list("ReplicaSet", change.namespace) if change.kind == "Deployment" else []
        try:
            seen = classify(change, replicasets)
            for s in seen:
                self._report(s, change)
            if not seen and self.attribution == "audit":
                self._consume_unclassified(change)
        finally:
            key = (change.kind, change.namespace or "", change.name)
            if change.type == "DELETED":
                self._seen_at.pop(key, None)
                self._written_at.pop(key, None)
            else:
                self._seen_at[key] = change.received

    def _track_restarts(self, change: Change) -> None:
        key = f"{change.namespace}/{change.name}"
        if change.type == "DELETED":
            self._restarts.pop(key, None)
            return

        def counts(pod: Mapping[str, Any] | None) -> dict[str, int]:
            statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
            return {str(c.get("name")): int(c.get("restartCount") or 0) for c in statuses}

        before, after = counts(change.old), counts(change.new)
        if any(after[name] > before.get(name, after[name]) for name in after):
            self._restarts[key] = change.received

    def _consume_unclassified(self, change: Change) -> None:
        """A spec or metadata change that is no action (a controller's taint, an annotation) still used up
        its write: mark that record (the newest before the change) so no later change is blamed on it.
        Status-only changes have no record (the audit policy leaves status writes out) and use up nothing."""
        if change.type != "MODIFIED" or change.old is None or change.new is None:
            return
        old, new = change.old, change.new
        if (
            old.get("spec") == new.get("spec")
            and _meta(old).get("labels") == _meta(new).get("labels")
            and (_meta(old).get("annotations") == _meta(new).get("annotations"))
        ):
            return
        res = r.RESOURCES.get(change.kind)
        if res is None:
            return
        self._caught_up(change)
        seen = self._seen_at.get((change.kind, change.namespace or "", change.name), self._started_at)
        found = self.audit.writers(
            res.plural,
            change.namespace,
            change.name,
            at=change.received,
            window=change.received - seen if seen is not None else timedelta(seconds=5),
            verbs=frozenset({"update", "patch"}),
            subresources=frozenset({None}),
            exclude=self._used_set,
        )
        if found:
            self._use(found[-1])
            self._written_at[(change.kind, change.namespace or "", change.name)] = found[-1].received

    def _report(self, s: Seen, change: Change) -> None:
        kind, actor, attribution, at, rec = self._attribute(s, change)
        action = s.kind
        detail = s.detail
        if rec is not None and rec.subresource == "eviction" and action == ActionKind.POD_DELETED:
            action, detail = ActionKind.EVICT, "pod evicted"
            self._maybe_drain(change, rec)
        if action == ActionKind.PATCHED and s.resource == "pods" and kind == ActorKind.CONTROLLER:
            return  # the scheduler or kwok labelling a pod: bookkeeping, not an action
        if action == ActionKind.POD_DELETED and rec is not None and kind == ActorKind.CONTROLLER:
            detail = f"pod deleted by {actor}"
        if action == ActionKind.ROLLBACK and kind == ActorKind.DRILLS and change.old and change.new:
            # A fault injected again rolls out a template an earlier drill left in the history: that is the
            # fault going in (or its revert), never a rollback someone chose.
            action, detail = template_change(
                _spec(change.old).get("template") or {}, _spec(change.new).get("template") or {}
            )
            detail = f"{detail} ({s.detail.replace('pod template back to', 'same template as')})"
        self._emit(
            ActionObserved(
                at=at,
                source=_source(kind, rec.user_agent if rec else ""),
                actor=actor,
                kind=action,
                actor_kind=kind,
                object=s.object,
                detail=detail,
                destructive=s.destructive,
                attribution=attribution,
            )
        )

    def _attribute(
        self, s: Seen, change: Change
    ) -> tuple[ActorKind, str, Attribution, datetime, AuditRecord | None]:
        if self.attribution == "audit":
            rec = self._find_record(s, change)
            if rec is not None:
                return rec.actor_kind(self.identities), rec.actor, "audit", rec.at, rec
            if s.default_actor is not None:
                return s.default_actor, "kubernetes", "inferred", change.received, None
            return ActorKind.UNKNOWN, "unknown", "inferred", change.received, None
        found = managed_fields_actor(change.new, s.field) if change.type in ("MODIFIED", "ADDED") else None
        if found is not None and s.default_actor is None:
            return found[0], found[1], "managed-fields", change.received, None
        return (
            s.default_actor or ActorKind.UNKNOWN,
            "kubernetes" if s.default_actor else "unknown",
            "managed-fields",
            change.received,
            None,
        )

    def _caught_up(self, change: Change) -> bool:
        """Wait (a few ms at most) until the audit tail has read the log after this change arrived: the API
        server writes the line as it answers, so by then the change's line is in the index. A change from a
        backlog is older than the last read and waits for nothing."""
        return self.audit.wait_polled_after(change.received + AUDIT_LAG, timeout=0.1)

    def _find_record(self, s: Seen, change: Change) -> AuditRecord | None:
        """The audit record of this change: the oldest write to the object not yet matched, received after
        the object's previous version was seen. Records are consumed in order, so quick successive writes
        map to their own changes; the log line may trail the watch event by a few milliseconds, so the
        tail's next read is awaited first. After a re-list (the watch could not resume), several writes may
        collapse into one change: the others are journaled in a note, so none goes missing."""
        if self._catchup is not change:
            self._catchup_ok = self._caught_up(change)
            self._catchup, self._catchup_rec = change, None
        elif (
            self._catchup_rec is not None
            and self._catchup_rec.verb in s.verbs
            and (s.subresources is None or self._catchup_rec.subresource in s.subresources)
        ):
            return self._catchup_rec  # a second action of the same change: the same request
        # Writes that finished before we saw the previous version produced it (or an even older one). A
        # watch event can trail its write by a few ms, so when nothing newer is found, a write that finished
        # just before the previous version's arrival is accepted too (``loose``).
        key = (change.kind, change.namespace or "", change.name)
        strict = loose = after_write = change.received - timedelta(seconds=5)
        if s.not_before is not None:
            strict = loose = after_write = s.not_before
        elif change.type == "MODIFIED":
            seen = self._seen_at.get(key, self._started_at)
            if seen is not None:
                strict = max(strict, seen)
                loose = strict if change.relisted else max(loose, seen - timedelta(milliseconds=250))
            # A watch catching up after a reconnect delivers several versions at once, so the previous one's
            # arrival says little; the write that produced it still bounds this one's from below.
            written = self._written_at.get(key)
            after_write = loose if written is None or change.relisted else max(after_write, written)
        # Real threads wait here (queue timeouts, the audit tail): the system's monotonic clock paces them
        # even when a test fakes the clock that stamps the events.
        deadline = SYSTEM_CLOCK.monotonic() + self._audit_wait
        while True:
            seen_count = self.audit.count
            found: list[AuditRecord] = []
            for floor in dict.fromkeys((strict, loose, min(loose, after_write))):
                found = self.audit.writers(
                    s.resource,
                    s.namespace,
                    s.name,
                    at=change.received,
                    window=change.received - floor,
                    verbs=s.verbs,
                    subresources=s.subresources,
                    exclude=self._used_set,
                )
                if found:
                    break
            if found:
                rec = found[-1] if change.relisted else found[0]
                for r_ in found if change.relisted else [rec]:
                    self._use(r_)
                if change.relisted and len(found) > 1:
                    self._collapsed(s, found[:-1])
                self._catchup_rec = rec
                self._written_at[key] = rec.received
                return rec
            left = deadline - SYSTEM_CLOCK.monotonic()
            # once the tail has read past the change, a missing line is not late, it is not there
            if s.default_actor is not None or left <= 0 or self._catchup_ok:
                return None
            self.audit.wait_for_more(seen_count, left)

    def _collapsed(self, s: Seen, earlier: list[AuditRecord]) -> None:
        """Writes that a re-list folded into one change are still actions of their own, each at its time and
        by its writer (from the audit log); only the state in between was not seen."""
        for rec in earlier:
            self._emit_audited(
                rec,
                s.kind,
                s.object,
                f"{rec.verb} while the watch was re-listing after a disconnection: the state it left was "
                "overwritten before it could be seen",
                destructive=s.destructive,
            )

    def _emit_audited(
        self, rec: AuditRecord, action: ActionKind, obj: str, detail: str, *, destructive: bool = False
    ) -> None:
        """An action whose time and writer are the audit record's."""
        kind = rec.actor_kind(self.identities)
        self._emit(
            ActionObserved(
                at=rec.at,
                source=_source(kind, rec.user_agent),
                actor=rec.actor,
                kind=action,
                actor_kind=kind,
                object=obj,
                detail=detail,
                destructive=destructive,
                attribution="audit",
            )
        )

    def _use(self, rec: AuditRecord) -> None:
        """One request explains one change: never match it to a later one."""
        if rec.audit_id in self._used_set:
            return
        self._used.append(rec.audit_id)
        self._used_set.add(rec.audit_id)
        if len(self._used) > 10000:
            self._used_set.discard(self._used.popleft())

    def _maybe_drain(self, change: Change, rec: AuditRecord) -> None:
        node_name = (change.obj.get("spec") or {}).get("nodeName")
        node = self.cache.get("Node", node_name) if node_name else None
        if node is None or not _spec(node).get("unschedulable") or (node_name, rec.user) in self._drains:
            return
        self._drains.add((str(node_name), rec.user))
        self._emit_audited(
            rec,
            ActionKind.DRAIN,
            f"Node/{node_name}",
            f"node {node_name} drained (its pods evicted)",
            destructive=True,
        )

    def _evidence(self, rec: AuditRecord) -> None:
        if rec.namespace not in self.namespaces:
            return
        kind = rec.actor_kind(self.identities)
        if kind not in (ActorKind.RESPONDER, ActorKind.BOT, ActorKind.UNKNOWN):
            return
        previous = "previous=true" in rec.request_uri
        self._emit_audited(
            rec,
            ActionKind.EVIDENCE_READ,
            _ref("Pod", rec.namespace, str(rec.name)),
            "read the logs of the previous container" if previous else "read the logs",
        )

    def _regrant(self, namespace: str) -> None:
        if self.identities is None:
            return
        try:
            grant(self.kube, self.identities, namespaces=[namespace])
        except DrillError as e:
            log.warning("could not restore the responder's access to namespace %s: %s", namespace, e)

    # ---- health --------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        ns = sorted(self.namespaces)
        return Snapshot(
            deployments=[d for n in ns for d in self.cache.list("Deployment", n)],
            endpoint_slices=[s for n in ns for s in self.cache.list("EndpointSlice", n)],
            nodes=self.cache.list("Node"),
            pods=[p for n in ns for p in self.cache.list("Pod", n)],
            restarts=dict(self._restarts),
        )

    def _judge(self, at: datetime, *, force: bool = False) -> None:
        verdict = judge(
            self.scenario.steady_state,
            self.snapshot(),
            namespace=self.scenario.target.namespace,
            now=at,
            baseline_replicas=self._baseline,
        )
        if force or self.verdict is None or verdict.healthy != self.verdict.healthy:
            self.verdict = verdict
            self._emit(
                HealthChanged(
                    at=at,
                    source=Source.SYSTEM,
                    actor="drills-observer",
                    healthy=verdict.healthy,
                    reason=verdict.reason,
                )
            )
        else:
            self.verdict = verdict


def actor_of(username: str, user_agent: str, identities: Identities | None) -> ActorKind:
    """Exposed for tests and the CLI: the actor kind the observer would assign."""
    return actor_kind_for(username, user_agent, identities)
