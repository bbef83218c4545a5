"""The judges of the scorecard, one module per check family, each registered by rule id.

:data:`JUDGES` maps every rule id of :data:`drills.engine.rules.RULES` to the one function that judges it;
``drills.engine.scoring.score`` runs them and turns the checks into a score. Importing this package imports
every family, so the registry is complete once it is imported.
"""

from __future__ import annotations

from drills.engine.judges import (  # noqa: F401  (importing a family registers its judges)
    acknowledgement,
    communication,
    detection,
    discipline,
    escalation,
    mitigation,
    postmortem,
    resolution,
    triage,
)
from drills.engine.judges._base import JUDGES, Drill, Judge, Judged, any_target, fmt, judge

__all__ = ["JUDGES", "Drill", "Judge", "Judged", "any_target", "fmt", "judge"]
