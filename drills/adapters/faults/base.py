"""What every fault injector is: plan, inject, confirm, revert, and the registry that finds one by kind.

An injector is built for one fault of one scenario. Its life:

1. :meth:`Injector.plan` reads the cluster, records the baseline of everything it will touch and returns the
   exact API changes it would make (:class:`PlannedChange`: what ``--dry-run`` prints), plus its blast radius;
2. :meth:`Injector.revert_ops` describes the undo as data (:mod:`.revert`), written to the ledger and
   fsynced before anything changes;
3. :meth:`Injector.inject` makes the planned changes and returns when the API server accepted the first
   one (the true fault time, the drill's T0);
4. :meth:`Injector.confirm` waits until the runtime's effect is visible (a pod crash-looping, a node
   NotReady...), so a drill never pages someone for a fault that did not take;
5. :meth:`Injector.revert` runs the undo; idempotent, baseline-restoring.

Built-in kinds are registered in ``pyproject.toml`` under the ``drills.faults`` entry-point group, the same
way a team adds its own (``PluginFault`` with ``name:``); :data:`INJECTORS` (a :class:`drills.registry.Registry`)
finds both.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from drills.adapters.faults.revert import apply_ops, typed_ops
from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.engine.health import match_labels_selector, node_ready, pod_ready
from drills.engine.safety import BlastRadius
from drills.errors import FaultError, NotFound
from drills.model.events import EventSink
from drills.model.revert import RevertOp
from drills.model.scenario import Fault, Scenario
from drills.registry import Registry
from drills.timing import SYSTEM_CLOCK, Clock

ENTRY_POINT_GROUP = "drills.faults"

#: The annotation our kwok Stages read to make one existing pod crash / OOM / fail readiness.
POD_FAULT_ANNOTATION = "drills.io/fault"
#: drills' kwok pod Stages act on :data:`POD_FAULT_ANNOTATION` 1-8 s after they see it (fixtures/kwok/), on
#: the pod as it was then: kwok (0.8) keeps a job it has scheduled even when the next version of the pod no
#: longer matches. A revert within this window of the injection waits it out, and for the pods to serve
#: again, or a crash scheduled before the revert lands after it, in the next drill's world.
POD_STAGE_WINDOW = 9.0
POD_SETTLE_TIMEOUT = 20.0
#: The node label our kwok Stages read: NotReady (``not-ready``) or a stopped heartbeat (``lost``).
NODE_FAULT_LABEL = "drills.io/fault"


@dataclass(frozen=True)
class PlannedChange:
    """One API request a fault will make, exactly: what ``drill inject --dry-run`` prints."""

    verb: str  # PATCH, DELETE, CREATE, EVICT, RUN
    kind: str
    namespace: str | None
    name: str
    summary: str
    body: Any = None
    patch_type: r.PatchType | None = None

    @property
    def object(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def request_line(self) -> str:
        if self.verb == "RUN":
            return f"RUN {self.name}"
        res = r.RESOURCES.get(self.kind)
        path = (
            res.path(self.namespace, self.name, "eviction" if self.verb == "EVICT" else None) if res else ""
        )
        method = {"EVICT": "POST", "CREATE": "POST"}.get(self.verb, self.verb)
        kind = f" ({self.patch_type} patch)" if self.patch_type else ""
        if self.verb == "CREATE" and res:
            path = res.path(self.namespace)
        return f"{method} {path}{kind}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "verb": self.verb,
            "object": self.object,
            "request": self.request_line(),
            "summary": self.summary,
        }
        if self.body is not None:
            d["body"] = self.body
        return d

    def describe(self) -> str:
        body = f"\n    {json.dumps(self.body, sort_keys=True)}" if self.body is not None else ""
        return f"{self.request_line()}\n    {self.summary}{body}"


@dataclass
class FaultContext:
    """What an injector needs besides its fault: the scenario, a client (drills' own identity), a clock."""

    scenario: Scenario
    kube: Kube
    clock: Clock = SYSTEM_CLOCK
    #: Directory of the scenario file (Chaos Toolkit experiment paths are relative to it).
    scenario_dir: Path | None = None
    journal: EventSink | None = None
    #: Who the journal names as the actor of drills' own changes.
    actor: str = "drills:injector"
    #: The API server's audit log, when drills can read it: a fault whose change takes a while to start
    #: (a Chaos Toolkit action after its pauses) takes T0 from the first write it records.
    audit_log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Injector(ABC):
    """Base of the fault injectors; see the module docstring for the life cycle."""

    kind: ClassVar[str]
    #: One line for `drill faults`.
    summary: ClassVar[str] = ""

    def __init__(self, fault: Fault, ctx: FaultContext) -> None:
        self.fault = fault
        self.ctx = ctx
        self.kube = ctx.kube
        self.clock = ctx.clock
        self.scenario = ctx.scenario
        self._changes: list[PlannedChange] | None = None
        self._radius = BlastRadius()
        self._ops: list[dict[str, Any]] = []
        self._first_change: float | None = None  # monotonic
        self._staged_pods: set[tuple[str, str]] = set()  # (namespace, name) given the kwok fault annotation

    # ---- to implement --------------------------------------------------------------------------------

    @abstractmethod
    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        """Read the cluster; return (changes, blast radius, undo operations)."""

    @abstractmethod
    def effect(self) -> str | None:
        """The fault's effect as seen in the cluster right now, in words, or None while not (yet) visible."""

    @property
    @abstractmethod
    def target(self) -> str:
        """What the fault hits, for journal events (``Deployment/production/app``, ``Node/node-1``)."""

    # ---- the life cycle ------------------------------------------------------------------------------

    def plan(self) -> list[PlannedChange]:
        if self._changes is None:
            self._changes, self._radius, self._ops = self._plan()
        return list(self._changes)

    def blast_radius(self) -> BlastRadius:
        self.plan()
        return self._radius

    def revert_ops(self) -> list[RevertOp]:
        """The undo, validated into :mod:`drills.model.revert` models (a broken one fails here, at plan time)."""
        self.plan()
        return typed_ops(self._ops, where=f"the revert operations of fault {self.kind}")

    def inject(self) -> datetime:
        """Make the planned changes; the time the API server accepted the first one (the fault's T0)."""
        first: datetime | None = None
        for change in self.plan():
            self.execute(change)
            if first is None:
                first = self.clock.now()
        return first or self.clock.now()

    def execute(self, change: PlannedChange) -> None:
        """Carry out one planned change exactly as planned."""
        if self._first_change is None:
            self._first_change = self.clock.monotonic()
        body = change.body if isinstance(change.body, Mapping) else {}
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if change.kind == "Pod" and change.namespace and annotations.get(POD_FAULT_ANNOTATION):
            self._staged_pods.add((change.namespace, change.name))
        if change.verb == "PATCH":
            r.patch(
                self.kube,
                change.kind,
                change.name,
                change.namespace,
                change.body,
                patch_type=change.patch_type or "merge",
            )
        elif change.verb == "DELETE":
            r.delete(self.kube, change.kind, change.name, change.namespace)
        elif change.verb == "CREATE":
            r.create(self.kube, change.body)
        elif change.verb == "EVICT":
            assert change.namespace is not None
            r.evict(self.kube, change.name, change.namespace)
        else:
            raise FaultError(
                f"{self.kind}: no way to carry out a {change.verb} change (a bug in the injector)"
            )

    def confirm(self, timeout: float = 60.0, *, poll: float = 0.25) -> str:
        """Wait until :meth:`effect` sees the fault; its description. FaultError after ``timeout`` seconds."""
        deadline = self.clock.monotonic() + timeout
        while True:
            seen = self.effect()
            if seen:
                return seen
            if self.clock.monotonic() >= deadline:
                raise FaultError(
                    f"{self.kind} on {self.target}: no effect visible after {timeout:.0f}s",
                    hint="are drills' kwok Stages applied (`drill cluster status`)? the fault is reverted",
                )
            self.clock.sleep(poll)

    def stop(self) -> None:  # noqa: B027 - a hook: most faults run nothing in the background
        """Stop anything the fault keeps running in this process (a load driver); called before a revert."""

    def revert(self) -> list[str]:
        self.stop()
        done = apply_ops(self.kube, self.revert_ops(), sink=self.ctx.journal, clock=self.clock)
        self._settle_pod_stages()
        return done

    def _settle_pod_stages(self) -> None:
        """After a revert soon after the injection: let kwok's stale pod jobs fire, then wait (bounded) until
        those pods serve again; pods gone are fine (see :data:`POD_STAGE_WINDOW`)."""
        if not self._staged_pods or self._first_change is None:
            return
        left = self._first_change + POD_STAGE_WINDOW - self.clock.monotonic()
        if left <= 0:
            return
        self.clock.sleep(left)
        deadline = self.clock.monotonic() + POD_SETTLE_TIMEOUT
        waiting = set(self._staged_pods)
        while waiting and self.clock.monotonic() < deadline:
            for ns, name in sorted(waiting):
                pod = r.get(self.kube, "Pod", name, ns)
                if pod is None or pod["metadata"].get("deletionTimestamp") or pod_ready(pod):
                    waiting.discard((ns, name))
            if waiting:
                self.clock.sleep(0.25)

    # ---- helpers for subclasses ----------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.scenario.target.namespace

    @property
    def workload(self) -> str:
        return self.fault.workload or self.scenario.target.workload

    def deployment(self, name: str | None = None) -> dict[str, Any]:
        name = name or self.workload
        dep = r.get(self.kube, "Deployment", name, self.namespace)
        if dep is None:
            raise NotFound(
                f"{self.kind}: deployment {self.namespace}/{name} does not exist",
                hint="check the scenario's target and fault `workload:`; is the fixture world applied "
                "(`drill cluster up`)?",
            )
        return dep

    def pods_of(self, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The deployment's live pods (not terminating), oldest first then by name: a stable order."""
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        pods, _ = r.list_objects(
            self.kube, "Pod", self.namespace, label_selector=match_labels_selector(labels)
        )
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return sorted(live, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))

    def services_of(self, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The Services whose selector picks the deployment's pods (by its template's labels), by name."""
        labels = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        services, _ = r.list_objects(self.kube, "Service", self.namespace)
        chosen = [
            s
            for s in services
            if (selector := (s.get("spec") or {}).get("selector")) and selector.items() <= labels.items()
        ]
        return sorted(chosen, key=lambda s: str(s["metadata"]["name"]))


_STAGES_CHECKED: dict[str, bool] = {}


def require_pod_fault_stages(kube: Kube) -> None:
    """FaultError before anything changes when the cluster's kwok Stages ignore the pod fault annotation.

    Without them an annotated pod would simply keep running and the drill would wait for an effect that
    never comes. Clusters without kwok Stages (kind) are not checked.
    """
    if _STAGES_CHECKED.get(kube.server):
        return
    try:
        with kube.call("listing kwok Stages"):
            data = r.request(kube, "GET", "/apis/kwok.x-k8s.io/v1alpha1/stages")
    except NotFound:
        return
    wanted = f'annotations["{POD_FAULT_ANNOTATION}"]'
    keys = [
        str((expr.get("jq") or expr).get("key", ""))
        for item in (data or {}).get("items") or []
        if ((item.get("spec") or {}).get("resourceRef") or {}).get("kind") == "Pod"
        for expr in (((item.get("spec") or {}).get("selector") or {}).get("matchExpressions") or [])
    ]
    if not any(wanted in key for key in keys):
        raise FaultError(
            f"this cluster's kwok Stages do not act on the {POD_FAULT_ANNOTATION} pod annotation, which pod-level "
            "faults (crash-loop, oom, readiness-failure, config, dependency and load faults) use",
            hint="update drills' fixtures (fixtures/kwok/) and run `drill cluster up` to apply them",
        )
    _STAGES_CHECKED[kube.server] = True


def pod_trouble(pod: Mapping[str, Any]) -> str | None:
    """Why a pod is not serving (crash loop, OOM, image pull, not ready); None when Running and Ready."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if waiting.get("reason"):
            extra = f", last exit {last.get('reason')}" if last.get("reason") else ""
            return f"{waiting['reason']} (restarts {cs.get('restartCount', 0)}{extra})"
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if terminated.get("reason"):
            return f"{terminated['reason']} (exit {terminated.get('exitCode')})"
        if last.get("reason") == "OOMKilled":
            return f"OOMKilled (restarts {cs.get('restartCount', 0)})"
    # a Pending pod with no waiting reason is just being scheduled and started: not (yet) trouble
    if status.get("phase") not in (None, "Running", "Pending"):
        return f"phase {status.get('phase')}"
    if status.get("phase") == "Running" and not pod_ready(pod):
        return "not ready"
    return None


def node_trouble(node: Mapping[str, Any]) -> str | None:
    if node_ready(node):
        return None
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return f"Ready={c.get('status')} ({c.get('reason') or 'no reason'})"
    return "no Ready condition"


def count_for(total: int, *, count: int | None = None, percent: float | None = None) -> int:
    """How many of ``total`` a "N or P%" fault touches (a percentage rounds up: 10% of 3 pods is 1 pod)."""
    if count is not None:
        return min(count, total)
    if percent is not None:
        return min(total, max(1, math.ceil(total * percent / 100.0))) if total else 0
    return total


# ---- registry -------------------------------------------------------------------------------------------

InjectorClass = type[Injector]


def _injector_class(obj: object) -> InjectorClass:
    if not (isinstance(obj, type) and issubclass(obj, Injector)):
        raise TypeError(
            f"{obj!r} is not a drills fault injector (a subclass of drills.adapters.faults.Injector)"
        )
    return obj


#: Every fault kind: the built-ins and a team's plugins alike, from the ``drills.faults`` entry points.
INJECTORS: Registry[InjectorClass] = Registry(
    "fault injector", ENTRY_POINT_GROUP, _injector_class, error=FaultError
)


def registered() -> dict[str, str]:
    """Every fault kind drills knows: ``name -> module:Class``."""
    return INJECTORS.targets()


def injector_class(name: str) -> InjectorClass:
    return INJECTORS.get(name)


def make_injector(fault: Fault, ctx: FaultContext) -> Injector:
    name = getattr(fault, "name", None) if fault.kind == "plugin" else fault.kind
    return injector_class(str(name))(fault, ctx)


Waiter = Callable[[], "str | None"]


def names(objs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]
