"""The monthly chaos test picker: which scenario, on which day, reproducibly and never in a blackout.

The seed schedules chaos tests on the first Tuesday of the month with unannounced, random scenarios. Random
must still be explainable afterwards, so every pick takes an explicit ``seed`` and returns it with everything
that shaped the choice (which scenarios qualified, which were left out and why, which days were skipped): the
same seed, scenarios, schedule and last month's scenario give the same pick, which is how a surprising test is
replayed. Two rules are absolute: the test never overlaps a blackout window, and never repeats last month's
scenario.

Pure: no clock (callers pass ``now``), no files; the time zone arrives as a ``tzinfo``.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from drills.errors import UsageError
from drills.model.durations import format_duration
from drills.model.scenario import Scenario
from drills.model.schedule import (
    DEFAULT_DURATION,
    Blackout,
    DateBlackout,
    MonthlySchedule,
    WeeklyBlackout,
    WeekOfMonth,
)

_WEEK_INDEX = {WeekOfMonth.FIRST: 0, WeekOfMonth.SECOND: 1, WeekOfMonth.THIRD: 2, WeekOfMonth.FOURTH: 3}


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Slot:
    """When this month's test runs (``at`` is None when every candidate day is blacked out)."""

    month: str
    at: datetime | None
    duration: timedelta
    #: Candidate days passed over, each with the blackout that covered it.
    skipped: tuple[tuple[date, str], ...] = ()


@dataclass(frozen=True)
class Choice:
    scenario_id: str
    eligible: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MonthlyPick:
    """A monthly test as picked: enough to replay it (``seed``) and to explain it to people."""

    month: str
    seed: int
    scenario_id: str
    at: datetime
    timezone: str
    duration: timedelta
    last_scenario: str | None
    eligible: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...] = ()
    skipped_days: tuple[tuple[date, str], ...] = ()
    responder: str = "bot"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def replay_args(self) -> list[str]:
        """The command-line arguments that pick the same scenario again."""
        args = ["schedule", "pick", "--month", self.month, "--seed", str(self.seed)]
        if self.last_scenario:
            args += ["--last", self.last_scenario]
        return args

    def as_dict(self) -> dict[str, object]:
        return {
            "month": self.month,
            "seed": self.seed,
            "scenario": self.scenario_id,
            "at": self.at.astimezone(UTC).isoformat(),
            "timezone": self.timezone,
            "duration": format_duration(self.duration),
            "last_scenario": self.last_scenario,
            "eligible": list(self.eligible),
            "excluded": [{"scenario": s, "why": why} for s, why in self.excluded],
            "skipped_days": [{"day": d.isoformat(), "why": why} for d, why in self.skipped_days],
            "responder": self.responder,
            "replay": "drill " + " ".join(self.replay_args),
        }


# ---- months and days -------------------------------------------------------------------------------------


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-02"`` -> ``(2026, 2)``; a UsageError says how to write it otherwise."""
    try:
        year_s, month_s = text.strip().split("-")
        year, month = int(year_s), int(month_s)
        if len(year_s) != 4 or not 1 <= month <= 12:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"{text!r} is not a month", hint="write the month as YYYY-MM, e.g. 2026-02"
        ) from None
    return year, month


def month_text(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_of(at: datetime, tz: tzinfo) -> tuple[int, int]:
    local = at.astimezone(tz)
    return local.year, local.month


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def candidate_days(year: int, month: int, schedule: MonthlySchedule) -> list[date]:
    """The schedule's weekday in this month, from the configured week on (later ones are the fallbacks)."""
    _, last = calendar.monthrange(year, month)
    every_day = (date(year, month, d) for d in range(1, last + 1))
    days = [d for d in every_day if d.isoweekday() == schedule.weekday]
    if schedule.week == WeekOfMonth.LAST:
        return days[-1:]
    return days[_WEEK_INDEX[schedule.week] :]


# ---- blackouts -------------------------------------------------------------------------------------------


def _local(d: date, t: time, tz: tzinfo) -> datetime:
    return datetime.combine(d, t, tzinfo=tz)


def blackout_intervals(blackout: Blackout, around: Interval, tz: tzinfo) -> list[Interval]:
    """The concrete intervals of one blackout that could touch ``around`` (aware datetimes)."""
    if isinstance(blackout, DateBlackout):
        day_after = blackout.to + timedelta(days=1)
        return [Interval(_local(blackout.from_, time(0), tz), _local(day_after, time(0), tz))]
    assert isinstance(blackout, WeeklyBlackout)
    first = around.start.astimezone(tz).date() - timedelta(days=1)
    last = around.end.astimezone(tz).date()
    out: list[Interval] = []
    d = first
    while d <= last:
        if d.isoweekday() in blackout.days:
            start = _local(d, blackout.from_, tz)
            end_day = d + timedelta(days=1) if blackout.to <= blackout.from_ else d
            out.append(Interval(start, _local(end_day, blackout.to, tz)))
        d += timedelta(days=1)
    return out


def describe_blackout(blackout: Blackout) -> str:
    why = f" ({blackout.reason})" if blackout.reason else ""
    if isinstance(blackout, DateBlackout):
        return f"blackout {blackout.from_.isoformat()}..{blackout.to.isoformat()}{why}"
    days = ",".join(d.name.lower()[:3] for d in blackout.days)
    return f"weekly blackout {days} {blackout.from_:%H:%M}-{blackout.to:%H:%M}{why}"


def blackout_hit(window: Interval, blackouts: Sequence[Blackout], tz: tzinfo) -> Blackout | None:
    """The first blackout the window overlaps, or None."""
    for b in blackouts:
        if any(window.overlaps(i) for i in blackout_intervals(b, window, tz)):
            return b
    return None


# ---- the slot --------------------------------------------------------------------------------------------


def clearance(schedule: MonthlySchedule, candidates: Sequence[Scenario]) -> timedelta:
    """How long the test keeps clear of blackouts: the schedule's, else the longest candidate's budget.

    Taking the longest keeps the day independent of which scenario the seed picks, so the day is known
    (and can be announced as "a test will happen") while the scenario stays unannounced.
    """
    if schedule.duration is not None:
        return schedule.duration
    return max((s.time_budget for s in candidates), default=DEFAULT_DURATION)


def monthly_slot(year: int, month: int, schedule: MonthlySchedule, tz: tzinfo, duration: timedelta) -> Slot:
    """The first candidate day whose test window clears every blackout."""
    skipped: list[tuple[date, str]] = []
    for d in candidate_days(year, month, schedule):
        start = _local(d, schedule.at, tz)
        window = Interval(start, start + duration)
        hit = blackout_hit(window, schedule.blackouts, tz)
        if hit is None:
            return Slot(month_text(year, month), start, duration, tuple(skipped))
        skipped.append((d, describe_blackout(hit)))
    return Slot(month_text(year, month), None, duration, tuple(skipped))


# ---- the scenario ----------------------------------------------------------------------------------------


def eligibility(scenario: Scenario, schedule: MonthlySchedule) -> str | None:
    """Why the schedule leaves this scenario out, or None when it may be picked."""
    if schedule.scenarios and scenario.id not in schedule.scenarios:
        return "not in the schedule's scenario list"
    missing = [t for t in schedule.tags if t not in scenario.tags]
    if missing:
        return f"lacks tag {', '.join(missing)}"
    banned = [t for t in schedule.exclude_tags if t in scenario.tags]
    if banned:
        return f"has excluded tag {', '.join(banned)}"
    if scenario.difficulty not in schedule.difficulty:
        return f"difficulty {scenario.difficulty.value} not allowed"
    return None


def choose_scenario(
    candidates: Sequence[Scenario], schedule: MonthlySchedule, *, seed: int, last_scenario: str | None
) -> Choice:
    """Seeded uniform choice among the eligible scenarios, never last month's."""
    excluded: list[tuple[str, str]] = []
    eligible: list[str] = []
    # Sorted by id: the choice must not depend on the order files were listed in.
    for s in sorted(candidates, key=lambda s: s.id):
        why = eligibility(s, schedule)
        if why is None and s.id == last_scenario:
            why = "ran last month (never the same twice in a row)"
        if why is None:
            eligible.append(s.id)
        else:
            excluded.append((s.id, why))
    if not eligible:
        detail = "; ".join(f"{sid}: {why}" for sid, why in excluded) or "no scenarios given"
        raise UsageError(
            f"no scenario qualifies for the monthly chaos test ({detail})",
            hint="loosen the schedule's tags or difficulty, or add scenarios (last month's never repeats)",
        )
    rng = random.Random(seed)
    return Choice(rng.choice(eligible), tuple(eligible), tuple(excluded))


def pick_monthly(
    candidates: Sequence[Scenario],
    schedule: MonthlySchedule,
    *,
    year: int,
    month: int,
    seed: int,
    tz: tzinfo,
    last_scenario: str | None = None,
) -> MonthlyPick:
    """This month's test: the scenario (seeded) and its slot (first clear weekday of the schedule)."""
    choice = choose_scenario(candidates, schedule, seed=seed, last_scenario=last_scenario)
    duration = clearance(schedule, candidates)
    slot = monthly_slot(year, month, schedule, tz, duration)
    if slot.at is None:
        days = "; ".join(f"{d.isoformat()}: {why}" for d, why in slot.skipped) or "no such weekday"
        raise UsageError(
            f"no day in {slot.month} for the monthly chaos test clears the blackouts ({days})",
            hint="the test is skipped this month; shorten a blackout or change the schedule's weekday/week",
        )
    return MonthlyPick(
        month=slot.month,
        seed=seed,
        scenario_id=choice.scenario_id,
        at=slot.at.astimezone(UTC),
        timezone=schedule.timezone,
        duration=duration,
        last_scenario=last_scenario,
        eligible=choice.eligible,
        excluded=choice.excluded,
        skipped_days=slot.skipped,
        responder=schedule.responder,
    )


def is_due(
    now: datetime,
    slot_at: datetime,
    schedule: MonthlySchedule,
    tz: tzinfo,
    duration: timedelta,
    *,
    already_ran: bool,
) -> tuple[bool, str]:
    """Should a cron firing at ``now`` run this month's test? (answer, why)

    Yes from the slot on, until the month ends, unless it already ran: a machine that was off on the first
    Tuesday catches up at the next firing instead of skipping the month, but never into a blackout.
    """
    if already_ran:
        return False, f"this month's test already ran ({month_text(*month_of(slot_at, tz))})"
    if now < slot_at:
        return False, f"not yet: this month's test is due at {slot_at.astimezone(tz):%Y-%m-%d %H:%M %Z}"
    if month_of(now, tz) != month_of(slot_at, tz):
        return False, "the slot belongs to another month"
    hit = blackout_hit(Interval(now, now + duration), schedule.blackouts, tz)
    if hit is not None:
        return False, f"now is inside a {describe_blackout(hit)}"
    return True, "due"


__all__ = [
    "Choice",
    "Interval",
    "MonthlyPick",
    "Slot",
    "blackout_hit",
    "blackout_intervals",
    "candidate_days",
    "choose_scenario",
    "clearance",
    "describe_blackout",
    "eligibility",
    "is_due",
    "month_of",
    "month_text",
    "monthly_slot",
    "next_month",
    "parse_month",
    "pick_monthly",
    "previous_month",
]
