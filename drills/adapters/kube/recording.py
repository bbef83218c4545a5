"""Recorded watch streams and audit logs, and their replay through the observer.

Classification and attribution are where the observer's subtlety lives (which write explains which change,
a re-list folding several writes, a drain made of evictions), and a real cluster takes minutes to show one
case. A *recording* keeps what the observer received from a real cluster while something happened: every
list and raw watch event per kind, each broken watch, and the audit records, all with their arrival offsets;
plus the journal events the live observer wrote then. :func:`replay` feeds it back through the same
:class:`~drills.adapters.kube.observer.Observer` code (per-event, re-list, audit join, health pacing) on the
caller's thread with a :class:`~drills.timing.FakeClock` set to each arrival, so a test runs in
milliseconds and asserts the same journal events the cluster test does.

A recording is one JSON Lines file (``.jsonl`` or ``.jsonl.gz``). The first line is the header::

    {"recording": 1, "started": "2026-...Z", "seconds": 31.2, "scenario": {...}, "identities": {...},
     "kinds": [...], "attribution": "audit"}

then entries ordered by ``t`` (seconds after ``started``)::

    {"t": 0.01, "kind": "Pod", "list": {"items": [...], "rv": "123"}}      a list (a later one: a re-list)
    {"t": 2.50, "kind": "Pod", "event": {"type": "MODIFIED", "object": {...}}}   a raw watch event
    {"t": 9.10, "kind": "Pod", "error": "...", "status": 410}                a broken watch
    {"t": 2.51, "audit": [{...audit event...}, ...]}                         what one read of the log found
                                                                             (empty reads are kept too)
    {"t": 2.52, "journal": {...journal event...}}                            what the live observer wrote
    {"t": 2.53, "handled": ["Pod", "MODIFIED", "ns", "name", "rv", false]}   when its processor took a change up

Objects are kept as the observer's cache keeps them (:func:`~drills.adapters.kube.observer.slim`), and
scrubbed: ConfigMap values become short digests (changes still show, contents do not), Secrets are metadata
only already, and audit events keep only the fields drills reads (no tokens, no certificates, no bodies).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import gzip
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.kube.audit import AuditRecord, AuditTail
from drills.adapters.kube.client import Kube
from drills.adapters.kube.identities import Identities, Identity
from drills.adapters.kube.observer import (
    AUDIT_LAG,
    WATCHED_KINDS,
    AuditSource,
    Change,
    KubeWatchSource,
    Observer,
    WatchSource,
    slim,
)
from drills.errors import DrillError, UsageError
from drills.model.events import Event, parse_event
from drills.model.scenario import Scenario
from drills.timing import SYSTEM_CLOCK, Clock, FakeClock, utc

FORMAT = 1
#: How often the observer's audit tail reads the log: a line written that long after a change's arrival
#: may still have been read before the change was attributed.
TAIL_EVERY = 0.02


def scrub(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A copy fit to commit: ConfigMap values as digests (a changed value still changes)."""
    out = copy.deepcopy(obj)
    if kind == "ConfigMap":
        for section in ("data", "binaryData"):
            values = out.get(section)
            if isinstance(values, dict):
                out[section] = {
                    k: "sha256:" + hashlib.sha256(str(v).encode()).hexdigest()[:12] for k, v in values.items()
                }
    return out


class RecordingWriter:
    """Entries from many threads, stamped with the clock, written sorted by time at the end."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.started = clock.now()
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        entry = {"t": round((self.clock.now() - self.started).total_seconds(), 6), **entry}
        with self._lock:
            self._entries.append(entry)

    def journal(self, event: Event) -> None:
        self.add({"journal": event.model_dump(mode="json")})

    def handled(self, item: Change | AuditRecord) -> None:
        """The observer's processor took up a change: how far behind the watch it was decides what the
        audit tail had read by then."""
        if isinstance(item, Change):
            self.add({"handled": handled_key(item.kind, item.type, item.obj, relisted=item.relisted)})

    def write(
        self,
        path: Path,
        *,
        scenario: Scenario,
        identities: Identities | None,
        kinds: tuple[str, ...],
        attribution: str,
    ) -> Path:
        with self._lock:
            entries = sorted(self._entries, key=lambda e: e["t"])  # stable: a thread's own order is kept
        header = {
            "recording": FORMAT,
            "started": self.started.isoformat().replace("+00:00", "Z"),
            "seconds": round((self.clock.now() - self.started).total_seconds(), 3),
            "scenario": scenario.model_dump(mode="json", exclude_none=True),
            "identities": _identities_out(identities),
            "kinds": list(kinds),
            "attribution": attribution,
        }
        lines = [json.dumps(header, sort_keys=True)] + [json.dumps(e, sort_keys=True) for e in entries]
        text = "\n".join(lines) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(text, encoding="utf-8")
        return path


def handled_key(kind: str, type_: str, obj: dict[str, Any], *, relisted: bool) -> list[Any]:
    meta = obj.get("metadata") or {}
    return [kind, type_, meta.get("namespace"), meta.get("name"), meta.get("resourceVersion"), relisted]


def _identities_out(ids: Identities | None) -> dict[str, Any] | None:
    if ids is None:
        return None
    # who is who, never where their credentials are
    return {
        role: {"user": i.user, "groups": list(i.groups), "actor_kind": i.actor_kind.value}
        for role, i in (("injector", ids.injector), ("responder", ids.responder), ("bot", ids.bot))
    }


def _identities_in(data: dict[str, Any] | None) -> Identities | None:
    if not data:
        return None

    def one(d: dict[str, Any]) -> Identity:
        return Identity.from_dict({**d, "kubeconfig": "", "context": ""})

    return Identities(one(data["injector"]), one(data["responder"]), one(data["bot"]))


class RecordingSource:
    """A watch source that passes everything through and records it (lists, raw events, broken watches)."""

    def __init__(self, inner: WatchSource, writer: RecordingWriter, *, keep_managed_fields: bool) -> None:
        self.inner = inner
        self.writer = writer
        self.keep_managed_fields = keep_managed_fields

    def session(self) -> RecordingSource:
        return RecordingSource(
            self.inner.session(), self.writer, keep_managed_fields=self.keep_managed_fields
        )

    def _kept(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return scrub(kind, slim(copy.deepcopy(obj), keep_managed_fields=self.keep_managed_fields))

    def list(
        self,
        kind: str,
        namespace: str | None,
        *,
        metadata_only: bool,
        transform: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], str]:
        items, rv = self.inner.list(kind, namespace, metadata_only=metadata_only, transform=transform)
        self.writer.add({"kind": kind, "list": {"items": [scrub(kind, o) for o in items], "rv": rv}})
        return items, rv

    def watch(
        self,
        kind: str,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        metadata_only: bool,
        on_response: Callable[[Any], None],
    ) -> Iterator[dict[str, Any]]:
        try:
            for event in self.inner.watch(
                kind,
                namespace=namespace,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                metadata_only=metadata_only,
                on_response=on_response,
            ):
                obj = event.get("object")
                kept = dict(event)
                if isinstance(obj, dict) and event.get("type") not in ("ERROR", "BOOKMARK"):
                    kept["object"] = self._kept(kind, obj)
                self.writer.add({"kind": kind, "event": kept})
                yield event
        except DrillError as e:
            self.writer.add({"kind": kind, "error": str(e), "status": getattr(e.__cause__, "status", None)})
            raise

    def close(self) -> None:
        self.inner.close()


class RecordingAuditSource:
    """An audit source that passes records through and records every read of the log."""

    def __init__(self, inner: AuditSource, writer: RecordingWriter) -> None:
        self.inner = inner
        self.writer = writer

    def poll(self) -> list[AuditRecord]:
        records = self.inner.poll()
        # empty reads too: when the tail looked and found nothing decides what the observer knew
        self.writer.add({"audit": [r.to_event() for r in records]})
        return records


# ---- reading and replaying ------------------------------------------------------------------------------


@dataclass
class Recording:
    path: Path
    started: datetime
    seconds: float
    scenario: Scenario
    identities: Identities | None
    kinds: tuple[str, ...]
    attribution: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def journal(self) -> list[Event]:
        """What the live observer journaled while this was recorded."""
        return [parse_event(e["journal"]) for e in self.entries if "journal" in e]

    def at(self, entry: dict[str, Any]) -> datetime:
        return self.started + timedelta(seconds=float(entry["t"]))


def load(path: Path) -> Recording:
    """Read a recording; a bad line is an error naming the file and the line."""
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
    except (OSError, gzip.BadGzipFile, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the recording {path}: {e}") from e
    lines = text.splitlines()
    parsed: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            data = json.loads(line)
        except ValueError as e:
            raise UsageError(f"{path}:{number}: not JSON ({e}); record it again") from e
        if not isinstance(data, dict) or (number > 1 and "t" not in data):
            raise UsageError(f"{path}:{number}: an entry needs a 't' (seconds after the start)")
        parsed.append(data)
    if not parsed or parsed[0].get("recording") != FORMAT:
        raise UsageError(f"{path}:1: not a drills watch recording (format {FORMAT} expected)")
    head = parsed[0]
    try:
        return Recording(
            path=path,
            started=utc(datetime.fromisoformat(str(head["started"]).replace("Z", "+00:00"))),
            seconds=float(head.get("seconds", 0)),
            scenario=Scenario.model_validate(head["scenario"]),
            identities=_identities_in(head.get("identities")),
            kinds=tuple(head.get("kinds") or WATCHED_KINDS),
            attribution=str(head.get("attribution", "audit")),
            entries=parsed[1:],
        )
    except (KeyError, ValueError) as e:
        raise UsageError(f"{path}:1: bad recording header: {e}") from e


class _Nothing:
    """The replay's stand-in source: a replay never lists or watches (entries are fed to the observer)."""

    def session(self) -> _Nothing:
        return self

    def list(self, *a: Any, **k: Any) -> tuple[builtins.list[dict[str, Any]], str]:
        raise DrillError("a replay does not list: its lists come from the recording")

    def watch(self, *a: Any, **k: Any) -> Iterator[dict[str, Any]]:
        raise DrillError("a replay does not watch: its events come from the recording")

    def poll(self) -> builtins.list[AuditRecord]:
        return []

    def close(self) -> None:
        pass


class _Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def replay(
    recording: Recording,
    *,
    scenario: Scenario | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> list[Event]:
    """The journal events the observer writes when fed ``recording``: synchronous and deterministic.

    Entries are processed in arrival order at their arrival time. Before a change is attributed, the index
    holds what the live tail had read once it had read past the change's arrival plus the audit lag (the
    recorded reads up to and including the first one after that), as the live observer waits for it. Health is judged on the live
    pacing: after a relevant change once no other arrives within the health interval, and on every tick."""
    clock = FakeClock(recording.started)
    events: list[Event] = []

    def emit(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    nothing = _Nothing()
    obs = Observer(
        None,
        scenario or recording.scenario,
        clock,
        identities=recording.identities,
        on_event=emit,
        kinds=recording.kinds,
        source=nothing,
        audit_source=nothing if recording.attribution == "audit" else None,
        waits=clock,
    )
    obs.begin()
    audit = [e for e in recording.entries if "audit" in e]
    stream = [e for e in recording.entries if "kind" in e]
    lag = timedelta(seconds=TAIL_EVERY)

    def advance(to: datetime) -> None:
        """Move the clock to ``to``, judging health on the ticks in between."""
        while True:
            # a microsecond past the due time: the FakeClock's wall time has microseconds only
            step = max(0.0, obs.next_tick() - clock.monotonic()) + 1e-6
            if clock.now() + timedelta(seconds=step) > to:
                break
            clock.advance(step)
            obs.replay_tick(queue_empty=True)
        if to > clock.now():
            clock.advance(to - clock.now())

    def read_audit(until: datetime) -> None:
        while audit and recording.at(audit[0]) <= until:
            read_one()

    def next_read() -> list[AuditRecord]:
        entry = audit.pop(0)
        last_read[0] = recording.at(entry)
        return [r for r in (AuditRecord.parse(e) for e in entry["audit"]) if r is not None]

    def read_one() -> None:
        records = next_read()
        obs.replay_audit(records, polled=max(clock.now(), last_read[0]))

    def read_late(until: datetime) -> bool:
        """The live tail's next read while the processor waits for a change's late audit line."""
        if not audit or recording.at(audit[0]) > until:
            return False
        records = next_read()
        obs.replay_audit_late(records, polled=max(clock.now(), last_read[0]))
        return True

    obs.audit_feed = read_late

    handled: dict[tuple[Any, ...], list[datetime]] = {}
    for entry in recording.entries:
        if "handled" in entry:
            handled.setdefault(tuple(entry["handled"]), []).append(recording.at(entry))
    last_read = [recording.started]

    def when_handled(entry: dict[str, Any]) -> datetime | None:
        """When the live processor took up this entry's change (the last of a re-list's), if recorded."""
        kind = str(entry["kind"])
        if "event" in entry:
            event = entry["event"]
            key = tuple(handled_key(kind, str(event.get("type")), event.get("object") or {}, relisted=False))
            if key[1] == "DELETED":
                # the observer's change carries the last version it had cached, not the deletion's
                key = next((k for k, ts in handled.items() if ts and k[:4] == key[:4] and not k[5]), key)
            times = handled.get(key)
            return times.pop(0) if times else None
        at = recording.at(entry)
        later = [
            t
            for k, ts in handled.items()
            if k[0] == kind and k[5]
            for t in ts
            if at <= t <= at + timedelta(seconds=5)
        ]
        return max(later) if later else None

    def catch_up(at: datetime, taken_up: datetime | None) -> None:
        """What the live tail had read when the processor attributed the change: every read until it took
        the change up, and at least one read after the change's line was surely written."""
        read_audit(max(at + AUDIT_LAG - timedelta(microseconds=1), taken_up or at))
        if last_read[0] < at + AUDIT_LAG and audit:
            read_one()
        obs.replay_audit([], polled=max(last_read[0], at + AUDIT_LAG))

    # What arrived after the live processor's last change was still queued when it stopped: cached (the
    # health judgements saw it) but never classified.
    last = max((t for ts in handled.values() for t in ts), default=None)
    primed = False
    listed: set[str] = set()
    for i, entry in enumerate(stream):
        at = recording.at(entry)
        read_audit(at)  # what the tail read before this arrived, evidence reads journaled in order
        if primed:
            advance(at)
        elif at > clock.now():
            clock.advance(at - clock.now())
        kind = str(entry["kind"])
        if "error" in entry:
            status = entry.get("status")
            error = DrillError(str(entry["error"]))
            if isinstance(status, int):
                error.__cause__ = _Status(status)
            obs.replay_error(kind, error)
            continue
        if "event" in entry and not primed:
            obs.primed()
            primed = True
        if primed:
            catch_up(at, when_handled(entry))
        if "list" in entry:
            obs.replay_list(kind, entry["list"]["items"], str(entry["list"]["rv"]))
            listed.add(kind)
        else:
            obs.replay_event(kind, entry["event"], process=last is None or at <= last)
        if not primed and listed >= set(obs.kinds):
            obs.primed()
            primed = True
        if primed:
            nxt = recording.at(stream[i + 1]) if i + 1 < len(stream) else None
            obs.replay_tick(queue_empty=nxt is None or (nxt - at).total_seconds() > lag.total_seconds())
    if not primed:
        obs.primed()
    end = recording.started + timedelta(seconds=recording.seconds)
    read_audit(end)
    advance(end)
    return events


@contextlib.contextmanager
def recorded(
    kube: Kube,
    scenario: Scenario,
    out: Path,
    *,
    audit_log: Path | None,
    identities: Identities | None = None,
    on_event: Callable[[Event], object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[Observer]:
    """A live observer whose lists, watch events, audit reads and journal events are written to ``out``
    when the block ends (also when it fails: a recording of a failure is worth keeping)."""
    writer = RecordingWriter(clock)
    source = RecordingSource(KubeWatchSource(kube), writer, keep_managed_fields=audit_log is None)
    audit = RecordingAuditSource(AuditTail(audit_log), writer) if audit_log is not None else None

    def journal(event: Event) -> None:
        writer.journal(event)
        if on_event is not None:
            on_event(event)

    observer = Observer(
        kube,
        scenario,
        clock,
        audit_log=audit_log,
        identities=identities,
        on_event=journal,
        source=source,
        audit_source=audit,
        on_step=writer.handled,
    )
    observer.start()
    try:
        yield observer
    finally:
        observer.stop()
        writer.write(
            out,
            scenario=scenario,
            identities=identities,
            kinds=observer.kinds,
            attribution=observer.attribution,
        )


# ---- a paced replay: the live observer's threads fed by a recording ---------------------------------------


class PacedClock:
    """The recording's time, running ``speed`` times faster than the wall clock from the recording's start:
    the clock a paced replay's observer reads (its waits stay real, so a paced replay is only faster)."""

    def __init__(self, start: datetime, speed: float, base: Clock = SYSTEM_CLOCK) -> None:
        self.start, self.speed, self.base = start, speed, base
        self._origin = base.monotonic()

    def elapsed(self) -> float:
        return (self.base.monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed())

    def monotonic(self) -> float:
        return self._origin + self.elapsed()

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds / self.speed)


class _Stream:
    """What a paced watch hands the observer to interrupt it (as a live response's ``shutdown``)."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def shutdown(self) -> None:
        self.closed.set()


class PacedWatchSource:
    """A recording's lists and watch streams served to a started observer at the recording's pace: each
    kind's entries in order, a watch event when its arrival time comes, a recorded broken watch raised as
    the same DrillError. Exercises the observer's own watch, reconnect, re-list and tail loops."""

    def __init__(self, recording: Recording, clock: PacedClock) -> None:
        self.clock = clock
        self._by_kind: dict[str, list[dict[str, Any]]] = {}
        for entry in recording.entries:
            if "kind" in entry:
                self._by_kind.setdefault(str(entry["kind"]), []).append(entry)

    def session(self) -> PacedWatchSource:
        return self  # one thread per kind, and each kind's entries are its own

    def _wait(self, entry: dict[str, Any], stream: _Stream | None = None) -> bool:
        """Until the entry's time comes; False when the stream was closed first."""
        while (left := float(entry["t"]) - self.clock.elapsed()) > 0:
            if stream is not None and stream.closed.wait(left / self.clock.speed):
                return False
            if stream is None:
                self.clock.sleep(left)
        return True

    def list(
        self,
        kind: str,
        namespace: str | None,
        *,
        metadata_only: bool,
        transform: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        entries = self._by_kind.get(kind, [])
        while entries and "list" not in entries[0]:
            entries.pop(0)  # what the live watch saw after its last event before this list is lost
        if not entries:
            raise DrillError(f"the recording holds no further list of {kind}")
        entry = entries.pop(0)
        self._wait(entry)
        items = [transform(copy.deepcopy(o)) for o in entry["list"]["items"]]
        return items, str(entry["list"]["rv"])

    def watch(
        self,
        kind: str,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        metadata_only: bool,
        on_response: Callable[[Any], None],
    ) -> Iterator[dict[str, Any]]:
        stream = _Stream()
        on_response(stream)
        entries = self._by_kind.get(kind, [])
        while entries and "list" not in entries[0]:
            entry = entries.pop(0)
            if not self._wait(entry, stream):
                return
            if "error" in entry:
                error = DrillError(str(entry["error"]))
                if isinstance(entry.get("status"), int):
                    error.__cause__ = _Status(int(entry["status"]))
                raise error
            yield copy.deepcopy(entry["event"])
        stream.closed.wait()  # nothing more recorded (or a re-list is next): quiet until stopped

    def close(self) -> None:
        pass


class PacedAuditSource:
    """The recording's audit reads, each returned by the first poll after its time."""

    def __init__(self, recording: Recording, clock: PacedClock) -> None:
        self.clock = clock
        self._reads = [e for e in recording.entries if "audit" in e]

    def poll(self) -> builtins.list[AuditRecord]:
        out: builtins.list[AuditRecord] = []
        while self._reads and float(self._reads[0]["t"]) <= self.clock.elapsed():
            out += [r for r in (AuditRecord.parse(e) for e in self._reads.pop(0)["audit"]) if r is not None]
        return out


def paced_replay(recording: Recording, *, speed: float = 10.0) -> tuple[list[Event], Observer]:
    """Replay ``recording`` through a started observer (its threads and loops), ``speed`` times faster than
    it happened; the journal events and the stopped observer (for its watch stats)."""
    clock = PacedClock(recording.started, speed)
    events: list[Event] = []
    obs = Observer(
        None,
        recording.scenario,
        clock,
        identities=recording.identities,
        on_event=events.append,
        kinds=recording.kinds,
        source=PacedWatchSource(recording, clock),
        audit_source=PacedAuditSource(recording, clock) if recording.attribution == "audit" else None,
        # the observer's own waits are real: shortened alike, so its pace keeps up with the recording's
        backoff=(0.1 / speed, 0.5 / speed),
        audit_poll=0.02 / speed,
        waits=clock,
    )
    obs.start()
    try:
        clock.sleep(max(0.0, recording.seconds - clock.elapsed()))
    finally:
        obs.stop()
    return events, obs
