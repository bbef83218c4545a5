"""The monthly chaos test at run time: is it due, which scenario (seeded, logged), run it, remember it.

Cron (or a CronJob) wakes ``drill schedule run`` on the schedule's weekday. This module decides with the
pure picker whether this month's test is due now, draws a fresh seed, records the pick in the history
*before* the drill starts (so a crash still leaves the pick, and its seed, on record) and appends a JSON line
to ``state_dir()/monthly.log``, runs the drill in chaos-test mode, and marks the pick ``ran``. Its report
lands in the reports directory like any drill's, so the monthly report counts it (as a drill, apart from
real incidents).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drills.adapters.store.history import History
from drills.adapters.store.paths import state_dir
from drills.engine.schedule import (
    MonthlyPick,
    clearance,
    is_due,
    month_of,
    month_text,
    monthly_slot,
    pick_monthly,
)
from drills.errors import UsageError
from drills.model.scenario import Scenario
from drills.model.schedule import MonthlySchedule
from drills.timing import SYSTEM_CLOCK, Clock

MONTHLY_LOG = "monthly.log"


def zone(schedule: MonthlySchedule) -> tzinfo:
    try:
        return ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {schedule.timezone!r} in the schedule",
            hint="use an IANA name such as UTC, Europe/Paris or America/New_York",
        ) from None


def new_seed() -> int:
    return secrets.randbits(63)


@dataclass(frozen=True)
class Tick:
    ran: bool
    why: str
    pick: MonthlyPick | None = None
    drill_id: str | None = None
    passed: bool | None = None


def log_pick(pick: MonthlyPick, *, event: str, drill_id: str | None = None, path: Path | None = None) -> Path:
    """Append the pick (with its seed, for replay) to the monthly log: one JSON object a line."""
    path = path or state_dir() / MONTHLY_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"event": event, **pick.as_dict(), "drill_id": drill_id}
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    return path


RunTest = Callable[[Scenario, MonthlyPick], tuple[str | None, bool | None]]


def monthly_tick(
    schedule: MonthlySchedule,
    scenarios: Sequence[Scenario],
    *,
    history: History,
    run: RunTest,
    clock: Clock = SYSTEM_CLOCK,
    seed: int | None = None,
    force: bool = False,
) -> Tick:
    """Run this month's test if it is due at ``clock.now()`` (or ``force``); otherwise say why not."""
    tz = zone(schedule)
    now = clock.now()
    year, month = month_of(now, tz)
    key = month_text(year, month)
    duration = clearance(schedule, scenarios)
    slot = monthly_slot(year, month, schedule, tz, duration)
    if slot.at is None:
        days = "; ".join(f"{d}: {why}" for d, why in slot.skipped)
        return Tick(False, f"no day in {key} clears the blackouts ({days}): no test this month")
    if not force:
        due, why = is_due(now, slot.at, schedule, tz, duration, already_ran=history.ran_in(key))
        if not due:
            return Tick(False, why)
    pick = pick_monthly(
        scenarios,
        schedule,
        year=year,
        month=month,
        seed=new_seed() if seed is None else seed,
        tz=tz,
        last_scenario=history.last_run_scenario(key),
    )
    pick_id = history.record_pick(pick)
    log_pick(pick, event="picked")
    by_id = {s.id: s for s in scenarios}
    try:
        drill_id, passed = run(by_id[pick.scenario_id], pick)
    except BaseException:
        history.update_pick(pick_id, status="failed")
        log_pick(pick, event="failed")
        raise
    history.update_pick(pick_id, status="ran", drill_id=drill_id)
    log_pick(pick, event="ran", drill_id=drill_id)
    return Tick(True, "ran", pick, drill_id, passed)


__all__ = ["MONTHLY_LOG", "RunTest", "Tick", "log_pick", "monthly_tick", "new_seed", "zone"]
