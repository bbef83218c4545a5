"""Acknowledgement: the page answered in time, under every reading the seed gives (lines 60, 340, 347, 402,
454, 455). Only people acknowledge; with no acknowledgement at all every reading fails once the drill ends."""

from __future__ import annotations

from drills.engine.judges._base import Drill, Judged, judge
from drills.engine.rules import Rule

_LABEL = {
    "mtta.p0": "Acknowledgement",
    "mtta.p1": "Acknowledgement",
    "escalation.p0_ack": "Acknowledgement (P0 escalation step 2)",
    "escalation.p1_ack": "Acknowledgement (P1 escalation step 2)",
    "response_time": "The first response",
    "oncall.respond_p0_p1": "The first response (on-call duty)",
    "oncall.ack_all": "Acknowledgement (on-call duty)",
}


@judge(*_LABEL)
def acknowledged(d: Drill, r: Rule) -> Judged:
    return d.timed(
        r,
        never="nobody acknowledged the page",
        label=_LABEL[r.id],
        why="the page may not have reached the responder quickly",
    )
