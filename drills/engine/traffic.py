"""Observer traffic: the bulk of a long drill's journal, folded into counted groups as it streams by.

A long drill with a chatty observer writes hundreds of thousands of ``action.observed`` lines for what
Kubernetes and drills itself did (every pod a ReplicaSet creates, every object drills restores). No rule
judges them: the checks look at what people and the bot did (``Drill.changes``, evidence reads), at
deleted logs by anyone but drills or a controller, and at the other event types. What the scorecard and
the reports need of them is how many there were, when, and one of each kind: a :class:`Traffic` of
:class:`ActionGroup`\\ s. Scoring a journal split by :func:`split_traffic` gives the same scorecard as
scoring every event; only the memory differs (a 200k-line journal holds a few thousand events, not all).

The scorecard's ``actions`` are built here too (:func:`action_entries`): every distinct action of a
person, the bot or an unattributed writer, each identical repeat counted on its first, the traffic as one
entry per group, and at most :data:`MAX_ACTIONS` entries with an honest count of those left out.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drills.engine.timeline import DESTRUCTIVE_KINDS, PEOPLE_SOURCES
from drills.model.events import ActionKind, ActionObserved, ActorKind, Event

#: The scorecard lists at most this many action entries; the rest are counted (``actions_omitted``).
MAX_ACTIONS = 200

_SYSTEM_ACTORS = frozenset({ActorKind.CONTROLLER, ActorKind.DRILLS})


def is_traffic(e: Event) -> bool:
    """An action no check judges: by a controller or drills, not typed by a person, not deleting logs."""
    return (
        isinstance(e, ActionObserved)
        and e.actor_kind in _SYSTEM_ACTORS
        and e.source not in PEOPLE_SOURCES
        and e.kind != ActionKind.LOGS_DELETED
    )


def _scope(obj: str) -> str:
    """``pod/drills-shop/shop-1a2b3`` -> ``pod/drills-shop/*``: what the controllers' objects have in common."""
    head, sep, _ = obj.rpartition("/")
    return f"{head}/*" if sep else obj


@dataclass
class ActionGroup:
    """Actions told apart by nothing a report shows but their object and time: one entry, counted."""

    first: ActionObserved  # the earliest (by time, then id): what the entry shows
    last_at: datetime
    count: int = 1
    same_object: bool = True
    same_detail: bool = True

    def add(self, a: ActionObserved) -> None:
        self.count += 1
        first = self.first
        if a.object != first.object:
            self.same_object = False
        if a.detail != first.detail:
            self.same_detail = False
        at = a.at
        if at > self.last_at:
            self.last_at = at
        elif at <= first.at and (at, a.id) < (first.at, first.id):  # rare: the file is mostly in time order
            self.first = a

    def merge(self, other: ActionGroup) -> None:
        self.count += other.count
        first = self.first
        if not other.same_object or other.first.object != first.object:
            self.same_object = False
        if not other.same_detail or other.first.detail != first.detail:
            self.same_detail = False
        if (other.first.at, other.first.id) < (first.at, first.id):
            self.first = other.first
        self.last_at = max(self.last_at, other.last_at)

    @property
    def object(self) -> str:
        return self.first.object if self.same_object else _scope(self.first.object)

    @property
    def detail(self) -> str:
        return self.first.detail if self.same_detail else ""

    @property
    def destructive(self) -> bool:
        a = self.first
        return a.destructive or a.kind in DESTRUCTIVE_KINDS


def _traffic_key(a: ActionObserved) -> tuple[object, ...]:
    obj = a.object
    return (a.kind, a.actor, a.actor_kind, a.source, a.destructive, obj[: obj.rfind("/") + 1])


def _exact_key(a: ActionObserved) -> tuple[object, ...]:
    return (a.kind, a.actor, a.actor_kind, a.source, a.destructive, a.object, a.detail)


@dataclass
class Traffic:
    """The observer traffic of a journal, folded: groups by what did what to which kind of object."""

    groups: dict[tuple[object, ...], ActionGroup] = field(default_factory=dict)
    count: int = 0
    #: The latest instant among them: the journal's horizon counts them (a live drill's last event).
    last_at: datetime | None = None

    def add(self, a: ActionObserved) -> None:
        self.count += 1
        last = self.last_at
        if last is None or a.at > last:
            self.last_at = a.at
        key = _traffic_key(a)
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = ActionGroup(a, a.at)
        else:
            group.add(a)


def split_traffic(events: Iterable[Event]) -> tuple[list[Event], Traffic]:
    """Every event but the observer traffic, and the traffic folded (one pass; ``events`` may stream)."""
    kept: list[Event] = []
    traffic = Traffic()
    add, keep = traffic.add, kept.append
    system, people, logs_deleted = _SYSTEM_ACTORS, PEOPLE_SOURCES, ActionKind.LOGS_DELETED
    for e in events:
        # is_traffic, inlined: this loop sees every line of a big journal.
        if (
            isinstance(e, ActionObserved)
            and e.actor_kind in system
            and e.source not in people
            and e.kind != logs_deleted
        ):
            add(e)
        else:
            keep(e)
    return kept, traffic


def action_groups(
    actions: Iterable[ActionObserved], traffic: Traffic | None = None, apart: Container[str] = ()
) -> list[ActionGroup]:
    """The actions (and ``traffic``) as groups in time order: identical actions of people, the bot or an
    unattributed writer are one group, each distinct one its own; the traffic groups as :class:`Traffic`.

    The same actions give the same groups whether the traffic was split off first or not. An action whose
    id is in ``apart`` (one that raised the users' impact) is a group of its own.
    """
    folded = Traffic()
    exact: dict[tuple[object, ...], ActionGroup] = {}
    for a in actions:
        if is_traffic(a):
            folded.add(a)
            continue
        key = ("apart", a.id) if a.id in apart else _exact_key(a)
        group = exact.get(key)
        if group is None:
            exact[key] = ActionGroup(a, a.at)
        else:
            group.add(a)
    if traffic is not None:
        for key, group in traffic.groups.items():
            mine = folded.groups.get(key)
            if mine is None:
                folded.groups[key] = ActionGroup(
                    group.first, group.last_at, group.count, group.same_object, group.same_detail
                )
            else:
                mine.merge(group)
    groups = [*exact.values(), *folded.groups.values()]
    groups.sort(key=lambda g: (g.first.at, g.first.id))
    return groups


def action_entries(
    actions: Iterable[ActionObserved],
    traffic: Traffic | None = None,
    raised: Mapping[str, str] | None = None,
    limit: int = MAX_ACTIONS,
) -> tuple[list[dict[str, Any]], int]:
    """The scorecard's ``actions`` and how many actions they leave out.

    One entry per group (:func:`action_groups`), as an action was always written (``at``, ``kind``,
    ``actor``, ``actor_kind``, ``object``, ``detail``, ``destructive``), plus ``count`` and ``last_at`` when
    it stands for more than one; a group of different objects names their common part (``pod/ns/*``).
    ``raised``: action id -> how it raised the users' impact (``raised_impact``; such an action is never
    counted with others).
    Past ``limit`` entries, the actions of people and the bot are kept before the traffic, and the
    actions of the groups left out are counted.
    """
    raised = raised or {}
    groups = action_groups(actions, traffic, raised)
    omitted = 0
    if len(groups) > limit:
        ranked = sorted(range(len(groups)), key=lambda i: (is_traffic(groups[i].first), i))
        chosen = set(ranked[:limit])
        omitted = sum(g.count for i, g in enumerate(groups) if i not in chosen)
        groups = [g for i, g in enumerate(groups) if i in chosen]
    out = []
    for g in groups:
        a = g.first
        entry: dict[str, Any] = {
            "at": a.at.isoformat(),
            "kind": a.kind.value,
            "actor": a.actor,
            "actor_kind": a.actor_kind.value,
            "object": g.object,
            "detail": g.detail,
            "destructive": g.destructive,
        }
        if g.count > 1:
            entry["count"] = g.count
            entry["last_at"] = g.last_at.isoformat()
        if a.id in raised:
            entry["raised_impact"] = raised[a.id]
        out.append(entry)
    return out, omitted


__all__ = [
    "MAX_ACTIONS",
    "ActionGroup",
    "Traffic",
    "action_entries",
    "action_groups",
    "is_traffic",
    "split_traffic",
]
