"""The load-spike fault's load model: what each pod shows, what readiness the overload costs, what fixes it.

Pure arithmetic (no cluster); the same model runs on the embedded cluster in tests/test_faults_cluster.py
and tests/test_load_spike_cluster.py.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from drills.adapters.faults.workload import replicas_needed, share_load
from drills.adapters.files.scenarios import load_scenario
from drills.model.scenario import LoadSpikeFault, ServiceEndpoints

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_the_shipped_figures() -> None:
    # load-spike-autoscale: 250m on 3 pods of 100m request = 750m
    assert [(s.per_pod, s.unready) for s in (share_load(750, n, 100) for n in (3, 5, 7, 8, 10, 11))] == [
        (250, 2),
        (150, 2),
        (108, 1),
        (94, 0),
        (75, 0),
        (69, 0),
    ]
    # load-spike-scale: 400m on 3 pods = 1200m; the runbook's 15 replicas leave every pod at 80m
    assert (share_load(1200, 3, 100).per_pod, share_load(1200, 3, 100).unready) == (400, 2)
    assert (share_load(1200, 15, 100).per_pod, share_load(1200, 15, 100).unready) == (80, 0)
    assert replicas_needed(750, 100) == 8 and replicas_needed(1200, 100) == 12
    assert replicas_needed(750, 100, 70) == 11


@given(
    total=st.integers(min_value=1, max_value=100_000),
    pods=st.integers(min_value=1, max_value=500),
    request=st.integers(min_value=1, max_value=4000),
)
def test_pods_are_unready_exactly_while_they_cannot_carry_the_load(
    total: int, pods: int, request: int
) -> None:
    share = share_load(total, pods, request)
    assert share.per_pod * pods >= total > (share.per_pod - 1) * pods  # ceil(total / pods)
    assert share.overloaded == (share.per_pod > request)
    assert 0 <= share.unready <= pods - 1  # one pod always answers
    if pods > 1:
        assert (share.unready > 0) == share.overloaded
    # enough replicas: nobody over the request, nobody unready
    enough = share_load(total, replicas_needed(total, request), request)
    assert not enough.overloaded and enough.unready == 0
    # one fewer is not enough
    needed = replicas_needed(total, request)
    if needed > 1:
        assert share_load(total, needed - 1, request).overloaded


@given(
    total=st.integers(min_value=1, max_value=100_000),
    pods=st.integers(min_value=1, max_value=499),
    request=st.integers(min_value=1, max_value=4000),
)
def test_more_replicas_never_mean_fewer_ready_pods(total: int, pods: int, request: int) -> None:
    a, b = share_load(total, pods, request), share_load(total, pods + 1, request)
    assert b.per_pod <= a.per_pod
    assert b.pods - b.unready >= a.pods - a.unready


def test_no_request_no_overload() -> None:
    share = share_load(900, 3, None)
    assert share.per_pod == 300 and share.unready == 0 and not share.overloaded
    assert share_load(900, 0, 100).pods == 0


def test_the_shipped_scenarios_steady_state_needs_every_pod_ready() -> None:
    """The load-spike scenarios heal only when no pod is left over its request (see the fault's docstring)."""
    for name in ("load-spike-scale", "load-spike-autoscale"):
        sc = load_scenario(SCENARIOS / f"{name}.yaml")
        assert isinstance(sc.faults[0], LoadSpikeFault)
        endpoints = [p for p in sc.steady_state.probes if isinstance(p, ServiceEndpoints)]
        assert endpoints and endpoints[0].max_not_ready == 0, name
