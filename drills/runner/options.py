"""How a drill is to be run: the typed options of :func:`drills.runner.run.run_drill`, in groups.

One frozen value instead of two dozen keyword arguments, so every caller (the CLI, DR plans, the pytest
plugin, the monthly schedule, benchmarks) is checked by mypy, and a plan can derive one entry's options from
the plan's with :func:`dataclasses.replace`. The module imports nothing heavy: the CLI builds options before
it decides to load the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from drills.errors import UsageError
from drills.model.events import Mode
from drills.model.policy import Policy
from drills.timing import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from rich.console import Console

    from drills.adapters.clusters.facade import ClusterHandle
    from drills.runner.detector import Detector
    from drills.runner.pager import Pager


def parse_mode(value: Mode | str) -> Mode:
    """``training``, ``chaos-test`` or ``dr`` as a :class:`Mode`; anything else is a usage error."""
    try:
        return Mode(value)
    except ValueError:
        raise UsageError(
            f"unknown mode {value!r}", hint=f"use one of: {', '.join(m.value for m in Mode)}"
        ) from None


@dataclass(frozen=True)
class ResponderOptions:
    """Who answers the page, and how fast a scripted responder plays."""

    #: ``human``, ``bot``, ``bot:NAME`` (a shipped profile), ``bot:FILE``, or a responder file's path.
    responder: str | Path = "human"
    #: The person being trained (their name on the page and in the journal).
    trainee: str | None = None
    #: The bot's random seed (its jitter and its mistakes).
    seed: int | None = None
    #: A scripted responder's delays are multiplied by this (0.25: four times faster).
    time_scale: float = 1.0


@dataclass(frozen=True)
class DetectionOptions:
    """Who notices the incident, and how the responder is paged."""

    #: A registered detector name (``health-probe``, ``monitoring``, ``none``...) or an instance.
    detector: str | Detector = "health-probe"
    #: Registered pager names or instances; None: the terminal pager.
    pagers: Sequence[str | Pager] | None = None


@dataclass(frozen=True)
class ClusterTarget:
    """Which cluster the drill breaks, and what it may touch there."""

    #: ``embedded``, ``kind`` or ``context`` (the current kubeconfig context).
    backend: str = "embedded"
    name: str = "drills"
    #: A cluster that is already up, used as is (else it is brought up by name and backend).
    handle: ClusterHandle | None = None
    allow_system_namespaces: bool = False
    #: How long the preflight waits for the steady state to hold before refusing to start (seconds).
    preflight_wait: float = 60.0
    #: Refuse to start when the world differs from its baseline (docs/cluster.md). A DR plan's later entries
    #: share the world its earlier ones leave (a circuit breaker left on is part of the plan), so they don't.
    refuse_world_drift: bool = True


@dataclass(frozen=True)
class ReportingOptions:
    """What the drill shows while it runs and keeps afterwards."""

    dashboard: bool = True
    #: Where progress, the dashboard and the terminal pager print (None: a console on stdout).
    console: Console | None = None
    #: Reports go to ``<reports_root>/<drill-id>/`` (None: the configured reports directory).
    reports_root: Path | None = None
    record_history: bool = True


@dataclass(frozen=True)
class DrillOptions:
    """Everything :func:`~drills.runner.run.run_drill` needs besides the scenario; every field has a default."""

    mode: Mode = Mode.TRAINING
    #: The SLA policy, or its file (None: the seed's defaults).
    policy: Policy | str | Path | None = None
    responder: ResponderOptions = field(default_factory=ResponderOptions)
    detection: DetectionOptions = field(default_factory=DetectionOptions)
    cluster: ClusterTarget = field(default_factory=ClusterTarget)
    reporting: ReportingOptions = field(default_factory=ReportingOptions)
    clock: Clock = SYSTEM_CLOCK
    #: How long the drill goes on after the resolution (None: 60 s x the responder's time scale).
    wrap_up: timedelta | None = None
    #: End the drill (timed out) after this much active time (None: the scenario's ``time_budget``).
    time_budget: timedelta | None = None
    #: The drill's id (None: ``YYYYMMDD-HHMMSS-<scenario>`` from the start time).
    drill_id: str | None = None
    #: The DR plan and the team the drill belongs to (recorded in ``drill.started``).
    plan_id: str | None = None
    team: str | None = None
    #: Called with the journal's path once the drill exists (a plan starts timing its steps).
    on_started: Callable[[Path], None] | None = None
    #: Install SIGINT/SIGTERM handlers (None: when running on the main thread).
    handle_signals: bool | None = None

    def __post_init__(self) -> None:
        # A caller without mypy (a script, a pytest marker) may pass the mode's name.
        if not isinstance(self.mode, Mode):
            object.__setattr__(self, "mode", parse_mode(self.mode))
        if self.time_budget is not None and self.time_budget <= timedelta(0):
            raise UsageError(f"time budget {self.time_budget} is not positive", hint="give e.g. 10m")

    @property
    def effective_wrap_up(self) -> timedelta:
        if self.wrap_up is not None:
            return self.wrap_up
        return timedelta(seconds=60 * self.responder.time_scale)


__all__ = [
    "ClusterTarget",
    "DetectionOptions",
    "DrillOptions",
    "ReportingOptions",
    "ResponderOptions",
    "parse_mode",
]
