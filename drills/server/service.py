"""What the drill server does, without HTTP: the one object the API routes and the web console both call.

:class:`DrillService` lists, starts and follows drills, and takes responders' and the game master's actions
on behalf of an authenticated :class:`~drills.server.auth.Caller`. Every action goes through the runner's
:class:`~drills.runner.respond.ResponderSession` (the same validation and the same events as ``drill ack``
typed on the drill host), with the caller's name as the actor and one shared
:class:`~drills.adapters.store.journal.Journal` per drill, whose lock serializes appends from all request
threads (and ``flock`` those of the runner's own thread). So for a served drill the server process is the
journal's only writer: nothing is lost, nothing torn, each event written once.

Following a drill: one :class:`JournalHub` per drill follows the journal file (the runner and the observer
write there too) and keeps every event as its ready-made SSE frame; Server-Sent Events streams read from it,
starting after any event id (``Last-Event-ID``). The server's own writer hands each batch to the hub right
after its fsync (:meth:`JournalHub.publish`), so a posted event reaches every stream at once, without waiting
for the hub to read it back from the file; the hub's poll only brings in the other writers' events, and skips
those it was already given (by id).

Methods are synchronous (file appends fsync): the routes call them in Starlette's thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drills.adapters.store import paths
from drills.adapters.store.journal import JOURNAL_FILE, Follower, Journal, read_journal
from drills.adapters.store.people import PeopleStore, Person
from drills.errors import DrillError, ServerError
from drills.model.events import (
    Acknowledged,
    DrillEnded,
    DrillStarted,
    Event,
    FaultInjected,
    HealthChanged,
    HintUsed,
    Paused,
    Resolved,
    Resumed,
    Source,
)
from drills.model.policy import Policy
from drills.runner.respond import META_FILE, DrillRef, DrillState, ResponderSession, find_drill, mark_served
from drills.server.auth import Action, Auth, Caller, TeamRole, parse_role
from drills.timing import SYSTEM_CLOCK, Clock

#: How often a hub looks at its journal for events other writers (the runner, the observer) appended.
HUB_POLL_SECONDS = 0.05
#: How long starting a drill may take before its journal exists (preflight, identities).
START_TIMEOUT_SECONDS = 300.0

_SHORT = 2000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AckBody(_Body):
    via: str = Field("server", max_length=64)


class DeclareBody(_Body):
    severity: str = Field(max_length=8)


class RoleBody(_Body):
    role: str = Field(max_length=32)
    person: str = Field(max_length=200)


class CommsBody(_Body):
    template: str = Field(max_length=64)
    text: str = Field(max_length=20000)
    channel: str = Field("journal", max_length=64)


class EscalateBody(_Body):
    whom: str = Field(max_length=200)
    channel: str = Field("journal", max_length=64)


class TicketBody(_Body):
    ref: str = Field("", max_length=200)


class NoteBody(_Body):
    text: str = Field(max_length=_SHORT * 5)


class EmptyBody(_Body):
    pass


class SummaryBody(_Body):
    summary: str = Field("", max_length=_SHORT)


class ResolveBody(_Body):
    root_cause: str = Field("", max_length=_SHORT)


class DetectBody(_Body):
    how: str = Field("", max_length=_SHORT)


class ReasonBody(_Body):
    reason: str = Field("", max_length=_SHORT)


class RevealBody(_Body):
    index: int | None = Field(None, ge=0, le=1000)


class StartBody(_Body):
    scenario: str = Field(max_length=1000)
    trainee: str | None = Field(None, max_length=200)
    time_budget_seconds: float | None = Field(None, gt=0, le=24 * 3600)
    wrap_up_seconds: float | None = Field(None, ge=0, le=3600)
    policy: str | None = Field(None, max_length=1000)


class InviteBody(_Body):
    person: str = Field(min_length=1, max_length=200)
    role: str = Field(max_length=32)
    expires_seconds: float = Field(8 * 3600, gt=0, le=90 * 24 * 3600)


#: The responder events a person with a responder role may post, and their bodies.
RESPONDER_ACTIONS: dict[str, type[_Body]] = {
    "ack": AckBody,
    "declare": DeclareBody,
    "role": RoleBody,
    "comms": CommsBody,
    "escalate": EscalateBody,
    "ticket": TicketBody,
    "note": NoteBody,
    "hint": EmptyBody,
    "mitigated": SummaryBody,
    "resolve": ResolveBody,
    "detect": DetectBody,
}
#: The game master's actions.
GAME_MASTER_ACTIONS: dict[str, type[_Body]] = {
    "pause": ReasonBody,
    "resume": EmptyBody,
    "abort": ReasonBody,
    "reveal-hint": RevealBody,
}


def parse_body(model: type[_Body], data: Mapping[str, Any]) -> _Body:
    """A request body as its model; ServerError(422) naming the field otherwise."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ServerError(f"{where}: {first['msg']}{more}", status=422) from None


def event_json(event: Event) -> str:
    return event.model_dump_json(exclude_none=True)


def event_data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    return data


# ---- writing: one writer, group commit ------------------------------------------------------------------


class GroupCommitJournal(Journal):
    """The served drill's journal: every request thread's append goes to one writer thread, which writes all
    that are waiting with one :meth:`Journal.append_many` (one lock, one fsync). Fifty people posting at once
    cost a few fsyncs, not fifty in a row; each append still returns only once its event is on disk."""

    def __init__(
        self,
        path: Path,
        clock: Clock = SYSTEM_CLOCK,
        *,
        on_written: Callable[[list[Event]], object] | None = None,
    ) -> None:
        super().__init__(path, clock)
        self._pending: list[tuple[Event, Future[Event]]] = []
        self._cv = threading.Condition()
        self._writer: threading.Thread | None = None
        #: Called by the writer with each batch once it is fsynced (the hub, to stream it at once).
        self.on_written = on_written

    def append(self, event: Event) -> Event:
        done: Future[Event] = Future()
        with self._cv:
            self._pending.append((event, done))
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="journal-writer", daemon=True)
                self._writer.start()
            self._cv.notify()
        return done.result()

    def _write_loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending:
                    self._cv.wait()
                batch, self._pending = self._pending, []
            try:
                written = self.append_many([e for e, _ in batch])
            except DrillError:
                # One bad event (say, one scrubbing made invalid) must not fail the others: one at a time.
                for event, done in batch:
                    try:
                        one = self.append_many([event])[0]
                    except DrillError as e:
                        done.set_exception(e)
                        continue
                    self._published([one])
                    done.set_result(one)
                continue
            # On disk now: stream the batch before acknowledging it (never before the fsync).
            self._published(written)
            for (_, done), event in zip(batch, written, strict=True):
                done.set_result(event)

    def _published(self, events: list[Event]) -> None:
        if self.on_written is not None:
            with contextlib.suppress(DrillError):
                self.on_written(events)


# ---- following a journal ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamItem:
    """One journal event for a stream: its id (the SSE id), type (the SSE event name) and JSON, and the
    Server-Sent Events message of all three, encoded once for every watcher."""

    id: str
    type: str
    data: str
    frame: bytes

    @classmethod
    def of(cls, event: Event) -> StreamItem:
        data = event_json(event)
        return cls(
            event.id, event.type, data, f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()
        )


@dataclass
class _Fold:
    """:meth:`DrillState.of`, kept up to date one event at a time: each action checks the drill's state, and
    folding the whole journal again at every post (sorting it, too) cost milliseconds of CPU per post, held
    the GIL from the event loop, and grew with the drill. Same rules: the facts go by each event's ``at``
    (ties: the later in the journal wins, as a stable sort gives), the drill.started by journal order."""

    started: DrillStarted | None = None
    t0: FaultInjected | None = None
    ended: DrillEnded | None = None
    pause: Paused | Resumed | None = None
    health: HealthChanged | None = None
    acknowledged: bool = False
    resolved: bool = False
    hints_used: set[int] = field(default_factory=set)

    def add(self, e: Event) -> None:
        if isinstance(e, DrillStarted):
            self.started = self.started or e
        elif isinstance(e, FaultInjected):
            if self.t0 is None or e.at < self.t0.at:
                self.t0 = e
        elif isinstance(e, DrillEnded):
            if self.ended is None or e.at < self.ended.at:
                self.ended = e
        elif isinstance(e, Paused | Resumed):
            if self.pause is None or e.at >= self.pause.at:
                self.pause = e
        elif isinstance(e, HealthChanged):
            if self.health is None or e.at >= self.health.at:
                self.health = e
        elif isinstance(e, Acknowledged):
            self.acknowledged = True
        elif isinstance(e, Resolved):
            self.resolved = True
        elif isinstance(e, HintUsed):
            self.hints_used.add(e.index)

    def state(self, events: list[Event], drill_id: str) -> DrillState:
        if self.started is None:
            return DrillState.of(events, drill_id)  # raises the usual error
        return DrillState(
            started=self.started,
            events=events,
            t0=None if self.t0 is None else self.t0.at,
            ended=self.ended,
            paused=isinstance(self.pause, Paused),
            healthy=None if self.health is None else self.health.healthy,
            acknowledged=self.acknowledged,
            resolved=self.resolved,
            hints_used=frozenset(self.hints_used),
        )


class JournalHub:
    """Every event of one drill's journal, in file order, for any number of streams (see module docstring)."""

    def __init__(self, path: Path, *, poll_seconds: float = HUB_POLL_SECONDS) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self._follower = Follower(path)
        self._items: list[StreamItem] = []
        self._events: list[Event] = []
        self._fold = _Fold()
        self._index: dict[str, int] = {}
        self._lock = threading.Lock()
        self._poke = threading.Event()
        self._stop = threading.Event()
        # The streams waiting for events, by the event loop they run on: one wake-up call per loop per poll.
        self._waiters: dict[asyncio.AbstractEventLoop, set[asyncio.Event]] = {}
        self.ended = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self.poll()
            self._thread = threading.Thread(
                target=self._run, name=f"hub-{self.path.parent.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()

    def poke(self) -> None:
        """Look at the journal now (an action was just appended)."""
        self._poke.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poke.wait(self.poll_seconds)
            self._poke.clear()
            with contextlib.suppress(DrillError):
                self.poll()
            if self.ended:
                break

    def poll(self) -> int:
        """Read what was appended since the last poll; wake the streams. Returns how many events were new."""
        with self._lock:
            return self._add(self._follower.poll())

    def publish(self, events: list[Event]) -> int:
        """Take events the server's writer just fsynced (the file read skips them later, by id)."""
        with self._lock:
            return self._add(events)

    def _add(self, events: list[Event]) -> int:
        # Under self._lock.
        fresh = [e for e in events if e.id not in self._index]
        for e in fresh:
            self._index[e.id] = len(self._items)
            self._items.append(StreamItem.of(e))
            self._events.append(e)
            self._fold.add(e)
            if isinstance(e, DrillEnded):
                self.ended = True
        if fresh or self.ended:
            for loop, evs in self._waiters.items():
                with contextlib.suppress(RuntimeError):  # that loop closed
                    loop.call_soon_threadsafe(_set_all, list(evs))
        return len(fresh)

    def position_after(self, event_id: str | None) -> int:
        """Where a stream that last saw ``event_id`` continues (the start for None or an unknown id)."""
        if not event_id:
            return 0
        with self._lock:
            i = self._index.get(event_id)
        return 0 if i is None else i + 1

    def since(self, position: int) -> list[StreamItem]:
        with self._lock:
            return self._items[position:]

    def events(self) -> list[Event]:
        """Every event so far, read up to now (what a session validates an action against)."""
        self.poll()
        with self._lock:
            return list(self._events)

    def state(self, drill_id: str) -> DrillState:
        """What :meth:`DrillState.of` says of :meth:`events`, without folding them all again."""
        self.poll()
        with self._lock:
            return self._fold.state(list(self._events), drill_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def waiter(self) -> asyncio.Event:
        """An asyncio.Event (of the running loop) set whenever new events arrive; :meth:`forget` it after."""
        ev = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(asyncio.get_running_loop(), set()).add(ev)
        return ev

    def forget(self, ev: asyncio.Event) -> None:
        with self._lock:
            for loop, evs in list(self._waiters.items()):
                evs.discard(ev)
                if not evs:
                    del self._waiters[loop]


def _set_all(events: list[asyncio.Event]) -> None:
    for ev in events:
        ev.set()


class ServedSession(ResponderSession):
    """A responder session whose view of the journal is the hub's (read once, kept up to date), not a new
    read of the whole file at every action: the same checks, at the cost of the events appended since."""

    def __init__(self, ref: DrillRef, hub: JournalHub, **kwargs: Any) -> None:
        super().__init__(ref, **kwargs)
        self._hub = hub

    def events(self) -> list[Event]:
        return self._hub.events()

    def state(self) -> DrillState:
        return self._hub.state(self.ref.drill_id)


# ---- the service ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartDefaults:
    """How the server starts drills (from `drill serve`'s options): cluster, policy, mode."""

    backend: str = "embedded"
    cluster: str = "drills"
    policy: str | None = None
    mode: str = "training"
    detector: str = "health-probe"


@dataclass
class _Run:
    drill_id: str | None = None
    thread: threading.Thread | None = None
    started: threading.Event = field(default_factory=threading.Event)
    error: DrillError | None = None
    outcome: str | None = None


class DrillService:
    """The drill server's operations (see the module docstring); one per server process."""

    def __init__(
        self,
        people: PeopleStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
        auth: Auth | None = None,
        start_defaults: StartDefaults | None = None,
        hub_poll_seconds: float = HUB_POLL_SECONDS,
        listen: str = "",
    ) -> None:
        #: Where the server listens (recorded in the drills it serves, for local commands' refusals).
        self.listen = listen
        self.people = people
        self.clock = clock
        self.auth = auth or Auth(people, clock=clock)
        self.start_defaults = start_defaults or StartDefaults()
        self.hub_poll_seconds = hub_poll_seconds
        self._journals: dict[str, GroupCommitJournal] = {}
        self._hubs: dict[str, JournalHub] = {}
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        #: Hooks run after a person joins a drill (the kubeconfig issuer; tests can add their own).
        self.on_join: list[Callable[[str, Caller], None]] = []

    def close(self) -> None:
        with self._lock:
            hubs = list(self._hubs.values())
        for h in hubs:
            h.stop()

    # ---- drills --------------------------------------------------------------------------------------

    def drill(self, drill_id: str) -> DrillRef:
        return find_drill(drill_id)

    def list_drills(self, caller: Caller) -> list[dict[str, Any]]:
        """The drills in this server's state directory (the caller's one drill if invited to one)."""
        caller.require(Action.READ)
        root = paths.drills_dir()
        out: list[dict[str, Any]] = []
        if not root.is_dir():
            return out
        for d in sorted(root.iterdir(), reverse=True):
            if not (d / JOURNAL_FILE).is_file():
                continue
            if caller.drill_id is not None and d.name != caller.drill_id:
                continue
            meta: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads((d / META_FILE).read_text(encoding="utf-8"))
                meta = loaded if isinstance(loaded, dict) else {}
            out.append(
                {
                    "drill_id": d.name,
                    "scenario": meta.get("scenario"),
                    "mode": meta.get("mode"),
                    "outcome": meta.get("outcome"),
                    "served": d.name in self._runs,
                }
            )
        return out

    def start_drill(self, caller: Caller, body: Mapping[str, Any]) -> str:
        """Start a drill in a background thread (a human responder: the invited people); returns its id."""
        caller.require(Action.GAME_MASTER)
        start = parse_body(StartBody, body)
        assert isinstance(start, StartBody)
        from drills.runner.options import (
            ClusterTarget,
            DetectionOptions,
            DrillOptions,
            ReportingOptions,
            ResponderOptions,
        )
        from drills.runner.run import run_drill

        d = self.start_defaults
        run = _Run()

        def started(journal: Path) -> None:
            mark_served(journal.parent, self.listen)
            run.drill_id = journal.parent.name
            with self._lock:
                self._runs[run.drill_id] = run
            run.started.set()

        options = DrillOptions(
            mode=d.mode,  # type: ignore[arg-type]  # parsed in __post_init__
            policy=start.policy or d.policy,
            responder=ResponderOptions(responder="human", trainee=start.trainee or caller.person),
            detection=DetectionOptions(detector=d.detector),
            cluster=ClusterTarget(backend=d.backend, name=d.cluster),
            reporting=ReportingOptions(dashboard=False),
            clock=self.clock,
            time_budget=None
            if start.time_budget_seconds is None
            else timedelta(seconds=start.time_budget_seconds),
            wrap_up=None if start.wrap_up_seconds is None else timedelta(seconds=start.wrap_up_seconds),
            on_started=started,
            handle_signals=False,
        )

        def target() -> None:
            try:
                result = run_drill(start.scenario, options)
                run.outcome = result.outcome.value
            except DrillError as e:
                run.error = e
            finally:
                run.started.set()
                if run.drill_id is not None:
                    self.hub(run.drill_id).poke()

        run.thread = threading.Thread(target=target, name="served-drill", daemon=True)
        run.thread.start()
        run.started.wait(START_TIMEOUT_SECONDS)
        if run.drill_id is None:
            if run.error is not None:
                raise run.error
            raise ServerError("the drill did not start in time", hint="see the server's log", status=504)
        return run.drill_id

    def wait_run(self, drill_id: str, timeout: float | None = None) -> str | None:
        """Wait for a drill this server started to end; its outcome (None if still running or unknown)."""
        run = self._runs.get(drill_id)
        if run is None or run.thread is None:
            return None
        run.thread.join(timeout)
        return run.outcome

    # ---- reading -------------------------------------------------------------------------------------

    def events(self, drill_id: str, caller: Caller) -> list[Event]:
        caller.require(Action.READ, drill_id)
        return read_journal(self.drill(drill_id).journal_path).events

    def hub(self, drill_id: str) -> JournalHub:
        """The live follower of a drill's journal (started on first use)."""
        with self._lock:
            hub = self._hubs.get(drill_id)
            if hub is None:
                hub = self._hubs[drill_id] = JournalHub(
                    self.drill(drill_id).journal_path, poll_seconds=self.hub_poll_seconds
                )
        hub.start()
        return hub

    def tail(self, drill_id: str, caller: Caller) -> JournalHub:
        """The hub an SSE stream reads from, once the caller may read this drill."""
        caller.require(Action.READ, drill_id)
        return self.hub(drill_id)

    def status(self, drill_id: str, caller: Caller, policy: Policy | None = None) -> dict[str, Any]:
        """Where the drill stands: ended or not, its outcome, and the scorecard so far."""
        from drills.engine.scoring import score

        events = self.events(drill_id, caller)
        state = DrillState.of(events, drill_id)
        card = score(events, policy or Policy())
        return {
            "drill_id": drill_id,
            "ended": state.ended is not None,
            "outcome": None if state.ended is None else state.ended.outcome.value,
            "paused": state.paused,
            "healthy": state.healthy,
            "scorecard": card.model_dump(mode="json"),
        }

    def prefilled(self, drill_id: str, caller: Caller, template: str) -> str:
        caller.require(Action.READ, drill_id)
        from drills.engine import comms

        return self.session(drill_id, caller).prefilled(comms.get_template(template).id)

    # ---- acting --------------------------------------------------------------------------------------

    def session(self, drill_id: str, caller: Caller) -> ResponderSession:
        """The caller's session on this drill: their name as actor, the drill's one shared journal."""
        ref = self.drill(drill_id)
        hub = self.hub(ref.drill_id)
        with self._lock:
            journal = self._journals.get(ref.drill_id)
            if journal is None:
                journal = self._journals[ref.drill_id] = GroupCommitJournal(
                    ref.journal_path, self.clock, on_written=hub.publish
                )
        return ServedSession(
            ref,
            hub,
            actor=caller.person,
            source=Source.HUMAN,
            clock=self.clock,
            journal=journal,
        )

    def act(self, drill_id: str, caller: Caller, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Take one responder or game-master action; returns the event written (and what goes with it)."""
        if action in RESPONDER_ACTIONS:
            caller.require(Action.RESPOND, drill_id)
            parsed = parse_body(RESPONDER_ACTIONS[action], body)
        elif action in GAME_MASTER_ACTIONS:
            caller.require(Action.GAME_MASTER, drill_id)
            parsed = parse_body(GAME_MASTER_ACTIONS[action], body)
        else:
            known = ", ".join([*RESPONDER_ACTIONS, *GAME_MASTER_ACTIONS])
            raise ServerError(f"no action {action!r}", hint=f"one of: {known}", status=404)
        # No poke of the hub: the writer hands it the event once fsynced (GroupCommitJournal.on_written).
        return self._act(self.session(drill_id, caller), action, parsed)

    def _act(self, s: ResponderSession, action: str, b: _Body) -> dict[str, Any]:
        out: dict[str, Any] = {"drill_id": s.ref.drill_id, "actor": s.actor}
        event: Event | None
        if isinstance(b, AckBody):
            event = s.ack(b.via)
        elif isinstance(b, DeclareBody):
            event = s.declare(b.severity)
        elif isinstance(b, RoleBody):
            event = s.role(b.role, b.person)
        elif isinstance(b, CommsBody):
            result = s.post_comms(b.template, b.text, channel=b.channel)
            event = result.event
            out["problems"] = [str(p) for p in result.problems]
        elif isinstance(b, EscalateBody):
            event = s.escalate(b.whom, channel=b.channel)
        elif isinstance(b, TicketBody):
            event = s.ticket(b.ref)
        elif isinstance(b, NoteBody):
            event = s.note(b.text)
        elif isinstance(b, SummaryBody):
            event = s.mitigated(b.summary)
        elif isinstance(b, ResolveBody):
            event = s.resolve(b.root_cause)
        elif isinstance(b, DetectBody):
            event = s.detect(b.how)
        elif isinstance(b, ReasonBody):
            event = s.pause(b.reason) if action == "pause" else s.abort(b.reason)
        elif isinstance(b, RevealBody):
            event = s.reveal_hint(b.index)
        elif action == "resume":
            event = s.resume()
        else:  # hint
            offer, event = s.hint()
            out["hint"] = {
                "index": offer.index,
                "text": None if offer.hint is None else offer.hint.text,
                "cost": None if offer.hint is None else offer.hint.cost,
                "available_in_seconds": None
                if offer.available_in is None
                else offer.available_in.total_seconds(),
                "remaining": offer.remaining,
            }
        out["event"] = None if event is None else event_data(event)
        return out

    # ---- people --------------------------------------------------------------------------------------

    def invite(self, caller: Caller, drill_id: str | None, body: Mapping[str, Any]) -> tuple[Person, str]:
        """The game master invites a person (to one drill, or to any); the token is returned once."""
        caller.require(Action.GAME_MASTER, drill_id)
        b = parse_body(InviteBody, body)
        assert isinstance(b, InviteBody)
        role = parse_role(b.role)
        return self.people.invite(
            b.person,
            role.value,
            drill_id=drill_id,
            ttl=timedelta(seconds=b.expires_seconds),
            now=self.clock.now(),
        )

    def join(self, drill_id: str, caller: Caller) -> dict[str, Any]:
        """A person joins a drill: who they are there, and their own kubeconfig when they may act."""
        caller.require(Action.READ, drill_id)
        ref = self.drill(drill_id)
        for hook in self.on_join:
            hook(ref.drill_id, caller)
        out: dict[str, Any] = {
            "drill_id": ref.drill_id,
            "person": caller.person,
            "role": caller.role.value,
            "game_master": caller.role is TeamRole.GAME_MASTER,
        }
        if caller.may(Action.RESPOND):
            try:
                out["kubeconfig"] = self.kubeconfig(ref.drill_id, caller)
            except ServerError as e:
                if e.status != 409:
                    raise
                out["kubeconfig"] = None  # joining works; acting on the cluster needs your own kubeconfig
                out["kubeconfig_problem"] = e.message
        return out

    def kubeconfig(self, drill_id: str, caller: Caller) -> str:
        """The caller's own RBAC-limited kubeconfig for this drill (issued on first request)."""
        caller.require(Action.RESPOND, drill_id)
        from drills.server.identities import person_kubeconfig

        return person_kubeconfig(self.drill(drill_id), caller.person)


__all__ = [
    "GAME_MASTER_ACTIONS",
    "RESPONDER_ACTIONS",
    "DrillService",
    "GroupCommitJournal",
    "JournalHub",
    "ServedSession",
    "StartDefaults",
    "StreamItem",
    "event_data",
    "event_json",
    "parse_body",
]
