"""The fixture app for kind, run for real on 127.0.0.1 (no Docker): health, readiness, metrics, faults."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

APP = Path(__file__).resolve().parents[1] / "fixtures" / "app" / "app.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixture_app", APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = _load()


def _serve(env: dict[str, str]) -> Iterator[str]:
    server = app.serve("127.0.0.1", 0, app.State(env))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def healthy() -> Iterator[str]:
    yield from _serve({})


@pytest.fixture
def unready() -> Iterator[str]:
    yield from _serve({"FAULT": "unready", "CIRCUIT_BREAKER_ENABLED": "true"})


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_healthy_app_is_live_and_ready_and_counts_requests(healthy: str) -> None:
    assert _get(healthy + "/healthz") == (200, "ok\n")
    assert _get(healthy + "/readyz")[0] == 200
    _get(healthy + "/api/orders")
    _get(healthy + "/api/orders")
    status, metrics = _get(healthy + "/metrics")
    assert status == 200
    assert 'myapp_http_requests_total{path="/api/orders",status="200"} 2' in metrics
    assert "myapp_circuit_breaker_enabled 0" in metrics


def test_fault_unready_fails_readiness_but_not_liveness(unready: str) -> None:
    assert _get(unready + "/healthz")[0] == 200
    status, body = _get(unready + "/readyz")
    assert status == 503 and "not ready" in body
    _, metrics = _get(unready + "/metrics")
    assert 'myapp_http_requests_total{path="/readyz",status="503"} 1' in metrics
    assert "myapp_circuit_breaker_enabled 1" in metrics


def test_fault_crash_makes_the_process_exit_like_a_panic() -> None:
    env = {**os.environ, "FAULT": "crash", "PORT": "0", "BIND": "127.0.0.1"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(APP)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 2
    assert "panic:" in proc.stderr
    assert 1.5 < time.monotonic() - start < 20


def test_the_dockerfile_runs_the_app_unprivileged() -> None:
    text = (APP.parent / "Dockerfile").read_text()
    assert "COPY app.py" in text and "USER 65534" in text


def _metric(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_the_users_routes_export_the_embedded_clusters_metric_names(tmp_path: Path) -> None:
    """On kind the app's own /metrics carries http_requests_total{service,route,code} and the duration
    histogram, so the SLO rules are the same as on the embedded cluster; the dependency is the same app."""
    dep_gen = _serve({})
    dep = next(dep_gen)
    port = dep.rsplit(":", 1)[1]
    notes = tmp_path / "annotations"
    notes.write_text('kubernetes.io/config.seen="x"\n')
    app_gen = _serve({"DB_HOST": "127.0.0.1", "DB_PORT": port, "ANNOTATIONS_FILE": str(notes)})
    url = next(app_gen)
    try:
        for route in ("checkout", "cart", "browse"):
            assert _get(f"{url}/{route}")[0] == 200
        _, text = _get(f"{url}/metrics")
        assert 'http_requests_total{service="app",route="checkout",code="200"} 1' in text
        assert _metric(text, 'http_request_duration_seconds_count{service="app",route="cart"}') == 1
        assert 'http_request_duration_seconds_bucket{service="app",route="browse",le="+Inf"} 1' in text
        # a fault's annotation, as the downward API updates the file: every request of this pod fails
        time.sleep(0.05)
        notes.write_text(f'{app.ERROR_RATE}="1"\n')
        os.utime(notes, (time.time() + 5, time.time() + 5))
        assert _get(f"{url}/browse")[0] == 500
    finally:
        for gen in (app_gen, dep_gen):
            with pytest.raises(StopIteration):
                next(gen)


def test_a_dependency_that_does_not_answer_fails_checkout_until_the_breaker_degrades_it() -> None:
    gone = {"DB_HOST": "127.0.0.1", "DB_PORT": "9"}  # discard port: nobody listens
    gen = _serve(gone)
    url = next(gen)
    try:
        assert _get(f"{url}/checkout")[0] == 503
        assert _get(f"{url}/browse")[0] == 200
    finally:
        with pytest.raises(StopIteration):
            next(gen)
    gen = _serve({**gone, "CIRCUIT_BREAKER_ENABLED": "true", "CIRCUIT_BREAKER_THRESHOLD": "50"})
    url = next(gen)
    try:
        codes = [_get(f"{url}/cart")[0] for _ in range(8)]
        # the first calls fail; once failures reach the threshold the breaker serves a degraded page
        assert codes[0] == 503 and codes[-1] == 200, codes
    finally:
        with pytest.raises(StopIteration):
            next(gen)
