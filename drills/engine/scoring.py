"""The scorecard: every rule of the seed judged against one drill's journal, a 0-100 score and a debrief.

The score is for the *process*: a failed check says what the system, the runbook or the paging path let
happen, never who was slow (the seed's "Blame individuals" is a don't, incident-response-framework.md:513).
It is deterministic: the same events in any order, delivered any number of times, give the same scorecard,
and nothing here reads a clock.

Each rule in :mod:`drills.engine.rules` becomes one :class:`~drills.model.scorecard.Check`:

- ``n/a`` when the rule does not bind this incident (a P1 rule in a P0 drill, no destructive change to
  preserve evidence for). They stay listed so that both readings of a contradictory seed show.
- ``pass`` / ``fail`` when it could be judged. SLAs are judged on active time (pauses cut out), against the
  *true* severity of the scenario (the game master's truth), not the one the responders declared.
- When something never happened (no acknowledgement, no resolution): ``fail`` if its budget had run out by
  the end of the journal, ``not-measured`` otherwise.

The score formula, the pass rule and every decision taken where the seed is silent are in docs/scoring.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from pydantic import ValidationError

from drills.engine.rules import CORE, RULE_ORDER, RULES, Rule
from drills.engine.timeline import (
    DESTRUCTIVE_KINDS,
    EXECUTIVES,
    NOT_CHANGES,
    PEOPLE,
    PEOPLE_SOURCES,
    UPDATE_TEMPLATES,
    ZERO,
    Span,
    Timeline,
    build,
    escalation_rank,
    spans,
)
from drills.errors import JournalError
from drills.model.durations import format_duration
from drills.model.events import (
    ActionKind,
    ActionObserved,
    ActorKind,
    CommsPosted,
    DrillStarted,
    Event,
    FaultReverted,
    HintUsed,
    Mitigated,
    Mode,
    Note,
    Outcome,
    Resolved,
    RunbookStep,
    Source,
    TicketCreated,
)
from drills.model.policy import Policy, SlaOverrides, SlaTargets
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Scorecard
from drills.model.severity import Severity

#: Hints cost what the scenario says, but never more than this many points in total.
HINT_COST_CAP = 30
#: "Document everything in real-time" (seed line 504): a change counts as documented when a note or
#: message by the responders comes within this long before or after it.
DOCUMENTATION_WINDOW = timedelta(minutes=5)
#: An alert notification slower than this to reach drills is worth a finding of its own.
SLOW_DELIVERY = timedelta(minutes=1)

#: Messages each severity requires (decided in docs/scoring.md): internal ones for every severity (the
#: seed's initial alert is written for P[0-3]), the status page and the customer email for P0 only.
EXTERNAL_P0 = ("statuspage_investigating", "statuspage_resolved", "customer_email")

PASS, FAIL, NA, NOT_MEASURED = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.NOT_APPLICABLE,
    CheckStatus.NOT_MEASURED,
)

# What each timed rule measures (for details) and, when it fails, what in the system may explain it.
_LABEL = {
    "mttd": "Detection",
    "mtta.p0": "Acknowledgement",
    "mtta.p1": "Acknowledgement",
    "escalation.p0_ack": "Acknowledgement (P0 escalation step 2)",
    "escalation.p1_ack": "Acknowledgement (P1 escalation step 2)",
    "response_time": "The first response",
    "oncall.respond_p0_p1": "The first response (on-call duty)",
    "oncall.ack_all": "Acknowledgement (on-call duty)",
    "triage.within": "Triage (severity and incident commander)",
    "comms.initial_alert": "The initial alert",
    "escalation.p0_leadership": "Notifying engineering leadership",
    "escalation.p1_eng_lead": "Notifying the engineering lead",
    "mttm.p0": "Mitigation",
    "mttm.p1": "Mitigation",
    "mttr.p0": "Resolution",
    "mttr.p1": "Resolution",
    "postmortem.within_48h": "The postmortem",
}
_WHY = {
    "mttd": "the alert rule may need a shorter `for:` or a signal closer to what users see",
    "triage.within": "the severity matrix and the incident-commander hand-off may need to be easier to reach",
    "comms.initial_alert": "a prefilled initial-alert template at hand may make posting immediate",
    "escalation.p0_leadership": "the escalation step may not stand out enough in the runbook",
    "escalation.p1_eng_lead": "the escalation step may not stand out enough in the runbook",
    "mttm.p0": "the runbook may lack a quick mitigation for this failure",
    "mttm.p1": "the runbook may lack a quick mitigation for this failure",
    "mttr.p0": "the path from mitigation to a verified fix may need its own runbook",
    "mttr.p1": "the path from mitigation to a verified fix may need its own runbook",
    "postmortem.within_48h": "scheduling the postmortem when the incident is resolved may help",
}
_WHY_ACK = "the page may not have reached the responder quickly"

# What a timed rule's clock starts from, in words, for details.
_FROM = {
    "mttd": "the fault",
    "triage.within": "the fault",
    "comms.initial_alert": "acknowledgement",
    "mttm.p0": "acknowledgement",
    "mttm.p1": "acknowledgement",
    "mttr.p0": "the fault",
    "mttr.p1": "the fault",
    "postmortem.within_48h": "resolution",
    "escalation.p0_leadership": "detection",
    "escalation.p1_eng_lead": "detection",
    "oncall.escalate_unresolved": "acknowledgement",
}


def fmt(td: timedelta | None) -> str:
    return format_duration(td)


@dataclass(frozen=True, slots=True)
class _Judged:
    check: Check
    finding: str = ""  # blameless wording, for a failed check


class _Scorer:
    """One drill being scored: the timeline, the targets and the true severity, and a method per rule."""

    def __init__(self, tl: Timeline, started: DrillStarted, targets: SlaTargets) -> None:
        self.tl = tl
        self.started = started
        self.targets = targets
        self.severity = started.true_severity
        self.end = tl.end
        resolved = tl.resolved is not None
        self.over = resolved or tl.ended is not None
        self.spans = {s.rule.id: s for s in spans(tl, self.severity, targets)}
        self.changes = [a for a in tl.actions if a.actor_kind in PEOPLE and a.kind not in NOT_CHANGES]
        self.healed_alone = self._healed_alone()

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

    # ---- helpers ------------------------------------------------------------------------------------------

    def check(
        self,
        r: Rule,
        status: CheckStatus,
        detail: str,
        *,
        target: timedelta | None = None,
        measured: timedelta | None = None,
        finding: str = "",
    ) -> _Judged:
        c = Check(
            id=r.id,
            family=r.family,
            rule=r.rule,
            citation=r.citation,
            target=target if target is not None else r.target_for(self.severity, self.targets),
            measured=measured,
            status=status,
            detail=detail,
        )
        return _Judged(c, finding if status == FAIL else "")

    def not_applicable(self, r: Rule) -> _Judged:
        names = "/".join(s.value for s in sorted(r.severities, key=lambda s: s.rank))
        return self.check(
            r,
            NA,
            f"applies to {names}; this incident is {self.severity.value} (the scenario's true severity)",
            target=_any_target(r, self.targets),
        )

    def used(self, start: datetime) -> timedelta:
        return self.tl.active(start, self.end) if self.end is not None else ZERO

    def duration_words(self, active: timedelta, start: datetime, stop: datetime) -> str:
        wall = self.tl.wall(start, stop)
        return fmt(active) if wall == active else f"{fmt(active)} active ({fmt(wall)} wall)"

    # ---- timed rules --------------------------------------------------------------------------------------

    def timed(self, s: Span) -> _Judged:
        r, tl = s.rule, self.tl
        label = _LABEL.get(r.id, r.rule)
        why = _WHY.get(r.id, _WHY_ACK)
        source = _FROM.get(r.id) or self.ack_source()
        if s.start is None:
            return self.check(r, NOT_MEASURED, self.no_start(r))
        if s.stop is not None:
            measured = tl.active(s.start, s.stop)
            words = self.duration_words(measured, s.start, s.stop)
            if r.met(measured, s.target):
                return self.check(r, PASS, f"{words} after {source}", measured=measured)
            return self.check(
                r,
                FAIL,
                f"{words} after {source}",
                measured=measured,
                finding=f"{label} took {fmt(measured)} against a {fmt(s.target)} target; {why}.",
            )
        # A postmortem comes after the drill: it is due until the journal's last word, not the drill's end.
        end = tl.horizon if r.id == "postmortem.within_48h" else self.end
        used = tl.active(s.start, end) if end is not None else ZERO
        if r.met(used, s.target):
            return self.check(
                r, NOT_MEASURED, f"not done yet; {fmt(used)} after {source} when the journal ends"
            )
        return self.check(
            r,
            FAIL,
            f"not done; {fmt(used)} after {source} by the end",
            finding=f"{label}: not done {fmt(used)} after {source}, against a {fmt(s.target)} target; {why}.",
        )

    def ack_source(self) -> str:
        tl = self.tl
        if tl.first_alert is not None:
            return "the alert"
        if tl.human_detected is not None:
            return "human detection (no alert fired)"
        return "the fault (no alert fired, nobody detected it)"

    def no_start(self, r: Rule) -> str:
        if r.id in ("mttd", "triage.within", "mttr.p0", "mttr.p1") or r.id in _ACK_RULES:
            return "no fault.injected in the journal: the true start is unknown"
        if r.id == "postmortem.within_48h":
            return "not resolved, so no postmortem is due yet"
        return "nobody knew of the incident (no alert, detection or acknowledgement)"

    def mttd(self) -> _Judged:
        s = self.spans["mttd"]
        tl = self.tl
        judged = self.timed(s)
        if tl.first_alert is not None or s.start is None:
            return judged
        human = (
            f"a person detected it {fmt(tl.active(s.start, tl.human_detected.at))} after the fault"
            if tl.human_detected is not None
            else "nobody detected it"
        )
        detail = f"no alert fired (detection gap); {human}"
        finding = (
            f"No alert fired for this fault; {human}. Monitoring may not cover this failure mode: an alert "
            "rule for it would close the gap."
        )
        return self.check(
            s.rule, judged.check.status, detail, finding=finding, measured=judged.check.measured
        )

    def mttm(self, s: Span) -> _Judged:
        if self.tl.mitigated_by == "system":
            return self.check(
                s.rule,
                NA,
                f"health came back by itself {self.recovery_words()}; no human time to mitigate is claimed",
            )
        return self.timed(s)

    def recovery_when(self) -> str:
        tl = self.tl
        if tl.mitigated is None or tl.t0 is None:
            return "during the drill"
        return f"{fmt(tl.active(tl.t0, tl.mitigated))} after the fault"

    def recovery_words(self) -> str:
        cause = (
            "after drills reverted the fault"
            if self.revert_before_recovery()
            else ("before any change by the responders")
        )
        return f"{self.recovery_when()}, {cause}"

    def revert_before_recovery(self) -> bool:
        tl = self.tl
        return tl.mitigated is not None and any(
            isinstance(e, FaultReverted) and e.source == Source.SYSTEM and e.at <= tl.mitigated
            for e in tl.events
        )

    def escalate_unresolved(self, s: Span) -> _Judged:
        r, tl = s.rule, self.tl
        if s.start is None:
            return self.check(r, NOT_MEASURED, self.no_start(r))
        resolved = tl.resolved.at if tl.resolved else None
        escalated = min((e.at for e in tl.escalations), default=None)
        if resolved is not None and r.met(tl.active(s.start, resolved), s.target):
            took = tl.active(s.start, resolved)
            return self.check(
                r, NA, f"resolved {fmt(took)} after {self.ack_source_for_ack()}: no escalation was needed"
            )
        if escalated is not None:
            took = tl.active(s.start, escalated)
            if r.met(took, s.target):
                return self.check(
                    r,
                    PASS,
                    f"escalated ({self.whom()}) {fmt(took)} after {self.ack_source_for_ack()}",
                    measured=took,
                )
            return self.check(
                r,
                FAIL,
                f"escalated {fmt(took)} after {self.ack_source_for_ack()}, "
                f"while still unresolved at {fmt(s.target)}",
                measured=took,
                finding=(
                    f"Help was asked for {fmt(took)} into the response, later than the {fmt(s.target)} the "
                    "on-call duties set for an unresolved incident; an explicit escalation point in the "
                    "runbook may help."
                ),
            )
        used = self.used(s.start)
        if r.met(used, s.target):
            return self.check(r, NOT_MEASURED, f"unresolved and not escalated; only {fmt(used)} had passed")
        return self.check(
            r,
            FAIL,
            f"unresolved after {fmt(s.target)} and no escalation by the end ({fmt(used)})",
            finding=(
                f"The incident was still unresolved {fmt(s.target)} after acknowledgement and nobody else "
                "was brought in; the on-call duty to escalate (line 456) may need to be part of the runbook."
            ),
        )

    def ack_source_for_ack(self) -> str:
        return "acknowledgement" if self.tl.acknowledged is not None else self.ack_source()

    def whom(self) -> str:
        return ", ".join(sorted({e.whom for e in self.tl.escalations}))

    def executives(self, r: Rule) -> _Judged:
        tl = self.tl
        threshold = self.targets.p0_notify_executives_after
        target = threshold + self.targets.p0_notify_leadership
        if tl.t0 is None or self.end is None:
            return self.check(
                r, NOT_MEASURED, "no fault.injected in the journal: impact unknown", target=target
            )
        impact_end = tl.mitigated or (tl.resolved.at if tl.resolved else None) or self.end
        impact = tl.active(tl.t0, impact_end)
        if impact <= threshold:
            return self.check(r, NA, f"impact lasted {fmt(impact)}, not over {fmt(threshold)}", target=target)
        told = min((e.at for e in tl.escalations if escalation_rank(e.whom) >= EXECUTIVES), default=None)
        if told is not None:
            took = tl.active(tl.t0, told)
            status = PASS if took <= target else FAIL
            return self.check(
                r,
                status,
                f"impact lasted {fmt(impact)}; executives notified {fmt(took)} after the fault",
                target=target,
                measured=took,
                finding=(
                    f"Executive leadership heard of a P0 lasting {fmt(impact)} only {fmt(took)} after the "
                    "fault; a reminder at the one-hour mark may help."
                ),
            )
        used = self.used(tl.t0)
        if used <= target:
            return self.check(
                r, NOT_MEASURED, f"impact over {fmt(threshold)}; not notified yet", target=target
            )
        return self.check(
            r,
            FAIL,
            f"impact lasted {fmt(impact)}; executives were not notified",
            target=target,
            finding=(
                f"A P0 impact lasted {fmt(impact)} and executive leadership was not notified; a reminder at "
                "the one-hour mark may help."
            ),
        )

    # ---- triage -------------------------------------------------------------------------------------------

    def overdue(self, target: timedelta) -> bool:
        """The incident is over, or the budget has run out by the end of the journal."""
        start = self.tl.t0 or self.tl.origin
        return self.over or (start is not None and self.used(start) > target)

    def roles_ic(self, r: Rule) -> _Judged:
        tl = self.tl
        if tl.ic_assigned is not None:
            ic = tl.ic_assigned
            when = f" {fmt(tl.active(tl.t0, ic.at))} after the fault" if tl.t0 else ""
            return self.check(r, PASS, f"{ic.person} assigned incident commander{when}")
        if self.overdue(self.targets.triage):
            return self.check(
                r,
                FAIL,
                "no incident commander was assigned",
                finding=(
                    "No incident commander was assigned; the seed's default (the first senior engineer to "
                    "acknowledge, line 169) could be made automatic in the paging tool."
                ),
            )
        return self.check(r, NOT_MEASURED, "no incident commander yet")

    def severity_accuracy(self, r: Rule) -> _Judged:
        tl = self.tl
        true = self.severity
        if tl.severity_final is None:
            if self.overdue(self.targets.triage):
                return self.check(
                    r,
                    FAIL,
                    f"no severity was declared (true severity {true.value})",
                    finding=(
                        f"No severity was declared for a {true.value} incident; the severity matrix "
                        "(line 54) may need to be part of the first steps."
                    ),
                )
            return self.check(r, NOT_MEASURED, "no severity declared yet")
        declared = tl.severity_final.severity
        changed = ""
        if tl.severity_first is not None and tl.severity_first.severity != declared:
            changed = f" (first declared {tl.severity_first.severity.value}, revised)"
        if declared == true:
            return self.check(r, PASS, f"declared {declared.value}{changed}, true {true.value}")
        direction = "under" if declared.rank > true.rank else "over"
        levels = abs(declared.rank - true.rank)
        return self.check(
            r,
            FAIL,
            f"declared {declared.value}{changed}, true {true.value}: {direction}-declared by {levels} "
            f"level{'s' if levels > 1 else ''}",
            finding=(
                f"The incident was declared {declared.value} but its impact made it {true.value}; the "
                "severity matrix may be hard to apply under pressure (a short decision aid could help)."
            ),
        )

    # ---- communication ------------------------------------------------------------------------------------

    def comms_start(self) -> datetime | None:
        tl = self.tl
        return tl.acknowledged.at if tl.acknowledged else tl.first_signal

    def open_for(self) -> timedelta | None:
        start = self.comms_start()
        close = self.tl.resolved.at if self.tl.resolved else self.end
        if start is None or close is None:
            return None
        return self.tl.active(start, close)

    def status_cadence(self, r: Rule) -> _Judged:
        tl = self.tl
        start = self.comms_start()
        close = tl.resolved.at if tl.resolved else self.end
        most, aim = self.targets.status_update_max, self.targets.status_update_target
        if start is None or close is None:
            return self.check(r, NOT_MEASURED, "nobody knew of the incident, so no update was due")
        open_for = tl.active(start, close)
        if open_for <= aim:
            return self.check(r, NOT_MEASURED, f"open {fmt(open_for)}: no status update was due yet")
        posts = sorted(c.at for c in tl.comms if c.template in UPDATE_TEMPLATES and start < c.at <= close)
        points = [start, *posts, close]
        gap = max(tl.active(a, b) for a, b in pairwise(points))
        aim_words = f"the {fmt(aim)} aim was {'met' if gap <= aim else 'missed'}"
        detail = f"{len(posts)} update(s) in {fmt(open_for)} open; longest gap {fmt(gap)}; {aim_words}"
        if gap <= most:
            return self.check(r, PASS, detail, measured=gap)
        return self.check(
            r,
            FAIL,
            detail,
            measured=gap,
            finding=(
                f"The longest stretch without a status update was {fmt(gap)} (the seed asks for one every "
                f"{fmt(aim)}-{fmt(most)}); a timer prompt for the comms lead may help."
            ),
        )

    def required_templates(self) -> list[str]:
        need = ["initial_alert"]
        open_for = self.open_for()
        if open_for is not None and open_for > self.targets.status_update_target:
            need.append("status_update")
        resolved = self.tl.resolved is not None
        if resolved:
            need.append("resolution")
        if self.severity == Severity.P0:
            need.append("statuspage_investigating")
            if resolved:
                need.extend(("statuspage_resolved", "customer_email"))
        return need

    def comms_required(self, r: Rule) -> _Judged:
        if self.comms_start() is None:
            return self.check(r, NOT_MEASURED, "nobody knew of the incident, so no message was due")
        need = self.required_templates()
        posted = {c.template for c in self.tl.comms if c.source in PEOPLE_SOURCES}
        missing = [t for t in need if t not in posted]
        detail = f"required for {self.severity.value}: {', '.join(need)}"
        if not missing:
            return self.check(r, PASS, detail + "; all posted")
        if not self.over:
            return self.check(r, NOT_MEASURED, detail + f"; not posted yet: {', '.join(missing)}")
        return self.check(
            r,
            FAIL,
            detail + f"; missing: {', '.join(missing)}",
            finding=(
                f"These messages were not sent: {', '.join(missing)}; a {self.severity.value} comms "
                "checklist with the seed's templates prefilled may help."
            ),
        )

    def comms_fields(self, r: Rule) -> _Judged:
        posts = [c for c in self.tl.comms if c.source in PEOPLE_SOURCES]
        if not posts:
            return self.check(r, NA, "no message was posted")
        gaps = [c for c in posts if c.missing_fields]
        if not gaps:
            return self.check(r, PASS, f"{len(posts)} message(s), every required field filled")
        listed = "; ".join(f"{c.template}: {', '.join(c.missing_fields)}" for c in gaps)
        return self.check(
            r,
            FAIL,
            f"{len(gaps)} of {len(posts)} message(s) left fields empty ({listed})",
            finding=(
                f"Some messages went out with required fields empty ({listed}); prefilling what the "
                "drill already knows may leave less to type."
            ),
        )

    # ---- escalation ---------------------------------------------------------------------------------------

    def ticket(self, r: Rule) -> _Judged:
        tickets = [e for e in self.tl.events if isinstance(e, TicketCreated)]
        if tickets:
            ref = tickets[0].ref or "no reference"
            return self.check(r, PASS, f"ticket created ({ref}); no escalation is required")
        if not self.over:
            return self.check(r, NOT_MEASURED, "no ticket yet")
        return self.check(
            r,
            FAIL,
            "no ticket was created",
            finding=(
                f"No ticket was created for this {self.severity.value} incident; the issue tracker step "
                "(line 352) may need a shortcut from the alert."
            ),
        )

    # ---- discipline ---------------------------------------------------------------------------------------

    def evidence(self, r: Rule) -> _Judged:
        destructive = [a for a in self.changes if a.destructive or a.kind in DESTRUCTIVE_KINDS]
        if not destructive:
            return self.check(r, NA, "no destructive change was made")
        first = destructive[0]
        reads = [
            a
            for a in self.tl.actions
            if a.kind == ActionKind.EVIDENCE_READ and a.actor_kind in PEOPLE and a.at <= first.at
        ]
        what = f"{first.kind.value} {first.object}"
        if reads:
            return self.check(
                r, PASS, f"evidence read ({reads[0].object}) before the first destructive change ({what})"
            )
        return self.check(
            r,
            FAIL,
            f"first destructive change ({what}) came before any evidence was read",
            finding=(
                f"A destructive change ({what}) came before any logs, events or descriptions were captured; "
                "the runbook could list the evidence to save first."
            ),
        )

    def no_deleted_logs(self, r: Rule) -> _Judged:
        deleted = [
            a
            for a in self.tl.actions
            if a.kind == ActionKind.LOGS_DELETED
            and a.actor_kind not in (ActorKind.DRILLS, ActorKind.CONTROLLER)
        ]
        if not deleted and not self.changes:
            return self.check(r, NA, "no change was made")
        if not deleted:
            return self.check(r, PASS, "no logs or evidence were deleted")
        objects = ", ".join(sorted({a.object for a in deleted}))
        return self.check(
            r,
            FAIL,
            f"logs or evidence deleted: {objects}",
            finding=(
                f"Logs or evidence were deleted ({objects}); the tooling could make evidence read-only "
                "during an incident."
            ),
        )

    def changes_documented(self, r: Rule) -> _Judged:
        if not self.changes:
            return self.check(r, NA, "no change was made")
        written = [
            e.at
            for e in self.tl.events
            if isinstance(e, Note | CommsPosted | Mitigated | Resolved | RunbookStep)
            and e.source in PEOPLE_SOURCES
        ]
        window = DOCUMENTATION_WINDOW
        undocumented: list[ActionObserved] = []
        judged = 0
        for a in self.changes:
            documented = any(abs(t - a.at) <= window for t in written)
            if documented:
                judged += 1
            elif self.end is not None and self.end - a.at >= window:
                judged += 1
                undocumented.append(a)
        if judged == 0:
            return self.check(r, NOT_MEASURED, "the journal ends before any change could be judged")
        if not undocumented:
            return self.check(r, PASS, f"all {judged} change(s) had a note or message within {fmt(window)}")
        listed = ", ".join(f"{a.kind.value} {a.object}" for a in undocumented[:5])
        more = f" and {len(undocumented) - 5} more" if len(undocumented) > 5 else ""
        return self.check(
            r,
            FAIL,
            f"{len(undocumented)} of {judged} change(s) had no note or message within {fmt(window)}: "
            f"{listed}{more}",
            finding=(
                f"{len(undocumented)} change(s) to the system were not written down within {fmt(window)} "
                f"({listed}{more}); a one-line `drill note` habit, or notes taken by a scribe, may help."
            ),
        )

    # ---- resolution ---------------------------------------------------------------------------------------

    def resolution_healthy(self, r: Rule) -> _Judged:
        tl = self.tl
        if tl.resolved is None:
            return self.check(r, NOT_MEASURED, "not resolved")
        if tl.health_at_resolve is None:
            return self.check(r, NOT_MEASURED, "health at resolution is unknown (no health observations)")
        if tl.health_at_resolve:
            return self.check(r, PASS, "the service was healthy when the incident was resolved")
        return self.check(
            r,
            FAIL,
            "resolved while the service was unhealthy",
            finding=(
                "The incident was marked resolved while the service was still unhealthy; an exit check "
                "(the scenario's steady state) before resolving may help."
            ),
        )

    def postmortem(self, s: Span) -> _Judged:
        return self.timed(s)

    # ---- all rules ----------------------------------------------------------------------------------------

    def self_healed(self, r: Rule) -> _Judged:
        assert self.tl.mitigated is not None and self.tl.t0 is not None
        after = fmt(self.tl.active(self.tl.t0, self.tl.mitigated))
        if r.id == "resolution.healthy":
            return self.check(
                r, PASS, f"the service healed by itself {after} after the fault and was healthy at the end"
            )
        return self.check(
            r,
            NA,
            f"the service healed by itself {after} after the fault, before anyone had to respond "
            "(a passed chaos test)",
            target=_any_target(r, self.targets),
        )

    def judge(self, r: Rule) -> _Judged:
        if not r.applies_to(self.severity):
            return self.not_applicable(r)
        if self.healed_alone and (r.family != CheckFamily.DETECTION or self.tl.first_alert is None):
            return self.self_healed(r)
        special = {
            "mttd": lambda: self.mttd(),
            "roles.ic": lambda: self.roles_ic(r),
            "severity.accuracy": lambda: self.severity_accuracy(r),
            "escalation.p2p3_ticket": lambda: self.ticket(r),
            "oncall.escalate_unresolved": lambda: self.escalate_unresolved(self.spans[r.id]),
            "escalation.p0_executives": lambda: self.executives(r),
            "mttm.p0": lambda: self.mttm(self.spans[r.id]),
            "mttm.p1": lambda: self.mttm(self.spans[r.id]),
            "comms.status_cadence": lambda: self.status_cadence(r),
            "comms.required": lambda: self.comms_required(r),
            "comms.fields": lambda: self.comms_fields(r),
            "discipline.evidence": lambda: self.evidence(r),
            "discipline.changes_documented": lambda: self.changes_documented(r),
            "discipline.no_deleted_logs": lambda: self.no_deleted_logs(r),
            "resolution.healthy": lambda: self.resolution_healthy(r),
        }
        if r.id in special:
            return special[r.id]()
        return self.timed(self.spans[r.id])


_ACK_RULES = frozenset(
    {
        "mtta.p0",
        "mtta.p1",
        "escalation.p0_ack",
        "escalation.p1_ack",
        "response_time",
        "oncall.respond_p0_p1",
        "oncall.ack_all",
    }
)


def _any_target(r: Rule, targets: SlaTargets) -> timedelta | None:
    """The target an n/a rule would have had (shown so both readings of the seed are visible)."""
    if r.target is None:
        return None
    sev = min(r.severities, key=lambda s: s.rank)
    return r.target_for(sev, targets)


def scenario_overrides(started: DrillStarted) -> SlaOverrides:
    """The scenario's ``sla:`` block as the journal recorded it, validated."""
    try:
        return SlaOverrides.model_validate(started.sla_overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"sla_overrides.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise JournalError(
            f"drill.started has invalid SLA overrides: {problems}",
            hint="names are those of `drill schema policy` (e.g. mtta_p0), values durations like '5m'",
        ) from e


def score(events: Sequence[Event], policy: Policy | None = None) -> Scorecard:
    """Judge a drill's journal against the seed's rules (with ``policy`` and the scenario's overrides)."""
    policy = policy or Policy()
    tl = build(events)
    started = tl.started
    if started is None:
        raise JournalError(
            "the journal has no drill.started event, so there is no scenario to score against",
            hint="score a journal written by `drill run`, or add a drill.started line (see docs/journal.md)",
        )
    targets = policy.targets(scenario_overrides(started))
    scorer = _Scorer(tl, started, targets)
    judged = [scorer.judge(r) for r in RULES]
    checks = [j.check for j in judged]

    weights: dict[str, float] = {f.value: float(getattr(policy.weights, f.value)) for f in CheckFamily}
    family_scores: dict[str, float] = {}
    counted: dict[CheckFamily, int] = {}
    for family in CheckFamily:
        in_family = [c for c in checks if c.family == family and c.status in (PASS, FAIL)]
        if in_family:
            counted[family] = len(in_family)
            family_scores[family.value] = round(
                100 * sum(c.status == PASS for c in in_family) / len(in_family), 1
            )
    total_weight = sum(weights[f.value] for f in counted)
    base = (
        sum(weights[f.value] * family_scores[f.value] for f in counted) / total_weight
        if total_weight
        else 0.0
    )
    hints = _hints(tl)
    hint_cost = sum(h.cost for h in hints)
    value = round(min(100.0, max(0.0, base - min(hint_cost, HINT_COST_CAP))), 1)

    failed = [c for c in checks if c.status == FAIL]
    core_failed = [c for c in failed if c.id in CORE[scorer.severity]]

    def weight(c: Check) -> float:
        return weights[c.family.value] / counted[c.family]

    by_importance = sorted(failed, key=lambda c: (-weight(c), RULE_ORDER[c.id]))
    finding_of = {j.check.id: j.finding for j in judged}
    findings = [finding_of[c.id] for c in by_importance if finding_of[c.id]]
    findings.extend(_observations(scorer, {c.id: c for c in checks}, hints, hint_cost))
    improve_next = None
    if by_importance:
        top = by_importance[0]
        improve_next = f"{top.id}: {finding_of[top.id] or top.detail}"

    declared = tl.severity_final.severity if tl.severity_final else None
    return Scorecard(
        drill_id=started.drill_id,
        scenario_id=started.scenario_id,
        scenario_title=started.scenario_title,
        category=started.category,
        mode=started.mode.value,
        trainee=started.trainee,
        is_drill=started.is_drill,
        started=started.at,
        true_severity=started.true_severity,
        declared_severity=declared,
        severity_correct=declared == started.true_severity,
        clocks=tl.clocks(),
        checks=checks,
        outcome=tl.ended.outcome.value if tl.ended else "",
        hints_used=len(hints),
        hint_cost=hint_cost,
        score=value,
        grade=grade(value, policy),
        passed=value >= policy.pass_score and not core_failed,
        family_scores=family_scores,
        findings=findings,
        improve_next=improve_next,
        actions=[_action(a) for a in tl.actions],
    )


def grade(value: float, policy: Policy) -> str:
    """The letter whose lowest score ``value`` reaches; below every threshold, F."""
    for letter, lowest in sorted(policy.grades.items(), key=lambda kv: (-kv[1], kv[0])):
        if value >= lowest:
            return letter
    return "F"


def _hints(tl: Timeline) -> list[HintUsed]:
    """Each hint once (asking twice for the same hint costs once)."""
    seen: dict[int, HintUsed] = {}
    for e in tl.events:
        if isinstance(e, HintUsed) and e.index not in seen:
            seen[e.index] = e
    return list(seen.values())


def _observations(
    scorer: _Scorer, checks: dict[str, Check], hints: list[HintUsed], hint_cost: int
) -> list[str]:
    """Facts worth a debrief line that are not a failed check."""
    tl = scorer.tl
    out: list[str] = []
    if tl.first_alert is None and tl.t0 is not None and checks["mttd"].status != FAIL:
        out.append("No alert fired before the journal ended; monitoring may not cover this failure mode.")
    if tl.mitigated_by == "system":
        if scorer.revert_before_recovery():
            out.append(
                f"Health came back {scorer.recovery_when()}, only after drills reverted the fault: the "
                "responders' changes had not restored service by then."
            )
        else:
            out.append(
                f"The service recovered by itself {scorer.recovery_words()}: self-healing worked, and "
                "this drill did not exercise a human mitigation."
            )
    if tl.reopens:
        out.append(
            f"The incident reopened {tl.reopens} time(s) after it was mitigated or resolved: the first fix "
            "did not hold. The first mitigation and the final resolution are both kept."
        )
    alert = tl.first_alert
    if alert is not None and alert.received_at is not None and alert.received_at - alert.at > SLOW_DELIVERY:
        out.append(
            f"The alert took {fmt(alert.received_at - alert.at)} from firing to reaching drills; the "
            "notification path may be slow."
        )
    if hints:
        capped = f", capped at {HINT_COST_CAP}" if hint_cost > HINT_COST_CAP else ""
        out.append(f"{len(hints)} hint(s) were used, costing {min(hint_cost, HINT_COST_CAP)} points{capped}.")
    paused = tl.clocks().paused
    if paused > ZERO:
        out.append(f"The drill was paused for {fmt(paused)}; paused time is left out of every SLA.")
    return out


def _action(a: ActionObserved) -> dict[str, object]:
    return {
        "at": a.at.isoformat(),
        "kind": a.kind.value,
        "actor": a.actor,
        "actor_kind": a.actor_kind.value,
        "object": a.object,
        "detail": a.detail,
        "destructive": a.destructive or a.kind in DESTRUCTIVE_KINDS,
    }
