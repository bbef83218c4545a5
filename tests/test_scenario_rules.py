"""Semantic validation: values that parse but make no sense are refused as ``file:line: field: message``.

Each case is one of issue #13's "nonsense values pass validation" findings, written into a shipped scenario
(or plan) so that everything else about the file is valid; the test checks the one problem, its line and
its field.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from drills.adapters.files.plans import load_plan
from drills.adapters.files.scenarios import alert_rules_path, load_model, parse_scenario
from drills.adapters.store.paths import repo_root
from drills.engine.comms import TEMPLATE_IDS
from drills.errors import Problem, ScenarioError
from drills.model.durations import parse_duration
from drills.model.policy import Policy
from drills.model.scenario import MAX_REPLICAS, WORLD_NODES

SCENARIOS = repo_root() / "scenarios"
#: The shipped bad release without its rollout strategy (a bad-deploy field): tests swap the fault for others.
GOOD = (
    (SCENARIOS / "bad-deploy-rollback.yaml")
    .read_text(encoding="utf-8")
    .replace(
        "    max_unavailable: 67%  # no canary: two of three old pods go at once, one is left (docs/impact.md)\n",
        "",
    )
)
FILE = "s.yaml"


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    (index,) = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return index


def only_problem(text: str) -> Problem:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, file=FILE, base_dir=SCENARIOS)
    assert len(e.value.problems) == 1, "\n".join(map(str, e.value.problems))
    return e.value.problems[0]


def assert_problem(text: str, needle: str, field: str, message: str) -> Problem:
    """The one problem is at the line holding ``needle``, on ``field``, and its message matches."""
    problem = only_problem(text)
    assert (problem.file, problem.line, problem.field) == (FILE, line_of(text, needle), field), str(problem)
    assert re.search(message, problem.message), str(problem)
    return problem


def test_the_base_scenario_is_valid() -> None:
    assert parse_scenario(GOOD, file=FILE, base_dir=SCENARIOS).id == "bad-deploy-rollback"


# ---- the time budget against windows, hints and delays ---------------------------------------------------


def test_a_zero_time_budget_is_refused() -> None:
    text = edit("time_budget: 30m", "time_budget: 0s")
    assert_problem(text, "time_budget:", "time_budget", "a time budget of 0s ends the drill before the fault")


def test_healthy_for_longer_than_the_budget_is_refused() -> None:
    text = edit("  healthy_for: 30s", "  healthy_for: 45m")
    assert_problem(
        text, "healthy_for:", "steady_state.healthy_for", r"45m00s .*within the 30m00s time_budget"
    )


def test_healthy_for_counts_from_the_fault_delay() -> None:
    text = edit("    effect: crash\n", "    effect: crash\n    delay: 29m40s\n")
    text = edit("    after: 8m\n", "    after: 10s\n", text)
    text = edit("    after: 3m\n", "    after: 5s\n", text)
    assert_problem(text, "healthy_for:", "steady_state.healthy_for", r"after the fault at 29m40s")


def test_a_hint_due_after_the_budget_is_refused() -> None:
    text = edit("    after: 8m\n", "    after: 31m\n")
    assert_problem(text, "after: 31m", "hints[1].after", "nobody could ever use it")


def test_a_fault_delayed_beyond_the_budget_is_refused() -> None:
    text = edit("    effect: crash\n", "    effect: crash\n    delay: 1h\n")
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, file=FILE, base_dir=SCENARIOS)
    fields = {p.field: p for p in e.value.problems}
    assert fields["faults[0].delay"].line == line_of(text, "delay: 1h")
    assert "1h00m into a drill that ends after 30m00s" in fields["faults[0].delay"].message
    # Everything measured from the fault comes after the budget too, and each is said where it is written.
    assert {"steady_state.healthy_for", "hints[0].after", "hints[1].after"} <= set(fields)


def test_an_alert_for_longer_than_the_budget_is_refused() -> None:
    text = edit(
        "  expected_alert: KubePodCrashLooping\n", "  expected_alert: KubePodCrashLooping\n  alert_for: 1h\n"
    )
    assert_problem(text, "alert_for:", "detection.alert_for", "cannot fire within the 30m00s time_budget")


# ---- bounded sizes --------------------------------------------------------------------------------------


def test_a_billion_replicas_are_refused() -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "  - kind: scale-to-zero\n    replicas: 1000000000\n",
    )
    assert_problem(text, "replicas:", "faults[0].replicas", rf"must be <= {MAX_REPLICAS} \(got 1000000000\)")


def test_more_ready_nodes_than_the_world_has_are_refused() -> None:
    text = edit(
        "    - probe: no-restarts\n",
        "    - probe: nodes-ready\n      min_ready: 1000\n    - probe: no-restarts\n",
    )
    assert_problem(text, "min_ready: 1000", "steady_state.probes[2].min_ready", rf"must be <= {WORLD_NODES}")


def test_the_world_node_bound_is_the_runbook_worlds_node_count() -> None:
    manifests = list(yaml.safe_load_all((repo_root() / "fixtures/manifests/10-nodes.yaml").read_text()))
    assert sum(1 for m in manifests if m and m.get("kind") == "Node") == WORLD_NODES


def test_a_ready_endpoint_count_beyond_the_replica_bound_is_refused() -> None:
    text = edit("      min_ready: 3\n", "      min_ready: 5000\n")
    assert_problem(text, "min_ready: 5000", "steady_state.probes[1].min_ready", rf"must be <= {MAX_REPLICAS}")


# ---- names, paths and values ----------------------------------------------------------------------------


def test_a_workload_that_is_a_path_is_refused() -> None:
    text = edit("    effect: crash\n", "    effect: crash\n    workload: ../../etc\n")
    assert_problem(text, "workload: ../../etc", "faults[0].workload", "lower-case letters, digits and dashes")


def test_a_backup_outside_the_project_is_refused() -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "  - kind: namespace-lost\n    backup: /etc\n",
    )
    assert_problem(
        text, "backup: /etc", "faults[0].backup", r"backup '/etc' is outside the scenario's directory"
    )


def test_a_backup_escaping_with_dot_dot_is_refused() -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "  - kind: namespace-lost\n    backup: ../../../../../../etc\n",
    )
    assert_problem(text, "backup:", "faults[0].backup", "is outside the scenario's directory")


def test_the_shipped_backup_is_inside_the_project() -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "  - kind: namespace-lost\n    backup: fixtures/backups/production\n",
    )
    assert parse_scenario(text, file=FILE, base_dir=SCENARIOS).faults[0].kind == "namespace-lost"


def test_an_experiment_outside_the_project_is_refused(tmp_path: Path) -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "  - kind: chaostoolkit\n    experiment: /etc/passwd\n",
    )
    assert_problem(text, "experiment:", "faults[0].experiment", "outside the scenario's directory")


@pytest.mark.parametrize("cpu", ["banana", "-1", "1.5 cores", "3m3", "٣", "1k", "2Gi"])
def test_a_cpu_that_is_not_a_kubernetes_quantity_is_refused(cpu: str) -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        f"  - kind: load-spike\n    cpu: '{cpu}'\n",
    )
    assert_problem(text, "cpu:", "faults[0].cpu", "is not a Kubernetes CPU quantity")


def test_a_cpu_of_zero_is_no_spike() -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "  - kind: load-spike\n    cpu: 0m\n",
    )
    assert_problem(text, "cpu:", "faults[0].cpu", "a load spike of no CPU is no spike")


@pytest.mark.parametrize("cpu", ["300m", "2", "1.5", ".5", "2500m"])
def test_kubernetes_cpu_quantities_are_accepted(cpu: str) -> None:
    text = edit(
        "  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        f"  - kind: load-spike\n    cpu: '{cpu}'\n",
    )
    assert parse_scenario(text, file=FILE, base_dir=SCENARIOS).faults[0].kind == "load-spike"


def test_an_unknown_expected_alert_is_refused_with_the_known_ones() -> None:
    text = edit("expected_alert: KubePodCrashLooping", "expected_alert: KubePodCrashLoping")
    problem = assert_problem(
        text, "expected_alert:", "detection.expected_alert", "no alert rule 'KubePodCrashLoping'"
    )
    assert "did you mean 'KubePodCrashLooping'?" in problem.message
    assert str(alert_rules_path()) in problem.message


def test_an_unknown_comms_template_is_refused() -> None:
    text = edit(
        "  roles: [ic, tech, comms]\n", "  roles: [ic, tech, comms]\n  comms: [initial_alert, tweet]\n"
    )
    problem = assert_problem(
        text, "comms: [", "expected_response.comms[1]", "no communication template 'tweet'"
    )
    assert all(t in problem.message for t in TEMPLATE_IDS)


def test_known_comms_templates_are_accepted() -> None:
    text = edit(
        "  roles: [ic, tech, comms]\n", f"  roles: [ic, tech, comms]\n  comms: [{', '.join(TEMPLATE_IDS)}]\n"
    )
    assert parse_scenario(text, file=FILE, base_dir=SCENARIOS).expected_response.comms == list(TEMPLATE_IDS)


@pytest.mark.parametrize(
    ("namespace", "what"), [("kube-system", "a system namespace"), ("staging", "not the scenario's")]
)
def test_a_probe_outside_the_scenarios_namespace_is_refused(namespace: str, what: str) -> None:
    text = edit("      selector: app=myapp\n", f"      selector: app=myapp\n      namespace: {namespace}\n")
    assert_problem(text, f"namespace: {namespace}", "steady_state.probes[2].namespace", what)


# ---- strict types: no YAML 1.1 coercions, no bool for a number -------------------------------------------


def test_min_available_true_is_not_one() -> None:
    text = edit("      min_available: 3\n", "      min_available: true\n")
    assert_problem(
        text,
        "min_available:",
        "steady_state.probes[0].min_available",
        r"expected a whole number, got true \(a boolean\)",
    )


def test_sexagesimal_min_ready_is_not_45000() -> None:
    text = edit("      min_ready: 3\n", "      min_ready: 12:30:00\n")
    assert_problem(
        text, "min_ready:", "steady_state.probes[1].min_ready", "expected a whole number, got text '12:30:00'"
    )


@pytest.mark.parametrize("value", ["yes", "on", "'5'", "true", "5.0"])
def test_a_hint_cost_must_be_a_whole_number(value: str) -> None:
    text = edit("    cost: 15\n", f"    cost: {value}\n")
    assert_problem(text, f"cost: {value}", "hints[1].cost", "expected a whole number")


def test_self_healing_yes_is_text_not_true() -> None:
    text = edit("time_budget: 30m", "time_budget: 30m\nself_healing: yes")
    assert_problem(text, "self_healing:", "self_healing", "expected true or false, got text 'yes'")


def test_users_affected_true_is_not_one_percent() -> None:
    text = edit("  users_affected_pct: 65\n", "  users_affected_pct: true\n")
    assert_problem(
        text, "users_affected_pct:", "impact.users_affected_pct", r"expected a number, got true \(a boolean\)"
    )


def test_a_policy_weight_must_be_a_number_not_a_bool(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("weights:\n  detection: yes\npass_score: true\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as e:
        load_model(policy, Policy)
    assert [(p.line, p.field) for p in e.value.problems] == [(2, "weights.detection"), (3, "pass_score")]


# ---- ASCII digits in durations --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["٣m", "３m", "1٣s", "५h"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
    scenario = edit("time_budget: 30m", f"time_budget: {text}")
    assert_problem(scenario, "time_budget:", "time_budget", "is not a duration")


# ---- plans ----------------------------------------------------------------------------------------------


PLAN = (SCENARIOS / "plans" / "quarterly-dr.yaml").read_text(encoding="utf-8")


def plan_problems(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "plan.yaml"  # scenario ids and repository-relative backups resolve from anywhere
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as e:
        load_plan(path)
    return e.value.problems


def test_the_shipped_plan_loads_from_another_directory(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN, encoding="utf-8")
    assert load_plan(path).plan.id == "quarterly-dr"


def test_a_plan_backup_outside_the_project_is_refused(tmp_path: Path) -> None:
    (backup_line,) = [line for line in PLAN.splitlines() if line.strip().startswith("backup:")][:1]
    text = PLAN.replace(backup_line, backup_line.split("backup:")[0] + "backup: /etc", 1)
    (problem,) = plan_problems(tmp_path, text)
    assert problem.line == line_of(text, "backup: /etc")
    assert problem.field.endswith(".backup") and "outside" in problem.message


def test_a_plan_probe_in_kube_system_is_refused(tmp_path: Path) -> None:
    old = "probe: {probe: deployment-available, name: db-proxy, min_available: 1}"
    new = "probe: {probe: deployment-available, name: db-proxy, min_available: 1, namespace: kube-system}"
    text = PLAN.replace(old, new, 1)
    (problem,) = plan_problems(tmp_path, text)
    assert problem.line == line_of(text, new)
    assert problem.field == "entries[0].runbook[1].check.probe.namespace"
    assert "'kube-system' is a system namespace" in problem.message


def test_an_slo_burn_rate_alert_is_a_known_expected_alert() -> None:
    from drills.adapters.files.scenarios import slo_alert_names

    names = slo_alert_names()
    assert {"AppAvailabilityBurnRatePage", "AppAvailabilityBurnRateTicket", "AppLatencyBurnRatePage"} <= names
