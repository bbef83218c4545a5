"""Detection: who notices the incident and writes the ``alert.fired`` the drill's clocks start from.

TTD is "alert timestamp - actual incident start", so *something* must fire an alert. The real chain
(Prometheus rules, Alertmanager, its webhook into drills) is a :class:`Detector` the monitoring adapters
register as ``monitoring``. Without it, the built-in ``health-probe`` detector records an ``alert.fired``
itself the moment the observer first judges the steady state broken (source system, actor
``drills-health-probe``), so TTD is still measured honestly: from the fault to the first observed symptom.

A detector is started after the fault is injected and the observer runs, sees every event the observer
produces (``observe``), writes its alerts to the drill's journal, and is stopped when the drill ends. The
runner pages the responder when the journal shows the first alert, whoever wrote it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from drills.model.events import AlertFired, Event, EventSink, HealthChanged, Source
from drills.model.scenario import Scenario
from drills.registry import Registry, callable_factory
from drills.timing import Clock

HEALTH_PROBE_ACTOR = "drills-health-probe"
DEFAULT_ALERT = "DrillServiceUnhealthy"


@dataclass(frozen=True)
class DetectionContext:
    drill_id: str
    scenario: Scenario
    journal: EventSink
    clock: Clock
    drill_dir: Path
    #: The cluster's ClusterHandle when there is one (the monitoring detector scrapes it).
    cluster: Any = None


@runtime_checkable
class Detector(Protocol):
    name: str

    def start(self, ctx: DetectionContext) -> None: ...

    def observe(self, event: Event) -> None:
        """Called with each event the observer produced, after it was journaled."""
        ...

    def stop(self) -> None: ...


class HealthProbeDetector:
    """Fires one alert at the first unhealthy verdict after the fault (no monitoring stack needed)."""

    name = "health-probe"

    def __init__(self, **_: Any) -> None:
        self._ctx: DetectionContext | None = None
        self._fired = threading.Event()
        self._lock = threading.Lock()

    def start(self, ctx: DetectionContext) -> None:
        self._ctx = ctx

    def observe(self, event: Event) -> None:
        ctx = self._ctx
        if ctx is None or not isinstance(event, HealthChanged) or event.healthy:
            return
        with self._lock:
            if self._fired.is_set():
                return
            self._fired.set()
        ctx.journal.append(
            AlertFired(
                at=event.at,
                source=Source.SYSTEM,
                actor=HEALTH_PROBE_ACTOR,
                alert_name=ctx.scenario.detection.expected_alert or DEFAULT_ALERT,
                labels={"namespace": ctx.scenario.target.namespace, "service": ctx.scenario.service},
                rule_delay_seconds=0.0,
                received_at=ctx.clock.now(),
            )
        )

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def stop(self) -> None:
        self._ctx = None


class NoDetector:
    """Fires nothing: the drill rehearses human detection (``drill detect``) or a detection gap."""

    name = "none"

    def __init__(self, **_: Any) -> None:
        pass

    def start(self, ctx: DetectionContext) -> None:
        pass

    def observe(self, event: Event) -> None:
        pass

    def stop(self) -> None:
        pass


DetectorFactory = Callable[..., Detector]
#: Detectors by name: the built-ins (``health-probe``, ``none``, ``monitoring``) and plugins, from the
#: ``drills.detectors`` entry points; ``monitoring`` is imported only when asked for.
DETECTORS: Registry[DetectorFactory] = Registry("detector", "drills.detectors", callable_factory)


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Make ``name`` usable in ``DetectionOptions(detector=...)`` and ``drill run --detector``."""
    DETECTORS.register(name, factory, replace=replace)


def available_detectors() -> list[str]:
    return DETECTORS.names()


def make_detector(name: str, **options: Any) -> Detector:
    return DETECTORS.get(name)(**options)


__all__ = [
    "DEFAULT_ALERT",
    "DETECTORS",
    "HEALTH_PROBE_ACTOR",
    "DetectionContext",
    "Detector",
    "DetectorFactory",
    "HealthProbeDetector",
    "NoDetector",
    "available_detectors",
    "make_detector",
    "register_detector",
]
