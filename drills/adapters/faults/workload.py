"""Faults in a workload: bad deploys, crash loops, OOM, readiness, image pulls, replicas, load, dependencies.

Two shapes, chosen by what the responder's real fixes need to work:

- *Rollouts* (bad-deploy, image-pull) change the Deployment's pod template, exactly as a release would:
  a new ReplicaSet appears, ``kubectl rollout history`` shows it (with a change-cause, as a pipeline sets),
  and ``kubectl rollout undo`` is the real fix. The revert puts the recorded template back.
- *Pod faults* (crash-loop, oom, readiness-failure) change the pods that exist now, through an annotation
  our kwok Stages act on (``drills.io/fault``). The template is untouched, so the ReplicaSet's fresh pods
  are clean: ``kubectl delete pod`` heals a crash loop, and ``kubectl set selector ... healthy=true`` can
  route around unready pods, as the runbook expects. crash-loop and readiness-failure leave the newest pod
  healthy (the service degrades), oom hits every pod (a memory limit too small for the workload).
- *Load* (load-spike) is a constant demand spread over the serving pods by a driver thread, which also
  takes the readiness of the share the pods cannot carry: see :class:`LoadSpike`.
- *Capacity* (scale-to-zero, dependency-outage) set a Deployment's replicas; the revert restores the
  recorded count.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from drills.adapters.faults.base import (
    POD_FAULT_ANNOTATION,
    Injector,
    PlannedChange,
    names,
    pod_trouble,
    require_pod_fault_stages,
)
from drills.adapters.faults.revert import restore_op
from drills.adapters.kube import resources as r
from drills.engine.health import match_labels_selector
from drills.engine.impact import LOAD_FACTOR
from drills.engine.safety import BlastRadius
from drills.errors import DrillError, FaultError, NotFound
from drills.model.scenario import (
    BadDeployFault,
    DependencyOutageFault,
    ImagePullFault,
    LoadSpikeFault,
    ScaleToZeroFault,
)

log = logging.getLogger("drills.faults")

CHANGE_CAUSE = "kubernetes.io/change-cause"
USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"


def _first_container(dep: dict[str, Any]) -> dict[str, Any]:
    containers = dep["spec"]["template"]["spec"].get("containers") or []
    if not containers:
        raise FaultError(f"deployment {dep['metadata']['name']} has no containers to break")
    return containers[0]  # type: ignore[no-any-return]


def _replicas(dep: dict[str, Any]) -> int:
    return int((dep.get("spec") or {}).get("replicas", 1))


class _Rollout(Injector):
    """A new rollout of the target Deployment with a changed container."""

    def _new_container(self, container: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
        """(strategic-merge container patch, change-cause, summary)."""
        raise NotImplementedError

    @property
    def target(self) -> str:
        return f"Deployment/{self.namespace}/{self.workload}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        dep = self.deployment()
        self._baseline = dep
        container = _first_container(dep)
        patch_container, cause, summary = self._new_container(container)
        spec: dict[str, Any] = {
            "template": {"spec": {"containers": [{"name": container["name"], **patch_container}]}}
        }
        body = {"metadata": {"annotations": {CHANGE_CAUSE: cause}}, "spec": spec}
        paths = [["spec", "template"], ["metadata", "annotations", CHANGE_CAUSE]]
        strategy = self._strategy()
        if strategy is not None:
            spec["strategy"] = strategy
            summary += f" (rollout maxUnavailable {strategy['rollingUpdate']['maxUnavailable']})"
            paths.append(["spec", "strategy"])
        change = PlannedChange(
            "PATCH", "Deployment", self.namespace, self.workload, summary, body, patch_type="strategic"
        )
        replicas = _replicas(dep)
        radius = BlastRadius(pods=replicas, target_pods=replicas, namespaces=frozenset({self.namespace}))
        ops = [restore_op(dep, paths)]
        return [change], radius, ops

    def _strategy(self) -> dict[str, Any] | None:
        """A rollout strategy the release brings with it (None: the Deployment's own)."""
        return None

    def _fault_pods(self) -> list[dict[str, Any]]:
        """Pods running the faulty template (identified by image and env, not by name)."""
        dep = self.deployment()
        wanted = self._new_container(_first_container(self._baseline))[0]
        result = []
        for pod in self.pods_of(dep):
            c = next(
                (
                    c
                    for c in pod["spec"]["containers"]
                    if c["name"] == _first_container(self._baseline)["name"]
                ),
                None,
            )
            if c is None:
                continue
            if "image" in wanted and c.get("image") != wanted["image"]:
                continue
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            if any(env.get(e["name"]) != e["value"] for e in wanted.get("env") or []):
                continue
            result.append(pod)
        return result

    def effect(self) -> str | None:
        for pod in self._fault_pods():
            trouble = pod_trouble(pod)
            if trouble:
                return f"pod {pod['metadata']['name']} of the new rollout: {trouble}"
        return None


class BadDeploy(_Rollout):
    """A release whose pods crash (or OOM, or never get ready): new image and FAULT=<effect>."""

    summary = "a release whose pods crash, OOM or never get ready (new image, FAULT=<effect>)"
    kind = "bad-deploy"
    fault: BadDeployFault

    def _strategy(self) -> dict[str, Any] | None:
        # A pipeline that skips its canary takes this many old pods down at once: capacity drops while the
        # new pods crash, which is what makes a bad release hurt users (docs/impact.md).
        text = self.fault.max_unavailable
        if text is None:
            return None
        value: int | str = int(text) if text.isdigit() else text
        return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": value}}

    def _new_container(self, container: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
        f = self.fault
        patch = {"image": f.image, "env": [{"name": "FAULT", "value": f.effect}]}
        return patch, f"deploy {f.image}", f"roll out image {f.image} whose pods {_EFFECT_WORDS[f.effect]}"


_EFFECT_WORDS = {"crash": "crash on start", "oom": "are OOM-killed", "unready": "never become ready"}


class ImagePull(_Rollout):
    summary = "a release of an image tag the registry does not have (ImagePullBackOff)"
    kind = "image-pull"
    fault: ImagePullFault

    def _new_container(self, container: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
        img = self.fault.image
        return {"image": img}, f"deploy {img}", f"roll out image {img}, which the registry does not have"


# ---- pod faults -----------------------------------------------------------------------------------------


class _PodAnnotation(Injector):
    """Annotate the workload's current pods; the kwok Stages make them misbehave until it is removed."""

    annotation: ClassVar[str] = POD_FAULT_ANNOTATION
    value: ClassVar[str]
    #: Leave this many pods untouched (a partial outage).
    spare: ClassVar[int] = 1
    words: ClassVar[str]

    @property
    def target(self) -> str:
        return f"Deployment/{self.namespace}/{self.workload}"

    def _annotation_value(self) -> str:
        return self.value

    def _choose(self, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = max(1, len(pods) - self.spare) if pods else 0
        return pods[:n]

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        dep = self.deployment()
        pods = self.pods_of(dep)
        if not pods:
            raise FaultError(
                f"{self.kind}: deployment {self.namespace}/{self.workload} has no running pods to affect",
                hint="is the fixture world healthy? run the preflight (`drill inject --dry-run`)",
            )
        if self.annotation == POD_FAULT_ANNOTATION:
            require_pod_fault_stages(self.kube)
        chosen = self._choose(pods)
        self._chosen = names(chosen)
        value = self._annotation_value()
        changes = [
            PlannedChange(
                "PATCH",
                "Pod",
                self.namespace,
                p["metadata"]["name"],
                f"annotate {self.annotation}={value}: the pod {self.words}",
                {"metadata": {"annotations": {self.annotation: value}}},
                patch_type="merge",
            )
            for p in chosen
        ]
        radius = BlastRadius(pods=len(chosen), target_pods=len(pods), namespaces=frozenset({self.namespace}))
        ops = [restore_op(p, [["metadata", "annotations", self.annotation]]) for p in chosen]
        return changes, radius, ops

    def effect(self) -> str | None:
        for name in self._chosen:
            pod = r.get(self.kube, "Pod", name, self.namespace)
            if pod is not None:
                trouble = pod_trouble(pod)
                if trouble:
                    return f"pod {name}: {trouble}"
        return None


class CrashLoop(_PodAnnotation):
    summary = "all pods but the newest crash-loop; fresh pods are clean (annotation)"
    kind = "crash-loop"
    value = "crash"
    words = "crashes and restarts in a loop"


class Oom(_PodAnnotation):
    summary = "every pod is OOM-killed and restarted (annotation)"
    kind = "oom"
    value = "oom"
    spare = 0
    words = "is OOM-killed and restarted"


class ReadinessFailure(_PodAnnotation):
    """All pods but one fail readiness; the healthy one carries ``healthy=true`` (the runbook's convention:
    the label a deep health check puts on known-good pods), so ``kubectl set selector service/app
    "app=myapp,healthy=true"`` is a real way out."""

    summary = "all pods but one fail readiness; the good one is labelled healthy=true"
    kind = "readiness-failure"
    value = "unready"
    words = "fails its readiness probe"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        changes, radius, ops = super()._plan()
        dep = self.deployment()
        for pod in self.pods_of(dep):
            name = pod["metadata"]["name"]
            if name in self._chosen:
                continue
            changes.append(
                PlannedChange(
                    "PATCH",
                    "Pod",
                    self.namespace,
                    name,
                    f"label {HEALTHY_LABEL}=true: this pod passes the deep health check",
                    {"metadata": {"labels": {HEALTHY_LABEL: "true"}}},
                    patch_type="merge",
                )
            )
            ops.append(restore_op(pod, [["metadata", "labels", HEALTHY_LABEL]]))
        # Undo order is last-recorded first: the Services' selectors (a responder may have narrowed them to
        # healthy=true) are put back before the labels go, so the revert never leaves a Service with no pods.
        for svc in self.services_of(dep):
            ops.append(restore_op(svc, [["spec", "selector"]]))
        return changes, radius, ops


HEALTHY_LABEL = "healthy"


def parse_cpu(quantity: str | int | float | None) -> int | None:
    """Millicores of a CPU quantity (``250m``, ``0.5``, ``2``); None when absent or unreadable."""
    if quantity is None:
        return None
    text = str(quantity).strip()
    try:
        if text.endswith("m"):
            return int(float(text[:-1]))
        return int(float(text) * 1000)
    except ValueError:
        return None


@dataclass(frozen=True)
class LoadShare:
    """How a load spike's CPU demand falls on the pods serving it (see :class:`LoadSpike`).

    ``per_pod`` is what each pod shows (its kwok usage annotation: what ``kubectl top``, metrics-server and an
    HPA read); ``unready`` is how many of them fail readiness because the pods together cannot carry it.
    """

    total: int
    pods: int
    request: int | None
    per_pod: int
    unready: int

    @property
    def overloaded(self) -> bool:
        """Each pod is asked for more CPU than it requests."""
        return self.request is not None and self.per_pod > self.request


def share_load(total: int, pods: int, request: int | None) -> LoadShare:
    """The spike's ``total`` millicores spread over ``pods`` pods that each request ``request`` millicores.

    Every pod shows ``ceil(total / pods)``. When that is more than the request, the traffic the pods cannot
    take, ``total - pods x request``, is the share of the pods whose readiness checks time out:
    ``ceil(pods x (total - pods x request) / total)`` of them, at most all but one (one pod always keeps
    answering: an overloaded service is slow, not gone, and an autoscaler still has a ready pod to measure).
    """
    if pods <= 0:
        return LoadShare(total, 0, request, 0, 0)
    per_pod = -(-total // pods)
    unready = 0
    if request is not None and request > 0 and total > pods * request:
        excess = total - pods * request
        unready = min(pods - 1, -(-pods * excess // total))
    return LoadShare(total, pods, request, per_pod, unready)


def replicas_needed(total: int, request: int, utilisation_pct: int = 100) -> int:
    """The fewest pods that keep each under ``utilisation_pct`` % of its CPU request (100: all ready)."""
    return max(1, -(-total * 100 // (request * utilisation_pct)))


class LoadSpike(Injector):
    """A traffic spike: a fixed total CPU demand, spread over however many pods serve it.

    The model, in numbers (the shipped scenarios: request 100m, 3 replicas):

    - *The load*: ``cpu`` on each pod at injection, so ``total = cpu x replicas`` (``250m`` -> 750m,
      ``400m`` -> 1200m). It stays for the whole drill: the users keep coming, however many pods serve them.
    - *What each pod shows*: ``ceil(total / pods)`` over the Running pods, as kwok's usage annotation
      (``kwok.x-k8s.io/usage-cpu``), which is what ``kubectl top``, metrics-server and an HPA see. A load
      driver thread re-spreads it every second, so the figure follows the replicas as they change (a
      ``kubectl scale``, an HPA, a pod deleted).
    - *What it costs*: when each pod is asked for more than its request, the traffic that does not fit
      (``total - pods x request``) is the share of the pods whose readiness checks time out
      (``drills.io/fault: unready``, the oldest pods first, so the set does not churn): 750m on 3 pods is
      250m each and 2 of 3 unready; on 5 pods 150m each and 2 unready; on 7 pods 108m each and 1 unready.
      At least one pod stays ready, so an HPA always has a pod to measure (it ignores the CPU of unready
      pods, and with every pod unready it shows ``<unknown>`` and never scales).
    - *The fix*: ``ceil(total / request)`` replicas bring every pod under its request and back into the
      Service (8 for 750m, 12 for 1200m; the runbook's ``kubectl scale --replicas=15`` has headroom). An HPA
      at 70% scales up until the pods are within its 10% tolerance of the target (at most 77m of 100m
      each: 10 or more pods for 750m), by then every pod is ready. Fewer replicas leave some pods unready,
      so a steady state of ``service-endpoints`` with ``max_not_ready: 0`` holds exactly when the capacity
      is enough.

    The driver is drills playing the users; it stops at revert, which puts the template's usage annotation
    back on every pod and clears the readiness fault.
    """

    summary = "a constant CPU demand spread over the serving pods; the share that does not fit goes unready"
    kind = "load-spike"
    fault: LoadSpikeFault
    tick = 1.0

    @property
    def target(self) -> str:
        return f"Deployment/{self.namespace}/{self.workload}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        dep = self.deployment()
        pods = self.pods_of(dep)
        if not pods:
            raise FaultError(f"load-spike: deployment {self.namespace}/{self.workload} has no running pods")
        require_pod_fault_stages(self.kube)
        per_pod = parse_cpu(self.fault.cpu)
        if per_pod is None or per_pod <= 0:
            raise FaultError(f"load-spike: cpu {self.fault.cpu!r} is not a CPU quantity (e.g. 300m)")
        container = _first_container(dep)
        self._request = parse_cpu(((container.get("resources") or {}).get("requests") or {}).get("cpu"))
        self._total = per_pod * len(pods)
        self._selector = match_labels_selector(dep["spec"]["selector"].get("matchLabels") or {})
        template_annotations = dep["spec"]["template"]["metadata"].get("annotations") or {}
        self._idle = template_annotations.get(USAGE_CPU_ANNOTATION)
        share = share_load(self._total, len(pods), self._request)
        changes = []
        for i, p in enumerate(pods):
            wanted = self._annotations(share, i)
            what = f"annotate {USAGE_CPU_ANNOTATION}={share.per_pod}m"
            if wanted[POD_FAULT_ANNOTATION]:
                what += f", {POD_FAULT_ANNOTATION}=unready (over its {self._request}m request: readiness times out)"
            changes.append(
                PlannedChange(
                    "PATCH",
                    "Pod",
                    self.namespace,
                    p["metadata"]["name"],
                    what,
                    {"metadata": {"annotations": wanted}},
                    patch_type="merge",
                )
            )
        fix = (
            f"; {replicas_needed(self._total, self._request)} replicas keep every pod under its "
            f"{self._request}m request"
            if self._request
            else ""
        )
        changes.append(
            PlannedChange(
                "RUN",
                "LoadDriver",
                self.namespace,
                f"load driver: {self._total}m CPU spread over the serving pods of {self.workload}{fix}",
                "re-spread the load every second until the revert",
            )
        )
        radius = BlastRadius(pods=len(pods), target_pods=len(pods), namespaces=frozenset({self.namespace}))
        ops: list[dict[str, Any]] = [
            {
                "op": "pod-annotations",
                "namespace": self.namespace,
                "selector": self._selector,
                "annotations": {USAGE_CPU_ANNOTATION: self._idle, POD_FAULT_ANNOTATION: None},
            }
        ]
        if self.fault.traffic is not None:
            # the users' side of the spike, on the Services they call (see LOAD_FACTOR on why not the
            # Deployment): first, so T0 is when the traffic arrives
            factor = f"{self.fault.traffic:g}"
            for svc in reversed(self._services(dep)):
                changes.insert(
                    0,
                    PlannedChange(
                        "PATCH",
                        "Service",
                        self.namespace,
                        svc["metadata"]["name"],
                        f"annotate {LOAD_FACTOR}={factor}: the users send {factor} times their base traffic",
                        {"metadata": {"annotations": {LOAD_FACTOR: factor}}},
                        patch_type="merge",
                    ),
                )
                ops.append(restore_op(svc, [["metadata", "annotations", LOAD_FACTOR]]))
        return changes, radius, ops

    def _services(self, dep: dict[str, Any]) -> list[dict[str, Any]]:
        """The Services users call the Deployment's pods through: where the extra traffic comes in."""
        chosen = self.services_of(dep)
        if not chosen:
            raise FaultError(
                f"load-spike: traffic needs a Service in front of deployment {self.namespace}/{self.workload}, "
                "and none selects its pods",
                hint="create the Service the users call, or drop `traffic:` from the fault",
            )
        return chosen

    @staticmethod
    def _annotations(share: LoadShare, index: int) -> dict[str, str | None]:
        """The annotations of the ``index``-th serving pod (oldest first): its CPU, and unready if it is one
        of the ``share.unready`` oldest."""
        return {
            USAGE_CPU_ANNOTATION: f"{share.per_pod}m",
            POD_FAULT_ANNOTATION: "unready" if index < share.unready else None,
        }

    def _serving(self) -> list[dict[str, Any]]:
        """The pods the load falls on: Running, not terminating, oldest first (a stable order)."""
        pods, _ = r.list_objects(self.kube, "Pod", self.namespace, label_selector=self._selector)
        live = [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") == "Running"
        ]
        return sorted(live, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))

    def share(self, pods: int) -> LoadShare:
        return share_load(self._total, pods, self._request)

    def spread(self) -> LoadShare:
        """One driver step: give every serving pod its share of the load, and the oldest their readiness
        failure while the pods cannot carry it."""
        serving = self._serving()
        share = self.share(len(serving))
        for i, p in enumerate(serving):
            have = p["metadata"].get("annotations") or {}
            wanted = self._annotations(share, i)
            if have.get(POD_FAULT_ANNOTATION) not in (None, "unready"):
                del wanted[POD_FAULT_ANNOTATION]  # another fault's (a crash loop) is not ours to change
            patch = {k: v for k, v in wanted.items() if have.get(k) != v}
            if patch:
                # deleted between the list and the patch: the next step spreads over the rest
                with contextlib.suppress(NotFound):
                    r.patch(
                        self.kube,
                        "Pod",
                        p["metadata"]["name"],
                        self.namespace,
                        {"metadata": {"annotations": patch}},
                    )
        return share

    def execute(self, change: PlannedChange) -> None:
        if change.kind == "LoadDriver":
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._drive, name="drills-load-driver", daemon=True)
            self._thread.start()
            return
        with contextlib.suppress(NotFound):
            super().execute(change)

    def _drive(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.spread()
            except DrillError as e:  # the API server restarting, say: keep driving
                log.warning("load driver: %s", e)

    def stop(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._thread.join(timeout=10)

    def effect(self) -> str | None:
        serving = self._serving()
        if not serving:
            return None
        share = self.share(len(serving))
        if any(
            (p["metadata"].get("annotations") or {}).get(USAGE_CPU_ANNOTATION) != f"{share.per_pod}m"
            for p in serving
        ):
            return None
        if share.unready:
            unready = [p for p in serving if pod_trouble(p)]
            if not unready:
                return None
            return (
                f"{len(serving)} pods at {share.per_pod}m CPU each (request {self._request}m): "
                f"{len(unready)} overloaded pods fail readiness"
            )
        return f"{len(serving)} pods at {share.per_pod}m CPU each"


# ---- capacity ------------------------------------------------------------------------------------------


class _Scale(Injector):
    def _deployment_name(self) -> str:
        return self.workload

    def _to(self) -> int:
        raise NotImplementedError

    @property
    def target(self) -> str:
        return f"Deployment/{self.namespace}/{self._deployment_name()}"

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        dep = self.deployment(self._deployment_name())
        before, after = _replicas(dep), self._to()
        if after >= before:
            raise FaultError(
                f"{self.kind}: {self.target} runs {before} replicas; scaling to {after} breaks nothing",
                hint="check the scenario's replicas",
            )
        change = PlannedChange(
            "PATCH",
            "Deployment",
            self.namespace,
            self._deployment_name(),
            f"scale from {before} to {after} replicas",
            {"spec": {"replicas": after}},
            patch_type="merge",
        )
        radius = BlastRadius(pods=before - after, target_pods=before, namespaces=frozenset({self.namespace}))
        return [change], radius, [restore_op(dep, [["spec", "replicas"]])]

    def effect(self) -> str | None:
        dep = self.deployment(self._deployment_name())
        live = len(self.pods_of(dep))
        if live <= self._to():
            return f"{self.target} down to {live} pods"
        return None


class ScaleToZero(_Scale):
    summary = "the target loses its replicas (scaled to `replicas`, default 0)"
    kind = "scale-to-zero"
    fault: ScaleToZeroFault

    def _to(self) -> int:
        return self.fault.replicas


class DependencyOutage(_Scale):
    """The dependency (``db-proxy``) loses every pod, and the app hangs on it until its circuit breaker is on.

    Besides scaling the dependency to zero, a reaction driver plays the app: every second, while the
    dependency has no ready pod, each live pod of the target whose container does not have
    ``CIRCUIT_BREAKER_ENABLED=true`` fails readiness (worker threads stuck on database timeouts); pods with
    the breaker on fail fast and stay ready. So ``kubectl set env deployment/app CIRCUIT_BREAKER_ENABLED=true``
    (the seed's fix) or bringing the dependency back heals the service, and a mere restart does not.
    """

    summary = (
        "the dependency Deployment (db-proxy) scaled to 0; the app hangs unless its circuit breaker is on"
    )
    kind = "dependency-outage"
    fault: DependencyOutageFault
    tick = 1.0

    def _deployment_name(self) -> str:
        return self.fault.dependency

    def _to(self) -> int:
        return 0

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        require_pod_fault_stages(self.kube)
        changes, radius, ops = super()._plan()
        app = self.deployment()
        self._app_selector = match_labels_selector(app["spec"]["selector"].get("matchLabels") or {})
        pods = self.pods_of(app)
        changes.append(
            PlannedChange(
                "RUN",
                "AppReaction",
                self.namespace,
                f"app reaction: pods of {self.workload} without CIRCUIT_BREAKER_ENABLED=true fail readiness "
                f"while {self.fault.dependency} has no ready pod",
                f"annotate {POD_FAULT_ANNOTATION}=unready on those pods, every second until the revert",
            )
        )
        ops.append(
            {
                "op": "pod-annotations",
                "namespace": self.namespace,
                "selector": self._app_selector,
                "annotations": {POD_FAULT_ANNOTATION: None},
            }
        )
        # both workloads are the fault's target: the dependency's pods go, the app's pods hang
        radius = BlastRadius(
            pods=radius.pods + len(pods),
            target_pods=radius.target_pods + len(pods),
            namespaces=radius.namespaces,
        )
        return changes, radius, ops

    def _dependency_down(self) -> bool:
        dep = r.get(self.kube, "Deployment", self.fault.dependency, self.namespace)
        return dep is None or int((dep.get("status") or {}).get("readyReplicas") or 0) == 0

    @staticmethod
    def _breaker_on(pod: dict[str, Any]) -> bool:
        return any(
            e.get("name") == "CIRCUIT_BREAKER_ENABLED" and str(e.get("value", "")).lower() == "true"
            for c in pod["spec"].get("containers") or []
            for e in c.get("env") or []
        )

    def react(self) -> int:
        """One driver step; how many app pods hang on the dependency now."""
        down = self._dependency_down()
        pods, _ = r.list_objects(self.kube, "Pod", self.namespace, label_selector=self._app_selector)
        hanging = 0
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            broken = down and not self._breaker_on(p)
            hanging += broken
            have = (p["metadata"].get("annotations") or {}).get(POD_FAULT_ANNOTATION)
            want = "unready" if broken else None
            if have != want and (have in (None, "unready")):
                with contextlib.suppress(NotFound):
                    r.patch(
                        self.kube,
                        "Pod",
                        p["metadata"]["name"],
                        self.namespace,
                        {"metadata": {"annotations": {POD_FAULT_ANNOTATION: want}}},
                    )
        return hanging

    def execute(self, change: PlannedChange) -> None:
        if change.kind == "AppReaction":
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._drive, name="drills-app-reaction", daemon=True)
            self.react()
            self._thread.start()
            return
        super().execute(change)

    def _drive(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.react()
            except DrillError as e:
                log.warning("app reaction driver: %s", e)

    def stop(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._thread.join(timeout=10)

    def effect(self) -> str | None:
        scaled = super().effect()
        if not scaled:
            return None
        app = self.deployment()
        stuck = [p for p in self.pods_of(app) if pod_trouble(p)]
        if not stuck:
            return None
        return f"{scaled}; {len(stuck)} pods of {self.workload} fail readiness (no circuit breaker)"
