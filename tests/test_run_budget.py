"""A drill's time budget: overridden for one run, announced without a dashboard, and a clear timed-out end.

The loop's own pieces on a FakeClock (no cluster); the whole path (a drill that cannot heal, timed out,
reverted and reported) runs on the real cluster in tests/test_load_spike_cluster.py.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from rich.console import Console

from drills.errors import UsageError
from drills.model.events import FaultInjected, HealthChanged, Mode, Outcome, Source
from drills.runner.options import DrillOptions, ReportingOptions
from drills.runner.run import DrillRun, started_event
from drills.timing import FakeClock


def drill(budget: timedelta | None, clock: FakeClock) -> tuple[DrillRun, StringIO]:
    out = StringIO()
    run = DrillRun(
        "load-spike-scale",
        DrillOptions(
            clock=clock,
            reporting=ReportingOptions(
                dashboard=False, console=Console(file=out, width=200), record_history=False
            ),
            time_budget=budget,
            handle_signals=False,
        ),
    )
    return run, out


def test_the_override_replaces_the_scenarios_budget_everywhere_it_is_read() -> None:
    clock = FakeClock()
    run, _ = drill(timedelta(seconds=45), clock)
    assert run.scenario.time_budget == timedelta(seconds=45)
    started = started_event(
        run.scenario, "d", clock.now(), mode=Mode.TRAINING, backend="embedded", trainee=None, seed=None
    )
    assert started.budget_seconds == 45
    assert drill(None, clock)[0].scenario.time_budget == timedelta(minutes=30)  # the shipped one
    with pytest.raises(UsageError, match="not positive"):
        drill(timedelta(0), clock)


def test_an_unhealed_drill_says_its_budget_as_it_runs_down_and_ends_timed_out() -> None:
    clock = FakeClock()
    run, out = drill(timedelta(seconds=40), clock)
    t0 = clock.now()
    run.state.events = [
        started_event(run.scenario, "d", t0, mode=Mode.TRAINING, backend="embedded", trainee=None, seed=None),
        FaultInjected(
            at=t0, source=Source.SYSTEM, fault_kind="load-spike", target="Deployment/production/app"
        ),
        HealthChanged(at=t0 + timedelta(seconds=1), source=Source.SYSTEM, healthy=False, reason="2/3 ready"),
    ]
    for second in range(41):
        now = t0 + timedelta(seconds=second)
        run._narrate_budget(now)
        verdict = run._judge_end(now)
        if verdict is not None:
            break
    lines = out.getvalue().splitlines()
    assert lines[0] == "+0.0s time budget 40s: the drill ends, timed out, unless resolved by then"
    assert [line.split(" ", 1)[1].split(" of")[0] for line in lines[1:]] == ["50%", "75%", "90%"]
    assert "(unhealthy, open); timed out in 20s unless resolved" in lines[1]
    assert lines[1].startswith("+20.0s ") and lines[3].startswith("+36.0s ")
    assert verdict is not None and verdict.outcome == Outcome.TIMED_OUT
    assert verdict.reason == "time budget of 0:00:40 used up"
    assert second == 40
