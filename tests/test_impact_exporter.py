"""The impact exporter: what the model produced, scraped over HTTP from 127.0.0.1 as Prometheus would."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from drills.adapters.files.impact import load_service_graph
from drills.adapters.monitoring.impact_exporter import ImpactExporter, ImpactMetrics
from drills.engine.impact import ClusterView, derive_states, simulate_second

REPO = Path(__file__).resolve().parents[1]


def _scrape(target: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_scraped_totals_are_the_sum_of_the_simulated_seconds() -> None:
    graph = load_service_graph(REPO / "fixtures" / "service-graph.yaml")
    # a world with no db-proxy at all: checkout and cart fail, browse works
    view = ClusterView(services=[{"metadata": {"name": "app", "namespace": "production"}}])
    states = derive_states(graph, view)
    metrics = ImpactMetrics("app")
    seconds = [simulate_second(graph, states, t) for t in range(5)]
    with ImpactExporter(metrics) as exporter:
        assert exporter.target.startswith("127.0.0.1:")
        for s in seconds:
            metrics.add(s)
        samples = _scrape(exporter.target)
    requests = samples["http_requests_total"]
    total = sum(requests.values())
    assert total == sum(s.requests for s in seconds)
    failed = sum(v for labels, v in requests.items() if dict(labels)["code"].startswith("5"))
    assert failed == sum(s.failed for s in seconds)
    count = sum(v for labels, v in samples["http_request_duration_seconds_count"].items())
    assert count == total
    ratio = samples["drills_users_affected_ratio"][(("service", "app"),)]
    assert ratio == seconds[-1].affected_ratio
    assert ratio == 1.0  # no app endpoints either: everyone is affected


def test_the_exporter_listens_on_loopback_only_and_frees_its_port() -> None:
    import socket

    metrics = ImpactMetrics("app")
    exporter = ImpactExporter(metrics)
    port = exporter.port
    exporter.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
