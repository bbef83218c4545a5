"""Safety rails: the decisions that keep a drill from touching what it was not allowed to.

A team will not run chaos again after one drill broke something outside the drill, so drills refuses *before*
any change, with a message that says which rule refused and what to do about it. These are pure decisions:
the fault adapters work out what a fault would touch (a :class:`BlastRadius`) and which kubeconfig context
it would run against, and ask here. Rules:

- context: only allow-listed kubeconfig contexts (shell-style patterns); drills' own clusters (``drills-*``)
  by default;
- namespaces: never ``kube-system``, ``kube-public``, ``kube-node-lease``, nor a selector spanning every
  namespace, unless the scenario allows it (``safety.allow_system_namespaces``) *and* the person running the
  drill passed the explicit flag; both, because a scenario file is shared and a flag is a decision made now;
- blast radius: at most ``safety.max_pods`` pods and ``safety.max_nodes`` nodes, and at most
  ``safety.max_percent`` of the target workload's pods.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from drills.errors import SafetyError
from drills.model.scenario import SYSTEM_NAMESPACES, Safety

#: Contexts drills may use without being told: the clusters ``drill cluster up`` creates.
DEFAULT_ALLOWED_CONTEXTS: tuple[str, ...] = ("drills-*",)


@dataclass(frozen=True)
class BlastRadius:
    """What one fault (or a whole scenario, summed) would touch."""

    pods: int = 0
    nodes: int = 0
    #: Pods of the target workloads before the fault: the denominator of the percentage.
    target_pods: int = 0
    namespaces: frozenset[str] = field(default_factory=frozenset)
    #: A selector or change that is not bounded by a namespace (e.g. pods in every namespace).
    cluster_scoped_selector: bool = False

    @property
    def percent(self) -> float:
        if self.target_pods <= 0:
            return 100.0 if self.pods > 0 else 0.0
        return 100.0 * self.pods / self.target_pods

    def __add__(self, other: BlastRadius) -> BlastRadius:
        return BlastRadius(
            pods=self.pods + other.pods,
            nodes=self.nodes + other.nodes,
            target_pods=max(self.target_pods, other.target_pods),
            namespaces=self.namespaces | other.namespaces,
            cluster_scoped_selector=self.cluster_scoped_selector or other.cluster_scoped_selector,
        )


def total(radii: Iterable[BlastRadius]) -> BlastRadius:
    result = BlastRadius()
    for r in radii:
        result = result + r
    return result


def blast_radius_problems(
    radius: BlastRadius, safety: Safety, *, allow_system_flag: bool = False
) -> list[str]:
    """Every rule the radius breaks, in words; empty when the fault may go ahead."""
    problems: list[str] = []
    system_ok = safety.allow_system_namespaces and allow_system_flag
    for ns in sorted(radius.namespaces & SYSTEM_NAMESPACES):
        if not system_ok:
            problems.append(
                f"namespace {ns!r} is a system namespace{_system_hint(safety, allow_system_flag)}"
            )
    if radius.cluster_scoped_selector and not system_ok:
        problems.append(
            "the fault selects across every namespace (cluster-scoped)"
            + _system_hint(safety, allow_system_flag)
        )
    if radius.pods > safety.max_pods:
        problems.append(f"it would touch {radius.pods} pods; safety.max_pods is {safety.max_pods}")
    if radius.nodes > safety.max_nodes:
        problems.append(f"it would touch {radius.nodes} nodes; safety.max_nodes is {safety.max_nodes}")
    if radius.pods and radius.percent > safety.max_percent + 1e-9:
        problems.append(
            f"it would touch {radius.percent:.0f}% of the target's pods "
            f"({radius.pods} of {radius.target_pods}); "
            f"safety.max_percent is {safety.max_percent:g}%"
        )
    return problems


def _system_hint(safety: Safety, flag: bool) -> str:
    if not safety.allow_system_namespaces and not flag:
        return " (needs safety.allow_system_namespaces: true in the scenario and --allow-system-namespaces)"
    if not safety.allow_system_namespaces:
        return " (--allow-system-namespaces was given, but the scenario lacks safety.allow_system_namespaces)"
    return " (the scenario allows it, but --allow-system-namespaces was not given)"


def check_blast_radius(
    radius: BlastRadius, safety: Safety, *, what: str, allow_system_flag: bool = False
) -> None:
    """Raise :class:`SafetyError` naming every broken rule; ``what`` names the fault for the message."""
    problems = blast_radius_problems(radius, safety, allow_system_flag=allow_system_flag)
    if problems:
        raise SafetyError(
            f"refusing {what}: " + "; ".join(problems),
            hint="nothing was changed; narrow the fault or raise the scenario's safety caps if you mean it",
        )


def context_allowed(context: str, allowed: Sequence[str] = DEFAULT_ALLOWED_CONTEXTS) -> bool:
    """Whether a kubeconfig context matches an allow-list entry (exact name or shell-style pattern)."""
    return any(context == pattern or fnmatch.fnmatchcase(context, pattern) for pattern in allowed)


def check_context(context: str | None, allowed: Sequence[str] = DEFAULT_ALLOWED_CONTEXTS) -> None:
    if not context:
        raise SafetyError(
            "refusing: the kubeconfig has no current context: drills cannot tell which cluster it touches",
            hint="pass an explicit context that is allow-listed",
        )
    if not context_allowed(context, allowed):
        raise SafetyError(
            f"refusing: kubeconfig context {context!r} is not allow-listed (allowed: {', '.join(allowed)})",
            hint="nothing was changed; drills only touches its own clusters unless you add the context to "
            "DRILLS_ALLOWED_CONTEXTS or allowed_contexts in the drills config",
        )
