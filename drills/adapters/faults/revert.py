"""Undo operations as data: what the ledger stores and what both a live revert and ``drill recover`` run.

An injector describes its undo as a list of small JSON operations *before* it injects (they go to the
ledger). Running them needs nothing but a cluster client, so a different process, after a crash, reverts
exactly as the injector would have. Every operation restores the *recorded baseline* (the values read
before the fault), never "the previous revision", and is idempotent: running it twice, or on an object
already back at baseline, changes nothing.

The operations are the models of :mod:`drills.model.revert` (one ``op`` discriminator: ``restore``,
``recreate``, ``namespace``, ``chaostoolkit-rollbacks``, ``pod-annotations``, ``delete``, ``none``);
injectors may hand them over in their JSON form (the ledger's), which :func:`apply_ops` validates first.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from drills.adapters.chaostoolkit import run_rollbacks
from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.errors import ClusterError, NotFound, RevertError
from drills.model.revert import (
    ChaosToolkitRollbacks,
    Delete,
    Nothing,
    ObjectPath,
    PodAnnotations,
    Recreate,
    Restore,
    RestoreNamespace,
    RevertOp,
    op_problems,
    parse_ops,
)
from drills.timing import SYSTEM_CLOCK, Clock

_CONFLICT_RETRIES = 8


def restore_values(obj: Mapping[str, Any], paths: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The baseline values at ``paths`` of ``obj``, in the form a ``restore`` operation carries."""
    values = []
    for path in paths:
        present, value = r.get_path(obj, path)
        values.append({"path": list(path), "present": present, "value": value})
    return values


def restore(obj: Mapping[str, Any], paths: Sequence[Sequence[str]], *, if_missing: str = "skip") -> Restore:
    """The ``restore`` operation putting ``obj``'s fields at ``paths`` back to what they are now."""
    meta = obj.get("metadata") or {}
    return Restore.model_validate(
        {
            "kind": obj["kind"],
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "values": restore_values(obj, paths),
            "if_missing": if_missing,
            "object": r.strip_for_create(obj) if if_missing == "recreate" else None,
        }
    )


def restore_op(
    obj: Mapping[str, Any], paths: Sequence[Sequence[str]], *, if_missing: str = "skip"
) -> dict[str, Any]:
    """:func:`restore` in the ledger's JSON form (what injectors collect)."""
    return restore(obj, paths, if_missing=if_missing).model_dump(mode="json", exclude_none=True)


def _is_conflict(e: ClusterError) -> bool:
    return getattr(e.__cause__, "status", None) == 409


def _restore(kube: Kube, op: Restore, clock: Clock) -> str:
    kind, ns, name = op.kind, op.namespace, op.name
    label = f"{kind}/{ns + '/' if ns else ''}{name}"
    for _attempt in range(_CONFLICT_RETRIES):
        current = r.get(kube, kind, name, ns)
        if current is None:
            if op.if_missing == "recreate" and op.object:
                return _recreate(kube, Recreate(object=op.object, paths=[v.path for v in op.values]), clock)
            return f"{label} is gone: nothing to restore"
        if current["metadata"].get("deletionTimestamp") and op.if_missing == "recreate":
            _wait_gone(kube, kind, name, ns, clock)
            continue
        live = copy.deepcopy(current)
        for v in op.values:
            present, value = r.get_path(current, v.path)
            if present != v.present or (present and value != v.value):
                r.set_path(current, v.path, v.present, v.value)
        _keep_allocated(live, current)
        if current == live:
            return f"{label} already at baseline"
        try:
            r.replace(kube, current)
        except NotFound:
            continue
        except ClusterError as e:
            if _is_conflict(e):
                continue
            raise
        return f"{label} restored"
    raise RevertError(
        f"could not restore {label}: it kept changing under us ({_CONFLICT_RETRIES} conflicts)",
        hint="the revert stays pending; run `drill recover` again",
    )


# Fields the API server allocates once and then refuses to change: an object recreated meanwhile (by a
# responder restoring a backup) keeps its own, and restoring the rest of the baseline is what matters.
_ALLOCATED: dict[str, tuple[tuple[str, ...], ...]] = {
    "Service": (("spec", "clusterIP"), ("spec", "clusterIPs"), ("spec", "ipFamilies")),
}


def _keep_allocated(live: Mapping[str, Any], target: dict[str, Any]) -> None:
    for path in _ALLOCATED.get(str(live.get("kind")), ()):
        present, value = r.get_path(live, path)
        if present:
            r.set_path(target, path, True, value)


def _wait_gone(
    kube: Kube, kind: str, name: str, ns: str | None, clock: Clock, timeout: float = 120.0
) -> None:
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if r.get(kube, kind, name, ns) is None:
            return
        clock.sleep(0.2)
    raise RevertError(
        f"{kind} {name} is still being deleted after {timeout:.0f}s; cannot recreate it yet",
        hint="the revert stays pending; run `drill recover` once the deletion has finished",
    )


def _recreate(kube: Kube, op: Recreate, clock: Clock) -> str:
    obj = dict(op.object)
    meta = obj["metadata"]
    kind, ns, name = obj["kind"], meta.get("namespace"), meta["name"]
    current = r.get(kube, kind, name, ns)
    if current is not None and current["metadata"].get("deletionTimestamp"):
        _wait_gone(kube, kind, name, ns, clock)
        current = None
    if current is None:
        try:
            r.create(kube, r.strip_for_create(obj))
        except ClusterError as e:
            if getattr(e.__cause__, "status", None) != 409:  # created meanwhile: restore it below
                raise
        else:
            return f"{r.ref(obj)} recreated"
    paths: list[ObjectPath] = op.paths or [["spec"]]
    return _restore(kube, restore(obj, paths), clock)


def _pod_annotations(kube: Kube, op: PodAnnotations) -> str:
    """Set annotations back on every live pod of a selector (pods created during the fault included)."""
    ns, wanted = op.namespace, op.annotations
    pods, _ = r.list_objects(kube, "Pod", ns, label_selector=op.selector)
    fixed = 0
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue
        have = p["metadata"].get("annotations") or {}
        patch = {k: v for k, v in wanted.items() if have.get(k) != v}
        if patch:
            try:
                r.patch(kube, "Pod", p["metadata"]["name"], ns, {"metadata": {"annotations": patch}})
            except NotFound:
                continue
            fixed += 1
    return f"annotations restored on {fixed} pods of {op.selector} in {ns}"


def _namespace(kube: Kube, op: RestoreNamespace, clock: Clock) -> list[str]:
    ns_obj = op.object
    name = ns_obj["metadata"]["name"]
    notes = [_recreate(kube, Recreate(object=ns_obj, paths=[["metadata", "labels"]]), clock)]
    for obj in op.objects:
        paths = _content_paths(obj) + _annotation_paths(kube, obj)
        notes.append(_recreate(kube, Recreate(object=obj, paths=paths), clock))
    return [f"namespace {name}: " + "; ".join(notes)]


# Annotations that controllers keep (the Deployment's revision): theirs, never put back.
_CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/",)


def _annotation_paths(kube: Kube, obj: Mapping[str, Any]) -> list[ObjectPath]:
    """The captured annotations, and the removal of any a restore added (a responder's `kubectl apply` of a
    backup leaves last-applied-configuration behind)."""
    meta = obj["metadata"]
    live = r.get(kube, obj["kind"], meta["name"], meta.get("namespace")) or {}
    keys = set(meta.get("annotations") or {}) | set((live.get("metadata") or {}).get("annotations") or {})
    return [["metadata", "annotations", k] for k in sorted(keys) if not k.startswith(_CONTROLLER_ANNOTATIONS)]


def _content_paths(obj: Mapping[str, Any]) -> list[ObjectPath]:
    """What "the same object" means per kind when comparing with a baseline."""
    kind = obj.get("kind")
    if kind in ("ConfigMap", "Secret"):
        return [["data"], ["metadata", "labels"]]
    if kind in ("Role", "ClusterRole"):
        return [["rules"]]
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        return [["subjects"]]
    if kind == "ServiceAccount":
        return [["metadata", "labels"]]
    return [["spec"], ["metadata", "labels"]]


def content_paths(obj: Mapping[str, Any]) -> list[ObjectPath]:
    return _content_paths(obj)


def typed_ops(
    ops: Sequence[RevertOp | Mapping[str, Any]], *, where: str = "revert operations"
) -> list[RevertOp]:
    """Operations validated into their models; a broken one is a RevertError saying which and why."""
    try:
        return parse_ops(ops)
    except ValidationError as e:
        raise RevertError(
            f"{where}: {'; '.join(op_problems(e))}",
            hint="was it written by a newer drills, or edited by hand? nothing was reverted",
        ) from e


def apply_ops(
    kube: Kube,
    ops: Sequence[RevertOp | Mapping[str, Any]],
    *,
    sink: Any = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[str]:
    """Run undo operations in reverse order of recording; returns what each did. Raises RevertError.

    ``sink`` (a journal) receives the Chaos Toolkit rollback events, when there are any. Operations in
    their JSON form are validated before any of them runs.
    """
    notes: list[str] = []
    for op in reversed(typed_ops(ops)):
        try:
            match op:
                case Restore():
                    notes.append(_restore(kube, op, clock))
                case Recreate():
                    notes.append(_recreate(kube, op, clock))
                case RestoreNamespace():
                    notes.extend(_namespace(kube, op, clock))
                case ChaosToolkitRollbacks():
                    notes.append(run_rollbacks(op, sink=sink, clock=clock))
                case PodAnnotations():
                    notes.append(_pod_annotations(kube, op))
                case Delete():
                    existed = r.delete(kube, op.kind, op.name, op.namespace)
                    notes.append(f"{op.kind}/{op.name} " + ("deleted" if existed else "already gone"))
                case Nothing():
                    notes.append(op.why)
        except RevertError:
            raise
        except ClusterError as e:
            raise RevertError(
                f"revert failed: {e.message}",
                hint="the revert stays pending in the ledger; run `drill recover`",
            ) from e
    return notes
