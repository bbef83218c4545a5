"""The on-call training ladder: observer -> scribe -> responder -> incident commander.

New on-call engineers learn by watching, then by keeping the record, then by responding, then by leading.
Each step up has written entry criteria (drills completed, scores, roles held, SLA checks passed), so a
promotion is a fact anyone can check against the history rather than a feeling; ``next_step`` says which
criteria are still missing. The criteria and their defaults are documented in docs/programs.md; the
numbers live in :class:`LadderRules` so a team can tune them.

Also here, because they serve training: the debrief sentence naming the *one* check to work on next, in
blameless words (about the process and the tools, never about the person), and ``training_hints``, the
seed's runbook steps offered as hints, each with its cost.

Pure: works on :class:`TraineeHistory` records (built by ``drills.adapters.store.history``) and scorecards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from drills.engine.rules import CORE
from drills.model.durations import format_duration
from drills.model.events import Outcome
from drills.model.scenario import Hint, Scenario
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Scorecard
from drills.model.severity import Severity

# ---- history records --------------------------------------------------------------------------------------


class DrillStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    CRASHED = "crashed"


class HeldRole(StrEnum):
    """What a person did in one drill. ``ic``/``tech``/``comms``/``sme`` are the seed's incident roles."""

    OBSERVER = "observer"  # followed it read-only (`drill observe --as NAME`)
    SCRIBE = "scribe"  # kept the record: wrote notes or comms into the journal
    RESPONDER = "responder"  # the drill's trainee: the person paged
    IC = "ic"
    TECH = "tech"
    COMMS = "comms"
    SME = "sme"


#: Check ids of the core SLA clocks, when the drill's severity is unknown: the "SLA checks" the ladder counts.
CORE_SLA_PREFIXES = ("mtta.", "mttm.", "mttr.")


@dataclass(frozen=True)
class DrillRecord:
    """One drill as one person's history sees it."""

    drill_id: str
    scenario: str
    started: datetime
    status: DrillStatus = DrillStatus.FINISHED
    mode: str = "training"
    trainee: str | None = None
    ended: datetime | None = None
    outcome: str | None = None
    score: float | None = None
    grade: str | None = None
    passed: bool | None = None
    true_severity: Severity | None = None
    is_drill: bool = True
    #: Roles this person held in this drill.
    roles: frozenset[HeldRole] = frozenset()
    #: check id -> status, for drills where this person was the trainee.
    checks: Mapping[str, CheckStatus] = field(default_factory=dict)
    improve_next: str | None = None

    @property
    def finished(self) -> bool:
        return self.status == DrillStatus.FINISHED

    @property
    def practised(self) -> bool:
        """Finished with a fault to respond to: a steady state not met before the fault injected nothing."""
        return self.finished and self.outcome != Outcome.NOT_STEADY.value


@dataclass(frozen=True)
class TraineeHistory:
    name: str
    #: Every drill the person took part in (any role), oldest first.
    drills: tuple[DrillRecord, ...] = ()

    def with_role(self, role: HeldRole) -> list[DrillRecord]:
        return [d for d in self.drills if role in d.roles]

    @property
    def responded(self) -> list[DrillRecord]:
        """Finished drills where this person was the trainee (crashed and not-steady ones do not count)."""
        return [
            d for d in self.drills if HeldRole.RESPONDER in d.roles and d.practised and d.score is not None
        ]


# ---- the ladder ------------------------------------------------------------------------------------------


class Level(StrEnum):
    OBSERVER = "observer"
    SCRIBE = "scribe"
    RESPONDER = "responder"
    INCIDENT_COMMANDER = "incident-commander"

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize()


LEVELS: tuple[Level, ...] = (Level.OBSERVER, Level.SCRIBE, Level.RESPONDER, Level.INCIDENT_COMMANDER)


@dataclass(frozen=True)
class LadderRules:
    """The entry criteria's numbers (docs/programs.md explains each)."""

    scribe_observed: int = 2
    responder_scribed: int = 2
    responder_observed: int = 3
    ic_responded: int = 4
    ic_recent_window: int = 3
    ic_recent_mean_score: float = 75.0
    ic_high_severity_passed: int = 1
    ic_sla_clean: int = 3
    ic_held: int = 2


@dataclass(frozen=True)
class Criterion:
    """One entry criterion, measured: ``have`` against ``need``."""

    id: str
    level: Level
    text: str
    have: float
    need: float

    @property
    def met(self) -> bool:
        return self.have >= self.need

    def describe(self) -> str:
        have = f"{self.have:.0f}" if float(self.have).is_integer() else f"{self.have:.1f}"
        need = f"{self.need:.0f}" if float(self.need).is_integer() else f"{self.need:.1f}"
        return f"{self.text}: {have} of {need}"


def core_sla_clean(record: DrillRecord) -> bool:
    """Every core SLA *clock* of the drill's severity (the scorer's ``CORE``, less its non-clock checks such
    as a P0's leadership notification) was judged and passed: the ladder counts SLA clocks kept."""
    if record.true_severity is not None:
        core = [c for c in CORE[record.true_severity] if c.startswith(CORE_SLA_PREFIXES) or c == "response_time"]
        return all(record.checks.get(cid) == CheckStatus.PASS for cid in core)
    judged = [
        s
        for cid, s in record.checks.items()
        if cid.startswith(CORE_SLA_PREFIXES) and s in (CheckStatus.PASS, CheckStatus.FAIL)
    ]
    return bool(judged) and all(s == CheckStatus.PASS for s in judged)


def criteria(history: TraineeHistory, rules: LadderRules | None = None) -> dict[Level, list[Criterion]]:
    """Every level's entry criteria, measured on this history. The observer level has none."""
    r = rules or LadderRules()
    observed = len(history.with_role(HeldRole.OBSERVER))
    scribed = len(history.with_role(HeldRole.SCRIBE))
    responded = history.responded
    recent = responded[-r.ic_recent_window :]
    recent_mean = (
        sum(d.score or 0.0 for d in recent) / len(recent) if len(recent) >= r.ic_recent_window else 0.0
    )
    high_passed = sum(
        1 for d in responded if d.passed and d.true_severity is not None and d.true_severity.is_high()
    )
    sla_clean = sum(1 for d in responded if core_sla_clean(d))
    ic_held = len([d for d in history.with_role(HeldRole.IC) if d.practised])
    return {
        Level.OBSERVER: [],
        Level.SCRIBE: [
            Criterion("observed", Level.SCRIBE, "drills observed", observed, r.scribe_observed),
        ],
        Level.RESPONDER: [
            Criterion("observed", Level.RESPONDER, "drills observed", observed, r.responder_observed),
            Criterion(
                "scribed",
                Level.RESPONDER,
                "drills kept the record for (scribe)",
                scribed,
                r.responder_scribed,
            ),
        ],
        Level.INCIDENT_COMMANDER: [
            Criterion(
                "responded",
                Level.INCIDENT_COMMANDER,
                "drills completed as responder",
                len(responded),
                r.ic_responded,
            ),
            Criterion(
                "recent_score",
                Level.INCIDENT_COMMANDER,
                f"mean score of the last {r.ic_recent_window} drills",
                round(recent_mean, 1),
                r.ic_recent_mean_score,
            ),
            Criterion(
                "high_severity_passed",
                Level.INCIDENT_COMMANDER,
                "P0/P1 drills passed",
                high_passed,
                r.ic_high_severity_passed,
            ),
            Criterion(
                "sla_clean",
                Level.INCIDENT_COMMANDER,
                "drills with every core SLA check passed (MTTA, MTTM, MTTR)",
                sla_clean,
                r.ic_sla_clean,
            ),
            Criterion(
                "ic_held",
                Level.INCIDENT_COMMANDER,
                "drills held the incident commander role",
                ic_held,
                r.ic_held,
            ),
        ],
    }


@dataclass(frozen=True)
class NextStep:
    level: Level
    next_level: Level | None
    missing: tuple[Criterion, ...]
    met: tuple[Criterion, ...]

    def summary(self) -> str:
        if self.next_level is None:
            return f"{self.level.label}: the top of the ladder. Keep leading drills and coaching others."
        todo = "; ".join(c.describe() for c in self.missing)
        return f"{self.level.label}. Next: {self.next_level.label} (still needed: {todo})."


def level_of(history: TraineeHistory, rules: LadderRules | None = None) -> Level:
    """The highest level whose criteria, and every lower level's, are met."""
    measured = criteria(history, rules)
    level = Level.OBSERVER
    for candidate in LEVELS[1:]:
        if all(c.met for c in measured[candidate]):
            level = candidate
        else:
            break
    return level


def next_step(history: TraineeHistory, rules: LadderRules | None = None) -> NextStep:
    """Where the person stands and what is missing for the next level."""
    measured = criteria(history, rules)
    level = level_of(history, rules)
    i = LEVELS.index(level)
    if i + 1 == len(LEVELS):
        return NextStep(level, None, (), tuple(measured[level]))
    nxt = LEVELS[i + 1]
    return NextStep(
        level,
        nxt,
        tuple(c for c in measured[nxt] if not c.met),
        tuple(c for c in measured[nxt] if c.met),
    )


def scores_by_check(history: TraineeHistory) -> dict[str, list[tuple[str, CheckStatus]]]:
    """For each check id, its status in each drill responded to, oldest first: (drill id, status)."""
    out: dict[str, list[tuple[str, CheckStatus]]] = {}
    for d in history.responded:
        for cid, status in sorted(d.checks.items()):
            out.setdefault(cid, []).append((d.drill_id, status))
    return out


# ---- debrief ---------------------------------------------------------------------------------------------

_ADVICE: dict[CheckFamily, str] = {
    CheckFamily.DETECTION: (
        "Look at what would have made the first signal arrive sooner: the alert rule's threshold and `for:` "
        "window, or a dashboard panel that shows this failure."
    ),
    CheckFamily.ACKNOWLEDGEMENT: (
        "Acknowledge the page first, then investigate: the acknowledgement tells everyone someone is on it, "
        "and it costs one command (`drill ack`)."
    ),
    CheckFamily.TRIAGE: (
        "The severity table (users affected, service status, data-loss risk, revenue) usually answers the "
        "severity in a minute; declare it and name an incident commander before digging in."
    ),
    CheckFamily.MITIGATION: (
        "Mitigation comes before root cause: reach for the runbook's fastest safe lever (rollback, scale, "
        "route traffic) and investigate once users are served again."
    ),
    CheckFamily.RESOLUTION: (
        "Confirm health holds before resolving (`kubectl get pods`, the steady-state checks), then close "
        "with the root cause written down."
    ),
    CheckFamily.COMMUNICATION: (
        "Post the template early, even with placeholders still open, and keep the status-update cadence: "
        "stakeholders plan around it."
    ),
    CheckFamily.ESCALATION: (
        "The escalation ladder is time-based, not judgement-based: a timer or checklist for who to notify "
        "and when takes the decision off the responder's plate."
    ),
    CheckFamily.DISCIPLINE: (
        "Preserve evidence before changing things (read the logs and events first) and note each change in "
        "the journal as it happens; the postmortem is built from both."
    ),
}

_FAMILY_ORDER = list(CheckFamily)


@dataclass(frozen=True)
class Debrief:
    """The one thing to work on next, for the debrief."""

    check_id: str | None
    family: CheckFamily | None
    text: str
    recurring: bool = False


def _measure(check: Check) -> str:
    if check.measured is not None and check.target is not None:
        return f" It took {format_duration(check.measured)} against a {format_duration(check.target)} target."
    if check.target is not None:
        return f" The target was {format_duration(check.target)}."
    return ""


def improve_next_id(text: str | None) -> str | None:
    """The check id in a scorecard's ``improve_next`` ("mtta.p0: what to improve ...")."""
    if not text:
        return None
    return text.split(":", 1)[0].strip() or None


def debrief(scorecard: Scorecard, history: TraineeHistory | None = None) -> Debrief:
    """Name the one check to improve next, in blameless words.

    Preference: a check that failed now *and* in one of the previous three drills (a pattern is worth more
    than a one-off), then the scorer's own ``improve_next``, then the earliest failed check in the lifecycle.
    """
    failed = [c for c in scorecard.checks if c.status == CheckStatus.FAIL]
    if not failed:
        return Debrief(
            None,
            None,
            "Every check passed. Next time, try a harder scenario or a higher-severity one, or take the "
            "incident commander role.",
        )
    by_id = {c.id: c for c in failed}
    chosen: Check | None = None
    recurring = False
    if history is not None:
        earlier = [d for d in history.responded if d.drill_id != scorecard.drill_id][-3:]
        for c in sorted(failed, key=lambda c: _FAMILY_ORDER.index(c.family)):
            if any(d.checks.get(c.id) == CheckStatus.FAIL for d in earlier):
                chosen, recurring = c, True
                break
    named = improve_next_id(scorecard.improve_next)
    if chosen is None and named in by_id:
        chosen = by_id[named]
    if chosen is None:
        chosen = min(failed, key=lambda c: _FAMILY_ORDER.index(c.family))
    again = " This came up in an earlier drill too, so it is the one to focus on." if recurring else ""
    text = (
        f"One thing to work on next: {chosen.rule} ({chosen.id}).{_measure(chosen)}{again} "
        f"{_ADVICE[chosen.family]}"
    )
    return Debrief(chosen.id, chosen.family, text, recurring)


# ---- training hints --------------------------------------------------------------------------------------

#: kubectl verbs that only read: offered early and cheaply (they teach where to look).
_READ_ONLY = re.compile(
    r"^\s*(watch\s+)?kubectl\s+(get|describe|logs|top|rollout\s+(history|status)|events)\b"
)

RUNBOOK_HINT_GAP = timedelta(minutes=3)
READ_HINT_COST = 2
CHANGE_HINT_COST = 8


def training_hints(scenario: Scenario) -> list[Hint]:
    """The scenario's own hints and each of its seed runbook steps as a hint, each with its cost, by time.

    Reading commands (get, logs, describe, top, rollout status/history) cost little: they point at where to
    look, so they open early, one every few minutes in runbook order. Commands that change the cluster give
    the answer away: they cost more and never open before the scenario's own last hint, so the trainee gets a
    chance first. A runbook command the scenario's hints already quote is not offered twice.
    """
    own = list(scenario.hints)
    last_own = max((h.after for h in own), default=timedelta(0))
    seen = " ".join(h.text for h in own)
    runbook: list[Hint] = []
    previous = timedelta(0)
    for command in scenario.expected_response.runbook:
        if command in seen:
            continue
        reading = bool(_READ_ONLY.match(command))
        after = previous + RUNBOOK_HINT_GAP
        if not reading:
            after = max(after, last_own + RUNBOOK_HINT_GAP)
        previous = after
        runbook.append(
            Hint(
                text=f"Runbook step: `{command}`",
                after=after,
                cost=READ_HINT_COST if reading else CHANGE_HINT_COST,
            )
        )
    # Stable: on a tie the scenario's own hint comes first.
    return sorted([*own, *runbook], key=lambda h: h.after)


def drills_per_level(history: TraineeHistory, rules: LadderRules | None = None) -> list[tuple[Level, bool]]:
    """Every level with whether it is reached, for display."""
    current = LEVELS.index(level_of(history, rules))
    return [(lvl, i <= current) for i, lvl in enumerate(LEVELS)]


__all__ = [
    "CORE_SLA_PREFIXES",
    "LEVELS",
    "Criterion",
    "Debrief",
    "DrillRecord",
    "DrillStatus",
    "HeldRole",
    "LadderRules",
    "Level",
    "NextStep",
    "TraineeHistory",
    "core_sla_clean",
    "criteria",
    "debrief",
    "drills_per_level",
    "improve_next_id",
    "level_of",
    "next_step",
    "scores_by_check",
    "training_hints",
]
