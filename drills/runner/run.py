"""Running one drill end to end: preflight, fault, page, watch, end, revert, score, report.

:func:`run_drill` is the library entry point behind ``drill run``, ``drill demo``, the pytest plugin and DR
plans. In order, it:

1. loads the scenario (and policy, and responder file) and makes sure it is talking to a drill cluster whose
   steady state holds (a fault injected into a broken system measures nothing);
2. creates the drill's directory and journal (``<state>/drills/<drill-id>/journal.jsonl``), points the
   active-drill pointer at it so responder commands in other terminals find it, and records the drill in
   the history database;
3. gives the responder and the bot their own cluster identities, injects the fault (``fault.injected`` at
   the instant the API server accepted it: T0), and starts the observer and the detector;
4. pages the responder when the journal shows the first alert (whoever wrote it), runs the live dashboard,
   and ends the drill on resolution, a game master's abort, the time budget, or (chaos tests of
   self-healing scenarios) health coming back on its own;
5. always reverts (``finally`` and signal handlers), journals ``drill.ended``, scores the journal and writes
   the reports to ``<reports>/<drill-id>/``.

Everything the drill decides is decided from the journal, so what the dashboard shows, what the scorer
judges and what a second screen (``drill observe``) sees are the same facts.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.prompt import Confirm
from rich.status import Status
from rich.text import Text

from drills.adapters.clusters import facade as clusters
from drills.adapters.clusters import fixtures
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.faults import FaultHandle, FaultPlan, inject, plan_scenario
from drills.adapters.faults.ledger import Ledger
from drills.adapters.files.impact import load_service_graph, load_slo, slo_paths
from drills.adapters.files.scenarios import find_scenario, load_model, load_policy, load_scenario
from drills.adapters.kube import identities
from drills.adapters.kube.audit import audit_log_readable
from drills.adapters.kube.client import Kube
from drills.adapters.kube.observer import Observer
from drills.adapters.kube.preflight import preflight, world_namespaces
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.monitoring.impact_exporter import ImpactExporter, ImpactMetrics
from drills.adapters.store import paths
from drills.adapters.store.history import History
from drills.adapters.store.journal import JOURNAL_FILE, Follower, Journal, read_journal
from drills.engine import comms, world
from drills.engine.ending import AbortRequest, DrillLimits, Ending, drill_end
from drills.engine.impact import ClusterView
from drills.engine.ladder import DrillStatus, training_hints
from drills.engine.scoring import score
from drills.engine.timeline import build
from drills.errors import DrillError, SafetyError, SteadyStateNotMet, UsageError
from drills.model.durations import format_duration
from drills.model.events import (
    AlertFired,
    Detected,
    DrillEnded,
    DrillStarted,
    Event,
    HintInfo,
    Mode,
    Note,
    Outcome,
    PageSent,
    Source,
    WorldDifferenceInfo,
    WorldDrifted,
)
from drills.model.policy import Policy, SlaTargets
from drills.model.responder import ResponderProfile
from drills.model.scenario import Scenario
from drills.model.scorecard import Scorecard
from drills.model.service_graph import ServiceGraph
from drills.model.slo import Slo
from drills.reporting.dashboard import render_dashboard
from drills.reporting.index import from_report_dir
from drills.reporting.report import ReportPaths, write_reports_for
from drills.reporting.view import describe
from drills.runner import respond
from drills.runner.bot import Bot, BotAction, Kubectl, parse_responder
from drills.runner.detector import DetectionContext, make_detector
from drills.runner.impact import ImpactMonitor, cluster_view
from drills.runner.options import (
    ClusterTarget,
    DetectionOptions,
    DrillOptions,
    ReportingOptions,
    ResponderOptions,
    parse_mode,
)
from drills.runner.pager import Page, Pager, make_pager, page_summary
from drills.timing import Clock

log = logging.getLogger("drills.runner")

RUNNER_ACTOR = "drills:runner"
#: How often the runner reads the journal, judges the end and redraws the dashboard.
TICK = 0.25
#: Shares of the time budget at which a drill without a dashboard says how much is left.
BUDGET_MARKS = (0.0, 0.5, 0.75, 0.9)


# ---- results ------------------------------------------------------------------------------------------


@dataclass
class DrillResult:
    """What a drill left behind."""

    drill_id: str
    scenario: Scenario
    outcome: Outcome
    reason: str
    scorecard: Scorecard
    reports: ReportPaths
    journal_path: Path
    drill_dir: Path
    bot_actions: list[BotAction] = field(default_factory=list)
    #: The signal that ended the drill (SIGTERM: the caller should exit 128 + 15 once reported).
    signal: int | None = None
    revert_error: str | None = None

    @property
    def passed(self) -> bool:
        return self.scorecard.passed

    @property
    def report_dir(self) -> Path:
        return self.reports.directory


@dataclass(frozen=True)
class Identities:
    """Kubeconfig files of the drill's identities (None where the backend cannot mint identities)."""

    responder: Path | None = None
    bot: Path | None = None
    injector: Path | None = None
    admin: Path | None = None

    def as_meta(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


def failure_ending(e: BaseException) -> Ending:
    """How a drill ends when its run raised ``e`` before it could end on its own.

    A Chaos Toolkit hypothesis that did not hold before the fault is its own result: nothing was injected,
    so it is neither a crash of drills (history, the monthly report and the trainee's record would count
    it as one) nor a response to score.
    """
    if isinstance(e, SteadyStateNotMet):
        return Ending(
            Outcome.NOT_STEADY, f"steady state not met before the fault: nothing injected ({e.message})"
        )
    return Ending(Outcome.CRASHED, f"{type(e).__name__}: {e}")


def new_drill_id(scenario_id: str, at: datetime) -> str:
    """``YYYYMMDD-HHMMSS-<scenario>``: sorts by time, says what it was."""
    return f"{at:%Y%m%d-%H%M%S}-{scenario_id}"


def resolve_scenario(scenario: Scenario | str | Path) -> tuple[Scenario, Path | None]:
    """A Scenario from itself, a path, a file name in the scenarios directory or an id."""
    if isinstance(scenario, Scenario):
        return scenario, None
    path = find_scenario(scenario)
    return load_scenario(path), path


def resolve_policy(policy: Policy | str | Path | None) -> Policy:
    if policy is None:
        return Policy()
    if isinstance(policy, Policy):
        return policy
    return load_policy(Path(policy))


def load_responder(spec: str | Path) -> tuple[str, ResponderProfile | None, Path | None]:
    """``human`` / ``bot`` / ``bot:NAME`` / ``bot:FILE`` / a profile path -> (kind, profile, path)."""
    if isinstance(spec, Path):
        return "bot", load_model(spec, ResponderProfile), spec
    kind, path = parse_responder(spec)
    if path is None:
        return kind, None, None
    if not path.is_file():
        raise UsageError(
            f"no responder file {path}",
            hint=f"shipped profiles: {', '.join(shipped_profiles())} (bot:NAME), or a path to a YAML file",
        )
    return kind, load_model(path, ResponderProfile), path


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in (paths.fixtures_dir() / "responders").glob("*.yaml"))


def scenario_graph(scenario: Scenario) -> ServiceGraph:
    """The world's service graph with the scenario's ``service_graph:`` merged in (validated when the
    scenario was loaded; a graph file changed since is a UsageError)."""
    try:
        return load_service_graph().merged(scenario.service_graph)
    except ValueError as e:
        raise UsageError(
            f"the scenario's service_graph does not fit the world's graph: {e}",
            hint="run `drill validate` on the scenario for the line at fault",
        ) from e


def world_slos(scenario: Scenario) -> list[Slo]:
    """The SLO of the service the virtual users call in this drill (none when they do not run)."""
    try:
        graph = scenario_graph(scenario)
    except DrillError:
        return []
    if not any(svc.namespace == scenario.target.namespace for svc in graph.services.values()):
        return []
    out = []
    for path in slo_paths():
        try:
            slo = load_slo(path)
        except DrillError:
            continue  # a broken SLO file is reported by `drill monitoring` and the rule generator
        # The samples are the users' traffic, i.e. the entry service's: its SLO is the one they measure.
        if slo.service == graph.entry:
            out.append(slo)
    return out


def started_event(
    scenario: Scenario,
    drill_id: str,
    at: datetime,
    *,
    mode: Mode,
    backend: str,
    trainee: str | None,
    seed: int | None,
    plan_id: str | None = None,
    team: str | None = None,
    slos: Sequence[Slo] = (),
) -> DrillStarted:
    """The journal's first event: everything the scorer needs to know about the scenario.

    In training mode the hints are the scenario's own plus its runbook steps (the training ladder's
    ``training_hints``); otherwise only the scenario's own.
    """
    hints = training_hints(scenario) if mode == Mode.TRAINING else list(scenario.hints)
    return DrillStarted(
        at=at,
        source=Source.SYSTEM,
        actor=RUNNER_ACTOR,
        drill_id=drill_id,
        scenario_id=scenario.id,
        scenario_title=scenario.title,
        category=scenario.category,
        service=scenario.service,
        namespace=scenario.target.namespace,
        true_severity=scenario.true_severity,
        mode=mode,
        backend=backend,
        trainee=trainee,
        seed=seed,
        sla_overrides={k: str(v) for k, v in scenario.sla.model_dump(mode="json", exclude_none=True).items()},
        hints=[HintInfo(text=h.text, after_seconds=h.after.total_seconds(), cost=h.cost) for h in hints],
        expected_mitigations=[m.value for m in scenario.expected_response.mitigations],
        expected_alert=scenario.detection.expected_alert,
        healthy_for_seconds=scenario.steady_state.healthy_for.total_seconds(),
        budget_seconds=scenario.time_budget.total_seconds(),
        plan_id=plan_id,
        team=team,
        impact=scenario.impact,
        impact_threshold_pct=scenario.steady_state.users_affected_under_pct,
        slos=list(slos),
    )


# ---- the drill --------------------------------------------------------------------------------------------


#: The cluster-side identities (certificates, RBAC); :class:`Identities` holds only their kubeconfig files.
ClusterIdentities = identities.Identities


@dataclass
class DrillState:
    """What one drill accumulates while it runs (set once by the step that makes it, read by the rest)."""

    drill_id: str = ""
    drill_dir: Path = field(default_factory=Path)
    journal: Journal | None = None
    kube: Kube | None = None
    fault_plan: FaultPlan | None = None
    handles: list[FaultHandle] = field(default_factory=list)
    identities: Identities = field(default_factory=Identities)
    cluster_identities: ClusterIdentities | None = None
    observer: Observer | None = None
    baseline_replicas: dict[str, int] = field(default_factory=dict)
    bot: Bot | None = None
    #: The journal as read so far by the runner's follower.
    events: list[Event] = field(default_factory=list)
    ending: Ending | None = None
    end_at: datetime | None = None
    paged: bool = False
    revert_error: str | None = None
    follower: Follower | None = None
    pump: threading.Thread | None = None
    history: History | None = None
    #: The shares of the time budget already announced (without a dashboard).
    budget_said: set[float] = field(default_factory=set)
    impact: ImpactMonitor | None = None
    impact_exporter: ImpactExporter | None = None


@dataclass
class SignalState:
    """What the signal handlers and the loop tell each other (the handlers run between any two lines)."""

    #: The signal that ends the drill, if one did.
    signal: int | None = None
    in_loop: bool = False
    tearing_down: bool = False
    interrupt: threading.Event = field(default_factory=threading.Event)
    terminate: threading.Event = field(default_factory=threading.Event)
    stop_pump: threading.Event = field(default_factory=threading.Event)


class DrillRun:
    """One drill from preflight to report. Use :func:`run_drill`; this class holds the moving parts."""

    def __init__(self, scenario: Scenario | str | Path, options: DrillOptions | None = None) -> None:
        self.options = options = options or DrillOptions()
        self.scenario, self.scenario_path = resolve_scenario(scenario)
        if options.time_budget is not None:
            # the journal's drill.started, the dashboard, the ending and the scorer read it from the scenario
            self.scenario = self.scenario.model_copy(update={"time_budget": options.time_budget})
        self.policy = resolve_policy(options.policy)
        self.responder_kind, self.profile, self.profile_path = load_responder(options.responder.responder)
        self.console = options.reporting.console or Console(highlight=False)
        #: The cluster: the one given, else the one :meth:`_cluster_handle` brings up.
        self.cluster = options.cluster.handle
        detector = options.detection.detector
        self.detector = detector if not isinstance(detector, str) else make_detector(detector)
        self.pagers: list[Pager] = [
            p if not isinstance(p, str) else make_pager(p, console=self.console)
            for p in (options.detection.pagers or ["terminal"])
        ]
        self.state = DrillState()
        self.signals = SignalState()

    # ---- derived -------------------------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self.options.clock

    @property
    def mode(self) -> Mode:
        return self.options.mode

    @functools.cached_property
    def targets(self) -> SlaTargets:
        return self.policy.targets(self.scenario.sla)

    @functools.cached_property
    def limits(self) -> DrillLimits:
        return DrillLimits.of(self.scenario, self.mode, self.options.effective_wrap_up)

    @property
    def handle_signals(self) -> bool:
        if self.options.handle_signals is not None:
            return self.options.handle_signals
        return threading.current_thread() is threading.main_thread()

    @property
    def outcome(self) -> Outcome:
        """How the drill ended (crashed, until something decided otherwise)."""
        return self.state.ending.outcome if self.state.ending else Outcome.CRASHED

    @property
    def reason(self) -> str:
        return self.state.ending.reason if self.state.ending else ""

    @property
    def scenario_dir(self) -> Path | None:
        return self.scenario_path.parent if self.scenario_path else None

    # ---- progress -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _status(self, text: str) -> Iterator[None]:
        """A spinner while something takes a while (every wait longer than a second shows progress)."""
        if self.console.is_terminal:
            with self.console.status(text):
                yield
        else:
            self.console.print(text, markup=False, highlight=False)
            yield

    # ---- setup ---------------------------------------------------------------------------------------------

    def _cluster_handle(self) -> ClusterHandle:
        if self.cluster is not None:
            return self.cluster
        with self._status(f"cluster {self.options.cluster.name} ({self.options.cluster.backend})..."):
            self.cluster = clusters.up(
                self.options.cluster.name,
                backend=self.options.cluster.backend,
                progress=self.console.is_terminal,
            )
        return self.cluster

    def _kube(self) -> Kube:
        handle = self._cluster_handle()
        return Kube(handle.kubeconfig, context=handle.context)

    def plan(self) -> FaultPlan:
        """Preflight-free planning: what the faults would change (``drill run --dry-run``)."""
        kube = self.state.kube or self._kube()
        self.state.kube = kube
        return plan_scenario(
            self.scenario,
            kube,
            clock=self.clock,
            allow_system_namespaces=self.options.cluster.allow_system_namespaces,
            scenario_dir=self.scenario_dir,
            audit_log=self._audit_log(),
        )

    def _audit_log(self) -> Path | None:
        """The API server's audit log, which times a fault whose first change comes late (a Chaos Toolkit
        action after its pauses); None when drills cannot read it."""
        handle = self.cluster
        path = handle.audit_log if handle is not None else None
        return path if path is not None and audit_log_readable(path) else None

    def _prepare(self) -> None:
        self.state.kube = self._kube()
        with self._status(
            f"preflight: steady state of {self.scenario.id} (up to {self.options.cluster.preflight_wait:.0f}s)..."
        ):
            checked = preflight(
                self.scenario, self.state.kube, self.clock, wait=self.options.cluster.preflight_wait
            )
        self.state.baseline_replicas = checked.baseline_replicas
        self._check_world()
        self.state.fault_plan = self.plan()
        if self.state.fault_plan.refusals:
            raise SafetyError(
                f"refusing scenario {self.scenario.id}: " + "; ".join(self.state.fault_plan.refusals),
                hint="nothing was changed; narrow the fault or raise the scenario's safety caps",
            )
        now = self.clock.now()
        self.state.drill_id = self.options.drill_id or new_drill_id(self.scenario.id, now)
        self.state.drill_dir = paths.drill_dir(self.state.drill_id)
        started = started_event(
            self.scenario,
            self.state.drill_id,
            now,
            mode=self.mode,
            backend=self.options.cluster.backend,
            trainee=self.options.responder.trainee,
            seed=self.options.responder.seed,
            plan_id=self.options.plan_id,
            team=self.options.team,
            slos=world_slos(self.scenario),
        )
        self.state.journal = Journal.create(self.state.drill_dir / JOURNAL_FILE, started, self.clock)
        self.state.follower = Follower(self.state.journal.path)
        respond.set_active(self.state.drill_id)
        self.state.identities = self._make_identities()
        self._write_meta()
        self._history_start(started)
        if self.options.on_started is not None:
            self.options.on_started(self.state.journal.path)

    def _make_identities(self) -> Identities:
        """The responder's and the bot's own identities (certificates signed by the cluster CA, RBAC limited
        to the drill's namespaces), so the audit log tells who did what. Clusters whose CA drills does not
        hold (kind, a context) get none: everyone acts with the given kubeconfig, attribution falls back."""
        handle = self.cluster
        admin = Path(handle.kubeconfig) if handle is not None else None
        if handle is None or handle.ca_cert is None or handle.ca_key is None or self.state.kube is None:
            return Identities(admin=admin)
        namespaces = sorted({self.scenario.target.namespace})
        try:
            with self._status("issuing the responder's and the bot's identities..."):
                self.state.cluster_identities = identities.setup(
                    self.state.kube,
                    ca_cert=handle.ca_cert,
                    ca_key=handle.ca_key,
                    server=handle.server,
                    context=handle.context,
                    directory=self.state.drill_dir,
                    responder=self.options.responder.trainee or respond.default_actor(),
                    namespaces=namespaces,
                    clock=self.clock,
                )
        except DrillError as e:
            log.warning("no separate identities for this drill (%s); everyone acts as the admin", e)
            self._note(f"identities not created ({e.message}): actions cannot be attributed to people")
            return Identities(admin=admin)
        ids = self.state.cluster_identities
        return Identities(
            responder=ids.responder.kubeconfig,
            bot=ids.bot.kubeconfig,
            injector=ids.injector.kubeconfig,
            admin=admin,
        )

    def _write_meta(self, **extra: Any) -> None:
        handle = self.cluster
        meta: dict[str, Any] = {
            "drill_id": self.state.drill_id,
            "scenario": self.scenario.id,
            "scenario_path": str(self.scenario_path) if self.scenario_path else None,
            "mode": self.mode.value,
            "backend": self.options.cluster.backend,
            "cluster": handle.name if handle else self.options.cluster.name,
            "context": handle.context if handle else None,
            "responder": self.responder_kind,
            "responder_file": str(self.profile_path) if self.profile_path else None,
            "trainee": self.options.responder.trainee,
            "pid": os.getpid(),
            "kubeconfigs": self.state.identities.as_meta(),
            **extra,
        }
        respond.write_meta(self.state.drill_dir, meta)

    def _history_start(self, started: DrillStarted) -> None:
        if not self.options.reporting.record_history:
            return
        try:
            self.state.history = History(clock=self.clock)
            self.state.history.record_start(
                started, journal=self.state.journal.path if self.state.journal else None
            )
        except DrillError as e:
            log.warning("the drill is not recorded in the history database: %s", e)
            self.state.history = None

    def _history_end(self, scorecard: Scorecard, events: Sequence[Event], reports: Path) -> None:
        if self.state.history is None:
            return
        status = DrillStatus.CRASHED if self.outcome is Outcome.CRASHED else DrillStatus.FINISHED
        try:
            # The report index's summary as the reports just written give it, in the same transaction.
            summary = from_report_dir(reports)
        except (OSError, ValueError, KeyError) as e:
            log.warning("the drill's summary is not indexed (the next `drill history` does it): %s", e)
            summary = None
        try:
            self.state.history.record_result(
                scorecard,
                events,
                journal=self.state.journal.path if self.state.journal else None,
                status=status,
                summary=summary,
            )
        except DrillError as e:
            log.warning("the drill's result is not in the history database: %s", e)
        finally:
            with contextlib.suppress(Exception):
                self.state.history.close()

    # ---- fault, observer, detector, bot --------------------------------------------------------------------

    def _inject(self) -> None:
        assert self.state.kube is not None and self.state.journal is not None
        ledger = Ledger.for_drill(self.state.drill_id, clock=self.clock)
        injector_kube = self.state.kube
        if self.state.identities.injector is not None:
            injector_kube = Kube(self.state.identities.injector)
        if self.cluster is not None:
            fixtures.refresh_container_logs(self.cluster, now=self.clock.now(), faults=self.scenario.faults)
        with self._status(f"injecting {', '.join(f.kind for f in self.scenario.faults)}..."):
            inject(
                self.scenario,
                injector_kube,
                ledger,
                self.state.journal,
                self.clock,
                allow_system_namespaces=self.options.cluster.allow_system_namespaces,
                scenario_dir=self.scenario_dir,
                handles=self.state.handles,
                plan_=self.state.fault_plan if injector_kube is self.state.kube else None,
                audit_log=self._audit_log(),
            )

    def _start_watchers(self) -> None:
        assert self.state.journal is not None and self.state.kube is not None
        self.state.observer = self._make_observer()
        if self.state.observer is not None:
            self.state.observer.start()
            self.state.pump = threading.Thread(
                target=self._pump_observer, name="drills-observer-pump", daemon=True
            )
            self.state.pump.start()
        self.detector.start(
            DetectionContext(
                drill_id=self.state.drill_id,
                scenario=self.scenario,
                journal=self.state.journal,
                clock=self.clock,
                drill_dir=self.state.drill_dir,
                cluster=self.cluster,
            )
        )

    def _start_bot(self) -> None:
        if self.profile is None or self.state.journal is None:
            return
        kubeconfig = self.state.identities.bot or self.state.identities.admin
        kubectl = Kubectl(kubeconfig, clock=self.clock, cwd=paths.repo_root()) if kubeconfig else None
        session = respond.ResponderSession(
            respond.find_drill(self.state.drill_id),
            actor=self.profile.name,
            source=Source.BOT,
            clock=self.clock,
            journal=self.state.journal,
        )
        self.state.bot = Bot(
            self.profile,
            self.scenario,
            session,
            kubectl,
            clock=self.clock,
            seed=self.options.responder.seed,
            time_scale=self.options.responder.time_scale,
            on_error=self._bot_error,
        ).start()

    def _make_observer(self) -> Observer:
        assert self.state.kube is not None
        handle = self.cluster
        return Observer(
            self.state.kube,
            self.scenario,
            self.clock,
            audit_log=handle.audit_log if handle else None,
            identities=self.state.cluster_identities,
            baseline_replicas=self.state.baseline_replicas,
        )

    def _pump_observer(self) -> None:
        """Observer events into the journal, then to the detector (which may fire the alert)."""
        assert self.state.journal is not None and self.state.observer is not None
        observer = self.state.observer
        try:
            for event in observer.events():
                if self.signals.stop_pump.is_set():
                    break
                written = self.state.journal.append(event)
                try:
                    self.detector.observe(written)
                except DrillError as e:
                    log.warning("detector %s: %s", self.detector.name, e)
        except DrillError as e:
            log.error("the observer stopped: %s", e)
            self._note(f"the observer stopped: {e.message}")

    def _bot_error(self, action: BotAction) -> None:
        self._note(f"bot step {action.index + 1} ({action.step}) failed: {action.error}")

    def _note(self, text: str) -> None:
        if self.state.journal is None:
            return
        with contextlib.suppress(DrillError):
            self.state.journal.append(
                Note(at=self.clock.now(), source=Source.SYSTEM, actor=RUNNER_ACTOR, text=text)
            )

    # ---- paging --------------------------------------------------------------------------------------------

    def _page_if_due(self) -> None:
        if self.state.paged or self.state.journal is None:
            return
        t0 = next((e.at for e in self.state.events if e.type == "fault.injected"), None)
        trigger = next(
            (
                e
                for e in self.state.events
                if isinstance(e, AlertFired | Detected) and (t0 is None or e.at >= t0)
            ),
            None,
        )
        if trigger is None:
            return
        self.state.paged = True
        now = self.clock.now()
        alert_name = trigger.alert_name if isinstance(trigger, AlertFired) else None
        started = (
            self.state.events[0]
            if self.state.events and isinstance(self.state.events[0], DrillStarted)
            else None
        )
        page = Page(
            drill_id=self.state.drill_id,
            incident_id=comms.incident_id(started.at if started else now),
            title=self.scenario.title,
            service=self.scenario.service,
            namespace=self.scenario.target.namespace,
            summary=page_summary(alert_name, trigger.at, now),
            at=now,
            alert_name=alert_name,
            to=self.options.responder.trainee or (self.profile.name if self.profile else None),
        )
        for pager in self.pagers:
            try:
                receipt = pager.page(page)
            except DrillError as e:
                self._note(f"page via {pager.name} failed: {e.message}")
                continue
            self.state.journal.append(
                PageSent(
                    at=self.clock.now(),
                    source=Source.SYSTEM,
                    actor=RUNNER_ACTOR,
                    channel=receipt.channel,
                    to=receipt.to,
                )
            )

    # ---- the loop ------------------------------------------------------------------------------------------

    def _poll(self) -> list[Event]:
        assert self.state.follower is not None
        fresh = self.state.follower.poll()
        self.state.events.extend(fresh)
        return fresh

    def _judge_end(self, now: datetime) -> Ending | None:
        request = respond.abort_requested(self.state.drill_dir)
        abort = (
            None
            if request is None
            else AbortRequest(
                by=str(request.get("by", "someone")), reason=str(request.get("reason", "aborted"))
            )
        )
        return drill_end(
            self.state.events,
            now,
            self.limits,
            abort=abort,
            responder_done=self.state.bot is not None and self.state.bot.done,
        )

    def _loop(self) -> None:
        live: Live | None = None
        spinner: Status | None = None
        if self.options.reporting.dashboard:
            live = Live(console=self.console, refresh_per_second=4, transient=False, auto_refresh=False)
            live.start()
        elif self.console.is_terminal:
            spinner = self.console.status("drill under way...")
            spinner.start()
        self.signals.in_loop = True
        try:
            while True:
                fresh = self._poll()
                self._page_if_due()
                now = self.clock.now()
                if live is None:
                    self._narrate(fresh)
                    self._narrate_budget(now)
                    if spinner is not None:
                        spinner.update(self._progress_line(now))
                else:
                    live.update(
                        render_dashboard(self.state.events, now, self.targets, self.console.width),
                        refresh=True,
                    )
                if self.signals.terminate.is_set():
                    self._end(
                        Outcome.ABORTED, f"{signal.Signals(self.signals.signal or 15).name} received", now
                    )
                    break
                if self.signals.interrupt.is_set():
                    self.signals.interrupt.clear()
                    if self._confirm_abort(live):
                        self._end(Outcome.ABORTED, "interrupted (Ctrl-C) and confirmed", self.clock.now())
                        break
                ending = self._judge_end(now)
                if ending is not None:
                    self._end(ending.outcome, ending.reason, now)
                    break
                self.clock.sleep(TICK)
        finally:
            self.signals.in_loop = False
            if spinner is not None:
                spinner.stop()
            if live is not None:
                self._poll()
                live.update(
                    render_dashboard(self.state.events, self.clock.now(), self.targets, self.console.width)
                )
                live.stop()

    def _narrate_budget(self, now: datetime) -> None:
        """Without a dashboard: the time budget at T0 and as it runs down, so a drill whose health does not
        come back is never silent until it times out."""
        pending = [m for m in BUDGET_MARKS if m not in self.state.budget_said]
        if not pending:
            return
        tl = build(self.state.events, now=now)
        if tl.t0 is None or tl.status == "resolved":
            return
        budget = self.scenario.time_budget
        used = tl.active(tl.t0, now)
        due = [m for m in pending if used >= budget * m]
        if not due:
            return
        self.state.budget_said.update(due)
        left = format_duration(max(budget - used, timedelta(0)))
        when = f"+{max((now - tl.t0).total_seconds(), 0):.1f}s "
        if due[-1] == 0:
            text = (
                f"time budget {format_duration(budget)}: the drill ends, timed out, unless resolved by then"
            )
        else:
            health = {True: "healthy", False: "unhealthy", None: "health unknown"}[tl.healthy_now]
            text = (
                f"{due[-1]:.0%} of the {format_duration(budget)} time budget used ({health}, {tl.status}); "
                f"timed out in {left} unless resolved"
            )
        self.console.print(f"{when}{text}", markup=False, highlight=False)

    def _progress_line(self, now: datetime) -> str:
        tl = build(self.state.events, now=now)
        elapsed = f"{(now - tl.t0).total_seconds():.0f}s since the fault" if tl.t0 else "starting"
        health = {True: "healthy", False: "unhealthy", None: "health unknown"}[tl.healthy_now]
        return f"drill {self.state.drill_id}: {tl.phase(now).value}, {elapsed}, {health} (`drill status` for more)"

    def _end(self, outcome: Outcome, reason: str, at: datetime) -> None:
        if self.state.ending is None:
            self.state.ending, self.state.end_at = Ending(outcome, reason), at

    def _confirm_abort(self, live: Live | None) -> bool:
        if not (sys.stdin.isatty() and self.console.is_terminal):
            return True
        if live is not None:
            live.stop()
        try:
            return Confirm.ask(
                "[bold]Abort the drill and revert the fault?[/]", console=self.console, default=False
            )
        except (EOFError, KeyboardInterrupt):
            return True
        finally:
            if live is not None:
                live.start()

    def _narrate(self, fresh: Sequence[Event]) -> None:
        """Without a dashboard (CI, --no-dashboard): one line per notable event."""
        t0 = next((e.at for e in self.state.events if e.type == "fault.injected"), None)
        for e in fresh:
            d = describe(e)
            if d is None or (e.type == "action.observed" and e.source == Source.CONTROLLER):
                continue
            when = "" if t0 is None else f"+{max((e.at - t0).total_seconds(), 0):.1f}s "
            self.console.print(f"{when}{d[2]}", markup=False, highlight=False)

    # ---- signals -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if not self.handle_signals:
            yield
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.signals.tearing_down:
                return  # the revert is running: an impatient second Ctrl-C must not interrupt it
            if signum == signal.SIGINT:
                if self.signals.in_loop:
                    if self.signals.interrupt.is_set():  # twice: no question
                        self.signals.signal = signum
                        self.signals.terminate.set()
                    self.signals.interrupt.set()
                    return
                raise KeyboardInterrupt
            self.signals.signal = signum
            if self.signals.in_loop:
                self.signals.terminate.set()
                return
            raise SystemExit(128 + signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # ---- teardown ------------------------------------------------------------------------------------------

    def _revert(self) -> None:
        if not self.state.handles:
            return
        with self._status("reverting the fault..."):
            for handle in self.state.handles:
                try:
                    handle.revert(
                        reason=f"drill {self.state.ending.outcome.value if self.state.ending else 'ended'}"
                    )
                except DrillError as e:
                    self.state.revert_error = str(e)
                    log.error("revert failed: %s", e)

    def _revoke_identities(self) -> None:
        """The trainee's and the bot's rights end with the drill (their certificates stay, now powerless)."""
        if self.state.cluster_identities is None or self.state.kube is None:
            return
        try:
            identities.revoke(self.state.kube, self.state.cluster_identities)
        except DrillError as e:
            log.warning("could not revoke the drill identities: %s", e)

    def _start_impact(self) -> None:
        """Virtual users from T0 on (docs/impact.md), when the world's service graph covers the target."""
        observer, journal = self.state.observer, self.state.journal
        if observer is None or journal is None:
            return
        try:
            graph = scenario_graph(self.scenario)
        except DrillError as e:
            self._note(f"no virtual users: the service graph cannot be read: {e.message}")
            return
        if not any(svc.namespace == self.scenario.target.namespace for svc in graph.services.values()):
            return
        cache = observer.cache

        def view() -> ClusterView:
            return cluster_view(cache)

        metrics = ImpactMetrics(graph.entry)
        try:
            self.state.impact_exporter = ImpactExporter(metrics)
        except DrillError as e:
            self._note(f"the virtual users' metrics are not served: {e.message}")
        self.state.impact = ImpactMonitor(
            graph, view, journal, self.clock.now(), metrics=metrics, clock=self.clock
        ).start()
        stack = monitoring.load_stack(self.cluster.name) if self.cluster is not None else None
        if stack is not None and self.state.impact_exporter is not None:
            stack.set_impact_target(self.state.impact_exporter.target)

    def _stop_impact(self) -> None:
        if self.state.impact is not None:
            self.state.impact.stop()
        if self.state.impact_exporter is not None:
            stack = monitoring.load_stack(self.cluster.name) if self.cluster is not None else None
            if stack is not None:
                with contextlib.suppress(OSError):
                    stack.set_impact_target(None)
            self.state.impact_exporter.close()

    def _stop_watchers(self) -> None:
        self._stop_impact()
        if self.state.bot is not None:
            self.state.bot.stop()
        self.signals.stop_pump.set()
        if self.state.observer is not None:
            with contextlib.suppress(DrillError):
                self.state.observer.stop(timeout=0.1)
        if self.state.pump is not None:
            self.state.pump.join(timeout=10)
        with contextlib.suppress(DrillError):
            self.detector.stop()
        # Pagers that hold something open (a PagerDuty incident, a Slack forwarder) let go of it here.
        for pager in self.pagers:
            close = getattr(pager, "close", None)
            if close is not None:
                try:
                    close()
                except DrillError as e:
                    log.warning("closing pager %s: %s", pager.name, e)

    def _check_world(self) -> None:
        """Refuse to start from a world that differs from its baseline (a previous drill's leftovers)."""
        diffs = clusters.check_world(
            self._cluster_handle(), world_namespaces(self.scenario), clock=self.clock
        )
        if diffs and not self.options.cluster.refuse_world_drift:
            self._say_drift(f"starting from a world that differs from its baseline: {world.summary(diffs)}")
        elif diffs:
            raise SafetyError(
                f"refusing to start {self.scenario.id}: the world differs from its baseline: {world.summary(diffs)}",
                hint="`drill cluster reset` puts the baseline back (or, if the world changed on purpose, "
                "`drill cluster baseline --record` takes it as the new baseline)",
            )

    def _world_left_behind(self) -> None:
        """After the fault's revert: journal (and say) what the drill left different from the baseline."""
        assert self.state.journal is not None
        try:
            diffs = clusters.check_world(
                self._cluster_handle(), world_namespaces(self.scenario), clock=self.clock
            )
        except DrillError as e:
            self._note(f"could not compare the world with its baseline: {e.message}")
            return
        if not diffs:
            return
        self.state.journal.append(
            WorldDrifted(
                at=self.clock.now(),
                source=Source.SYSTEM,
                actor=RUNNER_ACTOR,
                differences=[WorldDifferenceInfo(**d.as_dict()) for d in diffs],
            )
        )
        self._say_drift(
            f"left behind ({len(diffs)}, not part of the fault): {world.summary(diffs)}; "
            "`drill cluster reset` restores the baseline"
        )

    def _say_drift(self, text: str) -> None:
        self.console.print(Text(text, style="yellow"))

    def _finish(self) -> DrillResult:
        assert self.state.journal is not None
        outcome = self.outcome
        at = self.state.end_at or self.clock.now()
        self._world_left_behind()
        if self.state.follower is not None and not self.options.reporting.dashboard:
            # What the revert wrote (a Chaos Toolkit method that outlived the drill, its rollbacks) is shown too.
            self._narrate(self._poll())
        self.state.journal.append(
            DrillEnded(at=at, source=Source.SYSTEM, actor=RUNNER_ACTOR, outcome=outcome, reason=self.reason)
        )
        journal = read_journal(self.state.journal.path)
        scorecard = score(journal.events, self.policy)
        root = self.options.reporting.reports_root or paths.reports_dir()
        with self._status("writing the reports..."):
            reports = write_reports_for(scorecard, journal.events, root / self.state.drill_id)
        self._history_end(scorecard, journal.events, reports.directory)
        self._write_meta(outcome=outcome.value, reports=str(reports.directory))
        return DrillResult(
            drill_id=self.state.drill_id,
            scenario=self.scenario,
            outcome=outcome,
            reason=self.reason,
            scorecard=scorecard,
            reports=reports,
            journal_path=self.state.journal.path,
            drill_dir=self.state.drill_dir,
            bot_actions=list(self.state.bot.actions) if self.state.bot else [],
            signal=self.signals.signal,
            revert_error=self.state.revert_error,
        )

    def execute(self) -> DrillResult:
        failure: BaseException | None = None
        with self._signals():
            try:
                self._prepare()
                self._start_watchers()
                self._inject()
                self._start_impact()
                self._start_bot()
                self._loop()
            except KeyboardInterrupt as e:
                self._end(
                    Outcome.ABORTED, "interrupted (Ctrl-C) before the drill got going", self.clock.now()
                )
                failure = e
            except SystemExit as e:
                self._end(Outcome.ABORTED, "terminated before the drill was under way", self.clock.now())
                failure = e
            except BaseException as e:
                ending = failure_ending(e)
                self._end(ending.outcome, ending.reason, self.clock.now())
                # A steady state not met is the drill's result (exit 7 from it), not a failure to re-raise.
                failure = None if ending.outcome is Outcome.NOT_STEADY else e
            finally:
                self.signals.tearing_down = True
                try:
                    self._stop_watchers()
                    self._revert()
                    self._revoke_identities()
                finally:
                    if self.state.drill_id:
                        respond.clear_active(self.state.drill_id)
            if self.state.journal is None:
                assert failure is not None
                raise failure
            result = self._finish()
        if failure is not None and not isinstance(failure, KeyboardInterrupt | SystemExit):
            raise failure
        if isinstance(failure, SystemExit):
            result.signal = result.signal or signal.SIGTERM
        return result


def run_drill(scenario: Scenario | str | Path, options: DrillOptions | None = None) -> DrillResult:
    """Run one drill end to end and return its result (see the module docstring and :class:`DrillOptions`).

    ``scenario``: a Scenario, a scenario file's path, a file name in the scenarios directory, or an id.
    """
    return DrillRun(scenario, options).execute()


__all__ = [
    "ClusterTarget",
    "DetectionOptions",
    "DrillOptions",
    "DrillResult",
    "DrillRun",
    "DrillState",
    "Identities",
    "ReportingOptions",
    "ResponderOptions",
    "load_responder",
    "new_drill_id",
    "parse_mode",
    "resolve_policy",
    "resolve_scenario",
    "run_drill",
    "started_event",
]
