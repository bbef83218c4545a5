"""`drill ctk import`: every corpus experiment becomes a scenario that validates, or fails as validate does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from drills.adapters.files.ctk_import import import_experiment
from drills.adapters.files.scenarios import load_scenario
from drills.cli import cli

CORPUS = Path(__file__).parent / "ctk"
RUNNABLE = ["valid-ref.json", "env-rollback.yaml", "inline-secret.json"]
INVALID = {"no-such-function.json": "drain_every_node_everywhere", "ref-to-nothing.json": "count-the-pods",
           "broken.json": "nowhere"}  # fmt: skip


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_CTK_NODE_LABEL", "pool=a")
    monkeypatch.setenv("DRILLS_CTK_TOKEN", "t0ken")


def _copy(name: str, tmp_path: Path) -> Path:
    (tmp_path / "experiments").mkdir(exist_ok=True)
    return Path(shutil.copy(CORPUS / name, tmp_path / "experiments" / name))


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_runnable_experiment_imports_to_a_scenario_that_validates(name: str, tmp_path: Path) -> None:
    experiment = _copy(name, tmp_path)
    out = tmp_path / "scenario.yaml"
    result = CliRunner().invoke(cli, ["ctk", "import", str(experiment), "-o", str(out)])
    assert result.exit_code == 0, result.output
    scenario = load_scenario(out)
    (fault,) = scenario.faults
    assert fault.kind == "chaostoolkit" and fault.experiment == f"experiments/{name}"
    assert "passes" in result.output


def test_targets_blast_radius_mitigation_and_configuration_are_found(tmp_path: Path) -> None:
    found = import_experiment(_copy("valid-ref.json", tmp_path), output=tmp_path / "s.yaml")
    assert found.targets and "terminate_pods" in found.targets[0]
    assert found.blast_radius == ["terminate_pods: 1 pod(s) matching app=myapp in production"]
    assert found.mitigation == "scale"  # a replaced pod: the system heals alone
    assert found.configuration == {"ns": {"type": "env", "key": "DRILL_NS", "default": "production"}}
    assert "self_healing: true" in found.scenario_yaml and "workload: myapp" in found.scenario_yaml

    drain = import_experiment(_copy("env-rollback.yaml", tmp_path), output=tmp_path / "s.yaml")
    assert drain.mitigation == "uncordon" and "namespace: production" in drain.scenario_yaml
    assert "configuration:\n    node_label:\n      type: env\n      key: DRILLS_CTK_NODE_LABEL" in (
        drain.scenario_yaml
    )


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_experiment_imports_with_validates_problems_and_exit_3(name: str, tmp_path: Path) -> None:
    experiment = _copy(name, tmp_path)
    result = CliRunner().invoke(cli, ["ctk", "import", str(experiment), "-o", str(tmp_path / "s.yaml")])
    assert result.exit_code == 3, result.output
    assert INVALID[name] in result.output and f"{experiment}:" in result.output
