"""The alert rules in fixtures/prometheus/: valid for Prometheus, doing what their names say (promtool's own
rule unit tests), rendered with per-scenario `for:` overrides, and in step with the scenarios and the docs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from drills.adapters.files.scenarios import load_scenario
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.store.paths import repo_root, scenarios_dir
from drills.errors import MonitoringError, UsageError
from drills.model.durations import format_duration

RULES = repo_root() / "fixtures" / "prometheus" / "rules.yaml"
RULE_TESTS = repo_root() / "fixtures" / "prometheus" / "rules.test.yaml"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool missing: {monitoring.APT_LINE}")

#: The alerts the issue asks for (crash looping, replicas mismatch / deployment unavailable, node not ready,
#: pod not ready, job failed, HPA at max).
REQUIRED = {
    "KubePodCrashLooping",
    "KubeDeploymentReplicasMismatch",
    "KubeDeploymentUnavailable",
    "KubeNodeNotReady",
    "KubePodNotReady",
    "KubeJobFailed",
    "KubeHpaMaxedOut",
}


@needs_promtool
@pytest.mark.monitoring
def test_promtool_accepts_the_rules() -> None:
    report = monitoring.check_rules_file(RULES)
    assert "SUCCESS" in report


@needs_promtool
@pytest.mark.monitoring
def test_promtool_rule_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
@pytest.mark.monitoring
def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: X\n    expr: sum(\n")
    with pytest.raises(MonitoringError, match="invalid"):
        monitoring.check_rules_file(bad)


def test_the_required_alerts_exist_and_every_one_has_a_drill_sized_for() -> None:
    rules = monitoring.load_rules(RULES)
    names = monitoring.rule_names(rules)
    assert set(names) >= REQUIRED
    assert len(names) == len(set(names))
    for rule in monitoring.alert_rules(rules):
        for_ = monitoring.parse_prom_duration(str(rule.get("for", "0s")))
        assert timedelta(0) < for_ <= timedelta(minutes=1), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def test_every_scenario_expects_an_alert_the_rules_define() -> None:
    # a scenario may name a rule of the shipped file or an SLO burn-rate alert generated from fixtures/slo/
    names = set(monitoring.rule_names(monitoring.load_rules(RULES))) | set(
        monitoring.rule_names(monitoring.slo_rules())
    )
    expected = {}
    for path in sorted(scenarios_dir().glob("*.yaml")):
        scenario = load_scenario(path)
        if scenario.detection.expected_alert:
            expected[path.name] = scenario.detection.expected_alert
    assert expected, "no scenario names an expected alert"
    missing = {f: a for f, a in expected.items() if a not in names}
    assert not missing, f"scenarios expect alerts no rule defines: {missing}"


def test_docs_list_every_rule_with_its_for() -> None:
    docs = (repo_root() / "docs" / "detection.md").read_text(encoding="utf-8")
    for rule in monitoring.alert_rules(monitoring.load_rules(RULES)):
        for_ = format_duration(monitoring.parse_prom_duration(str(rule["for"])))
        assert re.search(rf"\|\s*`?{rule['alert']}`?\s*\|[^\n]*\|\s*{re.escape(for_)}\s*\|", docs), (
            f"docs/detection.md has no table row for {rule['alert']} with for: {for_}"
        )


# ---- rendering -------------------------------------------------------------------------------------------


def test_render_adds_the_rule_delay_and_applies_overrides() -> None:
    settings = monitoring.MonitoringSettings(scrape_interval=timedelta(seconds=2))
    rendered = monitoring.render_rules(
        monitoring.load_rules(RULES), settings, for_overrides={"KubePodCrashLooping": timedelta(minutes=15)}
    )
    by_name = {r["alert"]: r for r in monitoring.alert_rules(rendered)}
    assert by_name["KubePodCrashLooping"]["for"] == "900s"
    assert by_name["KubePodCrashLooping"]["annotations"]["rule_delay_seconds"] == "902"
    assert by_name["KubeNodeNotReady"]["for"] == "15s"
    assert by_name["KubeNodeNotReady"]["annotations"]["rule_delay_seconds"] == "17"
    # the source is not modified
    assert {r["alert"]: r["for"] for r in monitoring.alert_rules(monitoring.load_rules(RULES))}[
        "KubePodCrashLooping"
    ] == "10s"


def test_render_can_leave_rules_out() -> None:
    rendered = monitoring.render_rules(
        monitoring.load_rules(RULES), monitoring.MonitoringSettings(), only=["KubeNodeNotReady"]
    )
    assert monitoring.rule_names(rendered) == ["KubeNodeNotReady"]
    assert len(rendered["groups"]) == 1  # empty groups are dropped (Prometheus refuses them)


def test_overriding_an_unknown_alert_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="KubeNoSuchAlert"):
        monitoring.render_rules(
            monitoring.load_rules(RULES),
            monitoring.MonitoringSettings(),
            for_overrides={"KubeNoSuchAlert": timedelta(1)},
        )


def _scenario(alert_for: str | None, expected: str | None) -> object:
    scenario = load_scenario(scenarios_dir() / "crash-loop-delete-pods.yaml")
    detection = scenario.detection.model_copy(
        update={
            "alert_for": None
            if alert_for is None
            else timedelta(seconds=monitoring.parse_prom_duration(alert_for).total_seconds()),
            "expected_alert": expected,
        }
    )
    return scenario.model_copy(update={"detection": detection})


def test_scenario_alert_for_overrides_its_expected_alert_only() -> None:
    rendered = monitoring.rules_for_scenario(
        _scenario("5m", "KubePodCrashLooping"), monitoring.MonitoringSettings()
    )  # type: ignore[arg-type]
    fors = {r["alert"]: r["for"] for r in monitoring.alert_rules(rendered)}
    assert fors["KubePodCrashLooping"] == "300s"
    assert fors["KubePodNotReady"] == "20s"


def test_scenario_alert_for_without_expected_alert_overrides_every_rule() -> None:
    rendered = monitoring.rules_for_scenario(_scenario("15m", None), monitoring.MonitoringSettings())  # type: ignore[arg-type]
    assert {r["for"] for r in monitoring.alert_rules(rendered)} == {"900s"}


@needs_promtool
@pytest.mark.monitoring
def test_rendered_rules_still_pass_promtool(tmp_path: Path) -> None:
    rendered = monitoring.rules_for_scenario(
        _scenario("2m", "KubePodCrashLooping"), monitoring.MonitoringSettings()
    )  # type: ignore[arg-type]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rendered, sort_keys=False))
    count = sum(len(g["rules"]) for g in rendered["groups"])
    assert count > 11  # the Kubernetes alerts and the SLO burn-rate rules
    assert f"SUCCESS: {count} rules found" in monitoring.check_rules_file(path)


def test_prometheus_durations() -> None:
    p = monitoring.parse_prom_duration
    assert p("15s") == timedelta(seconds=15)
    assert p("1m30s") == timedelta(seconds=90)
    assert p("500ms") == timedelta(milliseconds=500)
    assert p("1h") == timedelta(hours=1)
    for bad in ("", "15", "1x", "s"):
        with pytest.raises(ValueError, match="duration"):
            p(bad)
