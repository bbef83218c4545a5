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

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from drills.errors import UsageError
from drills.model.events import AlertFired, Event, EventSink, HealthChanged, Source
from drills.model.scenario import Scenario
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
log = logging.getLogger("drills.runner")
_REGISTRY: dict[str, DetectorFactory] = {}
#: Modules that register more of them when imported (loaded on first use, so the runner does not pay for
#: the monitoring stack unless it is asked for), plus the ``drills.detectors`` entry-point group.
PLUGIN_MODULES: tuple[str, ...] = ("drills.runner.detection_chain",)
_PLUGINS_LOADED = False


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as e:
            log.debug("%s not loaded: %s", module, e)
    for ep in entry_points(group="drills.detectors"):
        try:
            register_detector(ep.name, ep.load(), replace=True)
        except Exception as e:  # a broken plugin must not break drills; it is reported when asked for
            log.warning("detector plugin %s could not be loaded: %s", ep.name, e)


_LOCK = threading.Lock()


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    with _LOCK:
        if name in _REGISTRY and not replace:
            raise UsageError(f"a detector named {name!r} is already registered")
        _REGISTRY[name] = factory


def available_detectors() -> list[str]:
    _load_plugins()
    with _LOCK:
        return sorted(_REGISTRY)


def make_detector(name: str, **options: Any) -> Detector:
    if name not in _REGISTRY:
        _load_plugins()
    with _LOCK:
        factory = _REGISTRY.get(name)
    if factory is None:
        raise UsageError(f"unknown detector {name!r}", hint=f"use one of: {', '.join(available_detectors())}")
    return factory(**options)


register_detector("health-probe", HealthProbeDetector)
register_detector("none", NoDetector)

__all__ = [
    "DEFAULT_ALERT",
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
