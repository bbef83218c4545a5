"""The real detection and paging chain, plugged into the runner's seams (detector and pager registries).

- ``monitoring`` detector: the drill is detected by Prometheus and Alertmanager, not by drills' own probe.
  Before the fault it makes sure the cluster's monitoring stack runs with the scenario's rules (its
  ``detection.alert_for`` re-renders them), and opens the webhook receiver where Alertmanager's
  notifications become ``alert.fired`` / ``alert.resolved`` events with the alert's own ``startsAt``. If the
  expected alert never fires, it says so in the journal: the scorer then reports a detection gap (no
  ``alert.fired`` at all) and the responder may still detect by hand (``drill detect``).
- ``pagerduty`` pager: the page is a PagerDuty Events v2 ``trigger`` whose ``dedup_key`` is the drill id;
  PagerDuty's v3 webhooks about that incident (acknowledged, resolved, escalated) come back through the same
  receiver. At the drill's end the incident is resolved so no page is left open.
- ``slack`` pager: the seed's initial alert goes to the Slack incoming webhook, and every message the
  responders post with ``drill comms`` follows it there.

Importing this module registers them (``drill run --detector monitoring --pager pagerduty``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.adapters.inbound.paging import PagerDutyPager, SlackNotifier
from drills.adapters.inbound.webhooks import PAGERDUTY_SECRET_ENV, WebhookServer
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.store.journal import JOURNAL_FILE, Follower
from drills.adapters.store.paths import drill_dir
from drills.engine import comms
from drills.errors import DrillError, MonitoringError, UsageError
from drills.model.events import AlertFired, CommsPosted, Event, Note, Source
from drills.runner.detector import DetectionContext
from drills.runner.pager import Page, PageReceipt
from drills.timing import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

ACTOR = "drills-monitoring"

# ---- one receiver per drill, shared by the detector and the PagerDuty pager ---------------------------


@dataclass
class _Shared:
    server: WebhookServer
    users: int = 0


_RECEIVERS: dict[str, _Shared] = {}
_RECEIVERS_LOCK = threading.Lock()


def _journal_sink(journal: Any) -> Any:
    append_many = getattr(journal, "append_many", None)
    if append_many is not None:
        return append_many
    return lambda events: [journal.append(e) for e in events]


def acquire_receiver(
    drill_id: str,
    journal: Any,
    *,
    port: int,
    token: str,
    clock: Clock,
    not_before: datetime | None,
    env: Mapping[str, str] | None = None,
) -> WebhookServer:
    """The drill's webhook receiver, started on first use; each acquire needs a :func:`release_receiver`."""
    env = os.environ if env is None else env
    with _RECEIVERS_LOCK:
        shared = _RECEIVERS.get(drill_id)
        if shared is None:
            server = WebhookServer(
                _journal_sink(journal),
                token=token,
                pagerduty_secret=env.get(PAGERDUTY_SECRET_ENV, "").strip() or None,
                port=port,
                not_before=not_before,
                # PagerDuty: only the incident this drill opened (its dedup_key is the drill id).
                incident_keys=frozenset({drill_id}),
                clock=clock,
            ).start()
            shared = _RECEIVERS[drill_id] = _Shared(server)
        shared.users += 1
        return shared.server


def receiver_for(drill_id: str) -> WebhookServer | None:
    with _RECEIVERS_LOCK:
        shared = _RECEIVERS.get(drill_id)
        return shared.server if shared else None


def release_receiver(drill_id: str) -> None:
    with _RECEIVERS_LOCK:
        shared = _RECEIVERS.get(drill_id)
        if shared is None:
            return
        shared.users -= 1
        if shared.users > 0:
            return
        del _RECEIVERS[drill_id]
    shared.server.stop()


# ---- the detector ----------------------------------------------------------------------------------------


@dataclass
class DetectionReport:
    """What the detector saw, for the runner's and the tests' benefit."""

    expected_alert: str | None
    rules: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    rule_missing: bool = False

    @property
    def gap(self) -> bool:
        if self.expected_alert:
            return self.expected_alert not in self.fired
        return not self.fired


class MonitoringDetector:
    """Detection by the real chain: Prometheus rules -> Alertmanager -> drills' webhook receiver."""

    name = "monitoring"

    def __init__(
        self,
        *,
        settings: monitoring.MonitoringSettings | None = None,
        rules: Mapping[str, Any] | None = None,
        state_metrics: str | None = None,
        progress: bool = False,
        env: Mapping[str, str] | None = None,
        **_: Any,
    ) -> None:
        self.settings = settings or monitoring.MonitoringSettings()
        self._rules_source = rules
        self.state_metrics = state_metrics
        self.progress = progress
        self.env = env
        self.stack: monitoring.MonitoringStack | None = None
        self.receiver: WebhookServer | None = None
        self.report: DetectionReport | None = None
        self._ctx: DetectionContext | None = None
        self._lock = threading.Lock()

    def prepare(self, ctx: DetectionContext) -> None:
        """Stack up with this scenario's rules and receiver open: call before the fault, so the alert's
        timing is not the stack's start-up. :meth:`start` calls it when the runner did not."""
        with self._lock:
            if self._ctx is not None:
                return
            if ctx.cluster is None:
                raise MonitoringError(
                    "the monitoring detector needs the drill's cluster",
                    hint="use a cluster drills started (`drill cluster up`), or --detector health-probe",
                )
            scenario = ctx.scenario
            rules = monitoring.rules_for_scenario(scenario, self.settings, rules=self._rules_source)
            names = monitoring.rule_names(rules)
            expected = scenario.detection.expected_alert
            self.report = DetectionReport(
                expected_alert=expected, rules=names, rule_missing=bool(expected and expected not in names)
            )
            stack = monitoring.start_monitoring(
                ctx.cluster,
                settings=self.settings,
                rules=rules,
                state_metrics=self.state_metrics,
                env=self.env,
                progress=self.progress,
            )
            # A running stack keeps its rules until told; this drill's may differ (alert_for, a rule gone).
            monitoring.reload_rules(stack, rules)
            self.stack = stack
            not_before = ctx.clock.now()
            self.receiver = acquire_receiver(
                ctx.drill_id,
                _Recording(ctx.journal, self),
                port=stack.webhook_port,
                token=stack.webhook_token(),
                clock=ctx.clock,
                not_before=not_before,
                env=self.env,
            )
            self._ctx = ctx
            if self.report.rule_missing:
                _note(
                    ctx,
                    f"detection: no alert rule named {expected!r} is loaded; unless another alert fires, "
                    "this drill will show a detection gap",
                )

    def start(self, ctx: DetectionContext) -> None:
        self.prepare(ctx)

    def observe(self, event: Event) -> None:
        # Detection comes from Alertmanager, not from the observer's health verdicts.
        return

    def _recorded(self, events: Sequence[Event]) -> None:
        report = self.report
        if report is None:
            return
        for e in events:
            if isinstance(e, AlertFired) and e.alert_name not in report.fired:
                report.fired.append(e.alert_name)

    def stop(self) -> None:
        with self._lock:
            ctx, self._ctx = self._ctx, None
            if ctx is None:
                return
            release_receiver(ctx.drill_id)
            self.receiver = None
            report = self.report
            if report is not None and report.gap:
                if report.expected_alert and report.fired:
                    text = (
                        f"detection gap: the expected alert {report.expected_alert} never fired "
                        f"(fired instead: {', '.join(report.fired)})"
                    )
                elif report.expected_alert:
                    text = f"detection gap: the expected alert {report.expected_alert} never fired"
                else:
                    text = "detection gap: no alert fired during the drill"
                _note(ctx, text)
        # The stack keeps running for the next drill; `drill cluster down` stops it.


class _Recording:
    """The journal, telling the detector which alerts it recorded."""

    def __init__(self, journal: Any, detector: MonitoringDetector) -> None:
        self._sink = _journal_sink(journal)
        self._detector = detector

    def append_many(self, events: Sequence[Event]) -> Any:
        written = self._sink(list(events))
        self._detector._recorded(events)
        return written


def _note(ctx: DetectionContext, text: str) -> None:
    try:
        ctx.journal.append(Note(at=ctx.clock.now(), source=Source.SYSTEM, actor=ACTOR, text=text))
    except DrillError as e:
        log.warning("could not journal %r: %s", text, e)


# ---- pagers ----------------------------------------------------------------------------------------------


class PagerDutyRunnerPager:
    """Pages through PagerDuty (Events API v2); acknowledgements return through the drill's receiver."""

    name = "pagerduty"

    def __init__(
        self, *, env: Mapping[str, str] | None = None, clock: Clock = SYSTEM_CLOCK, **_: Any
    ) -> None:
        pager = PagerDutyPager.from_env(env, clock=clock)
        if pager is None:
            raise UsageError(
                "the pagerduty pager needs DRILLS_PAGERDUTY_ROUTING_KEY",
                hint="export the Events API v2 integration key of the service to page",
            )
        self.pager = pager
        self.env = os.environ if env is None else env
        self.opened: list[str] = []

    def page(self, page: Page) -> PageReceipt:
        key = self.pager.trigger(
            dedup_key=page.drill_id,
            summary=f"{page.title}: {page.summary}",
            source=f"drills/{page.namespace}",
            at=page.at,
            severity=page.severity,
            component=page.service,
            group=page.namespace,
            details={"incident": page.incident_id, "alert": page.alert_name or "", "drill_id": page.drill_id},
        )
        self.opened.append(key)
        if receiver_for(page.drill_id) is None:
            log.warning(
                "PagerDuty acknowledgements of drill %s have no receiver: run it with --detector monitoring",
                page.drill_id,
            )
        return PageReceipt(channel=self.name, to=page.to, ref=key)

    def close(self) -> None:
        """Resolve what this pager opened: a drill leaves no PagerDuty incident behind."""
        for key in self.opened:
            try:
                self.pager.resolve(key)
            except DrillError as e:
                log.warning("could not resolve PagerDuty incident %s: %s", key, e)
        self.opened.clear()


class SlackRunnerPager:
    """Posts the seed's initial alert to Slack, then every ``drill comms`` message of the drill."""

    name = "slack"

    def __init__(self, *, env: Mapping[str, str] | None = None, poll_seconds: float = 0.5, **_: Any) -> None:
        notifier = SlackNotifier.from_env(env)
        if notifier is None:
            raise UsageError(
                "the slack pager needs DRILLS_SLACK_WEBHOOK_URL",
                hint="export the incoming webhook URL of the drill's channel",
            )
        self.notifier = notifier
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.posted: list[str] = []

    def page(self, page: Page) -> PageReceipt:
        text = comms.render(
            "initial_alert",
            {
                "service": page.service,
                "symptom": page.summary,
                "start_time": page.at,
                "incident_id": page.incident_id,
            },
        )
        self.notifier.post(text)
        self.posted.append(text)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._forward,
                args=(drill_dir(page.drill_id) / JOURNAL_FILE,),
                name="drills-slack",
                daemon=True,
            )
            self._thread.start()
        return PageReceipt(channel=self.name, to=page.to)

    def _forward(self, journal: Path) -> None:
        follower = Follower(journal)
        while not self._stop.is_set():
            try:
                for e in follower.poll():
                    if isinstance(e, CommsPosted) and e.text.strip():
                        self.notifier.post(e.text)
                        self.posted.append(e.text)
            except DrillError as e:
                log.warning("slack: %s", e)
            self._stop.wait(self.poll_seconds)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = [
    "DetectionReport",
    "MonitoringDetector",
    "PagerDutyRunnerPager",
    "SlackRunnerPager",
    "acquire_receiver",
    "receiver_for",
    "release_receiver",
]
