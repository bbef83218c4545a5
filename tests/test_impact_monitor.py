"""The impact monitor: a sample in the journal when what users see changes, not every second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from test_impact import world

from drills.adapters.files.impact import load_service_graph
from drills.adapters.monitoring.impact_exporter import ImpactMetrics
from drills.engine.impact import ClusterView
from drills.model.events import ImpactSampled
from drills.model.service_graph import ServiceGraphOverride, ServicePatch
from drills.runner.impact import ImpactMonitor

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class Journal:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def append(self, event: Any) -> None:
        self.events.append(event)


def test_samples_are_journaled_when_users_see_a_change() -> None:
    graph = load_service_graph(REPO / "fixtures" / "service-graph.yaml")
    current: dict[str, ClusterView] = {"view": world()}
    journal = Journal()
    metrics = ImpactMetrics("app")
    monitor = ImpactMonitor(graph, lambda: current["view"], journal, T0, metrics=metrics)
    for s in range(10):  # healthy: one sample, then nothing new
        monitor.step(T0 + timedelta(seconds=s))
    assert len(journal.events) == 1
    current["view"] = world(app_ready=False)  # the bad release: everyone affected
    for s in range(10, 20):
        monitor.step(T0 + timedelta(seconds=s))
    assert len(journal.events) == 2
    down = journal.events[-1]
    assert isinstance(down, ImpactSampled)
    assert down.at == T0 + timedelta(seconds=10)
    assert down.status == "down" and down.users_affected_pct > 99
    assert down.features_down == ["browse", "cart", "checkout"]
    assert down.errors == {"503": int(down.failed_per_second)}
    current["view"] = world()  # rolled back
    monitor.step(T0 + timedelta(seconds=20))
    assert journal.events[-1].status == "ok" and journal.events[-1].users_affected_pct < 1


def test_the_clock_thread_ticks_once_a_second_on_the_fake_clock() -> None:
    from drills.timing import FakeClock

    graph = load_service_graph(REPO / "fixtures" / "service-graph.yaml")
    clock = FakeClock(T0)
    journal = Journal()
    ticks: list[datetime] = []
    monitor = ImpactMonitor(graph, world, journal, T0, clock=clock, pacing=clock)
    original = monitor.step

    def counting(now: datetime) -> Any:
        ticks.append(now)
        if len(ticks) >= 3:
            monitor._stop.set()
        return original(now)

    monitor.step = counting  # type: ignore[method-assign]
    monitor._wait = clock.sleep  # type: ignore[method-assign]
    monitor._run()
    assert [t - T0 for t in ticks] == [timedelta(seconds=0), timedelta(seconds=1), timedelta(seconds=2)]


def test_a_drill_records_the_slos_and_threshold_it_is_scored_against() -> None:
    from drills.adapters.files.scenarios import load_scenario
    from drills.adapters.store.paths import repo_root
    from drills.model.events import Mode
    from drills.runner.run import scenario_graph, started_event, world_slos

    scenario = load_scenario(repo_root() / "scenarios" / "bad-deploy-rollback.yaml")
    slos = world_slos(scenario)
    assert [s.service for s in slos] == ["app"]
    started = started_event(
        scenario,
        "d-1",
        datetime(2026, 1, 6, tzinfo=UTC),
        mode=Mode.TRAINING,
        backend="embedded",
        trainee=None,
        seed=1,
        slos=slos,
    )
    assert started.slos[0].availability_pct == 99.9
    assert started.impact_threshold_pct == scenario.steady_state.users_affected_under_pct == 1.0
    # the scenario's override is what the monitor runs on
    changed = scenario.model_copy(
        update={"service_graph": ServiceGraphOverride(services={"app": ServicePatch(capacity_rps_per_pod=7)})}
    )
    assert scenario_graph(changed).services["app"].capacity_rps_per_pod == 7
    assert scenario_graph(scenario).services["app"].capacity_rps_per_pod != 7


def test_a_change_between_two_seconds_moves_the_gauges_at_once_and_the_counters_wait() -> None:
    graph = load_service_graph(REPO / "fixtures" / "service-graph.yaml")
    current: dict[str, ClusterView] = {"view": world()}
    journal = Journal()
    metrics = ImpactMetrics("app")
    monitor = ImpactMonitor(graph, lambda: current["view"], journal, T0, metrics=metrics)
    monitor.step(T0)
    assert monitor.react(T0 + timedelta(milliseconds=100)) is None  # nothing changed: nothing done

    def totals() -> tuple[float, float]:
        families = {m.name: m for m in metrics.collect()}
        requests = sum(s.value for s in families["http_requests"].samples)
        ratio = families["drills_users_affected_ratio"].samples[0].value
        return requests, ratio

    counted, healthy = totals()
    assert healthy < 0.01
    current["view"] = world(app_ready=False)
    seen = monitor.react(T0 + timedelta(milliseconds=400))
    assert seen is not None and seen.status == "down"
    after, ratio = totals()
    assert ratio > 0.99  # the gauge shows it now
    assert after == counted  # no second counted twice
    assert journal.events[-1].at == T0 + timedelta(milliseconds=400)
    assert journal.events[-1].status == "down"
    monitor.step(T0 + timedelta(seconds=1))
    assert totals()[0] > counted
    assert len(journal.events) == 2  # the next whole second saw nothing new
