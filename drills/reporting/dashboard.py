"""The live drill dashboard: phase, clocks, SLA budgets, health, who did what, hints, the latest events.

Everything shown is derived from the journal and the timer's live view at an explicit ``now``, through one
pure function, :func:`render_dashboard`. The runner redraws it a few times a second inside ``rich.live``;
``drill status`` prints it once; a game master's second screen (``drill observe``) follows the journal of a
drill running elsewhere and draws the same thing read-only. Tests render it into a string at a fixed width
and compare it with a golden file.

It never shows what the drill measures the responder on: the scenario's true severity, the expected
mitigation and the text of hints not yet taken stay hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from drills.engine.timeline import Budget, LiveView, Phase, build, live_view, ordered
from drills.model.durations import format_duration
from drills.model.events import (
    ActionKind,
    ActionObserved,
    ActorKind,
    DrillStarted,
    Event,
    HealthChanged,
    HintUsed,
)
from drills.model.policy import SlaTargets
from drills.reporting.impact_panel import impact_panel
from drills.reporting.view import describe

PHASE_STYLE = {
    Phase.NOT_STARTED: "dim",
    Phase.DETECT: "bold red",
    Phase.TRIAGE: "bold yellow",
    Phase.MITIGATE: "bold magenta",
    Phase.RESOLVE: "bold cyan",
    Phase.POSTMORTEM: "bold green",
    Phase.PAUSED: "bold blue",
}
WHO = {
    ActorKind.RESPONDER: "responder",
    ActorKind.BOT: "bot",
    ActorKind.CONTROLLER: "controller",
    ActorKind.DRILLS: "drills",
    ActorKind.UNKNOWN: "unknown",
}
BAR_WIDTH = 16


def _offset(at: datetime, origin: datetime | None) -> str:
    if origin is None:
        return f"{at:%H:%M:%S}"
    delta = at - origin
    if delta < timedelta(0):
        return "-" + format_duration(-delta)
    return "+" + format_duration(delta)


def _bar(used: timedelta, target: timedelta) -> Text:
    share = 1.0 if target <= timedelta(0) else min(used / target, 1.0)
    filled = round(share * BAR_WIDTH)
    style = "red" if share >= 1.0 else "yellow" if share >= 0.75 else "green"
    return Text.assemble(("█" * filled, style), ("░" * (BAR_WIDTH - filled), "dim"))


def _short_actor(actor: str | None) -> str:
    """``drills:responder:alice`` -> ``alice``; ``drills:bot`` -> ``bot``: identities as people say them."""
    if not actor:
        return ""
    for prefix in ("drills:responder:", "drills:"):
        if actor.startswith(prefix):
            return actor[len(prefix) :]
    return actor


def _header(started: DrillStarted | None, view: LiveView, events: Sequence[Event]) -> Table:
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(justify="right", no_wrap=True)
    title = Text()
    if started is not None:
        title.append(started.scenario_title, style="bold")
        title.append(f"  ({started.service} in {started.namespace})", style="dim")
    phase = Text(view.phase.value, style=PHASE_STYLE.get(view.phase, "bold"))
    grid.add_row(title, Text.assemble(("phase ", "dim"), phase))
    facts = Text(style="dim")
    if started is not None:
        facts.append(f"drill {started.drill_id} · {started.mode.value}")
        if started.trainee:
            facts.append(f" · trainee {started.trainee}")
    grid.add_row(facts, Text("PAUSED", style="bold blue") if view.paused else Text(""))
    clock = Text.assemble(
        ("elapsed ", "dim"),
        (format_duration(view.elapsed), "bold"),
        ("   active ", "dim"),
        (format_duration(view.elapsed_active), "bold"),
    )
    if started is not None and started.budget_seconds is not None and view.elapsed_active is not None:
        left = timedelta(seconds=started.budget_seconds) - view.elapsed_active
        clock.append("   time budget left ", style="dim")
        clock.append(
            format_duration(max(left, timedelta(0))), style="bold red" if left.total_seconds() < 60 else ""
        )
    health = Text("health ", style="dim")
    last = next((e for e in reversed(events) if isinstance(e, HealthChanged)), None)
    if view.healthy is None:
        health.append("unknown", style="dim")
    elif view.healthy:
        health.append("HEALTHY", style="bold green")
    else:
        health.append("UNHEALTHY", style="bold red")
    if last is not None and last.reason:
        health.append(f"  {last.reason}", style="dim")
    grid.add_row(clock, Text(""))
    grid.add_row(health, Text(""))
    return grid


def _budgets(budgets: Sequence[Budget], declared: bool) -> RenderableType:
    if not budgets:
        return _empty("SLA budgets", "no SLA clock is running")
    table = Table(
        title="SLA budgets"
        + ("" if declared else " (severity-specific ones start when a severity is declared)"),
        title_justify="left",
        title_style="bold",
        expand=True,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("check", no_wrap=True)
    table.add_column("target", justify="right")
    table.add_column("used", justify="right")
    table.add_column("left", justify="right")
    table.add_column("", no_wrap=True)
    for b in budgets:
        left = (
            Text("BREACHED " + format_duration(-b.left), style="bold red")
            if b.breached
            else Text(format_duration(b.left), style="yellow" if b.left <= b.target / 4 else "")
        )
        table.add_row(
            b.check_id, format_duration(b.target), format_duration(b.used), left, _bar(b.used, b.target)
        )
    return table


def _empty(title: str, words: str) -> Text:
    return Text.assemble((title + "\n", "bold"), (words, "dim"))


def _actions(actions: Sequence[ActionObserved], origin: datetime | None, limit: int) -> RenderableType:
    shown = [a for a in actions if a.kind != ActionKind.OTHER][-limit:]
    if not shown:
        return _empty("Observed actions", "nothing changed in the cluster yet")
    table = Table(
        title="Observed actions",
        title_justify="left",
        title_style="bold",
        expand=True,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("when", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("object", overflow="fold")
    for a in shown:
        person = a.actor_kind in (ActorKind.RESPONDER, ActorKind.BOT)
        who = _short_actor(a.actor) if person and a.actor else WHO[a.actor_kind]
        style = "bold" if person else "dim"
        what = a.kind.value.replace("_", " ") + (" !" if a.destructive else "")
        table.add_row(_offset(a.at, origin), Text(who, style=style), what, Text(a.object))
    return table


def _hints(
    started: DrillStarted | None, used: dict[int, HintUsed], elapsed: timedelta | None
) -> RenderableType:
    hints = started.hints if started is not None else []
    if not hints:
        return _empty("Hints", "none in this scenario")
    table = Table(
        title="Hints (`drill hint`)",
        title_justify="left",
        title_style="bold",
        expand=True,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("#", justify="right")
    table.add_column("status", no_wrap=True)
    table.add_column("cost", justify="right")
    for i, h in enumerate(hints):
        if i in used:
            status = Text("used", style="dim")
        elif elapsed is not None and elapsed.total_seconds() >= h.after_seconds:
            status = Text("available now", style="bold green")
        else:
            wait = timedelta(seconds=h.after_seconds) - (elapsed or timedelta(0))
            status = Text(f"in {format_duration(wait)}", style="dim")
        table.add_row(str(i + 1), status, f"-{h.cost}")
    return table


def _recent(events: Sequence[Event], origin: datetime | None, limit: int) -> Table:
    table = Table(
        title="Journal",
        title_justify="left",
        title_style="bold",
        expand=True,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("when", no_wrap=True)
    table.add_column("source", no_wrap=True, max_width=22, overflow="ellipsis")
    table.add_column("event", overflow="fold")
    described = [(e, d) for e in events if (d := describe(e)) is not None]
    for e, (_, _, text, key) in described[-limit:]:
        who = _short_actor(e.actor) or e.source.value
        table.add_row(_offset(e.at, origin), Text(who), Text(text, style="bold" if key else ""))
    return table


def render_dashboard(
    events: Sequence[Event],
    now: datetime,
    targets: SlaTargets,
    width: int = 100,
    *,
    actions: int = 6,
    recent: int = 8,
    title: str = "drills",
) -> RenderableType:
    """The whole dashboard for the journal ``events`` at ``now`` (deterministic: no clock, no I/O)."""
    evs = ordered(e for e in events if e.at <= now)
    view = live_view(evs, now, targets)
    tl = build(evs, now=now)
    started = tl.started
    origin = tl.t0 or (started.at if started else None)
    used = {e.index: e for e in evs if isinstance(e, HintUsed)}
    observed = [e for e in evs if isinstance(e, ActionObserved)]
    narrow = width < 90
    header = _header(started, view, evs)
    budgets = _budgets(view.budgets, view.severity is not None)
    lower = Table.grid(padding=(0, 2), expand=True)
    if narrow:
        lower.add_column()
        lower.add_row(_actions(observed, origin, actions))
        lower.add_row(_hints(started, used, view.elapsed_active))
    else:
        lower.add_column(ratio=3)
        lower.add_column(ratio=1)
        lower.add_row(_actions(observed, origin, actions), _hints(started, used, view.elapsed_active))
    users = impact_panel(evs, now)
    parts: list[RenderableType] = [header, Text(""), budgets, Text("")]
    if users is not None:
        parts += [users, Text("")]
    body = Group(*parts, lower, Text(""), _recent(evs, origin, recent))
    return Panel(
        body, title=f"[bold]{title}[/]", border_style=PHASE_STYLE.get(view.phase, "white"), width=width
    )


__all__ = ["render_dashboard"]
