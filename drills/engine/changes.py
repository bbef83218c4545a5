"""What a watch change means: pure classification of object changes into actions.

A Kubernetes watch says an object went from one version to another; a drill needs to know what somebody
*did*: rolled back, scaled, cordoned, changed an env var, deleted a pod. These functions answer that from
plain dicts (the old and the new object, the Deployment's ReplicaSets for rollbacks, and, once the observer
has found the write's audit record, who made it and through which subresource). They live in the engine so
they can be tested without a cluster and reused by anything that replays a cluster's history; the observer
(:mod:`drills.adapters.kube.observer`) keeps the watching, reconnecting and audit-joining I/O.

No clock, no client: every change carries the time it was received.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drills.engine.health import node_ready
from drills.model.events import ActionKind, ActorKind, Source

TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
#: The field manager drills' own writes carry (``drills.adapters.kube.resources.FIELD_MANAGER``).
DRILLS_FIELD_MANAGER = "drills-injector"
#: Kinds whose deletion is an action (a pod's is handled apart: it begins with a deletionTimestamp).
DELETABLE = frozenset(
    {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Namespace",
    }
)
CREATABLE = frozenset({"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Namespace"})


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


# ---- classification: dicts in, Seen out ----------------------------------------------------------------


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


def plural(kind: str) -> str:
    """The API resource of a watched kind, as the audit log names it (all of them are lower case plus s)."""
    return kind.lower() + "s"


def classify(change: Change, replicasets: Sequence[Mapping[str, Any]] = ()) -> list[Seen]:
    """The actions a change shows (none for status-only updates, which are the controllers' bookkeeping)."""
    kind, old, new = change.kind, change.old, change.new
    ns, name = change.namespace, change.name
    res = plural(kind)
    obj_ref = _ref(kind, ns, name)

    def seen(action: ActionKind, detail: str, *, namespace: str | None = ns, **kw: Any) -> Seen:
        return Seen(action, obj_ref, detail, res, namespace, name, **kw)

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
        if kind in CREATABLE:
            return [seen(ActionKind.CREATED, f"{kind} created", verbs=frozenset({"create"}))]
        return []

    if change.type == "DELETED":
        if kind == "Pod":
            if _meta(old).get("deletionTimestamp"):
                return []  # already reported when the deletion began
            return [_pod_deleted(obj_ref, ns, name)]
        if kind in DELETABLE:
            if _meta(old).get("deletionTimestamp"):
                return []  # reported when the deletion began (a finalizer held the object until now)
            return [_deleted(seen, kind, name)]
        return []

    # MODIFIED
    assert old is not None and new is not None
    if kind in DELETABLE and _meta(new).get("deletionTimestamp") and not _meta(old).get("deletionTimestamp"):
        # A namespace (or an object deleted in the foreground) lives on, terminating, until its finalizers
        # are done, seconds later: the deletion is the request that began it, so it is reported now.
        return [_deleted(seen, kind, name)]
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
        return _deployment_changes(old, new, seen, replicasets, change.received)
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


def _deleted(seen: Callable[..., Seen], kind: str, name: str) -> Seen:
    # the audit log files a namespace's own deletion under the namespace itself
    where = {"namespace": name} if kind == "Namespace" else {}
    return seen(ActionKind.DELETED, f"{kind} deleted", verbs=frozenset({"delete"}), destructive=True, **where)


def _made_for_this_rollout(rs: Mapping[str, Any], received: datetime) -> bool:
    """The ReplicaSet the Deployment controller made for this very template change (the watch cache may
    already hold it when the change is classified): created since just before the change arrived. A
    rollback goes back to an older one. creationTimestamp has whole seconds, hence the margin."""
    created = _created(rs)  # already a second early
    return created is not None and created >= received.replace(microsecond=0) - timedelta(seconds=1)


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
    received: datetime,
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
                and not _made_for_this_rollout(rs, received)
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
    obj: Mapping[str, Any] | None,
    field: Sequence[str] | None = None,
    *,
    drills_manager: str = DRILLS_FIELD_MANAGER,
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
    if manager == drills_manager:
        return ActorKind.DRILLS, manager
    if manager.startswith("kubectl"):
        return ActorKind.RESPONDER, manager
    if manager:
        return ActorKind.CONTROLLER, manager
    return None


def source_of(kind: ActorKind, user_agent: str = "") -> Source:
    """Where an action came from, for the journal: a person at kubectl, the bot, drills, a controller."""
    return {
        ActorKind.RESPONDER: Source.HUMAN,
        ActorKind.BOT: Source.BOT,
        ActorKind.DRILLS: Source.SYSTEM,
        ActorKind.CONTROLLER: Source.CONTROLLER,
    }.get(kind, Source.HUMAN if user_agent.startswith("kubectl") else Source.SYSTEM)


# ---- after attribution: what the action is, knowing who did it -------------------------------------------


@dataclass(frozen=True)
class Meaning:
    """An action as the journal states it, once the write's author (and its subresource) is known."""

    kind: ActionKind
    detail: str
    #: the pod was evicted: with a cordoned node under it, part of a drain
    evicted: bool = False


def meaning(
    seen: Seen, change: Change, actor_kind: ActorKind, actor: str, subresource: str | None, audited: bool
) -> Meaning | None:
    """What a classified change means given its writer (None: bookkeeping, not an action).

    ``subresource`` is the audit record's (``eviction`` turns a pod deletion into an eviction); ``audited``
    says the writer comes from the audit log rather than a guess."""
    action, detail = seen.kind, seen.detail
    if audited and subresource == "eviction" and action == ActionKind.POD_DELETED:
        return Meaning(ActionKind.EVICT, "pod evicted", evicted=True)
    if action == ActionKind.PATCHED and seen.resource == "pods" and actor_kind == ActorKind.CONTROLLER:
        return None  # the scheduler or kwok labelling a pod: bookkeeping, not an action
    if action == ActionKind.POD_DELETED and audited and actor_kind == ActorKind.CONTROLLER:
        return Meaning(action, f"pod deleted by {actor}")
    if action == ActionKind.ROLLBACK and actor_kind == ActorKind.DRILLS and change.old and change.new:
        # A fault injected again rolls out a template an earlier drill left in the history: that is the
        # fault going in (or its revert), never a rollback someone chose.
        action, detail = template_change(
            _spec(change.old).get("template") or {}, _spec(change.new).get("template") or {}
        )
        return Meaning(
            action, f"{detail} ({seen.detail.replace('pod template back to', 'same template as')})"
        )
    return Meaning(action, detail)


def restart_counts(pod: Mapping[str, Any] | None) -> dict[str, int]:
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return {str(c.get("name")): int(c.get("restartCount") or 0) for c in statuses}


def restarted(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """A container of the pod restarted between the two versions (its restartCount went up)."""
    before, after = restart_counts(old), restart_counts(new)
    return any(after[name] > before.get(name, after[name]) for name in after)


def wrote_spec_or_metadata(change: Change) -> bool:
    """The change came from a write the audit log records (spec, labels, annotations), not a status update
    (the audit policy leaves status writes out)."""
    if change.type != "MODIFIED" or change.old is None or change.new is None:
        return False
    old, new = change.old, change.new
    return not (
        old.get("spec") == new.get("spec")
        and _meta(old).get("labels") == _meta(new).get("labels")
        and _meta(old).get("annotations") == _meta(new).get("annotations")
    )


def evidence_detail(request_uri: str) -> str:
    """A ``kubectl logs`` read, as the journal says it."""
    if "previous=true" in request_uri:
        return "read the logs of the previous container"
    return "read the logs"


def counts_as_evidence(actor_kind: ActorKind) -> bool:
    """Reads by people (and the bot) are evidence of triage; a controller's or drills' reads are not."""
    return actor_kind in (ActorKind.RESPONDER, ActorKind.BOT, ActorKind.UNKNOWN)


def ref(kind: str, ns: str | None, name: str) -> str:
    """An object as the journal names it: ``Kind/namespace/name`` (``Kind/name`` when cluster-wide)."""
    return _ref(kind, ns, name)
