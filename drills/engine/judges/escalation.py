"""Escalation: who had to be told, and when (seed lines 338-354 and the on-call duty of line 456).

Leadership clocks start at the page (the alert; else human detection; else the fault). An escalation before
the fault is not about this incident (the timeline drops it)."""

from __future__ import annotations

from drills.engine.judges._base import FAIL, PASS, Drill, Judged, fmt, judge
from drills.engine.rules import Rule
from drills.engine.timeline import EXECUTIVES, escalation_rank
from drills.model.events import TicketCreated

_WHY = "the escalation step may not stand out enough in the runbook"


@judge("escalation.p0_leadership")
def p0_leadership(d: Drill, r: Rule) -> Judged:
    return d.timed(
        r,
        never="engineering leadership was never notified",
        label="Notifying engineering leadership",
        why=_WHY,
    )


@judge("escalation.p1_eng_lead")
def p1_eng_lead(d: Drill, r: Rule) -> Judged:
    return d.timed(
        r, never="the engineering lead was never notified", label="Notifying the engineering lead", why=_WHY
    )


@judge("escalation.p2p3_ticket")
def ticket(d: Drill, r: Rule) -> Judged:
    t0 = d.tl.t0 or d.tl.origin
    tickets = [e for e in d.tl.events if isinstance(e, TicketCreated) and (t0 is None or e.at >= t0)]
    if tickets:
        ref = tickets[0].ref or "no reference"
        return d.check(r, PASS, f"ticket created ({ref}); no escalation is required")
    if not d.ended and d.tl.resolved is None:
        return d.pending(r, "no ticket")
    return d.not_done(
        r,
        "no ticket was ever created",
        f"No ticket was created for this {d.severity.value} incident; the issue tracker step (line 352) may "
        "need a shortcut from the alert.",
    )


def _whom(d: Drill) -> str:
    return ", ".join(sorted({e.whom for e in d.tl.escalations}))


@judge("oncall.escalate_unresolved")
def escalate_unresolved(d: Drill, r: Rule) -> Judged:
    s = d.spans[r.id]
    tl = d.tl
    if s.start is None:
        return d.unmeasured(r, "nobody knew of the incident and the journal has no fault.injected")
    src = d.source(r)
    resolved = tl.resolved.at if tl.resolved else None
    escalated = min((e.at for e in tl.escalations), default=None)
    if resolved is not None and r.met(tl.active(s.start, resolved), s.target):
        return d.na(r, f"resolved {fmt(tl.active(s.start, resolved))} after {src}: no escalation was needed")
    if escalated is not None:
        took = tl.active(s.start, escalated)
        if r.met(took, s.target):
            return d.check(r, PASS, f"escalated ({_whom(d)}) {fmt(took)} after {src}", measured=took)
        return d.check(
            r,
            FAIL,
            f"escalated {fmt(took)} after {src}, while still unresolved at {fmt(s.target)}",
            measured=took,
            finding=(
                f"Help was asked for {fmt(took)} into the response, later than the {fmt(s.target)} the on-call "
                "duties set for an unresolved incident; an explicit escalation point in the runbook may help."
            ),
        )
    used = d.used(s.start)
    if r.met(used, s.target):
        if d.ended:
            return d.na(
                r,
                f"the drill ended {fmt(used)} after {src}, before an unresolved incident had to be escalated "
                f"({fmt(s.target)})",
            )
        return d.pending(r, f"unresolved and not escalated; {fmt(used)} after {src}")
    return d.not_done(
        r,
        f"unresolved after {fmt(s.target)} and nobody was brought in ({fmt(used)} after {src})",
        f"The incident was still unresolved {fmt(s.target)} into the response and nobody else was brought in; "
        "the on-call duty to escalate (line 456) may need to be part of the runbook.",
    )


@judge("escalation.p0_executives")
def executives(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    threshold = d.targets.p0_notify_executives_after
    target = threshold + d.targets.p0_notify_leadership
    if tl.t0 is None or d.end is None:
        return d.unmeasured(r, "no fault.injected in the journal, so the impact is unknown", target=target)
    impact_end = tl.mitigated or (tl.resolved.at if tl.resolved else None) or d.end
    impact = tl.active(tl.t0, impact_end)
    if impact <= threshold:
        if d.ended or tl.mitigated or tl.resolved:
            return d.na(r, f"impact lasted {fmt(impact)}, not over {fmt(threshold)}", target=target)
        return d.pending(
            r,
            f"impact {fmt(impact)} so far; executives are due once it passes {fmt(threshold)}",
            target=target,
        )
    told = min((e.at for e in tl.escalations if escalation_rank(e.whom) >= EXECUTIVES), default=None)
    if told is not None:
        took = tl.active(tl.t0, told)
        status = PASS if took <= target else FAIL
        return d.check(
            r,
            status,
            f"impact lasted {fmt(impact)}; executives notified {fmt(took)} after the fault (within {fmt(target)})"
            if status == PASS
            else f"impact lasted {fmt(impact)}; executives notified {fmt(took)} after the fault: the seed asks "
            f"for within {fmt(target)}",
            target=target,
            measured=took,
            finding=(
                f"Executive leadership heard of a P0 lasting {fmt(impact)} only {fmt(took)} after the fault; a "
                "reminder at the one-hour mark may help."
            ),
        )
    used = d.used(tl.t0)
    finding = (
        f"A P0 impact lasted {fmt(impact)} and executive leadership was not notified; a reminder at the "
        "one-hour mark may help."
    )
    if d.ended:
        return d.not_done(
            r, f"impact lasted {fmt(impact)} and executives were never notified", finding, target=target
        )
    if used <= target:
        return d.pending(r, f"impact over {fmt(threshold)}; executives not notified", target=target)
    return d.not_done(
        r, f"impact lasted {fmt(impact)}; executives not notified by {fmt(used)}", finding, target=target
    )
