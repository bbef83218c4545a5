"""The fault registry: every scenario fault kind has an injector, registered the way plugins are, and the
planned changes print as exact API requests."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from drills.adapters import faults
from drills.adapters.faults.base import PlannedChange, count_for, injector_class, pod_trouble
from drills.errors import FaultError
from drills.model.scenario import FAULT_KINDS

ROOT = Path(__file__).resolve().parents[1]


def test_every_fault_kind_has_an_injector() -> None:
    known = faults.registered()
    for kind in FAULT_KINDS:
        if kind == "plugin":
            continue
        cls = injector_class(kind)
        assert cls.kind == kind and cls.summary, kind
        assert kind in known


@pytest.mark.parametrize("group", ["drills.faults", "drills.detectors", "drills.pagers"])
def test_the_installed_entry_points_are_pyprojects(group: str) -> None:
    # The built-ins are registered only there: a stale install would lose them (`pip install -e .` again).
    from importlib.metadata import entry_points

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = {
        ep.name: ep.value
        for ep in entry_points(group=group)
        if ep.dist is not None and ep.dist.name == "drills"
    }
    assert installed == project["entry-points"][group]


def test_unknown_injector_names_the_known_ones() -> None:
    with pytest.raises(FaultError, match=r"no fault injector named 'nope' \(known: bad-deploy, "):
        injector_class("nope")


def test_planned_change_request_lines() -> None:
    patch = PlannedChange("PATCH", "Deployment", "production", "app", "roll out", {"spec": {}}, "strategic")
    assert (
        patch.request_line() == "PATCH /apis/apps/v1/namespaces/production/deployments/app (strategic patch)"
    )
    assert PlannedChange("DELETE", "Namespace", None, "production", "x").request_line() == (
        "DELETE /api/v1/namespaces/production"
    )
    assert PlannedChange("EVICT", "Pod", "production", "p", "x").request_line() == (
        "POST /api/v1/namespaces/production/pods/p/eviction"
    )
    assert PlannedChange("CREATE", "PodDisruptionBudget", "production", "g", "x").request_line() == (
        "POST /apis/policy/v1/namespaces/production/poddisruptionbudgets"
    )
    assert patch.to_dict()["object"] == "Deployment/production/app"


@pytest.mark.parametrize(
    ("total", "count", "percent", "expected"),
    [
        (3, 1, None, 1),
        (3, 5, None, 3),
        (3, None, 10, 1),
        (10, None, 50, 5),
        (0, None, 50, 0),
        (4, None, None, 4),
    ],
)
def test_count_or_percent(total: int, count: int | None, percent: float | None, expected: int) -> None:
    assert count_for(total, count=count, percent=percent) == expected


def test_pod_trouble_words() -> None:
    pending = {"status": {"phase": "Pending"}}
    assert pod_trouble(pending) is None  # still starting
    pulling = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}, "restartCount": 0}],
        }
    }
    assert pod_trouble(pulling) == "ImagePullBackOff (restarts 0)"
    unready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}
    assert pod_trouble(unready) == "not ready"


class _QuietFault(faults.Injector):
    """A plugin fault for the test below: changes nothing."""

    kind = "quiet"
    summary = "a plugin that changes nothing"

    @property
    def target(self) -> str:
        return "nothing"

    def _plan(self):  # type: ignore[no-untyped-def]
        from drills.engine.safety import BlastRadius

        return [], BlastRadius(), [{"op": "none", "why": "quiet"}]

    def effect(self) -> str | None:
        return "quiet"


def test_a_plugin_fault_comes_from_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint, entry_points

    from drills import registry
    from drills.adapters.faults.base import INJECTORS, FaultContext, make_injector
    from drills.model.revert import Nothing
    from drills.model.scenario import PluginFault

    real = list(entry_points(group="drills.faults"))
    ep = EntryPoint(name="quiet", value=f"{__name__}:_QuietFault", group="drills.faults")
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [*real, ep] if group == "drills.faults" else []
    )
    INJECTORS.reload()
    try:
        assert faults.registered()["quiet"] == f"{__name__}:_QuietFault"
        fault = PluginFault(kind="plugin", name="quiet")
        injector = make_injector(fault, FaultContext(scenario=None, kube=None))  # type: ignore[arg-type]
        assert isinstance(injector, _QuietFault)
        assert injector.plan() == [] and injector.revert_ops() == [Nothing(why="quiet")]
        # a plugin cannot shadow a built-in, whichever comes first
        bad = EntryPoint(name="pod-kill", value=f"{__name__}:_QuietFault", group="drills.faults")
        monkeypatch.setattr(registry, "entry_points", lambda group: [bad, *real])
        INJECTORS.reload()
        assert faults.registered()["pod-kill"] == "drills.adapters.faults.pods:PodKill"
    finally:
        monkeypatch.undo()
        INJECTORS.reload()
