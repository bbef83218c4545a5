"""The scripted responder: plays a responder file against a live drill, with real kubectl as its own identity.

Drills run unattended (CI, demos, benchmarks, the monthly chaos test) with this bot in the responder's seat.
It does what a person would: waits for the page, acknowledges, declares a severity, takes roles, posts the
seed's messages, reads the evidence, performs the scenario's expected mitigation with the seed's own kubectl
commands (``rollout undo``, ``scale``, ``drain``, ``set env``, ``delete pod``, ``set selector``...) and
resolves once health has held. Its journal events carry ``source: bot``; its cluster changes are made with
the bot's kubeconfig, so the API server's audit log (and therefore the observer) attributes them to the bot
and never to drills or to a person.

Timing: :func:`schedule` turns a responder file into offsets (seeded jitter, reproducible from ``--seed``);
offsets count from the page (or the fault). Steps run in order: a step that waits (``resolve`` waits for
health) delays the ones after it, as it would for a person. ``time_scale`` compresses every offset (tests
judge the result against SLA targets scaled by the same factor).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.clusters.binaries import kubectl_binary
from drills.adapters.store import paths
from drills.engine import comms
from drills.engine.health import pod_ready
from drills.engine.measured import measured_impact, measured_severity, points
from drills.engine.timeline import build
from drills.errors import ClusterError, DrillError, EnvironmentProblem, Forbidden, NotFound, UsageError
from drills.model.durations import format_duration
from drills.model.events import DrillStarted, Event, FaultInjected, PageSent
from drills.model.responder import (
    AckStep,
    CommsStep,
    DeclareStep,
    DetectStep,
    EscalateStep,
    EvidenceStep,
    HintStep,
    KubectlStep,
    MitigatedStep,
    MitigateStep,
    NoteStep,
    RelativeTo,
    ResolveStep,
    ResponderProfile,
    RoleStep,
    Step,
    TicketStep,
    severity_for,
)
from drills.model.scenario import Mitigation, NamespaceLostFault, Scenario
from drills.model.severity import Severity
from drills.runner.respond import ResponderSession
from drills.timing import SYSTEM_CLOCK, Clock

log = logging.getLogger("drills.bot")

BOT_IDENTITY = "drills:bot"
POD_FAULT_ANNOTATION = "drills.io/fault"
NODE_FAULT_LABEL = "drills.io/fault"


# ---- the plan -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    index: int
    offset: timedelta
    step: Step


def schedule(
    profile: ResponderProfile, seed: int | None = None, *, time_scale: float = 1.0
) -> list[Scheduled]:
    """Each step's offset after the reference instant: ``offset`` moved by up to ``jitter`` either way.

    Pure and reproducible: the same file and seed give the same offsets. Steps keep their file order (a step
    never jumps ahead of the one written before it), and no offset is negative.
    """
    if time_scale <= 0:
        raise UsageError("time_scale must be positive")
    rng = random.Random(seed)
    out: list[Scheduled] = []
    floor = timedelta(0)
    for i, step in enumerate(profile.steps):
        jitter = step.jitter.total_seconds()
        moved = step.offset.total_seconds() + (rng.uniform(-jitter, jitter) if jitter else 0.0)
        offset = max(timedelta(seconds=moved * time_scale), floor)
        floor = offset
        out.append(Scheduled(i, offset, step))
    return out


# ---- kubectl as the bot ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KubectlResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    started: datetime
    finished: datetime


class Kubectl:
    """Runs the real kubectl with one identity's kubeconfig; records every command it ran."""

    def __init__(
        self,
        kubeconfig: Path,
        *,
        context: str | None = None,
        binary: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 120.0,
        cwd: Path | None = None,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.context = context
        self.binary = binary or kubectl_binary()
        self.clock = clock
        self.timeout = timeout
        self.cwd = cwd
        self.history: list[KubectlResult] = []
        self._lock = threading.Lock()

    def command(self, args: Sequence[str]) -> list[str]:
        cmd = [str(self.binary), "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            cmd += ["--context", self.context]
        return cmd + list(args)

    def run(self, args: Sequence[str], *, check: bool = True, timeout: float | None = None) -> KubectlResult:
        started = self.clock.now()
        try:
            proc = subprocess.run(
                self.command(args),
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
                check=False,
                cwd=self.cwd,
                env=_kubectl_env(self.kubeconfig),
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"kubectl {shlex.join(args)} did not finish in {e.timeout:.0f}s") from None
        except OSError as e:
            raise EnvironmentProblem(f"cannot run kubectl ({self.binary}): {e.strerror}") from e
        result = KubectlResult(
            tuple(args), proc.returncode, proc.stdout, proc.stderr, started, self.clock.now()
        )
        with self._lock:
            self.history.append(result)
        if check and proc.returncode != 0:
            raise _kubectl_error(args, proc.stderr)
        return result

    def json(self, args: Sequence[str]) -> dict[str, Any]:
        out = self.run([*args, "-o", "json"]).stdout
        try:
            data = json.loads(out)
        except ValueError as e:
            raise ClusterError(f"kubectl {shlex.join(args)} did not print JSON: {e}") from None
        if not isinstance(data, dict):
            raise ClusterError(f"kubectl {shlex.join(args)} printed {type(data).__name__}, not an object")
        return data

    def items(self, args: Sequence[str]) -> list[dict[str, Any]]:
        items = self.json(args).get("items") or []
        return [i for i in items if isinstance(i, dict)]


def _kubectl_env(kubeconfig: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECTL_")}
    env["KUBECONFIG"] = str(kubeconfig)
    return env


def _kubectl_error(args: Sequence[str], stderr: str) -> DrillError:
    text = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    what = f"kubectl {shlex.join(args)}: {text}"
    if "forbidden" in stderr.lower():
        return Forbidden(what, hint="the identity's RBAC does not allow it (that is the point of identities)")
    if "notfound" in stderr.replace(" ", "").lower():
        return NotFound(what)
    return ClusterError(what)


# ---- the seed's mitigations as real commands ---------------------------------------------------------------


def _runbook(scenario: Scenario, *verbs: str) -> list[list[str]]:
    """The scenario's runbook commands whose kubectl verb (``set image``, ``apply``...) matches, as argv.

    Lines with ``<placeholders>``, pipes or comments beyond the command are skipped: those need a person
    (or the discovery functions below) to fill in.
    """
    found = []
    for line in scenario.expected_response.runbook:
        text = line.split("  #", 1)[0].strip()
        if "|" in text or "<" in text:
            continue
        try:
            argv = shlex.split(text)
        except ValueError:
            continue
        if not argv or argv[0] != "kubectl":
            continue
        argv = argv[1:]
        joined = " ".join(argv)
        if any(joined.startswith(v) for v in verbs):
            found.append(argv)
    return found


def _local_path(text: str) -> str:
    """Runbook paths are written from the repository root (``fixtures/backups/...``); find them here."""
    p = Path(text)
    if p.is_absolute():
        return text
    if p.parts and p.parts[0] == "fixtures":
        return str(paths.fixtures_dir().joinpath(*p.parts[1:]))
    return str(paths.repo_root() / p)


def _with_local_files(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, a in enumerate(out):
        if a == "-f" and i + 1 < len(out):
            out[i + 1] = _local_path(out[i + 1])
        elif a.startswith("--filename="):
            out[i] = "--filename=" + _local_path(a.split("=", 1)[1])
    return out


def _ns(scenario: Scenario) -> str:
    return scenario.target.namespace


def _deployment(scenario: Scenario) -> str:
    return f"deployment/{scenario.target.workload}"


def _selector(kubectl: Kubectl, scenario: Scenario) -> str:
    dep = kubectl.json(["get", _deployment(scenario), "-n", _ns(scenario)])
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        raise ClusterError(f"{_deployment(scenario)} has no matchLabels selector")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _workload_pods(kubectl: Kubectl, scenario: Scenario) -> list[dict[str, Any]]:
    return kubectl.items(["get", "pods", "-n", _ns(scenario), "-l", _selector(kubectl, scenario)])


def _troubled(pod: dict[str, Any]) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if annotations.get(POD_FAULT_ANNOTATION):
        return True
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    waiting = any((s.get("state") or {}).get("waiting") for s in statuses)
    return waiting or not pod_ready(pod)


def _node_ready(node: dict[str, Any]) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _sick_nodes(kubectl: Kubectl) -> list[str]:
    nodes = kubectl.items(["get", "nodes"])
    sick = [
        n["metadata"]["name"]
        for n in nodes
        if not _node_ready(n) or ((n["metadata"].get("labels") or {}).get(NODE_FAULT_LABEL))
    ]
    return sorted(set(sick))


def _cordoned_nodes(kubectl: Kubectl) -> list[str]:
    return sorted(
        n["metadata"]["name"]
        for n in kubectl.items(["get", "nodes"])
        if (n.get("spec") or {}).get("unschedulable")
    )


Command = list[str]


def mitigation_commands(mitigation: Mitigation, scenario: Scenario, kubectl: Kubectl) -> list[Command]:
    """The seed's commands for ``mitigation`` on this scenario, with the names read from the cluster now.

    Reads (``get``) run right away as the bot; the returned commands are the changes, run by the caller.
    """
    ns = _ns(scenario)
    dep = _deployment(scenario)
    if mitigation == Mitigation.ROLLBACK:
        return [["rollout", "undo", dep, "-n", ns]]
    if mitigation == Mitigation.FIX_FORWARD:
        fixes = _runbook(scenario, "set image")
        return [_in_namespace(f, ns) for f in fixes] or [["rollout", "undo", dep, "-n", ns]]
    if mitigation == Mitigation.SCALE:
        found = _runbook(scenario, "scale")
        if found:
            return [_in_namespace(found[0], ns)]
        return [["scale", dep, "-n", ns, "--replicas=15"]]
    if mitigation == Mitigation.AUTOSCALE:
        found = _runbook(scenario, "autoscale")
        if found:
            return [_in_namespace(found[0], ns)]
        return [["autoscale", dep, "-n", ns, "--cpu-percent=70", "--min=5", "--max=25"]]
    if mitigation == Mitigation.DRAIN:
        nodes = _sick_nodes(kubectl)
        if not nodes:
            raise ClusterError("no NotReady node to drain", hint="the fault may already be gone")
        return [["drain", n, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s"] for n in nodes]
    if mitigation == Mitigation.UNCORDON:
        nodes = _cordoned_nodes(kubectl)
        if not nodes:
            raise ClusterError("no cordoned node to uncordon")
        return [["uncordon", n] for n in nodes]
    if mitigation == Mitigation.DELETE_PODS:
        pods = _workload_pods(kubectl, scenario)
        sick = [p["metadata"]["name"] for p in pods if _troubled(p)]
        sick_nodes = set(_sick_nodes(kubectl))
        sick += [
            p["metadata"]["name"]
            for p in pods
            if (p.get("spec") or {}).get("nodeName") in sick_nodes and p["metadata"]["name"] not in sick
        ]
        if not sick:
            raise ClusterError("no failing pod to delete")
        return [["delete", "pod", *sorted(sick), "-n", ns, "--wait=false"]]
    if mitigation == Mitigation.SET_SELECTOR:
        pods = _workload_pods(kubectl, scenario)
        healthy = sorted(p["metadata"]["name"] for p in pods if not _troubled(p))
        if not healthy:
            raise ClusterError("no healthy pod to route traffic to")
        selector = _selector(kubectl, scenario) + ",healthy=true"
        found = _runbook(scenario, "set selector")
        service = f"service/{scenario.service}"
        set_selector = (
            _in_namespace(found[0], ns) if found else ["set", "selector", service, selector, "-n", ns]
        )
        return [["label", "pod", *healthy, "healthy=true", "--overwrite", "-n", ns], set_selector]
    if mitigation == Mitigation.CIRCUIT_BREAKER:
        found = _runbook(scenario, "set env")
        if found:
            return [_in_namespace(found[0], ns)]
        return [
            [
                "set", "env", dep, "-n", ns, "CIRCUIT_BREAKER_ENABLED=true", "CIRCUIT_BREAKER_THRESHOLD=50",
                "CIRCUIT_BREAKER_TIMEOUT=30000",
            ]
        ]  # fmt: skip
    if mitigation in (Mitigation.RESTORE_CONFIG, Mitigation.RESTORE_SECRET):
        applies = [_with_local_files(a) for a in _runbook(scenario, "apply")]
        if not applies:
            raise UsageError(
                f"scenario {scenario.id} has no `kubectl apply -f` backup line in its runbook to restore from"
            )
        restarts = _runbook(scenario, "rollout restart") or [["rollout", "restart", dep, "-n", ns]]
        return [*applies, *(_in_namespace(r, ns) for r in restarts)]
    if mitigation == Mitigation.RESTORE_BACKUP:
        applies = [_with_local_files(a) for a in _runbook(scenario, "apply")]
        if not applies:
            backups = [f.backup for f in scenario.faults if isinstance(f, NamespaceLostFault)]
            if not backups:
                raise UsageError(f"scenario {scenario.id} names no backup to restore from")
            applies = [["apply", "-f", _local_path(backups[0])]]
        return applies
    raise UsageError(f"the bot does not know how to perform {mitigation.value}")  # pragma: no cover


def _in_namespace(argv: list[str], ns: str) -> list[str]:
    """Runbook lines that forget ``-n`` (the seed's ``set selector``) still act in the drill's namespace."""
    if "-n" in argv or "--namespace" in argv or any(a.startswith("--namespace=") for a in argv):
        return argv
    return [*argv, "-n", ns]


def evidence_commands(scenario: Scenario, kubectl: Kubectl) -> list[Command]:
    """The seed's "preserve evidence before making changes": logs (current and previous) and describe."""
    ns = _ns(scenario)
    cmds: list[Command] = [
        ["get", "pods", "-n", ns, "-o", "wide"],
        ["logs", "-n", ns, _deployment(scenario), "--tail=100", "--since=10m"],
    ]
    try:
        sick = [p["metadata"]["name"] for p in _workload_pods(kubectl, scenario) if _troubled(p)]
    except DrillError:
        sick = []
    for name in sick[:1]:
        cmds.append(["logs", "-n", ns, name, "--previous", "--tail=100"])
        cmds.append(["describe", "pod", name, "-n", ns])
    cmds.append(["rollout", "history", _deployment(scenario), "-n", ns])
    return cmds


# ---- messages ---------------------------------------------------------------------------------------------


def bot_message(
    template: str,
    events: Sequence[Event],
    scenario: Scenario,
    now: datetime,
    *,
    name: str,
    complete: bool = True,
) -> str:
    """A seed template as the bot fills it: what the drill knows, plus plain words for the rest.

    With ``complete=False`` only what the drill itself knows is filled; the remaining ``[placeholders]``
    stay, as in a rushed message (the scorer's "required fields" check sees them).
    """
    t = comms.get_template(template)
    ctx: dict[str, object] = dict(comms.drill_context(events, now))
    if not complete:
        return comms.render(t, ctx)
    tl = build(events, now=now)
    features = ", ".join(scenario.impact.features) or scenario.service
    status = (
        "Resolved" if tl.status == "resolved" else "Monitoring" if tl.status == "mitigated" else "Mitigating"
    )
    started = tl.first_signal or tl.t0 or now
    plain = {
        "severity": ctx.get("severity") or (tl.severity_final.severity.value if tl.severity_final else "P1"),
        "service": scenario.service,
        "symptom": scenario.title,
        "impact": f"about {scenario.impact.users_affected_pct:g}% of users; {features} affected",
        "war_room": f"#war-room-{scenario.id}",
        "ic": ctx.get("ic") or name,
        "update_number": ctx.get("update_number", "1"),
        "time": ctx.get("time") or f"{now:%H:%M} UTC",
        "status": status,
        "current_impact": f"{features} {('restored' if tl.status != 'open' else 'degraded')}",
        "affected": features,
        "completed_action": "Mitigation applied per runbook",
        "in_progress_action": "Watching recovery",
        "root_cause": scenario.expected_response.root_cause.strip() or "Still investigating",
        "next_step": "Confirm recovery and schedule the postmortem",
        "eta": "Unknown" if tl.status == "open" else "Resolved",
        "title": scenario.title,
        "duration": ctx.get("duration") or format_duration(now - started),
        "resolution": "Applied the runbook mitigation: "
        + ", ".join(m.value for m in scenario.expected_response.mitigations[:1]),
        "monitoring_window": "30 minutes",
        "postmortem_at": comms.format_time(now + timedelta(days=1)),
        "action_items": "see the drill report",
        "team": ctx.get("team") or name,
        "postmortem_link": "to follow",
        "issue": scenario.title.lower(),
        "user_impact": f"errors on {features}",
        "cause": scenario.expected_response.root_cause.strip().split(".")[0] or "a faulty change",
        "posted_at": comms.format_time(now),
        "date": f"{started:%Y-%m-%d}",
        "start_time": comms.format_time(started),
        "end_time": ctx.get("end_time") or comms.format_time(now),
        "what_happened": scenario.title,
        "customer_impact": f"{features} were unavailable for some customers",
        "prevention": "Safer rollouts and better alerting",
        "team_name": "The Operations Team",
    }
    for key in t.keys:
        ctx.setdefault(key, plain.get(key, "n/a"))
        if not ctx[key]:
            ctx[key] = plain.get(key, "n/a")
    return comms.render(t, ctx)


# ---- the bot ----------------------------------------------------------------------------------------------


@dataclass
class BotAction:
    """One executed step: when it was due, when it ran, what it did."""

    index: int
    step: str
    due: datetime
    started: datetime
    finished: datetime | None = None
    events: list[str] = field(default_factory=list)  # ids of the journal events it wrote
    commands: list[str] = field(default_factory=list)
    error: str | None = None


ESCALATE_AUTO = "auto"


def escalation_for(severity: Severity) -> str | None:
    """Who the seed says to notify (lines 336-354): None for P2/P3, which get a ticket instead."""
    if severity == Severity.P0:
        return "engineering-leadership"
    if severity == Severity.P1:
        return "engineering-lead"
    return None


#: Seconds the bot waits for a first health reading before it decides a mitigation is not needed.
EVIDENCE_WAIT = 10.0


class Bot:
    """Runs a responder profile in a thread against one drill's journal and cluster."""

    def __init__(
        self,
        profile: ResponderProfile,
        scenario: Scenario,
        session: ResponderSession,
        kubectl: Kubectl | None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        seed: int | None = None,
        time_scale: float = 1.0,
        poll: float = 0.1,
        on_error: Callable[[BotAction], None] | None = None,
    ) -> None:
        self.profile = profile
        self.scenario = scenario
        self.session = session
        self.kubectl = kubectl
        self.clock = clock
        self.seed = seed
        self.time_scale = time_scale
        self.poll = poll
        self.plan = schedule(profile, seed, time_scale=time_scale)
        self.actions: list[BotAction] = []
        self.reference: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_error = on_error

    # lifecycle

    def start(self) -> Bot:
        self._thread = threading.Thread(target=self._run, name=f"drills-bot-{self.profile.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # the loop

    def _wait_until(self, at: datetime) -> bool:
        """Sleep until ``at`` in drill time; False when stopped first.

        A game master's pause holds the bot as it holds the SLA clocks: the time spent paused since the
        reference is added to the due time, so a step offset of 2m means two minutes of active drill.
        """
        while not self._stop.is_set():
            now = self.clock.now()
            due = at
            if self.reference is not None:
                tl = build(self.session.events(), now=now)
                due = at + tl.paused_between(self.reference, now)
                if tl.paused_at(now):
                    self._stop.wait(min(self.poll, 0.5))
                    continue
            left = (due - now).total_seconds()
            if left <= 0:
                return True
            self._stop.wait(min(left, 0.5))
        return False

    def _reference(self) -> datetime | None:
        want_page = self.profile.relative_to == RelativeTo.PAGE
        while not self._stop.is_set():
            events = self.session.events()
            for e in events:
                if want_page and isinstance(e, PageSent):
                    return e.at
                if not want_page and isinstance(e, FaultInjected):
                    return e.at
            self._stop.wait(self.poll)
        return None

    def _run(self) -> None:
        try:
            self.reference = self._reference()
            if self.reference is None:
                return
            for item in self.plan:
                due = self.reference + item.offset
                if not self._wait_until(due):
                    return
                action = BotAction(item.index, item.step.step, due, self.clock.now())
                self.actions.append(action)
                try:
                    self._do(item.step, action)
                except DrillError as e:
                    action.error = str(e)
                    log.warning("bot step %d (%s) failed: %s", item.index, item.step.step, e)
                    if self._on_error is not None:
                        self._on_error(action)
                finally:
                    action.finished = self.clock.now()
        except Exception:  # the bot must never take the runner down with it
            log.exception("the bot stopped on an unexpected error")

    def _started(self) -> DrillStarted:
        return self.session.state().started

    def _evident_severity(self) -> Severity:
        """The severity a responder reads off what users see so far (the seed's matrix over the impact
        samples since the fault), as the scorer measures it; the scenario's stated severity when the drill has
        no virtual users, or they have seen nothing yet."""
        events = self.session.events()
        started = self._started()
        t0 = next((e.at for e in events if isinstance(e, FaultInjected)), None)
        samples = points(events)
        if t0 is None or not samples:
            return started.true_severity
        seen = measured_impact(samples, t0, max(self.clock.now(), samples[-1].at))
        if seen.peak_users_affected_pct <= 0 and seen.worst_status is None:
            return started.true_severity
        return measured_severity(seen, started.impact)

    def _record(self, action: BotAction, event: Event | None) -> None:
        if event is not None:
            action.events.append(event.id)

    def _kubectl(
        self, action: BotAction, argv: Sequence[str], *, check: bool = True, forbidden_retry: float = 0.0
    ) -> None:
        """Run one command; ``forbidden_retry`` s of retrying while the API server says 403.

        A restore recreates a namespace whose RoleBindings (the bot's rights in it) went with it; drills
        grants them again when the namespace is back, a moment later, and a person would simply re-run.
        """
        if self.kubectl is None:
            raise EnvironmentProblem("the bot has no kubeconfig to act with")
        action.commands.append("kubectl " + shlex.join(argv))
        deadline = self.clock.monotonic() + forbidden_retry
        while True:
            try:
                self.kubectl.run(argv, check=check)
                return
            except Forbidden:
                if self._stop.is_set() or self.clock.monotonic() >= deadline:
                    raise
                self._stop.wait(1.0)

    def _do(self, step: Step, action: BotAction) -> None:
        s = self.session
        match step:
            case AckStep():
                self._record(action, s.ack(via="bot"))
            case DeclareStep():
                self._record(action, s.declare(severity_for(step.severity, self._evident_severity())))
            case RoleStep():
                self._record(action, s.role(step.role, step.person or self.profile.name))
            case CommsStep():
                text = bot_message(
                    step.template,
                    s.events(),
                    self.scenario,
                    self.clock.now(),
                    name=self.profile.name,
                    complete=step.complete,
                )
                self._record(action, s.post_comms(step.template, text).event)
            case EscalateStep():
                whom: str | None = step.whom
                if whom == ESCALATE_AUTO:
                    whom = escalation_for(self._started().true_severity)
                if whom is None:
                    self._record(action, s.ticket(f"DRILL-{s.ref.drill_id}"))
                else:
                    self._record(action, s.escalate(whom))
            case TicketStep():
                self._record(action, s.ticket(step.ref or f"DRILL-{s.ref.drill_id}"))
            case NoteStep():
                self._record(action, s.note(step.text))
            case DetectStep():
                self._record(action, s.detect(step.how))
            case MitigateStep():
                mitigation = step.mitigation or self.scenario.expected_response.mitigations[0]
                if self.kubectl is None:
                    raise EnvironmentProblem("the bot has no kubeconfig to act with")
                if not self._health_broken():
                    # A responder acts on evidence: scaling a healthy app 3 -> 15 fixes nothing and leaves
                    # a change nobody reverts (and a self-healing chaos test would be "resolved" by the bot).
                    self._record(
                        action, s.note(f"the service is healthy: no {mitigation.value}, nothing to mitigate")
                    )
                    return
                retry = 30.0 if mitigation == Mitigation.RESTORE_BACKUP else 0.0
                for argv in mitigation_commands(mitigation, self.scenario, self.kubectl):
                    self._kubectl(action, argv, forbidden_retry=retry)
                if step.announce:
                    self._record(action, s.mitigated(f"{mitigation.value}: " + "; ".join(action.commands)))
            case MitigatedStep():
                self._record(action, s.mitigated(step.summary))
            case ResolveStep():
                if step.wait != "none" and not self._wait_healthy(lasting=step.wait == "lasting"):
                    return
                cause = (
                    step.root_cause
                    if step.root_cause is not None
                    else self.scenario.expected_response.root_cause
                )
                self._record(action, s.resolve(cause.strip()))
            case HintStep():
                _, event = s.hint()
                self._record(action, event)
            case KubectlStep():
                self._kubectl(action, step.args)
            case EvidenceStep():
                if self.kubectl is None:
                    raise EnvironmentProblem("the bot has no kubeconfig to act with")
                for argv in evidence_commands(self.scenario, self.kubectl):
                    # evidence is best effort: a namespace that is gone has no logs to read
                    self._kubectl(action, argv, check=False)

    def _health_broken(self) -> bool:
        """Whether the observer has seen health broken now; waits up to :data:`EVIDENCE_WAIT` s of drill
        time while there is no health reading yet (the observer's first one may lag the page)."""
        deadline = self.clock.monotonic() + EVIDENCE_WAIT
        while not self._stop.is_set():
            healthy = build(self.session.events(), now=self.clock.now()).healthy_now
            if healthy is not None or self.clock.monotonic() >= deadline:
                return healthy is False
            self._stop.wait(max(self.poll, 0.2))
        return False

    def _wait_healthy(self, *, lasting: bool) -> bool:
        """Until the service is healthy (``lasting``: and has been for the scenario's healthy window).

        The bot verifies as the runbook does, with the steady-state probes (``health_mitigated``), not with
        the users' impact: a bot that broke a dependency the probes don't see resolves anyway, and is
        scored for it (resolving while users are affected cannot pass)."""
        while not self._stop.is_set():
            tl = build(self.session.events(), now=self.clock.now())
            if tl.ended is not None:
                return False
            if tl.healthy_now and (tl.health_mitigated is not None or not lasting):
                return True
            self._stop.wait(max(self.poll, 0.2))
        return False


def parse_responder(spec: str) -> tuple[str, Path | None]:
    """``human`` / ``bot`` / ``bot:FILE`` / ``bot:good`` -> (kind, profile path)."""
    spec = spec.strip()
    if spec == "human":
        return "human", None
    if spec == "bot":
        return "bot", paths.fixtures_dir() / "responders" / "good.yaml"
    if spec.startswith("bot:"):
        name = spec[4:]
        if re.fullmatch(r"[a-z0-9-]+", name):
            return "bot", paths.fixtures_dir() / "responders" / f"{name}.yaml"
        return "bot", Path(name)
    raise UsageError(f"unknown responder {spec!r}", hint="use human, bot or bot:FILE (e.g. bot:slow)")


__all__ = [
    "BOT_IDENTITY",
    "Bot",
    "BotAction",
    "Kubectl",
    "KubectlResult",
    "Scheduled",
    "bot_message",
    "escalation_for",
    "evidence_commands",
    "kubectl_binary",
    "mitigation_commands",
    "parse_responder",
    "schedule",
]
