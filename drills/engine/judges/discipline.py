"""Runbook discipline: the seed's do's and don'ts (lines 502-518) read from what the observer saw.

- Preserve evidence before making changes (a read before the first destructive change).
- Make no change without documenting it: a note, message or runbook step within 5 minutes. A destructive
  change (a delete, a drain) needs more than a status post: a note (or runbook step, or the responder's own
  ``mitigated`` summary) that names the object, or for a pod its workload.
- Never delete logs or evidence.
- Change only what the fault touched: deleting, evicting or scaling a healthy workload that was not part of
  the fault ("deploy untested fixes", "make changes without documenting") is a finding of its own.

What was part of the fault: the ``fault.injected`` targets (``Deployment/production/app``, ``Node/a,b``,
``Namespace/x``), any object the fault's recorded changes name (``detail.objects``, and names in
``detail.changes``), and the scenario's own service; a pod or replica set belongs to a workload whose name
prefixes its own (``app-7d9f-x2`` to ``app``).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta

from drills.engine.judges._base import FAIL, PASS, Drill, Judged, fmt, judge
from drills.engine.rules import Rule
from drills.engine.timeline import DESTRUCTIVE_KINDS, PEOPLE_SOURCES
from drills.model.events import (
    ActionKind,
    ActionObserved,
    ActorKind,
    CommsPosted,
    FaultInjected,
    Mitigated,
    Note,
    Resolved,
    RunbookStep,
)

#: "Document everything in real-time" (seed line 504): a change counts as documented when a note or
#: message by the responders comes within this long before or after it.
DOCUMENTATION_WINDOW = timedelta(minutes=5)
#: Changes to a workload outside the fault that the scope rule judges, besides destructive ones.
SCOPE_KINDS = frozenset({ActionKind.SCALE, ActionKind.IMAGE_CHANGED})
_POD_LIKE = frozenset({"pod", "replicaset"})


def destructive(a: ActionObserved) -> bool:
    return a.destructive or a.kind in DESTRUCTIVE_KINDS


def _parts(ref: str) -> tuple[str, str | None, str]:
    """``kind/ns/name`` or ``kind/name`` -> (kind lowercased, namespace, name)."""
    bits = ref.split("/")
    if len(bits) >= 3:
        return bits[0].lower(), bits[1], "/".join(bits[2:])
    if len(bits) == 2:
        return bits[0].lower(), None, bits[1]
    return "", None, ref


def names_of(ref: str) -> list[str]:
    """Names that identify the object in prose: its own, and for a pod or replica set its workload's."""
    kind, _, name = _parts(ref)
    out = [name]
    if kind in _POD_LIKE:
        bits = name.split("-")
        out += ["-".join(bits[:i]) for i in range(len(bits) - 1, 0, -1)]
    return [n for n in out if len(n) >= 2]


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", text.lower()) is not None


def _names_object(text: str, ref: str) -> bool:
    return ref.lower() in text.lower() or any(_mentions(text, n) for n in names_of(ref))


@judge("discipline.evidence")
def evidence(d: Drill, r: Rule) -> Judged:
    changes = [a for a in d.changes if destructive(a)]
    if not changes:
        return d.na(r, "no destructive change was made, so there was no evidence to lose")
    first = changes[0]
    reads = [
        a
        for a in d.tl.actions
        if a.kind == ActionKind.EVIDENCE_READ
        and a.actor_kind in (ActorKind.RESPONDER, ActorKind.BOT)
        and a.at <= first.at
        and (d.tl.t0 is None or a.at >= d.tl.t0)
    ]
    what = f"{first.kind.value} {first.object}"
    if reads:
        return d.check(
            r, PASS, f"evidence read ({reads[0].object}) before the first destructive change ({what})"
        )
    return d.check(
        r,
        FAIL,
        f"first destructive change ({what}) came before any evidence was read",
        finding=(
            f"A destructive change ({what}) came before any logs, events or descriptions were captured; the "
            "runbook could list the evidence to save first."
        ),
    )


@judge("discipline.no_deleted_logs")
def no_deleted_logs(d: Drill, r: Rule) -> Judged:
    deleted = [
        a
        for a in d.tl.actions
        if a.kind == ActionKind.LOGS_DELETED and a.actor_kind not in (ActorKind.DRILLS, ActorKind.CONTROLLER)
    ]
    if not deleted and not d.changes:
        return d.na(r, "no change was made")
    if not deleted:
        return d.check(r, PASS, "no logs or evidence were deleted")
    objects = ", ".join(sorted({a.object for a in deleted}))
    return d.check(
        r,
        FAIL,
        f"logs or evidence deleted: {objects}",
        finding=(
            f"Logs or evidence were deleted ({objects}); the tooling could make evidence read-only during an "
            "incident."
        ),
    )


class Records:
    """Everything the responders wrote, sorted by time: any record (a note, message, mitigation claim,
    resolution or runbook step), and the ones with prose that can name an object (notes, runbook steps,
    mitigation summaries). Status posts count as a record of a change but never of a destructive one."""

    def __init__(self, d: Drill) -> None:
        written: list[datetime] = []
        notes: list[tuple[datetime, str]] = []
        for e in d.tl.events:
            if e.source not in PEOPLE_SOURCES:
                continue
            if isinstance(e, Note):
                notes.append((e.at, e.text))
            elif isinstance(e, RunbookStep):
                notes.append((e.at, f"{e.step} {e.detail}"))
            elif isinstance(e, Mitigated):
                notes.append((e.at, e.summary))  # the responder's own record of what they ran
            if isinstance(e, Note | CommsPosted | Mitigated | Resolved | RunbookStep):
                written.append(e.at)
        self.written = sorted(written)
        self.notes = sorted(notes)
        self.note_times = [t for t, _ in self.notes]

    def documented(self, a: ActionObserved) -> bool:
        lo, hi = a.at - DOCUMENTATION_WINDOW, a.at + DOCUMENTATION_WINDOW
        if destructive(a):
            first, last = bisect_left(self.note_times, lo), bisect_right(self.note_times, hi)
            return any(_names_object(text, a.object) for _, text in self.notes[first:last])
        i = bisect_left(self.written, lo)
        return i < len(self.written) and self.written[i] <= hi


def records_of(d: Drill) -> Records:
    """The drill's :class:`Records`, built once however many judges ask."""
    kept = d.memo.get(Records)
    if not isinstance(kept, Records):
        kept = d.memo[Records] = Records(d)
    return kept


@judge("discipline.changes_documented")
def changes_documented(d: Drill, r: Rule) -> Judged:
    if not d.changes:
        return d.na(r, "no change was made")
    window = DOCUMENTATION_WINDOW
    records = records_of(d)
    undocumented: list[ActionObserved] = []
    judged = 0
    for a in d.changes:
        if records.documented(a):
            judged += 1
        elif d.ended or (d.end is not None and d.end - a.at >= window):
            judged += 1
            undocumented.append(a)
    if judged == 0:
        return d.pending(r, f"every change is younger than {fmt(window)}, so it can still be written down")
    if not undocumented:
        return d.check(r, PASS, f"all {judged} change(s) were written down within {fmt(window)}")
    listed = ", ".join(f"{a.kind.value} {a.object}" for a in undocumented[:5])
    more = f" and {len(undocumented) - 5} more" if len(undocumented) > 5 else ""
    deletes = any(destructive(a) for a in undocumented)
    how = (
        "; a destructive change needs a note that names the object, a status post is not enough"
        if deletes
        else ""
    )
    return d.check(
        r,
        FAIL,
        f"{len(undocumented)} of {judged} change(s) were not written down within {fmt(window)}: {listed}{more}{how}",
        finding=(
            f"{len(undocumented)} change(s) to the system were not written down within {fmt(window)} "
            f"({listed}{more}); a one-line `drill note` naming what was changed, or notes taken by a scribe, "
            "may help."
        ),
    )


class FaultScope:
    """What the fault touched, from the journal's ``fault.injected`` events and the scenario's service."""

    def __init__(self, d: Drill) -> None:
        self.names: set[str] = set()
        self.namespaces: set[str] = set()
        self.nodes = False
        self.summaries: list[str] = []
        self.known = True
        faults = [e for e in d.tl.events if isinstance(e, FaultInjected)]
        self.any = bool(faults)
        for f in faults:
            kind, _ns, name = _parts(f.target)
            if kind == "chaostoolkit":
                self.known = False  # an experiment's objects are not recorded
            elif kind == "namespace":
                self.namespaces.add(name)
            elif kind == "node":
                self.nodes = True
                self.names.update(n for n in name.split(",") if n and not n.startswith("("))
            elif kind == "pod" and "=" in name:
                self.names.add(name.split("=", 1)[1])  # a label selector, app=shop
            else:
                self.names.add(name)
            for obj in f.detail.get("objects") or []:
                if isinstance(obj, str):
                    self.names.add(_parts(obj)[2])
            self.summaries += [str(c) for c in f.detail.get("changes") or []]
        self.names.add(d.started.service)

    def touches(self, ref: str) -> bool:
        kind, ns, name = _parts(ref)
        if ns is not None and ns in self.namespaces:
            return True
        if kind == "namespace" and name in self.namespaces:
            return True
        if self.nodes and kind in {"pod", "node"}:
            return True  # a node fault moves pods around: evicting or deleting them is part of it
        if any(n in self.names for n in names_of(ref)):
            return True
        return any(_mentions(s, name) for s in self.summaries)


@judge("discipline.fault_scope")
def fault_scope(d: Drill, r: Rule) -> Judged:
    scope = FaultScope(d)
    if not scope.any:
        return d.na(r, "no fault.injected in the journal, so what the fault touched is unknown")
    if not scope.known:
        return d.na(r, "the fault is a Chaos Toolkit experiment, whose targets the journal does not record")
    judged = [a for a in d.changes if destructive(a) or a.kind in SCOPE_KINDS]
    if not judged:
        return d.na(r, "no destructive change or scaling was made")
    outside = [a for a in judged if not scope.touches(a.object)]
    records = records_of(d)
    if not outside:
        return d.check(
            r, PASS, f"all {len(judged)} destructive or scaling change(s) were to what the fault touched"
        )
    listed = ", ".join(
        f"{a.kind.value} {a.object}{'' if records.documented(a) else ' (undocumented)'}" for a in outside[:5]
    )
    more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
    return d.check(
        r,
        FAIL,
        f"{len(outside)} change(s) to workloads that were not part of the fault: {listed}{more}",
        finding=(
            f"Healthy parts of the system that were not part of the fault were changed ({listed}{more}); the "
            "runbook could say which objects a responder may touch for this failure, and ask for a note "
            "before anything else is deleted or scaled."
        ),
    )
