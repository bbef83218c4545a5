"""The drill server's people and their tokens: who may join which drill, in which role, until when.

A token is shown once, when the game master invites someone (``drill serve invite``), and only its SHA-256 is
kept: a copy of this file gives nobody a way in. Tokens carry 256 random bits, so a plain hash (not a slow
password hash) is the right tool: there is nothing to guess, and the server checks a token on every request.
Each token has a short public id (``drl_<id>_<secret>``) so it can be looked up, listed and revoked without
anyone handling the secret again.

Standard library ``sqlite3`` in one small file beside the state (``$DRILLS_STATE/server/people.sqlite3``),
kept apart from the drill history on purpose: the history is an index rebuilt from journals, while people and
tokens exist nowhere else. One connection guarded by a lock: the server calls it from several threads.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from drills.adapters.store import paths
from drills.errors import ServerError
from drills.timing import utc

PEOPLE_FILE = "people.sqlite3"
TOKEN_PREFIX = "drl_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_id    TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    person      TEXT NOT NULL,
    role        TEXT NOT NULL,
    drill_id    TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX IF NOT EXISTS tokens_person ON tokens(person);
"""


def default_path() -> Path:
    return paths.state_dir() / "server" / PEOPLE_FILE


@dataclass(frozen=True)
class Person:
    """One invitation: a person, their role and the drill it is for (None: any drill on this server)."""

    token_id: str
    person: str
    role: str
    drill_id: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "active"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def split_token(token: str) -> str | None:
    """The public id of a well-formed token, else None (nothing is looked up for a malformed one)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not secret or len(token_id) != 12 or not token_id.isalnum():
        return None
    return token_id


class PeopleStore:
    """Invitations and their hashed tokens in one sqlite3 file; safe to share between threads."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self.path.chmod(0o600)
        except (OSError, sqlite3.Error) as e:
            raise ServerError(
                f"cannot open the people store {self.path}: {e}",
                hint="check DRILLS_STATE and the permissions of its server/ directory",
                status=500,
            ) from e
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def invite(
        self, person: str, role: str, *, drill_id: str | None, ttl: timedelta, now: datetime
    ) -> tuple[Person, str]:
        """A new token for ``person``: returns the invitation and the token, which is never stored."""
        person = person.strip()
        if not person:
            raise ServerError("an invitation needs a person's name", hint="e.g. `--person alice`")
        if ttl <= timedelta(0):
            raise ServerError(f"a token's lifetime must be positive, not {ttl}", hint="e.g. `--expires 8h`")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = utc(now)
        invited = Person(token_id, person, role, drill_id, now, now + ttl)
        self._execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                token_id,
                _hash(token),
                person,
                role,
                drill_id,
                invited.created_at.isoformat(),
                invited.expires_at.isoformat(),
            ),
        )
        return invited, token

    def check(self, token: str, now: datetime) -> Person:
        """The active invitation ``token`` belongs to; ServerError(401) saying why not."""
        token_id = split_token(token)
        row = None if token_id is None else self._one(token_id)
        if row is None or not hmac.compare_digest(row[1], _hash(token)):
            raise ServerError("unknown token", hint="ask the game master for an invitation", status=401)
        found = _person(row)
        state = found.state(utc(now))
        if state != "active":
            raise ServerError(
                f"token {found.token_id} is {state}",
                hint="ask the game master for a new invitation (`drill serve invite`)",
                status=401,
            )
        return found

    def revoke(self, who: str, now: datetime) -> list[Person]:
        """Revoke a token by its id, or every active token of a person by their name."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT * FROM tokens WHERE (token_id = ? OR person = ?) AND revoked_at IS NULL",
                    (who, who),
                ).fetchall()
                self._db.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE (token_id = ? OR person = ?) AND revoked_at IS NULL",
                    (utc(now).isoformat(), who, who),
                )
            except sqlite3.Error as e:
                raise self._error(e) from e
        return [_person(r) for r in rows]

    def people(self) -> list[Person]:
        with self._lock:
            try:
                rows = self._db.execute("SELECT * FROM tokens ORDER BY created_at, token_id").fetchall()
            except sqlite3.Error as e:
                raise self._error(e) from e
        return [_person(r) for r in rows]

    def _one(self, token_id: str) -> tuple[str, ...] | None:
        with self._lock:
            try:
                row = self._db.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
            except sqlite3.Error as e:
                raise self._error(e) from e
        return None if row is None else tuple(row)

    def _execute(self, sql: str, args: tuple[str | None, ...]) -> None:
        with self._lock:
            try:
                self._db.execute(sql, args)
            except sqlite3.Error as e:
                raise self._error(e) from e

    def _error(self, e: sqlite3.Error) -> ServerError:
        return ServerError(
            f"the people store {self.path} failed: {e}",
            hint="check the disk; the file can be removed to start over (every token is then invalid)",
            status=500,
        )


def _person(row: tuple[str, ...]) -> Person:
    return Person(
        token_id=row[0],
        person=row[2],
        role=row[3],
        drill_id=row[4],
        created_at=datetime.fromisoformat(row[5]),
        expires_at=datetime.fromisoformat(row[6]),
        revoked_at=datetime.fromisoformat(row[7]) if row[7] else None,
    )


__all__ = ["PEOPLE_FILE", "TOKEN_PREFIX", "PeopleStore", "Person", "default_path", "split_token"]
