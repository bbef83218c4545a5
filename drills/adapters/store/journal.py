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
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drills.engine.redact import redactor_for, secrets_from_env
from drills.errors import JournalError, Problem
from drills.model.events import EVENT_ADAPTER, EVENT_TYPES, JOURNAL_VERSION, DrillStarted, Event
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


def read_journal(path: Path) -> JournalRead:
    """Every event of a journal, each id once, with a Problem for each line that could not be read.

    Never fails on content: a torn last line or a bad line in the middle is reported and skipped. Fails only
    when the file itself cannot be read (JournalError with a hint).
    """
    path = Path(path)
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
    try:
        with contextlib.suppress(OSError):  # a file system without flock: read anyway
            fcntl.flock(fd, fcntl.LOCK_SH)  # wait for a writer that is mid-line
        with os.fdopen(fd, "rb", closefd=False) as f:
            content = f.read()
    except IsADirectoryError:
        raise JournalError(
            f"{path} is a directory, not a journal", hint=f"try {path / JOURNAL_FILE}"
        ) from None
    except OSError as e:
        raise JournalError(f"cannot read journal {path}: {e.strerror}", hint=_hint_for(e)) from e
    finally:
        os.close(fd)
    return parse_journal(content, file=str(path), path=path)


def parse_journal(content: bytes, *, file: str = "<journal>", path: Path | None = None) -> JournalRead:
    """Parse journal bytes (see :func:`read_journal`)."""
    events: list[Event] = []
    problems: list[Problem] = []
    seen: dict[str, tuple[int, Event]] = {}
    duplicates = 0
    lines = content.split(b"\n")
    complete = content.endswith(b"\n")
    last = len(lines) - 1
    for index, raw in enumerate(lines):
        lineno = index + 1
        if not raw.strip():
            continue
        torn = index == last and not complete
        try:
            event = EVENT_ADAPTER.validate_json(raw)
        except ValidationError as e:
            if torn:
                problems.append(Problem(file, lineno, "", TORN_LAST_LINE))
            else:
                problems.append(_line_problem(file, lineno, e))
            continue
        first = seen.get(event.id)
        if first is None:
            seen[event.id] = (lineno, event)
            events.append(event)
            continue
        duplicates += 1
        if _same(first[1], event):
            continue
        problems.append(
            Problem(
                file,
                lineno,
                "id",
                f"event id {event.id} already used on line {first[0]} by a different event: kept the first",
            )
        )
    end = content.rfind(b"\n") + 1
    return JournalRead(
        path=path or Path(file), events=events, problems=problems, duplicates=duplicates, end_offset=end
    )


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
            events.append(EVENT_ADAPTER.validate_json(raw))
        except ValidationError:
            continue
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
    "JOURNAL_FILE",
    "TORN_LAST_LINE",
    "Follower",
    "Journal",
    "JournalRead",
    "follow",
    "parse_journal",
    "read_journal",
]
