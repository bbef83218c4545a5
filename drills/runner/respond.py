"""What responders do during a drill, as a library: acknowledge, declare, take roles, communicate, resolve...

The ``drill ack`` / ``declare`` / ``comms`` / ... commands, typed in another terminal while ``drill run``
shows its dashboard, and the scripted responder (the bot) both go through :class:`ResponderSession`: each
action is one event appended to the running drill's journal (which locks the file, so the runner, the
observer and any number of terminals write to it safely at the same time).

Which drill: ``--drill ID`` names one; otherwise the active-drill pointer (``<state>/active-drill``) that
``drill run`` sets while it runs. The runner also leaves a small ``drill.json`` in the drill's directory
(its identities' kubeconfigs, the scenario, the runner's pid) for ``drill env`` and the game master.
Aborting writes a marker file the runner polls (and a note in the journal), so the runner, which owns the
faults, is the one that reverts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.monitoring import stack as monitoring
from drills.adapters.store import paths
from drills.adapters.store.journal import JOURNAL_FILE, Journal, read_journal
from drills.engine import comms
from drills.errors import DrillError, JournalError, NoActiveDrill, UsageError
from drills.model.events import (
    Acknowledged,
    CommsPosted,
    Detected,
    DrillEnded,
    DrillStarted,
    EscalationNotified,
    Event,
    FaultInjected,
    HealthChanged,
    HintInfo,
    HintUsed,
    Mitigated,
    Note,
    Paused,
    Resolved,
    Resumed,
    Role,
    RoleAssigned,
    SeverityDeclared,
    Source,
    TicketCreated,
)
from drills.model.severity import Severity
from drills.timing import SYSTEM_CLOCK, Clock

META_FILE = "drill.json"
ABORT_MARKER = "abort-requested"
_DRILL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


# ---- which drill -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillRef:
    """A drill on disk: its id, directory and journal, and what the runner recorded about it."""

    drill_id: str
    directory: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def journal_path(self) -> Path:
        return self.directory / JOURNAL_FILE

    @property
    def abort_marker(self) -> Path:
        return self.directory / ABORT_MARKER


def _check_id(drill_id: str) -> str:
    drill_id = drill_id.strip()
    if not _DRILL_ID.match(drill_id):
        raise UsageError(
            f"{drill_id!r} is not a drill id", hint="drill ids look like 20260106-090000-bad-deploy"
        )
    return drill_id


def active_drill_id() -> str | None:
    try:
        text = paths.active_drill_file().read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise JournalError(f"cannot read {paths.active_drill_file()}: {e.strerror}") from e
    return text or None


def set_active(drill_id: str) -> None:
    """Point responder commands at ``drill_id`` (write then rename: a reader never sees half an id)."""
    target = paths.active_drill_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(_check_id(drill_id) + "\n", encoding="utf-8")
    tmp.replace(target)


def clear_active(drill_id: str) -> None:
    """Remove the pointer if it still names ``drill_id`` (another drill may have started since)."""
    with contextlib.suppress(FileNotFoundError):
        if active_drill_id() == drill_id:
            paths.active_drill_file().unlink()


def write_meta(ref_dir: Path, meta: dict[str, Any]) -> None:
    ref_dir.mkdir(parents=True, exist_ok=True)
    tmp = ref_dir / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(ref_dir / META_FILE)


def find_drill(drill_id: str | None = None) -> DrillRef:
    """The drill ``drill_id`` names, or the active one; NoActiveDrill (with what to do) when there is none."""
    from_pointer = drill_id is None
    if drill_id is None:
        drill_id = active_drill_id()
        if drill_id is None:
            raise NoActiveDrill(
                "no drill is running",
                hint="start one with `drill run SCENARIO` (in another terminal), or name one with --drill ID",
            )
    drill_id = _check_id(drill_id)
    directory = paths.drill_dir(drill_id)
    if not (directory / JOURNAL_FILE).exists():
        raise NoActiveDrill(
            f"drill {drill_id} has no journal at {directory / JOURNAL_FILE}",
            hint="check the id (`ls $DRILLS_STATE/drills`) or that DRILLS_STATE matches the runner's",
        )
    meta: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            meta = loaded
    ref = DrillRef(drill_id, directory, meta)
    if from_pointer and _runner_gone(ref):
        raise NoActiveDrill(
            f"drill {drill_id} is not running any more: its runner (pid {meta.get('pid')}) is gone",
            hint="`drill recover` reverts any fault it left behind; start a new drill with `drill run`",
        )
    return ref


def _runner_gone(ref: DrillRef) -> bool:
    """The pointer names a drill whose runner died without ending it (a crash, SIGKILL, a reboot)."""
    pid = ref.meta.get("pid")
    if not isinstance(pid, int) or pid <= 0 or ref.meta.get("outcome"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


# ---- what the journal says so far -----------------------------------------------------------------------


@dataclass(frozen=True)
class DrillState:
    """The facts responder commands need, read from the journal."""

    started: DrillStarted
    events: list[Event]
    t0: datetime | None
    ended: DrillEnded | None
    paused: bool
    healthy: bool | None
    acknowledged: bool
    resolved: bool
    hints_used: frozenset[int]

    @classmethod
    def of(cls, events: Sequence[Event], drill_id: str = "") -> DrillState:
        started = next((e for e in events if isinstance(e, DrillStarted)), None)
        if started is None:
            raise JournalError(f"drill {drill_id}: the journal has no drill.started event")
        ordered = sorted(events, key=lambda e: e.at)
        t0 = next((e.at for e in ordered if isinstance(e, FaultInjected)), None)
        ended = next((e for e in ordered if isinstance(e, DrillEnded)), None)
        paused = False
        healthy: bool | None = None
        resolved = False
        for e in ordered:
            if isinstance(e, Paused):
                paused = True
            elif isinstance(e, Resumed):
                paused = False
            elif isinstance(e, HealthChanged):
                healthy = e.healthy
            elif isinstance(e, Resolved):
                resolved = True
        return cls(
            started=started,
            events=list(events),
            t0=t0,
            ended=ended,
            paused=paused,
            healthy=healthy,
            acknowledged=any(isinstance(e, Acknowledged) for e in events),
            resolved=resolved,
            hints_used=frozenset(e.index for e in events if isinstance(e, HintUsed)),
        )

    @property
    def incident_id(self) -> str:
        return comms.incident_id(self.started.at)


@dataclass(frozen=True)
class HintOffer:
    """The next hint: ``hint`` when one is available now, else how long until the next one is."""

    index: int | None
    hint: HintInfo | None
    available_in: timedelta | None = None
    remaining: int = 0


def next_hint(state: DrillState, now: datetime) -> HintOffer:
    hints = state.started.hints
    unused = [i for i in range(len(hints)) if i not in state.hints_used]
    if not unused:
        return HintOffer(None, None, remaining=0)
    if state.t0 is None:
        return HintOffer(None, None, remaining=len(unused))
    elapsed = (now - state.t0).total_seconds()
    ready = [i for i in unused if hints[i].after_seconds <= elapsed]
    if ready:
        i = min(ready, key=lambda j: (hints[j].after_seconds, j))
        return HintOffer(i, hints[i], remaining=len(unused) - 1)
    soonest = min(hints[i].after_seconds for i in unused)
    return HintOffer(None, None, available_in=timedelta(seconds=soonest - elapsed), remaining=len(unused))


@dataclass(frozen=True)
class CommsResult:
    event: CommsPosted
    problems: list[comms.CommsProblem]


# ---- the actions ----------------------------------------------------------------------------------------


def default_actor() -> str:
    """Who is typing: ``$DRILLS_RESPONDER``, else the login name."""
    for var in ("DRILLS_RESPONDER", "USER", "LOGNAME"):
        value = os.environ.get(var)
        if value:
            return value
    return "responder"


class ResponderSession:
    """One person's (or the bot's) actions on one drill. Every method appends one event and returns it."""

    def __init__(
        self,
        ref: DrillRef,
        *,
        actor: str | None = None,
        source: Source = Source.HUMAN,
        clock: Clock = SYSTEM_CLOCK,
        journal: Journal | None = None,
    ) -> None:
        self.ref = ref
        self.actor = actor or default_actor()
        self.source = source
        self.clock = clock
        self.journal = journal or Journal(ref.journal_path, clock)

    @classmethod
    def open(
        cls,
        drill_id: str | None = None,
        *,
        actor: str | None = None,
        source: Source = Source.HUMAN,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ResponderSession:
        return cls(find_drill(drill_id), actor=actor, source=source, clock=clock)

    # reading

    def events(self) -> list[Event]:
        return read_journal(self.ref.journal_path).events

    def state(self) -> DrillState:
        return DrillState.of(self.events(), self.ref.drill_id)

    def _live_state(self, what: str) -> DrillState:
        state = self.state()
        if state.ended is not None:
            raise UsageError(
                f"drill {self.ref.drill_id} already ended ({state.ended.outcome.value}): "
                f"`{what}` was not recorded",
                hint="start a new drill with `drill run`, or read this one's report",
            )
        return state

    def _append(self, event: Event) -> Event:
        return self.journal.append(event)

    def _base(self) -> dict[str, Any]:
        return {"at": self.clock.now(), "source": self.source, "actor": self.actor}

    # responder commands

    def ack(self, via: str = "cli") -> Event:
        self._live_state("drill ack")
        return self._append(Acknowledged(**self._base(), via=via))

    def declare(self, severity: Severity | str) -> Event:
        self._live_state("drill declare")
        return self._append(SeverityDeclared(**self._base(), severity=_severity(severity)))

    def role(self, role: Role | str, person: str) -> Event:
        self._live_state("drill role")
        try:
            r = Role(str(role).lower())
        except ValueError:
            raise UsageError(
                f"unknown role {role!r}", hint=f"use one of: {', '.join(x.value for x in Role)}"
            ) from None
        person = person.strip().lstrip("@")
        if not person:
            raise UsageError("a role needs a person", hint="e.g. `drill role ic alice`")
        return self._append(RoleAssigned(**self._base(), role=r, person=person))

    def prefilled(self, template: str) -> str:
        """The template with what the drill knows filled in (``drill comms TEMPLATE`` without --file)."""
        state = self.state()
        return comms.render(template, comms.drill_context(state.events, self.clock.now()))

    def post_comms(self, template: str, text: str, *, channel: str = "journal") -> CommsResult:
        state = self._live_state("drill comms")
        t = comms.get_template(template)
        problems = comms.check(t, text, expected_incident_id=state.incident_id)
        event = CommsPosted(
            **self._base(),
            template=t.id,
            text=text[:20000],
            missing_fields=[p.field for p in problems],
            channel=channel,
        )
        written = self._append(event)
        assert isinstance(written, CommsPosted)
        return CommsResult(written, problems)

    def escalate(self, whom: str, *, channel: str = "journal") -> Event:
        self._live_state("drill escalate")
        if not whom.strip():
            raise UsageError("escalate to whom?", hint="e.g. `drill escalate engineering-leadership`")
        return self._append(EscalationNotified(**self._base(), whom=whom.strip(), channel=channel))

    def ticket(self, ref: str = "") -> Event:
        self._live_state("drill ticket")
        return self._append(TicketCreated(**self._base(), ref=ref))

    def hint(self) -> tuple[HintOffer, Event | None]:
        """Take the next available hint (its cost is recorded); ``(offer, None)`` if none is available yet."""
        state = self._live_state("drill hint")
        offer = next_hint(state, self.clock.now())
        if offer.hint is None or offer.index is None:
            return offer, None
        event = self._append(
            HintUsed(**self._base(), index=offer.index, cost=offer.hint.cost, text=offer.hint.text)
        )
        return offer, event

    def mitigated(self, summary: str = "") -> Event:
        self._live_state("drill mitigated")
        return self._append(Mitigated(**self._base(), summary=summary))

    def resolve(self, root_cause: str = "") -> Event:
        state = self._live_state("drill resolve")
        return self._append(Resolved(**self._base(), root_cause=root_cause, healthy_at_resolve=state.healthy))

    def note(self, text: str) -> Event:
        self._live_state("drill note")
        if not text.strip():
            raise UsageError("an empty note says nothing", hint='e.g. `drill note "rolled back to v2.0.0"`')
        return self._append(Note(**self._base(), text=text))

    def detect(self, how: str = "") -> Event:
        self._live_state("drill detect")
        return self._append(Detected(**self._base(), how=how))

    # game master

    def pause(self, reason: str = "") -> Event:
        state = self._live_state("drill pause")
        if state.paused:
            raise UsageError(
                f"drill {self.ref.drill_id} is already paused", hint="`drill resume` to continue"
            )
        return self._append(Paused(**self._base(), reason=reason))

    def resume(self) -> Event:
        state = self._live_state("drill resume")
        if not state.paused:
            raise UsageError(f"drill {self.ref.drill_id} is not paused")
        return self._append(Resumed(**self._base()))

    def abort(self, reason: str = "") -> Event:
        """Ask the runner to end the drill and revert its faults (it polls the marker file)."""
        self._live_state("drill abort")
        why = reason or "aborted by the game master"
        request = {"by": self.actor, "reason": why, "at": self.clock.now().isoformat()}
        tmp = self.ref.directory / f".{ABORT_MARKER}.tmp"
        tmp.write_text(json.dumps(request) + "\n", encoding="utf-8")
        tmp.replace(self.ref.abort_marker)
        return self._append(Note(**self._base(), text=f"abort requested: {why}"))


def abort_requested(ref_dir: Path) -> dict[str, Any] | None:
    """The abort request in a drill's directory, if any."""
    try:
        data = json.loads((ref_dir / ABORT_MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"by": "unknown", "reason": "aborted (unreadable request)"}
    return data if isinstance(data, dict) else {"by": "unknown", "reason": "aborted"}


def _severity(value: Severity | str) -> Severity:
    if isinstance(value, Severity):
        return value
    try:
        return Severity(value.strip().upper())
    except ValueError:
        raise UsageError(f"{value!r} is not a severity", hint="declare P0, P1, P2 or P3") from None


def env_line(ref: DrillRef, who: str = "responder") -> str:
    """``export KUBECONFIG=...`` for the responder's (or the bot's) own identity in this drill."""
    identities = ref.meta.get("kubeconfigs") or {}
    path = identities.get(who) if isinstance(identities, dict) else None
    if not path:
        raise UsageError(
            f"drill {ref.drill_id} has no {who} identity",
            hint="identities exist on clusters drills can sign certificates for (the embedded backend); "
            "on a context cluster use your own kubeconfig",
        )
    return f"export KUBECONFIG={path}"


def prometheus_lines(ref: DrillRef) -> list[str]:
    """``export PROMETHEUS_URL=...`` for the drill's cluster while its monitoring stack's Prometheus is up,
    with the seed's health check (``curl .../api/v1/query?query=up``) written against it; else nothing."""
    cluster = ref.meta.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        return []
    try:
        stack = monitoring.load_stack(cluster)
    except DrillError:
        return []
    if stack is None or not any(
        h.component == "prometheus" and h.ready for h in monitoring.stack_health(stack)
    ):
        return []
    return [
        f"export PROMETHEUS_URL={stack.prometheus_url}",
        "# the seed's health check, against this drill's Prometheus: "
        'curl "$PROMETHEUS_URL/api/v1/query?query=up"',
    ]


__all__ = [
    "ABORT_MARKER",
    "META_FILE",
    "CommsResult",
    "DrillRef",
    "DrillState",
    "HintOffer",
    "ResponderSession",
    "abort_requested",
    "active_drill_id",
    "clear_active",
    "default_actor",
    "env_line",
    "find_drill",
    "next_hint",
    "prometheus_lines",
    "set_active",
    "write_meta",
]
