"""Trainee history: a local SQLite database of every drill, its checks, the roles people held, monthly picks.

The training ladder and the monthly chaos test both need memory across drills: how many drills someone
observed or led, how their checks went over time, which scenario ran last month. That memory must survive the
very thing drills provoke, a crash: the drill's row is written (status ``running``) and committed before the
fault goes in, and finished afterwards; a drill whose process died stays ``running`` until :meth:`History.
reconcile` reads its journal (which is fsync'd per event) and marks it ``finished`` or ``crashed``.

Standard library ``sqlite3`` in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns), a
busy timeout for the plan runner's threads and other processes, and numbered migrations recorded in
``schema_migrations`` so an old database is upgraded in place and a newer one is refused, never misread.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.store.journal import read_journal
from drills.adapters.store.paths import drills_dir, state_dir
from drills.engine.ladder import DrillRecord, DrillStatus, HeldRole, TraineeHistory
from drills.engine.schedule import MonthlyPick
from drills.errors import DrillError, JournalError
from drills.model.events import CommsPosted, DrillEnded, DrillStarted, Event, Note, RoleAssigned, Source
from drills.model.scorecard import CheckStatus, Scorecard
from drills.model.severity import Severity
from drills.timing import SYSTEM_CLOCK, Clock, utc

HISTORY_FILE = "history.sqlite3"

Scorer = Callable[[Sequence[Event]], Scorecard]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


#: Append only: never edit a released migration, add the next number.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "drills, check results, roles held",
        (
            """CREATE TABLE drills (
                id TEXT PRIMARY KEY,
                scenario TEXT NOT NULL,
                scenario_title TEXT,
                category TEXT,
                trainee TEXT,
                mode TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'crashed')),
                outcome TEXT,
                score REAL,
                grade TEXT,
                passed INTEGER,
                true_severity TEXT,
                started TEXT NOT NULL,
                ended TEXT,
                is_drill INTEGER NOT NULL DEFAULT 1,
                journal TEXT,
                pid INTEGER,
                host TEXT
            )""",
            "CREATE INDEX drills_by_trainee ON drills (trainee, started)",
            "CREATE INDEX drills_by_status ON drills (status)",
            """CREATE TABLE check_results (
                drill_id TEXT NOT NULL REFERENCES drills (id) ON DELETE CASCADE,
                check_id TEXT NOT NULL,
                family TEXT NOT NULL,
                status TEXT NOT NULL,
                target_seconds REAL,
                measured_seconds REAL,
                PRIMARY KEY (drill_id, check_id)
            )""",
            """CREATE TABLE roles_held (
                drill_id TEXT NOT NULL,
                person TEXT NOT NULL,
                role TEXT NOT NULL,
                at TEXT,
                PRIMARY KEY (drill_id, person, role)
            )""",
            "CREATE INDEX roles_by_person ON roles_held (person)",
        ),
    ),
    Migration(
        2,
        "monthly chaos test picks",
        (
            """CREATE TABLE monthly_picks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                month TEXT NOT NULL,
                picked_at TEXT NOT NULL,
                seed INTEGER NOT NULL,
                scenario TEXT NOT NULL,
                slot TEXT NOT NULL,
                detail TEXT NOT NULL,
                drill_id TEXT,
                status TEXT NOT NULL DEFAULT 'picked' CHECK (status IN ('picked', 'ran', 'failed'))
            )""",
            "CREATE INDEX picks_by_month ON monthly_picks (month, picked_at)",
        ),
    ),
    Migration(
        3,
        "plans and teams on drills; the debrief's check",
        (
            "ALTER TABLE drills ADD COLUMN plan_id TEXT",
            "ALTER TABLE drills ADD COLUMN team TEXT",
            "ALTER TABLE drills ADD COLUMN improve_next TEXT",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


class HistoryError(DrillError):
    pass


def history_path() -> Path:
    return state_dir() / HISTORY_FILE


def _iso(at: datetime | None) -> str | None:
    return None if at is None else utc(at).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def _seconds(td: timedelta | None) -> float | None:
    return None if td is None else td.total_seconds()


def roles_from_events(events: Sequence[Event]) -> list[tuple[str, HeldRole, datetime]]:
    """Who held which role in a drill, as the journal shows it (first time each).

    The trainee is the responder; ``role.assigned`` names the seed's roles; whoever wrote a note or posted
    comms by hand kept the record (scribe). Bots and drills itself hold no roles.
    """
    out: dict[tuple[str, HeldRole], datetime] = {}
    for e in events:
        if isinstance(e, DrillStarted) and e.trainee:
            out.setdefault((e.trainee, HeldRole.RESPONDER), e.at)
        elif isinstance(e, RoleAssigned) and e.source != Source.BOT:
            out.setdefault((e.person, HeldRole(e.role.value)), e.at)
        elif isinstance(e, Note | CommsPosted) and e.source == Source.HUMAN and e.actor:
            out.setdefault((e.actor, HeldRole.SCRIBE), e.at)
    return [(person, role, at) for (person, role), at in out.items()]


class History:
    """The history database. One per state directory; safe across threads (one lock) and processes (WAL)."""

    def __init__(self, path: Path | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = Path(path) if path is not None else history_path()
        self.clock = clock
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=10000")
            self.migrate()
        except sqlite3.DatabaseError as e:
            raise HistoryError(
                f"cannot open the history database {self.path}: {e}",
                hint="move the file aside to start a new history (journals in the state directory can be "
                "imported again with `drill history sync`)",
            ) from e

    # ---- plumbing -----------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._db.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return list(cur.fetchall())

    def version(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            if row is None:
                return 0
            (v,) = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
            return int(v)

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
        """Apply the migrations this database lacks, each in its own transaction; returns those applied."""
        applied: list[int] = []
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        current = self.version()
        newest = migrations[-1].version if migrations else 0
        if current > newest:
            raise HistoryError(
                f"the history database {self.path} is at schema version {current}, newer than this drills "
                f"({newest})",
                hint="upgrade drills, or point DRILLS_STATE at another directory",
            )
        for m in migrations:
            if m.version <= current:
                continue
            with self._tx() as db:
                for statement in m.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, _iso(self.clock.now())),
                )
            applied.append(m.version)
        return applied

    # ---- drills -------------------------------------------------------------------------------------------

    def record_start(
        self, started: DrillStarted, *, journal: Path | None = None, pid: int | None = None
    ) -> None:
        """Write the drill's row as ``running``, durably, before anything can crash it."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO drills (id, scenario, scenario_title, category, trainee, mode, status,
                       true_severity, started, is_drill, journal, pid, host, plan_id, team)
                   VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO NOTHING""",
                (
                    started.drill_id,
                    started.scenario_id,
                    started.scenario_title,
                    started.category,
                    started.trainee,
                    started.mode.value,
                    started.true_severity.value,
                    _iso(started.at),
                    int(started.is_drill),
                    None if journal is None else str(journal),
                    os.getpid() if pid is None else pid,
                    socket.gethostname(),
                    started.plan_id,
                    started.team,
                ),
            )
            if started.trainee:
                db.execute(
                    "INSERT OR IGNORE INTO roles_held (drill_id, person, role, at) VALUES (?, ?, ?, ?)",
                    (started.drill_id, started.trainee, HeldRole.RESPONDER.value, _iso(started.at)),
                )

    def record_result(
        self,
        scorecard: Scorecard,
        events: Sequence[Event],
        *,
        journal: Path | None = None,
        status: DrillStatus = DrillStatus.FINISHED,
    ) -> None:
        """Finish a drill's row with its scorecard, check results and the roles people held."""
        started = next((e for e in events if isinstance(e, DrillStarted)), None)
        if started is not None:
            self.record_start(started, journal=journal, pid=0)
        ended_at = next((e.at for e in reversed(events) if isinstance(e, DrillEnded)), None)
        if ended_at is None and events:
            ended_at = max(e.at for e in events)
        with self._tx() as db:
            db.execute(
                """UPDATE drills SET status = ?, outcome = ?, score = ?, grade = ?, passed = ?, ended = ?,
                       improve_next = ?, pid = NULL WHERE id = ?""",
                (
                    status.value,
                    scorecard.outcome or None,
                    scorecard.score,
                    scorecard.grade,
                    int(scorecard.passed),
                    _iso(ended_at),
                    scorecard.improve_next,
                    scorecard.drill_id,
                ),
            )
            db.execute("DELETE FROM check_results WHERE drill_id = ?", (scorecard.drill_id,))
            db.executemany(
                """INSERT INTO check_results
                       (drill_id, check_id, family, status, target_seconds, measured_seconds)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [
                    (
                        scorecard.drill_id,
                        c.id,
                        c.family.value,
                        c.status.value,
                        _seconds(c.target),
                        _seconds(c.measured),
                    )
                    for c in scorecard.checks
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO roles_held (drill_id, person, role, at) VALUES (?, ?, ?, ?)",
                [(scorecard.drill_id, p, r.value, _iso(at)) for p, r, at in roles_from_events(events)],
            )

    def mark_crashed(self, drill_id: str, *, ended: datetime | None, reason: str = "crashed") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE drills SET status = 'crashed', outcome = ?, ended = ?, pid = NULL WHERE id = ?",
                (reason, _iso(ended), drill_id),
            )

    def record_role(self, drill_id: str, person: str, role: HeldRole, at: datetime | None = None) -> None:
        """A role held outside the journal (an observer following on a second screen)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO roles_held (drill_id, person, role, at) VALUES (?, ?, ?, ?)",
                (drill_id, person, role.value, _iso(at or self.clock.now())),
            )

    def status_of(self, drill_id: str) -> DrillStatus | None:
        rows = self._rows("SELECT status FROM drills WHERE id = ?", (drill_id,))
        return DrillStatus(rows[0]["status"]) if rows else None

    def drill_ids(self) -> set[str]:
        return {r["id"] for r in self._rows("SELECT id FROM drills")}

    # ---- crash recovery -----------------------------------------------------------------------------------

    def reconcile(self, *, score: Scorer | None = None) -> list[tuple[str, DrillStatus]]:
        """Settle drills left ``running`` by a process that is gone, from their journals.

        A journal that reached ``drill.ended`` is scored and finished (the process died after the end, e.g.
        while writing reports); otherwise the drill is ``crashed``, ended at its last event. Drills whose
        process still runs on this host are left alone. ``score`` defaults to the engine's scorer.
        """
        settled: list[tuple[str, DrillStatus]] = []
        host = socket.gethostname()
        for row in self._rows("SELECT id, journal, pid, host, started FROM drills WHERE status = 'running'"):
            if row["host"] == host and row["pid"] and _alive(int(row["pid"])):
                continue
            events = _journal_events(row["journal"])
            ended = next((e for e in reversed(events) if isinstance(e, DrillEnded)), None)
            if ended is not None:
                self.record_result((score or _default_scorer())(events), events, journal=None)
                settled.append((row["id"], DrillStatus.FINISHED))
                continue
            last = max((e.at for e in events), default=_dt(row["started"]))
            with self._tx() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO roles_held (drill_id, person, role, at) VALUES (?, ?, ?, ?)",
                    [(row["id"], p, r.value, _iso(at)) for p, r, at in roles_from_events(events)],
                )
            self.mark_crashed(row["id"], ended=last, reason="crashed (process gone; reconciled from journal)")
            settled.append((row["id"], DrillStatus.CRASHED))
        return settled

    def sync(self, root: Path | None = None, *, score: Scorer | None = None) -> list[str]:
        """Import journals under ``root`` (default: the state directory's drills) that the history lacks."""
        known = self.drill_ids()
        imported: list[str] = []
        base = root or drills_dir()
        if not base.is_dir():
            return imported
        for journal in sorted(base.glob("*/journal.jsonl")):
            try:
                read = read_journal(journal)
            except JournalError:
                continue
            started = read.drill_started
            if started is None or started.drill_id in known:
                continue
            self.record_start(started, journal=journal, pid=0)
            if any(isinstance(e, DrillEnded) for e in read.events):
                self.record_result((score or _default_scorer())(read.events), read.events, journal=journal)
            else:
                last = max(e.at for e in read.events)
                self.mark_crashed(
                    started.drill_id, ended=last, reason="crashed (imported: journal never ended)"
                )
            imported.append(started.drill_id)
        return imported

    # ---- reading ------------------------------------------------------------------------------------------

    def trainee(self, name: str) -> TraineeHistory:
        """Everything ``name`` took part in, as the ladder reads it."""
        drills = self._rows(
            """SELECT d.* FROM drills d WHERE d.trainee = ?
               OR d.id IN (SELECT drill_id FROM roles_held WHERE person = ?)
               ORDER BY d.started, d.id""",
            (name, name),
        )
        roles: dict[str, set[HeldRole]] = {}
        for r in self._rows("SELECT drill_id, role FROM roles_held WHERE person = ?", (name,)):
            roles.setdefault(r["drill_id"], set()).add(HeldRole(r["role"]))
        checks: dict[str, dict[str, CheckStatus]] = {}
        for r in self._rows(
            """SELECT c.drill_id, c.check_id, c.status FROM check_results c JOIN drills d ON d.id = c.drill_id
               WHERE d.trainee = ?""",
            (name,),
        ):
            checks.setdefault(r["drill_id"], {})[r["check_id"]] = CheckStatus(r["status"])
        records = [_record(r, roles.get(r["id"], set()), checks.get(r["id"], {})) for r in drills]
        # Observed drills that are not (yet) in the drills table still count as observations.
        known = {r.drill_id for r in records}
        for drill_id, held in roles.items():
            if drill_id not in known:
                at = self._rows(
                    "SELECT MIN(at) AS at FROM roles_held WHERE drill_id = ? AND person = ?", (drill_id, name)
                )[0]["at"]
                records.append(
                    DrillRecord(
                        drill_id=drill_id,
                        scenario="?",
                        started=_dt(at) or datetime(1970, 1, 1, tzinfo=UTC),
                        status=DrillStatus.FINISHED,
                        roles=frozenset(held),
                    )
                )
        records.sort(key=lambda r: (r.started, r.drill_id))
        return TraineeHistory(name, tuple(records))

    def people(self) -> list[str]:
        rows = self._rows(
            "SELECT person FROM roles_held "
            "UNION SELECT trainee FROM drills WHERE trainee IS NOT NULL ORDER BY 1"
        )
        return [r[0] for r in rows]

    def drills(self, *, status: DrillStatus | None = None) -> list[DrillRecord]:
        sql = "SELECT * FROM drills"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status.value,)
        return [_record(r, set(), {}) for r in self._rows(sql + " ORDER BY started, id", params)]

    # ---- monthly picks ------------------------------------------------------------------------------------

    def record_pick(self, pick: MonthlyPick, *, drill_id: str | None = None, status: str = "picked") -> int:
        with self._tx() as db:
            cur = db.execute(
                """INSERT INTO monthly_picks
                       (month, picked_at, seed, scenario, slot, detail, drill_id, status)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    pick.month,
                    _iso(self.clock.now()),
                    pick.seed,
                    pick.scenario_id,
                    _iso(pick.at),
                    json.dumps(pick.as_dict(), sort_keys=True),
                    drill_id,
                    status,
                ),
            )
            return int(cur.lastrowid or 0)

    def update_pick(self, pick_id: int, *, status: str, drill_id: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE monthly_picks SET status = ?, drill_id = COALESCE(?, drill_id) WHERE id = ?",
                (status, drill_id, pick_id),
            )

    def picks(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM monthly_picks ORDER BY month, picked_at, id")
        return [
            {
                "id": r["id"],
                "month": r["month"],
                "picked_at": r["picked_at"],
                "seed": r["seed"],
                "scenario": r["scenario"],
                "slot": r["slot"],
                "drill_id": r["drill_id"],
                "status": r["status"],
                "detail": json.loads(r["detail"]),
            }
            for r in rows
        ]

    def last_run_scenario(self, before_month: str) -> str | None:
        """The scenario of the latest monthly test that ran before ``before_month`` (YYYY-MM)."""
        rows = self._rows(
            """SELECT scenario FROM monthly_picks WHERE status = 'ran' AND month < ?
               ORDER BY month DESC, picked_at DESC, id DESC LIMIT 1""",
            (before_month,),
        )
        return rows[0]["scenario"] if rows else None

    def ran_in(self, month: str) -> bool:
        return bool(self._rows("SELECT 1 FROM monthly_picks WHERE month = ? AND status = 'ran'", (month,)))


def _default_scorer() -> Scorer:
    # Imported when first needed: the scorer is the heaviest module of the engine.
    from drills.engine.scoring import score

    def scorer(events: Sequence[Event]) -> Scorecard:
        return score(events)

    return scorer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _journal_events(path: str | None) -> list[Event]:
    if not path:
        return []
    try:
        return list(read_journal(Path(path)).events)
    except JournalError:
        return []


def _record(row: sqlite3.Row, roles: Iterable[HeldRole], checks: dict[str, CheckStatus]) -> DrillRecord:
    return DrillRecord(
        drill_id=row["id"],
        scenario=row["scenario"],
        started=_dt(row["started"]) or datetime(1970, 1, 1, tzinfo=UTC),
        status=DrillStatus(row["status"]),
        mode=row["mode"],
        trainee=row["trainee"],
        ended=_dt(row["ended"]),
        outcome=row["outcome"],
        score=row["score"],
        grade=row["grade"],
        passed=None if row["passed"] is None else bool(row["passed"]),
        true_severity=Severity(row["true_severity"]) if row["true_severity"] else None,
        is_drill=bool(row["is_drill"]),
        roles=frozenset(roles),
        checks=dict(checks),
        improve_next=row["improve_next"],
    )


__all__ = [
    "HISTORY_FILE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "History",
    "HistoryError",
    "Migration",
    "history_path",
    "roles_from_events",
]
