"""Detection: did monitoring see the fault in under 5 minutes (seed line 398)?"""

from __future__ import annotations

from drills.engine.judges._base import Drill, Judged, fmt, judge
from drills.engine.rules import Rule


@judge("mttd")
def mttd(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    s = d.spans[r.id]
    if tl.first_alert is not None or s.start is None:
        return d.timed(
            r,
            never="no alert fired",
            label="Detection",
            why="the alert rule may need a shorter `for:` or a signal closer to what users see",
        )
    human = (
        f"a person detected it {fmt(tl.active(s.start, tl.human_detected.at))} after the fault"
        if tl.human_detected is not None
        else "nobody detected it"
    )
    finding = (
        f"No alert fired for this fault; {human}. Monitoring may not cover this failure mode: an alert "
        "rule for it would close the gap."
    )
    used = d.used(s.start)
    if d.ended:
        return d.not_done(
            r,
            f"no alert fired (detection gap); {human}; the drill ended {fmt(used)} after the fault",
            finding,
        )
    if r.met(used, s.target):
        return d.pending(r, f"no alert so far; {human}; {fmt(used)} after the fault")
    return d.not_done(
        r,
        f"no alert fired by {fmt(used)} after the fault (detection gap): {d.asks(r, s.target)}; {human}",
        finding,
    )
