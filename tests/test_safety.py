"""Safety rails (pure): blast radius, system namespaces, context allow-list. The wording is pinned: it is
what a person sees when drills refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drills.engine.safety import (
    BlastRadius,
    blast_radius_problems,
    check_blast_radius,
    check_context,
    context_allowed,
    total,
)
from drills.errors import SafetyError
from drills.model.scenario import Safety


def test_within_caps_is_allowed() -> None:
    r = BlastRadius(pods=3, nodes=1, target_pods=3, namespaces=frozenset({"production"}))
    assert blast_radius_problems(r, Safety(max_pods=3, max_nodes=1)) == []


def test_over_cap_pods_nodes_and_percent_each_named() -> None:
    r = BlastRadius(pods=6, nodes=3, target_pods=8, namespaces=frozenset({"production"}))
    problems = blast_radius_problems(r, Safety(max_pods=5, max_nodes=2, max_percent=50))
    assert problems == [
        "it would touch 6 pods; safety.max_pods is 5",
        "it would touch 3 nodes; safety.max_nodes is 2",
        "it would touch 75% of the target's pods (6 of 8); safety.max_percent is 50%",
    ]


def test_check_blast_radius_raises_with_every_problem_and_says_nothing_changed() -> None:
    r = BlastRadius(pods=60, target_pods=60, namespaces=frozenset({"production"}))
    with pytest.raises(
        SafetyError, match=r"refusing pod-kill: it would touch 60 pods; safety.max_pods is 50"
    ) as e:
        check_blast_radius(r, Safety(), what="pod-kill")
    assert e.value.hint is not None and "nothing was changed" in e.value.hint
    assert e.value.exit_code == 5


@pytest.mark.parametrize("ns", ["kube-system", "kube-public", "kube-node-lease"])
def test_system_namespaces_need_scenario_and_flag(ns: str) -> None:
    r = BlastRadius(pods=1, target_pods=1, namespaces=frozenset({ns}))
    neither = blast_radius_problems(r, Safety())
    assert neither == [
        f"namespace {ns!r} is a system namespace (needs safety.allow_system_namespaces: true in the scenario "
        "and --allow-system-namespaces)"
    ]
    flag_only = blast_radius_problems(r, Safety(), allow_system_flag=True)
    assert "the scenario lacks safety.allow_system_namespaces" in flag_only[0]
    scenario_only = blast_radius_problems(r, Safety(allow_system_namespaces=True))
    assert "--allow-system-namespaces was not given" in scenario_only[0]
    both = blast_radius_problems(r, Safety(allow_system_namespaces=True), allow_system_flag=True)
    assert both == []


def test_cluster_scoped_selector_is_a_system_rule_too() -> None:
    r = BlastRadius(pods=1, target_pods=1, cluster_scoped_selector=True)
    assert "selects across every namespace" in blast_radius_problems(r, Safety())[0]
    assert blast_radius_problems(r, Safety(allow_system_namespaces=True), allow_system_flag=True) == []


def test_percent_of_an_empty_target() -> None:
    assert BlastRadius(pods=0, target_pods=0).percent == 0.0
    assert BlastRadius(pods=2, target_pods=0).percent == 100.0


def test_total_sums_pods_and_nodes_and_keeps_the_largest_target() -> None:
    a = BlastRadius(pods=1, nodes=1, target_pods=3, namespaces=frozenset({"a"}))
    b = BlastRadius(pods=2, target_pods=5, namespaces=frozenset({"b"}), cluster_scoped_selector=True)
    t = total([a, b])
    assert (t.pods, t.nodes, t.target_pods, t.namespaces, t.cluster_scoped_selector) == (
        3,
        1,
        5,
        frozenset({"a", "b"}),
        True,
    )


@given(
    pods=st.integers(0, 200),
    nodes=st.integers(0, 10),
    target=st.integers(0, 200),
    max_pods=st.integers(0, 200),
    max_nodes=st.integers(0, 10),
    max_percent=st.floats(1, 100),
)
def test_allowed_exactly_when_every_cap_holds(
    pods: int, nodes: int, target: int, max_pods: int, max_nodes: int, max_percent: float
) -> None:
    r = BlastRadius(pods=pods, nodes=nodes, target_pods=target, namespaces=frozenset({"production"}))
    ok = pods <= max_pods and nodes <= max_nodes and (pods == 0 or r.percent <= max_percent + 1e-9)
    problems = blast_radius_problems(
        r, Safety(max_pods=max_pods, max_nodes=max_nodes, max_percent=max_percent)
    )
    assert (problems == []) == ok


def test_context_allow_list_patterns() -> None:
    assert context_allowed("drills-drills")
    assert context_allowed("drills-test")
    assert not context_allowed("prod-eu-1")
    assert not context_allowed("kind-drills")
    assert context_allowed("kind-drills", ("drills-*", "kind-drills"))
    assert context_allowed("staging-2", ("staging-*",))


def test_refusing_a_context_names_it_and_the_way_out() -> None:
    with pytest.raises(SafetyError, match=r"kubeconfig context 'prod-eu-1' is not allow-listed") as e:
        check_context("prod-eu-1")
    assert e.value.hint is not None and "DRILLS_ALLOWED_CONTEXTS" in e.value.hint
    with pytest.raises(SafetyError, match="no current context"):
        check_context(None)
