"""Mitigation: impact reduced in under 15 minutes (P0) or 1 hour (P1), *from the acknowledgement* (seed line
407: "Impact reduced - Alert acknowledged"). No acknowledgement, no MTTM: the check fails rather than being
timed from something else."""

from __future__ import annotations

from drills.engine.judges._base import Drill, Judged, fmt, judge
from drills.engine.rules import Rule
from drills.model.events import FaultReverted, Source


def revert_before_recovery(d: Drill) -> bool:
    tl = d.tl
    return tl.mitigated is not None and any(
        isinstance(e, FaultReverted) and e.source == Source.SYSTEM and e.at <= tl.mitigated for e in tl.events
    )


def recovery_when(d: Drill) -> str:
    tl = d.tl
    if tl.mitigated is None or tl.t0 is None:
        return "during the drill"
    return f"{fmt(tl.active(tl.t0, tl.mitigated))} after the fault"


def recovery_words(d: Drill) -> str:
    cause = (
        "after drills reverted the fault"
        if revert_before_recovery(d)
        else "before any change by the responders"
    )
    return f"{recovery_when(d)}, {cause}"


@judge("mttm.p0", "mttm.p1")
def mttm(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    if tl.mitigated_by == "system":
        return d.na(
            r, f"health came back by itself {recovery_words(d)}; no human time to mitigate is claimed"
        )
    if tl.acknowledged is None:
        healed = f"; health came back {recovery_when(d)}" if tl.mitigated is not None else ""
        words = (
            "no MTTM: nobody acknowledged the page, and the seed measures MTTM from the acknowledgement "
            f"(impact reduced - alert acknowledged){healed}"
        )
        if not d.ended:
            return d.pending(r, words)
        return d.not_done(
            r,
            words,
            "Impact was never measured against an acknowledgement, because nobody acknowledged the page; "
            "the paging path may not reach the responder.",
        )
    return d.timed(
        r,
        never=(
            f"impact was never reduced (users affected never stayed under {tl.impact_threshold_pct:g} % for "
            "the exit window)"
            if tl.impact and tl.health_mitigated != tl.mitigated
            else "impact was never reduced (no healthy period lasted the exit window)"
        ),
        label="Mitigation",
        why="the runbook may lack a quick mitigation for this failure",
    )
