"""Kubernetes objects as plain JSON dicts, for the code that handles many kinds the same way.

Faults record baselines and restore them, the revert ledger replays restores after a crash, and the observer
watches a dozen kinds: all of them want "get/replace/create/delete/list/watch this object of kind K" with the
object as the dict the API server sent, not as a generated client model (which drops unknown fields and
renames keys). This module is that, over the client's own HTTP plumbing (so authentication, TLS and retries
are the client's), with errors translated by :meth:`Kube.call`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from kubernetes.client.exceptions import ApiException
from kubernetes.watch import watch as _watch

from drills.adapters.kube.client import Kube
from drills.errors import DrillError, NotFound

Obj = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]

#: The field manager every write drills itself makes carries, so managedFields name drills.
FIELD_MANAGER = "drills-injector"

# the client splits a streamed response into lines for its own watches; untyped, hence Any
_iter_resp_lines: Any = _watch.iter_resp_lines

_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


@dataclass(frozen=True)
class Resource:
    kind: str
    #: The resource name in URLs and audit logs (``objectRef.resource``).
    plural: str
    group: str
    version: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base


_ALL = (
    Resource("Deployment", "deployments", "apps", "v1", True),
    Resource("ReplicaSet", "replicasets", "apps", "v1", True),
    Resource("Pod", "pods", "", "v1", True),
    Resource("Node", "nodes", "", "v1", False),
    Resource("Service", "services", "", "v1", True),
    Resource("ConfigMap", "configmaps", "", "v1", True),
    Resource("Secret", "secrets", "", "v1", True),
    Resource("Namespace", "namespaces", "", "v1", False),
    Resource("ServiceAccount", "serviceaccounts", "", "v1", True),
    Resource("Event", "events", "", "v1", True),
    Resource("EndpointSlice", "endpointslices", "discovery.k8s.io", "v1", True),
    Resource("PodDisruptionBudget", "poddisruptionbudgets", "policy", "v1", True),
    Resource("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling", "v2", True),
    Resource("Role", "roles", "rbac.authorization.k8s.io", "v1", True),
    Resource("RoleBinding", "rolebindings", "rbac.authorization.k8s.io", "v1", True),
    Resource("ClusterRole", "clusterroles", "rbac.authorization.k8s.io", "v1", False),
    Resource("ClusterRoleBinding", "clusterrolebindings", "rbac.authorization.k8s.io", "v1", False),
)
RESOURCES: dict[str, Resource] = {r.kind: r for r in _ALL}
BY_PLURAL: dict[str, Resource] = {r.plural: r for r in _ALL}


def resource(kind: str) -> Resource:
    try:
        return RESOURCES[kind]
    except KeyError:
        raise ValueError(f"drills does not handle objects of kind {kind!r}") from None


def ref(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped), the way journal events name objects."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


#: Ask for metadata only (``kubectl get --show-kind -o name`` style): Secret values never reach us.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"


def request(
    kube: Kube,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, Any]] = (),
    body: Any = None,
    content_type: str | None = None,
    timeout: float | tuple[float, float] | None = None,
    accept: str = "application/json",
) -> Any:
    """One API request; the decoded JSON answer. Raises ApiException (callers wrap in ``kube.call``)."""
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = content_type or "application/json"
    serialized = kube.api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query) or None,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp: Any = kube.api.call_api(*serialized, _request_timeout=timeout or kube.timeout)
    data = resp.read()
    text = data.decode("utf-8", errors="replace") if data else ""
    if not 200 <= resp.status <= 299:
        raise ApiException.from_response(http_resp=resp, body=text, data=None)
    return json.loads(text) if text else None


def _typed(obj: Obj, res: Resource, *, force: bool = False) -> Obj:
    if force:
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
    else:
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.api_version)
    return obj


def get(kube: Kube, kind: str, name: str, namespace: str | None = None) -> Obj | None:
    """The object, or None when it does not exist."""
    res = resource(kind)
    try:
        with kube.call(f"reading {kind} {namespace + '/' if namespace else ''}{name}"):
            return _typed(request(kube, "GET", res.path(namespace, name)), res)
    except NotFound:
        return None


def list_objects(
    kube: Kube,
    kind: str,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    metadata_only: bool = False,
    page: int | None = None,
    transform: Callable[[Obj], Obj] | None = None,
) -> tuple[list[Obj], str]:
    """Objects of a kind (in a namespace, or all) with kind/apiVersion set, and the list resourceVersion.

    ``page`` lists in chunks of that many objects (a consistent snapshot, via ``continue``) and ``transform``
    is applied per chunk, so a big list never sits in memory whole (the observer slims 10,000 pods so)."""
    res = resource(kind)
    query: list[tuple[str, Any]] = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    if page:
        query.append(("limit", page))
    items: list[Obj] = []
    token: str | None = None
    rv = ""
    while True:
        with kube.call(f"listing {res.plural}{' in ' + namespace if namespace else ''}"):
            data = request(
                kube,
                "GET",
                res.path(namespace),
                query=query + ([("continue", token)] if token else []),
                timeout=max(kube.timeout, 60.0),
                accept=METADATA_LIST if metadata_only else "application/json",
            )
        chunk = [_typed(i, res, force=metadata_only) for i in data.get("items") or []]
        items.extend([transform(i) for i in chunk] if transform else chunk)
        meta = data.get("metadata") or {}
        rv = str(meta.get("resourceVersion", rv))
        token = meta.get("continue") or None
        if not token:
            return items, rv


def create(kube: Kube, obj: Obj, *, field_manager: str = FIELD_MANAGER) -> Obj:
    res = resource(obj["kind"])
    ns = (obj.get("metadata") or {}).get("namespace")
    with kube.call(f"creating {ref(obj)}"):
        return _typed(
            request(kube, "POST", res.path(ns), query=[("fieldManager", field_manager)], body=obj), res
        )


def replace(kube: Kube, obj: Obj, *, field_manager: str = FIELD_MANAGER) -> Obj:
    """PUT the whole object; carries its resourceVersion, so a concurrent change is a 409 (ClusterError)."""
    res = resource(obj["kind"])
    meta = obj["metadata"]
    with kube.call(f"replacing {ref(obj)}"):
        return _typed(
            request(
                kube,
                "PUT",
                res.path(meta.get("namespace"), meta["name"]),
                query=[("fieldManager", field_manager)],
                body=obj,
            ),
            res,
        )


def patch(
    kube: Kube,
    kind: str,
    name: str,
    namespace: str | None,
    body: Any,
    *,
    patch_type: PatchType = "merge",
    field_manager: str = FIELD_MANAGER,
    subresource: str | None = None,
) -> Obj:
    res = resource(kind)
    with kube.call(f"patching {kind} {namespace + '/' if namespace else ''}{name}"):
        return _typed(
            request(
                kube,
                "PATCH",
                res.path(namespace, name, subresource),
                query=[("fieldManager", field_manager)],
                body=body,
                content_type=_CONTENT_TYPES[patch_type],
            ),
            res,
        )


def delete(
    kube: Kube,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    grace_period_seconds: int | None = None,
    propagation: str = "Background",
) -> bool:
    """Delete; False when it was already gone (so reverts and re-runs stay idempotent)."""
    res = resource(kind)
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    try:
        with kube.call(f"deleting {kind} {namespace + '/' if namespace else ''}{name}"):
            request(kube, "DELETE", res.path(namespace, name), body=body)
    except NotFound:
        return False
    return True


def evict(kube: Kube, name: str, namespace: str) -> None:
    """The Eviction API (what ``kubectl drain`` uses): respects PodDisruptionBudgets (429 when refused)."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
    with kube.call(f"evicting pod {namespace}/{name}"):
        request(kube, "POST", resource("Pod").path(namespace, name, "eviction"), body=body)


def watch_lines(
    kube: Kube,
    kind: str,
    *,
    namespace: str | None = None,
    resource_version: str | None = None,
    timeout_seconds: int = 300,
    label_selector: str | None = None,
    metadata_only: bool = False,
    on_response: Callable[[Any], None] | None = None,
) -> Iterator[Obj]:
    """Raw watch events (``{"type": ..., "object": {...}}``) from ``resource_version`` on.

    The caller (the observer) owns reconnection and 410 handling; this only speaks the protocol. Bookmarks
    are asked for so a quiet watch still advances its resourceVersion.
    """
    res = resource(kind)
    query: list[tuple[str, Any]] = [
        ("watch", "true"),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", timeout_seconds),
    ]
    if resource_version:
        query.append(("resourceVersion", resource_version))
    if label_selector:
        query.append(("labelSelector", label_selector))
    serialized = kube.api.param_serialize(
        method="GET",
        resource_path=res.path(namespace),
        query_params=query,
        header_params={"Accept": METADATA_WATCH if metadata_only else "application/json"},
        auth_settings=["BearerToken"],
    )
    with kube.call(f"watching {res.plural}"):
        resp: Any = kube.api.call_api(*serialized, _request_timeout=(5.0, timeout_seconds + 15.0))
        if not 200 <= resp.status <= 299:
            data = resp.read()
            raise ApiException.from_response(http_resp=resp, body=data.decode("utf-8", "replace"), data=None)
    raw = resp.response
    if on_response is not None:
        on_response(raw)  # lets the owner interrupt the blocking read (``raw.shutdown()``) to stop at once
    try:
        with kube.call(f"watching {res.plural}"):
            for line in _iter_resp_lines(raw):
                if line:
                    try:
                        event: Obj = json.loads(line)
                    except ValueError as e:
                        # A torn or garbled stream (seen under heavy load): the caller resumes from its
                        # last resourceVersion, so nothing is lost by dropping this connection.
                        raise DrillError(
                            f"the watch on {res.plural} sent a line that is not JSON ({e})",
                            hint="the watch is resumed from the last resourceVersion it saw",
                        ) from e
                    obj = event.get("object")
                    if isinstance(obj, dict) and event.get("type") != "ERROR":
                        _typed(obj, res, force=metadata_only)
                    yield event
    finally:
        # A watch left early still has bytes in flight (some already decrypted inside the TLS layer, where
        # the pool's liveness check cannot see them): the connection is closed, never handed to another
        # request that would read them as its own.
        raw.close()
        raw.release_conn()


_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")


def strip_for_create(obj: Mapping[str, Any]) -> Obj:
    """A copy fit to POST again: server-set metadata and status removed (the baseline of a recreate)."""
    clean = copy.deepcopy(dict(obj))
    meta = clean.setdefault("metadata", {})
    for key in (*_SERVER_META, "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences"):
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    clean.pop("status", None)
    return clean


def get_path(obj: Mapping[str, Any], path: Sequence[str]) -> tuple[bool, Any]:
    """(present, value) at a key path."""
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur:
            return False, None
        cur = cur[key]
    return True, cur


def set_path(obj: Obj, path: Sequence[str], present: bool, value: Any) -> None:
    """Set (or, when not ``present``, remove) the value at a key path, creating parents as needed."""
    cur = obj
    for key in path[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            if not present:
                return
            nxt = {}
            cur[key] = nxt
        cur = nxt
    if present:
        cur[path[-1]] = copy.deepcopy(value)
    else:
        cur.pop(path[-1], None)
