"""Paging round-trip against a local stand-in for PagerDuty and Slack (127.0.0.1; the real services are never
called): the page is a PagerDuty Events v2 trigger, the acknowledgement comes back as a signed v3 webhook,
and the drill's TTA is computed from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drills.adapters.inbound.paging import PagerDutyPager, SlackNotifier
from drills.adapters.inbound.webhooks import pagerduty_signature
from drills.adapters.store.journal import JOURNAL_FILE, Journal, read_journal
from drills.engine.timeline import compute_clocks
from drills.errors import MonitoringError, UsageError
from drills.model.events import (
    Acknowledged,
    AlertFired,
    CommsPosted,
    DrillStarted,
    FaultInjected,
    Source,
)
from drills.model.severity import Severity
from drills.runner import detection_chain
from drills.runner.pager import Page, available_pagers
from drills.timing import FakeClock

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
PD_SECRET = "pd-webhook-secret-0123456789"
WEBHOOK_TOKEN = "drills-webhook-token-0123456789"
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


@dataclass
class Stand:
    """A local HTTP server standing in for PagerDuty's Events API and a Slack incoming webhook."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Status codes to answer with, in order; then 202 (PagerDuty) / 200 (Slack).
    script: list[int] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str) -> tuple[int, bytes]:
        status = self.script.pop(0) if self.script else (202 if path.startswith("/v2/enqueue") else 200)
        if path.startswith("/v2/enqueue"):
            if status == 202:
                body = self.requests[-1][1]
                return status, json.dumps(
                    {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
                ).encode()
            return status, json.dumps(
                {"status": "invalid event", "errors": ["Event object is invalid"]}
            ).encode()
        return status, b"ok" if status == 200 else b"invalid_token"


@pytest.fixture
def stand() -> Iterator[Stand]:
    state = Stand()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append((self.path, body))
            status, payload = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def env_for(stand: Stand) -> dict[str, str]:
    return {
        "DRILLS_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "DRILLS_PAGERDUTY_EVENTS_URL": f"{stand.url}/v2/enqueue",
        "DRILLS_SLACK_WEBHOOK_URL": f"{stand.url}/services/T000/B000/XXXXSECRETXXXX",
        "DRILLS_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
    }


def page(**kw: Any) -> Page:
    values: dict[str, Any] = {
        "drill_id": "20260302-100000-bad-deploy",
        "incident_id": "#incident-20260302-1000",
        "title": "Bad deploy",
        "service": "app",
        "namespace": "production",
        "summary": "KubePodCrashLooping firing for 14s",
        "at": T0 + timedelta(seconds=20),
        "alert_name": "KubePodCrashLooping",
        "to": "alice",
    }
    values.update(kw)
    return Page(**values)


# ---- PagerDuty Events API v2 ------------------------------------------------------------------------------


def test_trigger_sends_an_events_v2_trigger_marked_as_a_drill(stand: Stand) -> None:
    pager = PagerDutyPager.from_env(env_for(stand))
    assert pager is not None
    key = pager.trigger(
        dedup_key="drill-1",
        summary="app: KubePodCrashLooping",
        source="drills/production",
        at=T0,
        severity=Severity.P1,
        component="app",
        group="production",
        details={"alert": "KubePodCrashLooping"},
    )
    assert key == "drill-1"
    [(path, body)] = stand.requests
    assert path == "/v2/enqueue"
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "drill-1"
    p = body["payload"]
    assert p["summary"] == "[DRILL] app: KubePodCrashLooping"
    assert p["severity"] == "error"  # P1
    assert p["source"] == "drills/production" and p["component"] == "app" and p["group"] == "production"
    assert p["timestamp"] == T0.isoformat()
    assert p["custom_details"] == {"is_drill": True, "alert": "KubePodCrashLooping"}


def test_throttled_and_server_errors_are_retried_with_back_off(stand: Stand) -> None:
    stand.script = [429, 503]
    clock = FakeClock(T0)
    pager = PagerDutyPager(ROUTING_KEY, url=f"{stand.url}/v2/enqueue", clock=clock)
    pager.trigger(dedup_key="d", summary="s", source="x", at=T0)
    assert len(stand.requests) == 3
    assert clock.now() - T0 == timedelta(seconds=1.5)  # 0.5 s then 1 s


def test_a_refused_event_is_a_clear_error_without_the_routing_key(stand: Stand) -> None:
    stand.script = [400]
    pager = PagerDutyPager(ROUTING_KEY, url=f"{stand.url}/v2/enqueue")
    with pytest.raises(MonitoringError, match=r"\(HTTP 400\): Event object is invalid") as e:
        pager.trigger(dedup_key="d", summary="s", source="x", at=T0)
    assert ROUTING_KEY not in str(e.value) and ROUTING_KEY not in repr(pager)


def test_nothing_listening_is_a_clear_error() -> None:
    pager = PagerDutyPager(ROUTING_KEY, url="http://127.0.0.1:9/v2/enqueue", attempts=1)
    with pytest.raises(MonitoringError, match="did not answer"):
        pager.trigger(dedup_key="d", summary="s", source="x", at=T0)


def test_resolve(stand: Stand) -> None:
    PagerDutyPager(ROUTING_KEY, url=f"{stand.url}/v2/enqueue").resolve("drill-1")
    [(_, body)] = stand.requests
    assert body == {
        "routing_key": ROUTING_KEY,
        "client": "drills",
        "event_action": "resolve",
        "dedup_key": "drill-1",
    }


def test_not_configured_means_no_pager() -> None:
    assert PagerDutyPager.from_env({}) is None
    assert SlackNotifier.from_env({}) is None
    with pytest.raises(UsageError, match="DRILLS_PAGERDUTY_ROUTING_KEY"):
        detection_chain.PagerDutyRunnerPager(env={})
    with pytest.raises(UsageError, match="DRILLS_SLACK_WEBHOOK_URL"):
        detection_chain.SlackRunnerPager(env={})
    with pytest.raises(MonitoringError, match="http"):
        PagerDutyPager(ROUTING_KEY, url="ftp://example/enqueue")


def test_pagers_are_registered_with_the_runner() -> None:
    assert {"pagerduty", "slack", "terminal"} <= set(available_pagers())


# ---- Slack ----------------------------------------------------------------------------------------------


def test_slack_posts_marked_text_and_hides_its_url(stand: Stand) -> None:
    env = env_for(stand)
    slack = SlackNotifier.from_env(env)
    assert slack is not None
    slack.post("hello")
    assert stand.requests == [("/services/T000/B000/XXXXSECRETXXXX", {"text": "[DRILL] hello"})]
    stand.script = [403]
    with pytest.raises(MonitoringError, match="HTTP 403") as e:
        slack.post("again")
    assert "XXXXSECRETXXXX" not in str(e.value) and "XXXXSECRETXXXX" not in repr(slack)


# ---- the round-trip through a drill's journal ------------------------------------------------------------


def _drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drill_id: str) -> Journal:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    started = DrillStarted(
        at=T0 - timedelta(seconds=10),
        source=Source.SYSTEM,
        drill_id=drill_id,
        scenario_id="bad-deploy-rollback",
        scenario_title="Bad deploy",
        category="deployment",
        service="app",
        namespace="production",
        true_severity=Severity.P1,
    )
    from drills.adapters.store.paths import drill_dir

    journal = Journal.create(drill_dir(drill_id) / JOURNAL_FILE, started, FakeClock(T0))
    journal.append(
        FaultInjected(at=T0, source=Source.SYSTEM, fault_kind="bad-deploy", target="deployment/app")
    )
    journal.append(
        AlertFired(
            at=T0 + timedelta(seconds=14),
            source=Source.SYSTEM,
            actor="alertmanager",
            alert_name="KubePodCrashLooping",
            rule_delay_seconds=12,
            received_at=T0 + timedelta(seconds=15),
        )
    )
    return journal


def test_trigger_then_signed_acknowledgement_gives_the_drills_tta(
    stand: Stand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drill_id = "20260302-100000-bad-deploy"
    journal = _drill(tmp_path, monkeypatch, drill_id)
    env = env_for(stand)
    receiver = detection_chain.acquire_receiver(
        drill_id, journal, port=0, token=WEBHOOK_TOKEN, clock=FakeClock(T0), not_before=None, env=env
    )
    try:
        pager = detection_chain.PagerDutyRunnerPager(env=env, console=None)
        receipt = pager.page(page(drill_id=drill_id))
        assert receipt.channel == "pagerduty" and receipt.ref == drill_id
        [(_, trigger)] = stand.requests
        assert trigger["dedup_key"] == drill_id

        # PagerDuty, standing in: the responder acknowledges 95 s after the alert fired.
        acked = T0 + timedelta(seconds=14 + 95)
        hook = {
            "event": {
                "id": "01DEF",
                "event_type": "incident.acknowledged",
                "resource_type": "incident",
                "occurred_at": acked.isoformat().replace("+00:00", "Z"),
                "agent": {"id": "PU", "summary": "Alice Oncall", "type": "user_reference"},
                "data": {
                    "id": "PI",
                    "type": "incident",
                    "incident_key": trigger["dedup_key"],
                    "status": "acknowledged",
                },
            }
        }
        raw = json.dumps(hook).encode()
        import http.client

        host, port = receiver.address
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request(
            "POST",
            "/pagerduty",
            raw,
            {
                "Content-Type": "application/json",
                "X-PagerDuty-Signature": pagerduty_signature(raw, PD_SECRET),
            },
        )
        assert conn.getresponse().status == 200
        conn.close()

        pager.close()  # the drill ends: the incident is resolved in PagerDuty
        assert stand.requests[-1][1]["event_action"] == "resolve"
    finally:
        detection_chain.release_receiver(drill_id)

    read = read_journal(journal.path)
    [ack] = [e for e in read.events if isinstance(e, Acknowledged)]
    assert ack.via == "pagerduty" and ack.actor == "Alice Oncall" and ack.at == acked
    clocks = compute_clocks(read.events)
    assert clocks.tta == timedelta(seconds=95)
    text = journal.path.read_text()
    for secret in (ROUTING_KEY, PD_SECRET, WEBHOOK_TOKEN, "XXXXSECRETXXXX"):
        assert secret not in text
    assert detection_chain.receiver_for(drill_id) is None  # released and stopped


def test_slack_pager_posts_the_initial_alert_then_follows_the_drills_comms(
    stand: Stand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drill_id = "20260302-100000-slack"
    journal = _drill(tmp_path, monkeypatch, drill_id)
    pager = detection_chain.SlackRunnerPager(env=env_for(stand), poll_seconds=0.05)
    try:
        assert pager.page(page(drill_id=drill_id)).channel == "slack"
        first = stand.requests[0][1]["text"]
        assert first.startswith("[DRILL] 🚨 INCIDENT DETECTED")
        assert "Service: app" in first and "#incident-20260302-1000" in first
        assert "Symptom: KubePodCrashLooping firing for 14s" in first
        update = "📊 INCIDENT UPDATE #1 - 10:05 UTC\n\nCurrent Status: 🔧 Mitigating"
        journal.append(
            CommsPosted(
                at=T0 + timedelta(minutes=5), source=Source.HUMAN, template="status_update", text=update
            )
        )
        deadline = time.monotonic() + 5
        while len(stand.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pager.close()
    assert [r[1]["text"] for r in stand.requests[1:]] == [f"[DRILL] {update}"]
