"""When a drill is over, decided from its journal: a pure function, so each way of ending is tested in
milliseconds and the runner's loop only reads, asks and sleeps.

A drill ends, in this order of precedence:

1. when the journal already holds ``drill.ended`` (another writer, e.g. ``drill abort`` finishing it);
2. when a game master asked for an abort (the request file the runner reads and passes in);
3. when the active time since the fault (pauses not counted) reaches the scenario's time budget;
4. when the incident was resolved and the responder is done, or the wrap-up time (for the postmortem
   notes and the last comms) has passed since the resolution;
5. in a chaos test of a self-healing scenario, when health came back without anyone acting.

Nothing here reads a clock: ``now`` is a parameter, like every instant the engine judges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from drills.engine.timeline import build
from drills.model.events import Event, Mode, Outcome
from drills.model.scenario import Scenario


@dataclass(frozen=True)
class DrillLimits:
    """What bounds one drill: its time budget, the wrap-up after resolution, and whether self-healing ends it."""

    time_budget: timedelta
    wrap_up: timedelta
    #: Chaos tests of self-healing scenarios end when health comes back on its own.
    ends_on_self_healing: bool = False

    @classmethod
    def of(cls, scenario: Scenario, mode: Mode, wrap_up: timedelta) -> DrillLimits:
        return cls(
            time_budget=scenario.time_budget,
            wrap_up=wrap_up,
            ends_on_self_healing=mode == Mode.CHAOS_TEST and scenario.self_healing,
        )


@dataclass(frozen=True)
class AbortRequest:
    """A game master's ``drill abort``: who asked and why."""

    by: str = "someone"
    reason: str = "aborted"


@dataclass(frozen=True)
class Ending:
    outcome: Outcome
    reason: str


def drill_end(
    events: Iterable[Event],
    now: datetime,
    limits: DrillLimits,
    *,
    abort: AbortRequest | None = None,
    responder_done: bool = False,
) -> Ending | None:
    """The drill's ending at ``now``, or None while it goes on.

    ``responder_done``: a scripted responder has played all its steps (its drill need not wait out the
    wrap-up after the resolution).
    """
    tl = build(events, now=now)
    if tl.ended is not None:
        return Ending(tl.ended.outcome, tl.ended.reason or "ended by another writer")
    if abort is not None:
        return Ending(Outcome.ABORTED, f"{abort.reason} (by {abort.by})")
    if tl.t0 is not None and tl.active(tl.t0, now) >= limits.time_budget:
        return Ending(Outcome.TIMED_OUT, f"time budget of {limits.time_budget} used up")
    resolved = tl.resolved if tl.status == "resolved" else None
    if resolved is not None and (responder_done or now - resolved.at >= limits.wrap_up):
        return Ending(Outcome.RESOLVED, f"resolved by {resolved.actor or resolved.source.value}")
    if (
        limits.ends_on_self_healing
        and tl.mitigated is not None
        and tl.mitigated_by == "system"
        and tl.healthy_now
    ):
        return Ending(Outcome.SELF_HEALED, "health came back without anyone acting")
    return None


__all__ = ["AbortRequest", "DrillLimits", "Ending", "drill_end"]
