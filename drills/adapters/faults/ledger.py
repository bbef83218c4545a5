"""The revert ledger: every fault's undo, on disk and fsynced *before* the fault is injected.

A drill that leaves production broken ends chaos at that company, so drills never keeps the only copy of an
undo in memory. Before an injector changes anything, the baseline objects it will touch and the operations
that restore them (:mod:`drills.adapters.faults.revert`) are appended to ``ledger.jsonl`` in the drill's
directory and fsynced; after the revert succeeds a ``reverted`` record closes the entry. Whatever is open
when a process dies (SIGKILL, power loss, a bug) is *pending*: every start of ``drill`` warns about it
(:func:`warn_pending`) and ``drill recover`` replays it (:func:`recover`), idempotently.

Records (JSON Lines, one per line, ``v`` 1)::

    {"v":1,"record":"planned","entry":ID,"at":...,"drill_id":...,"fault_kind":...,"target":...,
     "kubeconfig":...,"context":...,"ops":[...]}         before the fault; ops restore the baseline
    {"v":1,"record":"injected","entry":ID,"at":...}      the API server accepted the fault
    {"v":1,"record":"reverted","entry":ID,"at":...}      the baseline is restored: the entry is closed
    {"v":1,"record":"revert_failed","entry":ID,"at":...,"error":...}   still pending

A process that owns live faults holds an exclusive ``flock`` on ``owner.lock`` next to the ledger; the kernel
drops it when the process dies, so ``recover`` skips drills that are still running instead of reverting a live
drill under its runner's feet.

The ledger holds baseline objects, which for Secret faults include secret data: it is written with mode 0600,
and it is state, never a journal, log or report.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drills.adapters.store import paths
from drills.adapters.store.journal import JOURNAL_FILE, Journal
from drills.engine.redact import scrub, secrets_from_env
from drills.errors import DrillError, JournalError, UsageError
from drills.model.events import FaultReverted, Source
from drills.model.revert import RevertOp, dump_ops, op_problems, parse_ops
from drills.timing import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

LEDGER_VERSION = 1
LEDGER_FILE = "ledger.jsonl"
OWNER_LOCK = "owner.lock"


@dataclass
class LedgerEntry:
    """One fault's undo, as read back from a ledger."""

    entry: str
    drill_id: str
    fault_kind: str
    target: str
    kubeconfig: str
    context: str | None
    ops: list[RevertOp]
    planned_at: str
    injected_at: str | None = None
    reverted_at: str | None = None
    failures: list[str] = field(default_factory=list)
    #: Who put it back by hand and why (``drill recover --resolved-by-hand``), when nobody's revert did.
    resolved_by: str | None = None
    resolved_why: str | None = None
    ledger_path: Path | None = None
    #: Why the recorded undo cannot be played (``file:line: ops[0]: ...``), when its operations are broken:
    #: the entry stays pending, and ``drill recover`` says so instead of reverting half of it.
    invalid: str | None = None

    @property
    def pending(self) -> bool:
        return self.reverted_at is None


@dataclass
class LedgerState:
    entries: list[LedgerEntry]
    #: Lines that could not be read (a torn last line after a crash), as "file:line: why".
    problems: list[str]

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries if e.pending]


class Ledger:
    """Append-only ledger of one drill (``<drill dir>/ledger.jsonl``)."""

    def __init__(self, path: Path, *, drill_id: str | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = Path(path)
        self.drill_id = drill_id or self.path.parent.name
        self.clock = clock
        self._owner_fd: int | None = None

    @classmethod
    def for_drill(cls, drill_id: str, *, clock: Clock = SYSTEM_CLOCK) -> Ledger:
        return cls(paths.drill_dir(drill_id) / LEDGER_FILE, drill_id=drill_id, clock=clock)

    # ---- ownership -----------------------------------------------------------------------------------

    def claim(self) -> None:
        """Hold the owner lock while this process may revert (released on exit or :meth:`release`)."""
        if self._owner_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent / OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                f"another process owns the faults of drill {self.drill_id} ({self.path.parent / OWNER_LOCK})",
                hint="wait for it to finish, or stop it; `drill recover` reverts once it is gone",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._owner_fd = fd

    def release(self) -> None:
        if self._owner_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._owner_fd, fcntl.LOCK_UN)
                os.close(self._owner_fd)
            self._owner_fd = None

    # ---- writing -------------------------------------------------------------------------------------

    def _append(self, record: dict[str, Any]) -> None:
        line = (
            json.dumps({"v": LEDGER_VERSION, **record}, separators=(",", ":"), default=str) + "\n"
        ).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as e:
            raise JournalError(
                f"cannot write the revert ledger {self.path}: {e}",
                hint="drills refuses to inject a fault it could not undo after a crash; check the state dir",
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            # the directory entry must survive a crash too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def _now(self) -> str:
        return self.clock.now().isoformat()

    def plan(
        self,
        *,
        fault_kind: str,
        target: str,
        kubeconfig: Path | str,
        context: str | None,
        ops: Sequence[RevertOp | Mapping[str, Any]],
    ) -> str:
        """Record an undo before injecting; returns the entry id. Operations that do not validate are refused
        (a JournalError) before anything is written: drills never injects a fault it could not undo."""
        try:
            typed = parse_ops(ops)
        except ValidationError as e:
            raise JournalError(
                f"refusing to record an undo drills could not play: {'; '.join(op_problems(e))}",
                hint="a fault injector returned broken revert operations; nothing was injected",
            ) from e
        entry = uuid.uuid4().hex[:16]
        self._append(
            {
                "record": "planned",
                "entry": entry,
                "at": self._now(),
                "drill_id": self.drill_id,
                "fault_kind": fault_kind,
                "target": target,
                "kubeconfig": str(kubeconfig),
                "context": context,
                "ops": dump_ops(typed),
            }
        )
        return entry

    def injected(self, entry: str, at: datetime | None = None) -> None:
        self._append({"record": "injected", "entry": entry, "at": (at or self.clock.now()).isoformat()})

    def reverted(self, entry: str) -> None:
        self._append({"record": "reverted", "entry": entry, "at": self._now()})

    def resolved_by_hand(self, entry: str, *, by: str, why: str) -> None:
        """Someone restored what this revert could not: it stops being pending, and the ledger says who/why."""
        text = scrub(why[:2000], secrets_from_env(os.environ))
        self._append({"record": "resolved_by_hand", "entry": entry, "at": self._now(), "by": by, "why": text})

    def revert_failed(self, entry: str, error: str) -> None:
        # The error is free text (an API server's message may quote a header or a value): scrubbed. The
        # ops are not: they hold what the revert must put back, a rotated Secret's old value included.
        text = scrub(error[:2000], secrets_from_env(os.environ))
        self._append({"record": "revert_failed", "entry": entry, "at": self._now(), "error": text})

    # ---- reading -------------------------------------------------------------------------------------

    def state(self) -> LedgerState:
        return read_ledger(self.path)

    def pending(self) -> list[LedgerEntry]:
        return self.state().pending()


def read_ledger(path: Path) -> LedgerState:
    """Entries in file order; a torn or unreadable line is a problem, never fatal."""
    entries: dict[str, LedgerEntry] = {}
    problems: list[str] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return LedgerState([], [])
    except OSError as e:
        raise JournalError(f"cannot read the revert ledger {path}: {e}") from e
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            kind = rec["record"]
            entry_id = rec["entry"]
        except (ValueError, KeyError, TypeError):
            last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
            why = "torn last line (crash while writing?): skipped" if last else "unreadable record: skipped"
            problems.append(f"{path}:{number}: {why}")
            continue
        if kind == "planned":
            ops, invalid = _ops_of(rec.get("ops"), f"{path}:{number}")
            entries[entry_id] = LedgerEntry(
                entry=entry_id,
                drill_id=str(rec.get("drill_id", path.parent.name)),
                fault_kind=str(rec.get("fault_kind", "?")),
                target=str(rec.get("target", "?")),
                kubeconfig=str(rec.get("kubeconfig", "")),
                context=rec.get("context"),
                ops=ops,
                planned_at=str(rec.get("at", "")),
                ledger_path=path,
                invalid=invalid,
            )
        elif entry_id in entries:
            known = entries[entry_id]
            if kind == "injected":
                known.injected_at = str(rec.get("at"))
            elif kind == "reverted":
                known.reverted_at = str(rec.get("at"))
            elif kind == "revert_failed":
                known.failures.append(str(rec.get("error", "")))
            elif kind == "resolved_by_hand":
                known.reverted_at = str(rec.get("at"))
                known.resolved_by = str(rec.get("by", ""))
                known.resolved_why = str(rec.get("why", ""))
        else:
            problems.append(f"{path}:{number}: record for unknown entry {entry_id}: skipped")
    return LedgerState(list(entries.values()), problems)


def _ops_of(raw: Any, where: str) -> tuple[list[RevertOp], str | None]:
    """A planned record's operations, validated; or none and why (naming the file and line)."""
    if not isinstance(raw, list):
        return [], f"{where}: 'ops' is not a list of revert operations"
    try:
        return parse_ops(raw), None
    except ValidationError as e:
        return [], f"{where}: " + "; ".join(op_problems(e))


def all_ledgers() -> Iterator[Path]:
    root = paths.drills_dir()
    if root.is_dir():
        yield from sorted(root.glob(f"*/{LEDGER_FILE}"))


def owner_alive(ledger_path: Path) -> int | None:
    """The PID holding the drill's owner lock (its faults are live), or None when nobody does."""
    lock = ledger_path.parent / OWNER_LOCK
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def pending_entries(*, include_owned: bool = False) -> list[LedgerEntry]:
    """Open entries over every drill's ledger; those of live drills only when ``include_owned``."""
    result: list[LedgerEntry] = []
    for path in all_ledgers():
        pending = read_ledger(path).pending()
        if pending and (include_owned or owner_alive(path) is None):
            result.extend(pending)
    return result


def warn_pending() -> list[str]:
    """One line per fault left unreverted by a drill that is no longer running (for the start of `drill`)."""
    lines = []
    for e in pending_entries():
        since = e.injected_at or e.planned_at
        lines.append(
            f"drill {e.drill_id}: fault {e.fault_kind} on {e.target} was not reverted (since {since}); "
            "run `drill recover`"
        )
    return lines


@dataclass(frozen=True)
class Recovery:
    entry: LedgerEntry
    ok: bool
    message: str


KubeFactory = Callable[[str, "str | None"], Any]


def resolve_by_hand(ident: str, *, by: str, why: str, clock: Clock = SYSTEM_CLOCK) -> list[LedgerEntry]:
    """Mark the pending reverts of a drill (or one entry, by its id) as restored by hand; those marked.

    A revert that cannot succeed (the object it restores was replaced by hand, a rollback that fails) would
    otherwise be replayed by every ``drill recover`` and warned about by every command.
    """
    if not why.strip():
        raise UsageError(
            "say why the revert is resolved by hand (--why)", hint="e.g. --why 'uncordoned by hand'"
        )
    marked: list[LedgerEntry] = []
    for pending in pending_entries(include_owned=False):
        if ident in (pending.drill_id, pending.entry):
            assert pending.ledger_path is not None
            Ledger(pending.ledger_path, clock=clock).resolved_by_hand(pending.entry, by=by, why=why)
            _journal_by_hand(pending, by=by, why=why, clock=clock)
            marked.append(pending)
    if not marked:
        raise UsageError(
            f"no pending revert with drill or entry id {ident!r}", hint="`drill recover --list` shows them"
        )
    return marked


def _journal_by_hand(entry: LedgerEntry, *, by: str, why: str, clock: Clock) -> None:
    """Tell the drill's own journal too, so its timeline and postmortem say who put the fault back and why.

    A ``fault.reverted`` from a person (``source: human``, ``detail.by_hand``): the scorer counts only
    drills' own revert as the fault's end, so the score does not change. The ledger record is what stops the
    repeating; a journal that is gone or unwritable only costs the timeline line, so it is logged, not raised.
    """
    assert entry.ledger_path is not None
    path = entry.ledger_path.parent / JOURNAL_FILE
    if not path.is_file():
        return
    try:
        Journal(path, clock).append(
            FaultReverted(
                at=clock.now(),
                source=Source.HUMAN,
                actor=by,
                fault_kind=entry.fault_kind,
                target=entry.target,
                ok=True,
                detail={"by_hand": True, "by": by, "why": why[:2000], "entry": entry.entry},
            )
        )
    except DrillError as e:
        log.warning(
            "drill %s: the revert by hand is in the ledger but not in the journal: %s", entry.drill_id, e
        )


def recover(
    kube_factory: KubeFactory | None = None,
    *,
    drill_id: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Recovery]:
    """Replay every pending revert (of drills no longer running), newest fault first; idempotent.

    ``kube_factory(kubeconfig, context)`` builds the client for an entry (default: :class:`Kube`); tests and
    the CLI pass their own. A revert that fails stays pending, with the error recorded.
    """
    from drills.adapters.faults.revert import apply_ops
    from drills.adapters.kube.client import Kube

    factory: KubeFactory = kube_factory or (lambda kubeconfig, context: Kube(kubeconfig, context))
    results: list[Recovery] = []
    by_ledger: dict[Path, list[LedgerEntry]] = {}
    for pending in pending_entries():
        if drill_id is None or pending.drill_id == drill_id:
            assert pending.ledger_path is not None
            by_ledger.setdefault(pending.ledger_path, []).append(pending)
    for ledger_path, entries in by_ledger.items():
        ledger = Ledger(ledger_path, clock=clock)
        try:
            ledger.claim()
        except JournalError as err:
            results.extend(Recovery(e, False, str(err)) for e in entries)
            continue
        try:
            # undo in reverse order: a later fault may sit on top of an earlier one's change
            for e in reversed(entries):
                if e.invalid is not None:
                    message = f"cannot revert: {e.invalid}"
                    ledger.revert_failed(e.entry, message)
                    results.append(Recovery(e, False, message))
                    continue
                try:
                    kube = factory(e.kubeconfig, e.context)
                    try:
                        notes = apply_ops(kube, e.ops)
                    finally:
                        close = getattr(kube, "close", None)
                        if callable(close):
                            close()
                except DrillError as err:
                    ledger.revert_failed(e.entry, str(err))
                    results.append(Recovery(e, False, str(err)))
                    continue
                ledger.reverted(e.entry)
                results.append(Recovery(e, True, "; ".join(notes) or "restored"))
        finally:
            ledger.release()
    return results
