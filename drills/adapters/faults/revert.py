"""Undo operations as data: what the ledger stores and what both a live revert and ``drill recover`` run.

An injector describes its undo as a list of small JSON operations *before* it injects (they go to the
ledger). Running them needs nothing but a cluster client, so a different process, after a crash, reverts
exactly as the injector would have. Every operation restores the *recorded baseline* (the values read
before the fault), never "the previous revision", and is idempotent: running it twice, or on an object
already back at baseline, changes nothing.

Operations::

    {"op": "restore", "kind", "namespace", "name", "values": [{"path": [...], "present": bool, "value": ...}],
     "if_missing": "skip" | "recreate", "object": {...}}     put fields back (PUT with resourceVersion)
    {"op": "recreate", "object": {...}, "paths": [[...]]}     create if gone; else restore those fields
    {"op": "namespace", "object": {...}, "objects": [...]}    wait out Terminating, recreate, re-apply all
    {"op": "chaostoolkit-rollbacks", ...}                     run an experiment's rollbacks (chaostoolkit.py)
    {"op": "delete", "kind", "namespace", "name"}             remove an object the fault created
    {"op": "pod-annotations", "namespace", "selector", "annotations": {k: v | null}}
                                                              every live pod of a selector back to values
    {"op": "none", "why": ...}                                nothing to undo (e.g. killed pods come back)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

from drills.adapters.chaostoolkit import run_rollbacks
from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.errors import ClusterError, NotFound, RevertError
from drills.timing import SYSTEM_CLOCK, Clock

_CONFLICT_RETRIES = 8


def restore_values(obj: Mapping[str, Any], paths: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The baseline values at ``paths`` of ``obj``, in the form a ``restore`` operation carries."""
    values = []
    for path in paths:
        present, value = r.get_path(obj, path)
        values.append({"path": list(path), "present": present, "value": value})
    return values


def restore_op(
    obj: Mapping[str, Any], paths: Sequence[Sequence[str]], *, if_missing: str = "skip"
) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    op: dict[str, Any] = {
        "op": "restore",
        "kind": obj["kind"],
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "values": restore_values(obj, paths),
        "if_missing": if_missing,
    }
    if if_missing == "recreate":
        op["object"] = r.strip_for_create(obj)
    return op


def _is_conflict(e: ClusterError) -> bool:
    return getattr(e.__cause__, "status", None) == 409


def _restore(kube: Kube, op: Mapping[str, Any]) -> str:
    kind, ns, name = op["kind"], op.get("namespace"), op["name"]
    label = f"{kind}/{ns + '/' if ns else ''}{name}"
    for _attempt in range(_CONFLICT_RETRIES):
        current = r.get(kube, kind, name, ns)
        if current is None:
            if op.get("if_missing") == "recreate" and op.get("object"):
                return _recreate(kube, {"object": op["object"], "paths": [v["path"] for v in op["values"]]})
            return f"{label} is gone: nothing to restore"
        if current["metadata"].get("deletionTimestamp") and op.get("if_missing") == "recreate":
            _wait_gone(kube, kind, name, ns)
            continue
        live = copy.deepcopy(current)
        for v in op["values"]:
            present, value = r.get_path(current, v["path"])
            if present != v["present"] or (present and value != v["value"]):
                r.set_path(current, v["path"], v["present"], v["value"])
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


def _wait_gone(kube: Kube, kind: str, name: str, ns: str | None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if r.get(kube, kind, name, ns) is None:
            return
        time.sleep(0.2)
    raise RevertError(
        f"{kind} {name} is still being deleted after {timeout:.0f}s; cannot recreate it yet",
        hint="the revert stays pending; run `drill recover` once the deletion has finished",
    )


def _recreate(kube: Kube, op: Mapping[str, Any]) -> str:
    obj = dict(op["object"])
    meta = obj["metadata"]
    kind, ns, name = obj["kind"], meta.get("namespace"), meta["name"]
    current = r.get(kube, kind, name, ns)
    if current is not None and current["metadata"].get("deletionTimestamp"):
        _wait_gone(kube, kind, name, ns)
        current = None
    if current is None:
        try:
            r.create(kube, r.strip_for_create(obj))
        except ClusterError as e:
            if getattr(e.__cause__, "status", None) != 409:  # created meanwhile: restore it below
                raise
        else:
            return f"{r.ref(obj)} recreated"
    paths = op.get("paths") or [["spec"]]
    return _restore(kube, restore_op(obj, paths))


def _pod_annotations(kube: Kube, op: Mapping[str, Any]) -> str:
    """Set annotations back on every live pod of a selector (pods created during the fault included)."""
    ns, wanted = op["namespace"], op["annotations"]
    pods, _ = r.list_objects(kube, "Pod", ns, label_selector=op["selector"])
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
    return f"annotations restored on {fixed} pods of {op['selector']} in {ns}"


def _namespace(kube: Kube, op: Mapping[str, Any]) -> list[str]:
    ns_obj = op["object"]
    name = ns_obj["metadata"]["name"]
    notes = [_recreate(kube, {"object": ns_obj, "paths": [["metadata", "labels"]]})]
    for obj in op.get("objects") or []:
        paths = _content_paths(obj) + _annotation_paths(kube, obj)
        notes.append(_recreate(kube, {"object": obj, "paths": paths}))
    return [f"namespace {name}: " + "; ".join(notes)]


# Annotations that controllers keep (the Deployment's revision): theirs, never put back.
_CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/",)


def _annotation_paths(kube: Kube, obj: Mapping[str, Any]) -> list[list[str]]:
    """The captured annotations, and the removal of any a restore added (a responder's `kubectl apply` of a
    backup leaves last-applied-configuration behind)."""
    meta = obj["metadata"]
    live = r.get(kube, obj["kind"], meta["name"], meta.get("namespace")) or {}
    keys = set(meta.get("annotations") or {}) | set((live.get("metadata") or {}).get("annotations") or {})
    return [["metadata", "annotations", k] for k in sorted(keys) if not k.startswith(_CONTROLLER_ANNOTATIONS)]


def _content_paths(obj: Mapping[str, Any]) -> list[list[str]]:
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


def content_paths(obj: Mapping[str, Any]) -> list[list[str]]:
    return _content_paths(obj)


def apply_ops(
    kube: Kube, ops: Sequence[Mapping[str, Any]], *, sink: Any = None, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """Run undo operations in reverse order of recording; returns what each did. Raises RevertError.

    ``sink`` (a journal) receives the Chaos Toolkit rollback events, when there are any.
    """
    notes: list[str] = []
    for op in reversed(list(ops)):
        kind = op.get("op")
        try:
            if kind == "restore":
                notes.append(_restore(kube, op))
            elif kind == "recreate":
                notes.append(_recreate(kube, op))
            elif kind == "namespace":
                notes.extend(_namespace(kube, op))
            elif kind == "chaostoolkit-rollbacks":
                notes.append(run_rollbacks(op, sink=sink, clock=clock))
            elif kind == "pod-annotations":
                notes.append(_pod_annotations(kube, op))
            elif kind == "delete":
                existed = r.delete(kube, op["kind"], op["name"], op.get("namespace"))
                notes.append(f"{op['kind']}/{op['name']} " + ("deleted" if existed else "already gone"))
            elif kind == "none":
                notes.append(str(op.get("why", "nothing to undo")))
            else:
                raise RevertError(
                    f"unknown revert operation {kind!r} in the ledger",
                    hint="was it written by a newer drills?",
                )
        except RevertError:
            raise
        except ClusterError as e:
            raise RevertError(
                f"revert failed: {e.message}",
                hint="the revert stays pending in the ledger; run `drill recover`",
            ) from e
    return notes
