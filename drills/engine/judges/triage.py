"""Triage: severity declared by the matrix and an incident commander assigned by minute 15 (lines 26-54)."""

from __future__ import annotations

from drills.engine.judges._base import FAIL, PASS, Drill, Judged, fmt, judge
from drills.engine.rules import Rule


@judge("triage.within")
def triage_within(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    missing = [
        what
        for what, done in (
            ("no severity was declared", tl.severity_first is not None),
            ("no incident commander was assigned", tl.ic_assigned is not None),
        )
        if not done
    ]
    return d.timed(
        r,
        never=" and ".join(missing) or "triage was not completed",
        label="Triage (severity and incident commander)",
        why="the severity matrix and the incident-commander hand-off may need to be easier to reach",
    )


def _overdue(d: Drill) -> bool:
    """Missing it is a failure: the drill has ended, or the triage budget has run out (live)."""
    start = d.tl.t0 or d.tl.origin
    return d.ended or (start is not None and d.used(start) > d.targets.triage)


@judge("roles.ic")
def roles_ic(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    if tl.ic_assigned is not None:
        ic = tl.ic_assigned
        when = f" {fmt(tl.active(tl.t0, ic.at))} after the fault" if tl.t0 else ""
        return d.check(r, PASS, f"an incident commander was assigned{when}")
    if _overdue(d):
        return d.not_done(
            r,
            "no incident commander was ever assigned",
            "No incident commander was assigned; the seed's default (the first senior engineer to "
            "acknowledge, line 169) could be made automatic in the paging tool.",
        )
    return d.pending(r, "no incident commander assigned")


@judge("severity.accuracy")
def severity_accuracy(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    # What users saw decides when it was measured; the declared impact is then a check on the scenario.
    true = d.measured_severity or d.severity
    truth = "measured" if d.measured_severity is not None else "true"
    if tl.severity_final is None:
        if _overdue(d):
            return d.not_done(
                r,
                f"no severity was ever declared ({truth} severity {true.value})",
                f"No severity was declared for a {true.value} incident; the severity matrix (line 54) may "
                "need to be part of the first steps.",
            )
        return d.pending(r, "no severity declared")
    declared = tl.severity_final.severity
    changed = ""
    if tl.severity_first is not None and tl.severity_first.severity != declared:
        changed = f" (first declared {tl.severity_first.severity.value}, revised)"
    if declared == true:
        return d.check(
            r, PASS, f"declared {declared.value}{changed}, {truth} {true.value}{_measured_words(d)}"
        )
    direction = "under" if declared.rank > true.rank else "over"
    levels = abs(declared.rank - true.rank)
    return d.check(
        r,
        FAIL,
        f"declared {declared.value}{changed}, {truth} {true.value}{_measured_words(d)}: {direction}-declared "
        f"by {levels} level{'s' if levels > 1 else ''}",
        finding=(
            f"The incident was declared {declared.value} but its impact made it {true.value}; the severity "
            "matrix may be hard to apply under pressure (a short decision aid could help)."
        ),
    )


def _measured_words(d: Drill) -> str:
    m = d.measured
    if m is None:
        return ""
    status = m.worst_status.value if m.worst_status is not None else "ok"
    return f" (peak {m.peak_users_affected_pct:.1f} % of users affected, {status})"
