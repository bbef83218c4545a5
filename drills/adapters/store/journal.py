"""The drill journal on disk: one append-only JSON Lines file per drill: many writers, crash-safe.

The runner, the fault injector, the observer and responder commands typed in other terminals all append to
the same file at the same time. Each append therefore takes an exclusive ``flock`` on the file, writes the
whole line with one ``os.write`` on an ``O_APPEND`` descriptor and ``fsync``\\ s before returning: an event
that ``append`` returned is on disk, and two writers never interleave bytes. A writer killed mid-line leaves
a torn line; readers report it and skip it, and the next writer starts on a fresh line so the damage stays
on that one line. Secrets are scrubbed from every string before anything is written.

The format (and the promise to other tools that produce and consume journals) is docs/journal.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import json
import os
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drills.engine.redact import redactor_for, secrets_from_env
from drills.errors import JournalError, Problem
from drills.model.events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    JOURNAL_VERSION,
    DrillEnded,
    DrillStarted,
    Event,
    FaultReverted,
    PostmortemCompleted,
)
from drills.timing import SYSTEM_CLOCK, Clock, utc

JOURNAL_FILE = "journal.jsonl"

TORN_LAST_LINE = "torn last line (crash while writing?): skipped"

# Fields that identify and time an event: never rewritten by redaction (a secret that happened to equal an
# id or a timestamp would otherwise make the event unreadable).
_STRUCTURAL = frozenset({"v", "type", "id", "at", "recorded_at", "received_at", "source"})

_FILE_MODE = 0o600  # journals name people and systems; only the drill's owner reads them


@dataclass(frozen=True)
class JournalRead:
    """What a journal holds: its events (each id once, in file order) and what was wrong with it."""

    path: Path
    events: list[Event]
    problems: list[Problem] = field(default_factory=list)
    #: Lines skipped because an event with the same id and content came earlier (a retried delivery).
    duplicates: int = 0
    #: Byte offset just after the last complete line: where a follower continues.
    end_offset: int = 0

    @property
    def drill_started(self) -> DrillStarted | None:
        for e in self.events:
            if isinstance(e, DrillStarted):
                return e
        return None


class Journal:
    """Appends events to one journal file. Safe across threads and processes; see the module docstring."""

    def __init__(
        self,
        path: Path,
        clock: Clock = SYSTEM_CLOCK,
        *,
        secrets: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._extra_secrets = frozenset(secrets)
        # None: read os.environ at each append, so a token exported after opening the journal is caught too.
        self._env = env
        self._thread_lock = threading.Lock()  # flock is per open file description, not per thread

    @classmethod
    def create(
        cls,
        path: Path,
        started: DrillStarted,
        clock: Clock = SYSTEM_CLOCK,
        *,
        secrets: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Journal:
        """Create a new journal whose first event is ``started``; refuses to touch an existing one."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        except FileExistsError:
            raise JournalError(
                f"journal {path} already exists",
                hint="each drill has its own journal: use a new drill id, or read it with `drill score`",
            ) from None
        except OSError as e:
            raise JournalError(f"cannot create journal {path}: {e.strerror}", hint=_hint_for(e)) from e
        os.close(fd)
        _fsync_dir(path.parent)
        journal = cls(path, clock, secrets=secrets, env=env)
        journal.append(started)
        return journal

    # ---- writing ---------------------------------------------------------------------------------------

    def append(self, event: Event) -> Event:
        """Write one event durably and return it as written (``recorded_at`` set, secrets scrubbed)."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Write several events as one locked write and one fsync: all are on disk when this returns."""
        written = [self._prepare(e) for e in events]
        if not written:
            return []
        payload = b"".join(_line(e) for e in written)
        with self._thread_lock, self._locked_fd(os.O_RDWR | os.O_APPEND | os.O_CREAT, fcntl.LOCK_EX) as fd:
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A writer died mid-line: end that torn line so it does not swallow our first event.
                    payload = b"\n" + payload
                _write_all(fd, payload)
                os.fsync(fd)
            except OSError as e:
                raise JournalError(
                    f"cannot write journal {self.path}: {e.strerror}", hint=_hint_for(e)
                ) from e
        return written

    def read(self) -> JournalRead:
        return read_journal(self.path)

    def _prepare(self, event: Event) -> Event:
        if event.recorded_at is None:
            event = event.model_copy(update={"recorded_at": utc(self.clock.now())})
        env = os.environ if self._env is None else self._env
        redactor = redactor_for(secrets_from_env(env) | self._extra_secrets)
        data = event.model_dump(mode="json", exclude_none=True)
        scrubbed = {k: (v if k in _STRUCTURAL else redactor.data(v)) for k, v in data.items()}
        if scrubbed == data:
            return event
        try:
            return EVENT_ADAPTER.validate_python(scrubbed)
        except ValidationError as e:
            raise JournalError(
                f"{data.get('type')} event {data.get('id')} not written: scrubbing secrets made it "
                f"invalid ({e})",
                hint="a secret value from the environment also appears in a required field",
            ) from None

    @contextlib.contextmanager
    def _locked_fd(self, flags: int, lock: int) -> Iterator[int]:
        try:
            fd = os.open(self.path, flags | os.O_CLOEXEC, _FILE_MODE)
        except OSError as e:
            raise JournalError(f"cannot open journal {self.path}: {e.strerror}", hint=_hint_for(e)) from e
        try:
            fcntl.flock(fd, lock)
            yield fd
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _line(event: Event) -> bytes:
    data = event.model_dump(mode="json", exclude_none=True)
    # `v` and `type` first so a person reading the file (or `grep`) sees what each line is.
    ordered: dict[str, Any] = {"v": data.pop("v"), "type": data.pop("type"), **data}
    try:
        text = json.dumps(ordered, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as e:
        raise JournalError(f"{ordered['type']} event not written: {e}") from None
    return text.encode("utf-8") + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(directory: Path) -> None:
    # The new file's directory entry must survive a crash too, or the journal vanishes with the drill.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _hint_for(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "the drill's directory is gone; check DRILLS_STATE and that the drill was started"
    if isinstance(e, PermissionError):
        return "check the permissions of the file and its directory (journals are created mode 0600)"
    return "check the disk (free space, read-only file system) and try again"


# ---- reading --------------------------------------------------------------------------------------------


def _open_journal(path: Path) -> int:
    """A read descriptor on the journal, share-locked (waiting for a writer that is mid-line)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise JournalError(
            f"no journal at {path}",
            hint="journals live in $DRILLS_STATE/drills/<drill-id>/journal.jsonl; "
            "`drill status` names the active one",
        ) from None
    except OSError as e:
        raise JournalError(f"cannot read journal {path}: {e.strerror}", hint=_hint_for(e)) from e
    with contextlib.suppress(OSError):  # a file system without flock: read anyway
        fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def read_journal(path: Path) -> JournalRead:
    """Every event of a journal, each id once, with a Problem for each line that could not be read.

    Never fails on content: a torn last line, a bad line in the middle or an event far outside the drill's
    time is reported and skipped. Fails only when the file itself cannot be read (JournalError with a hint).
    The file is read a line at a time: its text is never held whole, only the events.
    """
    path = Path(path)
    fd = _open_journal(path)
    try:
        with os.fdopen(fd, "rb", buffering=1024 * 1024, closefd=False) as f:
            return _parse_lines(f, file=str(path), path=path)
    except IsADirectoryError:
        raise JournalError(
            f"{path} is a directory, not a journal", hint=f"try {path / JOURNAL_FILE}"
        ) from None
    except OSError as e:
        raise JournalError(f"cannot read journal {path}: {e.strerror}", hint=_hint_for(e)) from e
    finally:
        os.close(fd)


class JournalStream:
    """A journal's events one at a time, for consumers that need not hold them all (a 200k-line journal).

    The same rules as :func:`read_journal`: each id once, bad lines reported and skipped. Events are
    yielded in file order, except those that may lie more than a day outside the drill (before its start,
    or over a day after it), which are held back until the end of the file tells whether the drill ended in
    time, and then yielded or reported. ``problems``, ``duplicates``, ``end_offset`` and ``drill_started``
    are complete once the stream has been iterated (once). Memory: the ids seen, and where each line
    began and a hash of its bytes (to tell a redelivery from a different event), not the events.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.problems: list[Problem] = []
        self.duplicates = 0
        self.end_offset = 0
        self.drill_started: DrillStarted | None = None
        self._used = False

    def __iter__(self) -> Iterator[Event]:
        if self._used:
            raise RuntimeError("a JournalStream is read once")
        self._used = True
        path = self.path
        fd = _open_journal(path)
        parser = _Parser(str(path), reread=lambda offset: _line_at(fd, offset))
        collecting = gc.isenabled()
        gc.disable()  # as in _parse_lines
        try:
            with os.fdopen(fd, "rb", buffering=1024 * 1024, closefd=False) as f:
                suspects = parser.suspects
                for raw in f:
                    event = parser.feed(raw)
                    if event is not None and not (suspects and suspects[-1][1] is event):
                        yield event
            drop = parser.outside_drill()
            for _, event in parser.suspects:
                if id(event) not in drop:
                    yield event
        except IsADirectoryError:
            raise JournalError(
                f"{path} is a directory, not a journal", hint=f"try {path / JOURNAL_FILE}"
            ) from None
        except OSError as e:
            raise JournalError(f"cannot read journal {path}: {e.strerror}", hint=_hint_for(e)) from e
        finally:
            if collecting:
                gc.enable()
            os.close(fd)
        read = parser.result(path, [])
        self.problems, self.duplicates, self.end_offset = read.problems, read.duplicates, read.end_offset
        self.drill_started = parser.started


def _line_at(fd: int, offset: int) -> bytes:
    """The line that starts at ``offset`` (a duplicate's first occurrence, read again)."""
    chunks = []
    while True:
        chunk = os.pread(fd, 64 * 1024, offset)
        end = chunk.find(b"\n")
        if end >= 0 or not chunk:
            chunks.append(chunk if end < 0 else chunk[: end + 1])
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def stream_journal(path: Path) -> JournalStream:
    """A journal's events as a stream (see :class:`JournalStream`); fails like :func:`read_journal`."""
    return JournalStream(path)


def parse_journal(content: bytes, *, file: str = "<journal>", path: Path | None = None) -> JournalRead:
    """Parse journal bytes (see :func:`read_journal`)."""
    return _parse_lines(io.BytesIO(content), file=file, path=path)


#: Times no drill can have: outside these, date arithmetic (a due date, an axis) overflows or means nothing.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)

#: How far outside the drill (before ``drill.started``, after ``drill.ended``) an event may be: clocks skew
#: and an alert may have started a little before the fault, but not days.
OUTSIDE_DRILL = timedelta(days=1)


def _parse_lines(lines: Iterable[bytes], *, file: str, path: Path | None) -> JournalRead:
    # Hundreds of thousands of new objects, none in a reference cycle: the cyclic collector would walk
    # them again and again for nothing (a quarter of the read's time on a 200k-line journal).
    collecting = gc.isenabled()
    gc.disable()
    try:
        parser = _Parser(file)
        events = [e for e in (parser.feed(raw) for raw in lines) if e is not None]
        drop = parser.outside_drill()
        if drop:
            events = [e for e in events if id(e) not in drop]
        return parser.result(path or Path(file), events)
    finally:
        if collecting:
            gc.enable()


# The adapter's own validator, called straight: TypeAdapter.validate_json re-checks its set-up at every call,
# a tenth of the validation of a short line.
_validate_line = EVENT_ADAPTER.validator.validate_json


class _Parser:
    """The rules of reading a journal, one line at a time: what is skipped and reported, and why.

    A duplicate id is compared with the first event of that id. A list read holds every event; a stream
    (``reread``) holds none: it keeps where each line began and a hash of its bytes, so a byte-identical
    redelivery is recognised at once and any other line with a seen id is compared with the first event,
    read again from the file.
    """

    def __init__(self, file: str, *, reread: Callable[[int], bytes] | None = None) -> None:
        self.file = file
        self.reread = reread
        self.problems: list[Problem] = []
        # id -> index of its first event in the arrays below (4 bytes a line for an array, 28 for an int)
        self.seen: dict[str, int] = {}
        self.linenos = array("I")
        self.held: list[Event] = []  # a list read: the first event of each id
        self.starts = array("Q")  # a stream: the offset of its line...
        self.hashes = array("q")  # ...and the hash of its bytes
        # Events not yet known to be within the drill (before its start, or over a day after it): judged
        # once the whole journal (and its drill.ended) has been read. (line, event)
        self.suspects: list[tuple[int, Event]] = []
        self.started: DrillStarted | None = None
        self.within: tuple[datetime, datetime] | None = None  # a day either side of the start
        self.ended: DrillEnded | None = None
        self.shared: dict[Any, Any] = {}
        self.duplicates = 0
        self.offset = 0
        self.end = 0
        self.lineno = 0

    def feed(self, raw: bytes) -> Event | None:
        """The event of one line, or None (blank, bad, a duplicate): its problem is recorded."""
        self.lineno = lineno = self.lineno + 1
        start = self.offset
        self.offset = start + len(raw)
        complete = raw.endswith(b"\n")
        if complete:
            self.end = self.offset
        if raw.isspace() or not raw:
            return None
        try:
            event: Event = _validate_line(raw)
        except ValidationError as e:
            self.problems.append(
                _line_problem(self.file, lineno, e)
                if complete
                else Problem(self.file, lineno, "", TORN_LAST_LINE)
            )
            return None
        absurd = _absurd_time(event)
        if absurd is not None:
            self.problems.append(Problem(self.file, lineno, absurd[0], absurd[1]))
            return None
        seen = self.seen
        first = seen.get(event.id)
        if first is not None:
            self._duplicate(first, event, raw, lineno)
            return None
        if isinstance(event, DrillStarted) and self.started is None:
            self.started = event
            self.within = (event.at - OUTSIDE_DRILL, event.at + OUTSIDE_DRILL)
        elif isinstance(event, DrillEnded):
            self.ended = event
        event = _compact(event, self.shared)
        seen[event.id] = len(self.linenos)
        self.linenos.append(lineno)
        if self.reread is None:
            self.held.append(event)
        else:
            self.starts.append(start)
            self.hashes.append(hash(raw))
        within = self.within
        if within is None or not within[0] <= event.at <= within[1]:
            self.suspects.append((lineno, event))
        return event

    def _duplicate(self, first: int, event: Event, raw: bytes, lineno: int) -> None:
        self.duplicates += 1
        if self.reread is None:
            same = _same(self.held[first], event)
        elif self.hashes[first] == hash(raw):
            same = True
        else:
            try:
                same = _same(EVENT_ADAPTER.validate_json(self.reread(self.starts[first])), event)
            except (ValidationError, OSError):  # the file changed under us: call it different
                same = False
        if not same:
            self.problems.append(
                Problem(
                    self.file,
                    lineno,
                    "id",
                    f"event id {event.id} already used on line {self.linenos[first]} by a different event: "
                    "kept the first",
                )
            )

    def outside_drill(self) -> set[int]:
        """The ``id()`` of each suspect event that is more than a day outside the drill (reported)."""
        started, ended = self.started, self.ended
        if not self.suspects or started is None:
            return set()
        # After the end: a day, except for the postmortem, which is due after the drill (the scorer judges
        # how late). A drill without an end (still running, or crashed) is bounded only before its start.
        earliest = started.at - OUTSIDE_DRILL
        latest = None if ended is None else max(ended.at, started.at) + OUTSIDE_DRILL
        drop: set[int] = set()
        for lineno, event in self.suspects:
            if event is started or (isinstance(event, PostmortemCompleted) and event.at >= earliest):
                continue
            if isinstance(event, FaultReverted) and event.detail.get("by_hand") and event.at >= earliest:
                continue  # `drill recover --resolved-by-hand`, whenever someone got round to it
            if event.at < earliest:
                side = f"before the drill started ({started.at.isoformat()})"
            elif latest is not None and ended is not None and event.at > latest:
                side = f"after the drill ended ({ended.at.isoformat()})"
            else:
                continue
            drop.add(id(event))
            self.problems.append(
                Problem(
                    self.file,
                    lineno,
                    "at",
                    f"{event.type} at {event.at.isoformat()} is more than a day {side}: skipped",
                )
            )
        return drop

    def result(self, path: Path, events: list[Event]) -> JournalRead:
        self.problems.sort(key=lambda p: p.line or 0)
        return JournalRead(
            path=path, events=events, problems=self.problems, duplicates=self.duplicates, end_offset=self.end
        )


# Fields whose values repeat across a journal's events (an observer writes the same actor and reason
# thousands of times): held once, not once per event.
_REPEATED_FIELDS = ("type", "actor", "attribution", "reason", "detail", "channel", "via", "template", "how")


def _compact(event: Event, shared: dict[Any, Any]) -> Event:
    """The same event, holding the values it shares with other events once (a big journal's memory).

    A parsed pydantic model keeps its own set of the fields that were set (728 bytes for an observer's
    event, half its size) and its own copy of every string. Events are frozen, so sharing equal sets and
    equal short strings between them changes no value, comparison or dump (``model_copy`` copies the set
    before changing it); 200k observer events take about 140 MB less.
    """
    cls = type(event)
    known = shared.get(cls)
    if known is None:
        names = tuple(n for n in _REPEATED_FIELDS if n in cls.model_fields)
        known = shared[cls] = (names, list[set[str]]())
    names, sets = known
    fields_set = event.__pydantic_fields_set__
    for one in sets:
        if one == fields_set:
            object.__setattr__(event, "__pydantic_fields_set__", one)
            break
    else:
        sets.append(fields_set)
    values = event.__dict__
    for name in names:
        value = values[name]
        if type(value) is str and len(value) <= 200:
            values[name] = shared.setdefault(value, value)
    return event


_TIME_FIELDS = ("at", "recorded_at", "received_at")


def _absurd_time(event: Event) -> tuple[str, str] | None:
    values = event.__dict__  # not getattr: a missing attribute costs pydantic an exception
    for name in _TIME_FIELDS:
        value = values.get(name)
        if value is not None and isinstance(value, datetime) and not EARLIEST_TIME <= value <= LATEST_TIME:
            return name, (
                f"{value.isoformat()} is not a time a drill can have (before 1970 or after 9000): skipped"
            )
    return None


def _same(a: Event, b: Event) -> bool:
    # A redelivery carries the same event, written again later: when it was recorded does not matter.
    return a.model_copy(update={"recorded_at": None}) == b.model_copy(update={"recorded_at": None})


def _line_problem(file: str, lineno: int, e: ValidationError) -> Problem:
    errors = e.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    loc = [str(p) for p in first["loc"]]
    if kind == "json_invalid":
        detail = str(first["msg"]).removeprefix("Invalid JSON: ")
        return Problem(
            file, lineno, "", f"not valid JSON ({detail}; a torn line from a crashed writer?): skipped"
        )
    if kind in ("model_attributes_type", "dict_type", "model_type") and not loc:
        return Problem(file, lineno, "", "not a JSON object: skipped")
    if kind == "union_tag_not_found":
        return Problem(file, lineno, "type", "no event type: skipped")
    if kind == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag")
        return Problem(
            file,
            lineno,
            "type",
            f"unknown event type {tag!r} (written by a newer drills?; known: {', '.join(EVENT_TYPES)})"
            ": skipped",
        )
    # loc starts with the union tag (the event type); the rest is the field.
    field_path = ".".join(loc[1:]) if len(loc) > 1 else ".".join(loc)
    if field_path == "v" and kind == "literal_error":
        return Problem(
            file,
            lineno,
            "v",
            f"event version {first.get('input')!r} is not supported (this drills reads version "
            f"{JOURNAL_VERSION}): skipped",
        )
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(file, lineno, field_path, f"{first['msg']}{more}: skipped")


def follow(path: Path, from_offset: int = 0) -> tuple[list[Event], int]:
    """Events in complete lines after ``from_offset``, and the offset to continue from (for second screens).

    Lines that do not parse are skipped (``read_journal`` reports them); a partial last line is left for the
    next call. A missing file yields nothing yet; a file shorter than the offset (replaced) starts over.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if from_offset > size:
                from_offset = 0
            f.seek(from_offset)
            chunk = f.read()
    except FileNotFoundError:
        return [], from_offset
    except OSError as e:
        raise JournalError(f"cannot read journal {path}: {e.strerror}", hint=_hint_for(e)) from e
    end = chunk.rfind(b"\n") + 1
    events: list[Event] = []
    for raw in chunk[:end].split(b"\n"):
        if not raw.strip():
            continue
        try:
            event = EVENT_ADAPTER.validate_json(raw)
        except ValidationError:
            continue
        if _absurd_time(event) is None:  # a live screen must not crash on a year-9999 event either
            events.append(event)
    return events, from_offset + end


class Follower:
    """Follows a growing journal, yielding each event once (ids remembered across polls)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self._seen: set[str] = set()

    def poll(self) -> list[Event]:
        events, self.offset = follow(self.path, self.offset)
        fresh = []
        for e in events:
            if e.id not in self._seen:
                self._seen.add(e.id)
                fresh.append(e)
        return fresh


__all__ = [
    "EARLIEST_TIME",
    "JOURNAL_FILE",
    "LATEST_TIME",
    "OUTSIDE_DRILL",
    "TORN_LAST_LINE",
    "Follower",
    "Journal",
    "JournalRead",
    "JournalStream",
    "follow",
    "parse_journal",
    "read_journal",
    "stream_journal",
]
