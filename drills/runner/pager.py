"""Paging the responder: an interface with a registry, so paging tools plug in without touching the runner.

When the drill's first alert fires (or the responder is otherwise to be called), the runner sends a
:class:`Page` through every configured pager and journals one ``page.sent`` per pager that delivered it. The
terminal pager (a bell and a rich alert panel) is built in, with the detection chain's PagerDuty and Slack
pagers; all are found by name in :data:`PAGERS` (``drills.pagers`` entry points, or :func:`register_pager`).
A pager that fails raises a ``DrillError``: the runner notes it in the journal and carries on, because a
drill must not stop over a paging tool (and a page that never arrived is exactly what the drill's
acknowledgement clock should show).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from drills.model.durations import format_duration
from drills.model.severity import Severity
from drills.registry import Registry, callable_factory


@dataclass(frozen=True)
class Page:
    """What a page says. ``severity`` is the alert's suggested severity, never the scenario's truth."""

    drill_id: str
    incident_id: str
    title: str
    service: str
    namespace: str
    summary: str
    at: datetime
    alert_name: str | None = None
    to: str | None = None
    severity: Severity | None = None
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PageReceipt:
    """What the pager did: the channel name for the journal, who it reached, and a reference (dedup key)."""

    channel: str
    to: str | None = None
    ref: str | None = None


@runtime_checkable
class Pager(Protocol):
    name: str

    def page(self, page: Page) -> PageReceipt:
        """Deliver the page; raise a DrillError when it could not be delivered."""
        ...


PagerFactory = Callable[..., Pager]

#: Pagers by name: the built-ins (``terminal``, ``memory``, ``pagerduty``, ``slack``) and plugins, from the
#: ``drills.pagers`` entry points; PagerDuty and Slack are imported only when asked for.
PAGERS: Registry[PagerFactory] = Registry("pager", "drills.pagers", callable_factory)


def register_pager(name: str, factory: PagerFactory, *, replace: bool = False) -> None:
    """Make ``name`` usable in ``DetectionOptions(pagers=[...])`` and ``drill run --pager``."""
    PAGERS.register(name, factory, replace=replace)


def available_pagers() -> list[str]:
    return PAGERS.names()


def make_pager(name: str, **options: Any) -> Pager:
    return PAGERS.get(name)(**options)


class TerminalPager:
    """Rings the terminal bell and shows the alert as a red panel on the runner's console."""

    name = "terminal"

    def __init__(self, console: Console | None = None, *, bell: bool = True, **_: Any) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.bell = bell

    def page(self, page: Page) -> PageReceipt:
        body = Text()
        body.append(f"{page.title}\n", style="bold")
        body.append(f"service {page.service} (namespace {page.namespace})\n")
        if page.alert_name:
            body.append(f"alert {page.alert_name}\n")
        body.append(f"{page.summary}\n")
        body.append(f"{page.incident_id}   acknowledge with: ", style="dim")
        body.append("drill ack", style="bold")
        panel = Panel(body, title="PAGE", border_style="bold red", expand=False)
        if self.bell and self.console.is_terminal:
            self.console.bell()
        self.console.print(panel)
        return PageReceipt(channel=self.name, to=page.to)


class RecordingPager:
    """Keeps pages in memory (tests, and the bot's own pager when nobody is to be disturbed)."""

    name = "memory"

    def __init__(self, **_: Any) -> None:
        self.pages: list[Page] = []

    def page(self, page: Page) -> PageReceipt:
        self.pages.append(page)
        return PageReceipt(channel=self.name, to=page.to)


def page_summary(alert_name: str | None, since: datetime | None, now: datetime) -> str:
    """One line for the page: which alert and for how long it has been firing."""
    what = f"{alert_name} firing" if alert_name else "service unhealthy"
    if since is None:
        return what
    return f"{what} for {format_duration(now - since)}"


__all__ = [
    "PAGERS",
    "Page",
    "PageReceipt",
    "Pager",
    "PagerFactory",
    "RecordingPager",
    "TerminalPager",
    "available_pagers",
    "make_pager",
    "page_summary",
    "register_pager",
]
