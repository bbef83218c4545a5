"""Postmortem: within 48 hours of the resolution, required for P0 and P1 (line 146).

The postmortem comes after the drill, so it is judged against the journal's last line (a
``postmortem.completed`` appended later counts), not the drill's end. The retrospective drills writes is not
the team's postmortem."""

from __future__ import annotations

from drills.engine.judges._base import FAIL, PASS, Drill, Judged, fmt, judge
from drills.engine.rules import Rule


@judge("postmortem.within_48h")
def postmortem(d: Drill, r: Rule) -> Judged:
    tl = d.tl
    s = d.spans[r.id]
    if s.start is None:
        if d.ended:
            return d.na(r, "the incident was never resolved, so no postmortem was due")
        return d.pending(r, "not resolved, so no postmortem is due")
    asks = d.asks(r, s.target)
    if s.stop is not None:
        took = tl.active(s.start, s.stop)
        if r.met(took, s.target):
            return d.check(r, PASS, f"{fmt(took)} after resolution ({asks})", measured=took)
        return d.check(
            r,
            FAIL,
            f"{fmt(took)} after resolution: {asks}",
            measured=took,
            finding=f"The postmortem took {fmt(took)}: {asks}; scheduling it when the incident is resolved may help.",
        )
    used = tl.active(s.start, tl.horizon) if tl.horizon is not None else s.target
    if r.met(used, s.target):
        return d.unmeasured(
            r,
            f"the postmortem is due within {fmt(s.target)} of the resolution and the journal ends {fmt(used)} "
            "after it (append a postmortem.completed line to judge it)",
        )
    return d.not_done(
        r,
        f"no postmortem {fmt(used)} after resolution: {asks}",
        f"No postmortem was recorded {fmt(used)} after resolution ({asks}); scheduling it when the "
        "incident is resolved may help.",
    )
