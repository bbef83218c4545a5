"""The virtual users during a drill: once a second, what they saw, into the journal and onto /metrics.

The observer's caches hold the cluster's state; the model (:mod:`drills.engine.impact`) turns it into a
second of traffic; this monitor runs that every second from T0, journals an ``impact.sample`` whenever what
users see changed (rounded, so noise does not flood the journal), and feeds the exporter Prometheus scrapes.
Deriving the services' state is redone only when the view changed (the observer hands over the same
objects while nothing moves), so a quiet second costs microseconds.

Between two seconds the monitor looks at the view every :attr:`ImpactMonitor.poll` seconds: when the cluster
changed, what users see now is journaled and shown on the exporter's gauges at once, so a change reaches
``/metrics`` in about the watch's delay plus ``poll``, not up to a whole second later
(``benchmarks/bench_impact.py --cluster`` measures it). The counters still add whole seconds only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from drills.adapters.kube.observer import WatchCache
from drills.adapters.monitoring.impact_exporter import ImpactMetrics
from drills.engine.impact import ClusterView, ImpactSecond, ServiceState, derive_states, simulate_second
from drills.model.events import EventSink, ImpactSampled, Source
from drills.model.service_graph import ServiceGraph
from drills.timing import SYSTEM_CLOCK, Clock


def cluster_view(cache: WatchCache) -> ClusterView:
    """What the virtual users read off the cluster right now: the observer's cache, kind by kind."""
    return ClusterView(
        pods=cache.list("Pod"),
        endpoint_slices=cache.list("EndpointSlice"),
        nodes=cache.list("Node"),
        services=cache.list("Service"),
        configmaps=cache.list("ConfigMap"),
    )


def sample_event(second: ImpactSecond, at: datetime) -> ImpactSampled:
    """The journal's record of one second, rounded to what people read (0.1 %, 10 ms, whole requests)."""
    errors: dict[str, int] = {}
    for f in second.features.values():
        for code, count in f.errors.items():
            errors[str(code)] = errors.get(str(code), 0) + count
    return ImpactSampled(
        at=at,
        source=Source.SYSTEM,
        actor="drills-users",
        users_affected_pct=round(100.0 * second.affected_ratio, 1),
        users_affected=second.users_affected,
        users_active=second.users_active,
        status=second.status,
        requests_per_second=float(second.requests),
        failed_per_second=float(second.failed),
        p99_ms=round(second.p99_seconds * 1000, -1),
        features_down=second.features_down,
        errors=dict(sorted(errors.items())),
    )


def _changed(last: ImpactSampled | None, new: ImpactSampled, latency_slo_ms: float) -> bool:
    """Worth a journal line: the status, the features down, or the share affected moved by 0.5 point or more,
    the error share by a tenth of a point, or the p99 crossed the latency SLO or moved by a quarter (the
    request count's noise moves it by ~10 % near half load)."""
    if last is None:
        return True
    if (last.status, last.features_down) != (new.status, new.features_down):
        return True
    if abs(last.users_affected_pct - new.users_affected_pct) >= 0.5:
        return True
    last_err = last.failed_per_second / last.requests_per_second if last.requests_per_second else 0.0
    new_err = new.failed_per_second / new.requests_per_second if new.requests_per_second else 0.0
    if abs(last_err - new_err) >= 0.001:
        return True
    if (last.p99_ms > latency_slo_ms) != (new.p99_ms > latency_slo_ms):
        return True
    return abs(last.p99_ms - new.p99_ms) > 0.25 * max(last.p99_ms, 10.0)


class ImpactMonitor:
    """Runs the model each second from ``t0`` on; :meth:`step` is one tick (the thread calls it)."""

    def __init__(
        self,
        graph: ServiceGraph,
        view: Callable[[], ClusterView],
        sink: EventSink,
        t0: datetime,
        *,
        metrics: ImpactMetrics | None = None,
        clock: Clock = SYSTEM_CLOCK,
        pacing: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.graph = graph
        self.view = view
        self.sink = sink
        self.t0 = t0
        self.metrics = metrics
        self.clock = clock
        # The seconds are real ones even when the drill's clock is a fake (as the observer's waits are).
        self.pacing = pacing
        #: How often the view is looked at between two whole seconds (seconds).
        self.poll = 0.05
        self.last_sample: ImpactSampled | None = None
        self.last_second: ImpactSecond | None = None
        self._view: ClusterView | None = None
        self._states: dict[str, ServiceState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, now: datetime) -> ImpactSecond:
        """One whole second: simulated, added to the counters, journaled when users see a change."""
        self._refresh(self.view())
        second = self._simulate(now)
        if self.metrics is not None:
            self.metrics.add(second)
        self._journal(second, now)
        return second

    def react(self, now: datetime) -> ImpactSecond | None:
        """Between two seconds: if the cluster changed, what users see now (journaled, on the gauges)."""
        view = self.view()
        if view == self._view:
            return None
        self._refresh(view)
        second = self._simulate(now)
        if self.metrics is not None:
            self.metrics.show(second)
        self._journal(second, now)
        return second

    def _refresh(self, view: ClusterView) -> None:
        if view != self._view:
            self._states = derive_states(self.graph, view)
            self._view = view

    def _simulate(self, now: datetime) -> ImpactSecond:
        second = simulate_second(self.graph, self._states, max(0, int((now - self.t0).total_seconds())))
        self.last_second = second
        return second

    def _journal(self, second: ImpactSecond, now: datetime) -> None:
        sample = sample_event(second, now)
        if _changed(self.last_sample, sample, self.graph.users.latency_slo.total_seconds() * 1000):
            self.sink.append(sample)
            self.last_sample = sample

    def _run(self) -> None:
        next_tick = self.pacing.monotonic()
        while not self._stop.is_set():
            self.step(self.clock.now())
            next_tick += 1.0
            while not self._stop.is_set():
                left = next_tick - self.pacing.monotonic()
                if left <= 1e-6:
                    break
                self._wait(min(self.poll, left))
                if not self._stop.is_set():
                    self.react(self.clock.now())

    def _wait(self, seconds: float) -> None:
        """Until the next tick, or less if stopped (a test with a fake pacing clock replaces this)."""
        self._stop.wait(seconds)

    def start(self) -> ImpactMonitor:
        self._thread = threading.Thread(target=self._run, name="drills-impact", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
