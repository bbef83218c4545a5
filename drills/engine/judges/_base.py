"""What every judge shares: the drill being judged, the wording of a check, and the registry of judges.

A judge is a function ``(drill, rule) -> Judged`` registered for one or more rule ids with :func:`judge`.
The scorer calls the one judge of each rule of :data:`drills.engine.rules.RULES`; a rule without a judge,
or with two, is an error at import time, and tests/test_judges.py checks the table and the registry agree.

The status words are the same in every family (docs/scoring.md, "Status"):

- a **live** drill (no ``drill.ended``) may still do what it has not done: ``not-measured``, "not done yet";
- once the drill has **ended**, a required step that never happened is a ``fail``: "not done: ...";
- a check that legitimately cannot be judged says why: "not applicable: ..." (``n/a``) or
  "not measured: ..." (``not-measured``). Neither counts in the score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from drills.engine.measured import MeasuredImpact, measured_impact, measured_severity
from drills.engine.rules import RULE_BY_ID, Rule
from drills.engine.timeline import NOT_CHANGES, PEOPLE, ZERO, Span, Timeline, spans
from drills.model.durations import format_duration
from drills.model.events import ActionObserved, DrillStarted, Mode, Outcome
from drills.model.policy import SlaTargets
from drills.model.scorecard import Check, CheckStatus
from drills.model.severity import Severity

PASS, FAIL, NA, NOT_MEASURED = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.NOT_APPLICABLE,
    CheckStatus.NOT_MEASURED,
)


def fmt(td: timedelta | None) -> str:
    return format_duration(td)


@dataclass(frozen=True, slots=True)
class Judged:
    check: Check
    finding: str = ""  # blameless wording, for a failed check


# What each timed rule's clock starts from (for the wording): the fault (T0), the page (the alert, else
# human detection, else T0), the response (the acknowledgement, not before the page), the acknowledgement
# itself, or the resolution.
_CLOCK = {
    "mttd": "fault",
    "triage.within": "fault",
    "mttr.p0": "fault",
    "mttr.p1": "fault",
    "mtta.p0": "page",
    "mtta.p1": "page",
    "escalation.p0_ack": "page",
    "escalation.p1_ack": "page",
    "response_time": "page",
    "oncall.respond_p0_p1": "page",
    "oncall.ack_all": "page",
    "escalation.p0_leadership": "page",
    "escalation.p1_eng_lead": "page",
    "comms.initial_alert": "response",
    "comms.status_cadence": "response",
    "comms.required": "response",
    "oncall.escalate_unresolved": "response",
    "mttm.p0": "ack",
    "mttm.p1": "ack",
    "postmortem.within_48h": "resolution",
}


class Drill:
    """One drill being judged: its timeline, targets and true severity, and the wording every judge uses."""

    def __init__(self, tl: Timeline, started: DrillStarted, targets: SlaTargets) -> None:
        self.tl = tl
        self.started = started
        self.targets = targets
        self.severity: Severity = started.true_severity
        self.end = tl.end
        #: The journal has a ``drill.ended``: nothing more will be done, so whatever is missing failed.
        self.ended = tl.ended is not None
        self.spans: dict[str, Span] = {s.rule.id: s for s in spans(tl, self.severity, targets)}
        self.changes: list[ActionObserved] = [
            a
            for a in tl.actions
            if a.actor_kind in PEOPLE and a.kind not in NOT_CHANGES and (tl.t0 is None or a.at >= tl.t0)
        ]
        self.healed_alone = self._healed_alone()
        #: What judges derive from the timeline and share (one walk over a big journal's events, not one a
        #: judge): keyed by the class of what is kept (``discipline.records_of``).
        self.memo: dict[type, object] = {}
        #: What the virtual users saw from T0 on (None without impact samples or without T0).
        self.measured: MeasuredImpact | None = None
        #: The seed's matrix over it; severity accuracy is judged against this when there is one.
        self.measured_severity: Severity | None = None
        if tl.impact and tl.t0 is not None and self.end is not None:
            self.measured = measured_impact(tl.impact, tl.t0, self.end)
            self.measured_severity = measured_severity(self.measured, started.impact)

    def _healed_alone(self) -> bool:
        """A chaos test the system passed: health came back by itself and nobody had to start a response.

        Then the responder rules have nothing to judge (no one was paged into an incident); what counts is
        that the service healed and stayed healthy. A drill where people did respond is scored as usual.
        """
        tl = self.tl
        if tl.mitigated_by != "system" or tl.mitigated is None or not tl.healthy_now:
            return False
        ended_healed = tl.ended is not None and tl.ended.outcome == Outcome.SELF_HEALED
        if not (ended_healed or self.started.mode == Mode.CHAOS_TEST):
            return False
        # Nobody had taken the incident on before it healed (mitigated_by "system" already means no change
        # by a responder came first); what people do afterwards is looking, not responding.
        return tl.acknowledged is None or tl.acknowledged.at >= tl.mitigated

    # ---- building checks ----------------------------------------------------------------------------------

    def check(
        self,
        r: Rule,
        status: CheckStatus,
        detail: str,
        *,
        target: timedelta | None = None,
        measured: timedelta | None = None,
        finding: str = "",
    ) -> Judged:
        c = Check(
            id=r.id,
            family=r.family,
            rule=r.rule,
            citation=r.citation,
            target=target if target is not None else r.target_for(self.severity, self.targets),
            measured=measured,
            status=status,
            detail=detail,
            cause=r.cause,
            owner=r.owner,
        )
        return Judged(c, finding if status == FAIL else "")

    def na(self, r: Rule, why: str, *, target: timedelta | None = None) -> Judged:
        return self.check(r, NA, f"not applicable: {why}", target=target)

    def unmeasured(self, r: Rule, why: str, *, target: timedelta | None = None) -> Judged:
        """Cannot be judged from this journal at all, whether the drill is live or over."""
        return self.check(r, NOT_MEASURED, f"not measured: {why}", target=target)

    def pending(self, r: Rule, what: str, *, target: timedelta | None = None) -> Judged:
        """A live drill that may still do it. Judges never call this once the drill has ended (a property
        test in tests/test_judges.py holds them to it)."""
        return self.check(r, NOT_MEASURED, f"not done yet: {what}", target=target)

    def not_done(self, r: Rule, what: str, finding: str, *, target: timedelta | None = None) -> Judged:
        return self.check(r, FAIL, f"not done: {what}", finding=finding, target=target)

    def other_severity(self, r: Rule) -> Judged:
        names = "/".join(s.value for s in sorted(r.severities, key=lambda s: s.rank))
        sev = self.severity.value
        why = _NA_WORDS.get(r.id)
        words = (
            f"{sev} incidents need {why} ({names} only)"
            if why
            else f"the rule binds {names}; this incident is {sev} (the scenario's true severity)"
        )
        return self.na(r, words, target=any_target(r, self.targets))

    def self_healed(self, r: Rule) -> Judged:
        tl = self.tl
        assert tl.mitigated is not None and tl.t0 is not None
        after = fmt(tl.active(tl.t0, tl.mitigated))
        if r.id == "resolution.healthy":
            return self.check(
                r, PASS, f"the service healed by itself {after} after the fault and was healthy at the end"
            )
        return self.na(
            r,
            f"the service healed by itself {after} after the fault, before anyone had to respond "
            "(a passed chaos test)",
            target=any_target(r, self.targets),
        )

    # ---- time and words -----------------------------------------------------------------------------------

    def used(self, start: datetime) -> timedelta:
        """Active time from ``start`` to the end of the drill (or of the journal, while live)."""
        return self.tl.active(start, self.end) if self.end is not None else ZERO

    def duration_words(self, active: timedelta, start: datetime, stop: datetime) -> str:
        wall = self.tl.wall(start, stop)
        return fmt(active) if wall == active else f"{fmt(active)} active ({fmt(wall)} wall)"

    def page_words(self) -> str:
        tl = self.tl
        if tl.first_alert is not None:
            return "the alert"
        if tl.human_detected is not None:
            return "human detection (no alert fired)"
        return "the fault (no alert fired, nobody detected it)"

    def response_words(self) -> str:
        """What :attr:`Timeline.response_start` is, so no text says "after acknowledgement" without one."""
        tl = self.tl
        ack = tl.acknowledged
        page = tl.tta_reference
        if ack is not None and (page is None or ack.at >= page):
            return "acknowledgement"
        return self.page_words()

    def source(self, r: Rule) -> str:
        clock = _CLOCK.get(r.id, "fault")
        if clock == "page":
            return self.page_words()
        if clock == "response":
            return self.response_words()
        return {"fault": "the fault", "ack": "acknowledgement", "resolution": "resolution"}[clock]

    @staticmethod
    def asks(r: Rule, target: timedelta) -> str:
        """The seed's own comparison: "under" for the KPI targets (``<``), "within" for the procedures."""
        return f"the seed asks for {'under' if r.strict else 'within'} {fmt(target)}"

    # ---- the common timed judgement -----------------------------------------------------------------------

    def timed(self, r: Rule, *, never: str, label: str, why: str) -> Judged:
        """A clock from ``span.start`` to ``span.stop`` against the target.

        ``never`` says what did not happen ("engineering leadership was never notified"), ``label`` what was
        timed ("Notifying engineering leadership") and ``why`` what in the system may explain a miss.
        """
        s = self.spans[r.id]
        tl = self.tl
        if s.start is None:
            return self.unmeasured(r, "no fault.injected in the journal, so the true start is unknown")
        src = self.source(r)
        asks = self.asks(r, s.target)
        if s.stop is not None:
            measured = tl.active(s.start, s.stop)
            words = self.duration_words(measured, s.start, s.stop)
            if r.met(measured, s.target):
                return self.check(r, PASS, f"{words} after {src} ({asks})", measured=measured)
            return self.check(
                r,
                FAIL,
                f"{words} after {src}: {asks}",
                measured=measured,
                finding=f"{label} took {fmt(measured)}: {asks}; {why}.",
            )
        used = self.used(s.start)
        finding = f"{label}: not done ({never}), and {asks}; {why}."
        if self.ended:
            return self.not_done(r, f"{never} ({fmt(used)} after {src} when the drill ended)", finding)
        if r.met(used, s.target):
            return self.pending(r, f"{fmt(used)} after {src} so far ({asks})")
        return self.not_done(r, f"{never} by {fmt(used)} after {src}: {asks}", finding)


_NA_WORDS = {
    "escalation.p0_leadership": "no leadership notification",
    "escalation.p0_executives": "no executive notification",
    "escalation.p1_eng_lead": "no engineering-lead notification",
    "escalation.p2p3_ticket": "escalation rather than only a ticket",
    "postmortem.within_48h": "no postmortem",
    "oncall.respond_p0_p1": "no 5-minute response",
}


def any_target(r: Rule, targets: SlaTargets) -> timedelta | None:
    """The target an n/a rule would have had (shown so both readings of the seed are visible)."""
    if r.target is None:
        return None
    sev = min(r.severities, key=lambda s: s.rank)
    return r.target_for(sev, targets)


# ---- the registry ---------------------------------------------------------------------------------------

Judge = Callable[[Drill, Rule], Judged]

#: Rule id -> its one judge. Filled at import by the family modules of this package.
JUDGES: dict[str, Judge] = {}


def judge(*rule_ids: str) -> Callable[[Judge], Judge]:
    """Register ``fn`` as the judge of ``rule_ids`` (each a row of :data:`drills.engine.rules.RULES`)."""

    def register(fn: Judge) -> Judge:
        for rule_id in rule_ids:
            if rule_id not in RULE_BY_ID:
                raise ValueError(f"{fn.__qualname__} judges {rule_id!r}, which is not in drills.engine.rules")
            if rule_id in JUDGES:
                raise ValueError(
                    f"{rule_id!r} has two judges: {JUDGES[rule_id].__qualname__} and {fn.__qualname__}"
                )
            JUDGES[rule_id] = fn
        return fn

    return register
