"""What the virtual users saw, as Prometheus metrics under the names real services use.

``http_requests_total{service,route,code}`` (a counter), the ``http_request_duration_seconds`` histogram
(``{service,route}``, the client library's default buckets) and ``drills_users_affected_ratio{service}``:
the names a team's own recording rules and SLO alerts read, so the burn-rate rules drills generates
(:mod:`drills.engine.slo`) are the rules a team would run in production, and the seed's
``curl .../api/v1/query?query=...`` works verbatim against the drill's Prometheus.

The model produces one second of aggregates at a time (:class:`drills.engine.impact.ImpactSecond`); this
exporter adds them up and serves the totals on 127.0.0.1 for the monitoring stack's Prometheus to scrape. It is
a custom collector (not client-side Counter objects) because the values are whole seconds of requests at
once, and a scrape must see a consistent set of totals: one lock guards them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from drills.engine.impact import BUCKETS, ImpactSecond
from drills.errors import MonitoringError

LOOPBACK = "127.0.0.1"


class ImpactMetrics(Collector):
    """Running totals of the simulated traffic of one service (the graph's entry service)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], float] = {}
        self._buckets: dict[str, list[float]] = {}
        self._sum: dict[str, float] = {}
        self._affected_ratio = 0.0
        self._users_affected = 0.0

    def add(self, second: ImpactSecond) -> None:
        with self._lock:
            for route, f in second.features.items():
                good = f.ok + f.degraded
                self._requests[(route, "200")] = self._requests.get((route, "200"), 0.0) + good
                for code, count in f.errors.items():
                    key = (route, str(code))
                    self._requests[key] = self._requests.get(key, 0.0) + count
                totals = self._buckets.setdefault(route, [0.0] * (len(BUCKETS) + 1))
                for i, count in enumerate(f.buckets):
                    totals[i] += count
                self._sum[route] = self._sum.get(route, 0.0) + f.latency_sum_seconds
            self._affected_ratio = second.affected_ratio
            self._users_affected = float(second.users_affected)

    def show(self, second: ImpactSecond) -> None:
        """What users see now, between two whole seconds: the gauges move, the counters wait for the second
        to be over (a counter that counted a second twice would lie to every ``rate()``)."""
        with self._lock:
            self._affected_ratio = second.affected_ratio
            self._users_affected = float(second.users_affected)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            requests = dict(self._requests)
            buckets = {k: list(v) for k, v in self._buckets.items()}
            sums = dict(self._sum)
            ratio, affected = self._affected_ratio, self._users_affected
        counter = CounterMetricFamily(
            "http_requests_total",
            "Requests the virtual users sent, by route and status code.",
            labels=["service", "route", "code"],
        )
        for (route, code), value in sorted(requests.items()):
            counter.add_metric([self.service, route, code], value)
        yield counter
        histogram = HistogramMetricFamily(
            "http_request_duration_seconds",
            "How long the virtual users' requests took.",
            labels=["service", "route"],
        )
        for route, counts in sorted(buckets.items()):
            bounds = [f"{b:g}" for b in BUCKETS] + ["+Inf"]
            histogram.add_metric(
                [self.service, route], list(zip(bounds, counts, strict=True)), sums.get(route, 0.0)
            )
        yield histogram
        gauge = GaugeMetricFamily(
            "drills_users_affected_ratio",
            "Share of the users active in the last second whose request failed or broke the latency SLO.",
            labels=["service"],
        )
        gauge.add_metric([self.service], ratio)
        yield gauge
        users = GaugeMetricFamily(
            "drills_users_affected", "Users affected in the last second.", labels=["service"]
        )
        users.add_metric([self.service], affected)
        yield users


class ImpactExporter:
    """The metrics served over HTTP on 127.0.0.1 (an ephemeral port unless one is given)."""

    def __init__(self, metrics: ImpactMetrics, port: int = 0) -> None:
        self.metrics = metrics
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(metrics)
        try:
            self._server, self._thread = start_http_server(port, addr=LOOPBACK, registry=self.registry)
        except OSError as e:
            raise MonitoringError(
                f"cannot serve the impact metrics on {LOOPBACK}:{port}: {e.strerror}",
                hint="another process holds the port; leave the port to drills (0 picks a free one)",
            ) from e
        self.port = int(self._server.server_port)

    @property
    def target(self) -> str:
        """``host:port`` for Prometheus' scrape config."""
        return f"{LOOPBACK}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ImpactExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
