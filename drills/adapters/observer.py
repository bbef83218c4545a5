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

Attribution joins each change with the API server's audit log (:mod:`drills.adapters.audit`): the user
names drills' identities, the user agent names the controllers. A change the controllers made (a ReplicaSet
replacing a pod, an HPA scaling, a node coming back) is the controller's, never the responder's. Without an
audit log (a ``context`` cluster), managedFields managers stand in and every event says
``attribution="managed-fields"``. Secrets are watched as metadata only: their values never reach drills.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from drills.adapters import resources as r
from drills.adapters.audit import AuditIndex, AuditRecord, AuditTail
from drills.adapters.identities import Identities, actor_kind_for, grant
from drills.adapters.kube import Kube
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
            out.append(seen(ActionKind.PATCHED, "labels: " + _labels_diff(old, new)))
        return out
    if kind == "Deployment":
        return _deployment_changes(old, new, seen, replicasets)
    if kind == "Service":
        if _spec(old).get("selector") != _spec(new).get("selector"):
            return [
                seen(
                    ActionKind.SELECTOR_CHANGED,
                    f"selector {_fmt_labels(_spec(old).get('selector'))} -> {_fmt_labels(_spec(new).get('selector'))}",
                )
            ]
        if _spec(old) != _spec(new):
            return [seen(ActionKind.PATCHED, "service spec changed")]
        return []
    if kind == "ConfigMap":
        od, nd = old.get("data") or {}, new.get("data") or {}
        keys = sorted(k for k in set(od) | set(nd) if od.get(k) != nd.get(k))
        return [seen(ActionKind.CONFIG_CHANGED, "keys changed: " + ", ".join(keys))] if keys else []
    if kind == "Secret":
        # metadata only: a new resourceVersion with the same labels is a data change (values never seen)
        if _meta(old).get("resourceVersion") != _meta(new).get("resourceVersion"):
            return [seen(ActionKind.SECRET_CHANGED, "secret changed (values not recorded)")]
        return []
    if kind == "Node":
        out = []
        was, now = bool(_spec(old).get("unschedulable")), bool(_spec(new).get("unschedulable"))
        if now and not was:
            out.append(seen(ActionKind.CORDON, f"node {name} cordoned"))
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
            out.append(seen(ActionKind.ROLLBACK, f"pod template back to revision {revision} ({images})"))
        else:
            action, detail = template_change(so.get("template") or {}, sn.get("template") or {})
            out.append(seen(action, detail))
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


def managed_fields_actor(obj: Mapping[str, Any] | None) -> tuple[ActorKind, str] | None:
    """The manager of the most recent managedFields entry (the fallback when there is no audit log)."""
    entries = [e for e in (_meta(obj).get("managedFields") or []) if e.get("time")]
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
        return r.list_objects(kube, kind, namespace, metadata_only=kind in METADATA_ONLY)

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
                    old = self.cache.apply(kind, str(etype), obj)
                    rv = new_rv or rv
                    deleted = etype == "DELETED"
                    self._changes.put(
                        Change(
                            kind,
                            str(etype),
                            (old or obj) if deleted else old,
                            None if deleted else obj,
                            self.clock.now(),
                            time.monotonic(),
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
                backoff = min(backoff * 2, 2.0)

    def _relist(self, kube: Kube, kind: str) -> str:
        """List again after 410 Gone; every difference becomes a change (nothing is missed)."""
        items, rv = self._list(kube, kind)
        self.stats[kind].relists += 1
        now, mono = self.clock.now(), time.monotonic()
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
            if records:
                self.audit.add(records)
                for rec in records:
                    if rec.verb == "get" and rec.resource == "pods" and rec.subresource == "log" and rec.ok:
                        self._changes.put(rec)
            self._stop.wait(0.02)

    # ---- processing ----------------------------------------------------------------------------------

    def _process(self) -> None:
        dirty_since: datetime | None = None
        last_judge = time.monotonic()
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
            now_mono = time.monotonic()
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
        if change.kind == "Namespace" and change.name not in self.namespaces:
            return
        for s in classify(
            change, self.cache.list("ReplicaSet", change.namespace) if change.kind == "Deployment" else ()
        ):
            self._report(s, change)

    def _report(self, s: Seen, change: Change) -> None:
        kind, actor, attribution, at, rec = self._attribute(s, change)
        action = s.kind
        detail = s.detail
        if rec is not None and rec.subresource == "eviction" and action == ActionKind.POD_DELETED:
            action, detail = ActionKind.EVICT, "pod evicted"
            self._maybe_drain(change, rec, kind, actor, at)
        if action == ActionKind.POD_DELETED and rec is not None and kind == ActorKind.CONTROLLER:
            detail = f"pod deleted by {actor}"
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
        if self.attribution == "audit" and not change.relisted:
            rec = self._find_record(s, change)
            if rec is not None:
                return rec.actor_kind(self.identities), rec.actor, "audit", rec.at, rec
        if self.attribution == "audit" and s.default_actor is None:
            if change.relisted:
                rec = self.audit.writer(
                    s.resource,
                    s.namespace,
                    s.name,
                    at=change.received,
                    window=timedelta(minutes=5),
                    verbs=s.verbs,
                    subresources=s.subresources,
                )
                if rec is not None:
                    return rec.actor_kind(self.identities), rec.actor, "audit", rec.at, rec
            return ActorKind.UNKNOWN, "unknown", "inferred", change.received, None
        if s.default_actor is not None and self.attribution == "audit":
            return s.default_actor, "kubernetes", "inferred", change.received, None
        found = (
            managed_fields_actor(change.new) if change.type == "MODIFIED" or change.type == "ADDED" else None
        )
        if found is not None and s.default_actor is None:
            return found[0], found[1], "managed-fields", change.received, None
        return (
            s.default_actor or ActorKind.UNKNOWN,
            "kubernetes" if s.default_actor else "unknown",
            "managed-fields",
            change.received,
            None,
        )

    def _find_record(self, s: Seen, change: Change) -> AuditRecord | None:
        deadline = time.monotonic() + self._audit_wait
        while True:
            seen_count = self.audit.count
            rec = self.audit.writer(
                s.resource,
                s.namespace,
                s.name,
                at=change.received,
                verbs=s.verbs,
                subresources=s.subresources,
            )
            if rec is not None or s.default_actor is not None:
                return rec
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.audit.wait_for_more(seen_count, left)

    def _maybe_drain(
        self, change: Change, rec: AuditRecord, kind: ActorKind, actor: str, at: datetime
    ) -> None:
        node_name = (change.obj.get("spec") or {}).get("nodeName")
        node = self.cache.get("Node", node_name) if node_name else None
        if node is None or not _spec(node).get("unschedulable") or (node_name, rec.user) in self._drains:
            return
        self._drains.add((str(node_name), rec.user))
        self._emit(
            ActionObserved(
                at=at,
                source=_source(kind, rec.user_agent),
                actor=actor,
                kind=ActionKind.DRAIN,
                actor_kind=kind,
                object=f"Node/{node_name}",
                detail=f"node {node_name} drained (its pods evicted)",
                destructive=True,
                attribution="audit",
            )
        )

    def _evidence(self, rec: AuditRecord) -> None:
        if rec.namespace not in self.namespaces:
            return
        kind = rec.actor_kind(self.identities)
        if kind not in (ActorKind.RESPONDER, ActorKind.BOT, ActorKind.UNKNOWN):
            return
        previous = "previous=true" in rec.request_uri
        self._emit(
            ActionObserved(
                at=rec.at,
                source=_source(kind, rec.user_agent),
                actor=rec.actor,
                kind=ActionKind.EVIDENCE_READ,
                actor_kind=kind,
                object=_ref("Pod", rec.namespace, str(rec.name)),
                detail="read the logs of the previous container" if previous else "read the logs",
                attribution="audit",
            )
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
