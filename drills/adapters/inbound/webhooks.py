"""The one door into a running drill from the outside: Alertmanager's and PagerDuty's webhooks.

A drill's detection and acknowledgement times must come from the tools that really detect and page, not from
drills' own timers. Alertmanager posts its notifications here, and they become ``alert.fired`` /
``alert.resolved`` journal events carrying the alert's *own* ``startsAt`` (when the rule fired), with the time
the notification reached drills kept apart (``received_at``) so the scorecard can tell a slow rule from a
slow pipeline. PagerDuty (webhooks v3) posts here when the responder acknowledges, resolves or the incident
escalates, so a team drilling against its real PagerDuty gets acknowledgement times without typing
``drill ack``.

It is an HTTP server facing tools that retry and reorder, so it is strict and forgiving in the right places:

- strict at the door: loopback only; a bearer token (``DRILLS_WEBHOOK_TOKEN``) for Alertmanager and a valid
  ``X-PagerDuty-Signature`` (HMAC-SHA256 with ``DRILLS_PAGERDUTY_WEBHOOK_SECRET``) for PagerDuty; a body-size
  limit checked before reading; JSON that is an object, UTF-8, without duplicate keys or NaN, of the expected
  shape. Each refusal is a :class:`~drills.errors.WebhookError` carrying its HTTP status (401, 411, 413, 400,
  415).
- forgiving inside: the same notification delivered twice is recorded once (an alert is its fingerprint and
  its ``startsAt``; a PagerDuty event its id), and a ``resolved`` that overtakes its ``firing`` still records
  both, each at its own time.

Events go to a sink (the drill's ``Journal.append``); if the sink fails the sender gets a 500 and retries.
Nothing from a request (headers, token, body) is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drills.errors import DrillError, UsageError, WebhookError
from drills.model.events import (
    Acknowledged,
    AlertFired,
    AlertResolved,
    EscalationNotified,
    Event,
    Resolved,
    Source,
)
from drills.timing import SYSTEM_CLOCK, Clock, utc

TOKEN_ENV = "DRILLS_WEBHOOK_TOKEN"
PAGERDUTY_SECRET_ENV = "DRILLS_PAGERDUTY_WEBHOOK_SECRET"

ALERTMANAGER_PATH = "/alertmanager"
PAGERDUTY_PATH = "/pagerduty"
HEALTH_PATH = "/healthz"

#: Alertmanager sends every alert of a group in one body; 1 MiB is thousands of alerts. PagerDuty's v3
#: payloads are a few KiB.
DEFAULT_MAX_BODY = 1024 * 1024

#: The annotation drills' rendered rules carry: scrape interval + the rule's `for:`, in seconds.
RULE_DELAY_ANNOTATION = "rule_delay_seconds"

#: Where events go: ``Journal.append_many`` (all events of one notification in one durable write).
Sink = Callable[[list[Event]], object]


# ---- what the senders post ------------------------------------------------------------------------------


class _Loose(BaseModel):
    # Strict types for what we read, unknown keys ignored: both senders add fields over time.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class AmAlert(_Loose):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str  # noqa: N815  (Alertmanager's spelling)
    endsAt: str | None = None  # noqa: N815
    fingerprint: str | None = None


class AmNotification(_Loose):
    """Alertmanager's webhook body, version 4."""

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AmAlert] = Field(max_length=10000)


class PdReference(_Loose):
    id: str | None = None
    summary: str | None = None
    type: str | None = None


class PdIncident(_Loose):
    id: str | None = None
    incident_key: str | None = None
    title: str | None = None
    status: str | None = None
    assignees: list[PdReference] = Field(default_factory=list)
    escalation_policy: PdReference | None = None


class PdEvent(_Loose):
    id: str
    event_type: str
    resource_type: str = "incident"
    occurred_at: str
    agent: PdReference | None = None
    data: PdIncident


class PdWebhook(_Loose):
    """PagerDuty's webhook v3 body: one event per delivery."""

    event: PdEvent


# ---- pure parts: verifying and turning notifications into events ---------------------------------------


def parse_time(text: str, *, what: str) -> datetime:
    """RFC 3339 as Alertmanager and PagerDuty write it (nanoseconds, ``Z``), as aware UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WebhookError(f"{what} is not an RFC 3339 time: {text[:40]!r}", status=400) from None
    if parsed.tzinfo is None:
        raise WebhookError(f"{what} has no time zone: {text[:40]!r}", status=400)
    return parsed.astimezone(UTC)


def _unset_time(parsed: datetime) -> bool:
    # Alertmanager writes "0001-01-01T00:00:00Z" for "no end yet".
    return parsed.year <= 1


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise WebhookError(f"the JSON body names {key[:40]!r} twice", status=400)
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise WebhookError(f"the JSON body holds {name}, which is not JSON", status=400)


def strict_json(body: bytes) -> dict[str, Any]:
    """Decode a webhook body: UTF-8, one JSON object, no duplicate keys, no NaN/Infinity."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError("the body is not UTF-8", status=400) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise WebhookError(
            f"the body is not JSON: {e.msg} at line {e.lineno} column {e.colno}", status=400
        ) from None
    except RecursionError:
        raise WebhookError("the body nests too deeply", status=400) from None
    if not isinstance(data, dict):
        raise WebhookError("the body must be a JSON object", status=400)
    return data


def _validated(model: type[AmNotification] | type[PdWebhook], data: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise WebhookError(f"not a {what} body: {where}: {first['msg']}", status=400) from None


def bearer_ok(header: str | None, token: str) -> bool:
    if not header or not token:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def pagerduty_signature(body: bytes, secret: str) -> str:
    """The ``v1=`` value PagerDuty sends for ``body`` signed with ``secret``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pagerduty_signature_ok(header: str | None, body: bytes, secret: str) -> bool:
    """PagerDuty may send several comma-separated signatures (while a secret is rotated): any may match."""
    if not header or not secret:
        return False
    expected = pagerduty_signature(body, secret).encode()
    return any(hmac.compare_digest(part.strip().encode(), expected) for part in header.split(","))


def _stable_id(*parts: str) -> str:
    # A retried notification yields the same event id, so the journal also sees it as a duplicate.
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def alert_fingerprint(alert: AmAlert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    return hashlib.sha256(json.dumps(sorted(alert.labels.items())).encode()).hexdigest()[:16]


@dataclass
class AlertTracker:
    """What Alertmanager told us so far; turns notifications into events once each, whatever the order.

    An alert occurrence is (fingerprint, startsAt): Alertmanager resends it with every group notification,
    and a re-fired alert gets a new ``startsAt``. Alerts that started before ``not_before`` (the drill's
    start) are older trouble, not the drill's: counted, not recorded.

    :meth:`plan` works out the events without changing what the tracker remembers; :meth:`commit` remembers
    them once they are recorded, so a notification whose recording failed is not taken for a duplicate when
    Alertmanager retries it.
    """

    not_before: datetime | None = None
    seen: dict[tuple[str, datetime], Literal["fired", "resolved"]] = field(default_factory=dict)
    duplicates: int = 0
    ignored_before_start: int = 0

    def ingest(self, note: AmNotification, received_at: datetime) -> list[Event]:
        events, updates = self.plan(note, received_at)
        self.commit(updates)
        return events

    def plan(
        self, note: AmNotification, received_at: datetime
    ) -> tuple[list[Event], dict[tuple[str, datetime], Literal["fired", "resolved"]]]:
        # Parse everything first: a bad alert refuses the whole body before anything is remembered.
        parsed = []
        for alert in note.alerts:
            name = alert.labels.get("alertname", "")
            if not name:
                raise WebhookError("an alert has no alertname label", status=400)
            starts = parse_time(alert.startsAt, what="startsAt")
            ends = parse_time(alert.endsAt, what="endsAt") if alert.endsAt else None
            parsed.append((alert, name, starts, None if ends is None or _unset_time(ends) else ends))
        events: list[Event] = []
        updates: dict[tuple[str, datetime], Literal["fired", "resolved"]] = {}
        for alert, name, starts, ends in parsed:
            if self.not_before is not None and starts < self.not_before:
                self.ignored_before_start += 1
                continue
            fp = alert_fingerprint(alert)
            key = (fp, starts)
            state = updates.get(key, self.seen.get(key))
            if state is None:
                events.append(self._fired(alert, name, fp, starts, received_at))
                state = updates[key] = "fired"
            elif alert.status == "firing" or state == "resolved":
                # A resend, or a stale firing that arrived after its own resolution.
                self.duplicates += 1
                continue
            if alert.status == "resolved" and state == "fired":
                events.append(
                    AlertResolved(
                        id=_stable_id("alert.resolved", fp, starts.isoformat()),
                        at=max(ends or received_at, starts),
                        source=Source.SYSTEM,
                        actor="alertmanager",
                        alert_name=name,
                        fingerprint=fp,
                    )
                )
                updates[key] = "resolved"
        return events, updates

    def commit(self, updates: Mapping[tuple[str, datetime], Literal["fired", "resolved"]]) -> None:
        self.seen.update(updates)

    @staticmethod
    def _fired(alert: AmAlert, name: str, fp: str, starts: datetime, received_at: datetime) -> AlertFired:
        delay: float | None = None
        raw = alert.annotations.get(RULE_DELAY_ANNOTATION)
        if raw is not None:
            try:
                delay = float(raw)
            except ValueError:
                delay = None
        return AlertFired(
            id=_stable_id("alert.fired", fp, starts.isoformat()),
            at=starts,
            source=Source.SYSTEM,
            actor="alertmanager",
            alert_name=name,
            fingerprint=fp,
            labels=dict(alert.labels),
            rule_delay_seconds=delay,
            received_at=received_at,
        )


@dataclass
class PagerDutyTracker:
    """PagerDuty v3 events -> journal events, each PagerDuty event id once.

    ``incident_keys``: when set, only incidents whose ``incident_key`` (the Events v2 ``dedup_key`` drills
    sent with the page) is one of them are this drill's; the rest of the service's incidents are ignored.
    """

    incident_keys: frozenset[str] | None = None
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    ignored: int = 0

    def ingest(self, hook: PdWebhook) -> list[Event]:
        events = self.plan(hook)
        self.commit(hook)
        return events

    def commit(self, hook: PdWebhook) -> None:
        self.seen.add(hook.event.id)

    def plan(self, hook: PdWebhook) -> list[Event]:
        ev = hook.event
        if ev.id in self.seen:
            self.duplicates += 1
            return []
        if self.incident_keys is not None and ev.data.incident_key not in self.incident_keys:
            self.ignored += 1
            return []
        at = parse_time(ev.occurred_at, what="event.occurred_at")
        who = ev.agent.summary if ev.agent and ev.agent.summary else None
        eid = _stable_id("pagerduty", ev.id)
        result: list[Event] = []
        if ev.event_type == "incident.acknowledged":
            result.append(Acknowledged(id=eid, at=at, source=Source.HUMAN, actor=who, via="pagerduty"))
        elif ev.event_type == "incident.resolved":
            result.append(Resolved(id=eid, at=at, source=Source.HUMAN, actor=who))
        elif ev.event_type == "incident.escalated":
            assignee = next((a.summary for a in ev.data.assignees if a.summary), None)
            whom = assignee or (ev.data.escalation_policy.summary if ev.data.escalation_policy else None)
            result.append(
                EscalationNotified(
                    id=eid,
                    at=at,
                    source=Source.HUMAN if who else Source.SYSTEM,
                    actor=who or "pagerduty",
                    whom=whom or "next escalation level",
                    channel="pagerduty",
                )
            )
        else:
            # incident.triggered, .annotated, .reassigned...: not a drill event (a reassign is no ack).
            self.ignored += 1
        return result


# ---- the HTTP server ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    return value or None


def new_token() -> str:
    """A token for one monitoring stack when ``DRILLS_WEBHOOK_TOKEN`` is not set."""
    return secrets.token_urlsafe(32)


@dataclass
class WebhookStats:
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    events: int = 0


class WebhookServer:
    """The receiver: ``POST /alertmanager`` (bearer token), ``POST /pagerduty`` (signed), ``GET /healthz``.

    ``pagerduty_secret=None`` turns the PagerDuty door off (every request there is refused with 401).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        token: str,
        pagerduty_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = DEFAULT_MAX_BODY,
        not_before: datetime | None = None,
        incident_keys: frozenset[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        request_timeout: float = 10.0,
    ) -> None:
        if not _is_loopback(host):
            raise UsageError(
                f"the webhook receiver listens on loopback only, not {host!r}",
                hint="to take PagerDuty's webhooks from the internet, put a tunnel or proxy before 127.0.0.1",
            )
        if not token:
            raise UsageError(
                "the webhook receiver needs a bearer token",
                hint=f"export {TOKEN_ENV}=<a long random string>, or let `drill monitoring up` make one",
            )
        self.sink = sink
        self._token = token
        self._pd_secret = pagerduty_secret or None
        self.max_body = max_body
        self.clock = clock
        self.alerts = AlertTracker(not_before=None if not_before is None else utc(not_before))
        self.pagerduty = PagerDutyTracker(incident_keys=incident_keys)
        self.stats = WebhookStats()
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._timeout = request_timeout
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> WebhookServer:
        if self._httpd is not None:
            return self
        handler = _handler_for(self)
        try:
            httpd = _QuietServer((self._host, self._port), handler)
        except OSError as e:
            raise UsageError(
                f"cannot listen on {self._host}:{self._port} for webhooks: {e.strerror}",
                hint="another drill or process holds the port; `drill monitoring status` shows drills' ports",
            ) from e
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="drills-webhooks", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = None
            self._thread = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("webhook server not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    @property
    def alertmanager_url(self) -> str:
        return self.url + ALERTMANAGER_PATH

    @property
    def pagerduty_url(self) -> str:
        return self.url + PAGERDUTY_PATH

    def expect_incident(self, incident_key: str) -> None:
        """Also accept PagerDuty events about the incident paged with this ``dedup_key``."""
        with self._lock:
            keys = self.pagerduty.incident_keys or frozenset()
            self.pagerduty.incident_keys = keys | {incident_key}

    # -- handling (called from the request threads) --

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        """Check and ingest one request whose body was read; returns the status, raises WebhookError."""
        route = path.split("?", 1)[0].rstrip("/") or "/"
        if route == ALERTMANAGER_PATH:
            if not bearer_ok(headers.get("authorization"), self._token):
                raise WebhookError("missing or wrong bearer token", status=401)
            note = _validated(AmNotification, strict_json(body), "Alertmanager webhook")
            with self._lock:
                events, updates = self.alerts.plan(note, self.clock.now())
                self._deliver(events)
                self.alerts.commit(updates)
            return 200
        if route == PAGERDUTY_PATH:
            if self._pd_secret is None:
                raise WebhookError(
                    f"PagerDuty webhooks are off: {PAGERDUTY_SECRET_ENV} is not set", status=401
                )
            if not pagerduty_signature_ok(headers.get("x-pagerduty-signature"), body, self._pd_secret):
                raise WebhookError("missing or wrong X-PagerDuty-Signature", status=401)
            hook = _validated(PdWebhook, strict_json(body), "PagerDuty v3 webhook")
            with self._lock:
                self._deliver(self.pagerduty.plan(hook))
                self.pagerduty.commit(hook)
            return 200
        raise WebhookError(f"nothing at {route[:60]}", status=404)

    def _deliver(self, events: list[Event]) -> None:
        # One call for the whole notification: the journal writes it as one locked append.
        if events:
            self.sink(events)
            self.stats.events += len(events)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that hangs up mid-request (after a 413, a timeout) is its problem, not a crash of ours;
        # the default prints a traceback to stderr.
        return


def _handler_for(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = server._timeout  # a sender that stops mid-body does not hold a thread forever
        server_version = "drills-webhooks"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            # Never log requests: the first line and headers may carry tokens.
            return

        def _answer(self, status: int, message: str) -> None:
            payload = json.dumps({"status": status, "message": message}).encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="drills"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)

        def _refuse(self, e: WebhookError) -> None:
            with server._lock:
                server.stats.refused[e.status] = server.stats.refused.get(e.status, 0) + 1
            self._answer(e.status, e.message)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == HEALTH_PATH:
                self._answer(200, "ok")
            else:
                self._refuse(WebhookError("not found", status=404))

        def do_POST(self) -> None:
            try:
                body = self._read_body()
                status = server.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            except WebhookError as e:
                self._refuse(e)
                return
            except DrillError as e:
                # The sink (journal) failed: 500, so Alertmanager / PagerDuty retry later.
                self._answer(500, f"drills could not record it: {e.message}")
                return
            with server._lock:
                server.stats.accepted += 1
            self._answer(status, "recorded")

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding"):
                raise WebhookError("send a Content-Length, not a chunked body", status=411)
            raw = self.headers.get("Content-Length")
            if raw is None:
                raise WebhookError("a Content-Length is required", status=411)
            try:
                length = int(raw)
            except ValueError:
                raise WebhookError("the Content-Length is not a number", status=400) from None
            if length < 0:
                raise WebhookError("the Content-Length is negative", status=400)
            if length > server.max_body:
                raise WebhookError(f"the body is larger than {server.max_body} bytes", status=413)
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                raise WebhookError("the body must be application/json", status=415)
            body = self.rfile.read(length)
            if len(body) != length:
                raise WebhookError("the body is shorter than its Content-Length", status=400)
            return body

        def do_PUT(self) -> None:
            self._refuse(WebhookError("use POST", status=405))

        def do_DELETE(self) -> None:
            self.do_PUT()

        def do_PATCH(self) -> None:
            self.do_PUT()

    return Handler


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)
