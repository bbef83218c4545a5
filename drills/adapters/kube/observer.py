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
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from drills.adapters.kube import resources as r
from drills.adapters.kube.audit import AuditIndex, AuditRecord, AuditTail
from drills.adapters.kube.client import Kube
from drills.adapters.kube.identities import Identities, actor_kind_for, grant
from drills.engine.changes import (
    Change,
    Seen,
    classify,
    counts_as_evidence,
    evidence_detail,
    managed_fields_actor,
    meaning,
    normalized_template,
    ref,
    restarted,
    source_of,
    template_change,
    wrote_spec_or_metadata,
)
from drills.engine.health import Snapshot, Verdict, judge
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

#: The pure parts moved to the engine; these names stay importable from here.
__all__ = [
    "AUDIT_LAG",
    "WATCHED_KINDS",
    "AuditSource",
    "Change",
    "KubeWatchSource",
    "Observer",
    "Seen",
    "WatchCache",
    "WatchSource",
    "WatchStats",
    "actor_of",
    "classify",
    "managed_fields_actor",
    "normalized_template",
    "shared",
    "slim",
    "slim_pod",
    "template_change",
]

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
#: How long after a watch event a write's missing audit line is taken as absent, not late (see _find_record).
AUDIT_LATE = timedelta(milliseconds=400)
AUDIT_RECHECK = 0.05
HEALTH_KINDS = frozenset({"Deployment", "EndpointSlice", "Node", "Pod"})
METADATA_ONLY = frozenset({"Secret"})

Attribution = Literal["audit", "managed-fields", "inferred"]

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

    def note_resource_version(self, kind: str, rv: str) -> None:
        """A bookmark moved the watch on without a change."""
        self._rv[kind] = rv

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


def slim(obj: dict[str, Any], *, keep_managed_fields: bool) -> dict[str, Any]:
    """What the cache keeps of an object: all of it, less what nobody reads (managedFields unless they are
    the attribution, kubectl's last-applied copy, a pod's volumes and scheduling details), with repeated
    strings shared. 10,000 pods must fit in the observer's memory budget."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        if not keep_managed_fields:
            meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if obj.get("kind") == "Pod":
        obj = slim_pod(obj)
    return shared(obj)  # type: ignore[no-any-return]


# ---- where changes come from: the cluster, or a recording -------------------------------------------------


class WatchSource(Protocol):
    """Lists and watch streams of one kind at a time: the cluster (:class:`KubeWatchSource`) or a recording
    (:mod:`drills.adapters.kube.recording`). Watch events are the API server's raw JSON
    (``{"type": ..., "object": {...}}``); errors are :class:`DrillError` with the HTTP status in the cause."""

    def session(self) -> WatchSource:
        """A source with its own connection, for one watch thread (closed with :meth:`close`)."""
        ...

    def list(
        self,
        kind: str,
        namespace: str | None,
        *,
        metadata_only: bool,
        transform: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[builtins.list[dict[str, Any]], str]: ...

    def watch(
        self,
        kind: str,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        metadata_only: bool,
        on_response: Callable[[Any], None],
    ) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class AuditSource(Protocol):
    """New audit records since the last poll (:class:`~drills.adapters.kube.audit.AuditTail` is one)."""

    def poll(self) -> builtins.list[AuditRecord]: ...


class KubeWatchSource:
    """The live cluster through drills' client wrapper."""

    def __init__(self, kube: Kube, *, owned: bool = False) -> None:
        self.kube = kube
        self._owned = owned

    def session(self) -> KubeWatchSource:
        return KubeWatchSource(Kube(self.kube.kubeconfig, self.kube.context), owned=True)

    def list(
        self,
        kind: str,
        namespace: str | None,
        *,
        metadata_only: bool,
        transform: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        return r.list_objects(
            self.kube, kind, namespace, metadata_only=metadata_only, page=500, transform=transform
        )

    def watch(
        self,
        kind: str,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        metadata_only: bool,
        on_response: Callable[[Any], None],
    ) -> Iterator[dict[str, Any]]:
        return r.watch_lines(
            self.kube,
            kind,
            on_response=on_response,
            namespace=namespace,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            metadata_only=metadata_only,
        )

    def close(self) -> None:
        if self._owned:
            self.kube.close()


# ---- the observer ---------------------------------------------------------------------------------------


@dataclass
class WatchStats:
    events: int = 0
    relists: int = 0
    reconnects: int = 0
    gone: int = 0
    errors: list[str] = field(default_factory=list)


class _Gone:
    """A watch answered ``410 Gone``: its resourceVersion is too old, list again."""


GONE = _Gone()


@dataclass
class _Pacing:
    """When health was last judged, and since when a relevant change waits for a judgement."""

    last_judge: float
    dirty_since: datetime | None = None


class Observer:
    """Watches the cluster during a drill; see the module docstring.

    ``kube`` should be an identity that may read everything (drills' injector, or the admin); its own writes
    are never attributed to people. ``audit_log`` is the embedded cluster's audit log (None: managedFields
    fallback). ``identities`` name the responder and the bot; when given, RBAC is granted again on a drill
    namespace that reappears (a restored namespace loses its RoleBindings).

    ``source`` and ``audit_source`` replace the cluster and the audit log file (a recorder tees them; a
    replay feeds recorded streams through :meth:`replay_list`, :meth:`replay_event` and :meth:`replay_audit`
    instead of starting threads). With an ``audit_source``, attribution is by the audit log.
    """

    def __init__(
        self,
        kube: Kube | None,
        scenario: Scenario,
        clock: Clock = SYSTEM_CLOCK,
        audit_log: Path | None = None,
        identities: Identities | None = None,
        *,
        on_event: Callable[[Event], object] | None = None,
        kinds: Sequence[str] = WATCHED_KINDS,
        baseline_replicas: Mapping[str, int] | None = None,
        audit_wait: float = 0.5,
        health_interval: float = 0.05,
        tick: float = 1.0,
        watch_timeout: int = 240,
        source: WatchSource | None = None,
        audit_source: AuditSource | None = None,
        backoff: tuple[float, float] = (0.1, 0.5),
        audit_poll: float = 0.02,
        on_step: Callable[[Change | AuditRecord], object] | None = None,
        waits: Clock = SYSTEM_CLOCK,
    ) -> None:
        if source is None and kube is None:
            raise DrillError("the observer needs a cluster (kube) or a recorded watch source")
        self.kube = kube
        self.source: WatchSource = source if source is not None else KubeWatchSource(kube)  # type: ignore[arg-type]
        self.scenario = scenario
        self.clock = clock
        # Real threads wait here (queue timeouts, the audit tail, the audit join's deadline): the system's
        # monotonic clock paces them even when a test fakes the clock that stamps the events. A replay,
        # which has no threads, passes its own clock for both.
        self.waits = waits
        self.audit_log = audit_log
        self.audit_source = audit_source
        self.identities = identities
        self.on_event = on_event
        self.kinds = tuple(kinds)
        audited = audit_log is not None or audit_source is not None
        self.attribution: Attribution = "audit" if audited else "managed-fields"
        self.cache = WatchCache()
        self.audit = AuditIndex()
        #: A replay's audit tail: reads the next recorded batch if it came by the given time (False if
        #: none did). The live observer waits on its tail thread instead.
        self.audit_feed: Callable[[datetime], bool] | None = None
        self._late_evidence: list[AuditRecord] = []
        self.stats: dict[str, WatchStats] = {k: WatchStats() for k in self.kinds}
        self.namespaces = self._namespaces(scenario)
        self.verdict: Verdict | None = None
        self._baseline = dict(baseline_replicas or {})
        self._audit_wait = audit_wait
        self._health_interval = health_interval
        self._tick = tick
        self._watch_timeout = watch_timeout
        #: a broken watch is retried after the first, doubling up to the second (seconds)
        self._backoff = backoff
        self._audit_poll = audit_poll
        #: told of every change and audit record as the processor takes it up (a recorder notes when)
        self._on_step = on_step
        self._changes: queue.Queue[Change | AuditRecord | None] = queue.Queue()
        self._out: queue.Queue[Event | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._drains: set[tuple[str, str]] = set()
        #: node -> evictions seen before the node's cordon (a drain whose cordon is still on its way)
        self._evicted: dict[str, list[AuditRecord]] = {}
        self._sessions: list[WatchSource] = []
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
        self._pacing = _Pacing(last_judge=self.waits.monotonic())

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
        audit = self.audit_source
        if audit is None and self.audit_log is not None:
            audit = AuditTail(self.audit_log)
        if audit is not None:
            self._spawn(self._tail_audit, "audit", audit)
        rvs = {kind: self.replay_list(kind, *self._list(self.source, kind)) for kind in self.kinds}
        self._primed()
        for kind in self.kinds:
            self._spawn(self._watch, f"watch-{kind}", kind, rvs[kind])
        self._spawn(self._process, "process")
        return self

    def begin(self) -> None:
        """Start a replay at the clock's time (the recording's start): no threads, nothing listed yet."""
        self._started = True
        self._started_at = self.clock.now()

    def _primed(self) -> None:
        """Everything is listed: the baseline replicas, the attribution note and the first verdict."""
        if not self._baseline:
            for d in self.cache.list("Deployment"):
                meta = d["metadata"]
                self._baseline[f"{meta.get('namespace')}/{meta['name']}"] = int(
                    (d.get("spec") or {}).get("replicas", 1)
                )
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
        self._pacing = _Pacing(last_judge=self.waits.monotonic())

    def primed(self) -> None:
        """A replay's initial lists are in: as :meth:`start` does once it has listed everything."""
        self._primed()

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
        for s in self._sessions:
            s.close()

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

    def _list(self, source: WatchSource, kind: str) -> tuple[list[dict[str, Any]], str]:
        namespace = self.scenario.target.namespace if kind == "Event" else None
        return source.list(kind, namespace, metadata_only=kind in METADATA_ONLY, transform=self._slim)

    def _slim(self, obj: dict[str, Any]) -> dict[str, Any]:
        return slim(obj, keep_managed_fields=self.attribution != "audit")

    def _watch(self, kind: str, rv: str) -> None:
        source = self.source.session()
        self._sessions.append(source)
        first, longest = self._backoff
        backoff = first
        namespace = self.scenario.target.namespace if kind == "Event" else None
        while not self._stop.is_set():
            try:
                for event in source.watch(
                    kind,
                    on_response=functools.partial(self._responses.__setitem__, kind),
                    namespace=namespace,
                    resource_version=rv,
                    timeout_seconds=self._watch_timeout,
                    metadata_only=kind in METADATA_ONLY,
                ):
                    if self._stop.is_set():
                        return
                    backoff = first
                    got = self._on_watch_event(kind, event)
                    if isinstance(got, _Gone):
                        rv = self._relist(source, kind)
                        break
                    if isinstance(got, Change):
                        self._changes.put(got)
                    rv = self.cache.resource_version(kind) or rv
            except DrillError as e:
                if self._stop.is_set():
                    return
                if self._on_watch_error(kind, e):
                    with contextlib.suppress(DrillError):  # still down: the next round retries
                        rv = self._relist(source, kind)
                    continue
                self._stop.wait(backoff)
                backoff = min(backoff * 2, longest)

    def _on_watch_event(self, kind: str, event: Mapping[str, Any]) -> Change | _Gone | None:
        """One raw watch event into the cache: the change it makes, GONE (list again), or None (a bookmark).
        A watch ERROR other than 410 is raised as a DrillError (the watch reconnects)."""
        stats = self.stats[kind]
        etype = event.get("type")
        obj = event.get("object") or {}
        if etype == "ERROR":
            if obj.get("code") == 410:
                stats.gone += 1
                return GONE
            raise DrillError(f"watch error: {obj.get('message')}")
        if etype == "BOOKMARK":
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.cache.note_resource_version(kind, str(rv))
            return None
        stats.events += 1
        old = self.cache.apply(kind, str(etype), self._slim(obj))
        deleted = etype == "DELETED"
        return Change(
            kind,
            str(etype),
            (old or obj) if deleted else old,
            None if deleted else obj,
            self.clock.now(),
            self.waits.monotonic(),
        )

    def _on_watch_error(self, kind: str, e: DrillError) -> bool:
        """A broken watch: True when the API server said ``410 Gone`` (list again), else a reconnect."""
        stats = self.stats[kind]
        if getattr(e.__cause__, "status", None) == 410 or "410" in str(e):
            stats.gone += 1
            return True
        stats.reconnects += 1
        if len(stats.errors) < 20:
            stats.errors.append(str(e).splitlines()[0][:200])
        return False

    def _relist(self, source: WatchSource, kind: str) -> str:
        """List again after 410 Gone; every difference becomes a change (nothing is missed)."""
        items, rv = self._list(source, kind)
        for change in self._relisted(kind, items, rv):
            self._changes.put(change)
        return rv

    def _relisted(self, kind: str, items: list[dict[str, Any]], rv: str) -> list[Change]:
        self.stats[kind].relists += 1
        now, mono = self.clock.now(), self.waits.monotonic()
        return [
            Change(kind, type_, old, new, now, mono, relisted=True)
            for type_, old, new in self.cache.replace_all(kind, items, rv)
        ]

    def _tail_audit(self, tail: AuditSource) -> None:
        while not self._stop.is_set():
            try:
                records = tail.poll()
            except OSError as e:
                log.warning("cannot read the audit log: %s", e)
                records = []
            for rec in self._audit_read(records, self.clock.now()):
                self._changes.put(rec)
            self._stop.wait(self._audit_poll)

    def _audit_read(self, records: list[AuditRecord], polled: datetime) -> list[AuditRecord]:
        """Records the tail has read (the log up to ``polled``) into the index; the evidence reads among
        them, to be journaled in order with the changes."""
        if records:
            self.audit.add(records)
        self.audit.mark_polled(polled)
        return [
            rec
            for rec in records
            if rec.verb == "get" and rec.resource == "pods" and rec.subresource == "log" and rec.ok
        ]

    # ---- a replay: recorded streams fed in order, on the caller's thread --------------------------------

    def replay_list(self, kind: str, items: list[dict[str, Any]], rv: str) -> str:
        """A list of ``kind``: the first one fills the cache; a later one is a re-list, its differences
        changes (processed at once)."""
        if kind not in self.cache.kinds():
            self.cache.replace_all(kind, items, rv)
            return rv
        for change in self._relisted(kind, items, rv):
            self._step(change)
            self._step_late_evidence()
        return rv

    def replay_event(self, kind: str, event: Mapping[str, Any], *, process: bool = True) -> bool:
        """One recorded watch event, processed at once (or, ``process=False``, only cached: the live
        processor stopped before it); False when it was a 410 (a re-list follows)."""
        try:
            got = self._on_watch_event(kind, event)
        except DrillError as e:
            self._on_watch_error(kind, e)
            return True
        if isinstance(got, _Gone):
            return False
        if got is not None and process:
            self._step(got)
            self._step_late_evidence()
        return True

    def replay_error(self, kind: str, error: DrillError) -> bool:
        """A recorded broken watch; True when it was a 410 (a re-list follows)."""
        return self._on_watch_error(kind, error)

    def replay_audit(self, records: list[AuditRecord], polled: datetime) -> None:
        """The audit tail read ``records`` (the log up to ``polled``): index them, journal evidence reads."""
        for rec in self._audit_read(records, polled):
            self._step(rec)

    def replay_audit_late(self, records: list[AuditRecord], polled: datetime) -> None:
        """A read while a change waits for its late line (from :attr:`audit_feed`): indexed now, its evidence
        reads journaled after that change, as the live processor's queue orders them."""
        self._late_evidence.extend(self._audit_read(records, polled))

    def _step_late_evidence(self) -> None:
        late, self._late_evidence = self._late_evidence, []
        for rec in late:
            self._step(rec)

    def replay_tick(self, *, queue_empty: bool) -> None:
        """The processor's pacing at the clock's time: judge health when a change waits, or on the tick."""
        self._pace(queue_empty=queue_empty)

    def next_tick(self) -> float:
        """When (on the clock's monotonic scale) the processor next judges health on its own."""
        p = self._pacing
        return p.last_judge + (self._health_interval if p.dirty_since is not None else self._tick)

    # ---- processing ----------------------------------------------------------------------------------

    def _process(self) -> None:
        self._pacing = _Pacing(last_judge=self.waits.monotonic())
        while not self._stop.is_set():
            try:
                item = self._changes.get(timeout=self._health_interval)
            except queue.Empty:
                item = None
            if item is not None:
                if self._on_step is not None:
                    self._on_step(item)
                self._step(item)
            self._pace(queue_empty=self._changes.empty())

    def _step(self, item: Change | AuditRecord) -> None:
        try:
            if isinstance(item, AuditRecord):
                self._evidence(item)
            else:
                self._handle(item)
                if item.kind in HEALTH_KINDS and (item.namespace in self.namespaces or item.kind == "Node"):
                    self._pacing.dirty_since = self._pacing.dirty_since or item.received
                if item.kind == "Namespace" and item.type == "ADDED" and not item.relisted:
                    self._regrant(item.name)
        except DrillError as e:
            log.warning("observer: %s", e)

    def _pace(self, *, queue_empty: bool) -> None:
        p = self._pacing
        now_mono = self.waits.monotonic()
        if p.dirty_since is not None and (queue_empty or now_mono - p.last_judge >= self._health_interval):
            self._judge(self.clock.now())
            p.dirty_since, p.last_judge = None, now_mono
        elif now_mono - p.last_judge >= self._tick:
            self._judge(self.clock.now())
            p.last_judge = now_mono

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
        elif restarted(change.old, change.new):
            self._restarts[key] = change.received

    def _consume_unclassified(self, change: Change) -> None:
        """A spec or metadata change that is no action (a controller's taint, an annotation) still used up
        its write: mark that record (the newest before the change) so no later change is blamed on it.
        Status-only changes have no record (the audit policy leaves status writes out) and use up nothing."""
        if not wrote_spec_or_metadata(change):
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
        what = meaning(s, change, kind, actor, rec.subresource if rec else None, audited=rec is not None)
        if what is None:
            return
        if what.evicted and rec is not None:
            self._maybe_drain(change, rec)
        self._emit(
            ActionObserved(
                at=at,
                source=source_of(kind, rec.user_agent if rec else ""),
                actor=actor,
                kind=what.kind,
                actor_kind=kind,
                object=s.object,
                detail=what.detail,
                destructive=s.destructive,
                attribution=attribution,
            )
        )
        if what.kind == ActionKind.CORDON and rec is not None:
            self._cordoned(change.name, rec)

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
        found = (
            managed_fields_actor(change.new, s.field, drills_manager=r.FIELD_MANAGER)
            if change.type in ("MODIFIED", "ADDED")
            else None
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
        deadline = self.waits.monotonic() + self._audit_wait
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
            left = deadline - self.waits.monotonic()
            if s.default_actor is not None or left <= 0:
                return None
            # Once the tail has read well past the change, a missing line is not late, it is not there. "Well
            # past" is AUDIT_LATE, not AUDIT_LAG: on a starved machine the API server can send the watch event
            # some hundred milliseconds before its handler writes the audit line, and a responder's delete
            # must not become "unknown" for that. Only a change with no line pays the wait.
            late = change.received + AUDIT_LATE
            if self._catchup_ok and self.audit.wait_polled_after(late, timeout=0):
                return None
            if self.audit_feed is not None:
                # a replay: the tail's next recorded read, on this thread (nothing else would read it)
                if not self.audit_feed(late):
                    return None
            else:
                self.audit.wait_for_more(seen_count, min(left, AUDIT_RECHECK))

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
                source=source_of(kind, rec.user_agent),
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
        if not node_name:
            return
        node = self.cache.get("Node", node_name)
        if node is None or not (node.get("spec") or {}).get("unschedulable"):
            # The cordon may not have reached its watch yet (one watch per kind, each at its own pace):
            # kept, so the cordon when it comes makes this eviction part of a drain.
            self._evicted.setdefault(str(node_name), []).append(rec)
            return
        self._drain(str(node_name), rec)

    def _cordoned(self, node_name: str, cordon: AuditRecord) -> None:
        """A cordon seen after evictions its writer made on the node: those evictions were a drain."""
        for rec in self._evicted.pop(node_name, []):
            if rec.user == cordon.user and rec.at >= cordon.at:
                self._drain(node_name, rec)

    def _drain(self, node_name: str, rec: AuditRecord) -> None:
        if (node_name, rec.user) in self._drains:
            return
        self._drains.add((node_name, rec.user))
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
        if not counts_as_evidence(rec.actor_kind(self.identities)):
            return
        self._emit_audited(
            rec,
            ActionKind.EVIDENCE_READ,
            ref("Pod", rec.namespace, str(rec.name)),
            evidence_detail(rec.request_uri),
        )

    def _regrant(self, namespace: str) -> None:
        if self.identities is None or self.kube is None:
            return  # a replay has no cluster to grant on
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
            # journaled before the verdict is published: whoever sees the new verdict must find its
            # health.changed already in the journal
            self._emit(
                HealthChanged(
                    at=at,
                    source=Source.SYSTEM,
                    actor="drills-observer",
                    healthy=verdict.healthy,
                    reason=verdict.reason,
                )
            )
        self.verdict = verdict


def actor_of(username: str, user_agent: str, identities: Identities | None) -> ActorKind:
    """Exposed for tests and the CLI: the actor kind the observer would assign."""
    return actor_kind_for(username, user_agent, identities)
