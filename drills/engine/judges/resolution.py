"""Resolution: resolved in under 1 hour (P0) or 4 hours (P1) from the fault (line 410), and only while the
service was healthy ("verify incident is resolved", line 118)."""

from __future__ import annotations

from drills.engine.judges._base import FAIL, PASS, Drill, Judged, judge
from drills.engine.rules import Rule


@judge("mttr.p0", "mttr.p1")
def mttr(d: Drill, r: Rule) -> Judged:
    return d.timed(
        r,
        never="the incident was never resolved",
        label="Resolution",
        why="the path from mitigation to a verified fix may need its own runbook",
    )


@judge("resolution.healthy")
def resolution_healthy(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    if tl.resolved is None:
        if d.ended:
            return d.not_done(
                r,
                "the incident was never resolved, so its recovery was never verified",
                "The drill ended with the incident unresolved; an exit check (the scenario's steady state) "
                "may make it clearer when the incident can be resolved.",
            )
        return d.pending(r, "not resolved")
    if tl.resolved_while_affected:
        assert tl.affected_at_resolve is not None
        return d.check(
            r,
            FAIL,
            f"resolved while {tl.affected_at_resolve:.1f} % of users were still affected (impact is reduced "
            f"under {tl.impact_threshold_pct:g} %)",
            finding=(
                f"The incident was marked resolved while {tl.affected_at_resolve:.1f} % of users were still "
                "affected; the users-affected panel (`drill impact`) before resolving would have shown it."
            ),
        )
    if tl.health_at_resolve is None:
        return d.unmeasured(
            r, "health at resolution is unknown (no health observations, and the resolver did not say)"
        )
    if tl.health_at_resolve:
        return d.check(r, PASS, "the service was healthy when the incident was resolved")
    return d.check(
        r,
        FAIL,
        "resolved while the service was unhealthy",
        finding=(
            "The incident was marked resolved while the service was still unhealthy; an exit check (the "
            "scenario's steady state) before resolving may help."
        ),
    )
