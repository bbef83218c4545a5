"""Is the service healthy right now? The scenario's steady-state probes judged against a cluster snapshot.

The observer keeps a watch cache of the cluster and asks here after every change (and on a tick, because
"no restarts in the last N seconds" changes with time alone); the verdict's transitions become
``health.changed`` journal events, from which the timer finds mitigation. The "healthy for N seconds" exit
window itself is the timer's business: this module answers only for one instant, the ``now`` it is given.

Objects are the plain JSON dicts the API server sends (camelCase keys), so the same code judges a live
watch cache, a recorded snapshot in a test, or a context cluster's list responses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drills.model.scenario import (
    DeploymentAvailable,
    NodesReady,
    NoRestarts,
    PodsReady,
    Probe,
    ServiceEndpoints,
    SteadyState,
)

Obj = Mapping[str, Any]

#: Container waiting reasons that mean the container is not running as it should.
BAD_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class Snapshot:
    """The objects health is judged from; each a list of API JSON dicts."""

    deployments: Sequence[Obj] = ()
    endpoint_slices: Sequence[Obj] = ()
    nodes: Sequence[Obj] = ()
    pods: Sequence[Obj] = ()
    #: ``namespace/pod`` -> when a container's restartCount last went up, as a watcher saw it happen (a
    #: pod's status may not keep the last termination between crashes).
    restarts: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    #: One line: what failed (or "all N probes hold").
    reason: str
    failing: tuple[str, ...] = field(default_factory=tuple)


# ---- label selectors -------------------------------------------------------------------------------------

_SET_EXPR = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # =, !=, in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # != and notin match when the label is absent, as in Kubernetes
        return not present or value not in self.values


def _split_selector(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a Kubernetes label selector (``app=myapp,tier!=db,env in (a,b),!legacy``); ValueError if bad."""
    reqs: list[Requirement] = []
    for part in _split_selector(text):
        m = _SET_EXPR.match(part)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(Requirement(k.strip(), "!=", frozenset({v.strip()})))
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append(Requirement(k.strip(), "=", frozenset({v.strip()})))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!exists"))
        elif re.match(r"^[\w./-]+$", part):
            reqs.append(Requirement(part, "exists"))
        else:
            raise ValueError(f"cannot read label selector part {part!r}")
    return tuple(reqs)


def selector_matches(selector: str | Sequence[Requirement], labels: Mapping[str, str] | None) -> bool:
    reqs = parse_selector(selector) if isinstance(selector, str) else selector
    return all(r.matches(labels or {}) for r in reqs)


def match_labels_selector(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


# ---- object facts ----------------------------------------------------------------------------------------


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _condition(obj: Obj, kind: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c  # type: ignore[no-any-return]
    return None


def node_ready(node: Obj) -> bool:
    c = _condition(node, "Ready")
    return bool(c and c.get("status") == "True")


def pod_ready(pod: Obj) -> bool:
    if _meta(pod).get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    c = _condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_restart_trouble(pod: Obj, *, now: datetime, window: timedelta) -> str | None:
    """Why a pod counts as restarting (crash-looping, or a container ended within the window), or None."""
    name = _meta(pod).get("name", "?")
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in BAD_WAITING_REASONS:
            return f"pod {name} container {cs.get('name')} is {waiting.get('reason')}"
        terminated = (cs.get("lastState") or {}).get("terminated") or {}
        finished = _parse_time(terminated.get("finishedAt"))
        if finished is not None and finished >= now - window:
            reason = terminated.get("reason") or "terminated"
            return f"pod {name} container {cs.get('name')} restarted ({reason}) within {_fmt(window)}"
    return None


def _fmt(d: timedelta) -> str:
    s = int(d.total_seconds())
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# ---- probes ----------------------------------------------------------------------------------------------


def _in_ns(objs: Sequence[Obj], namespace: str) -> list[Obj]:
    return [o for o in objs if _meta(o).get("namespace") == namespace]


def _judge_probe(
    probe: Probe,
    snap: Snapshot,
    *,
    namespace: str,
    baseline_replicas: Mapping[str, int],
    now: datetime,
    window: timedelta,
) -> str | None:
    """None when the probe holds, else why not."""
    if isinstance(probe, DeploymentAvailable):
        ns = probe.namespace or namespace
        dep = next((d for d in _in_ns(snap.deployments, ns) if _meta(d).get("name") == probe.name), None)
        if dep is None:
            return f"deployment {ns}/{probe.name} does not exist"
        want = probe.min_available
        if want is None:
            want = baseline_replicas.get(f"{ns}/{probe.name}", (dep.get("spec") or {}).get("replicas", 1))
        have = int((dep.get("status") or {}).get("availableReplicas") or 0)
        return None if have >= want else f"deployment {ns}/{probe.name} has {have}/{want} replicas available"
    if isinstance(probe, ServiceEndpoints):
        ns = probe.namespace or namespace
        ready = not_ready = 0
        for s in _in_ns(snap.endpoint_slices, ns):
            if (_meta(s).get("labels") or {}).get("kubernetes.io/service-name") != probe.name:
                continue
            for ep in s.get("endpoints") or []:
                # a nil ready condition means ready (EndpointSlice API)
                if (ep.get("conditions") or {}).get("ready") is not False:
                    ready += 1
                else:
                    not_ready += 1
        if ready < probe.min_ready:
            return f"service {ns}/{probe.name} has {ready}/{probe.min_ready} ready endpoints"
        if probe.max_not_ready is not None and not_ready > probe.max_not_ready:
            return (
                f"service {ns}/{probe.name} routes to {not_ready} not-ready endpoints "
                f"(at most {probe.max_not_ready})"
            )
        return None
    if isinstance(probe, NodesReady):
        ready = sum(
            1
            for n in snap.nodes
            if node_ready(n) and not (probe.schedulable and (n.get("spec") or {}).get("unschedulable"))
        )
        what = "nodes Ready and schedulable" if probe.schedulable else "nodes Ready"
        return None if ready >= probe.min_ready else f"{ready}/{probe.min_ready} {what}"
    if isinstance(probe, PodsReady):
        ns = probe.namespace or namespace
        reqs = parse_selector(probe.selector)
        pods = [p for p in _in_ns(snap.pods, ns) if selector_matches(reqs, _meta(p).get("labels"))]
        ready = sum(1 for p in pods if pod_ready(p))
        ok = ready >= probe.min_ready
        return None if ok else f"{ready}/{probe.min_ready} pods ready for {probe.selector} in {ns}"
    if isinstance(probe, NoRestarts):
        ns = probe.namespace or namespace
        reqs = parse_selector(probe.selector)
        for p in _in_ns(snap.pods, ns):
            if _meta(p).get("deletionTimestamp") or not selector_matches(reqs, _meta(p).get("labels")):
                continue
            trouble = pod_restart_trouble(p, now=now, window=window)
            if trouble:
                return trouble
            restarted = snap.restarts.get(f"{ns}/{_meta(p).get('name')}")
            if restarted is not None and restarted >= now - window:
                return f"pod {_meta(p).get('name')} restarted within {_fmt(window)}"
        return None
    raise TypeError(f"unknown probe {probe!r}")  # pragma: no cover - the union is closed


def judge(
    steady_state: SteadyState,
    snapshot: Snapshot,
    *,
    namespace: str,
    now: datetime,
    baseline_replicas: Mapping[str, int] | None = None,
) -> Verdict:
    """Judge every probe; unhealthy when any fails. ``baseline_replicas`` maps ``ns/name`` -> replicas."""
    failing: list[str] = []
    for probe in steady_state.probes:
        why = _judge_probe(
            probe,
            snapshot,
            namespace=namespace,
            baseline_replicas=baseline_replicas or {},
            now=now,
            window=steady_state.healthy_for,
        )
        if why:
            failing.append(why)
    if failing:
        return Verdict(False, "; ".join(failing), tuple(failing))
    n = len(steady_state.probes)
    return Verdict(True, f"all {n} steady-state probe{'s' if n != 1 else ''} hold")
