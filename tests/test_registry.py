"""The one plugin registry (``drills.registry``) behind fault kinds, detectors and pagers: built-ins from
drills' own entry points, plugins registered at run time or by entry point, unknown names and duplicates
refused with errors that say what is known."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from drills import registry
from drills.errors import FaultError, UsageError
from drills.registry import Registry, callable_factory
from drills.runner.detector import DETECTORS, HealthProbeDetector, make_detector, register_detector
from drills.runner.pager import PAGERS, Page, PageReceipt, make_pager, register_pager


class _CountingPager:
    """A third party's pager: counts what it was asked to deliver."""

    name = "counting"

    def __init__(self, **_: Any) -> None:
        self.pages: list[Page] = []

    def page(self, page: Page) -> PageReceipt:
        self.pages.append(page)
        return PageReceipt(channel=self.name)


def _not_a_pager() -> None:
    return None


NOT_CALLABLE = 42


@pytest.fixture
def counting_pager() -> Iterator[None]:
    register_pager("counting", _CountingPager)
    yield
    PAGERS.unregister("counting")


def test_the_built_ins_come_from_drills_own_entry_points() -> None:
    assert {"health-probe", "none", "monitoring"} <= set(DETECTORS.names())
    assert {"terminal", "memory", "pagerduty", "slack"} <= set(PAGERS.names())
    assert isinstance(make_detector("health-probe"), HealthProbeDetector)
    assert DETECTORS.targets()["monitoring"] == "drills.runner.detection_chain:MonitoringDetector"


def test_a_third_party_pager_registered_at_run_time_is_made_by_name(counting_pager: None) -> None:
    pager = make_pager("counting")
    assert isinstance(pager, _CountingPager)
    assert "counting" in PAGERS.names() and "counting" in PAGERS
    assert PAGERS.targets()["counting"] == f"{__name__}:_CountingPager"


def test_unregistering_forgets_a_run_time_plugin(counting_pager: None) -> None:
    PAGERS.unregister("counting")
    assert "counting" not in PAGERS
    PAGERS.unregister("terminal")  # an entry point: stays
    assert "terminal" in PAGERS


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as e:
        make_pager("pigeon")
    assert "no pager named 'pigeon' (known: memory, pagerduty, slack, terminal" in e.value.message
    assert "drills.pagers" in (e.value.hint or "")
    with pytest.raises(UsageError, match=r"no detector named 'psychic' \(known: health-probe, monitoring, "):
        make_detector("psychic")


def test_a_duplicate_name_is_refused_unless_replaced_on_purpose(counting_pager: None) -> None:
    with pytest.raises(UsageError, match="a pager named 'counting' is already registered"):
        register_pager("counting", _CountingPager)
    with pytest.raises(UsageError, match="a detector named 'health-probe' is already registered"):
        register_detector("health-probe", HealthProbeDetector)
    register_pager("counting", _CountingPager, replace=True)  # deliberate: allowed
    assert isinstance(make_pager("counting"), _CountingPager)


def test_replacing_a_built_in_on_purpose_then_unregistering_brings_the_built_in_back() -> None:
    register_pager("memory", _CountingPager, replace=True)
    try:
        assert isinstance(make_pager("memory"), _CountingPager)
        assert PAGERS.targets()["memory"] == f"{__name__}:_CountingPager"
    finally:
        PAGERS.unregister("memory")
    assert PAGERS.targets()["memory"] == "drills.runner.pager:RecordingPager"
    assert type(make_pager("memory")).__name__ == "RecordingPager"


def _fresh(group: str, *eps: EntryPoint, monkeypatch: pytest.MonkeyPatch) -> Registry[Any]:
    monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in eps if e.group == group])
    return Registry("widget", group, callable_factory)


def test_a_plugin_by_entry_point_is_loaded_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    good = EntryPoint("counting", f"{__name__}:_CountingPager", "drills.widgets")
    broken = EntryPoint("broken", "drills.no_such_module:Thing", "drills.widgets")
    widgets = _fresh("drills.widgets", good, broken, monkeypatch=monkeypatch)
    assert widgets.names() == ["broken", "counting"]  # listed, not imported
    assert widgets.get("counting") is _CountingPager
    with pytest.raises(UsageError, match=r"widget 'broken' \(drills.no_such_module:Thing\) cannot be loaded"):
        widgets.get("broken")


def test_an_entry_point_that_is_not_a_factory_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint("answer", f"{__name__}:NOT_CALLABLE", "drills.widgets")
    widgets = _fresh("drills.widgets", ep, monkeypatch=monkeypatch)
    with pytest.raises(UsageError, match=r"widget 'answer' .* cannot be loaded: 42 is not callable"):
        widgets.get("answer")


def test_of_two_plugin_entry_points_with_one_name_the_first_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    first = EntryPoint("counting", f"{__name__}:_CountingPager", "drills.widgets")
    second = EntryPoint("counting", f"{__name__}:_not_a_pager", "drills.widgets")
    widgets = _fresh("drills.widgets", first, second, monkeypatch=monkeypatch)
    assert widgets.get("counting") is _CountingPager


def test_a_registered_name_cannot_take_an_entry_points_name(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint("counting", f"{__name__}:_CountingPager", "drills.widgets")
    widgets = _fresh("drills.widgets", ep, monkeypatch=monkeypatch)
    with pytest.raises(UsageError, match="already registered"):
        widgets.register("counting", _not_a_pager)


def test_fault_kinds_use_the_same_registry_with_fault_errors() -> None:
    from drills.adapters.faults import INJECTORS

    assert {"pod-kill", "bad-deploy", "chaostoolkit"} <= set(INJECTORS.names())
    assert {ep.name for ep in entry_points(group="drills.faults")} <= set(INJECTORS.names())
    with pytest.raises(FaultError, match=r"no fault injector named 'meteor' \(known: bad-deploy, "):
        INJECTORS.get("meteor")
