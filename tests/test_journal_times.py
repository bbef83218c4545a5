"""Out-of-range times in a journal: reported as a problem with file:line and skipped, never a crash.

Issue #13: the receiver accepted an alert with ``startsAt: 9999-12-31T23:59:59Z`` and ``drill report`` then
crashed with OverflowError (a due date a week after the drill's end is past ``datetime.max``). The receiver
now refuses such alerts (tests/test_webhooks.py), and the reader refuses such events from any writer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_journal import report_events

from drills.adapters.store.journal import OUTSIDE_DRILL, read_journal
from drills.cli import cli
from drills.model.events import EVENT_ADAPTER, AlertFired, Event, Note, PostmortemCompleted, Source

START = report_events()[0].at


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))


def drill(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _journal(tmp_path: Path, stray: Event, *, position: int = 5, raw: str | None = None) -> Path:
    lines = [e.model_dump_json(exclude_none=True) for e in report_events()]
    lines.insert(position, raw if raw is not None else stray.model_dump_json(exclude_none=True))
    path = tmp_path / "journal.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _alert_at(at: datetime) -> AlertFired:
    return AlertFired(id="stray-alert", at=at, source=Source.SYSTEM, actor="alertmanager", alert_name="X")


FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("command", ["report", "score"])
def test_an_event_in_year_9999_is_a_warning_with_file_and_line_not_an_overflow(
    tmp_path: Path, command: str
) -> None:
    # Before: `drill report` crashed with OverflowError: date value out of range.
    path = _journal(tmp_path, _alert_at(FAR_FUTURE))
    result = drill(command, path)
    assert result.exit_code in (0, 1), result.output  # a report, or a scorecard that did not pass
    assert f"{path}:6: at:" in " ".join(result.output.split())
    assert "skipped" in result.output


def test_the_reader_reports_events_more_than_a_day_outside_the_drill(tmp_path: Path) -> None:
    events = report_events()
    end = events[-1].at
    strays = [
        Note(
            id="before-0001", at=START - OUTSIDE_DRILL - timedelta(seconds=1), source=Source.HUMAN, text="a"
        ),
        Note(id="after-00001", at=end + OUTSIDE_DRILL + timedelta(minutes=1), source=Source.HUMAN, text="b"),
        Note(id="nearby-0001", at=START - timedelta(hours=2), source=Source.HUMAN, text="skewed clock"),
        Note(id="nearby-0002", at=end + timedelta(hours=20), source=Source.HUMAN, text="late note"),
    ]
    lines = [e.model_dump_json(exclude_none=True) for e in events]
    for i, stray in enumerate(strays):
        lines.insert(3 + i, stray.model_dump_json(exclude_none=True))
    path = tmp_path / "journal.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = read_journal(path)
    assert [(p.line, p.field) for p in read.problems] == [(4, "at"), (5, "at")]
    assert "before the drill started" in read.problems[0].message
    assert "after the drill ended" in read.problems[1].message
    ids = {e.id for e in read.events}
    assert {"nearby-0001", "nearby-0002"} <= ids and not {"before-0001", "after-00001"} & ids
    assert len(read.events) == len(events) + 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", "0001-01-01T00:00:00Z"),
        ("recorded_at", "9999-12-31T23:59:59Z"),
        ("received_at", "9999-01-01T00:00:00Z"),
    ],
)
def test_times_no_drill_can_have_are_problems_whatever_the_field(
    tmp_path: Path, field: str, value: str
) -> None:
    data = json.loads(_alert_at(START).model_dump_json(exclude_none=True))
    data[field] = value
    path = _journal(tmp_path, _alert_at(START), raw=json.dumps(data))
    read = read_journal(path)
    [problem] = read.problems
    assert (problem.line, problem.field) == (6, field)
    assert "not a time a drill can have" in problem.message
    assert "stray-alert" not in {e.id for e in read.events}


def test_a_running_drill_is_bounded_only_before_its_start_and_a_late_postmortem_is_kept(
    tmp_path: Path,
) -> None:
    # A drill without drill.ended (running, or crashed) has no known end; a postmortem is due after the
    # drill, and the scorer judges how late it came: neither is dropped for being late.
    events = [e for e in report_events() if e.type != "drill.ended"]
    late = Note(id="late-000001", at=START + timedelta(days=3), source=Source.HUMAN, text="x")
    early = Note(id="early-00001", at=START - timedelta(days=3), source=Source.HUMAN, text="x")
    path = tmp_path / "journal.jsonl"
    path.write_text(
        "\n".join(e.model_dump_json(exclude_none=True) for e in [*events, late, early]) + "\n",
        encoding="utf-8",
    )
    read = read_journal(path)
    [problem] = read.problems
    assert problem.line == len(events) + 2 and "before the drill started" in problem.message
    assert "late-000001" in {e.id for e in read.events}

    ended = report_events()
    pm = PostmortemCompleted(id="postmortem-1", at=ended[-1].at + timedelta(days=4), source=Source.HUMAN)
    path.write_text(
        "\n".join(e.model_dump_json(exclude_none=True) for e in [*ended, pm]) + "\n", encoding="utf-8"
    )
    read = read_journal(path)
    assert read.problems == [] and read.events[-1] == pm


def test_events_read_share_repeated_values_without_changing_any(tmp_path: Path) -> None:
    # The reader shares equal field sets and strings between events (a big journal's memory): nothing
    # about any event may change, and changing a copy of one must not touch the others.
    path = tmp_path / "journal.jsonl"
    events = report_events()
    path.write_text("\n".join(e.model_dump_json(exclude_none=True) for e in events) + "\n", encoding="utf-8")
    read = read_journal(path).events
    assert read == events
    fresh = [EVENT_ADAPTER.validate_json(e.model_dump_json(exclude_none=True)) for e in events]
    assert [e.model_dump(exclude_unset=True) for e in read] == [
        e.model_dump(exclude_unset=True) for e in fresh
    ]
    notes = [e for e in read if isinstance(e, Note)]
    a = notes[0].model_copy(update={"actor": "someone-else"})
    assert a.actor == "someone-else" and all(n.actor != "someone-else" for n in read)
    same_shape = [e for e in read if e.type == "comms.posted"]
    assert len({id(e.model_fields_set) for e in same_shape}) < len(same_shape)
