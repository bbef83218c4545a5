"""The virtual users' metrics through the real Prometheus of Debian's package: scraped through the file the
runner writes, and turned into the SLO's burn-rate recording rules drills generates."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.adapters.files.impact import load_service_graph
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.monitoring.impact_exporter import ImpactExporter, ImpactMetrics
from drills.engine.impact import ClusterView, derive_states, simulate_second
from drills.timing import SYSTEM_CLOCK

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.monitoring,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus comes with Debian's prometheus package"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.loads(resp.read())["data"]["result"]
    return result


def _wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = SYSTEM_CLOCK.monotonic() + seconds
    while SYSTEM_CLOCK.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        SYSTEM_CLOCK.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_prometheus_scrapes_the_users_and_computes_the_slo_error_ratio(tmp_path: Path) -> None:
    graph = load_service_graph(REPO / "fixtures" / "service-graph.yaml")
    settings = monitoring.MonitoringSettings()
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(monitoring.render_rules(monitoring.shipped_rules(), settings)))
    targets_file = tmp_path / monitoring.IMPACT_TARGETS_FILE
    config = monitoring.render_prometheus_config(
        settings, [], alertmanager="127.0.0.1:9", rule_files=[rules], impact_targets=targets_file
    )
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    metrics = ImpactMetrics("app")
    port = _free_port()
    with ImpactExporter(metrics) as exporter:
        targets_file.write_text(
            json.dumps([{"targets": [exporter.target], "labels": {"job": monitoring.IMPACT_JOB}}])
        )
        prom = subprocess.Popen(
            [
                PROMETHEUS or "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # db-proxy gone: checkout and cart fail (half the traffic)
            states = derive_states(
                graph,
                ClusterView(
                    services=[{"metadata": {"name": "app", "namespace": "production"}}],
                    endpoint_slices=[],
                    pods=[],
                ),
            )
            second = 0

            def feed_and_check() -> list[dict[str, Any]] | None:
                nonlocal second
                for _ in range(2):
                    metrics.add(simulate_second(graph, states, second))
                    second += 1
                try:
                    return (
                        _query(port, 'slo:sli_error:ratio_rate5s{service="app",sli="availability"}') or None
                    )
                except OSError:
                    return None

            # feed two simulated seconds per real half second until the recording rule has a value
            result = _wait(
                lambda: (feed_and_check(), SYSTEM_CLOCK.sleep(0.5))[0], 60, "the SLO recording rule"
            )
            ratio = float(result[0]["value"][1])
            assert ratio == pytest.approx(1.0, abs=0.01)  # no app endpoints either: every request failed
            up = _query(port, f'up{{job="{monitoring.IMPACT_JOB}"}}')
            assert up and up[0]["value"][1] == "1"
            assert _query(port, 'sum(http_requests_total{service="app"}) > 0')
        finally:
            prom.terminate()
            prom.wait(timeout=20)
