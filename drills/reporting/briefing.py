"""The game master's briefing: everything the trainee must not see, on one printable page.

A drill is only a good exercise if the person running it knows the answer and the trainee does not. The
briefing gives the game master the scenario, its true severity and why (each row of the seed's severity
matrix), what will break and when, what healthy looks like, the expected response (mitigations, roles,
messages, the seed's runbook commands), the SLA clocks that apply and their targets, what to watch for, and
when to offer each hint and what it costs. ``briefing.md`` prints well; ``briefing.html`` is one
self-contained page (inline CSS, nothing fetched) for a second screen or a printer.

Pure: a function of the scenario and the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from drills.engine.ladder import CHANGE_HINT_COST, training_hints
from drills.engine.rules import CORE, RULES
from drills.model.durations import format_duration
from drills.model.policy import Policy
from drills.model.scenario import (
    BadDeployFault,
    DependencyOutageFault,
    Fault,
    Mitigation,
    NamespaceLostFault,
    NodeDrainStuckFault,
    NodeLostFault,
    NodeNotReadyFault,
    PodKillFault,
    Probe,
    ScaleToZeroFault,
    Scenario,
)
from drills.model.severity import Severity, matrix_rows
from drills.reporting import _templates

#: The seed's command for each mitigation (incident-response-framework.md lines 62-121), placeholders filled
#: with the scenario's target.
MITIGATION_COMMANDS: dict[Mitigation, str] = {
    Mitigation.ROLLBACK: "kubectl rollout undo deployment/{workload} -n {namespace}",
    Mitigation.SCALE: "kubectl scale deployment/{workload} -n {namespace} --replicas=15",
    Mitigation.AUTOSCALE: (
        "kubectl autoscale deployment/{workload} -n {namespace} --cpu-percent=70 --min=5 --max=25"
    ),
    Mitigation.DRAIN: "kubectl drain <node-name> --ignore-daemonsets --delete-emptydir-data",
    Mitigation.DELETE_PODS: "kubectl delete pod <pod-name> -n {namespace}",
    Mitigation.SET_SELECTOR: 'kubectl set selector service/{service} "app=myapp,healthy=true" -n {namespace}',
    Mitigation.CIRCUIT_BREAKER: (
        "kubectl set env deployment/{workload} -n {namespace} CIRCUIT_BREAKER_ENABLED=true "
        "CIRCUIT_BREAKER_THRESHOLD=50 CIRCUIT_BREAKER_TIMEOUT=30000"
    ),
    Mitigation.FIX_FORWARD: "kubectl set image deployment/{workload} -n {namespace} app=myapp:<good version>",
    Mitigation.UNCORDON: "kubectl uncordon <node-name>",
    Mitigation.RESTORE_CONFIG: "kubectl apply -f <the known-good ConfigMap> -n {namespace}",
    Mitigation.RESTORE_SECRET: "kubectl apply -f <the known-good Secret> -n {namespace}",
    Mitigation.RESTORE_BACKUP: "kubectl apply -f {backup}/",
}

_ROW_LABEL = {
    "users": "Users affected",
    "status": "Service status",
    "data_loss": "Data loss risk",
    "revenue": "Revenue impact",
}

_ROLE_NAMES = {
    "ic": "Incident commander",
    "tech": "Technical lead",
    "comms": "Communications lead",
    "sme": "SME",
}


@dataclass(frozen=True)
class SeverityRow:
    criterion: str
    value: str
    severity: Severity
    decides: bool


@dataclass(frozen=True)
class ClockRow:
    check_id: str
    rule: str
    target: str
    citation: str
    core: bool


@dataclass(frozen=True)
class HintRow:
    number: int
    after: str
    cost: int
    text: str
    offer_when: str
    runbook: bool


@dataclass(frozen=True)
class Briefing:
    scenario: Scenario
    severity: Severity
    severity_rows: list[SeverityRow]
    faults: list[str]
    healthy: list[str]
    healthy_for: str
    mitigations: list[tuple[str, str]]
    roles: list[str]
    comms: list[str]
    runbook: list[str]
    clocks: list[ClockRow]
    watch_for: list[str]
    hints: list[HintRow]
    time_budget: str
    root_cause: str
    self_healing: bool
    notes: list[str] = field(default_factory=list)


def _value(criterion: str, scenario: Scenario) -> str:
    i = scenario.impact
    return {
        "users": f"{i.users_affected_pct:g}% of users",
        "status": i.service_status.value,
        "data_loss": i.data_loss_risk.value,
        "revenue": i.revenue_impact.value,
    }[criterion]


def describe_fault(fault: Fault, scenario: Scenario) -> str:
    when = f"at T+{format_duration(fault.delay)}" if fault.delay else "at T0"
    target = getattr(fault, "workload", None) or scenario.target.workload
    where = f"{scenario.target.namespace}/{target}"
    if isinstance(fault, BadDeployFault):
        what = f"a new rollout of {where} to {fault.image} whose pods {fault.effect}"
    elif isinstance(fault, PodKillFault):
        n = f"{fault.count} pod(s)" if fault.count else f"{fault.percent:g}% of the pods"
        what = f"{n} of {where} killed"
    elif isinstance(fault, ScaleToZeroFault):
        what = f"{where} scaled to {fault.replicas} replicas"
    elif isinstance(fault, NodeNotReadyFault | NodeLostFault):
        node = fault.node or "the node running most target pods"
        what = (
            f"{fault.nodes} node(s) {'NotReady' if isinstance(fault, NodeNotReadyFault) else 'lost'} ({node})"
        )
    elif isinstance(fault, NodeDrainStuckFault):
        what = "a node needs draining but a strict PodDisruptionBudget blocks eviction"
    elif isinstance(fault, DependencyOutageFault):
        what = f"dependency {scenario.target.namespace}/{fault.dependency} taken down"
    elif isinstance(fault, NamespaceLostFault):
        what = f"namespace {scenario.target.namespace} deleted; backups in {fault.backup}"
    else:
        what = f"{fault.kind} on {where}"
    return f"{when}: {what}"


def describe_probe(probe: Probe, namespace: str) -> str:
    p = probe.model_dump()
    kind = p.pop("probe")
    ns = p.pop("namespace", None) or namespace
    rest = ", ".join(f"{k}={v}" for k, v in p.items() if v is not None)
    return f"{kind} ({ns}): {rest}" if rest else f"{kind} ({ns})"


def _watch_for(scenario: Scenario, severity: Severity) -> list[str]:
    watch = [
        f"The severity call: the truth is {severity.value}. A responder who declares "
        f"{'P1' if severity == Severity.P0 else 'a lower severity'} is reading only one row of the matrix.",
        "Evidence before change: do they read logs, events or rollout history before the first destructive "
        "command? (the seed: preserve evidence before making changes)",
        "Acknowledgement before investigation: the ack stops the MTTA clock; watch for digging in first.",
        "Changes documented as they happen: each action should be followed by a note or a status update.",
        "Resolving while unhealthy: steady state must hold for its healthy window before `drill resolve`.",
    ]
    if severity.is_high():
        watch.append(
            "Escalation timing: "
            + (
                "engineering leadership within 15 minutes, executives if impact passes 1 hour."
                if severity == Severity.P0
                else "the engineering lead within 1 hour."
            )
        )
        watch.append("Status updates every 15-30 minutes while the incident is open.")
    else:
        watch.append("P2/P3: a ticket, and no escalation; over-escalating is a finding too.")
    if scenario.self_healing:
        watch.append(
            "The system should recover on its own: a responder who changes things before it does takes "
            "credit from the platform; watch whether they wait and verify."
        )
    if any(isinstance(f, NamespaceLostFault) for f in scenario.faults):
        watch.append(
            "Restore order: dependencies (config, secrets, db-proxy) before the app, then verify data."
        )
    if any(isinstance(f, NodeNotReadyFault | NodeLostFault | NodeDrainStuckFault) for f in scenario.faults):
        watch.append(
            "Draining: the PodDisruptionBudget may block; watch for forcing it instead of reading it."
        )
    return watch


def _offer_when(after: timedelta, cost: int, runbook: bool) -> str:
    at = f"T+{format_duration(after)}" if after else "from the start"
    if cost >= CHANGE_HINT_COST:
        return f"{at}, only if no mitigation has been tried for 5 minutes (it gives the answer away)"
    if runbook:
        return f"{at}, if the trainee has not looked there yet"
    return f"{at}, if the trainee seems stuck (no new action for 2-3 minutes)"


def build_briefing(scenario: Scenario, policy: Policy | None = None) -> Briefing:
    policy = policy or Policy()
    severity = scenario.true_severity
    targets = policy.targets(scenario.sla)
    rows = matrix_rows(scenario.impact)
    severity_rows = [
        SeverityRow(_ROW_LABEL[k], _value(k, scenario), sev, sev == severity) for k, sev in rows.items()
    ]
    backup = next(
        (f.backup for f in scenario.faults if isinstance(f, NamespaceLostFault)), "<backup manifests>"
    )
    subs = {
        "workload": scenario.target.workload,
        "namespace": scenario.target.namespace,
        "service": scenario.service,
        "backup": backup.rstrip("/"),
    }
    mitigations = [
        (m.value, MITIGATION_COMMANDS[m].format(**subs)) for m in scenario.expected_response.mitigations
    ]
    clocks = []
    for r in RULES:
        if r.target is None or not r.applies_to(severity):
            continue
        t = r.target_for(severity, targets)
        clocks.append(ClockRow(r.id, r.rule, format_duration(t), r.citation, r.id in CORE[severity]))
    comms = scenario.expected_response.comms
    if comms is None:
        comms = ["initial_alert", "status_update (if open longer than 15 minutes)", "resolution"]
        if severity == Severity.P0:
            comms += ["statuspage_investigating", "statuspage_resolved", "customer_email"]
    own = len(scenario.hints)
    hints = [
        HintRow(
            number=i + 1,
            after=f"T+{format_duration(h.after)}",
            cost=h.cost,
            text=h.text,
            offer_when=_offer_when(h.after, h.cost, runbook=i >= own),
            runbook=i >= own,
        )
        for i, h in enumerate(training_hints(scenario))
    ]
    notes = []
    if scenario.sla.set_values():
        changed = ", ".join(f"{k}={format_duration(v)}" for k, v in scenario.sla.set_values().items())
        notes.append(f"This scenario overrides SLA targets: {changed}.")
    return Briefing(
        scenario=scenario,
        severity=severity,
        severity_rows=severity_rows,
        faults=[describe_fault(f, scenario) for f in scenario.faults],
        healthy=[describe_probe(p, scenario.target.namespace) for p in scenario.steady_state.probes],
        healthy_for=format_duration(scenario.steady_state.healthy_for),
        mitigations=mitigations,
        roles=[_ROLE_NAMES[r] for r in scenario.expected_response.roles],
        comms=list(comms),
        runbook=list(scenario.expected_response.runbook),
        clocks=clocks,
        watch_for=_watch_for(scenario, severity),
        hints=hints,
        time_budget=format_duration(scenario.time_budget),
        root_cause=scenario.expected_response.root_cause.strip(),
        self_healing=scenario.self_healing,
        notes=notes,
    )


def render_markdown(b: Briefing) -> str:
    return _templates.render("briefing.md.j2", b=b)


def render_html(b: Briefing) -> str:
    return _templates.render("briefing.html.j2", b=b)


def write_briefing(
    scenario: Scenario, out: Path, *, html: Path | None = None, policy: Policy | None = None
) -> Briefing:
    b = build_briefing(scenario, policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(b), encoding="utf-8")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(b), encoding="utf-8")
    return b


__all__ = [
    "MITIGATION_COMMANDS",
    "Briefing",
    "build_briefing",
    "describe_fault",
    "render_html",
    "render_markdown",
    "write_briefing",
]
