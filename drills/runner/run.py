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
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.prompt import Confirm
from rich.status import Status

from drills.adapters import clusters, fixtures, identities, paths
from drills.adapters.clusters import ClusterHandle
from drills.adapters.faults import FaultHandle, FaultPlan, inject, plan_scenario
from drills.adapters.history import History
from drills.adapters.journal import JOURNAL_FILE, Follower, Journal, read_journal
from drills.adapters.kube import Kube
from drills.adapters.ledger import Ledger
from drills.adapters.observer import Observer
from drills.adapters.preflight import preflight
from drills.adapters.scenario_files import find_scenario, load_model, load_policy, load_scenario
from drills.engine import comms
from drills.engine.ladder import DrillStatus, training_hints
from drills.engine.scoring import score
from drills.engine.timeline import build
from drills.errors import DrillError, SafetyError, UsageError
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
)
from drills.model.policy import Policy, SlaTargets
from drills.model.responder import ResponderProfile
from drills.model.scenario import Scenario
from drills.model.scorecard import Scorecard
from drills.reporting.report import ReportPaths, write_reports_for
from drills.reporting.view import describe
from drills.runner import respond
from drills.runner.bot import Bot, BotAction, Kubectl, parse_responder
from drills.runner.dashboard import render_dashboard
from drills.runner.detector import DetectionContext, Detector, make_detector
from drills.runner.pager import Page, Pager, make_pager, page_summary
from drills.timing import SYSTEM_CLOCK, Clock

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
    )


# ---- the drill --------------------------------------------------------------------------------------------


class DrillRun:
    """One drill from preflight to report. Use :func:`run_drill`; this class holds the moving parts."""

    def __init__(
        self,
        scenario: Scenario | str | Path,
        *,
        backend: str = "embedded",
        responder: str | Path = "human",
        trainee: str | None = None,
        mode: Mode | str = Mode.TRAINING,
        seed: int | None = None,
        policy: Policy | str | Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
        dashboard: bool = True,
        cluster_name: str = "drills",
        cluster: ClusterHandle | None = None,
        detector: str | Detector = "health-probe",
        pagers: Sequence[str | Pager] | None = None,
        console: Console | None = None,
        allow_system_namespaces: bool = False,
        time_scale: float = 1.0,
        wrap_up: timedelta | None = None,
        drill_id: str | None = None,
        plan_id: str | None = None,
        team: str | None = None,
        on_started: Callable[[Path], None] | None = None,
        handle_signals: bool | None = None,
        reports_root: Path | None = None,
        record_history: bool = True,
        preflight_wait: float = 60.0,
        time_budget: timedelta | None = None,
    ) -> None:
        self.scenario, self.scenario_path = resolve_scenario(scenario)
        if time_budget is not None:
            if time_budget <= timedelta(0):
                raise UsageError(f"time budget {time_budget} is not positive", hint="give e.g. 10m")
            # the journal's drill.started, the dashboard and the scorer all read the budget from the scenario
            self.scenario = self.scenario.model_copy(update={"time_budget": time_budget})
        self.policy = resolve_policy(policy)
        self.targets: SlaTargets = self.policy.targets(self.scenario.sla)
        self.responder_kind, self.profile, self.profile_path = load_responder(responder)
        try:
            self.mode = Mode(mode)
        except ValueError:
            raise UsageError(
                f"unknown mode {mode!r}", hint=f"use one of: {', '.join(m.value for m in Mode)}"
            ) from None
        self.backend = backend
        self.trainee = trainee
        self.seed = seed
        self.clock = clock
        self.console = console or Console(highlight=False)
        self.dashboard = dashboard
        self.cluster_name = cluster_name
        self.cluster = cluster
        self.detector = detector if not isinstance(detector, str) else make_detector(detector)
        self.pagers: list[Pager] = [
            p if not isinstance(p, str) else make_pager(p, console=self.console)
            for p in (pagers or ["terminal"])
        ]
        self.allow_system_namespaces = allow_system_namespaces
        self.time_scale = time_scale
        default_wrap = timedelta(seconds=60 * time_scale)
        self.wrap_up = wrap_up if wrap_up is not None else default_wrap
        self.requested_id = drill_id
        self.plan_id = plan_id
        self.team = team
        self.on_started = on_started
        self.handle_signals = (
            handle_signals
            if handle_signals is not None
            else threading.current_thread() is threading.main_thread()
        )
        self.reports_root = reports_root
        self.record_history = record_history
        self.preflight_wait = preflight_wait

        self.drill_id = ""
        self.drill_dir = Path()
        self.journal: Journal | None = None
        self.kube: Kube | None = None
        self.fault_plan: FaultPlan | None = None
        self.handles: list[FaultHandle] = []
        self.identities = Identities()
        self.cluster_identities: identities.Identities | None = None
        self.observer: Observer | None = None
        self.baseline_replicas: dict[str, int] = {}
        self.bot: Bot | None = None
        self.events: list[Event] = []
        self.outcome: Outcome | None = None
        self.reason = ""
        self.end_at: datetime | None = None
        self.paged = False
        self.signal: int | None = None
        self.revert_error: str | None = None
        self._follower: Follower | None = None
        self._pump: threading.Thread | None = None
        self._stop_pump = threading.Event()
        self._in_loop = False
        self._tearing_down = False
        self._interrupt = threading.Event()
        self._terminate = threading.Event()
        self._history: History | None = None
        self._budget_said: set[float] = set()

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
        with self._status(f"cluster {self.cluster_name} ({self.backend})..."):
            self.cluster = clusters.up(
                self.cluster_name, backend=self.backend, progress=self.console.is_terminal
            )
        return self.cluster

    def _kube(self) -> Kube:
        handle = self._cluster_handle()
        return Kube(handle.kubeconfig, context=handle.context)

    def plan(self) -> FaultPlan:
        """Preflight-free planning: what the faults would change (``drill run --dry-run``)."""
        kube = self.kube or self._kube()
        self.kube = kube
        return plan_scenario(
            self.scenario,
            kube,
            clock=self.clock,
            allow_system_namespaces=self.allow_system_namespaces,
            scenario_dir=self.scenario_path.parent if self.scenario_path else None,
        )

    def _prepare(self) -> None:
        self.kube = self._kube()
        with self._status(
            f"preflight: steady state of {self.scenario.id} (up to {self.preflight_wait:.0f}s)..."
        ):
            checked = preflight(self.scenario, self.kube, self.clock, wait=self.preflight_wait)
        self.baseline_replicas = checked.baseline_replicas
        self.fault_plan = self.plan()
        if self.fault_plan.refusals:
            raise SafetyError(
                f"refusing scenario {self.scenario.id}: " + "; ".join(self.fault_plan.refusals),
                hint="nothing was changed; narrow the fault or raise the scenario's safety caps",
            )
        now = self.clock.now()
        self.drill_id = self.requested_id or new_drill_id(self.scenario.id, now)
        self.drill_dir = paths.drill_dir(self.drill_id)
        started = started_event(
            self.scenario,
            self.drill_id,
            now,
            mode=self.mode,
            backend=self.backend,
            trainee=self.trainee,
            seed=self.seed,
            plan_id=self.plan_id,
            team=self.team,
        )
        self.journal = Journal.create(self.drill_dir / JOURNAL_FILE, started, self.clock)
        self._follower = Follower(self.journal.path)
        respond.set_active(self.drill_id)
        self.identities = self._make_identities()
        self._write_meta()
        self._history_start(started)
        if self.on_started is not None:
            self.on_started(self.journal.path)

    def _make_identities(self) -> Identities:
        """The responder's and the bot's own identities (certificates signed by the cluster CA, RBAC limited
        to the drill's namespaces), so the audit log tells who did what. Clusters whose CA drills does not
        hold (kind, a context) get none: everyone acts with the given kubeconfig, attribution falls back."""
        handle = self.cluster
        admin = Path(handle.kubeconfig) if handle is not None else None
        if handle is None or handle.ca_cert is None or handle.ca_key is None or self.kube is None:
            return Identities(admin=admin)
        namespaces = sorted({self.scenario.target.namespace})
        try:
            with self._status("issuing the responder's and the bot's identities..."):
                self.cluster_identities = identities.setup(
                    self.kube,
                    ca_cert=handle.ca_cert,
                    ca_key=handle.ca_key,
                    server=handle.server,
                    context=handle.context,
                    directory=self.drill_dir,
                    responder=self.trainee or respond.default_actor(),
                    namespaces=namespaces,
                    clock=self.clock,
                )
        except DrillError as e:
            log.warning("no separate identities for this drill (%s); everyone acts as the admin", e)
            self._note(f"identities not created ({e.message}): actions cannot be attributed to people")
            return Identities(admin=admin)
        ids = self.cluster_identities
        return Identities(
            responder=ids.responder.kubeconfig,
            bot=ids.bot.kubeconfig,
            injector=ids.injector.kubeconfig,
            admin=admin,
        )

    def _write_meta(self, **extra: Any) -> None:
        handle = self.cluster
        meta: dict[str, Any] = {
            "drill_id": self.drill_id,
            "scenario": self.scenario.id,
            "scenario_path": str(self.scenario_path) if self.scenario_path else None,
            "mode": self.mode.value,
            "backend": self.backend,
            "cluster": handle.name if handle else self.cluster_name,
            "context": handle.context if handle else None,
            "responder": self.responder_kind,
            "responder_file": str(self.profile_path) if self.profile_path else None,
            "trainee": self.trainee,
            "pid": os.getpid(),
            "kubeconfigs": self.identities.as_meta(),
            **extra,
        }
        respond.write_meta(self.drill_dir, meta)

    def _history_start(self, started: DrillStarted) -> None:
        if not self.record_history:
            return
        try:
            self._history = History(clock=self.clock)
            self._history.record_start(started, journal=self.journal.path if self.journal else None)
        except DrillError as e:
            log.warning("the drill is not recorded in the history database: %s", e)
            self._history = None

    def _history_end(self, scorecard: Scorecard, events: Sequence[Event]) -> None:
        if self._history is None:
            return
        status = DrillStatus.CRASHED if self.outcome == Outcome.CRASHED else DrillStatus.FINISHED
        try:
            self._history.record_result(
                scorecard, events, journal=self.journal.path if self.journal else None, status=status
            )
        except DrillError as e:
            log.warning("the drill's result is not in the history database: %s", e)
        finally:
            with contextlib.suppress(Exception):
                self._history.close()

    # ---- fault, observer, detector, bot --------------------------------------------------------------------

    def _inject(self) -> None:
        assert self.kube is not None and self.journal is not None
        ledger = Ledger.for_drill(self.drill_id, clock=self.clock)
        injector_kube = self.kube
        if self.identities.injector is not None:
            injector_kube = Kube(self.identities.injector)
        if self.cluster is not None:
            fixtures.refresh_container_logs(self.cluster, now=self.clock.now(), faults=self.scenario.faults)
        with self._status(f"injecting {', '.join(f.kind for f in self.scenario.faults)}..."):
            inject(
                self.scenario,
                injector_kube,
                ledger,
                self.journal,
                self.clock,
                allow_system_namespaces=self.allow_system_namespaces,
                scenario_dir=self.scenario_path.parent if self.scenario_path else None,
                handles=self.handles,
                plan_=self.fault_plan if injector_kube is self.kube else None,
            )

    def _start_watchers(self) -> None:
        assert self.journal is not None and self.kube is not None
        self.observer = self._make_observer()
        if self.observer is not None:
            self.observer.start()
            self._pump = threading.Thread(
                target=self._pump_observer, name="drills-observer-pump", daemon=True
            )
            self._pump.start()
        self.detector.start(
            DetectionContext(
                drill_id=self.drill_id,
                scenario=self.scenario,
                journal=self.journal,
                clock=self.clock,
                drill_dir=self.drill_dir,
                cluster=self.cluster,
            )
        )

    def _start_bot(self) -> None:
        if self.profile is None or self.journal is None:
            return
        kubeconfig = self.identities.bot or self.identities.admin
        kubectl = Kubectl(kubeconfig, clock=self.clock, cwd=paths.repo_root()) if kubeconfig else None
        session = respond.ResponderSession(
            respond.find_drill(self.drill_id),
            actor=self.profile.name,
            source=Source.BOT,
            clock=self.clock,
            journal=self.journal,
        )
        self.bot = Bot(
            self.profile,
            self.scenario,
            session,
            kubectl,
            clock=self.clock,
            seed=self.seed,
            time_scale=self.time_scale,
            on_error=self._bot_error,
        ).start()

    def _make_observer(self) -> Observer:
        assert self.kube is not None
        handle = self.cluster
        return Observer(
            self.kube,
            self.scenario,
            self.clock,
            audit_log=handle.audit_log if handle else None,
            identities=self.cluster_identities,
            baseline_replicas=self.baseline_replicas,
        )

    def _pump_observer(self) -> None:
        """Observer events into the journal, then to the detector (which may fire the alert)."""
        assert self.journal is not None and self.observer is not None
        observer = self.observer
        try:
            for event in observer.events():
                if self._stop_pump.is_set():
                    break
                written = self.journal.append(event)
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
        if self.journal is None:
            return
        with contextlib.suppress(DrillError):
            self.journal.append(
                Note(at=self.clock.now(), source=Source.SYSTEM, actor=RUNNER_ACTOR, text=text)
            )

    # ---- paging --------------------------------------------------------------------------------------------

    def _page_if_due(self) -> None:
        if self.paged or self.journal is None:
            return
        t0 = next((e.at for e in self.events if e.type == "fault.injected"), None)
        trigger = next(
            (e for e in self.events if isinstance(e, AlertFired | Detected) and (t0 is None or e.at >= t0)),
            None,
        )
        if trigger is None:
            return
        self.paged = True
        now = self.clock.now()
        alert_name = trigger.alert_name if isinstance(trigger, AlertFired) else None
        started = self.events[0] if self.events and isinstance(self.events[0], DrillStarted) else None
        page = Page(
            drill_id=self.drill_id,
            incident_id=comms.incident_id(started.at if started else now),
            title=self.scenario.title,
            service=self.scenario.service,
            namespace=self.scenario.target.namespace,
            summary=page_summary(alert_name, trigger.at, now),
            at=now,
            alert_name=alert_name,
            to=self.trainee or (self.profile.name if self.profile else None),
        )
        for pager in self.pagers:
            try:
                receipt = pager.page(page)
            except DrillError as e:
                self._note(f"page via {pager.name} failed: {e.message}")
                continue
            self.journal.append(
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
        assert self._follower is not None
        fresh = self._follower.poll()
        self.events.extend(fresh)
        return fresh

    def _judge_end(self, now: datetime) -> tuple[Outcome, str] | None:
        tl = build(self.events, now=now)
        if tl.ended is not None:
            return tl.ended.outcome, tl.ended.reason or "ended by another writer"
        request = respond.abort_requested(self.drill_dir)
        if request is not None:
            return Outcome.ABORTED, f"{request.get('reason', 'aborted')} (by {request.get('by', 'someone')})"
        if tl.t0 is not None and tl.active(tl.t0, now) >= self.scenario.time_budget:
            health = {True: "healthy", False: "still unhealthy", None: "health unknown"}[tl.healthy_now]
            return (
                Outcome.TIMED_OUT,
                f"time budget of {format_duration(self.scenario.time_budget)} used up ({health}; the "
                f"incident is {tl.status})",
            )
        if tl.status == "resolved" and tl.resolved is not None:
            bot_done = self.bot is not None and self.bot.done
            if bot_done or now - tl.resolved.at >= self.wrap_up:
                return Outcome.RESOLVED, f"resolved by {tl.resolved.actor or tl.resolved.source.value}"
        if (
            self.mode == Mode.CHAOS_TEST
            and self.scenario.self_healing
            and tl.mitigated is not None
            and tl.mitigated_by == "system"
            and tl.healthy_now
        ):
            return Outcome.SELF_HEALED, "health came back without anyone acting"
        return None

    def _loop(self) -> None:
        live: Live | None = None
        spinner: Status | None = None
        if self.dashboard:
            live = Live(console=self.console, refresh_per_second=4, transient=False, auto_refresh=False)
            live.start()
        elif self.console.is_terminal:
            spinner = self.console.status("drill under way...")
            spinner.start()
        self._in_loop = True
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
                        render_dashboard(self.events, now, self.targets, self.console.width), refresh=True
                    )
                if self._terminate.is_set():
                    self._end(Outcome.ABORTED, f"{signal.Signals(self.signal or 15).name} received", now)
                    break
                if self._interrupt.is_set():
                    self._interrupt.clear()
                    if self._confirm_abort(live):
                        self._end(Outcome.ABORTED, "interrupted (Ctrl-C) and confirmed", self.clock.now())
                        break
                verdict = self._judge_end(now)
                if verdict is not None:
                    self._end(verdict[0], verdict[1], now)
                    break
                self.clock.sleep(TICK)
        finally:
            self._in_loop = False
            if spinner is not None:
                spinner.stop()
            if live is not None:
                self._poll()
                live.update(render_dashboard(self.events, self.clock.now(), self.targets, self.console.width))
                live.stop()

    def _progress_line(self, now: datetime) -> str:
        tl = build(self.events, now=now)
        elapsed = f"{(now - tl.t0).total_seconds():.0f}s since the fault" if tl.t0 else "starting"
        health = {True: "healthy", False: "unhealthy", None: "health unknown"}[tl.healthy_now]
        return f"drill {self.drill_id}: {tl.phase(now).value}, {elapsed}, {health} (`drill status` for more)"

    def _end(self, outcome: Outcome, reason: str, at: datetime) -> None:
        if self.outcome is None:
            self.outcome, self.reason, self.end_at = outcome, reason, at

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
        t0 = next((e.at for e in self.events if e.type == "fault.injected"), None)
        for e in fresh:
            d = describe(e)
            if d is None or (e.type == "action.observed" and e.source == Source.CONTROLLER):
                continue
            when = "" if t0 is None else f"+{max((e.at - t0).total_seconds(), 0):.1f}s "
            self.console.print(f"{when}{d[2]}", markup=False, highlight=False)

    def _narrate_budget(self, now: datetime) -> None:
        """Without a dashboard: the time budget at T0 and as it runs down, so a drill whose health does not
        come back is never silent until it times out."""
        pending = [m for m in BUDGET_MARKS if m not in self._budget_said]
        if not pending:
            return
        tl = build(self.events, now=now)
        if tl.t0 is None or tl.status == "resolved":
            return
        budget = self.scenario.time_budget
        used = tl.active(tl.t0, now)
        due = [m for m in pending if used >= budget * m]
        if not due:
            return
        self._budget_said.update(due)
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

    # ---- signals -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if not self.handle_signals:
            yield
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._tearing_down:
                return  # the revert is running: an impatient second Ctrl-C must not interrupt it
            if signum == signal.SIGINT:
                if self._in_loop:
                    if self._interrupt.is_set():  # twice: no question
                        self.signal = signum
                        self._terminate.set()
                    self._interrupt.set()
                    return
                raise KeyboardInterrupt
            self.signal = signum
            if self._in_loop:
                self._terminate.set()
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
        if not self.handles:
            return
        with self._status("reverting the fault..."):
            for handle in self.handles:
                try:
                    handle.revert(reason=f"drill {self.outcome.value if self.outcome else 'ended'}")
                except DrillError as e:
                    self.revert_error = str(e)
                    log.error("revert failed: %s", e)

    def _revoke_identities(self) -> None:
        """The trainee's and the bot's rights end with the drill (their certificates stay, now powerless)."""
        if self.cluster_identities is None or self.kube is None:
            return
        try:
            identities.revoke(self.kube, self.cluster_identities)
        except DrillError as e:
            log.warning("could not revoke the drill identities: %s", e)

    def _stop_watchers(self) -> None:
        if self.bot is not None:
            self.bot.stop()
        self._stop_pump.set()
        if self.observer is not None:
            with contextlib.suppress(DrillError):
                self.observer.stop(timeout=0.1)
        if self._pump is not None:
            self._pump.join(timeout=10)
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

    def _finish(self) -> DrillResult:
        assert self.journal is not None
        outcome = self.outcome or Outcome.CRASHED
        at = self.end_at or self.clock.now()
        self.journal.append(
            DrillEnded(at=at, source=Source.SYSTEM, actor=RUNNER_ACTOR, outcome=outcome, reason=self.reason)
        )
        journal = read_journal(self.journal.path)
        scorecard = score(journal.events, self.policy)
        root = self.reports_root or paths.reports_dir()
        with self._status("writing the reports..."):
            reports = write_reports_for(scorecard, journal.events, root / self.drill_id)
        self._history_end(scorecard, journal.events)
        self._write_meta(outcome=outcome.value, reports=str(reports.directory))
        return DrillResult(
            drill_id=self.drill_id,
            scenario=self.scenario,
            outcome=outcome,
            reason=self.reason,
            scorecard=scorecard,
            reports=reports,
            journal_path=self.journal.path,
            drill_dir=self.drill_dir,
            bot_actions=list(self.bot.actions) if self.bot else [],
            signal=self.signal,
            revert_error=self.revert_error,
        )

    def execute(self) -> DrillResult:
        failure: BaseException | None = None
        with self._signals():
            try:
                self._prepare()
                self._start_watchers()
                self._inject()
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
                self._end(Outcome.CRASHED, f"{type(e).__name__}: {e}", self.clock.now())
                failure = e
            finally:
                self._tearing_down = True
                try:
                    self._stop_watchers()
                    self._revert()
                    self._revoke_identities()
                finally:
                    if self.drill_id:
                        respond.clear_active(self.drill_id)
            if self.journal is None:
                assert failure is not None
                raise failure
            result = self._finish()
        if failure is not None and not isinstance(failure, KeyboardInterrupt | SystemExit):
            raise failure
        if isinstance(failure, SystemExit):
            result.signal = result.signal or signal.SIGTERM
        return result


def run_drill(scenario: Scenario | str | Path, **options: Any) -> DrillResult:
    """Run one drill end to end and return its result (see the module docstring and :class:`DrillRun`).

    Options: ``backend`` (embedded, kind, context), ``responder`` ("human", "bot", "bot:slow", or a responder
    file path), ``trainee``, ``mode`` (training, chaos-test, dr), ``seed``, ``policy`` (Policy or file),
    ``clock``, ``dashboard``, ``cluster_name`` / ``cluster`` (a ClusterHandle to use as is), ``detector``
    (registered name or instance), ``pagers``, ``console``, ``allow_system_namespaces``, ``time_scale``,
    ``wrap_up``, ``drill_id``, ``plan_id``, ``team``, ``on_started`` (called with the journal path),
    ``reports_root``, ``record_history``.
    """
    return DrillRun(scenario, **options).execute()


__all__ = [
    "DrillResult",
    "DrillRun",
    "Identities",
    "load_responder",
    "new_drill_id",
    "resolve_policy",
    "resolve_scenario",
    "run_drill",
    "started_event",
]
