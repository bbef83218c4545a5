"""Faults as a library: plan a scenario's faults, inject them with a guaranteed undo, revert them.

The runner (and ``drill inject``) call three functions:

- :func:`plan` reads the cluster and returns the exact API changes the scenario's faults would make, after
  the safety rails (context allow-list, system namespaces, blast radius) have had their say;
- :func:`inject` writes each fault's undo to the revert ledger (fsynced), makes the change, journals
  ``fault.injected`` at the moment the API server accepted it, and returns a :class:`FaultHandle`;
- :func:`revert` (or ``handle.revert()``) undoes everything, journals ``fault.reverted`` and closes the ledger
  entries. It is idempotent and safe to call from a signal handler (:func:`revert_on_signals`).

Kubernetes and Chaos Toolkit failures arrive as the ``DrillError`` tree (SafetyError, FaultError,
RevertError, ChaosToolkitError, ClusterError...), each saying what to do next.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from drills.adapters.faults.base import (
    ENTRY_POINT_GROUP,
    INJECTORS,
    FaultContext,
    Injector,
    PlannedChange,
    injector_class,
    make_injector,
    registered,
)
from drills.adapters.faults.ledger import Ledger
from drills.adapters.kube.client import Kube
from drills.adapters.kube.preflight import allowed_contexts, check_kube_context
from drills.engine.safety import BlastRadius, blast_radius_problems, total
from drills.errors import DrillError, RevertError, SafetyError
from drills.model.events import EventSink, FaultInjected, FaultReverted, Source
from drills.model.scenario import Fault, Scenario
from drills.timing import SYSTEM_CLOCK, Clock

log = logging.getLogger("drills.faults")

__all__ = [
    "ENTRY_POINT_GROUP",
    "INJECTORS",
    "FaultHandle",
    "FaultPlan",
    "InjectedFault",
    "Injector",
    "PlannedChange",
    "inject",
    "injector_class",
    "plan",
    "plan_scenario",
    "registered",
    "revert",
    "revert_on_signals",
]


@dataclass
class FaultPlan:
    """What a scenario's faults would do, and whether the safety rails let them."""

    scenario: Scenario
    injectors: list[Injector]
    changes: list[PlannedChange]
    radius: BlastRadius
    context: str
    #: Empty when allowed; otherwise every rule the plan breaks (``inject`` raises SafetyError with them).
    refusals: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"context {self.context}: {len(self.changes)} API changes"]
        for inj in self.injectors:
            lines.append(f"- {inj.kind} on {inj.target}")
            lines.extend("    " + line for change in inj.plan() for line in change.describe().splitlines())
        r = self.radius
        lines.append(f"blast radius: {r.pods} pods ({r.percent:.0f}% of the target), {r.nodes} nodes")
        lines.extend(f"REFUSED: {why}" for why in self.refusals)
        return "\n".join(lines)


def plan_scenario(
    scenario: Scenario,
    kube: Kube,
    *,
    clock: Clock = SYSTEM_CLOCK,
    allow_system_namespaces: bool = False,
    allowed: tuple[str, ...] | None = None,
    scenario_dir: Path | None = None,
    journal: EventSink | None = None,
    audit_log: Path | None = None,
) -> FaultPlan:
    """Plan every fault (reads the cluster, changes nothing). A non-allow-listed context raises SafetyError
    before anything is read; the other rails are reported in ``refusals``."""
    context = check_kube_context(kube, allowed if allowed is not None else allowed_contexts())
    ctx = FaultContext(
        scenario=scenario,
        kube=kube,
        clock=clock,
        scenario_dir=scenario_dir,
        journal=journal,
        audit_log=audit_log,
    )
    injectors = [make_injector(f, ctx) for f in scenario.faults]
    changes = [c for inj in injectors for c in inj.plan()]
    radius = total(inj.blast_radius() for inj in injectors)
    refusals = blast_radius_problems(radius, scenario.safety, allow_system_flag=allow_system_namespaces)
    return FaultPlan(scenario, injectors, changes, radius, context, refusals)


def plan(scenario: Scenario, kube: Kube, **kwargs: Any) -> list[PlannedChange]:
    """The exact API changes of the scenario's faults (for ``--dry-run``); SafetyError if refused."""
    p = plan_scenario(scenario, kube, **kwargs)
    _refuse(p)
    return p.changes


def _refuse(p: FaultPlan) -> None:
    if p.refusals:
        raise SafetyError(
            f"refusing scenario {p.scenario.id}: " + "; ".join(p.refusals),
            hint="nothing was changed; narrow the fault or raise the scenario's safety caps if you mean it",
        )


@dataclass
class InjectedFault:
    injector: Injector
    entry: str
    at: datetime
    reverted: bool = False
    effect: str | None = None

    @property
    def kind(self) -> str:
        return self.injector.kind

    @property
    def target(self) -> str:
        return self.injector.target


class FaultHandle:
    """The faults of one drill, live in the cluster until :meth:`revert`."""

    def __init__(
        self, scenario: Scenario, kube: Kube, ledger: Ledger, journal: EventSink | None, clock: Clock
    ) -> None:
        self.scenario = scenario
        self.kube = kube
        self.ledger = ledger
        self.journal = journal
        self.clock = clock
        self.faults: list[InjectedFault] = []
        self._lock = threading.RLock()

    @property
    def injected_at(self) -> datetime | None:
        """T0: when the first fault was accepted by the API server."""
        return self.faults[0].at if self.faults else None

    @property
    def reverted(self) -> bool:
        return all(f.reverted for f in self.faults)

    def confirm(self, timeout: float = 90.0) -> list[str]:
        """Wait until every fault's effect is visible in the cluster; the effects, in words."""
        seen = []
        for f in self.faults:
            f.effect = f.injector.confirm(timeout)
            seen.append(f.effect)
        return seen

    def revert(self, *, reason: str = "") -> list[str]:
        """Undo every fault (latest first). Idempotent; a failure leaves the entry pending and raises."""
        notes: list[str] = []
        errors: list[DrillError] = []
        with self._lock:
            for f in reversed(self.faults):
                if f.reverted:
                    continue
                try:
                    done = f.injector.revert()
                except DrillError as e:
                    self.ledger.revert_failed(f.entry, str(e))
                    self._journal_revert(f, ok=False, detail={"error": e.message, "reason": reason})
                    errors.append(e)
                    continue
                f.reverted = True
                self.ledger.reverted(f.entry)
                self._journal_revert(f, ok=True, detail={"restored": done, "reason": reason})
                notes.extend(done)
            if self.reverted:
                self.ledger.release()
        if errors:
            raise RevertError(
                "; ".join(e.message for e in errors),
                hint="the failed reverts stay pending in the ledger; fix the cause and run `drill recover`",
            ) from errors[0]
        return notes

    def _journal_revert(self, f: InjectedFault, *, ok: bool, detail: dict[str, Any]) -> None:
        if self.journal is None:
            return
        with contextlib.suppress(DrillError):  # a journal problem must never stop a revert
            self.journal.append(
                FaultReverted(
                    at=self.clock.now(),
                    source=Source.SYSTEM,
                    actor="drills:injector",
                    fault_kind=f.kind,
                    target=f.target,
                    ok=ok,
                    detail=detail,
                )
            )


def inject(
    scenario: Scenario,
    kube: Kube,
    ledger: Ledger,
    journal: EventSink | None = None,
    clock: Clock = SYSTEM_CLOCK,
    *,
    allow_system_namespaces: bool = False,
    allowed: tuple[str, ...] | None = None,
    scenario_dir: Path | None = None,
    confirm_timeout: float | None = None,
    handles: MutableSequence[FaultHandle] | None = None,
    plan_: FaultPlan | None = None,
    audit_log: Path | None = None,
) -> FaultHandle:
    """Inject the scenario's faults; see the module docstring. ``handles`` (e.g. the list given to
    :func:`revert_on_signals`) receives the handle *before* the first change, so a signal arriving
    mid-injection still reverts what went in."""
    p = plan_ or plan_scenario(
        scenario,
        kube,
        clock=clock,
        allow_system_namespaces=allow_system_namespaces,
        allowed=allowed,
        scenario_dir=scenario_dir,
        journal=journal,
        audit_log=audit_log,
    )
    _refuse(p)
    for injector in p.injectors:
        # planned before the drill had a journal (preflight): its events go to this one
        injector.ctx.journal = injector.ctx.journal or journal
        injector.ctx.audit_log = injector.ctx.audit_log or audit_log
    ledger.claim()
    handle = FaultHandle(scenario, kube, ledger, journal, clock)
    if handles is not None:
        handles.append(handle)
    started = clock.monotonic()
    for fault, injector in zip(scenario.faults, p.injectors, strict=True):
        _wait_for_delay(fault, started, clock)
        entry = ledger.plan(
            fault_kind=injector.kind,
            target=injector.target,
            kubeconfig=kube.kubeconfig,
            context=p.context,
            ops=injector.revert_ops(),
        )
        injected = InjectedFault(injector, entry, clock.now())
        # registered before the first change: a failure or a signal from here on reverts this fault too
        handle.faults.append(injected)
        try:
            injected.at = injector.inject()
        except (DrillError, KeyboardInterrupt, SystemExit) as e:
            _undo_after_failure(handle, e)
            raise
        ledger.injected(entry, injected.at)
        if journal is not None:
            journal.append(
                FaultInjected(
                    at=injected.at,
                    source=Source.SYSTEM,
                    actor="drills:injector",
                    fault_kind=injector.kind,
                    target=injector.target,
                    detail={"changes": [c.summary for c in injector.plan()], "scenario": scenario.id},
                )
            )
    if confirm_timeout is not None:
        try:
            handle.confirm(confirm_timeout)
        except DrillError as e:
            _undo_after_failure(handle, e)
            raise
    return handle


def _wait_for_delay(fault: Fault, started: float, clock: Clock) -> None:
    wait = fault.delay.total_seconds() - (clock.monotonic() - started)
    if wait > 0:
        clock.sleep(wait)


def _undo_after_failure(handle: FaultHandle, cause: BaseException) -> None:
    try:
        handle.revert(reason=f"injection failed: {cause}")
    except DrillError as e:
        log.error("could not undo a half-injected fault (it stays pending for `drill recover`): %s", e)


def revert(handle: FaultHandle, *, reason: str = "") -> list[str]:
    return handle.revert(reason=reason)


@contextlib.contextmanager
def revert_on_signals(
    handles: Sequence[FaultHandle], *, signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)
) -> Iterator[None]:
    """Revert ``handles`` (a list that may grow inside the block) when SIGINT or SIGTERM arrives, then exit.

    SIGINT then raises KeyboardInterrupt and SIGTERM ``SystemExit(128 + 15)``, as without the handler, but
    only after the faults are undone. A second signal during the revert is ignored: an impatient Ctrl-C must
    not leave a half-reverted cluster. Only the main thread can install signal handlers.
    """
    reverting = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if reverting.is_set():
            return
        reverting.set()
        name = signal.Signals(signum).name
        for h in list(handles):
            try:
                h.revert(reason=f"{name} received")
            except DrillError as e:
                log.error("revert after %s failed (it stays pending for `drill recover`): %s", name, e)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
