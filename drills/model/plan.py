"""Disaster-recovery plans: several scenarios, several teams, each runbook step timed against its objective.

The seed's quarterly DR drill is a "full disaster recovery simulation" in which "all teams participate", with
"timed execution" and "runbook validation". A plan file (YAML under ``scenarios/plans/``,
``extra="forbid"``, loaded with line-numbered errors by ``drills.adapters.files.plans``) says which scenarios
run, in sequence or in parallel, which team owns each and who responds (a person or a scripted bot), and the
runbook the team follows: steps, each with an owner, the command the runbook prescribes and the check that
shows it is done, plus recovery objectives (RTO: time from the failure to the step done; RPO: how old the
restored data may be).

Ordering vocabulary (see docs/programs.md, "DR plans"):

- no ``after``/``with``/``start``: runs after the previous entry ends (a plan reads top to bottom);
- ``after: [a, b]``: starts when a and b have ended (``start`` then adds a delay);
- ``with: a``: starts together with a (a parallel group);
- ``start: 10m`` alone: starts 10 minutes after the plan starts, whatever else runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drills.model.durations import Duration
from drills.model.scenario import Probe

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

#: kubectl verbs that only read; a runbook step whose command only reads may use the command as its check.
READ_ONLY_KUBECTL = re.compile(
    r"^\s*kubectl\s+(get|describe|logs|top|auth\s+can-i|rollout\s+(history|status)|events|wait|version)\b"
)


_BARE_COMPARISON = re.compile(r"(==|!=|<=|>=|[<>])\s*[A-Za-z_]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProbeCheck(_Strict):
    """Done when this steady-state probe holds (the same probes as a scenario's ``steady_state``)."""

    probe: Probe


class KubectlCheck(_Strict):
    """Done when this kubectl command exits 0 (and its output contains ``expect``, when given)."""

    kubectl: str = Field(min_length=1, description="Arguments after `kubectl`, e.g. 'get ns production'.")
    expect: str | None = Field(default=None, description="Text the command's output must contain.")

    @field_validator("kubectl")
    @classmethod
    def _no_prefix(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("kubectl "):
            v = v[len("kubectl ") :]
        if not READ_ONLY_KUBECTL.match(f"kubectl {v}"):
            raise ValueError(
                "a check only reads (get, describe, logs, top, rollout status/history, wait, auth can-i): "
                "the responder changes the cluster, the check confirms it"
            )
        try:
            words = shlex.split(v)
        except ValueError as e:
            raise ValueError(f"cannot split it as a shell would: {e}") from None
        # The check runs as a shell would split it, so unquoted quotes vanish and a jsonpath filter written
        # `[?(@.name=="X")]` without surrounding quotes compares with a bare word: it never matches.
        for word in words:
            if "jsonpath" in word and _BARE_COMPARISON.search(word):
                raise ValueError(
                    f"the jsonpath filter in {word!r} compares with a bare word once the shell has removed its "
                    "quotes; quote the whole argument: -o 'jsonpath={...[?(@.name==\"X\")]...}'"
                )
        return v


StepCheck = Annotated[ProbeCheck | KubectlCheck, Field(union_mode="left_to_right")]


class RunbookStep(_Strict):
    name: str = Field(
        min_length=3, description="What the step achieves, e.g. 'Restore namespace from backup'."
    )
    owner: str = Field(min_length=1, description="Who does it: a person or a role in the owning team.")
    command: str | None = Field(
        default=None, description="What the runbook says to run (shown to responders)."
    )
    check: StepCheck | None = Field(default=None, description="How drills knows the step is done.")
    rto: Duration | None = Field(default=None, description="Done within this long after the failure.")
    rpo: Duration | None = Field(default=None, description="Data restored may be at most this old.")
    backup: str | None = Field(
        default=None, description="Backup the step restores from (file or directory); its age is the RPO."
    )
    timeout: Duration | None = Field(
        default=None, description="Stop waiting after this (default: the RTO x 2)."
    )

    @model_validator(mode="after")
    def _checkable(self) -> RunbookStep:
        if self.check is None:
            if self.command is None:
                raise ValueError("give the step a command, a check, or both")
            if not READ_ONLY_KUBECTL.match(self.command):
                raise ValueError(
                    "this step's command changes the cluster, so it needs a `check` that shows it is done "
                    "(a probe or a read-only kubectl command)"
                )
        if self.rpo is not None and self.backup is None:
            raise ValueError("an RPO is measured from a backup's age: give `backup` (the file or directory)")
        return self

    @property
    def effective_check(self) -> ProbeCheck | KubectlCheck:
        if self.check is not None:
            return self.check
        assert self.command is not None
        return KubectlCheck(kubectl=self.command)


class Team(_Strict):
    id: str = Field(pattern=_NAME)
    name: str = Field(min_length=1)
    lead: str | None = None
    members: list[str] = Field(default_factory=list)


class PlanEntry(_Strict):
    id: str = Field(pattern=_NAME, max_length=40)
    scenario: str = Field(min_length=1, description="A scenario id, or a path relative to the plan file.")
    team: str = Field(description="The owning team's id.")
    responder: str = Field(default="bot", description="human, bot, or bot:FILE (a responder profile).")
    trainee: str | None = Field(default=None, description="The person responding (human responders).")
    after: list[str] = Field(default_factory=list, description="Start when these entries have ended.")
    with_: str | None = Field(default=None, alias="with", description="Start together with this entry.")
    start: Duration | None = Field(
        default=None, description="Delay: after the plan start, or after `after` entries end."
    )
    rto: Duration | None = Field(default=None, description="Objective: failure to last runbook step done.")
    rpo: Duration | None = Field(default=None, description="Objective: age of the data restored.")
    runbook: list[RunbookStep] = Field(default_factory=list)

    @field_validator("after", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("responder")
    @classmethod
    def _responder(cls, v: str) -> str:
        if v not in ("human", "bot") and not (v.startswith("bot:") and len(v) > 4):
            raise ValueError("responder is human, bot, or bot:FILE (a responder profile)")
        return v

    @model_validator(mode="after")
    def _order(self) -> PlanEntry:
        if self.with_ is not None and (self.after or self.start is not None):
            raise ValueError("`with` starts this entry together with another: leave out `after` and `start`")
        if self.responder == "human" and not self.trainee:
            raise ValueError("a human responder needs `trainee`: the person responding, for their history")
        return self


@dataclass(frozen=True)
class Dependency:
    entry: str
    on: Literal["start", "end"]


class DrPlan(_Strict):
    """A DR plan. See docs/programs.md."""

    id: str = Field(pattern=_NAME, max_length=63)
    title: str = Field(min_length=3)
    description: str = ""
    objectives: list[str] = Field(min_length=1, description="What the exercise must show, in words.")
    teams: list[Team] = Field(min_length=1)
    entries: list[PlanEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> DrPlan:
        team_ids = [t.id for t in self.teams]
        if len(set(team_ids)) != len(team_ids):
            raise ValueError(f"team ids must be unique: {', '.join(sorted(team_ids))}")
        ids = [e.id for e in self.entries]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"entry ids must be unique: {', '.join(dupes)} used more than once")
        for e in self.entries:
            if e.team not in team_ids:
                known = ", ".join(team_ids)
                raise ValueError(f"entry {e.id!r}: team {e.team!r} is not one of the plan's teams ({known})")
            for ref in [*e.after, *([e.with_] if e.with_ else [])]:
                if ref not in ids:
                    raise ValueError(f"entry {e.id!r} refers to {ref!r}, which is not an entry of this plan")
                if ref == e.id:
                    raise ValueError(f"entry {e.id!r} cannot wait for itself")
        cycle = self._cycle()
        if cycle:
            raise ValueError(f"entries wait for each other in a circle: {' -> '.join(cycle)}")
        return self

    def dependencies(self) -> dict[str, tuple[Dependency, ...]]:
        """What each entry waits for before its own ``start`` delay."""
        out: dict[str, tuple[Dependency, ...]] = {}
        previous: str | None = None
        for e in self.entries:
            if e.with_ is not None:
                deps: tuple[Dependency, ...] = (Dependency(e.with_, "start"),)
            elif e.after:
                deps = tuple(Dependency(a, "end") for a in e.after)
            elif e.start is not None or previous is None:
                deps = ()
            else:
                deps = (Dependency(previous, "end"),)
            out[e.id] = deps
            previous = e.id
        return out

    def _cycle(self) -> list[str] | None:
        deps = self.dependencies()
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            path.append(node)
            for d in deps.get(node, ()):
                if state.get(d.entry) == 1:
                    return [*path[path.index(d.entry) :], d.entry]
                if d.entry not in state:
                    found = visit(d.entry)
                    if found:
                        return found
            path.pop()
            state[node] = 2
            return None

        for e in self.entries:
            if e.id not in state:
                found = visit(e.id)
                if found:
                    return found
        return None

    def ends_before(self, a: str, b: str) -> bool:
        """True when ``b`` cannot start before ``a`` has ended (a chain of dependencies ending on a's end)."""
        deps = self.dependencies()
        memo: dict[str, bool] = {}

        def after_a_ends(node: str) -> bool:
            if node not in memo:
                memo[node] = False  # the plan has no cycles; this only guards the recursion
                memo[node] = any(
                    (d.on == "end" and d.entry == a) or after_a_ends(d.entry) for d in deps.get(node, ())
                )
            return memo[node]

        return after_a_ends(b)

    def may_overlap(self, a: str, b: str) -> bool:
        return a != b and not self.ends_before(a, b) and not self.ends_before(b, a)

    def entry(self, entry_id: str) -> PlanEntry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(entry_id)

    def team(self, team_id: str) -> Team:
        for t in self.teams:
            if t.id == team_id:
                return t
        raise KeyError(team_id)


__all__ = [
    "READ_ONLY_KUBECTL",
    "Dependency",
    "DrPlan",
    "KubectlCheck",
    "PlanEntry",
    "ProbeCheck",
    "RunbookStep",
    "StepCheck",
    "Team",
]
