"""`drill monitoring ...` without a running stack: rules rendering, status, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from drills.adapters.store.paths import repo_root
from drills.cli import cli


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_CLUSTERS", str(tmp_path / "clusters"))


def test_rules_lists_each_alert_with_its_for() -> None:
    result = CliRunner().invoke(cli, ["monitoring", "rules"])
    assert result.exit_code == 0, result.output
    assert "KubePodCrashLooping" in result.output and "10s" in result.output


def test_rules_yaml_applies_the_scenarios_alert_for(tmp_path: Path) -> None:
    scenario = yaml.safe_load((repo_root() / "scenarios" / "crash-loop-delete-pods.yaml").read_text())
    scenario["detection"]["alert_for"] = "15m"
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(cli, ["monitoring", "rules", "--scenario", str(path), "--yaml"])
    assert result.exit_code == 0, result.output
    rules = {r["alert"]: r for g in yaml.safe_load(result.output)["groups"] for r in g["rules"]}
    assert rules["KubePodCrashLooping"]["for"] == "900s"
    assert rules["KubePodCrashLooping"]["annotations"]["rule_delay_seconds"] == "902"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing")
@pytest.mark.monitoring
def test_rules_check_runs_promtool() -> None:
    result = CliRunner().invoke(cli, ["monitoring", "rules", "--check"])
    assert result.exit_code == 0, result.output


def test_status_without_a_stack_says_how_to_start_one() -> None:
    result = CliRunner().invoke(cli, ["monitoring", "status", "--name", "nothing"])
    assert result.exit_code == 4
    assert "drill monitoring up --name nothing" in result.output


def test_up_for_a_cluster_that_is_not_up_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["monitoring", "up", "--name", "nosuch", "--quiet"])
    assert result.exit_code == 4
    assert "drill cluster up --name nosuch" in result.output
    assert "Traceback" not in result.output


def test_down_without_a_stack_is_fine() -> None:
    result = CliRunner().invoke(cli, ["monitoring", "down", "--name", "nothing"])
    assert result.exit_code == 0 and "no monitoring runs" in result.output
