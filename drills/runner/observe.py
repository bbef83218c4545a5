"""The game master's second screen: follow a running drill's journal, read-only, with the live dashboard.

The game master wants to see what the responder sees (and a little more: the scorecard-to-be's clocks)
without touching the drill. This follows the journal file (only complete lines, never a lock, never a
write), redraws the same dashboard the runner draws from the events so far, and stops when the drill ends.
It can record, in the trainee history (not the journal), that a person observed the drill: observing is
the first rung of the training ladder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from drills.adapters.store.history import History, HistoryError
from drills.adapters.store.journal import Follower
from drills.engine.ladder import HeldRole
from drills.engine.scoring import scenario_overrides
from drills.errors import JournalError
from drills.model.events import DrillEnded, DrillStarted, Event
from drills.model.policy import Policy, SlaTargets
from drills.reporting.dashboard import render_dashboard
from drills.runner.respond import find_drill
from drills.timing import SYSTEM_CLOCK, Clock


def targets_for(events: list[Event], policy: Policy | None = None) -> SlaTargets:
    started = next((e for e in events if isinstance(e, DrillStarted)), None)
    policy = policy or Policy()
    if started is None:
        return policy.targets()
    try:
        return policy.targets(scenario_overrides(started))
    except JournalError:
        return policy.targets()


def frame(events: list[Event], now: datetime, width: int, *, drill_id: str, ended: bool) -> RenderableType:
    """One frame of the observer: the dashboard plus a line saying this screen is read-only."""
    board = render_dashboard(events, now, targets_for(events), width, title=f"observing {drill_id}")
    status = "drill ended" if ended else "following the journal; read-only (Ctrl-C to stop watching)"
    # the line first: a dashboard taller than the screen must not push "read-only" out of sight
    return Group(Text(f" game master view · {status}", style="dim"), board)


def observe(
    drill_id: str | None = None,
    *,
    console: Console | None = None,
    clock: Clock = SYSTEM_CLOCK,
    refresh: float = 0.5,
    once: bool = False,
    observer: str | None = None,
    history: History | None = None,
    journal: Path | None = None,
    until: Callable[[], bool] | None = None,
) -> str:
    """Follow the drill (the active one unless ``drill_id``) until it ends; returns its id.

    ``once`` draws one frame and returns (for scripts and tests). ``observer`` records that person as an
    observer of this drill in the history when the drill ends (or when they stop watching).
    """
    console = console or Console()
    if journal is None:
        ref = find_drill(drill_id)
        drill_id, journal = ref.drill_id, ref.journal_path
    assert drill_id is not None
    follower = Follower(journal)
    events: list[Event] = list(follower.poll())
    ended = any(isinstance(e, DrillEnded) for e in events)

    def draw() -> RenderableType:
        return frame(events, clock.now(), console.width, drill_id=drill_id, ended=ended)

    try:
        if once or ended:
            console.print(draw())
            return drill_id
        with Live(
            draw(), console=console, refresh_per_second=max(1, int(1 / max(refresh, 0.05))), transient=False
        ) as live:
            while not ended and not (until and until()):
                clock.sleep(refresh)
                fresh = follower.poll()
                if fresh:
                    events.extend(fresh)
                    ended = any(isinstance(e, DrillEnded) for e in fresh)
                live.update(draw())
    except KeyboardInterrupt:
        pass
    finally:
        if observer:
            _record(history, drill_id, observer, clock)
    return drill_id


def _record(history: History | None, drill_id: str, person: str, clock: Clock) -> None:
    try:
        h = history or History()
        h.record_role(drill_id, person, HeldRole.OBSERVER, clock.now())
        if history is None:
            h.close()
    except HistoryError:
        pass  # the second screen still worked; losing the ladder credit is not worth a crash


__all__ = ["frame", "observe", "targets_for"]
