"""The drills and incidents on record: what the monthly report and the on-call handoff are made of.

Each drill leaves ``reports/<drill-id>/scorecard.json`` and ``postmortem.md``; people edit the postmortem's
action-item Status afterwards. Reading those two files is the fast path: a month of 10,000 drills must roll up
in about a second, so the scorecard JSON is read as plain JSON (no model validation per file) and only the
action-item table of the postmortem is parsed. A journal that was never reported is scored from scratch
(the slow path), so a crashed runner's drill still counts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from drills.adapters.store.journal import JOURNAL_FILE, stream_journal
from drills.engine.scoring import score
from drills.engine.traffic import split_traffic
from drills.errors import DrillError, Problem
from drills.model.policy import Policy
from drills.model.scorecard import Check, Scorecard
from drills.model.summary import DrillSummary, TrackedAction
from drills.reporting.report import POSTMORTEM, SCORECARD, render_postmortem
from drills.reporting.view import cause_of

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)

_CELL = r"([^|\\\n]*(?:\\.[^|\\\n]*)*)"  # a table cell: anything but an unescaped pipe
_ACTION_ROW = re.compile(
    rf"^[ \t]*\|[ \t]*(A\d+)[ \t]*\|{_CELL}\|{_CELL}\|{_CELL}\|{_CELL}\|{_CELL}\|[ \t]*$", re.MULTILINE
)
_ACTIONS_HEADING = "\n## Action items"


@dataclass(frozen=True)
class Catalog:
    summaries: list[DrillSummary]
    problems: list[Problem]


def parse_action_items(markdown: str, drill_id: str) -> list[TrackedAction]:
    """The rows of the postmortem's action-item table (``| A1 | action | owner | due | check | status |``)."""
    # Only the action-item section when it is there: the timeline table before it is the bulk of the file.
    start = markdown.find(_ACTIONS_HEADING)
    if start >= 0:
        end = markdown.find("\n## ", start + 1)
        markdown = markdown[start : end if end >= 0 else len(markdown)]
    items = []
    for m in _ACTION_ROW.finditer(markdown):
        action_id, text, owner, due, check_id, status = (c.strip() for c in m.groups())
        if "\\" in text:
            text = text.replace("\\|", "|")
        checks = check_id.replace("`", "") if "," in check_id else check_id.strip("`")
        items.append(TrackedAction(drill_id, action_id, text, owner, due, checks, status))
    return items


def untracked_actions(drill_id: str, failed: Sequence[Check]) -> list[TrackedAction]:
    """Action items of a drill with no postmortem on disk: one per cause, as the postmortem would list."""
    groups: dict[str, tuple[str, str, list[str]]] = {}
    for c in failed:
        key, improvement, owner = cause_of(c)
        groups.setdefault(key, (improvement, owner, []))[2].append(c.id)
    return [
        TrackedAction(
            drill_id, f"A{n}", improvement, "" if owner == "service" else owner, "", ", ".join(ids), "open"
        )
        for n, (improvement, owner, ids) in enumerate(groups.values(), start=1)
    ]


def _seconds(clocks: dict[str, Any], name: str) -> float | None:
    value = clocks.get(f"{name}_active") or clocks.get(name)
    if value is None:
        return None
    return _DURATION.validate_python(value).total_seconds()


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


def team_of(markdown: str) -> str | None:
    """The team row of a postmortem's summary table (only its head is searched: the file can be long)."""
    # str.find, not a regex: this runs once per drill of the month (see benchmarks/bench_reports.py).
    start = markdown.find("\n| Team | ", 0, 4000)
    if start < 0:
        return None
    end = markdown.find("\n", start + 1)
    row = markdown[start + 10 : end if end >= 0 else len(markdown)]
    return row.removesuffix("|").strip() or None


def summary_from_dict(
    data: dict[str, Any], actions: Sequence[TrackedAction], team: str | None = None
) -> DrillSummary:
    """From ``scorecard.json`` as plain JSON (fast: no model validation); KeyError/ValueError if malformed."""
    clocks = data["clocks"]
    return DrillSummary(
        drill_id=data["drill_id"],
        scenario_id=data["scenario_id"],
        title=data["scenario_title"],
        category=data["category"],
        is_drill=bool(data.get("is_drill", True)),
        started=_when(data.get("started")),
        true_severity=data["true_severity"],
        declared_severity=data.get("declared_severity"),
        outcome=data.get("outcome") or "",
        score=float(data["score"]),
        grade=data["grade"],
        passed=bool(data["passed"]),
        ttd=_seconds(clocks, "ttd"),
        tta=_seconds(clocks, "tta"),
        ttm=_seconds(clocks, "ttm"),
        ttr=_seconds(clocks, "ttr"),
        resolved=clocks.get("resolved") is not None,
        actions=tuple(actions),
        team=team,
    )


def summary_from_scorecard(
    scorecard: Scorecard, actions: Sequence[TrackedAction] | None = None, team: str | None = None
) -> DrillSummary:
    data = json.loads(scorecard.model_dump_json())
    if actions is None:
        actions = untracked_actions(scorecard.drill_id, scorecard.failed_checks)
    return summary_from_dict(data, actions, team)


def load_report_dir(directory: Path | str) -> DrillSummary:
    """A drill's reports directory: scorecard.json, and the postmortem's action items when it is there.

    Plain path strings and pydantic-core's JSON parser: this runs once per drill of a month, and pathlib's
    overhead alone was a tenth of the 10,000-drill budget.
    """
    with open(f"{directory}/{SCORECARD}", "rb") as f:  # noqa: PTH123
        data = from_json(f.read())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        with open(f"{directory}/{POSTMORTEM}", "rb") as f:  # noqa: PTH123
            markdown: str | None = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        markdown = None
    drill_id = data["drill_id"]
    if markdown is None:
        failed = [Check.model_validate(c) for c in data["checks"] if c["status"] == "fail"]
        actions = untracked_actions(drill_id, failed)
    else:
        actions = parse_action_items(markdown, drill_id)
    return summary_from_dict(data, actions, team_of(markdown) if markdown is not None else None)


def load_journal(path: Path, policy: Policy | None = None) -> DrillSummary:
    """The slow path: score a journal that has no reports yet (streamed, its observer traffic folded)."""
    stream = stream_journal(path)
    events, traffic = split_traffic(stream)
    if stream.drill_started is None:
        raise DrillError(f"{path} has no drill.started event")
    scorecard = score(events, policy, traffic)
    markdown = render_postmortem(scorecard, events, traffic=traffic)
    team = stream.drill_started.team
    return summary_from_scorecard(scorecard, parse_action_items(markdown, scorecard.drill_id), team)


def scan(reports_dir: Path, journals_dir: Path | None = None, *, policy: Policy | None = None) -> Catalog:
    """Every drill under ``reports_dir`` (fast path) plus journals under ``journals_dir`` never reported.

    A file that cannot be read is a problem in the result, never fatal: one broken report must not hide a
    month of others.
    """
    summaries: list[DrillSummary] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for _, directory in _subdirs(reports_dir):
        try:
            s = load_report_dir(directory)
        except FileNotFoundError:
            continue  # not a drill's reports (no scorecard.json)
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as e:
            where = f"{directory}/{SCORECARD}"
            problems.append(Problem(where, None, "", f"skipped: cannot read it ({_why(e)})"))
            continue
        seen.add(s.drill_id)
        summaries.append(s)
    if journals_dir is not None:
        for name, directory in _subdirs(journals_dir):
            journal = Path(directory) / JOURNAL_FILE
            if name in seen or not journal.is_file():
                continue
            try:
                s = load_journal(journal, policy)
            except DrillError as e:
                problems.append(Problem(str(journal), None, "", f"skipped: {e.message}"))
                continue
            if s.drill_id not in seen:
                seen.add(s.drill_id)
                summaries.append(s)
    return Catalog(summaries, problems)


def _subdirs(root: Path) -> list[tuple[str, str]]:
    """(name, path) of each sub-directory, by name."""
    try:
        with os.scandir(root) as entries:
            return sorted((e.name, e.path) for e in entries if e.is_dir())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise DrillError(
            f"cannot list {root}: {e.strerror}", hint="check the path and its permissions"
        ) from e


def _why(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"field {e.args[0]!r} missing"
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e).splitlines()[0]
