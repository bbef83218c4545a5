"""The public surface of ``import drills`` is pinned: adding or removing a name is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import drills

PUBLIC = [
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

#: Where each name really lives (a re-export must not become a copy).
HOMES = {
    "run_drill": "drills.runner.run",
    "DrillResult": "drills.runner.run",
    "DrillOptions": "drills.runner.options",
    "Scenario": "drills.model.scenario",
    "load_scenario": "drills.adapters.files.scenarios",
    "Policy": "drills.model.policy",
    "Scorecard": "drills.model.scorecard",
    "score": "drills.engine.scoring",
    "Journal": "drills.adapters.store.journal",
    "read_journal": "drills.adapters.store.journal",
    "ResponderProfile": "drills.model.responder",
    "register_pager": "drills.runner.pager",
    "register_detector": "drills.runner.detector",
    "DrillError": "drills.errors",
    "ScenarioError": "drills.errors",
}


def test_all_is_pinned() -> None:
    assert sorted(drills.__all__) == sorted(PUBLIC)
    assert len(set(drills.__all__)) == len(drills.__all__)


def test_every_public_name_resolves_and_lives_where_it_should() -> None:
    for name in PUBLIC:
        value = getattr(drills, name)
        assert value is not None, name
        if name in HOMES:
            assert value.__module__ == HOMES[name], name
    assert set(PUBLIC) <= set(dir(drills))


def test_unknown_names_raise_attribute_error() -> None:
    try:
        drills.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_drills_stays_cheap() -> None:
    # Responder commands run `import drills` on every keystroke of a drill: the runner, the kubernetes client
    # and rich must not come with it.
    code = "import sys, drills; print(','.join(m for m in ('drills.runner.run', 'kubernetes', 'rich') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
