"""What the roll-ups (monthly report, handoff) know of one drill: its summary and its action items.

Plain frozen dataclasses, not pydantic models: a month can hold tens of thousands of them, read from report
files (``drills.reporting.catalog``) or from the history index (``drills.adapters.store.history``), and both
must build exactly the same values. They live in the model so the store can hold them without reaching up
into reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Status words that close an action item (the postmortem's Status column, edited by people).
DONE_WORDS = frozenset({"done", "completed", "complete", "closed", "fixed", "resolved", "✅", "[x]", "x"})


@dataclass(frozen=True, slots=True)
class TrackedAction:
    """An action item as the postmortem says now (status edited by people)."""

    drill_id: str
    id: str
    text: str
    owner: str
    due: str
    check_id: str
    status: str

    @property
    def done(self) -> bool:
        return self.status.strip().lower() in DONE_WORDS


@dataclass(frozen=True, slots=True)
class DrillSummary:
    """One drill or incident, reduced to what the roll-ups need. Durations in seconds, active time."""

    drill_id: str
    scenario_id: str
    title: str
    category: str
    is_drill: bool
    started: datetime | None
    true_severity: str
    declared_severity: str | None
    outcome: str
    score: float
    grade: str
    passed: bool
    ttd: float | None
    tta: float | None
    ttm: float | None
    ttr: float | None
    resolved: bool
    actions: tuple[TrackedAction, ...]
    team: str | None = None  # the team that ran it (a DR plan's team), from the postmortem's summary


__all__ = ["DONE_WORDS", "DrillSummary", "TrackedAction"]
