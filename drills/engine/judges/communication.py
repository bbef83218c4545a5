"""Communication: the initial alert posted immediately, status updates every 15-30 minutes, every message the
severity requires, and the templates' fields filled (seed lines 191-212).

Every comms clock starts when the response did (:attr:`Timeline.response_start`: the acknowledgement, never
before the alert it answers; else the alert, human detection or T0), so acknowledging or detecting more never
makes a message late."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from drills.engine.judges._base import FAIL, PASS, Drill, Judged, fmt, judge
from drills.engine.rules import Rule
from drills.engine.timeline import PEOPLE_SOURCES, UPDATE_TEMPLATES
from drills.model.severity import Severity

#: Messages each severity requires (decided in docs/scoring.md): internal ones for every severity (the
#: seed's initial alert is written for P[0-3]), the status page and the customer email for P0 only.
EXTERNAL_P0 = ("statuspage_investigating", "statuspage_resolved", "customer_email")

_UNKNOWN = "nobody knew of the incident and the journal has no fault.injected to time it from"


def _close(d: Drill) -> datetime | None:
    return d.tl.resolved.at if d.tl.resolved else d.end


def open_for(d: Drill) -> timedelta | None:
    start, close = d.tl.response_start, _close(d)
    if start is None or close is None:
        return None
    return d.tl.active(start, close)


@judge("comms.initial_alert")
def initial_alert(d: Drill, r: Rule) -> Judged:
    if d.tl.response_start is None:
        return d.unmeasured(r, _UNKNOWN)
    return d.timed(
        r,
        never="no initial alert was posted",
        label="The initial alert",
        why="a prefilled initial-alert template at hand may make posting immediate",
    )


@judge("comms.status_cadence")
def status_cadence(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    start, close = tl.response_start, _close(d)
    most, aim = d.targets.status_update_max, d.targets.status_update_target
    if start is None or close is None:
        return d.unmeasured(r, _UNKNOWN)
    opened = tl.active(start, close)
    if opened <= aim:
        if not d.ended and tl.resolved is None:
            return d.pending(r, f"open {fmt(opened)}: no status update was due yet")
        # Short incidents pass: no gap reached the aim, so nothing was late.
        return d.check(
            r,
            PASS,
            f"open {fmt(opened)}, within the {fmt(aim)} aim: no status update was due",
            measured=opened,
        )
    posts = sorted(c.at for c in tl.comms if c.template in UPDATE_TEMPLATES and start < c.at <= close)
    points = [start, *posts, close]
    gap = max(tl.active(a, b) for a, b in pairwise(points))
    aim_words = f"the {fmt(aim)} aim was {'met' if gap <= aim else 'missed'}"
    detail = f"{len(posts)} update(s) in {fmt(opened)} open; longest gap {fmt(gap)}; {aim_words}"
    if gap <= most:
        return d.check(r, PASS, detail, measured=gap)
    return d.check(
        r,
        FAIL,
        detail,
        measured=gap,
        finding=(
            f"The longest stretch without a status update was {fmt(gap)} (the seed asks for one every "
            f"{fmt(aim)}-{fmt(most)}); a timer prompt for the comms lead may help."
        ),
    )


def required_templates(d: Drill) -> list[str]:
    need = ["initial_alert"]
    opened = open_for(d)
    if opened is not None and opened > d.targets.status_update_target:
        need.append("status_update")
    resolved = d.tl.resolved is not None
    if resolved:
        need.append("resolution")
    if d.severity == Severity.P0:
        need.append("statuspage_investigating")
        if resolved:
            need.extend(("statuspage_resolved", "customer_email"))
    return need


@judge("comms.required")
def comms_required(d: Drill, r: Rule) -> Judged:
    if d.tl.response_start is None:
        return d.unmeasured(r, _UNKNOWN)
    need = required_templates(d)
    posted = {c.template for c in d.tl.comms if c.source in PEOPLE_SOURCES}
    missing = [t for t in need if t not in posted]
    detail = f"required for {d.severity.value}: {', '.join(need)}"
    if not missing:
        return d.check(r, PASS, detail + "; all posted")
    if not d.ended and d.tl.resolved is None:
        return d.pending(r, detail + f"; not posted yet: {', '.join(missing)}")
    return d.not_done(
        r,
        f"{', '.join(missing)} never posted ({detail})",
        f"These messages were not sent: {', '.join(missing)}; a {d.severity.value} comms checklist with the "
        "seed's templates prefilled may help.",
    )


@judge("comms.fields")
def comms_fields(d: Drill, r: Rule) -> Judged:
    posts = [c for c in d.tl.comms if c.source in PEOPLE_SOURCES]
    if not posts:
        return d.na(r, "no message was posted, so no field could be left empty (comms.required judges that)")
    gaps = [c for c in posts if c.missing_fields]
    if not gaps:
        return d.check(r, PASS, f"{len(posts)} message(s), every required field filled")
    listed = "; ".join(f"{c.template}: {', '.join(c.missing_fields)}" for c in gaps)
    return d.check(
        r,
        FAIL,
        f"{len(gaps)} of {len(posts)} message(s) left fields empty ({listed})",
        finding=(
            f"Some messages went out with required fields empty ({listed}); prefilling what the drill "
            "already knows may leave less to type."
        ),
    )
