"""The webhook receiver: Alertmanager and PagerDuty notifications into journal events, refusals at the door.

Everything goes through a real HTTP server on 127.0.0.1 and real HTTP requests (http.client), so the status
codes, header handling and body limits are the ones Alertmanager and PagerDuty would meet.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drills.adapters.inbound.webhooks import (
    AlertTracker,
    AmNotification,
    WebhookServer,
    pagerduty_signature,
    strict_json,
)
from drills.adapters.store.journal import Journal, read_journal
from drills.engine.timeline import compute_clocks
from drills.errors import JournalError, UsageError, WebhookError
from drills.model.events import (
    Acknowledged,
    AlertFired,
    AlertResolved,
    DrillStarted,
    EscalationNotified,
    Event,
    FaultInjected,
    Resolved,
    Source,
)
from drills.model.severity import Severity
from drills.timing import FakeClock

TOKEN = "test-token-0123456789abcdef"
PD_SECRET = "pd-secret-0123456789abcdef"
NOW = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)


def alert(
    name: str = "KubePodCrashLooping",
    *,
    status: str = "firing",
    starts: str = "2026-03-02T10:00:12.345678901Z",
    ends: str = "0001-01-01T00:00:00Z",
    fingerprint: str | None = "fp-1",
    delay: str | None = "12",
    **labels: str,
) -> dict[str, Any]:
    a: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": name, "namespace": "production", "severity": "critical", **labels},
        "annotations": {"summary": "crashing"} | ({"rule_delay_seconds": delay} if delay is not None else {}),
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://127.0.0.1:9090/graph",
    }
    if fingerprint is not None:
        a["fingerprint"] = fingerprint
    return a


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "drills",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": list(alerts),
    }


def pd_event(
    event_type: str = "incident.acknowledged",
    *,
    event_id: str = "01ABCDEF",
    incident_key: str = "drill-1",
    occurred: str = "2026-03-02T10:02:00.123Z",
    agent: str | None = "Alice Oncall",
) -> dict[str, Any]:
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred,
            "agent": {"id": "PUSER1", "summary": agent, "type": "user_reference"} if agent else None,
            "client": None,
            "data": {
                "id": "PINC1",
                "type": "incident",
                "number": 7,
                "status": event_type.split(".")[1],
                "incident_key": incident_key,
                "title": "[DRILL] app down",
                "assignees": [{"id": "PUSER2", "summary": "Bob Lead", "type": "user_reference"}],
                "escalation_policy": {
                    "id": "PEP",
                    "summary": "Default",
                    "type": "escalation_policy_reference",
                },
            },
        }
    }


class Received:
    """The sink: what the receiver recorded, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail_next = 0

    def __call__(self, events: list[Event]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise JournalError("disk full (test)")
        self.events.extend(events)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sink() -> Received:
    return Received()


@pytest.fixture
def server(sink: Received, clock: FakeClock) -> Iterator[WebhookServer]:
    with WebhookServer(sink, token=TOKEN, pagerduty_secret=PD_SECRET, clock=clock, max_body=64 * 1024) as s:
        yield s


def post(
    server: WebhookServer,
    path: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    token: str | None = TOKEN,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    h = {"Content-Type": content_type, "Content-Length": str(len(raw))}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    conn.putrequest("POST", path, skip_accept_encoding=True)
    for k, v in h.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(raw)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


def am(server: WebhookServer, *alerts: dict[str, Any], **kw: Any) -> int:
    return post(server, "/alertmanager", notification(*alerts), **kw)[0]


def pd(
    server: WebhookServer, payload: dict[str, Any], *, secret: str = PD_SECRET, sig: str | None = None
) -> int:
    raw = json.dumps(payload).encode()
    signature = sig if sig is not None else pagerduty_signature(raw, secret)
    return post(server, "/pagerduty", raw, {"X-PagerDuty-Signature": signature}, token=None)[0]


# ---- Alertmanager -> alert.fired / alert.resolved ---------------------------------------------------------


def test_firing_alert_becomes_alert_fired_at_its_own_starts_at(server: WebhookServer, sink: Received) -> None:
    assert am(server, alert()) == 200
    [e] = sink.events
    assert isinstance(e, AlertFired)
    assert e.alert_name == "KubePodCrashLooping"
    assert e.at == datetime(2026, 3, 2, 10, 0, 12, 345678, tzinfo=UTC)  # startsAt, nanoseconds cut to µs
    assert e.received_at == NOW  # when it reached drills: the delivery delay is received_at - at
    assert e.rule_delay_seconds == 12.0
    assert e.source == Source.SYSTEM and e.actor == "alertmanager"
    assert e.fingerprint == "fp-1"
    assert e.labels["namespace"] == "production"


def test_scorecard_clocks_split_ttd_into_rule_and_delivery_delay(
    server: WebhookServer, sink: Received
) -> None:
    t0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    am(server, alert(starts="2026-03-02T10:00:14Z", delay="12"))
    started = DrillStarted(
        at=t0 - timedelta(seconds=5),
        source=Source.SYSTEM,
        drill_id="d1",
        scenario_id="s",
        scenario_title="t",
        category="deployment",
        service="app",
        namespace="production",
        true_severity=Severity.P1,
    )
    fault = FaultInjected(at=t0, source=Source.SYSTEM, fault_kind="crash-loop", target="deployment/app")
    clocks = compute_clocks([started, fault, *sink.events])
    assert clocks.ttd == timedelta(seconds=14)
    assert clocks.alert_rule_delay == timedelta(seconds=12)
    assert clocks.alert_delivery_delay == NOW - datetime(2026, 3, 2, 10, 0, 14, tzinfo=UTC)
    assert not clocks.detection_gap


def test_duplicate_notifications_are_recorded_once(
    server: WebhookServer, sink: Received, clock: FakeClock
) -> None:
    assert am(server, alert()) == 200
    clock.advance(2)
    assert am(server, alert()) == 200  # Alertmanager resends the group on every group_interval
    assert am(server, alert(), alert("KubePodNotReady", fingerprint="fp-2")) == 200
    assert [e.type for e in sink.events] == ["alert.fired", "alert.fired"]
    assert [e.alert_name for e in sink.events if isinstance(e, AlertFired)] == [
        "KubePodCrashLooping",
        "KubePodNotReady",
    ]
    assert server.alerts.duplicates == 2


def test_resolved_is_recorded_at_ends_at(server: WebhookServer, sink: Received) -> None:
    am(server, alert())
    am(server, alert(status="resolved", ends="2026-03-02T10:01:40.5Z"))
    fired, resolved = sink.events
    assert isinstance(resolved, AlertResolved)
    assert resolved.at == datetime(2026, 3, 2, 10, 1, 40, 500000, tzinfo=UTC)
    assert resolved.fingerprint == fired.fingerprint == "fp-1"
    am(server, alert(status="resolved", ends="2026-03-02T10:01:40.5Z"))
    assert len(sink.events) == 2


def test_resolved_overtaking_its_firing_records_both_and_the_late_firing_is_ignored(
    server: WebhookServer, sink: Received
) -> None:
    assert am(server, alert(status="resolved", ends="2026-03-02T10:01:00Z")) == 200
    assert am(server, alert()) == 200  # the firing notification, retried late
    assert [(e.type, e.at) for e in sink.events] == [
        ("alert.fired", datetime(2026, 3, 2, 10, 0, 12, 345678, tzinfo=UTC)),
        ("alert.resolved", datetime(2026, 3, 2, 10, 1, 0, tzinfo=UTC)),
    ]


def test_a_refired_alert_is_a_new_occurrence(server: WebhookServer, sink: Received) -> None:
    am(server, alert())
    am(server, alert(status="resolved", ends="2026-03-02T10:01:00Z"))
    am(server, alert(starts="2026-03-02T10:03:00Z"))
    assert [e.type for e in sink.events] == ["alert.fired", "alert.resolved", "alert.fired"]
    assert sink.events[0].id != sink.events[2].id


def test_alerts_older_than_the_drill_are_not_the_drills(sink: Received, clock: FakeClock) -> None:
    with WebhookServer(
        sink, token=TOKEN, clock=clock, not_before=datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    ) as s:
        am(s, alert(starts="2026-03-02T09:59:00Z"), alert("KubeNodeNotReady", fingerprint="fp-9"))
    assert [e.alert_name for e in sink.events if isinstance(e, AlertFired)] == ["KubeNodeNotReady"]


def test_missing_fingerprint_is_derived_from_labels() -> None:
    tracker = AlertTracker()
    note = AmNotification.model_validate(notification(alert(fingerprint=None), alert(fingerprint=None)))
    events = tracker.ingest(note, NOW)
    assert len(events) == 1 and tracker.duplicates == 1


def test_a_failed_recording_is_retried_not_taken_for_a_duplicate(
    server: WebhookServer, sink: Received
) -> None:
    sink.fail_next = 1
    assert am(server, alert()) == 500  # Alertmanager retries on 5xx
    assert sink.events == []
    assert am(server, alert()) == 200
    assert [e.type for e in sink.events] == ["alert.fired"]


def test_into_a_real_journal_retries_are_one_line_and_the_token_is_not_written(
    tmp_path: Path, clock: FakeClock
) -> None:
    started = DrillStarted(
        at=NOW - timedelta(minutes=1),
        source=Source.SYSTEM,
        drill_id="d1",
        scenario_id="s",
        scenario_title="t",
        category="deployment",
        service="app",
        namespace="production",
        true_severity=Severity.P1,
    )
    journal = Journal.create(tmp_path / "journal.jsonl", started, clock)
    with WebhookServer(journal.append_many, token=TOKEN, clock=clock) as s:
        for _ in range(3):
            assert am(s, alert(), alert("KubePodNotReady", fingerprint="fp-2")) == 200
        assert am(s, alert(status="resolved", ends="2026-03-02T10:01:00Z")) == 200
    read = read_journal(journal.path)
    assert [e.type for e in read.events] == ["drill.started", "alert.fired", "alert.fired", "alert.resolved"]
    assert read.problems == []
    assert TOKEN not in journal.path.read_text()


# ---- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "scheme"),
    [(None, "Bearer"), ("wrong-token-0123456789", "Bearer"), (TOKEN, "Basic"), ("", "Bearer")],
)
def test_bad_or_missing_token_is_refused_401(
    server: WebhookServer, sink: Received, token: str | None, scheme: str
) -> None:
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    status, body = post(server, "/alertmanager", notification(alert()), headers, token=None)
    assert status == 401
    assert TOKEN not in json.dumps(body)
    assert sink.events == []
    assert server.stats.refused[401] == 1


def test_oversize_body_is_refused_413_without_being_read(server: WebhookServer, sink: Received) -> None:
    big = notification(*(alert(fingerprint=f"fp-{i}", pad="x" * 200) for i in range(400)))
    raw = json.dumps(big).encode()
    assert len(raw) > server.max_body
    assert post(server, "/alertmanager", raw)[0] == 413
    # a Content-Length that claims too much is refused before any body arrives
    host, port = server.address
    with socket.create_connection((host, port), timeout=5) as c:
        c.sendall(
            b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 999999999\r\n\r\n"
        )
        assert c.recv(100).startswith(b"HTTP/1.0 413")
    assert sink.events == []


def test_chunked_or_lengthless_body_is_refused_411(server: WebhookServer) -> None:
    host, port = server.address
    for extra in (b"Transfer-Encoding: chunked\r\n", b""):
        with socket.create_connection((host, port), timeout=5) as c:
            c.sendall(
                b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\n" + extra + b"\r\n"
            )
            assert c.recv(100).startswith(b"HTTP/1.0 411")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"version": "4", "version": "4"}', "twice"),
        (b'{"version": "4", "status": "firing", "alerts": [], "x": NaN}', "NaN"),
        (b"\xff\xfe{}", "not UTF-8"),
        (json.dumps(notification(alert()) | {"version": "3"}).encode(), "version"),
        (json.dumps(notification(alert(namespace=7))).encode(), "labels"),  # type: ignore[arg-type]
        (json.dumps(notification(alert(starts="yesterday"))).encode(), "startsAt"),
        (json.dumps(notification(alert(status="pending"))).encode(), "status"),
        (
            json.dumps(
                notification({"status": "firing", "labels": {}, "startsAt": "2026-03-02T10:00:00Z"})
            ).encode(),
            "alertname",
        ),
    ],
)
def test_malformed_bodies_are_refused_400(
    server: WebhookServer, sink: Received, body: bytes, why: str
) -> None:
    status, answer = post(server, "/alertmanager", body)
    assert status == 400
    assert why in answer["message"]
    assert sink.events == []


def test_a_bad_alert_refuses_the_whole_notification(server: WebhookServer, sink: Received) -> None:
    assert am(server, alert(), alert("X", fingerprint="fp-x", starts="nope")) == 400
    assert sink.events == []
    assert am(server, alert()) == 200  # nothing was remembered from the refused body
    assert len(sink.events) == 1


def test_wrong_content_type_is_415_and_unknown_paths_404(server: WebhookServer) -> None:
    assert post(server, "/alertmanager", notification(alert()), content_type="text/plain")[0] == 415
    assert post(server, "/elsewhere", notification(alert()))[0] == 404


def test_strict_json_rejects_what_json_loads_would_accept() -> None:
    with pytest.raises(WebhookError, match="Infinity"):
        strict_json(b'{"a": Infinity}')
    with pytest.raises(WebhookError, match="twice"):
        strict_json(b'{"a": {"b": 1, "b": 2}}')
    with pytest.raises(WebhookError, match="nests too deeply"):
        strict_json(b"[" * 100000 + b"]" * 100000)


# ---- PagerDuty webhooks v3 -------------------------------------------------------------------------------


def test_signed_acknowledgement_becomes_acknowledged_via_pagerduty(
    server: WebhookServer, sink: Received
) -> None:
    assert pd(server, pd_event()) == 200
    [e] = sink.events
    assert isinstance(e, Acknowledged)
    assert e.via == "pagerduty"
    assert e.actor == "Alice Oncall"
    assert e.source == Source.HUMAN
    assert e.at == datetime(2026, 3, 2, 10, 2, 0, 123000, tzinfo=UTC)


def test_resolved_and_escalated(server: WebhookServer, sink: Received) -> None:
    assert pd(server, pd_event("incident.escalated", event_id="E2", agent=None)) == 200
    assert pd(server, pd_event("incident.resolved", event_id="E3")) == 200
    esc, res = sink.events
    assert isinstance(esc, EscalationNotified) and esc.whom == "Bob Lead" and esc.channel == "pagerduty"
    assert esc.source == Source.SYSTEM  # PagerDuty escalated on its own: no agent
    assert isinstance(res, Resolved) and res.actor == "Alice Oncall"


def test_other_event_types_and_other_incidents_are_accepted_but_not_recorded(
    sink: Received, clock: FakeClock
) -> None:
    with WebhookServer(
        sink, token=TOKEN, pagerduty_secret=PD_SECRET, clock=clock, incident_keys=frozenset({"drill-1"})
    ) as s:
        assert pd(s, pd_event("incident.reassigned", event_id="E1")) == 200  # a reassign is not an ack
        assert pd(s, pd_event(event_id="E2", incident_key="someone-elses-incident")) == 200
        assert pd(s, pd_event(event_id="E3")) == 200
        assert pd(s, pd_event(event_id="E3")) == 200  # retried delivery
    assert [e.type for e in sink.events] == ["acknowledged"]
    assert s.pagerduty.ignored == 2 and s.pagerduty.duplicates == 1


def test_bad_signature_is_refused_401(server: WebhookServer, sink: Received) -> None:
    payload = pd_event()
    assert pd(server, payload, secret="not-the-secret") == 401
    assert pd(server, payload, sig="") == 401
    assert pd(server, payload, sig="v1=" + "0" * 64) == 401
    # a body changed after signing
    raw = json.dumps(payload).encode()
    sig = pagerduty_signature(raw, PD_SECRET)
    tampered = raw.replace(b"Alice", b"Mallory")
    assert post(server, "/pagerduty", tampered, {"X-PagerDuty-Signature": sig}, token=None)[0] == 401
    assert sink.events == []


def test_any_of_several_signatures_may_match_during_secret_rotation(
    server: WebhookServer, sink: Received
) -> None:
    raw = json.dumps(pd_event()).encode()
    header = f"v1={'a' * 64},{pagerduty_signature(raw, PD_SECRET)}"
    assert post(server, "/pagerduty", raw, {"X-PagerDuty-Signature": header}, token=None)[0] == 200
    assert len(sink.events) == 1


def test_pagerduty_door_is_closed_without_a_secret(sink: Received, clock: FakeClock) -> None:
    with WebhookServer(sink, token=TOKEN, clock=clock) as s:
        status, answer = post(s, "/pagerduty", pd_event(), {"X-PagerDuty-Signature": "v1=abc"}, token=None)
    assert status == 401 and "DRILLS_PAGERDUTY_WEBHOOK_SECRET" in answer["message"]
    assert sink.events == []


def test_pagerduty_bearer_token_alone_is_not_enough(server: WebhookServer, sink: Received) -> None:
    assert post(server, "/pagerduty", pd_event())[0] == 401
    assert sink.events == []


# ---- loopback only ---------------------------------------------------------------------------------------


def _outward_address() -> str | None:
    """This machine's address on its default route, if it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_listens_on_loopback_only(server: WebhookServer) -> None:
    host, port = server.address
    assert host == "127.0.0.1"
    with socket.create_connection((host, port), timeout=5):
        pass
    outward = _outward_address()
    if outward is not None:
        with pytest.raises(OSError), socket.create_connection((outward, port), timeout=2):
            pass


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "localhost.example"])
def test_refuses_to_listen_beyond_loopback(sink: Received, host: str) -> None:
    with pytest.raises(UsageError, match="loopback only"):
        WebhookServer(sink, token=TOKEN, host=host)


def test_needs_a_token(sink: Received) -> None:
    with pytest.raises(UsageError, match="DRILLS_WEBHOOK_TOKEN"):
        WebhookServer(sink, token="")
