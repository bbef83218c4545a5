"""Paging the responder through the team's real tools: PagerDuty (Events API v2) and a Slack incoming webhook.

The seed pages P0s through PagerDuty and posts the initial alert and status updates in Slack. A drill that
only rings the terminal bell rehearses neither the tool nor the habit of acknowledging in it, so when a team
configures them, drills sends the page as a PagerDuty ``trigger`` (the acknowledgement comes back through
the webhook receiver, drills.adapters.inbound.webhooks) and posts the seed's messages to Slack.

Every page and message says it is a drill, in its first words: a real on-call engineer must never mistake
a rehearsal for an incident.

Secrets come only from the environment (``DRILLS_PAGERDUTY_ROUTING_KEY``, ``DRILLS_SLACK_WEBHOOK_URL``, which
is itself a secret) and never appear in an error, a log, a journal event or a report. The endpoint can be
moved (``DRILLS_PAGERDUTY_EVENTS_URL``) so tests point it at a local receiver on 127.0.0.1; drills' own
tests never call the real services.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from drills.engine import comms
from drills.errors import MonitoringError
from drills.model.events import Event
from drills.model.severity import Severity
from drills.timing import SYSTEM_CLOCK, Clock

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

ROUTING_KEY_ENV = "DRILLS_PAGERDUTY_ROUTING_KEY"
EVENTS_URL_ENV = "DRILLS_PAGERDUTY_EVENTS_URL"
SLACK_URL_ENV = "DRILLS_SLACK_WEBHOOK_URL"

DRILL_MARK = "[DRILL]"

#: PagerDuty's four severities, from the seed's P0-P3.
PAGERDUTY_SEVERITY: dict[Severity, Literal["critical", "error", "warning", "info"]] = {
    Severity.P0: "critical",
    Severity.P1: "error",
    Severity.P2: "warning",
    Severity.P3: "info",
}

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _post_json(url: str, body: Mapping[str, Any], *, timeout: float, what: str) -> tuple[int, bytes]:
    """POST JSON; returns (status, body) for any HTTP answer, raises MonitoringError when nothing answers.

    ``what`` names the service in messages: the URL is not repeated, since Slack's URL is itself a secret.
    """
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310  (http(s) URLs only, checked by the callers)
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "drills"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read(65536)
    except urllib.error.HTTPError as e:
        return int(e.code), e.read(65536) if e.fp is not None else b""
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise MonitoringError(
            f"{what} did not answer ({type(reason).__name__})",
            hint="check the network and the endpoint setting; the journal keeps the page either way",
        ) from None


def _check_url(url: str, env_name: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise MonitoringError(
            f"{env_name} must be an http(s) URL", hint=f"set {env_name} to the URL the service gave you"
        )
    return url


class PagerDutyPager:
    """Sends PagerDuty Events API v2 events (``trigger``, ``resolve``) for a drill's incident."""

    channel = "pagerduty"

    def __init__(
        self,
        routing_key: str,
        *,
        url: str = PAGERDUTY_EVENTS_URL,
        timeout: float = 10.0,
        attempts: int = 3,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not routing_key.strip():
            raise MonitoringError(
                f"{ROUTING_KEY_ENV} is empty", hint="set it to the integration's routing key"
            )
        self._routing_key = routing_key.strip()
        self.url = _check_url(url, EVENTS_URL_ENV)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.clock = clock

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> PagerDutyPager | None:
        """The pager configured by the environment, or None when no routing key is set."""
        env = os.environ if env is None else env
        key = env.get(ROUTING_KEY_ENV, "").strip()
        if not key:
            return None
        return cls(key, url=env.get(EVENTS_URL_ENV, "").strip() or PAGERDUTY_EVENTS_URL, clock=clock)

    def __repr__(self) -> str:  # never show the routing key
        return f"PagerDutyPager(url={self.url!r})"

    def trigger(
        self,
        *,
        dedup_key: str,
        summary: str,
        source: str,
        at: datetime,
        severity: Severity | None = None,
        component: str | None = None,
        group: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Open (or add to) the incident ``dedup_key`` (the drill id, which PagerDuty's webhooks carry back
        as the incident's ``incident_key``); returns the dedup key PagerDuty confirmed.

        The summary is marked as a drill; ``severity`` is the alert's (never the scenario's truth, which the
        responder must judge), critical when unknown.
        """
        text = summary if summary.startswith(DRILL_MARK) else f"{DRILL_MARK} {summary}"
        payload: dict[str, Any] = {
            "summary": text[:1024],
            "source": source,
            "severity": PAGERDUTY_SEVERITY[severity] if severity else "critical",
            "timestamp": at.isoformat(),
            "class": "drill",
            "custom_details": {"is_drill": True, **dict(details or {})},
        }
        if component:
            payload["component"] = component
        if group:
            payload["group"] = group
        answer = self._send({"event_action": "trigger", "dedup_key": dedup_key, "payload": payload})
        return str(answer.get("dedup_key") or dedup_key)

    def resolve(self, dedup_key: str) -> None:
        """Close the drill's incident (at the drill's end, so no page is left open)."""
        self._send({"event_action": "resolve", "dedup_key": dedup_key})

    def _send(self, event: dict[str, Any]) -> dict[str, Any]:
        body = {"routing_key": self._routing_key, "client": "drills", **event}
        status, raw = 0, b""
        for attempt in range(self.attempts):
            status, raw = _post_json(self.url, body, timeout=self.timeout, what="PagerDuty's Events API")
            if status not in _RETRY_STATUSES:
                break
            if attempt + 1 < self.attempts:
                self.clock.sleep(0.5 * 2**attempt)  # PagerDuty asks for back-off on 429 and 5xx
        try:
            answer = json.loads(raw.decode("utf-8", "replace") or "{}")
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status != 202:
            errors = answer.get("errors") or answer.get("message") or ""
            text = "; ".join(str(x) for x in errors) if isinstance(errors, list) else str(errors)
            raise MonitoringError(
                f"PagerDuty refused the {event['event_action']} event (HTTP {status}): {text[:200]}".rstrip(
                    ": "
                ),
                hint=f"check {ROUTING_KEY_ENV} (an Events API v2 integration key of the service to page)",
            )
        return answer


class SlackNotifier:
    """Posts the seed's messages to a Slack incoming webhook."""

    channel = "slack"

    def __init__(self, webhook_url: str, *, timeout: float = 10.0) -> None:
        self._url = _check_url(webhook_url.strip(), SLACK_URL_ENV)
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackNotifier | None:
        env = os.environ if env is None else env
        url = env.get(SLACK_URL_ENV, "").strip()
        return cls(url) if url else None

    def __repr__(self) -> str:  # the URL is the secret
        return "SlackNotifier(url=[redacted])"

    def post(self, text: str) -> None:
        if not text.startswith(DRILL_MARK):
            text = f"{DRILL_MARK} {text}"
        status, raw = _post_json(self._url, {"text": text}, timeout=self.timeout, what="the Slack webhook")
        if status != 200:
            raise MonitoringError(
                f"Slack refused the message (HTTP {status}): {raw[:200].decode('utf-8', 'replace')}",
                hint=f"check {SLACK_URL_ENV} (an incoming webhook URL of the drill channel)",
            )

    def post_initial_alert(self, events: Sequence[Event], now: datetime) -> str:
        """The seed's initial alert, prefilled from the journal so far; returns the text posted."""
        text = comms.render("initial_alert", comms.drill_context(events, now))
        self.post(text)
        return text

    def post_comms(self, template: str, text: str) -> None:
        """A message the responder wrote (``drill comms status_update --file ...``), as they wrote it."""
        comms.get_template(template)  # unknown template names are a usage error, not a silent post
        self.post(text)
