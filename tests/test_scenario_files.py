"""Scenario files: shipped scenarios are valid and complete; broken files give file:line: field: message."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from drills.adapters.files.scenarios import (
    MAX_BYTES,
    find_scenario,
    load_policy,
    load_scenario,
    load_scenarios,
    parse_model,
    parse_scenario,
)
from drills.adapters.store.paths import repo_root
from drills.errors import Problem, ScenarioError, UsageError
from drills.model.scenario import Mitigation, NamespaceLostFault, Scenario
from drills.model.severity import Severity

SCENARIOS = repo_root() / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
FILE = "broken.yaml"

VALID = textwrap.dedent(
    """\
    id: tiny
    title: A tiny scenario
    category: deployment
    impact:
      users_affected_pct: 20
      service_status: degraded
      data_loss_risk: none
      revenue_impact: low
    faults:
      - kind: bad-deploy
        image: myapp:v2.1.0
    steady_state:
      probes:
        - probe: deployment-available
          name: app
    expected_response:
      mitigations: [rollback]
    hints:
      - text: look at the rollout history
        after: 2m
        cost: 5
    """
)


def problems_of(text: str | bytes, file: str = FILE) -> list[str]:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, file=file, base_dir=SCENARIOS)
    return [str(p) for p in e.value.problems]


# ---- the shipped scenarios ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_is_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.id == path.stem, "file name and id agree, so `drill run <id>` finds the file"
    assert scenario.expected_response.runbook, "every scenario names the seed commands that apply"
    assert scenario.expected_response.root_cause
    assert scenario.description
    if not scenario.self_healing:
        assert len(scenario.hints) >= 2 and all(
            h.after.total_seconds() > 0 and h.cost > 0 for h in scenario.hints
        )


def test_shipped_scenarios_cover_every_mitigation_and_severity() -> None:
    loaded, problems = load_scenarios([SCENARIOS])
    assert problems == []
    assert len(loaded) >= 10
    scenarios = [s for _, s in loaded]
    first_choice = {s.expected_response.mitigations[0] for s in scenarios}
    assert first_choice == set(Mitigation), f"no scenario whose fix is {set(Mitigation) - first_choice}"
    assert {s.true_severity for s in scenarios} == set(Severity)
    assert any(s.self_healing for s in scenarios)
    assert any(f.kind == "chaostoolkit" for s in scenarios for f in s.faults)


def test_quarterly_dr_scenario_restores_a_lost_namespace_from_backups() -> None:
    dr = load_scenario(SCENARIOS / "quarterly-dr-namespace-lost.yaml")
    assert dr.true_severity is Severity.P0
    assert dr.expected_response.mitigations == [Mitigation.RESTORE_BACKUP]
    assert isinstance(dr.faults[0], NamespaceLostFault)
    assert "dr" in dr.tags and "quarterly" in dr.tags


def test_the_chaostoolkit_experiment_is_valid_for_chaostoolkit() -> None:
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    experiment = load_experiment(str(SCENARIOS / "experiments" / "terminate-app-pod.json"))
    ensure_experiment_is_valid(
        experiment
    )  # imports chaosk8s and checks every activity's function and arguments
    (method,) = experiment["method"]
    assert method["provider"]["func"] == "terminate_pods"
    assert method["provider"]["arguments"] == {
        "label_selector": "app=myapp",
        "ns": "production",
        "qty": 1,
        "rand": True,
    }


# ---- pinned wording -------------------------------------------------------------------------------------


def test_a_valid_document_loads() -> None:
    s = parse_scenario(VALID, file=FILE)
    assert isinstance(s, Scenario) and s.true_severity is Severity.P1


def test_unknown_field_names_the_allowed_ones_and_a_close_match() -> None:
    text = VALID.replace("    image: myapp:v2.1.0", "    imagee: myapp:v2.1.0")
    assert problems_of(text) == [
        f"{FILE}:11: faults[0].imagee: unknown field; did you mean 'image'? "
        "(allowed: delay, effect, image, kind, max_unavailable, workload)"
    ]


def test_missing_required_field_points_at_its_parent_mapping() -> None:
    text = VALID.replace("  service_status: degraded\n", "")
    assert problems_of(text) == [f"{FILE}:4: impact.service_status: required field is missing"]
    top = VALID.replace("category: deployment\n", "")
    assert problems_of(top) == [f"{FILE}:1: category: required field is missing"]


def test_bad_enum_lists_the_allowed_values() -> None:
    text = VALID.replace("mitigations: [rollback]", "mitigations: [rollbak]")
    assert problems_of(text) == [
        f"{FILE}:17: expected_response.mitigations[0]: 'rollbak' is not allowed; did you mean 'rollback'? "
        "(allowed: rollback, scale, autoscale, drain, delete-pods, set-selector, circuit-breaker, "
        "fix-forward, uncordon, restore-config, restore-secret, restore-backup)"
    ]


def test_unknown_fault_kind_lists_the_known_kinds() -> None:
    text = VALID.replace("kind: bad-deploy\n    image: myapp:v2.1.0", "kind: bad-deplyo")
    (problem,) = problems_of(text)
    assert problem.startswith(
        f"{FILE}:10: faults[0].kind: unknown fault kind 'bad-deplyo'; did you mean 'bad-deploy'?"
    )
    assert "(known: bad-deploy, crash-loop, oom," in problem


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = (
        VALID.replace("title: A tiny scenario", "title: x")
        .replace("users_affected_pct: 20", "users_affected_pct: lots")
        .replace("after: 2m", "after: 2 minutes")
        .replace("cost: 5", "cost: 500")
        + "bogus: 1\n"
    )
    assert problems_of(text) == [
        f"{FILE}:2: title: must be at least 3 characters",
        f"{FILE}:5: impact.users_affected_pct: expected a number, got text 'lots'",
        f"{FILE}:20: hints[0].after: '2 minutes' is not a duration; "
        "write it like '90s', '5m', '1h' or '1h30m'",
        f"{FILE}:21: hints[0].cost: must be <= 100 (got 500)",
        f"{FILE}:22: bogus: unknown field (allowed: category, description, detection, difficulty, "
        "expected_response, faults, hints, id, impact, safety, self_healing, service_graph, sla, "
        "steady_state, tags, "
        "target, time_budget, title)",
    ]


def test_yaml_surprises_are_explained() -> None:
    # YAML 1.1 reads 0123 as the number 83: say so, and show it as written.
    assert problems_of(VALID.replace("title: A tiny scenario", "title: 0123")) == [
        f"{FILE}:2: title: expected text, got a number 0123; quote it: '0123'"
    ]
    assert problems_of(VALID + "title: again\n") == [
        f"{FILE}:22: title: duplicate key (first on line 2); the later value would win"
    ]
    assert problems_of(VALID.replace("  service_status", "\tservice_status")) == [
        f"{FILE}:6: a tab character: YAML indents with spaces only"
    ]
    assert problems_of(VALID + "---\nid: second\n") == [
        f"{FILE}:22: more than one YAML document (---) in the file; put one scenario per file"
    ]
    assert problems_of(b"id: caf\xe9\n") == [f"{FILE}:1: not UTF-8 text (byte 0xe9); save the file as UTF-8"]
    assert problems_of("") == [f"{FILE}:1: the file is empty; expected a mapping of fields (key: value)"]
    assert problems_of("- a\n- b\n") == [
        f"{FILE}:1: expected a mapping (key: value) at the top level, got a list"
    ]
    assert f"{FILE}:1: id: unsupported YAML tag !!python/object:os.system" in problems_of(
        "id: !!python/object:os.system x\n"
    )


def test_merge_keys_work_and_are_not_duplicates() -> None:
    text = VALID.replace(
        "steady_state:\n  probes:\n    - probe: deployment-available\n      name: app\n",
        "x-probe: &app\n  probe: deployment-available\n  name: app\n"
        "steady_state:\n  probes:\n    - <<: *app\n      name: app\n",
    )
    # `x-probe` is an unknown top-level field (YAML anchors need a home), but the merge itself is fine.
    problems = problems_of(text)
    assert len(problems) == 1 and "x-probe: unknown field" in problems[0]


def test_alias_bombs_and_recursive_aliases_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    assert problems_of(bomb) == [
        f"{FILE}:1: more than 100000 values once aliases are expanded (an alias bomb?)"
    ]
    assert f"{FILE}:1: a[0]: an alias refers to itself (recursive YAML)" in problems_of("a: &a [*a]\n")


def test_huge_and_odd_numbers_are_problems_not_crashes() -> None:
    assert problems_of(VALID + "time_budget: 99999999999999999999999999d\n") == [
        f"{FILE}:22: time_budget: '99999999999999999999999999d' is too long to be a duration"
    ]
    assert problems_of(VALID + "time_budget: .nan\n") == [
        f"{FILE}:22: time_budget: a duration must be a number of seconds or text like '5m', not NaN"
    ]
    huge = "9" * 5000  # past Python's int-from-text limit
    assert problems_of(VALID.replace("users_affected_pct: 20", f"users_affected_pct: {huge}"))[0].startswith(
        f"{FILE}:5: impact.users_affected_pct: '99999"
    )


def test_an_oversized_file_is_refused_before_parsing() -> None:
    assert problems_of(b"#" * (MAX_BYTES + 1)) == [
        f"{FILE}:1: file is too large ({MAX_BYTES + 1} bytes; limit {MAX_BYTES})"
    ]


def test_a_missing_chaostoolkit_experiment_is_reported_at_its_line(tmp_path: Path) -> None:
    text = VALID.replace(
        "kind: bad-deploy\n    image: myapp:v2.1.0", "kind: chaostoolkit\n    experiment: nope.json"
    )
    path = tmp_path / "ctk.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert [str(p) for p in e.value.problems] == [
        f"{path}:11: faults[0].experiment: no Chaos Toolkit experiment at {tmp_path / 'nope.json'}"
    ]
    (tmp_path / "nope.json").write_text('{"title": "t", "description": "d"}')
    with pytest.raises(ScenarioError, match="method: an experiment needs a method"):
        load_scenario(path)


def test_an_unregistered_fault_plugin_is_reported() -> None:
    text = VALID.replace(
        "kind: bad-deploy\n    image: myapp:v2.1.0", "kind: plugin\n    name: no-such-plugin"
    )
    (problem,) = problems_of(text)
    assert problem.startswith(
        f"{FILE}:11: faults[0].name: no fault plugin 'no-such-plugin' in the drills.faults"
    )


def test_policy_files_get_the_same_errors(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text("sla:\n  mtta_p0: 3m\npass_score: 80\n")
    policy = load_policy(good)
    assert policy.targets().mtta_p0.total_seconds() == 180
    bad = tmp_path / "bad.yaml"
    bad.write_text("sla:\n  mtta_p0: soon\n  mtta_p9: 3m\nweights:\n  detection: -1\n")
    with pytest.raises(ScenarioError) as e:
        load_policy(bad)
    assert [str(p) for p in e.value.problems] == [
        f"{bad}:2: sla.mtta_p0: 'soon' is not a duration; write it like '90s', '5m', '1h' or '1h30m'",
        f"{bad}:3: sla.mtta_p9: unknown field; did you mean 'mtta_p1'? (allowed: escalate_if_unresolved, "
        "initial_alert, mtta_p0, mtta_p1, mttd, mttm_p0, mttm_p1, mttr_p0, mttr_p1, oncall_ack_all, "
        "oncall_respond_p0_p1, p0_ack, p0_notify_executives_after, p0_notify_leadership, p1_ack, "
        "p1_notify_eng_lead, postmortem_p0_p1, response_p0, response_p1, response_p2, response_p3, "
        "status_update_max, status_update_target, triage)",
        f"{bad}:5: weights.detection: must be >= 0 (got -1)",
    ]


def test_loaded_keeps_lines_for_callers_own_checks() -> None:
    loaded = parse_model(VALID, Scenario, file=FILE)
    assert loaded.line("hints", 0, "cost") == 21
    assert (
        str(loaded.problem(("faults", 0, "image"), "no such image"))
        == f"{FILE}:11: faults[0].image: no such image"
    )


# ---- directories, ids -----------------------------------------------------------------------------------


def test_load_scenarios_expands_directories_and_reports_duplicates_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yml").write_text(VALID)  # same id
    (tmp_path / "c.yaml").write_text("id: [\n")
    (tmp_path / "notes.txt").write_text("not a scenario")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.yaml").write_text("not: a scenario\n")  # not recursive
    loaded, problems = load_scenarios([tmp_path, tmp_path / "missing.yaml"])
    assert [p.name for p, _ in loaded] == ["a.yaml"]
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'missing.yaml'}: no such file or directory",
        f"{tmp_path / 'b.yml'}:1: id: scenario id 'tiny' is also used by {tmp_path / 'a.yaml'}",
        f"{tmp_path / 'c.yaml'}:2: YAML syntax: expected the node content, but found '<stream end>' "
        "(while parsing a flow node)",
    ]


def test_find_scenario_by_id_file_name_or_path(tmp_path: Path) -> None:
    (tmp_path / "some-file.yaml").write_text(VALID)
    assert find_scenario("tiny", tmp_path) == tmp_path / "some-file.yaml"
    assert find_scenario("some-file", tmp_path) == tmp_path / "some-file.yaml"
    assert find_scenario(str(tmp_path / "some-file.yaml")) == tmp_path / "some-file.yaml"
    assert find_scenario("bad-deploy-rollback") == SCENARIOS / "bad-deploy-rollback.yaml"
    with pytest.raises(UsageError, match="no scenario 'tiyn'") as e:
        find_scenario("tiyn", tmp_path)
    assert e.value.hint and "did you mean tiny?" in e.value.hint


# ---- properties: no input ever escapes as anything but ScenarioError ------------------------------------

_WELL_FORMED = re.compile(
    r"(?P<file>[^:]+):(?P<line>\d+): (?:(?P<field>[A-Za-z0-9_\-\[\].<>]+): )?(?P<msg>\S.*)", re.S
)


def check_outcome(content: str | bytes, file: str = FILE) -> Scenario | list[Problem]:
    """Load; a valid Scenario or well-formed problems are the only allowed outcomes."""
    try:
        return parse_scenario(content, file=file, base_dir=SCENARIOS)
    except ScenarioError as e:
        assert e.problems, "a ScenarioError always says what is wrong"
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        # YAML (and most editors) also break lines at a lone CR, NEL, LS and PS.
        last_line = len(re.findall(r"\r\n|[\r\n\x85\u2028\u2029]", text)) + 1
        for p in e.problems:
            assert p.file == file
            assert p.line is not None and 1 <= p.line <= last_line, (p, last_line)
            assert p.message.strip() and "Traceback" not in p.message
            m = _WELL_FORMED.fullmatch(str(p))
            assert m is not None, str(p)
            assert int(m["line"]) == p.line
        return e.problems


# DRILLS_HYPOTHESIS_EXAMPLES=20000 for a long hunt; the default keeps the suite quick.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("DRILLS_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(st.binary(max_size=400))
@example(b"\x00")
@example(b"\xef\xbb\xbf")
@example(b"[" * 5000)
@example(b"a: &a [*a, *a]")
@example(b"? [a]\n: b\n")
@example(b"!!binary x: 1\n")
@example(b"id: 2026-13-45\n")
def test_random_bytes_never_escape(content: bytes) -> None:
    check_outcome(content)


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{}&*!|>'\"#,?%@`0123456789.~")), max_size=200))
def test_random_yaml_punctuation_never_escapes(content: str) -> None:
    check_outcome(content)


_VALID_LINES = VALID.splitlines(keepends=True)


@st.composite
def mutated_valid_yaml(draw: st.DrawFn) -> str:
    lines = list(_VALID_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(
            st.sampled_from(["delete", "duplicate", "insert", "indent", "dedent", "replace-value", "tab"])
        )
        if how == "delete" and len(lines) > 1:
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "insert":
            pos = draw(st.integers(0, len(lines[i])))
            junk = draw(st.text(max_size=8))
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        elif how == "indent":
            lines[i] = "  " + lines[i]
        elif how == "dedent":
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
        elif how == "tab":
            lines[i] = "\t" + lines[i].lstrip(" ")
        elif how == "replace-value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            value = draw(
                st.sampled_from(
                    [
                        "",
                        "~",
                        "[]",
                        "{}",
                        "-1",
                        "1e999",
                        "9" * 30,
                        "yes",
                        "2026-01-01",
                        "'x'",
                        "&a x",
                        "*a",
                        "!!str 5",
                    ]
                )
            )
            lines[i] = f"{key}: {value}\n"
    return "".join(lines)


@PROPERTY_SETTINGS
@given(mutated_valid_yaml())
def test_mutated_valid_yaml_gives_a_scenario_or_located_problems(content: str) -> None:
    check_outcome(content)


_BASE: dict[str, Any] = yaml.safe_load(VALID)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


_BASE_PATHS = _paths(_BASE)


@PROPERTY_SETTINGS
@given(st.sampled_from(_BASE_PATHS), _values, st.booleans())
def test_any_value_anywhere_in_a_valid_scenario_is_located(
    path: tuple[Any, ...], value: Any, extra: bool
) -> None:
    import copy

    data = copy.deepcopy(_BASE)
    target = data
    for part in path[:-1]:
        target = target[part]
    if extra and isinstance(target, dict):
        target[f"{path[-1]}_extra"] = value
    else:
        target[path[-1]] = value
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    outcome = check_outcome(text)
    if isinstance(outcome, list):
        # The problem names the field we broke (or something inside it), or a whole-document rule.
        broken = ".".join(str(p) for p in path[:1])
        assert any(p.field.startswith(broken) or p.field == "" for p in outcome), outcome


def test_problem_lines_match_the_yaml_for_every_top_level_field() -> None:
    """Each top-level field given a value of the wrong type is reported on the line where it is written."""
    import copy

    for field in _BASE:
        data = copy.deepcopy(_BASE)
        data[field] = 7
        text = yaml.safe_dump(data, sort_keys=False)
        line = text.splitlines().index(f"{field}: 7") + 1
        outcome = check_outcome(text)
        assert isinstance(outcome, list)
        assert [(p.line, p.field) for p in outcome] == [(line, field)], outcome


# ---- service_graph: a scenario's change to the world's graph ---------------------------------------------


def test_a_service_graph_override_extends_and_overrides_the_worlds_graph() -> None:
    text = VALID + textwrap.dedent(
        """\
        service_graph:
          services:
            app:
              capacity_rps_per_pod: 200
            search:
              deployment: search
              service: search
              capacity_rps_per_pod: 300
              latency: {p50: 10ms, p99: 80ms}
          users:
            population: 50000
        """
    )
    scenario = parse_scenario(text, file=FILE, base_dir=SCENARIOS)
    from drills.adapters.files.impact import load_service_graph

    world = load_service_graph()
    graph = world.merged(scenario.service_graph)
    assert graph.services["app"].capacity_rps_per_pod == 200
    # the rest of app stays the world's: its features and dependency calls
    assert graph.services["app"].features == world.services["app"].features
    assert graph.services["search"].latency.p99.total_seconds() == 0.08
    assert graph.users.population == 50000
    assert graph.users.requests_per_user_per_minute == world.users.requests_per_user_per_minute


def test_a_broken_service_graph_override_names_its_line_and_field() -> None:
    text = VALID + textwrap.dedent(
        """\
        service_graph:
          services:
            search:
              capacity_rps_per_pod: 300
            app:
              capacity_rps_per_pod: -1
        """
    )
    assert problems_of(text) == [
        f"{FILE}:27: service_graph.services.app.capacity_rps_per_pod: must be > 0 (got -1)",
    ]
    missing = VALID + "service_graph:\n  services:\n    search:\n      capacity_rps_per_pod: 300\n"
    assert problems_of(missing) == [
        f"{FILE}:24: service_graph.services.search: a new service needs deployment, service, latency "
        "(it is not in the world's graph)",
    ]
    shares = VALID + textwrap.dedent(
        """\
        service_graph:
          services:
            app:
              features:
                search: {share: 0.3}
        """
    )
    (problem,) = problems_of(shares)
    assert problem.startswith(f"{FILE}:24: service_graph.services.app: ")
    assert "feature shares must add up to 1 (they add up to 1.3)" in problem
