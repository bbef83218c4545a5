"""Running a DR plan: its drills in sequence or in parallel on one cluster, every runbook step timed.

Each entry of the plan is an ordinary drill (``run_drill``: inject, page, observe, score, report) run by its
own thread once what it waits for has started or ended. Beside each drill, a step timer follows the drill's
journal to the true failure time (T0, the ``fault.injected`` event) and then walks the team's runbook: each
step starts when the previous one is confirmed, is polled with its check until it holds, and is written to
the drill's journal as ``runbook.step`` events (started, then done or failed) so the timeline, the drill's
own report and the plan report all show it. The runner never does a step's work; the responder does.

At the end: one combined report (per team, per step, against the objectives) beside each drill's reports,
and every drill in the trainee history.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from drills.adapters.files.plans import LoadedPlan, ResolvedEntry
from drills.adapters.kube.client import Kube
from drills.adapters.kube.runbook import StepChecker, StepVerdict, backup_age
from drills.adapters.store.history import History
from drills.adapters.store.journal import Follower, Journal, read_journal
from drills.adapters.store.paths import drills_dir, reports_dir
from drills.errors import DrillError
from drills.model.events import (
    DrillEnded,
    DrillStarted,
    Event,
    FaultInjected,
    FaultReverted,
    Mode,
    RunbookStep,
    Source,
)
from drills.model.plan import DrPlan, KubectlCheck, ProbeCheck
from drills.model.plan import RunbookStep as PlanStep
from drills.model.scorecard import Scorecard
from drills.reporting.plan_report import (
    EntryResult,
    PlanReportPaths,
    PlanResult,
    StepResult,
    write_plan_report,
)
from drills.runner.options import DrillOptions, ReportingOptions
from drills.timing import SYSTEM_CLOCK, Clock

ACTOR = "drills-plan"
POLL_SECONDS = 1.0
#: How long to wait for a drill to write its journal and inject its fault before giving up on its steps.
FAULT_WAIT = timedelta(minutes=5)
DEFAULT_STEP_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Launched:
    """What the plan runner needs back from one drill."""

    scorecard: Scorecard | None
    journal: Path | None
    report_dir: Path | None
    outcome: str


class Launcher(Protocol):
    def __call__(
        self, resolved: ResolvedEntry, *, plan_id: str, drill_id: str, on_started: Callable[[Path], None]
    ) -> Launched: ...


class CheckerFactory(Protocol):
    def __call__(self, namespace: str) -> Checker: ...


class Checker(Protocol):
    def check(self, step: PlanStep, *, now: datetime) -> StepVerdict: ...


def describe_check(step: PlanStep) -> str:
    c = step.effective_check
    if isinstance(c, ProbeCheck):
        p = c.probe
        name = getattr(p, "name", None) or getattr(p, "selector", "")
        return f"probe {p.probe} {name}".strip()
    assert isinstance(c, KubectlCheck)
    return f"kubectl {c.kubectl}" + (f" ~ {c.expect!r}" if c.expect else "")


def drill_id_for(plan_id: str, entry_id: str, at: datetime) -> str:
    return f"{at:%Y%m%d-%H%M%S}-{plan_id}-{entry_id}"[:120]


# ---- launching drills ------------------------------------------------------------------------------------


def run_drill_launcher(
    *,
    cluster_name: str = "drills",
    cluster: Any = None,
    backend: str = "embedded",
    seed: int | None = None,
    policy: Any = None,
    clock: Clock = SYSTEM_CLOCK,
    options: DrillOptions | None = None,
) -> Launcher:
    """The launcher that runs each entry with the runner's ``run_drill`` (mode dr, no dashboard).

    ``options``: the base every entry's options derive from (console, time scale...); the entry's responder,
    trainee and team, the plan's ids and the arguments here take precedence.
    """
    base = options or DrillOptions(reporting=ReportingOptions(dashboard=False))
    # The plan starts from the world's baseline; its later entries (and parallel ones, which see each
    # other's faults) share the world the earlier ones leave.
    launched: list[str] = []
    launching = threading.Lock()

    def launch(
        resolved: ResolvedEntry, *, plan_id: str, drill_id: str, on_started: Callable[[Path], None]
    ) -> Launched:
        from drills.runner.run import run_drill

        entry = resolved.entry
        with launching:
            first = not launched
            launched.append(drill_id)
        responder: str | Path = entry.responder
        if resolved.responder_file is not None:
            responder = resolved.responder_file
        entry_options = replace(
            base,
            mode=Mode.DR,
            policy=policy,
            clock=clock,
            responder=replace(base.responder, responder=responder, trainee=entry.trainee, seed=seed),
            cluster=replace(
                base.cluster,
                backend=backend,
                name=cluster_name,
                handle=cluster,
                refuse_world_drift=base.cluster.refuse_world_drift and first,
            ),
            reporting=replace(base.reporting, dashboard=False),
            plan_id=plan_id,
            team=entry.team,
            drill_id=drill_id,
            on_started=on_started,
        )
        result = run_drill(resolved.scenario_path, entry_options)
        return Launched(
            scorecard=result.scorecard,
            journal=result.journal_path,
            report_dir=result.report_dir,
            outcome=str(getattr(result.outcome, "value", result.outcome)),
        )

    return launch


def cluster_checkers(kubeconfig: Path, context: str | None) -> CheckerFactory:
    kube = Kube(kubeconfig, context)

    def make(namespace: str) -> Checker:
        return StepChecker(kube, kubeconfig, namespace, context=context)

    return make


# ---- finding a drill's journal ---------------------------------------------------------------------------


def _find_journal(plan_id: str, resolved: ResolvedEntry, drill_id: str, since: datetime) -> Path | None:
    """Fallback when the launcher cannot tell us: the newest matching journal started since ``since``."""
    exact = drills_dir() / drill_id / "journal.jsonl"
    if exact.is_file():
        return exact
    best: tuple[datetime, Path] | None = None
    if not drills_dir().is_dir():
        return None
    for j in drills_dir().glob("*/journal.jsonl"):
        events, _ = _head(j)
        started = next((e for e in events if isinstance(e, DrillStarted)), None)
        if started is None or started.at < since - timedelta(seconds=2):
            continue
        if started.scenario_id != resolved.scenario.id:
            continue
        if started.plan_id not in (None, plan_id):
            continue
        if started.team not in (None, resolved.entry.team):
            continue
        if best is None or started.at > best[0]:
            best = (started.at, j)
    return None if best is None else best[1]


def _head(path: Path) -> tuple[list[Event], int]:
    from drills.adapters.store.journal import follow

    try:
        return follow(path, 0)
    except DrillError:
        return [], 0


# ---- one entry -------------------------------------------------------------------------------------------


class _EntryRun:
    def __init__(
        self,
        runner: PlanRunner,
        resolved: ResolvedEntry,
    ) -> None:
        self.runner = runner
        self.resolved = resolved
        self.entry = resolved.entry
        self.started_evt = threading.Event()
        self.ended_evt = threading.Event()
        self.result = EntryResult(
            entry_id=self.entry.id,
            team=self.entry.team,
            scenario_id=resolved.scenario.id,
            scenario_title=resolved.scenario.title,
            responder=self.entry.responder,
            rto=self.entry.rto,
            rpo=self.entry.rpo,
            steps=[
                StepResult(
                    name=s.name,
                    owner=s.owner,
                    command=s.command,
                    check=describe_check(s),
                    rto=s.rto,
                    rpo=s.rpo,
                )
                for s in self.entry.runbook
            ],
        )
        self._journal_path: Path | None = None
        self._journal_known = threading.Event()
        self._seen_end = False

    # called by the drill (or found by scanning)
    def on_started(self, journal: Path) -> None:
        self._journal_path = Path(journal)
        self._journal_known.set()

    def run(self) -> None:
        r = self.runner
        try:
            self._wait_for_dependencies()
            if r.cancelled.is_set():
                self.result.error = "not started: the plan was stopped"
                return
            now = r.clock.now()
            self.result.started = now
            drill_id = drill_id_for(r.plan.id, self.entry.id, now)
            self.result.drill_id = drill_id
            self.started_evt.set()
            outcome: dict[str, Launched | BaseException] = {}

            def drill() -> None:
                try:
                    outcome["launched"] = r.launcher(
                        self.resolved, plan_id=r.plan.id, drill_id=drill_id, on_started=self.on_started
                    )
                except BaseException as e:  # reported in the plan report, never lost in a thread
                    outcome["error"] = e

            thread = threading.Thread(target=drill, name=f"drill-{self.entry.id}", daemon=True)
            thread.start()
            self._time_steps(thread, drill_id, now)
            thread.join()
            if "error" in outcome:
                e = outcome["error"]
                assert isinstance(e, BaseException)
                self.result.error = str(e) if isinstance(e, DrillError) else f"{type(e).__name__}: {e}"
                if not isinstance(e, DrillError):
                    self.result.trace = "".join(traceback.format_exception(e))
            launched = outcome.get("launched")
            if isinstance(launched, Launched):
                self.result.scorecard = launched.scorecard
                self.result.outcome = launched.outcome
                self.result.report_dir = launched.report_dir
                if launched.journal is not None:
                    self._journal_path = Path(launched.journal)
            self.result.journal = self._journal_path
            self._finish_steps()
            self._record_history()
        finally:
            self.result.ended = r.clock.now()
            self.started_evt.set()
            self.ended_evt.set()

    def _wait_for_dependencies(self) -> None:
        r = self.runner
        for dep in r.plan.dependencies()[self.entry.id]:
            other = r.runs[dep.entry]
            (other.started_evt if dep.on == "start" else other.ended_evt).wait()
        if self.entry.start is not None and self.entry.with_ is None:
            base = r.started if not self.entry.after else r.clock.now()
            wait = (base + self.entry.start - r.clock.now()).total_seconds()
            while wait > 0 and not r.cancelled.is_set():
                r.clock.sleep(min(wait, POLL_SECONDS))
                wait = (base + self.entry.start - r.clock.now()).total_seconds()

    def _await_journal(self, drill: threading.Thread, drill_id: str, since: datetime) -> Path | None:
        r = self.runner
        deadline = r.clock.monotonic() + FAULT_WAIT.total_seconds()
        while not self._journal_known.is_set() and r.clock.monotonic() < deadline:
            found = _find_journal(r.plan.id, self.resolved, drill_id, since)
            if found is not None:
                self.on_started(found)
                break
            if not drill.is_alive():
                break
            self._journal_known.wait(min(POLL_SECONDS, 0.25))
        return self._journal_path

    def _time_steps(self, drill: threading.Thread, drill_id: str, since: datetime) -> None:
        r = self.runner
        if not self.entry.runbook:
            return
        path = self._await_journal(drill, drill_id, since)
        if path is None:
            self._fail_rest(0, "the drill never started its journal")
            return
        follower = Follower(path)
        journal = Journal(path, r.clock)
        t0: datetime | None = None
        deadline = r.clock.monotonic() + FAULT_WAIT.total_seconds()
        ended = False
        while t0 is None and r.clock.monotonic() < deadline:
            for e in follower.poll():
                if isinstance(e, FaultInjected) and t0 is None:
                    t0 = e.at
                if isinstance(e, DrillEnded | FaultReverted):
                    self._seen_end = True
                if isinstance(e, DrillEnded):
                    ended = True
            if t0 is None and (ended or not drill.is_alive()):
                break
            if t0 is None:
                r.clock.sleep(0.2)
        if t0 is None:
            self._fail_rest(0, "the fault was never injected")
            return
        self.result.t0 = t0
        checker = r.checkers(self.resolved.scenario.target.namespace)
        step_start = t0
        for i, step in enumerate(self.entry.runbook):
            res = self.result.steps[i]
            res.started = step_start
            journal.append(
                RunbookStep(
                    at=step_start,
                    source=Source.SYSTEM,
                    actor=ACTOR,
                    step=step.name,
                    status="started",
                    detail=f"owner {step.owner}; check: {res.check}",
                )
            )
            if step.backup is not None and step.name in self.resolved.backups:
                res.data_age = backup_age(self.resolved.backups[step.name], t0)
            timeout = step.timeout or (step.rto * 2 if step.rto else DEFAULT_STEP_TIMEOUT)
            give_up = step_start + timeout
            verdict = StepVerdict(False, "not checked yet")
            while True:
                # A revert by drills (budget, abort) restores the world too: that is not the team's step.
                ended = ended or self._over(follower, drill)
                now = r.clock.now()
                if not ended:
                    verdict = checker.check(step, now=now)
                    res.checks += 1
                    if verdict.done and not self._over(follower, drill):
                        res.done = now
                        res.status = "done"
                        res.detail = verdict.detail
                        break
                    ended = ended or self._over(follower, drill)
                if now >= give_up or ended or r.cancelled.is_set():
                    res.status = "failed"
                    why = (
                        "the drill ended (or drills reverted the fault)"
                        if ended
                        else ("stopped" if r.cancelled.is_set() else "timed out")
                    )
                    res.detail = f"{why} before the check held: {verdict.detail}"
                    break
                r.clock.sleep(POLL_SECONDS)
            journal.append(
                RunbookStep(
                    at=res.done or r.clock.now(),
                    source=Source.SYSTEM,
                    actor=ACTOR,
                    step=step.name,
                    status="done" if res.status == "done" else "failed",
                    detail=res.detail,
                )
            )
            if res.status != "done":
                self._fail_rest(i + 1, f"skipped: {step.name!r} was not confirmed")
                if not ended and not r.cancelled.is_set():
                    self._abort(path, f"runbook step {step.name!r} was not confirmed in time")
                return
            step_start = res.done or r.clock.now()

    def _over(self, follower: Follower, drill: threading.Thread) -> bool:
        """Has the drill ended, or has drills itself reverted the fault? (remembered once seen)"""
        if not self._seen_end:
            fresh = follower.poll()
            self._seen_end = any(isinstance(e, DrillEnded | FaultReverted) for e in fresh)
            if not self._seen_end and not drill.is_alive():
                self._seen_end = True
        return self._seen_end

    def _abort(self, journal: Path, why: str) -> None:
        """The runbook broke down: ask the drill to end and revert, so the plan moves on."""
        from drills.runner.respond import DrillRef, ResponderSession

        try:
            ref = DrillRef(journal.parent.name, journal.parent)
            ResponderSession(ref, actor=ACTOR, source=Source.SYSTEM, clock=self.runner.clock).abort(why)
            self.result.warnings.append(f"drill aborted: {why}")
        except DrillError as e:
            self.result.warnings.append(
                f"could not abort the drill ({e.message}); it runs to its time budget"
            )

    def _fail_rest(self, start: int, why: str) -> None:
        for res in self.result.steps[start:]:
            if res.status == "not-started":
                res.status = "skipped"
                res.detail = why

    def _finish_steps(self) -> None:
        for res in self.result.steps:
            if res.status == "not-started":
                res.status = "skipped"
                res.detail = res.detail or "the drill did not get that far"

    def _record_history(self) -> None:
        r = self.runner
        sc = self.result.scorecard
        if r.history is None or sc is None or self._journal_path is None:
            return
        try:
            events = read_journal(self._journal_path).events
            r.history.record_result(sc, events, journal=self._journal_path)
        except DrillError as e:
            self.result.warnings.append(f"history not updated: {e.message}")


# ---- the plan --------------------------------------------------------------------------------------------


@dataclass
class PlanRunner:
    loaded: LoadedPlan
    launcher: Launcher
    checkers: CheckerFactory
    clock: Clock = SYSTEM_CLOCK
    history: History | None = None
    out_dir: Path | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    runs: dict[str, _EntryRun] = field(default_factory=dict)
    started: datetime = field(init=False)

    @property
    def plan(self) -> DrPlan:
        return self.loaded.plan

    def run(self) -> PlanResult:
        self.started = self.clock.now()
        self.runs = {e.id: _EntryRun(self, self.loaded.resolved(e.id)) for e in self.plan.entries}
        threads = [
            threading.Thread(target=run.run, name=f"plan-{eid}", daemon=True)
            for eid, run in self.runs.items()
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except KeyboardInterrupt:
            self.cancelled.set()
            for t in threads:
                t.join()
            raise
        result = PlanResult(
            plan=self.plan,
            plan_path=self.loaded.path,
            started=self.started,
            ended=self.clock.now(),
            entries=[self.runs[e.id].result for e in self.plan.entries],
        )
        out = self.out_dir or reports_dir() / f"plan-{self.plan.id}-{self.started:%Y%m%d-%H%M%S}"
        result.report = write_plan_report(result, out)
        return result


def run_plan(
    loaded: LoadedPlan,
    *,
    launcher: Launcher,
    checkers: CheckerFactory,
    clock: Clock = SYSTEM_CLOCK,
    history: History | None = None,
    out_dir: Path | None = None,
) -> PlanResult:
    """Run every entry of the plan (threads; sequence and parallel as the plan says) and write the report."""
    return PlanRunner(loaded, launcher, checkers, clock, history, out_dir).run()


__all__ = [
    "Launched",
    "Launcher",
    "PlanReportPaths",
    "PlanResult",
    "PlanRunner",
    "cluster_checkers",
    "describe_check",
    "run_drill_launcher",
    "run_plan",
]
