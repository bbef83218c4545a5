"""Team history: an index of every drill, its checks, the roles people held, its report summary and action
items, and the monthly picks, in SQLite by default or in PostgreSQL when a team shares one.

The training ladder, the monthly report, the on-call handoff and `drill history` all need memory across
drills. The journals stay the source of truth: this is an index of them, rebuilt whole by `drill history
reindex` (``drills.reporting.index``), so a lost or broken index costs a rebuild, never a drill.

Why SQLAlchemy 2 (Core, typed) with Alembic rather than psycopg 3 directly: one code path serves both
databases. The queries are written once as Core expressions and compiled for whichever dialect the URL names
(SQLite's ``?`` and PostgreSQL's ``%s`` placeholders, ``ON CONFLICT`` spelled for each, booleans, autoincrement),
and the migrations are Alembic revisions that both can run (``render_as_batch`` covers SQLite's limited
``ALTER TABLE``). With psycopg alone we would keep two sets of SQL and a migration runner of our own. The ORM
is not used: the rows are few and flat, and the roll-ups want plain tuples fast. psycopg 3 is the PostgreSQL
driver (``postgresql+psycopg://``).

It must survive the very thing drills provoke, a crash: the drill's row is written (status ``running``) and
committed before the fault goes in, and finished afterwards; a drill whose process died stays ``running``
until :meth:`History.reconcile` reads its journal (fsync'd per event) and marks it ``finished`` or
``crashed``. SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns) and
``BEGIN IMMEDIATE`` transactions with a busy timeout, for the plan runner's threads and other processes.

Schema versions are Alembic revisions (``migrations/versions``), run programmatically on open: an old
database is upgraded in place; one from before Alembic (the hand-written store's ``schema_migrations``,
versions 1-3) is brought to version 3 and stamped; a newer one (a revision this drills does not know) is
refused, never misread.

``DRILLS_DATABASE_URL`` (for example ``postgresql+psycopg://drills@127.0.0.1:5432/drills``) selects the
database; without it, ``history.sqlite3`` in the state directory. A URL's password is never printed: every
message shows it masked.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from drills.adapters.store.journal import read_journal
from drills.adapters.store.paths import drills_dir, state_dir
from drills.engine.ladder import DrillRecord, DrillStatus, HeldRole, TraineeHistory
from drills.engine.schedule import MonthlyPick
from drills.errors import DrillError, JournalError
from drills.model.events import CommsPosted, DrillEnded, DrillStarted, Event, Note, RoleAssigned, Source
from drills.model.scorecard import CheckStatus, Scorecard
from drills.model.severity import Severity
from drills.model.summary import DrillSummary, TrackedAction
from drills.timing import SYSTEM_CLOCK, Clock, utc

HISTORY_FILE = "history.sqlite3"
DATABASE_URL_ENV = "DRILLS_DATABASE_URL"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The hand-written store's last ``schema_migrations`` version; revision 0001 is that schema.
LEGACY_SCHEMA_VERSION = 3
#: Written into an upgraded database's ``schema_migrations``, so an older drills refuses it clearly
#: ("schema version 1000, newer than this drills") instead of misreading it.
LEGACY_FENCE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Scorer = Callable[[Sequence[Event]], Scorecard]


class HistoryError(DrillError):
    pass


# ---- schema (mirrors migrations/versions; a test compares them) -------------------------------------------

METADATA = sa.MetaData()

DRILLS = sa.Table(
    "drills",
    METADATA,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("scenario", sa.String, nullable=False),
    sa.Column("scenario_title", sa.String),
    sa.Column("category", sa.String),
    sa.Column("trainee", sa.String),
    sa.Column("mode", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("outcome", sa.String),
    sa.Column("score", sa.Double),
    sa.Column("grade", sa.String),
    sa.Column("passed", sa.Integer),
    sa.Column("true_severity", sa.String),
    sa.Column("started", sa.String, nullable=False),
    sa.Column("ended", sa.String),
    sa.Column("is_drill", sa.Integer, nullable=False, server_default="1"),
    sa.Column("journal", sa.String),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String),
    sa.Column("plan_id", sa.String),
    sa.Column("team", sa.String),
    sa.Column("improve_next", sa.String),
    sa.CheckConstraint("status IN ('running', 'finished', 'crashed')", name="drills_status"),
)
sa.Index("drills_by_trainee", DRILLS.c.trainee, DRILLS.c.started)
sa.Index("drills_by_status", DRILLS.c.status)

CHECK_RESULTS = sa.Table(
    "check_results",
    METADATA,
    sa.Column("drill_id", sa.String, sa.ForeignKey("drills.id", ondelete="CASCADE"), nullable=False),
    sa.Column("check_id", sa.String, nullable=False),
    sa.Column("family", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("target_seconds", sa.Double),
    sa.Column("measured_seconds", sa.Double),
    sa.PrimaryKeyConstraint("drill_id", "check_id"),
)

ROLES_HELD = sa.Table(
    "roles_held",
    METADATA,
    sa.Column("drill_id", sa.String, nullable=False),
    sa.Column("person", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("at", sa.String),
    sa.PrimaryKeyConstraint("drill_id", "person", "role"),
)
sa.Index("roles_by_person", ROLES_HELD.c.person)

MONTHLY_PICKS = sa.Table(
    "monthly_picks",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("month", sa.String, nullable=False),
    sa.Column("picked_at", sa.String, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("scenario", sa.String, nullable=False),
    sa.Column("slot", sa.String, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("drill_id", sa.String),
    sa.Column("status", sa.String, nullable=False, server_default="picked"),
    sa.CheckConstraint("status IN ('picked', 'ran', 'failed')", name="picks_status"),
)
sa.Index("picks_by_month", MONTHLY_PICKS.c.month, MONTHLY_PICKS.c.picked_at)

SUMMARIES = sa.Table(
    "drill_summaries",
    METADATA,
    sa.Column("drill_id", sa.String, primary_key=True),
    sa.Column("scenario_id", sa.String, nullable=False),
    sa.Column("title", sa.String, nullable=False),
    sa.Column("category", sa.String, nullable=False),
    sa.Column("is_drill", sa.Boolean, nullable=False),
    sa.Column("started", sa.String),
    sa.Column("true_severity", sa.String, nullable=False),
    sa.Column("declared_severity", sa.String),
    sa.Column("outcome", sa.String, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("grade", sa.String, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("ttd", sa.Double),
    sa.Column("tta", sa.Double),
    sa.Column("ttm", sa.Double),
    sa.Column("ttr", sa.Double),
    sa.Column("resolved", sa.Boolean, nullable=False),
    sa.Column("team", sa.String),
    # The drill's action items again, as one JSON list of [id, text, owner, due, checks, status]: the
    # monthly report reads every item of its window, and one value per drill reads several times faster
    # than a row per item. ``action_items`` is the same, one row per item, for queries.
    sa.Column("actions", sa.Text, nullable=False, server_default="[]"),
    sa.Column("postmortem", sa.String),
    sa.Column("postmortem_mtime_ns", sa.BigInteger),
)
sa.Index("summaries_by_started", SUMMARIES.c.started)

ACTION_ITEMS = sa.Table(
    "action_items",
    METADATA,
    sa.Column(
        "drill_id", sa.String, sa.ForeignKey("drill_summaries.drill_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("item_id", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("due", sa.String, nullable=False),
    sa.Column("check_id", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.PrimaryKeyConstraint("drill_id", "position"),
)

#: Tables the index holds, children first (the order to empty them in).
INDEX_TABLES = (ACTION_ITEMS, SUMMARIES, CHECK_RESULTS, ROLES_HELD, DRILLS)


@dataclass(frozen=True)
class IndexedSummary:
    """A drill's summary for the index, and the postmortem its action items were read from (if any)."""

    summary: DrillSummary
    postmortem: Path | None = None
    postmortem_mtime_ns: int | None = None


@dataclass(frozen=True)
class JournalEntry:
    """One journal for :meth:`History.record_journals`: its start, events, scorecard (None: never ended)."""

    started: DrillStarted
    events: Sequence[Event]
    journal: Path | None
    scorecard: Scorecard | None
    summary: IndexedSummary | None = None


# ---- where ------------------------------------------------------------------------------------------------


def history_path() -> Path:
    return state_dir() / HISTORY_FILE


def database_url() -> str:
    """``$DRILLS_DATABASE_URL``, or the SQLite file in the state directory."""
    value = os.environ.get(DATABASE_URL_ENV, "").strip()
    return value or f"sqlite:///{history_path()}"


def masked(url: str) -> str:
    """The URL as it may be shown: the password replaced by ``***`` (never printed, never logged)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unparsable database URL)"


# ---- conversions ------------------------------------------------------------------------------------------


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


# ---- the store --------------------------------------------------------------------------------------------


class History:
    """The history index. Safe across threads (a pool of connections) and processes (WAL, or PostgreSQL).

    ``path`` is an SQLite file; ``url`` any SQLAlchemy URL; neither: :func:`database_url`.
    """

    def __init__(
        self, path: Path | None = None, *, url: str | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.clock = clock
        if path is not None:
            self.path: Path | None = Path(path)
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = url or database_url()
            self.path = None
        self.where = masked(self.url)
        self._engine = self._connect()
        try:
            self.migrate()
        except BaseException:
            self._engine.dispose()
            raise

    # ---- plumbing -----------------------------------------------------------------------------------------

    def _connect(self) -> Engine:
        try:
            parsed = make_url(self.url)
        except ArgumentError:
            # Not chained: the parser's message quotes the whole URL, password included.
            raise HistoryError(
                f"{DATABASE_URL_ENV} is not a database URL",
                hint="write it like postgresql+psycopg://user@127.0.0.1:5432/drills (the password can come "
                "from PGPASSWORD or ~/.pgpass instead of the URL)",
            ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise HistoryError(
                f"the history database {self.where} is neither SQLite nor PostgreSQL",
                hint=f"set {DATABASE_URL_ENV} to a postgresql+psycopg:// URL, or unset it for SQLite",
            )
        try:
            if self.dialect == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(parsed, connect_args={"timeout": 10.0, "check_same_thread": False})
                sa.event.listen(engine, "connect", _sqlite_connect)
                sa.event.listen(engine, "begin", _sqlite_begin)
            else:
                engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        except (NoSuchModuleError, ArgumentError, OSError) as e:
            raise HistoryError(
                f"cannot open the history database {self.where}: {type(e).__name__}",
                hint="check the URL's driver (postgresql+psycopg://) and that the directory is writable",
            ) from e
        return engine

    def _error(self, e: SQLAlchemyError) -> HistoryError:
        if self.dialect == "sqlite":
            return HistoryError(
                f"cannot use the history database {self.where}: {getattr(e, 'orig', e)}",
                hint="move the file aside to start a new index, then rebuild it from the journals with "
                "`drill history reindex`",
            )
        return HistoryError(
            f"cannot use the history database {self.where}: {_first_line(getattr(e, 'orig', e))}",
            hint="check that PostgreSQL is running and listening at that host and port, that the database "
            "exists, and the user and password (PGPASSWORD or ~/.pgpass); a lost database is rebuilt from "
            "the journals with `drill history reindex`",
        )

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise self._error(e) from e

    def _rows(self, statement: sa.Executable) -> list[sa.Row[Any]]:
        with self._tx() as conn:
            return list(conn.execute(statement))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _insert_ignore(self, table: sa.Table) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING``, as the dialect spells it."""
        if self.dialect == "postgresql":
            return pg_dialect.insert(table).on_conflict_do_nothing()
        return sqlite_dialect.insert(table).on_conflict_do_nothing()

    # ---- schema -------------------------------------------------------------------------------------------

    def _alembic(self, conn: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        return cfg

    def version(self) -> str | None:
        """The database's Alembic revision (None before the first migration)."""
        with self._tx() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str:
        with self._tx() as conn:
            head = ScriptDirectory.from_config(self._alembic(conn)).get_current_head()
        assert head is not None
        return head

    def migrate(self) -> None:
        """Bring the database to this drills' schema: upgrade an older one, refuse a newer one."""
        try:
            with self._engine.begin() as conn:
                self._adopt_legacy(conn)
                current = MigrationContext.configure(conn).get_current_revision()
                cfg = self._alembic(conn)
                if current is not None:
                    try:
                        ScriptDirectory.from_config(cfg).get_revision(current)
                    except CommandError:
                        raise HistoryError(
                            f"the history database {self.where} is at schema revision {current}, newer than "
                            "this drills",
                            hint="upgrade drills, or point DRILLS_STATE / DRILLS_DATABASE_URL elsewhere",
                        ) from None
                command.upgrade(cfg, "head")
        except SQLAlchemyError as e:
            raise self._error(e) from e

    def _adopt_legacy(self, conn: Connection) -> None:
        """A database of the hand-written store: finish its own migrations to v3, then stamp it 0001."""
        inspector = sa.inspect(conn)
        if not inspector.has_table("schema_migrations") or inspector.has_table("alembic_version"):
            return
        legacy = sa.table("schema_migrations", sa.column("version", sa.Integer))
        version = conn.execute(sa.select(sa.func.coalesce(sa.func.max(legacy.c.version), 0))).scalar_one()
        if version > LEGACY_SCHEMA_VERSION:
            raise HistoryError(
                f"the history database {self.where} is at schema version {version}, newer than this drills",
                hint="upgrade drills, or point DRILLS_STATE / DRILLS_DATABASE_URL elsewhere",
            )
        if self.dialect != "sqlite":
            raise HistoryError(
                f"the history database {self.where} has a schema_migrations table but no Alembic revision"
            )
        for migration in LEGACY_MIGRATIONS:
            if migration.version > version:
                for statement in migration.statements:
                    conn.exec_driver_sql(statement)
        conn.exec_driver_sql(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (LEGACY_FENCE, "moved to Alembic (alembic_version)", _iso(self.clock.now())),
        )
        command.stamp(self._alembic(conn), "0001")

    # ---- drills -------------------------------------------------------------------------------------------

    def record_start(
        self, started: DrillStarted, *, journal: Path | None = None, pid: int | None = None
    ) -> None:
        """Write the drill's row as ``running``, durably, before anything can crash it."""
        with self._tx() as conn:
            self._start(conn, started, journal=journal, pid=pid)

    def _start(
        self, conn: Connection, started: DrillStarted, *, journal: Path | None, pid: int | None
    ) -> None:
        conn.execute(
            self._insert_ignore(DRILLS).values(
                id=started.drill_id,
                scenario=started.scenario_id,
                scenario_title=started.scenario_title,
                category=started.category,
                trainee=started.trainee,
                mode=started.mode.value,
                status=DrillStatus.RUNNING.value,
                true_severity=started.true_severity.value,
                started=_iso(started.at),
                is_drill=int(started.is_drill),
                journal=None if journal is None else str(journal),
                pid=os.getpid() if pid is None else pid,
                host=socket.gethostname(),
                plan_id=started.plan_id,
                team=started.team,
            )
        )
        if started.trainee:
            conn.execute(
                self._insert_ignore(ROLES_HELD).values(
                    drill_id=started.drill_id,
                    person=started.trainee,
                    role=HeldRole.RESPONDER.value,
                    at=_iso(started.at),
                )
            )

    def record_result(
        self,
        scorecard: Scorecard,
        events: Sequence[Event],
        *,
        journal: Path | None = None,
        status: DrillStatus = DrillStatus.FINISHED,
        summary: IndexedSummary | None = None,
    ) -> None:
        """Finish a drill's row with its scorecard, check results, the roles people held (and its summary)."""
        with self._tx() as conn:
            self._result(conn, scorecard, events, journal=journal, status=status)
            if summary is not None:
                self._index(conn, [summary])

    def _result(
        self,
        conn: Connection,
        scorecard: Scorecard,
        events: Sequence[Event],
        *,
        journal: Path | None,
        status: DrillStatus,
    ) -> None:
        started = next((e for e in events if isinstance(e, DrillStarted)), None)
        if started is not None:
            self._start(conn, started, journal=journal, pid=0)
        ended_at = next((e.at for e in reversed(events) if isinstance(e, DrillEnded)), None)
        if ended_at is None and events:
            ended_at = max(e.at for e in events)
        conn.execute(
            DRILLS.update()
            .where(DRILLS.c.id == scorecard.drill_id)
            .values(
                status=status.value,
                outcome=scorecard.outcome or None,
                score=scorecard.score,
                grade=scorecard.grade,
                passed=int(scorecard.passed),
                ended=_iso(ended_at),
                improve_next=scorecard.improve_next,
                pid=None,
            )
        )
        conn.execute(CHECK_RESULTS.delete().where(CHECK_RESULTS.c.drill_id == scorecard.drill_id))
        if scorecard.checks:
            conn.execute(
                CHECK_RESULTS.insert(),
                [
                    {
                        "drill_id": scorecard.drill_id,
                        "check_id": c.id,
                        "family": c.family.value,
                        "status": c.status.value,
                        "target_seconds": _seconds(c.target),
                        "measured_seconds": _seconds(c.measured),
                    }
                    for c in scorecard.checks
                ],
            )
        self._roles(conn, scorecard.drill_id, events)

    def _roles(self, conn: Connection, drill_id: str, events: Sequence[Event]) -> None:
        roles = roles_from_events(events)
        if roles:
            conn.execute(
                self._insert_ignore(ROLES_HELD),
                [{"drill_id": drill_id, "person": p, "role": r.value, "at": _iso(at)} for p, r, at in roles],
            )

    def _crashed(self, conn: Connection, drill_id: str, *, ended: datetime | None, reason: str) -> None:
        conn.execute(
            DRILLS.update()
            .where(DRILLS.c.id == drill_id)
            .values(status=DrillStatus.CRASHED.value, outcome=reason, ended=_iso(ended), pid=None)
        )

    def mark_crashed(self, drill_id: str, *, ended: datetime | None, reason: str = "crashed") -> None:
        with self._tx() as conn:
            self._crashed(conn, drill_id, ended=ended, reason=reason)

    def record_role(self, drill_id: str, person: str, role: HeldRole, at: datetime | None = None) -> None:
        """A role held outside the journal (an observer following on a second screen)."""
        with self._tx() as conn:
            conn.execute(
                self._insert_ignore(ROLES_HELD).values(
                    drill_id=drill_id, person=person, role=role.value, at=_iso(at or self.clock.now())
                )
            )

    def status_of(self, drill_id: str) -> DrillStatus | None:
        rows = self._rows(sa.select(DRILLS.c.status).where(DRILLS.c.id == drill_id))
        return DrillStatus(rows[0].status) if rows else None

    def drill_ids(self) -> set[str]:
        return {r.id for r in self._rows(sa.select(DRILLS.c.id))}

    # ---- crash recovery -----------------------------------------------------------------------------------

    def reconcile(self, *, score: Scorer | None = None) -> list[tuple[str, DrillStatus]]:
        """Settle drills left ``running`` by a process that is gone, from their journals.

        A journal that reached ``drill.ended`` is scored and finished (the process died after the end, e.g.
        while writing reports); otherwise the drill is ``crashed``, ended at its last event. Drills whose
        process still runs on this host are left alone. ``score`` defaults to the engine's scorer.
        """
        settled: list[tuple[str, DrillStatus]] = []
        host = socket.gethostname()
        running = self._rows(
            sa.select(DRILLS.c.id, DRILLS.c.journal, DRILLS.c.pid, DRILLS.c.host, DRILLS.c.started).where(
                DRILLS.c.status == DrillStatus.RUNNING.value
            )
        )
        for row in running:
            if row.host == host and row.pid and _alive(int(row.pid)):
                continue
            if row.host != host and self.dialect == "postgresql":
                continue  # another machine's drill: only that machine can tell whether it still runs
            events = _journal_events(row.journal)
            ended = next((e for e in reversed(events) if isinstance(e, DrillEnded)), None)
            if ended is not None:
                self.record_result((score or _default_scorer())(events), events, journal=None)
                settled.append((row.id, DrillStatus.FINISHED))
                continue
            last = max((e.at for e in events), default=_dt(row.started))
            with self._tx() as conn:
                self._roles(conn, row.id, events)
                self._crashed(
                    conn, row.id, ended=last, reason="crashed (process gone; reconciled from journal)"
                )
            settled.append((row.id, DrillStatus.CRASHED))
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
            self.record_journal(started, read.events, journal, score=score)
            imported.append(started.drill_id)
        return imported

    def record_journal(
        self,
        started: DrillStarted,
        events: Sequence[Event],
        journal: Path | None,
        *,
        score: Scorer | None = None,
    ) -> DrillStatus:
        """A whole journal, at once: finished (scored) when it reached ``drill.ended``, else crashed."""
        ended = any(isinstance(e, DrillEnded) for e in events)
        card = (score or _default_scorer())(events) if ended else None
        self.record_journals([JournalEntry(started, events, journal, card)])
        return DrillStatus.FINISHED if ended else DrillStatus.CRASHED

    def record_journals(self, entries: Sequence[JournalEntry]) -> None:
        """Several journals in one transaction (a reindex): each drill's row, checks, roles and summary.

        The same rows as :meth:`record_start` then :meth:`record_result` (or :meth:`mark_crashed`) would
        write, in a few statements per batch rather than a few per drill: a reindex of 10,000 drills is
        otherwise mostly statement overhead.
        """
        if not entries:
            return
        host = socket.gethostname()
        starts: list[dict[str, Any]] = []
        finished: list[dict[str, Any]] = []
        crashed: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []
        roles: list[dict[str, Any]] = []
        for entry in entries:
            started, events, drill_id = entry.started, entry.events, entry.started.drill_id
            starts.append(
                {
                    "id": drill_id,
                    "scenario": started.scenario_id,
                    "scenario_title": started.scenario_title,
                    "category": started.category,
                    "trainee": started.trainee,
                    "mode": started.mode.value,
                    "status": DrillStatus.RUNNING.value,
                    "true_severity": started.true_severity.value,
                    "started": _iso(started.at),
                    "is_drill": int(started.is_drill),
                    "journal": None if entry.journal is None else str(entry.journal),
                    "pid": 0,
                    "host": host,
                    "plan_id": started.plan_id,
                    "team": started.team,
                }
            )
            roles += [
                {"drill_id": drill_id, "person": p, "role": r.value, "at": _iso(at)}
                for p, r, at in roles_from_events(events)
            ]
            ended = next((e.at for e in reversed(events) if isinstance(e, DrillEnded)), None)
            card = entry.scorecard
            if card is not None and ended is not None:
                finished.append(
                    {
                        "b_id": drill_id,
                        "b_status": DrillStatus.FINISHED.value,
                        "b_outcome": card.outcome or None,
                        "b_score": card.score,
                        "b_grade": card.grade,
                        "b_passed": int(card.passed),
                        "b_ended": _iso(ended),
                        "b_improve_next": card.improve_next,
                    }
                )
                checks += [
                    {
                        "drill_id": drill_id,
                        "check_id": c.id,
                        "family": c.family.value,
                        "status": c.status.value,
                        "target_seconds": _seconds(c.target),
                        "measured_seconds": _seconds(c.measured),
                    }
                    for c in card.checks
                ]
            else:
                crashed.append(
                    {
                        "b_id": drill_id,
                        "b_outcome": "crashed (imported: journal never ended)",
                        "b_ended": _iso(max((e.at for e in events), default=started.at)),
                    }
                )
        d = DRILLS.c
        with self._tx() as conn:
            conn.execute(self._insert_ignore(DRILLS), starts)
            if finished:
                conn.execute(
                    DRILLS.update()
                    .where(d.id == sa.bindparam("b_id"))
                    .values(
                        status=sa.bindparam("b_status"),
                        outcome=sa.bindparam("b_outcome"),
                        score=sa.bindparam("b_score"),
                        grade=sa.bindparam("b_grade"),
                        passed=sa.bindparam("b_passed"),
                        ended=sa.bindparam("b_ended"),
                        improve_next=sa.bindparam("b_improve_next"),
                        pid=None,
                    ),
                    finished,
                )
                for chunk in _chunks([f["b_id"] for f in finished], 500):
                    conn.execute(CHECK_RESULTS.delete().where(CHECK_RESULTS.c.drill_id.in_(chunk)))
            if checks:
                conn.execute(CHECK_RESULTS.insert(), checks)
            if crashed:
                conn.execute(
                    DRILLS.update()
                    .where(d.id == sa.bindparam("b_id"))
                    .values(
                        status=DrillStatus.CRASHED.value,
                        outcome=sa.bindparam("b_outcome"),
                        ended=sa.bindparam("b_ended"),
                        pid=None,
                    ),
                    crashed,
                )
            if roles:
                conn.execute(self._insert_ignore(ROLES_HELD), roles)
            self._index(conn, [e.summary for e in entries if e.summary is not None])

    # ---- the report index ---------------------------------------------------------------------------------

    def index(self, summaries: Iterable[IndexedSummary]) -> int:
        """Write (or replace) drills' summaries and action items, in one transaction; returns how many."""
        with self._tx() as conn:
            return self._index(conn, list(summaries))

    def _index(self, conn: Connection, items: Sequence[IndexedSummary]) -> int:
        if not items:
            return 0
        ids = [i.summary.drill_id for i in items]
        for chunk in _chunks(ids, 500):
            conn.execute(ACTION_ITEMS.delete().where(ACTION_ITEMS.c.drill_id.in_(chunk)))
            conn.execute(SUMMARIES.delete().where(SUMMARIES.c.drill_id.in_(chunk)))
        conn.execute(SUMMARIES.insert(), [_summary_row(i) for i in items])
        actions = [
            {
                "drill_id": i.summary.drill_id,
                "position": n,
                "item_id": a.id,
                "text": a.text,
                "owner": a.owner,
                "due": a.due,
                "check_id": a.check_id,
                "status": a.status,
            }
            for i in items
            for n, a in enumerate(i.summary.actions)
        ]
        if actions:
            conn.execute(ACTION_ITEMS.insert(), actions)
        return len(items)

    def update_actions(self, drill_id: str, actions: Sequence[TrackedAction], mtime_ns: int | None) -> None:
        """People edited the postmortem's action items: take their statuses (and wording) as they are now."""
        with self._tx() as conn:
            conn.execute(ACTION_ITEMS.delete().where(ACTION_ITEMS.c.drill_id == drill_id))
            if actions:
                conn.execute(
                    ACTION_ITEMS.insert(),
                    [
                        {
                            "drill_id": drill_id,
                            "position": n,
                            "item_id": a.id,
                            "text": a.text,
                            "owner": a.owner,
                            "due": a.due,
                            "check_id": a.check_id,
                            "status": a.status,
                        }
                        for n, a in enumerate(actions)
                    ],
                )
            conn.execute(
                SUMMARIES.update()
                .where(SUMMARIES.c.drill_id == drill_id)
                .values(postmortem_mtime_ns=mtime_ns, actions=_actions_json(actions))
            )

    def postmortems(self) -> dict[str, tuple[str | None, int | None]]:
        """drill id -> (postmortem path, its mtime when indexed), for every summary in the index."""
        rows = self._rows(
            sa.select(SUMMARIES.c.drill_id, SUMMARIES.c.postmortem, SUMMARIES.c.postmortem_mtime_ns)
        )
        return {r.drill_id: (r.postmortem, r.postmortem_mtime_ns) for r in rows}

    def summaries(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[DrillSummary]:
        """The indexed drills started in [since, until) (all of them without bounds), by start and id.

        One query, no ORM: this is the monthly report's whole read, and a month of 10,000 drills must roll
        up in about a second.
        """
        where: list[sa.ColumnElement[bool]] = []
        if since is not None:
            where.append(SUMMARIES.c.started >= _iso(since))
        if until is not None:
            where.append(SUMMARIES.c.started < _iso(until))
        c = SUMMARIES.c
        # Columns in DrillSummary's field order, unpacked by position (a Row's attribute lookup per field
        # was a third of the read); the action items come as one JSON value per drill.
        drills = (
            sa.select(
                c.drill_id, c.scenario_id, c.title, c.category, c.is_drill, c.started, c.true_severity,
                c.declared_severity, c.outcome, c.score, c.grade, c.passed, c.ttd, c.tta, c.ttm, c.ttr,
                c.resolved, c.actions, c.team,
            )
            .where(*where)
            .order_by(c.started, c.drill_id)
        )  # fmt: skip
        loads = json.loads
        with self._tx() as conn:
            return [
                DrillSummary(
                    drill_id, scenario_id, title, category, bool(is_drill), _dt(started), true_severity,
                    declared_severity, outcome, score, grade, bool(passed), ttd, tta, ttm, ttr,
                    bool(resolved), tuple(TrackedAction(drill_id, *item) for item in loads(actions)), team,
                )
                for (
                    drill_id, scenario_id, title, category, is_drill, started, true_severity, declared_severity,
                    outcome, score, grade, passed, ttd, tta, ttm, ttr, resolved, actions, team,
                ) in conn.execute(drills).all()
            ]  # fmt: skip

    def summary_ids(self) -> set[str]:
        return {r.drill_id for r in self._rows(sa.select(SUMMARIES.c.drill_id))}

    def clear_index(self) -> None:
        """Empty what the journals can rebuild (drills, checks, roles, summaries); monthly picks stay."""
        with self._tx() as conn:
            for table in INDEX_TABLES:
                conn.execute(table.delete())

    # ---- reading ------------------------------------------------------------------------------------------

    def trainee(self, name: str) -> TraineeHistory:
        """Everything ``name`` took part in, as the ladder reads it."""
        theirs = sa.select(ROLES_HELD.c.drill_id).where(ROLES_HELD.c.person == name)
        drills = self._rows(
            sa.select(DRILLS)
            .where(sa.or_(DRILLS.c.trainee == name, DRILLS.c.id.in_(theirs)))
            .order_by(DRILLS.c.started, DRILLS.c.id)
        )
        roles: dict[str, set[HeldRole]] = {}
        ats: dict[str, list[str]] = {}
        for r in self._rows(
            sa.select(ROLES_HELD.c.drill_id, ROLES_HELD.c.role, ROLES_HELD.c.at).where(
                ROLES_HELD.c.person == name
            )
        ):
            roles.setdefault(r.drill_id, set()).add(HeldRole(r.role))
            if r.at is not None:
                ats.setdefault(r.drill_id, []).append(r.at)
        checks: dict[str, dict[str, CheckStatus]] = {}
        for r in self._rows(
            sa.select(CHECK_RESULTS.c.drill_id, CHECK_RESULTS.c.check_id, CHECK_RESULTS.c.status)
            .join(DRILLS, DRILLS.c.id == CHECK_RESULTS.c.drill_id)
            .where(DRILLS.c.trainee == name)
        ):
            checks.setdefault(r.drill_id, {})[r.check_id] = CheckStatus(r.status)
        records = [_record(r, roles.get(r.id, set()), checks.get(r.id, {})) for r in drills]
        # Observed drills that are not (yet) in the drills table still count as observations.
        known = {r.drill_id for r in records}
        for drill_id, held in roles.items():
            if drill_id not in known:
                records.append(
                    DrillRecord(
                        drill_id=drill_id,
                        scenario="?",
                        started=_dt(min(ats.get(drill_id, []), default=None)) or EPOCH,
                        status=DrillStatus.FINISHED,
                        roles=frozenset(held),
                    )
                )
        records.sort(key=lambda r: (r.started, r.drill_id))
        return TraineeHistory(name, tuple(records))

    def people(self) -> list[str]:
        rows = self._rows(
            sa.union(
                sa.select(ROLES_HELD.c.person.label("name")),
                sa.select(DRILLS.c.trainee.label("name")).where(DRILLS.c.trainee.is_not(None)),
            )
        )
        return sorted(r.name for r in rows)

    def drills(self, *, status: DrillStatus | None = None) -> list[DrillRecord]:
        query = sa.select(DRILLS)
        if status is not None:
            query = query.where(DRILLS.c.status == status.value)
        return [_record(r, set(), {}) for r in self._rows(query.order_by(DRILLS.c.started, DRILLS.c.id))]

    def count(self, table: sa.Table) -> int:
        return int(self._rows(sa.select(sa.func.count()).select_from(table))[0][0])

    # ---- monthly picks ------------------------------------------------------------------------------------

    def record_pick(self, pick: MonthlyPick, *, drill_id: str | None = None, status: str = "picked") -> int:
        with self._tx() as conn:
            result = conn.execute(
                MONTHLY_PICKS.insert()
                .values(
                    month=pick.month,
                    picked_at=_iso(self.clock.now()),
                    seed=pick.seed,
                    scenario=pick.scenario_id,
                    slot=_iso(pick.at),
                    detail=json.dumps(pick.as_dict(), sort_keys=True),
                    drill_id=drill_id,
                    status=status,
                )
                .returning(MONTHLY_PICKS.c.id)
            )
            return int(result.scalar_one())

    def update_pick(self, pick_id: int, *, status: str, drill_id: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute(
                MONTHLY_PICKS.update()
                .where(MONTHLY_PICKS.c.id == pick_id)
                .values(status=status, drill_id=sa.func.coalesce(drill_id, MONTHLY_PICKS.c.drill_id))
            )

    def picks(self) -> list[dict[str, Any]]:
        rows = self._rows(
            sa.select(MONTHLY_PICKS).order_by(
                MONTHLY_PICKS.c.month, MONTHLY_PICKS.c.picked_at, MONTHLY_PICKS.c.id
            )
        )
        return [
            {
                "id": r.id,
                "month": r.month,
                "picked_at": r.picked_at,
                "seed": r.seed,
                "scenario": r.scenario,
                "slot": r.slot,
                "drill_id": r.drill_id,
                "status": r.status,
                "detail": json.loads(r.detail),
            }
            for r in rows
        ]

    def last_run_scenario(self, before_month: str) -> str | None:
        """The scenario of the latest monthly test that ran before ``before_month`` (YYYY-MM)."""
        p = MONTHLY_PICKS.c
        rows = self._rows(
            sa.select(p.scenario)
            .where(p.status == "ran", p.month < before_month)
            .order_by(p.month.desc(), p.picked_at.desc(), p.id.desc())
            .limit(1)
        )
        return rows[0].scenario if rows else None

    def ran_in(self, month: str) -> bool:
        p = MONTHLY_PICKS.c
        return bool(self._rows(sa.select(p.id).where(p.month == month, p.status == "ran").limit(1)))


# ---- the hand-written store's migrations (only to bring its databases to v3 before stamping) -----------


@dataclass(frozen=True)
class LegacyMigration:
    version: int
    name: str
    statements: tuple[str, ...]


#: The SQLite store's numbered migrations as released; never run on a new database (Alembic builds that).
LEGACY_MIGRATIONS: tuple[LegacyMigration, ...] = (
    LegacyMigration(
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
    LegacyMigration(
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
    LegacyMigration(
        3,
        "plans and teams on drills; the debrief's check",
        (
            "ALTER TABLE drills ADD COLUMN plan_id TEXT",
            "ALTER TABLE drills ADD COLUMN team TEXT",
            "ALTER TABLE drills ADD COLUMN improve_next TEXT",
        ),
    ),
)


# ---- helpers ----------------------------------------------------------------------------------------------


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is off: the "begin" listener below starts each one, IMMEDIATE, so a
    # writer waits for the lock (busy timeout) at BEGIN instead of failing halfway through.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(e: object) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _actions_json(actions: Sequence[TrackedAction]) -> str:
    return json.dumps(
        [[a.id, a.text, a.owner, a.due, a.check_id, a.status] for a in actions],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _summary_row(item: IndexedSummary) -> dict[str, Any]:
    s = item.summary
    return {
        "drill_id": s.drill_id,
        "scenario_id": s.scenario_id,
        "title": s.title,
        "category": s.category,
        "is_drill": s.is_drill,
        "started": _iso(s.started),
        "true_severity": s.true_severity,
        "declared_severity": s.declared_severity,
        "outcome": s.outcome,
        "score": s.score,
        "grade": s.grade,
        "passed": s.passed,
        "ttd": s.ttd,
        "tta": s.tta,
        "ttm": s.ttm,
        "ttr": s.ttr,
        "resolved": s.resolved,
        "team": s.team,
        "actions": _actions_json(s.actions),
        "postmortem": None if item.postmortem is None else str(item.postmortem),
        "postmortem_mtime_ns": item.postmortem_mtime_ns,
    }


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


def _record(row: sa.Row[Any], roles: Iterable[HeldRole], checks: dict[str, CheckStatus]) -> DrillRecord:
    return DrillRecord(
        drill_id=row.id,
        scenario=row.scenario,
        started=_dt(row.started) or EPOCH,
        status=DrillStatus(row.status),
        mode=row.mode,
        trainee=row.trainee,
        ended=_dt(row.ended),
        outcome=row.outcome,
        score=row.score,
        grade=row.grade,
        passed=None if row.passed is None else bool(row.passed),
        true_severity=Severity(row.true_severity) if row.true_severity else None,
        is_drill=bool(row.is_drill),
        roles=frozenset(roles),
        checks=dict(checks),
        improve_next=row.improve_next,
    )


__all__ = [
    "ACTION_ITEMS",
    "CHECK_RESULTS",
    "DATABASE_URL_ENV",
    "DRILLS",
    "HISTORY_FILE",
    "LEGACY_MIGRATIONS",
    "METADATA",
    "MONTHLY_PICKS",
    "ROLES_HELD",
    "SUMMARIES",
    "History",
    "HistoryError",
    "IndexedSummary",
    "JournalEntry",
    "LegacyMigration",
    "database_url",
    "history_path",
    "masked",
    "roles_from_events",
]
