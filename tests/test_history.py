"""Trainee history in SQLite: Alembic migrations (and the hand-written store's databases), crash survival (a
real SIGKILL), reconciliation from journals."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drills.adapters.store.history import (
    LEGACY_FENCE,
    LEGACY_MIGRATIONS,
    History,
    HistoryError,
    roles_from_events,
)
from drills.adapters.store.journal import Journal
from drills.engine.ladder import DrillStatus, HeldRole
from drills.engine.schedule import pick_monthly
from drills.model.events import (
    Acknowledged,
    DrillEnded,
    DrillStarted,
    Note,
    Outcome,
    Role,
    RoleAssigned,
    Source,
)
from drills.model.schedule import MonthlySchedule
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Clocks, Scorecard
from drills.model.severity import Severity

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def started(
    drill_id: str, trainee: str | None = "ana", at: datetime = T0, severity: Severity = Severity.P1
) -> DrillStarted:
    return DrillStarted(
        at=at,
        source=Source.SYSTEM,
        drill_id=drill_id,
        scenario_id="bad-deploy-rollback",
        scenario_title="Bad deploy",
        category="deployment",
        service="app",
        namespace="production",
        true_severity=severity,
        trainee=trainee,
    )


def scorecard(
    drill_id: str, score: float = 82.0, mtta: CheckStatus = CheckStatus.PASS, trainee: str = "ana"
) -> Scorecard:
    checks = [
        Check(
            id="mtta.p1",
            family=CheckFamily.ACKNOWLEDGEMENT,
            rule="Acknowledge within 30 minutes",
            citation="incident-response-framework.md:402",
            target=timedelta(minutes=30),
            measured=timedelta(minutes=3),
            status=mtta,
        ),
        Check(
            id="comms.initial_alert",
            family=CheckFamily.COMMUNICATION,
            rule="Post the initial alert",
            citation="incident-response-framework.md:195",
            status=CheckStatus.FAIL,
        ),
    ]
    return Scorecard(
        drill_id=drill_id,
        scenario_id="bad-deploy-rollback",
        scenario_title="Bad deploy",
        category="deployment",
        mode="training",
        trainee=trainee,
        true_severity=Severity.P1,
        clocks=Clocks(),
        checks=checks,
        outcome="resolved",
        score=score,
        grade="B",
        passed=score >= 70,
        improve_next="comms.initial_alert",
    )


def finished_drill(h: History, drill_id: str, at: datetime, **kw: object) -> None:
    s = started(drill_id, at=at)
    events = [
        s,
        RoleAssigned(
            at=at + timedelta(minutes=2), source=Source.HUMAN, actor="ana", role=Role.IC, person="ana"
        ),
        Note(at=at + timedelta(minutes=3), source=Source.HUMAN, actor="ben", text="rolled back"),
        DrillEnded(at=at + timedelta(minutes=20), source=Source.SYSTEM, outcome=Outcome.RESOLVED),
    ]
    h.record_start(s)
    h.record_result(scorecard(drill_id, **kw), events)  # type: ignore[arg-type]


# ---- migrations ----------------------------------------------------------------------------------


def test_new_database_is_at_the_latest_revision_in_wal_mode(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as h:
        assert h.version() == h.head() == "0002"
    db = sqlite3.connect(tmp_path / "h.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "drills",
        "check_results",
        "roles_held",
        "monthly_picks",
        "drill_summaries",
        "action_items",
    } <= tables
    assert "schema_migrations" not in tables  # only the hand-written store had it
    db.close()


def _legacy_database(path: Path, version: int) -> None:
    """A database as the hand-written sqlite3 store left it at ``version``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for m in LEGACY_MIGRATIONS[:version]:
        for statement in m.statements:
            db.execute(statement)
        db.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, '2025-01-01T00:00:00+00:00')", (m.version, m.name)
        )
    db.execute(
        "INSERT INTO drills (id, scenario, mode, status, started) VALUES ('old-1', 'bad-deploy-rollback', "
        "'training', 'finished', '2025-06-01T10:00:00+00:00')"
    )
    db.close()


@pytest.mark.parametrize("version", [1, 3])
def test_an_old_database_is_upgraded_in_place_keeping_its_rows(tmp_path: Path, version: int) -> None:
    path = tmp_path / "h.sqlite3"
    _legacy_database(path, version)
    with History(path) as h2:
        assert h2.version() == h2.head()
        assert h2.drill_ids() == {"old-1"}
        assert h2.drills()[0].scenario == "bad-deploy-rollback"
        # the legacy migration 3's columns and the new index are usable
        finished_drill(h2, "new-1", T0)
        assert {d.drill_id for d in h2.drills()} == {"old-1", "new-1"}
    with History(path) as h3:  # opened again: already on Alembic, nothing to adopt
        assert h3.drill_ids() == {"old-1", "new-1"}
    db = sqlite3.connect(path)
    # An older drills reading this database sees a version from its future and refuses it.
    assert db.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (LEGACY_FENCE,)
    db.close()


def test_a_newer_legacy_database_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _legacy_database(path, 3)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO schema_migrations VALUES (4, 'from the future', '2030-01-01T00:00:00+00:00')")
    db.close()
    with pytest.raises(HistoryError) as e:
        History(path)
    assert "schema version 4" in e.value.message and "upgrade drills" in (e.value.hint or "")


def test_a_newer_database_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    History(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE alembic_version SET version_num = '0099'")
    db.close()
    with pytest.raises(HistoryError) as e:
        History(path)
    assert "schema revision 0099" in e.value.message and "upgrade drills" in (e.value.hint or "")
    db = sqlite3.connect(path)
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099",)]  # left untouched
    db.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError) as e:
        History(path)
    assert str(path) in e.value.message


# ---- recording -----------------------------------------------------------------------------------


def test_a_finished_drill_records_score_checks_and_roles(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as h:
        finished_drill(h, "d1", T0)
        ana = h.trainee("ana")
        (rec,) = ana.drills
        assert rec.status == DrillStatus.FINISHED and rec.score == 82.0 and rec.passed
        assert rec.roles == {HeldRole.RESPONDER, HeldRole.IC}
        assert rec.checks == {"mtta.p1": CheckStatus.PASS, "comms.initial_alert": CheckStatus.FAIL}
        assert rec.improve_next == "comms.initial_alert"
        ben = h.trainee("ben")
        assert [d.roles for d in ben.drills] == [frozenset({HeldRole.SCRIBE})]
        assert ben.drills[0].checks == {}  # check results belong to the trainee, not the scribe
        assert h.people() == ["ana", "ben"]


def test_roles_from_events_ignore_bots() -> None:
    events = [
        started("d"),
        RoleAssigned(at=T0, source=Source.BOT, actor="bot", role=Role.IC, person="bot"),
        Note(at=T0, source=Source.BOT, actor="bot", text="x"),
        Acknowledged(at=T0, source=Source.HUMAN, actor="ana"),
    ]
    assert roles_from_events(events) == [("ana", HeldRole.RESPONDER, T0)]


def test_observers_are_recorded_outside_the_journal(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as h:
        h.record_role("not-yet-known", "cleo", HeldRole.OBSERVER, T0)
        finished_drill(h, "d1", T0)
        h.record_role("d1", "cleo", HeldRole.OBSERVER, T0)
        cleo = h.trainee("cleo")
        assert len(cleo.with_role(HeldRole.OBSERVER)) == 2


def test_monthly_picks_remember_last_month(tmp_path: Path) -> None:
    from drills.adapters.files.scenarios import load_scenarios

    loaded, _ = load_scenarios([ROOT / "scenarios"])
    scenarios = [s for _, s in loaded]
    with History(tmp_path / "h.sqlite3") as h:
        p1 = pick_monthly(scenarios, MonthlySchedule(), year=2026, month=1, seed=11, tz=UTC)
        pid = h.record_pick(p1)
        assert h.last_run_scenario("2026-02") is None  # picked is not ran
        h.update_pick(pid, status="ran", drill_id="d-jan")
        assert h.last_run_scenario("2026-02") == p1.scenario_id
        assert h.ran_in("2026-01") and not h.ran_in("2026-02")
        (row,) = h.picks()
        assert row["seed"] == 11 and row["detail"]["replay"].startswith("drill schedule pick --month 2026-01")


# ---- crash survival ------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from drills.adapters.store.history import History
    from drills.adapters.store.journal import Journal
    from drills.model.events import Acknowledged, DrillStarted, Source
    from drills.model.severity import Severity

    state = Path({state!r})
    t0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    started = DrillStarted(at=t0, source=Source.SYSTEM, drill_id="crashing",
        scenario_id="bad-deploy-rollback", scenario_title="Bad deploy", category="deployment", service="app",
        namespace="production", true_severity=Severity.P1, trainee="ana")
    journal_path = state / "drills" / "crashing" / "journal.jsonl"
    journal = Journal.create(journal_path, started)
    history = History(state / "history.sqlite3")
    history.record_start(started, journal=journal_path)
    journal.append(Acknowledged(at=t0 + timedelta(minutes=2), source=Source.HUMAN, actor="ana"))
    print("mid-drill", flush=True)
    time.sleep(60)
    """
)


def test_history_survives_a_sigkill_mid_drill(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with History(state / "history.sqlite3") as h:
        finished_drill(h, "before", T0)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), state=str(state))],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "mid-drill"
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    with History(state / "history.sqlite3") as h:
        assert h.status_of("crashing") == DrillStatus.RUNNING  # the start was committed before the kill
        assert h.reconcile() == [("crashing", DrillStatus.CRASHED)]
        ana = h.trainee("ana")
        assert [d.drill_id for d in ana.drills] == ["before", "crashing"]
        crashed = ana.drills[1]
        assert crashed.status == DrillStatus.CRASHED
        assert crashed.ended == datetime(2026, 3, 10, 10, 2, tzinfo=UTC)  # its last journal event
        assert "crashed" in (crashed.outcome or "")
        assert len(ana.responded) == 1  # a crashed drill does not count towards the ladder
        assert h.reconcile() == []  # idempotent


def test_reconcile_leaves_a_drill_whose_process_still_runs(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as h:
        h.record_start(started("live"))  # pid = this test process, alive
        assert h.reconcile() == []
        assert h.status_of("live") == DrillStatus.RUNNING


def test_reconcile_finishes_a_drill_that_ended_before_its_process_died(tmp_path: Path) -> None:
    journal_path = tmp_path / "drills" / "ended" / "journal.jsonl"
    s = started("ended")
    j = Journal.create(journal_path, s)
    j.append(DrillEnded(at=T0 + timedelta(minutes=5), source=Source.SYSTEM, outcome=Outcome.RESOLVED))
    with History(tmp_path / "h.sqlite3") as h:
        h.record_start(s, journal=journal_path, pid=2**22 + 12345)  # a pid that is not running

        def fake_score(events: object) -> Scorecard:
            return scorecard("ended", score=64.0)

        assert h.reconcile(score=fake_score) == [("ended", DrillStatus.FINISHED)]
        (rec,) = h.trainee("ana").drills
        assert rec.score == 64.0 and rec.ended == T0 + timedelta(minutes=5)


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from drills.adapters.store.history import History
    from test_history import finished_drill
    h = History(Path({path!r}))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(100000):
        finished_drill(h, f"w{{i:06d}}", t0 + timedelta(hours=i))
        print(i, flush=True)
    """
)


def test_a_writer_killed_at_a_random_moment_loses_no_committed_drill(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    History(path).close()
    with subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), tests=str(ROOT / "tests"), path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        last = -1
        deadline = time.monotonic() + 30
        while last < 25 and time.monotonic() < deadline:
            last = int(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    with History(path) as h:
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        ids = h.drill_ids()
        # Every drill the writer reported as recorded is there, complete with its checks.
        for i in range(last + 1):
            assert f"w{i:06d}" in ids
        from drills.adapters.store.history import CHECK_RESULTS

        n_checks = h.count(CHECK_RESULTS)
        finished = len([d for d in h.drills() if d.status == DrillStatus.FINISHED])
        assert n_checks == 2 * finished
