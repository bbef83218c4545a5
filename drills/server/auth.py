"""Who is asking, and what their role lets them do: tokens, roles, CSRF and the failed-login rate limit.

Every request names a person by their personal token: ``Authorization: Bearer <token>`` from the CLI (and
scripts), or the ``drills_token`` cookie the web console sets at login. The token is checked against the
people store (hashed, expiring, revocable: :mod:`drills.adapters.store.people`); the person's role decides
which actions they may take (:data:`PERMISSIONS`): an observer reads; responders post responder events; only
the game master pauses, resumes, aborts, reveals hints, starts drills and invites people.

CSRF: a browser sends cookies by itself, so a cookie-authenticated unsafe request must also carry the
person's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``), an HMAC of their token's id under
a secret made when the server starts (:meth:`Auth.csrf_token`; the console puts it in every form). Bearer
requests need none: no browser attaches that header on its own.

Failed token checks are limited per client address (:class:`FailureLimiter`): after ``max_failures`` within
``window`` seconds, that address gets 429 until the window passes, so guessing tokens is slow as well as
hopeless. Tokens are never logged: the access log is off, and errors name a token by its public id only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from drills.adapters.store.people import PeopleStore, Person
from drills.errors import ServerError
from drills.timing import SYSTEM_CLOCK, Clock

TOKEN_COOKIE = "drills_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class TeamRole(StrEnum):
    """A person's part in a drill, from the seed's response team (and the game master who runs it)."""

    GAME_MASTER = "gm"
    IC = "ic"
    TECH_LEAD = "tech-lead"
    COMMS_LEAD = "comms-lead"
    SME = "sme"
    OBSERVER = "observer"


class Action(StrEnum):
    READ = "read"
    RESPOND = "respond"  # ack, declare, role, comms, escalate, ticket, note, hint, mitigated, resolve, detect
    GAME_MASTER = "game-master"  # pause, resume, abort, reveal a hint, start a drill, invite


_RESPONDER = frozenset({Action.READ, Action.RESPOND})
PERMISSIONS: dict[TeamRole, frozenset[Action]] = {
    TeamRole.GAME_MASTER: frozenset(Action),
    TeamRole.IC: _RESPONDER,
    TeamRole.TECH_LEAD: _RESPONDER,
    TeamRole.COMMS_LEAD: _RESPONDER,
    TeamRole.SME: _RESPONDER,
    TeamRole.OBSERVER: frozenset({Action.READ}),
}


def parse_role(value: str) -> TeamRole:
    try:
        return TeamRole(value.strip().lower())
    except ValueError:
        raise ServerError(
            f"unknown role {value!r}", hint=f"use one of: {', '.join(r.value for r in TeamRole)}"
        ) from None


@dataclass(frozen=True)
class Caller:
    """An authenticated person, as the routes and the service see them."""

    person: str
    role: TeamRole
    token_id: str
    #: The drill the invitation is for (None: any drill on this server).
    drill_id: str | None
    #: Authenticated by cookie (a browser): unsafe requests need the CSRF token.
    by_cookie: bool = False

    def may(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]

    def require(self, action: Action, drill_id: str | None = None) -> None:
        """ServerError(403) unless this person's role allows ``action`` (on ``drill_id``)."""
        if not self.may(action):
            raise ServerError(
                f"{self.person} ({self.role.value}) may not {action.value.replace('-', ' ')}"
                + (" actions" if action is Action.GAME_MASTER else ""),
                hint="ask the game master" if action is not Action.READ else None,
                status=403,
            )
        if drill_id is not None and self.drill_id is not None and self.drill_id != drill_id:
            raise ServerError(
                f"{self.person} was invited to drill {self.drill_id}, not {drill_id}",
                hint="ask the game master to invite you to this drill",
                status=403,
            )


class FailureLimiter:
    """At most ``max_failures`` failed token checks per client address in ``window`` seconds."""

    def __init__(self, max_failures: int = 10, window: float = 60.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures.setdefault(client, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def check(self, client: str) -> None:
        with self._lock:
            now = self.clock.monotonic()
            q = self._recent(client, now)
            if len(q) >= self.max_failures:
                retry = max(1, int(self.window - (now - q[0])) + 1)
                raise ServerError(
                    f"too many failed logins from {client}: try again in {retry} s",
                    hint="check DRILLS_TOKEN (a token is shown once, when you are invited)",
                    status=429,
                )
            if not q:
                self._failures.pop(client, None)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, self.clock.monotonic()).append(self.clock.monotonic())


class Auth:
    """Token checks, roles and CSRF for one running server."""

    def __init__(
        self, store: PeopleStore, *, clock: Clock = SYSTEM_CLOCK, limiter: FailureLimiter | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.limiter = limiter or FailureLimiter(clock=clock)
        self._csrf_key = secrets.token_bytes(32)

    def authenticate(self, token: str | None, client: str, *, by_cookie: bool = False) -> Caller:
        """The person ``token`` belongs to; ServerError 401 (no/bad token) or 429 (too many failures)."""
        self.limiter.check(client)
        if not token:
            raise ServerError(
                "no token: this server needs a personal token",
                hint="set DRILLS_TOKEN (the CLI), or log in to the console; the game master invites you",
                status=401,
            )
        try:
            person: Person = self.store.check(token, self.clock.now())
        except ServerError as e:
            if e.status == 401:
                self.limiter.failed(client)
            raise
        return Caller(person.person, parse_role(person.role), person.token_id, person.drill_id, by_cookie)

    def csrf_token(self, caller: Caller) -> str:
        """The CSRF token to put in this person's forms (stable while the server runs)."""
        return hmac.new(self._csrf_key, caller.token_id.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, caller: Caller, presented: str | None, *, form: bool = False) -> None:
        """ServerError(403) unless ``presented`` is this person's CSRF token. Required on every form post
        and on any unsafe request authenticated by cookie (a browser's); bearer JSON requests need none."""
        if not (form or caller.by_cookie):
            return
        if not presented or not hmac.compare_digest(presented, self.csrf_token(caller)):
            raise ServerError(
                "missing or wrong CSRF token", hint="reload the page and submit the form again", status=403
            )


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PERMISSIONS",
    "TOKEN_COOKIE",
    "Action",
    "Auth",
    "Caller",
    "FailureLimiter",
    "TeamRole",
    "parse_role",
]
