"""The monthly chaos test's rules: which scenarios may be picked, on which day, and when never to run.

The seed's "Training & Drills" section asks for "scheduled chaos tests (first Tuesday)" with "unannounced
scenarios (random)". A schedule file (YAML, ``extra="forbid"``, loaded with line-numbered errors) says which
weekday of the month, at what local time, which scenarios qualify (tags, difficulty) and the blackout windows
(a weekly window such as Friday afternoons, or a date range such as a change freeze) the test must never
overlap. The picking itself is ``drills.engine.schedule``; installing it as cron or a CronJob is
``drills.adapters.schedule_install``.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from enum import IntEnum, StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drills.model.durations import Duration
from drills.model.scenario import Difficulty

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Weekday(IntEnum):
    """ISO weekday numbers (Monday 1), written by name in YAML."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def parse(cls, value: object) -> Weekday:
        if isinstance(value, Weekday):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            for day in cls:
                if day.name.lower() == text or day.name.lower()[:3] == text:
                    return day
        names = ", ".join(d.name.lower() for d in cls)
        raise ValueError(f"{value!r} is not a weekday (one of {names}, or their first three letters)")

    @property
    def cron(self) -> int:
        """cron numbers days from Sunday 0."""
        return self.value % 7


class WeekOfMonth(StrEnum):
    FIRST = "first"
    SECOND = "second"
    THIRD = "third"
    FOURTH = "fourth"
    LAST = "last"


def parse_clock_time(value: object) -> time:
    """``"10:00"`` (24-hour, local to the schedule's time zone) as a :class:`datetime.time`."""
    if isinstance(value, time):
        return value
    # YAML 1.1 reads an unquoted 10:00 as the sexagesimal integer 600 (minutes); take it as meant.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        m = _TIME.match(value.strip())
        if m:
            return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, 24-hour, e.g. '10:00'")


def _weekdays(value: object) -> list[Weekday]:
    if not isinstance(value, list):
        value = [value]
    return [Weekday.parse(v) for v in value]


ClockTime = Annotated[time, Field(json_schema_extra={"type": "string", "pattern": _TIME.pattern})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeeklyBlackout(_Strict):
    """Every week on these days between two local times (``to`` before ``from`` crosses midnight)."""

    kind: Literal["weekly"]
    days: list[Weekday] = Field(min_length=1, description="Weekdays the window starts on, e.g. [friday].")
    from_: ClockTime = Field(alias="from", description="Local start time, HH:MM.")
    to: ClockTime = Field(description="Local end time, HH:MM; 00:00 means midnight at the end of the day.")
    reason: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: object) -> list[Weekday]:
        return _weekdays(v)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _time(cls, v: object) -> time:
        return parse_clock_time(v)

    @model_validator(mode="after")
    def _not_empty(self) -> WeeklyBlackout:
        if self.from_ == self.to and self.from_ != time(0):
            raise ValueError("from and to are the same time: the window would be empty")
        return self


class DateBlackout(_Strict):
    """Whole local days from ``from`` to ``to``, both included (a change freeze, a holiday)."""

    kind: Literal["dates"]
    from_: date = Field(alias="from")
    to: date
    reason: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> DateBlackout:
        if self.to < self.from_:
            raise ValueError(f"to ({self.to}) is before from ({self.from_})")
        return self


Blackout = Annotated[WeeklyBlackout | DateBlackout, Field(discriminator="kind")]


class MonthlySchedule(_Strict):
    """The monthly chaos test. See docs/programs.md ("Monthly chaos test")."""

    timezone: str = Field(default="UTC", description="IANA time zone the day, time and blackouts are in.")
    weekday: Weekday = Field(default=Weekday.TUESDAY, description="The seed: first Tuesday.")
    week: WeekOfMonth = WeekOfMonth.FIRST
    at: ClockTime = Field(default=time(10, 0), description="Local start time, HH:MM.")
    tags: list[str] = Field(
        default_factory=list, description="A scenario qualifies only if it has all of these."
    )
    exclude_tags: list[str] = Field(
        default_factory=list, description="A scenario with any of these never runs."
    )
    difficulty: list[Difficulty] = Field(
        default_factory=lambda: list(Difficulty), description="Difficulties that may be picked."
    )
    scenarios: list[str] = Field(
        default_factory=list, description="Only these scenario ids (default: every scenario in scenarios/)."
    )
    responder: str = Field(
        default="bot", description="human (whoever is on call) or bot[:FILE] (unattended)."
    )
    duration: Duration | None = Field(
        default=None, description="How long to keep clear of blackouts; default: the scenario's time_budget."
    )
    blackouts: list[Blackout] = Field(default_factory=list)

    @field_validator("weekday", mode="before")
    @classmethod
    def _weekday(cls, v: object) -> Weekday:
        return Weekday.parse(v)

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: object) -> time:
        return parse_clock_time(v)

    @field_validator("tags", "exclude_tags", "scenarios")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.match(_NAME, t):
                raise ValueError(f"{t!r} must be lower-case letters, digits and dashes")
        return v

    @field_validator("responder")
    @classmethod
    def _responder(cls, v: str) -> str:
        if v not in ("human", "bot") and not (v.startswith("bot:") and len(v) > 4):
            raise ValueError("responder is human, bot, or bot:FILE (a responder profile)")
        return v

    @field_validator("difficulty")
    @classmethod
    def _some_difficulty(cls, v: list[Difficulty]) -> list[Difficulty]:
        if not v:
            raise ValueError("list at least one difficulty, or leave the field out to allow them all")
        return v


DEFAULT_DURATION = timedelta(minutes=30)

__all__ = [
    "DEFAULT_DURATION",
    "Blackout",
    "DateBlackout",
    "MonthlySchedule",
    "WeekOfMonth",
    "Weekday",
    "WeeklyBlackout",
    "parse_clock_time",
]
