"""Checks before a fault goes in, and the drill's time budget.

Before injecting, drills makes sure it is talking to a cluster it may touch (the context allow-list) and that
the service is healthy to begin with: a fault injected into an already broken system measures nothing and
may make a real incident worse. During the drill, :class:`BudgetWatchdog` aborts and reverts when the
scenario's time budget runs out, even if the runner is stuck waiting for a responder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import yaml
from kubernetes import config as k8s_config

from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.adapters.store import paths
from drills.engine.health import Snapshot, Verdict, judge
from drills.engine.safety import DEFAULT_ALLOWED_CONTEXTS, check_context
from drills.errors import ClusterError, SafetyError, UsageError
from drills.model.scenario import DeploymentAvailable, NoRestarts, PodsReady, Scenario, ServiceEndpoints
from drills.timing import SYSTEM_CLOCK, Clock


def allowed_contexts() -> tuple[str, ...]:
    """The context allow-list: drills' own clusters, plus ``DRILLS_ALLOWED_CONTEXTS`` (comma-separated) and
    ``allowed_contexts`` in the drills config (``<state dir>/config.yaml``)."""
    allowed = list(DEFAULT_ALLOWED_CONTEXTS)
    env = os.environ.get("DRILLS_ALLOWED_CONTEXTS", "")
    allowed.extend(c.strip() for c in env.split(",") if c.strip())
    cfg = paths.state_dir() / "config.yaml"
    if cfg.exists():
        try:
            data = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise UsageError(f"{cfg}: cannot read the drills config: {e}") from e
        extra = data.get("allowed_contexts") if isinstance(data, dict) else None
        if extra is not None:
            if not isinstance(extra, list) or not all(isinstance(c, str) for c in extra):
                raise UsageError(f"{cfg}: allowed_contexts: must be a list of context names")
            allowed.extend(extra)
    return tuple(dict.fromkeys(allowed))


def context_name(kube: Kube) -> str | None:
    """The context a client really uses: the one it was given, else the kubeconfig's current context."""
    if kube.context:
        return kube.context
    try:
        list_contexts: Any = k8s_config.list_kube_config_contexts
        _, active = list_contexts(config_file=str(kube.kubeconfig))
    except (k8s_config.ConfigException, OSError) as e:
        raise ClusterError(f"cannot read contexts of {kube.kubeconfig}: {e}") from e
    return str(active["name"]) if active else None


def check_kube_context(kube: Kube, allowed: tuple[str, ...] | None = None) -> str:
    """SafetyError unless the client's context is allow-listed; the context name otherwise."""
    name = context_name(kube)
    check_context(name, allowed if allowed is not None else allowed_contexts())
    assert name is not None
    return name


def _probe_namespaces(scenario: Scenario) -> set[str]:
    namespaces = {scenario.target.namespace}
    for p in scenario.steady_state.probes:
        if isinstance(p, DeploymentAvailable | ServiceEndpoints | PodsReady | NoRestarts) and p.namespace:
            namespaces.add(p.namespace)
    return namespaces


def world_namespaces(scenario: Scenario) -> list[str]:
    """The namespaces whose world a drill of ``scenario`` is held to (its target's and its probes')."""
    return sorted(_probe_namespaces(scenario))


def snapshot(kube: Kube, namespaces: set[str]) -> Snapshot:
    """List what the steady-state probes read (a one-off; the observer keeps a live cache instead)."""
    deployments: list[dict[str, Any]] = []
    slices: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    for ns in sorted(namespaces):
        deployments += r.list_objects(kube, "Deployment", ns)[0]
        slices += r.list_objects(kube, "EndpointSlice", ns)[0]
        pods += r.list_objects(kube, "Pod", ns)[0]
    nodes, _ = r.list_objects(kube, "Node")
    return Snapshot(deployments=deployments, endpoint_slices=slices, nodes=nodes, pods=pods)


def baseline_replicas(snap: Snapshot) -> dict[str, int]:
    return {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": int((d.get("spec") or {}).get("replicas", 1))
        for d in snap.deployments
    }


@dataclass(frozen=True)
class Preflight:
    verdict: Verdict
    #: ``ns/name`` -> replicas before the fault: what "available" means for deployment probes.
    baseline_replicas: dict[str, int]
    context: str


def steady_state(
    scenario: Scenario, kube: Kube, clock: Clock = SYSTEM_CLOCK
) -> tuple[Verdict, dict[str, int]]:
    snap = snapshot(kube, _probe_namespaces(scenario))
    baseline = baseline_replicas(snap)
    verdict = judge(
        scenario.steady_state,
        snap,
        namespace=scenario.target.namespace,
        now=clock.now(),
        baseline_replicas=baseline,
    )
    return verdict, baseline


def preflight(
    scenario: Scenario,
    kube: Kube,
    clock: Clock = SYSTEM_CLOCK,
    *,
    wait: float = 0.0,
    allowed: tuple[str, ...] | None = None,
) -> Preflight:
    """Context allow-listed and steady state holding (waiting up to ``wait`` s); SafetyError otherwise."""
    context = check_kube_context(kube, allowed)
    deadline = clock.monotonic() + wait
    while True:
        verdict, baseline = steady_state(scenario, kube, clock)
        if verdict.healthy:
            return Preflight(verdict, baseline, context)
        if clock.monotonic() >= deadline:
            raise SafetyError(
                f"refusing to inject: the steady state does not hold before the fault: {verdict.reason}",
                hint="a drill on an already broken system measures nothing; fix it first "
                "(on the embedded cluster: `drill cluster up` re-applies the fixtures)",
            )
        clock.sleep(0.5)


class BudgetWatchdog:
    """Calls ``on_expire`` once when the drill's time budget runs out (unless cancelled first).

    The runner passes a callback that records the abort and reverts the faults; the watchdog is a daemon
    thread so a runner blocked on input still gets its faults reverted on time.
    """

    def __init__(self, budget: timedelta, on_expire: Callable[[], None], clock: Clock = SYSTEM_CLOCK) -> None:
        self.budget = budget
        self.clock = clock
        self._on_expire = on_expire
        self._started = clock.monotonic()
        self._cancelled = threading.Event()
        self.expired = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drills-budget", daemon=True)

    def start(self) -> BudgetWatchdog:
        self._thread.start()
        return self

    def remaining(self) -> float:
        return self.budget.total_seconds() - (self.clock.monotonic() - self._started)

    def _run(self) -> None:
        while not self._cancelled.is_set():
            left = self.remaining()
            if left <= 0:
                self.expired.set()
                self._on_expire()
                return
            self._cancelled.wait(min(left, 1.0))

    def cancel(self) -> None:
        self._cancelled.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
