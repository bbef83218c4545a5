"""Cluster state as kube-state-metrics metrics, so the community's alert rules run unchanged against a drill.

kube-state-metrics cannot be built here (the Go module proxy refuses it), and on the embedded cluster there is
no node to run it on anyway. Alert rules, however, are written against its metric *names and labels*
(``kube_deployment_status_replicas_available{namespace, deployment}``...). This module exports that subset
from the objects drills already holds: a :class:`ClusterStateSource` gives the current objects of a kind as
the plain JSON dicts the API server sends, and :class:`KubeStateCollector` turns them into metric families at
each scrape. On kind, the user's real kube-state-metrics can be scraped instead: the rules in
fixtures/prometheus/ only use names and labels both produce.

Sources: the observer's watch cache (``observer.cache``, which has the same ``list(kind)`` shape) during a
drill; :class:`KubeListSource` (one list call per kind, cached for a fraction of the scrape interval) when no
observer runs, e.g. for the standalone exporter process ``python -m drills.adapters.monitoring.ksm_exporter`` that
``drill monitoring up`` starts; :class:`StaticStateSource` for tests.

Everything is served on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_wsgi_server

from drills.adapters.kube.client import Kube
from drills.errors import DrillError, UsageError
from drills.timing import SYSTEM_CLOCK

#: The kinds the exporter reads, named as Kubernetes names them.
KINDS: tuple[str, ...] = ("Deployment", "Pod", "Node", "HorizontalPodAutoscaler", "Job")

LOOPBACK = "127.0.0.1"

_POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_CONDITION_STATUSES = ("true", "false", "unknown")


class ClusterStateSource(Protocol):
    """Where the exporter reads cluster objects from: API JSON dicts (camelCase keys) of one kind."""

    def list(self, kind: str) -> list[dict[str, Any]]: ...


class StaticStateSource:
    """A fixed set of objects per kind (tests, and replaying a snapshot)."""

    def __init__(self, objects: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> None:
        self._objects: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in (objects or {}).items()}
        self._lock = threading.Lock()

    def set(self, kind: str, objects: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self._objects[kind] = list(objects)

    def list(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.get(kind, []))


class KubeListSource:
    """Lists each kind from the API server when asked, keeping the answer for ``max_age`` seconds.

    Used when no observer (and so no watch cache) is running. A scrape every 2 s lists five kinds: on a drill
    cluster that is a few small requests, and each scrape sees the state as of that scrape, as with a watch.
    """

    def __init__(
        self,
        kube: Any,
        *,
        max_age: float = 0.5,
        namespaces: Sequence[str] | None = None,
        monotonic: Callable[[], float] = SYSTEM_CLOCK.monotonic,
    ) -> None:
        self._kube = kube
        self._max_age = max_age
        self._namespaces = list(namespaces) if namespaces else None
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def _list(self, kind: str) -> list[dict[str, Any]]:
        kube = self._kube
        namespaced: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "Deployment": (
                kube.apps.list_deployment_for_all_namespaces,
                kube.apps.list_namespaced_deployment,
            ),
            "Pod": (kube.core.list_pod_for_all_namespaces, kube.core.list_namespaced_pod),
            "HorizontalPodAutoscaler": (
                kube.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                kube.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            ),
            "Job": (kube.batch.list_job_for_all_namespaces, kube.batch.list_namespaced_job),
        }
        with kube.call(f"listing {kind} objects for the state metrics"):
            if kind == "Node":
                return [kube.to_dict(o) for o in kube.core.list_node(_request_timeout=10).items]
            if kind not in namespaced:
                return []
            every, one = namespaced[kind]
            if self._namespaces is None:
                return [kube.to_dict(o) for o in every(_request_timeout=10).items]
            return [kube.to_dict(o) for ns in self._namespaces for o in one(ns, _request_timeout=10).items]

    def list(self, kind: str) -> list[dict[str, Any]]:
        now = self._monotonic()
        with self._lock:
            hit = self._cache.get(kind)
            if hit is not None and now - hit[0] < self._max_age:
                return hit[1]
        objects = self._list(kind)
        with self._lock:
            self._cache[kind] = (now, objects)
        return objects


# ---- reading API objects --------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur or cur[key] is None:
            return default
        cur = cur[key]
    return cur


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    return default


def _condition_status(value: Any) -> str:
    text = str(value or "").lower()
    return text if text in ("true", "false") else "unknown"


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = _get(obj, "status", "conditions", default=[])
    return [c for c in found if isinstance(c, Mapping) and c.get("type")] if isinstance(found, list) else []


def _condition_families(
    name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], Mapping[str, Any]]]
) -> GaugeMetricFamily:
    """kube-state-metrics style: one series per condition and status value, 1 for the current status."""
    family = GaugeMetricFamily(name, doc, labels=[*labels, "condition", "status"])
    for values, cond in rows:
        current = _condition_status(cond.get("status"))
        for status in _CONDITION_STATUSES:
            family.add_metric([*values, str(cond["type"]), status], 1.0 if status == current else 0.0)
    return family


class KubeStateCollector:
    """A prometheus-client custom collector reading a :class:`ClusterStateSource` at every scrape."""

    def __init__(self, source: ClusterStateSource) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (and so the API server) at start-up.
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._deployments(self.source.list("Deployment"))
        yield from self._pods(self.source.list("Pod"))
        yield from self._nodes(self.source.list("Node"))
        yield from self._hpas(self.source.list("HorizontalPodAutoscaler"))
        yield from self._jobs(self.source.list("Job"))

    # -- deployments --

    def _deployments(self, deployments: list[dict[str, Any]]) -> Iterator[Metric]:
        labels = ["namespace", "deployment"]
        gauges = {
            "spec_replicas": ("kube_deployment_spec_replicas", "Number of desired pods for a deployment."),
            "replicas": ("kube_deployment_status_replicas", "The number of replicas per deployment."),
            "available": (
                "kube_deployment_status_replicas_available",
                "The number of available replicas per deployment.",
            ),
            "unavailable": (
                "kube_deployment_status_replicas_unavailable",
                "The number of unavailable replicas per deployment.",
            ),
            "updated": (
                "kube_deployment_status_replicas_updated",
                "The number of updated replicas per deployment.",
            ),
            "ready": (
                "kube_deployment_status_replicas_ready",
                "The number of ready replicas per deployment.",
            ),
            "observed": (
                "kube_deployment_status_observed_generation",
                "The generation observed by the deployment controller.",
            ),
            "generation": (
                "kube_deployment_metadata_generation",
                "Sequence number representing a specific generation of the desired state.",
            ),
            "paused": ("kube_deployment_spec_paused", "Whether the deployment is paused."),
        }
        families = {k: GaugeMetricFamily(n, d, labels=labels) for k, (n, d) in gauges.items()}
        conditions: list[tuple[list[str], Mapping[str, Any]]] = []
        for d in deployments:
            values = [str(_get(d, "metadata", "namespace", default="")), str(_get(d, "metadata", "name"))]
            status = _get(d, "status", default={})
            families["spec_replicas"].add_metric(values, _int(_get(d, "spec", "replicas"), 1))
            families["replicas"].add_metric(values, _int(status.get("replicas")))
            families["available"].add_metric(values, _int(status.get("availableReplicas")))
            families["unavailable"].add_metric(values, _int(status.get("unavailableReplicas")))
            families["updated"].add_metric(values, _int(status.get("updatedReplicas")))
            families["ready"].add_metric(values, _int(status.get("readyReplicas")))
            families["observed"].add_metric(values, _int(status.get("observedGeneration")))
            families["generation"].add_metric(values, _int(_get(d, "metadata", "generation")))
            families["paused"].add_metric(values, 1.0 if _get(d, "spec", "paused") else 0.0)
            conditions.extend((values, c) for c in _conditions(d))
        yield from families.values()
        yield _condition_families(
            "kube_deployment_status_condition",
            "The current status conditions of a deployment.",
            labels,
            conditions,
        )

    # -- pods and their containers --

    def _pods(self, pods: list[dict[str, Any]]) -> Iterator[Metric]:
        pod_labels = ["namespace", "pod", "uid"]
        c_labels = [*pod_labels, "container"]
        info = GaugeMetricFamily(
            "kube_pod_info",
            "Information about pod.",
            labels=[*pod_labels, "node", "created_by_kind", "created_by_name"],
        )
        owner = GaugeMetricFamily(
            "kube_pod_owner",
            "Information about the Pod's owner.",
            labels=[*pod_labels, "owner_kind", "owner_name", "owner_is_controller"],
        )
        phase = GaugeMetricFamily(
            "kube_pod_status_phase", "The pods current phase.", labels=[*pod_labels, "phase"]
        )
        ready = GaugeMetricFamily(
            "kube_pod_status_ready",
            "Describes whether the pod is ready to serve requests.",
            labels=[*pod_labels, "condition"],
        )
        restarts = CounterMetricFamily(
            "kube_pod_container_status_restarts",
            "The number of container restarts per container.",
            labels=c_labels,
        )
        waiting = GaugeMetricFamily(
            "kube_pod_container_status_waiting",
            "Describes whether the container is currently in waiting state.",
            labels=c_labels,
        )
        waiting_reason = GaugeMetricFamily(
            "kube_pod_container_status_waiting_reason",
            "Describes the reason the container is currently in waiting state.",
            labels=[*c_labels, "reason"],
        )
        running = GaugeMetricFamily(
            "kube_pod_container_status_running",
            "Describes whether the container is currently in running state.",
            labels=c_labels,
        )
        terminated = GaugeMetricFamily(
            "kube_pod_container_status_terminated",
            "Describes whether the container is currently in terminated state.",
            labels=c_labels,
        )
        terminated_reason = GaugeMetricFamily(
            "kube_pod_container_status_terminated_reason",
            "Describes the reason the container is currently in terminated state.",
            labels=[*c_labels, "reason"],
        )
        last_terminated_reason = GaugeMetricFamily(
            "kube_pod_container_status_last_terminated_reason",
            "Describes the last reason the container was in terminated state.",
            labels=[*c_labels, "reason"],
        )
        c_ready = GaugeMetricFamily(
            "kube_pod_container_status_ready",
            "Describes whether the containers readiness check succeeded.",
            labels=c_labels,
        )
        for p in pods:
            values = [
                str(_get(p, "metadata", "namespace", default="")),
                str(_get(p, "metadata", "name")),
                str(_get(p, "metadata", "uid", default="")),
            ]
            owners = _get(p, "metadata", "ownerReferences", default=[]) or []
            controller = next((o for o in owners if isinstance(o, Mapping) and o.get("controller")), None)
            info.add_metric(
                [
                    *values,
                    str(_get(p, "spec", "nodeName", default="")),
                    str(controller.get("kind", "")) if controller else "",
                    str(controller.get("name", "")) if controller else "",
                ],
                1.0,
            )
            if not owners:
                owner.add_metric([*values, "<none>", "<none>", "false"], 1.0)
            for o in owners:
                if isinstance(o, Mapping):
                    owner.add_metric(
                        [
                            *values,
                            str(o.get("kind", "")),
                            str(o.get("name", "")),
                            str(bool(o.get("controller"))).lower(),
                        ],
                        1.0,
                    )
            current_phase = str(_get(p, "status", "phase", default="") or "")
            if current_phase:
                for ph in _POD_PHASES:
                    phase.add_metric([*values, ph], 1.0 if ph == current_phase else 0.0)
            ready_cond = next((c for c in _conditions(p) if c.get("type") == "Ready"), None)
            if ready_cond is not None:
                current = _condition_status(ready_cond.get("status"))
                for st in _CONDITION_STATUSES:
                    ready.add_metric([*values, st], 1.0 if st == current else 0.0)
            statuses = [
                *(_get(p, "status", "initContainerStatuses", default=[]) or []),
                *(_get(p, "status", "containerStatuses", default=[]) or []),
            ]
            for cs in statuses:
                if not isinstance(cs, Mapping):
                    continue
                cv = [*values, str(cs.get("name", ""))]
                state = cs.get("state") or {}
                restarts.add_metric(cv, _int(cs.get("restartCount")))
                is_waiting = isinstance(state.get("waiting"), Mapping)
                waiting.add_metric(cv, 1.0 if is_waiting else 0.0)
                if is_waiting and state["waiting"].get("reason"):
                    waiting_reason.add_metric([*cv, str(state["waiting"]["reason"])], 1.0)
                running.add_metric(cv, 1.0 if isinstance(state.get("running"), Mapping) else 0.0)
                is_terminated = isinstance(state.get("terminated"), Mapping)
                terminated.add_metric(cv, 1.0 if is_terminated else 0.0)
                if is_terminated and state["terminated"].get("reason"):
                    terminated_reason.add_metric([*cv, str(state["terminated"]["reason"])], 1.0)
                last = _get(cs, "lastState", "terminated")
                if isinstance(last, Mapping) and last.get("reason"):
                    last_terminated_reason.add_metric([*cv, str(last["reason"])], 1.0)
                c_ready.add_metric(cv, 1.0 if cs.get("ready") else 0.0)
        yield from (
            info,
            owner,
            phase,
            ready,
            restarts,
            waiting,
            waiting_reason,
            running,
            terminated,
            terminated_reason,
            last_terminated_reason,
            c_ready,
        )

    # -- nodes --

    def _nodes(self, nodes: list[dict[str, Any]]) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "kube_node_info",
            "Information about a cluster node.",
            labels=["node", "kubelet_version", "internal_ip"],
        )
        unschedulable = GaugeMetricFamily(
            "kube_node_spec_unschedulable",
            "Whether a node can schedule new pods.",
            labels=["node"],
        )
        taint = GaugeMetricFamily(
            "kube_node_spec_taint", "The taint of a cluster node.", labels=["node", "key", "value", "effect"]
        )
        conditions: list[tuple[list[str], Mapping[str, Any]]] = []
        for n in nodes:
            name = str(_get(n, "metadata", "name"))
            addresses = _get(n, "status", "addresses", default=[]) or []
            internal = next(
                (
                    str(a.get("address", ""))
                    for a in addresses
                    if isinstance(a, Mapping) and a.get("type") == "InternalIP"
                ),
                "",
            )
            info.add_metric(
                [name, str(_get(n, "status", "nodeInfo", "kubeletVersion", default="")), internal], 1.0
            )
            unschedulable.add_metric([name], 1.0 if _get(n, "spec", "unschedulable") else 0.0)
            for t in _get(n, "spec", "taints", default=[]) or []:
                if isinstance(t, Mapping):
                    taint.add_metric(
                        [name, str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", ""))],
                        1.0,
                    )
            conditions.extend(([name], c) for c in _conditions(n))
        yield info
        yield unschedulable
        yield taint
        yield _condition_families(
            "kube_node_status_condition", "The condition of a cluster node.", ["node"], conditions
        )

    # -- horizontal pod autoscalers --

    def _hpas(self, hpas: list[dict[str, Any]]) -> Iterator[Metric]:
        labels = ["namespace", "horizontalpodautoscaler"]
        spec_max = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_spec_max_replicas",
            "Upper limit for the number of pods that can be set by the autoscaler.",
            labels=labels,
        )
        spec_min = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_spec_min_replicas",
            "Lower limit for the number of pods that can be set by the autoscaler.",
            labels=labels,
        )
        current = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_status_current_replicas",
            "Current number of replicas of pods managed by this autoscaler.",
            labels=labels,
        )
        desired = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_status_desired_replicas",
            "Desired number of replicas of pods managed by this autoscaler.",
            labels=labels,
        )
        conditions: list[tuple[list[str], Mapping[str, Any]]] = []
        for h in hpas:
            values = [str(_get(h, "metadata", "namespace", default="")), str(_get(h, "metadata", "name"))]
            spec_max.add_metric(values, _int(_get(h, "spec", "maxReplicas")))
            spec_min.add_metric(values, _int(_get(h, "spec", "minReplicas"), 1))
            current.add_metric(values, _int(_get(h, "status", "currentReplicas")))
            desired.add_metric(values, _int(_get(h, "status", "desiredReplicas")))
            conditions.extend((values, c) for c in _conditions(h))
        yield from (spec_max, spec_min, current, desired)
        yield _condition_families(
            "kube_horizontalpodautoscaler_status_condition",
            "The condition of this autoscaler.",
            labels,
            conditions,
        )

    # -- jobs --

    def _jobs(self, jobs: list[dict[str, Any]]) -> Iterator[Metric]:
        # kube-state-metrics says job_name, not job: Prometheus owns the `job` label (the scrape job).
        labels = ["namespace", "job_name"]
        active = GaugeMetricFamily(
            "kube_job_status_active", "The number of actively running pods.", labels=labels
        )
        succeeded = GaugeMetricFamily(
            "kube_job_status_succeeded", "The number of pods which reached Phase Succeeded.", labels=labels
        )
        failed = GaugeMetricFamily(
            "kube_job_status_failed", "The number of pods which reached Phase Failed.", labels=labels
        )
        failed_cond = GaugeMetricFamily(
            "kube_job_failed", "The job has failed its execution.", labels=[*labels, "condition"]
        )
        complete_cond = GaugeMetricFamily(
            "kube_job_complete", "The job has completed its execution.", labels=[*labels, "condition"]
        )
        for j in jobs:
            values = [str(_get(j, "metadata", "namespace", default="")), str(_get(j, "metadata", "name"))]
            active.add_metric(values, _int(_get(j, "status", "active")))
            succeeded.add_metric(values, _int(_get(j, "status", "succeeded")))
            failed.add_metric(values, _int(_get(j, "status", "failed")))
            for cond in _conditions(j):
                target = {"Failed": failed_cond, "Complete": complete_cond}.get(str(cond["type"]))
                if target is None:
                    continue
                now = _condition_status(cond.get("status"))
                for st in _CONDITION_STATUSES:
                    target.add_metric([*values, st], 1.0 if st == now else 0.0)
        yield from (active, succeeded, failed, failed_cond, complete_cond)


# ---- serving ----------------------------------------------------------------------------------------------


class StateMetricsExporter:
    """Serves :class:`KubeStateCollector` at ``http://127.0.0.1:<port>/metrics`` from a background thread."""

    def __init__(self, source: ClusterStateSource, *, host: str = LOOPBACK, port: int = 0) -> None:
        if host != LOOPBACK:
            raise UsageError(
                f"the state metrics exporter listens on {LOOPBACK} only, not {host!r}",
                hint="drills never opens a port beyond this machine",
            )
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = KubeStateCollector(source)
        self.registry.register(self.collector)
        self._host = host
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> StateMetricsExporter:
        if self._server is None:
            try:
                self._server, self._thread = start_wsgi_server(
                    self._requested_port, self._host, self.registry
                )
            except OSError as e:
                raise UsageError(
                    f"cannot listen on {self._host}:{self._requested_port} for the state metrics: "
                    f"{e.strerror}",
                    hint="another process holds the port; `drill monitoring status` shows what drills runs",
                ) from e
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("exporter not started")
        return int(self._server.server_port)

    @property
    def address(self) -> str:
        return f"{self._host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None

    def __enter__(self) -> StateMetricsExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """The standalone exporter process that ``drill monitoring up`` starts next to Prometheus."""
    parser = argparse.ArgumentParser(prog="python -m drills.adapters.monitoring.ksm_exporter")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--context", default=None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        kube = Kube(args.kubeconfig, args.context)
        with StateMetricsExporter(KubeListSource(kube), port=args.port) as exporter:
            print(f"serving kube-state metrics at {exporter.url}", flush=True)
            stop.wait()
    except DrillError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
