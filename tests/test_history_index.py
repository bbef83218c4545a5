"""The report index kept from journals and reports (drills.reporting.index), in SQLite: people's edits to a
postmortem reach the monthly report, reports without a journal count, a lost index is rebuilt, and an old
database of the hand-written store gets its summaries on first read."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from report_journal import DRILL_ID, report_events, write_report_journal
from test_history import _legacy_database

from drills.adapters.store.history import History
from drills.engine.scoring import score
from drills.reporting.catalog import scan
from drills.reporting.index import refresh, reindex
from drills.reporting.monthly import monthly_report, render_monthly_markdown
from drills.reporting.report import POSTMORTEM, write_reports_for


def _state(tmp_path: Path) -> tuple[Path, Path]:
    journals, reports = tmp_path / "drills", tmp_path / "reports"
    (journals / DRILL_ID).mkdir(parents=True)
    write_report_journal(journals / DRILL_ID)
    events = report_events()
    write_reports_for(score(events), events, reports / DRILL_ID)
    return journals, reports


def test_an_edited_postmortem_status_reaches_the_report_through_the_index(tmp_path: Path) -> None:
    journals, reports = _state(tmp_path)
    with History(tmp_path / "h.sqlite3") as h:
        refresh(h, journals, reports)
        (before,) = h.summaries()
        assert before.actions and not any(a.done for a in before.actions)
        postmortem = reports / DRILL_ID / POSTMORTEM
        text = postmortem.read_text()
        first = next(line for line in text.splitlines() if line.startswith("| A1 |"))
        postmortem.write_text(text.replace(first, first.removesuffix("| open |") + "| done |"))
        assert refresh(h, journals, reports).updated_actions == 1
        (after,) = h.summaries()
        assert [a.done for a in after.actions][:1] == [True]
        # the same as reading the files
        files = scan(reports, journals).summaries
        assert after == files[0]
        assert refresh(h, journals, reports).updated_actions == 0  # nothing changed since


def test_reports_without_a_journal_are_indexed_and_a_lost_index_is_rebuilt(tmp_path: Path) -> None:
    journals, reports = _state(tmp_path)
    shutil.rmtree(journals)  # only the reports were copied here
    with History(tmp_path / "h.sqlite3") as h:
        result = reindex(h, journals, reports)
        assert (result.journals, result.reports_only) == (0, 1)
        expected = render_monthly_markdown(monthly_report(h.summaries(), "2025-03"))
    (tmp_path / "h.sqlite3").unlink()
    for wal in tmp_path.glob("h.sqlite3-*"):
        wal.unlink()
    with History(tmp_path / "h.sqlite3") as h:
        assert h.summaries() == []
        reindex(h, journals, reports)
        assert render_monthly_markdown(monthly_report(h.summaries(), "2025-03")) == expected


def test_an_old_database_gets_its_summaries_on_first_read(tmp_path: Path) -> None:
    journals, reports = _state(tmp_path)
    path = tmp_path / "h.sqlite3"
    _legacy_database(path, 3)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "INSERT INTO drills (id, scenario, mode, status, started) VALUES (?, 'bad-deploy-rollback', "
        "'training', 'finished', '2025-03-04T09:00:00+00:00')",
        (DRILL_ID,),
    )
    db.close()
    with History(path) as h:
        assert h.summaries() == []  # upgraded: the rows are there, the summaries not yet
        refresh(h, journals, reports)
        assert [s.drill_id for s in h.summaries()] == [DRILL_ID]
        assert h.drill_ids() == {"old-1", DRILL_ID}  # nothing of the old database lost
