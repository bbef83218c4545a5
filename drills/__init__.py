"""drills: chaos drills and incident-response rehearsal on Kubernetes.

The public surface, for teams that script drills (CI jobs, the monthly chaos test, their own tooling)::

    from drills import DrillOptions, ResponderOptions, run_drill
    result = run_drill("bad-deploy-rollback", DrillOptions(responder=ResponderOptions("bot:good")))
    print(result.scorecard.score, result.reports.html)

Everything listed in ``__all__`` is kept stable across minor versions; anything else is internal. Names are
loaded on first use, so ``import drills`` stays cheap for the responder commands typed during a drill.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from drills.errors import (
    ClusterError,
    DrillError,
    EnvironmentProblem,
    FaultError,
    JournalError,
    NoActiveDrill,
    SafetyError,
    ScenarioError,
    UsageError,
)

if TYPE_CHECKING:
    from drills.adapters.files.scenarios import load_scenario
    from drills.adapters.store.journal import Journal, read_journal
    from drills.engine.scoring import score
    from drills.model.events import Event, Mode, Outcome
    from drills.model.policy import Policy
    from drills.model.responder import ResponderProfile
    from drills.model.scenario import Scenario
    from drills.model.scorecard import Check, CheckStatus, Scorecard
    from drills.model.severity import Severity
    from drills.runner.detector import Detector, register_detector
    from drills.runner.options import (
        ClusterTarget,
        DetectionOptions,
        DrillOptions,
        ReportingOptions,
        ResponderOptions,
    )
    from drills.runner.pager import Pager, register_pager
    from drills.runner.run import DrillResult, run_drill

try:
    __version__ = version("drills")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

_LAZY: dict[str, str] = {
    "run_drill": "drills.runner.run",
    "DrillResult": "drills.runner.run",
    "ClusterTarget": "drills.runner.options",
    "DetectionOptions": "drills.runner.options",
    "DrillOptions": "drills.runner.options",
    "ReportingOptions": "drills.runner.options",
    "ResponderOptions": "drills.runner.options",
    "Scenario": "drills.model.scenario",
    "load_scenario": "drills.adapters.files.scenarios",
    "Policy": "drills.model.policy",
    "Scorecard": "drills.model.scorecard",
    "Check": "drills.model.scorecard",
    "CheckStatus": "drills.model.scorecard",
    "score": "drills.engine.scoring",
    "Event": "drills.model.events",
    "Mode": "drills.model.events",
    "Outcome": "drills.model.events",
    "Severity": "drills.model.severity",
    "Journal": "drills.adapters.store.journal",
    "read_journal": "drills.adapters.store.journal",
    "ResponderProfile": "drills.model.responder",
    "Pager": "drills.runner.pager",
    "register_pager": "drills.runner.pager",
    "Detector": "drills.runner.detector",
    "register_detector": "drills.runner.detector",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'drills' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Check",
    "CheckStatus",
    "ClusterError",
    "ClusterTarget",
    "DetectionOptions",
    "Detector",
    "DrillError",
    "DrillOptions",
    "DrillResult",
    "EnvironmentProblem",
    "Event",
    "FaultError",
    "Journal",
    "JournalError",
    "Mode",
    "NoActiveDrill",
    "Outcome",
    "Pager",
    "Policy",
    "ReportingOptions",
    "ResponderOptions",
    "ResponderProfile",
    "SafetyError",
    "Scenario",
    "ScenarioError",
    "Scorecard",
    "Severity",
    "UsageError",
    "__version__",
    "load_scenario",
    "read_journal",
    "register_detector",
    "register_pager",
    "run_drill",
    "score",
]
