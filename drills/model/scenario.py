"""Scenarios: what breaks, how bad it truly is, what healthy looks like, and what a good response is.

A scenario is YAML in ``scenarios/`` validated by these models (``extra="forbid"``: a typo is an error, not a
silently ignored key). Loading with file and line numbers is ``drills.adapters.files.scenarios``; this module
does no I/O. ``drill schema scenario`` prints the JSON Schema of :class:`Scenario` for editor completion.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from drills.model.durations import Duration, format_duration
from drills.model.policy import SlaOverrides
from drills.model.service_graph import ServiceGraphOverride
from drills.model.severity import Impact, Severity, true_severity

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A DNS-1123 subdomain: what Kubernetes allows for ConfigMap, Secret and Node names.
SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: A ConfigMap or Secret data key.
_DATA_KEY = r"^[-._a-zA-Z0-9]+$"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

#: The most replicas, pods or endpoints a scenario may name. The runbook world runs 3 app pods; a drill with
#: more than a thousand is a typo (``replicas: 1000000000``), not a plan.
MAX_REPLICAS = 1000
#: Nodes in the runbook world (fixtures/manifests/10-nodes.yaml; fixtures/kind/cluster.yaml has as many). A
#: scenario cannot need more Ready nodes than the world has, nor break more of them.
WORLD_NODES = 4

#: A Kubernetes CPU quantity as the load-spike injector reads it: cores (``2``, ``1.5``, ``.5``) or millicores
#: (``500m``). Kubernetes also allows ``1k`` or ``2e3`` cores; no drill pod uses thousands of cores.
_CPU_QUANTITY = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)m?", re.ASCII)

Name = Annotated[str, Field(pattern=_NAME, max_length=63)]
SubdomainName = Annotated[str, Field(pattern=SUBDOMAIN, max_length=253)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)]


class Difficulty(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"
    EXPERT = "expert"


class Mitigation(StrEnum):
    """The seed's mitigation strategies (incident-response-framework.md lines 62-121), plus DR restore."""

    ROLLBACK = "rollback"
    SCALE = "scale"
    AUTOSCALE = "autoscale"
    DRAIN = "drain"
    DELETE_PODS = "delete-pods"
    SET_SELECTOR = "set-selector"
    CIRCUIT_BREAKER = "circuit-breaker"
    FIX_FORWARD = "fix-forward"
    UNCORDON = "uncordon"
    RESTORE_CONFIG = "restore-config"
    RESTORE_SECRET = "restore-secret"
    RESTORE_BACKUP = "restore-backup"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- faults ---------------------------------------------------------------------------------------------


class _FaultBase(_Strict):
    delay: Duration = Field(default=timedelta(0), description="Wait this long after the drill starts.")
    workload: Name | None = Field(
        default=None, description="Deployment name; defaults to the scenario target's workload."
    )


class BadDeployFault(_FaultBase):
    """A new rollout whose pods crash (image tag bump with FAULT=crash), as a bad release would."""

    kind: Literal["bad-deploy"]
    image: str = Field(default="myapp:v2.1.0", description="The new (broken) image.")
    effect: Literal["crash", "oom", "unready"] = "crash"
    max_unavailable: Annotated[str, Field(pattern=r"^([0-9]|[1-9][0-9]|100)%$|^[0-9]{1,4}$")] | None = Field(
        default=None,
        description="The release's rollout strategy (maxUnavailable, e.g. '67%' or '2'): how many old pods "
        "it takes down before new ones are ready. A pipeline that skipped its canary rolls out like this; "
        "unset, the Deployment's own strategy holds (old pods keep serving while the new ones crash).",
    )


class CrashLoopFault(_FaultBase):
    kind: Literal["crash-loop"]


class OomFault(_FaultBase):
    kind: Literal["oom"]


class ReadinessFault(_FaultBase):
    kind: Literal["readiness-failure"]


class ImagePullFault(_FaultBase):
    kind: Literal["image-pull"]
    image: str = Field(default="myapp:v9.9.9-does-not-exist", description="An image tag that does not exist.")


class ScaleToZeroFault(_FaultBase):
    kind: Literal["scale-to-zero"]
    replicas: Count = Field(default=0, description="Replicas left (0 = all lost).")


class PodKillFault(_FaultBase):
    kind: Literal["pod-kill"]
    count: Annotated[StrictInt, Field(ge=1, le=MAX_REPLICAS)] | None = None
    percent: Annotated[StrictFloat, Field(gt=0, le=100)] | None = None
    selector: str | None = Field(default=None, description="Label selector; defaults to the workload's.")

    @model_validator(mode="after")
    def _one_of(self) -> PodKillFault:
        if (self.count is None) == (self.percent is None):
            raise ValueError("give exactly one of count or percent")
        return self


class NodeNotReadyFault(_FaultBase):
    kind: Literal["node-not-ready"]
    nodes: StrictInt = Field(default=1, ge=1, le=WORLD_NODES)
    node: SubdomainName | None = Field(
        default=None, description="A node name; default: the node with most target pods."
    )


class NodeLostFault(_FaultBase):
    kind: Literal["node-lost"]
    nodes: StrictInt = Field(default=1, ge=1, le=WORLD_NODES)
    node: SubdomainName | None = None


class NodeDrainStuckFault(_FaultBase):
    """A node must be drained but a too-strict PodDisruptionBudget blocks eviction."""

    kind: Literal["node-drain-stuck"]
    node: SubdomainName | None = None


class DependencyOutageFault(_FaultBase):
    kind: Literal["dependency-outage"]
    dependency: Name = Field(default="db-proxy", description="The dependency deployment to take down.")


class LoadSpikeFault(_FaultBase):
    """A constant CPU demand spread over the serving pods (kwok usage annotation on the embedded cluster);
    the share the pods cannot carry fails readiness. The model: docs/scenarios.md, "The load-spike model"."""

    kind: Literal["load-spike"]
    cpu: str = Field(
        default="300m",
        description="CPU each pod uses at injection (a Kubernetes quantity); the total (cpu x replicas) "
        "stays as replicas change.",
    )
    traffic: Annotated[StrictFloat, Field(gt=1, le=100)] | None = Field(
        default=None,
        description="The users send this many times their base traffic (the Deployment's "
        "impact.drills.io/load-factor, which the virtual users read; docs/impact.md). Unset: the users' "
        "traffic is unchanged and only the pods' CPU and readiness show the spike.",
    )

    @field_validator("cpu")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not _CPU_QUANTITY.fullmatch(v):
            raise ValueError(f"{v!r} is not a Kubernetes CPU quantity; write it like '500m', '2' or '1.5'")
        if float(v.removesuffix("m")) == 0:
            raise ValueError("a load spike of no CPU is no spike; give the CPU each pod uses, e.g. '300m'")
        return v


class DependencyLatencyFault(_FaultBase):
    """The dependency answers slowly (its pod template carries ``impact.drills.io/extra-latency-ms``): the
    callers' calls time out, retry, and the requests that need it fail after the wait (504)."""

    kind: Literal["dependency-latency"]
    dependency: Name = Field(default="db-proxy", description="The dependency deployment that gets slow.")
    latency: Duration = Field(default=timedelta(milliseconds=1500), description="Added to every response.")

    @field_validator("latency")
    @classmethod
    def _some(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0) or v > timedelta(minutes=10):
            raise ValueError(
                "give the latency the dependency adds, more than 0s and at most 10m, e.g. '1500ms'"
            )
        return v


class DependencyErrorsFault(_FaultBase):
    """A share of the dependency's answers are errors (``impact.drills.io/error-rate`` on its pod template)."""

    kind: Literal["dependency-errors"]
    dependency: Name = Field(default="db-proxy", description="The dependency deployment that errs.")
    error_rate: Annotated[StrictFloat, Field(gt=0, le=1)] = Field(
        default=0.6, description="Share (0-1] of the dependency's answers that are errors."
    )


class PartialFailureFault(_FaultBase):
    """One bad pod of N: ``count`` of the target's pods (the newest) fail a share of their requests; the
    Deployment's fresh pods are clean, so deleting the bad pod is the fix."""

    kind: Literal["partial-failure"]
    count: Annotated[StrictInt, Field(ge=1, le=MAX_REPLICAS)] = 1
    error_rate: Annotated[StrictFloat, Field(gt=0, le=1)] = Field(
        default=1.0, description="Share (0-1] of the bad pod's requests that fail (500)."
    )


class NodePartitionFault(_FaultBase):
    """The node is cut off the network (``impact.drills.io/partitioned``): its pods stop serving while the
    node still reports Ready, so nothing in Kubernetes reacts. Drain it."""

    kind: Literal["node-partition"]
    node: SubdomainName | None = Field(
        default=None, description="A node name; default: the node with most target pods."
    )


class DependencyDnsFault(_FaultBase):
    """The dependency's name no longer resolves: its Service is gone (the pods still run)."""

    kind: Literal["dependency-dns"]
    dependency: Name = Field(default="db-proxy", description="The Service whose name stops resolving.")


class BrokenConfigFault(_FaultBase):
    kind: Literal["broken-config"]
    configmap: SubdomainName = "app-config"
    key: str = Field(default="DATABASE_URL", pattern=_DATA_KEY, max_length=253)
    value: str = "postgres://db-proxy.invalid:5432/app"


class SecretFault(_FaultBase):
    kind: Literal["secret-missing", "secret-rotated"]
    secret: SubdomainName = "app-secrets"
    key: str = Field(default="API_KEY", pattern=_DATA_KEY, max_length=253)


class NamespaceLostFault(_FaultBase):
    """Quarterly DR: the whole namespace is deleted; responders restore it from backup manifests."""

    kind: Literal["namespace-lost"]
    backup: str = Field(
        default="fixtures/backups/production", description="Backup manifests (directory) to restore from."
    )


class ChaosToolkitFault(_FaultBase):
    kind: Literal["chaostoolkit"]
    experiment: str = Field(
        description="Path of a Chaos Toolkit experiment (JSON or YAML), relative to the scenario."
    )
    configuration: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Merged over the experiment's `configuration` before it is validated and run; a value "
        "may be env-typed (`{type: env, key: VAR, default: ...}`) as in the experiment.",
    )
    secrets: dict[str, dict[str, JsonValue]] = Field(
        default_factory=dict,
        description="Merged over the experiment's `secrets`, scope by scope; give values env-typed "
        "(`{type: env, key: VAR}`) so that no secret is written in the scenario.",
    )
    rollback_strategy: Literal["default", "always", "never", "deviated"] = Field(
        default="default",
        description="When the experiment's rollbacks are played, as `chaos run --rollback-strategy`: "
        "`default` unless the experiment failed or was interrupted, `always`, `never`, `deviated` only if "
        "the steady state deviated after the method. drills plays them at the drill's revert.",
    )
    hypothesis_strategy: Literal["default", "before-method-only", "after-method-only", "continuously"] = (
        Field(
            default="default",
            description="When the steady-state hypothesis is checked, as `chaos run --hypothesis-strategy`: "
            "`default` before and after the method; a hypothesis that does not hold before is its own "
            "result (exit 6), never a fault.",
        )
    )


class PluginFault(_FaultBase):
    """A fault kind registered by another package under the ``drills.faults`` entry-point group."""

    kind: Literal["plugin"]
    name: str = Field(description="Entry-point name in the drills.faults group.")
    params: dict[str, JsonValue] = Field(default_factory=dict)


Fault = Annotated[
    BadDeployFault
    | CrashLoopFault
    | OomFault
    | ReadinessFault
    | ImagePullFault
    | ScaleToZeroFault
    | PodKillFault
    | NodeNotReadyFault
    | NodeLostFault
    | NodeDrainStuckFault
    | DependencyOutageFault
    | LoadSpikeFault
    | DependencyLatencyFault
    | DependencyErrorsFault
    | PartialFailureFault
    | NodePartitionFault
    | DependencyDnsFault
    | BrokenConfigFault
    | SecretFault
    | NamespaceLostFault
    | ChaosToolkitFault
    | PluginFault,
    Field(discriminator="kind"),
]

FAULT_KINDS: tuple[str, ...] = (
    "bad-deploy",
    "crash-loop",
    "oom",
    "readiness-failure",
    "image-pull",
    "scale-to-zero",
    "pod-kill",
    "node-not-ready",
    "node-lost",
    "node-drain-stuck",
    "dependency-outage",
    "load-spike",
    "dependency-latency",
    "dependency-errors",
    "partial-failure",
    "node-partition",
    "dependency-dns",
    "broken-config",
    "secret-missing",
    "secret-rotated",
    "namespace-lost",
    "chaostoolkit",
    "plugin",
)

# ---- steady state ---------------------------------------------------------------------------------------


class DeploymentAvailable(_Strict):
    probe: Literal["deployment-available"]
    name: Name
    min_available: Count | None = Field(default=None, description="Default: the baseline replica count.")
    namespace: Name | None = None


class ServiceEndpoints(_Strict):
    probe: Literal["service-endpoints"]
    name: Name
    min_ready: Count = 1
    max_not_ready: Count | None = Field(
        default=None,
        description="Also unhealthy while the Service selects more not-ready endpoints than this "
        "(0: it must route only to ready pods; the set-selector mitigation).",
    )
    namespace: Name | None = None


class NodesReady(_Strict):
    probe: Literal["nodes-ready"]
    min_ready: StrictInt = Field(ge=0, le=WORLD_NODES, description="At most the world's nodes (4).")
    schedulable: StrictBool = Field(
        default=False, description="Count only nodes that are also schedulable (not cordoned)."
    )


class PodsReady(_Strict):
    probe: Literal["pods-ready"]
    selector: str
    min_ready: Count
    namespace: Name | None = None


class NoRestarts(_Strict):
    """No container of the workload restarted within the healthy window (a crash loop is not healthy)."""

    probe: Literal["no-restarts"]
    selector: str
    namespace: Name | None = None


Probe = Annotated[
    DeploymentAvailable | ServiceEndpoints | NodesReady | PodsReady | NoRestarts,
    Field(discriminator="probe"),
]


class SteadyState(_Strict):
    """What healthy looks like; health comes back when every probe holds for ``healthy_for``."""

    probes: list[Probe] = Field(min_length=1)
    healthy_for: Duration = Field(default=timedelta(seconds=30), description="Exit criteria window.")
    users_affected_under_pct: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="Measured impact is reduced once users affected stay under this share (%) for "
        "`healthy_for` (with virtual users; TTM ends there).",
    )


# ---- expected response, hints ---------------------------------------------------------------------------


RoleName = Literal["ic", "tech", "comms", "sme"]


class ExpectedResponse(_Strict):
    mitigations: list[Mitigation] = Field(
        min_length=1, description="Any one of these fixes it (the first is the bot's choice)."
    )
    roles: list[RoleName] = Field(default_factory=lambda: list[RoleName](["ic"]))
    comms: list[str] | None = Field(
        default=None, description="Templates that must be posted; default: by severity (see docs/scoring.md)."
    )
    runbook: list[str] = Field(default_factory=list, description="The seed's runbook commands that apply.")
    root_cause: str = Field(default="", description="The true root cause, for the debrief.")


class Hint(_Strict):
    text: str = Field(min_length=1)
    after: Duration = Field(default=timedelta(0), description="Available this long after the fault.")
    cost: StrictInt = Field(default=5, ge=0, le=100, description="Points taken off the score when used.")


class Target(_Strict):
    namespace: str = Field(default="production", pattern=_NAME)
    workload: str = Field(default="app", pattern=_NAME, description="Deployment name.")
    service: str | None = Field(default=None, description="The service name users know; default: workload.")


class Safety(_Strict):
    allow_system_namespaces: StrictBool = Field(
        default=False, description="Also needs --allow-system-namespaces on the command line."
    )
    max_pods: Count = 50
    max_nodes: Count = 2
    max_percent: StrictFloat = Field(
        default=100, gt=0, le=100, description="Largest share of target pods touched."
    )


class Detection(_Strict):
    expected_alert: str | None = Field(default=None, description="Alert rule that should fire.")
    alert_for: Duration | None = Field(default=None, description="Override the rule's `for:` in this drill.")


class Scenario(_Strict):
    """A drill scenario. See docs/scenarios.md."""

    id: str = Field(pattern=_NAME, max_length=63)
    title: str = Field(min_length=3)
    description: str = ""
    category: str = Field(min_length=1, description="deployment, capacity, node, dependency, config, dr, ...")
    difficulty: Difficulty = Difficulty.BEGINNER
    tags: list[str] = Field(default_factory=list)
    impact: Impact
    target: Target = Field(default_factory=Target)
    faults: list[Fault] = Field(min_length=1)
    steady_state: SteadyState
    expected_response: ExpectedResponse
    hints: list[Hint] = Field(default_factory=list)
    sla: SlaOverrides = Field(default_factory=SlaOverrides)
    time_budget: Duration = Field(default=timedelta(minutes=30), description="Abort and revert after this.")

    @field_validator("time_budget")
    @classmethod
    def _budget(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError(
                "a time budget of 0s ends the drill before the fault; give it minutes, e.g. '30m'"
            )
        return v

    detection: Detection = Field(default_factory=Detection)
    safety: Safety = Field(default_factory=Safety)
    self_healing: StrictBool = Field(
        default=False, description="The system is expected to recover without a human (a chaos test)."
    )
    service_graph: ServiceGraphOverride | None = Field(
        default=None,
        description="Extends or overrides the world's service graph for this drill (services added, a "
        "service's capacity or latency changed, more users): see docs/impact.md.",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.match(_NAME, t):
                raise ValueError(f"tag {t!r} must be lower-case letters, digits and dashes")
        return v

    @model_validator(mode="after")
    def _namespaces(self) -> Scenario:
        if self.target.namespace in SYSTEM_NAMESPACES and not self.safety.allow_system_namespaces:
            raise ValueError(
                f"target namespace {self.target.namespace!r} is a system namespace; set "
                "safety.allow_system_namespaces: true (and pass --allow-system-namespaces) if you mean it"
            )
        return self

    @property
    def true_severity(self) -> Severity:
        return true_severity(self.impact)

    @property
    def service(self) -> str:
        return self.target.service or self.target.workload


# ---- rules across fields --------------------------------------------------------------------------------

RulePath = tuple[str | int, ...]


def rule_problems(scenario: Scenario) -> list[tuple[RulePath, str]]:
    """What no single field can know: windows, hints and delays against the time budget, probe namespaces.

    Each problem is ``(data path, message)`` so the file loader can put it on the line where it is written.
    Pure: the loader adds what needs the outside world (alert rules, templates, paths).
    """
    out: list[tuple[RulePath, str]] = []
    budget = scenario.time_budget
    shown = format_duration(budget)
    # T0: the first fault; health, hints and alerts are all measured from it.
    t0 = min((f.delay for f in scenario.faults), default=timedelta(0))
    for i, fault in enumerate(scenario.faults):
        if fault.delay >= budget:
            out.append(
                (
                    ("faults", i, "delay"),
                    f"the fault would come {format_duration(fault.delay)} into a drill that ends after "
                    f"{shown} (time_budget); make the delay shorter or the budget longer",
                )
            )
    healthy_for = scenario.steady_state.healthy_for
    if t0 + healthy_for >= budget:
        after = f" after the fault at {format_duration(t0)}" if t0 else ""
        out.append(
            (
                ("steady_state", "healthy_for"),
                f"health held for {format_duration(healthy_for)}{after} can never be seen within the "
                f"{shown} time_budget; make healthy_for shorter than the budget",
            )
        )
    for i, hint in enumerate(scenario.hints):
        if t0 + hint.after >= budget:
            out.append(
                (
                    ("hints", i, "after"),
                    f"this hint comes {format_duration(t0 + hint.after)} into a drill that ends after {shown} "
                    "(time_budget): nobody could ever use it",
                )
            )
    alert_for = scenario.detection.alert_for
    if alert_for is not None and t0 + alert_for >= budget:
        out.append(
            (
                ("detection", "alert_for"),
                f"an alert that must be pending for {format_duration(alert_for)} cannot fire within the "
                f"{shown} time_budget",
            )
        )
    home = scenario.target.namespace
    for i, probe in enumerate(scenario.steady_state.probes):
        namespace = getattr(probe, "namespace", None)
        if namespace is None or namespace == home:
            continue
        what = "a system namespace" if namespace in SYSTEM_NAMESPACES else "not the scenario's namespace"
        out.append(
            (
                ("steady_state", "probes", i, "namespace"),
                f"{namespace!r} is {what}: probes watch the scenario's namespace ({home}); leave namespace "
                "out, or move the target",
            )
        )
    return out
