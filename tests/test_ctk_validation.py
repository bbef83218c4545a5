"""Chaos Toolkit experiments validated as chaoslib does, every problem at once, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drills.adapters.chaostoolkit import experiment_problems

CORPUS = Path(__file__).parent / "ctk"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / name).read_text())
    return data


def test_a_valid_experiment_with_a_ref_and_an_env_default_has_no_problem() -> None:
    assert experiment_problems(_load("valid-ref.json")) == []


def test_every_problem_is_named_with_its_activity_and_field() -> None:
    problems = [str(p) for p in experiment_problems(_load("broken.json"))]
    assert any(
        p.startswith("configuration: node_label: reads the environment variable DRILLS_TEST_UNSET_NODE_LABEL")
        for p in problems
    ), problems
    assert any(
        "method[0] (activity 'drain-all-the-things'): provider:" in p and "drain_every_node_everywhere" in p
        for p in problems
    ), problems
    assert any(
        p.startswith("method[1] (activity 'nowhere'): ref: no activity named 'nowhere'") for p in problems
    ), problems
    assert any("method[2] (activity 'wrong-arguments')" in p and "no_such_argument" in p for p in problems), (
        problems
    )
    assert len(problems) == 4


def test_the_scenarios_configuration_supplies_an_env_typed_key() -> None:
    problems = experiment_problems(_load("broken.json"), configuration={"node_label": "pool=a"})
    assert not any(p.field == "node_label" for p in problems)


def test_an_env_key_set_in_the_environment_is_fine(monkeypatch: Any) -> None:
    monkeypatch.setenv("DRILLS_TEST_UNSET_NODE_LABEL", "pool=a")
    assert not any(p.field == "node_label" for p in experiment_problems(_load("broken.json")))


def test_a_missing_method_is_a_problem_not_a_crash() -> None:
    problems = experiment_problems({"title": "t", "description": "d"})
    assert [p.field for p in problems] == ["method"]


def test_rollbacks_get_the_configuration_and_secrets_resolved(monkeypatch: Any) -> None:
    from drills.adapters.chaostoolkit import resolve_configuration

    monkeypatch.setenv("DRILLS_TEST_NODE_LABEL", "pool=blue")
    experiment = {
        "configuration": {
            "node_label": {"type": "env", "key": "DRILLS_TEST_NODE_LABEL"},
            "ns": {"type": "env", "key": "DRILLS_TEST_UNSET_NS", "default": "production"},
            "plain": 3,
        },
        "secrets": {
            "k8s": {
                "token": "inline-token-value",
                "from_env": {"type": "env", "key": "DRILLS_TEST_NODE_LABEL"},
            }
        },
    }
    config, secrets = resolve_configuration(experiment, {"plain": 4}, label="x.json")
    assert config["node_label"] == "pool=blue"
    assert config["ns"] == "production"
    assert config["plain"] == 4
    assert secrets == {"k8s": {"token": "inline-token-value", "from_env": "pool=blue"}}


def test_an_unresolvable_configuration_is_a_clear_error() -> None:
    import pytest

    from drills.adapters.chaostoolkit import resolve_configuration
    from drills.errors import ChaosToolkitError

    with pytest.raises(ChaosToolkitError, match="cannot resolve its configuration"):
        resolve_configuration(
            {"configuration": {"x": {"type": "env", "key": "DRILLS_TEST_UNSET_X"}}}, {}, label="x.json"
        )


def test_chaoslib_logging_and_warnings_go_to_the_log_file_not_the_console(
    tmp_path: Path, capsys: Any
) -> None:
    import logging
    import warnings

    from drills.adapters.chaostoolkit import chaoslib_logs

    log = tmp_path / "chaostoolkit.log"
    with chaoslib_logs(log):
        logging.getLogger("chaostoolkit").error("HTTP response headers: Authorization: Bearer k8s-token-0123456789abcdef")
        warnings.warn("a deprecated feature", DeprecationWarning, stacklevel=1)
    out = capsys.readouterr()
    assert "Authorization" not in out.out + out.err
    text = log.read_text()
    assert "HTTP response headers" in text and "DeprecationWarning: a deprecated feature" in text
    assert "k8s-token-0123456789abcdef" not in text  # scrubbed before it was written
    # the logger is as it was afterwards
    assert logging.getLogger("chaostoolkit").propagate


def test_the_versions_are_the_installed_ones() -> None:
    from importlib import metadata

    from drills.adapters.chaostoolkit import versions

    assert versions() == {
        "chaoslib_version": metadata.version("chaostoolkit-lib"),
        "chaosk8s_version": metadata.version("chaostoolkit-kubernetes"),
    }
