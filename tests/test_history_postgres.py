"""The team history in PostgreSQL and SQLite: the same 1,000 journals give the same monthly report, byte for
byte, from either database, and again after the database is dropped and rebuilt with reindex.

A real PostgreSQL (tests/postgres.py: initdb in a temporary directory, 127.0.0.1, stopped afterwards). The
journals are generated once per session (tests/history_journals.py).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from history_journals import MONTH, check_roundtrip, synthetic_events, write_journals
from postgres import PostgresServer

from drills.adapters.store.history import METADATA, History, HistoryError
from drills.adapters.store.journal import Journal
from drills.cli import cli
from drills.engine.ladder import DrillStatus
from drills.reporting.catalog import scan
from drills.reporting.index import reindex
from drills.reporting.monthly import (
    monthly_report,
    render_monthly_html,
    render_monthly_markdown,
    report_window,
)

JOURNALS = 1000


@pytest.fixture(scope="session")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_journals(tmp_path_factory.mktemp("history") / "drills", JOURNALS)
    check_roundtrip(next(root.glob("*/journal.jsonl")))
    return root


@pytest.fixture
def database(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "t_" + request.node.name.split("[")[0][-40:].lower()
    postgres.drop_database(name)
    yield postgres.create_database(name)
    postgres.drop_database(name)


def _reports(history: History) -> tuple[str, str]:
    since, until = report_window(MONTH)
    report = monthly_report(history.summaries(since=since, until=until), MONTH)
    return render_monthly_markdown(report), render_monthly_html(report)


def test_sqlite_and_postgres_give_the_same_monthly_report_and_reindex_rebuilds_it(
    tmp_path: Path, journals: Path, postgres: PostgresServer
) -> None:
    with History(tmp_path / "h.sqlite3") as lite:
        assert reindex(lite, journals, None).journals == JOURNALS
        from_sqlite = _reports(lite)
    postgres.drop_database("monthly")
    url = postgres.create_database("monthly")
    with History(url=url) as pg:
        result = reindex(pg, journals, None)
        assert (result.journals, result.problems) == (JOURNALS, [])
        from_postgres = _reports(pg)
    assert from_postgres[0].encode() == from_sqlite[0].encode()
    assert from_postgres[1].encode() == from_sqlite[1].encode()
    # Not an empty report that happens to match: the month has drills, incidents, open action items.
    markdown = from_sqlite[0]
    assert "- Total Drills: " in markdown and "- Total Incidents: " in markdown
    assert "- Total Drills: 0\n" not in markdown and "A1" in markdown

    postgres.drop_database("monthly")  # the index is lost ...
    url = postgres.create_database("monthly")
    with History(url=url) as pg:
        assert pg.summaries() == [] and pg.drill_ids() == set()
        assert reindex(pg, journals, None).journals == JOURNALS  # ... and rebuilt from the journals
        assert _reports(pg) == from_postgres
        crashed = pg.drills(status=DrillStatus.CRASHED)
        assert crashed and all("never ended" in (d.outcome or "") for d in crashed)
    postgres.drop_database("monthly")


def test_the_index_gives_the_report_the_files_give(tmp_path: Path) -> None:
    root = write_journals(tmp_path / "drills", 60)
    files = monthly_report(scan(tmp_path / "no-reports", root).summaries, MONTH)
    with History(tmp_path / "h.sqlite3") as h:
        reindex(h, root, None)
        assert _reports(h) == (render_monthly_markdown(files), render_monthly_html(files))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_schema_the_store_queries(
    backend: str, tmp_path: Path, database: str
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with History(url=database if backend == "postgresql" else f"sqlite:///{tmp_path / 'h.sqlite3'}") as h:
        assert h.version() == h.head()
        with h._engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), METADATA)
    assert differences == []


def test_a_drill_row_is_committed_before_the_fault_and_reconciled_from_its_journal(
    tmp_path: Path, database: str
) -> None:
    events = synthetic_events(7)
    started = events[0]
    path = tmp_path / "journal.jsonl"
    journal = Journal.create(path, started)  # type: ignore[arg-type]
    journal.append_many(events[1:4])
    with History(url=database) as h:
        h.record_start(started, journal=path, pid=2**22 + 4321)  # type: ignore[arg-type]  # a dead pid
    with History(url=database) as h:  # another process, later
        assert h.status_of(started.drill_id) == DrillStatus.RUNNING  # type: ignore[union-attr]
        assert h.reconcile() == [(started.drill_id, DrillStatus.CRASHED)]  # type: ignore[union-attr]
        (rec,) = h.drills()
        assert rec.ended == events[3].at and "crashed" in (rec.outcome or "")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_database_that_is_not_there_is_a_clear_error_that_hides_the_password() -> None:
    url = f"postgresql+psycopg://drills:s3cret-pw@127.0.0.1:{_closed_port()}/drills"
    with pytest.raises(HistoryError) as e:
        History(url=url)
    text = str(e.value)
    assert "s3cret-pw" not in text and "drills:***@127.0.0.1" in text
    assert "check that PostgreSQL is running" in (e.value.hint or "")
    assert e.value.__cause__ is not None  # the driver's error, chained


def test_a_url_that_is_not_a_url_is_a_clear_error() -> None:
    with pytest.raises(HistoryError) as e:
        History(url="postgres ql://drills:s3cret-pw@host")
    assert "s3cret-pw" not in str(e.value) and "DRILLS_DATABASE_URL" in e.value.message


def drill(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_drill_history_reindex_into_postgres_by_url(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    write_journals(state / "drills", 30)
    monkeypatch.setenv("DRILLS_STATE", str(state))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    secret_url = database.replace("drills@", "drills:hunter2-pw@")  # trust auth: never sent, never shown
    monkeypatch.setenv("DRILLS_DATABASE_URL", secret_url)
    result = drill("history", "reindex")
    assert result.exit_code == 0, result.output
    assert "indexed 30 drills (30 from journals, 0 from reports alone)" in " ".join(result.stdout.split())
    assert "hunter2-pw" not in result.output and "drills:***@" in result.stdout
    listed = json.loads(drill("history", "--limit", "0", "-o", "json").stdout)
    assert len(listed) == 30
    assert not (state / "history.sqlite3").exists()  # the URL chose PostgreSQL
    monthly = drill("report", "monthly", "--month", MONTH)
    assert monthly.exit_code == 0 and monthly.stdout.startswith("## Incident Report - March 2025\n")
