"""Chaos Toolkit experiments validated as chaoslib does, every problem at once, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
        logging.getLogger("chaostoolkit").error(
            "HTTP response headers: Authorization: Bearer k8s-token-0123456789abcdef"
        )
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


# ---- `drill validate` (and `drill run`, through load_scenario) on the corpus -----------------------------


def _scenario(tmp_path: Path, experiment: str, extra: str = "") -> Path:
    import shutil

    shutil.copy(CORPUS / experiment, tmp_path / experiment)
    path = tmp_path / "wrapped.yaml"
    path.write_text(
        "id: wrapped\ntitle: a wrapped experiment\ncategory: chaos\n"
        "impact: {users_affected_pct: 0.5, service_status: minor, data_loss_risk: none, revenue_impact: low}\n"
        f"faults:\n  - kind: chaostoolkit\n    experiment: {experiment}\n{extra}"
        "steady_state:\n  probes:\n    - probe: deployment-available\n      name: app\n"
        "expected_response:\n  mitigations: [scale]\n"
    )
    return path


def _validate(path: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from drills.cli import cli

    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output


def test_validate_names_a_function_the_extension_does_not_have(tmp_path: Path) -> None:
    code, out = _validate(_scenario(tmp_path, "no-such-function.json"))
    assert code == 3, out
    exp = tmp_path / "no-such-function.json"
    assert f"{exp}:6: method[0].provider: activity 'drain-everything':" in out, out
    assert "drain_every_node_everywhere" in out


def test_validate_names_a_ref_to_nothing(tmp_path: Path) -> None:
    code, out = _validate(_scenario(tmp_path, "ref-to-nothing.json"))
    assert code == 3, out
    exp = tmp_path / "ref-to-nothing.json"
    assert f"{exp}:8: method[1].ref: activity 'count-the-pods': no activity named 'count-the-pods'" in out, (
        out
    )


def test_the_scenarios_configuration_supplies_the_env_key_before_validation(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv("DRILLS_CTK_NODE_LABEL", raising=False)
    code, out = _validate(_scenario(tmp_path, "env-rollback.yaml"))
    assert code == 3
    assert "configuration.node_label: reads the environment variable DRILLS_CTK_NODE_LABEL" in out, out
    extra = "    configuration:\n      node_label: {type: env, key: DRILLS_CTK_POOL, default: pool=a}\n"
    code, out = _validate(_scenario(tmp_path, "env-rollback.yaml", extra))
    assert code == 0, out


def test_experiment_yaml_is_yaml_1_2(tmp_path: Path) -> None:
    from drills.adapters.chaostoolkit import read_experiment

    data = read_experiment(CORPUS / "env-rollback.yaml")
    assert data["configuration"]["note"] == "yes"


def test_an_env_secret_needs_its_variable_and_the_scenario_can_name_another(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv("DRILLS_CTK_TOKEN", raising=False)
    code, out = _validate(_scenario(tmp_path, "inline-secret.json"))
    assert code == 3
    assert "secrets.k8s.token: reads the environment variable DRILLS_CTK_TOKEN" in out, out
    monkeypatch.setenv("DRILLS_CTK_OTHER_TOKEN", "t0ken")
    extra = "    secrets:\n      k8s: {token: {type: env, key: DRILLS_CTK_OTHER_TOKEN}}\n"
    code, out = _validate(_scenario(tmp_path, "inline-secret.json", extra))
    assert code == 0, out


def test_run_refuses_an_invalid_experiment_with_exit_3_before_touching_a_cluster(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from drills.cli import cli

    path = _scenario(tmp_path, "broken.json")
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 3, result.output
    assert "drain_every_node_everywhere" in result.output


# ---- rollback strategies, as `chaos run --rollback-strategy` has them ------------------------------------


def test_rollback_strategies_decide_as_chaos_run_does() -> None:
    from drills.adapters.chaostoolkit import rollbacks_wanted

    completed = {"status": "completed", "deviated": False}
    deviated = {"status": "completed", "deviated": True}
    failed = {"status": "failed", "deviated": False}
    assert [rollbacks_wanted("default", j)[0] for j in (completed, deviated, failed, None)] == [
        True,
        True,
        False,
        False,  # no run journal: drills stopped mid-method, an interrupted run
    ]
    assert [rollbacks_wanted("always", j)[0] for j in (completed, failed, None)] == [True, True, True]
    assert [rollbacks_wanted("never", j)[0] for j in (completed, deviated)] == [False, False]
    assert [rollbacks_wanted("deviated", j)[0] for j in (completed, deviated)] == [False, True]


def test_rollbacks_not_played_say_what_was_not_restored(tmp_path: Path) -> None:
    from drills.adapters.chaostoolkit import run_rollbacks
    from drills.model.revert import ChaosToolkitRollbacks

    journal = tmp_path / "chaostoolkit-journal.json"
    journal.write_text(json.dumps({"status": "completed", "deviated": False}))
    op = ChaosToolkitRollbacks(
        experiment=str(CORPUS / "env-rollback.yaml"),
        kubeconfig=str(tmp_path / "nowhere"),
        strategy="deviated",
        run_journal=str(journal),
    )
    note = run_rollbacks(op)
    assert "rollbacks not played (rollback strategy deviated: no deviation)" in note
    assert "not restored: uncordon-the-pool" in note


def test_the_run_journal_keeps_no_secret(tmp_path: Path) -> None:
    from drills.adapters.chaostoolkit import write_run_journal

    path = tmp_path / "j.json"
    write_run_journal(
        {"status": "completed", "experiment": {"secrets": {"k8s": {"token": "s3cr3t-inline"}}}}, path
    )
    assert "s3cr3t-inline" not in path.read_text()
    assert json.loads(path.read_text())["status"] == "completed"


def test_a_hypothesis_not_met_has_its_own_exit_code() -> None:
    from drills.cli._app import EXIT_MEANINGS, ExitCode
    from drills.cli.run import RUN_EXITS
    from drills.errors import SteadyStateNotMet

    assert SteadyStateNotMet("x").exit_code == ExitCode.NOT_STEADY == 7
    assert ExitCode.NOT_STEADY in RUN_EXITS and "steady state" in EXIT_MEANINGS[ExitCode.NOT_STEADY]


# ---- the method runs in the background: T0 at the first action, never held back by pauses ---------------


def test_the_method_runs_in_the_background_and_the_first_action_is_known_before_its_pauses_end(
    tmp_path: Path,
) -> None:
    from drills.adapters.chaostoolkit import ExperimentRun, JournalEvents
    from drills.timing import SYSTEM_CLOCK

    experiment = {
        "title": "pauses before and after",
        "description": "an action between two pauses, no cluster needed",
        "method": [
            {
                "type": "probe",
                "name": "look",
                "provider": {
                    "type": "python",
                    "module": "os.path",
                    "func": "exists",
                    "arguments": {"path": "/"},
                },
            },
            {
                "type": "action",
                "name": "act",
                "pauses": {"before": 0.2, "after": 1.5},
                "provider": {
                    "type": "python",
                    "module": "os.path",
                    "func": "exists",
                    "arguments": {"path": "/"},
                },
            },
        ],
    }

    class Sink:
        def __init__(self) -> None:
            self.events: list[Any] = []

        def append(self, event: Any) -> Any:
            self.events.append(event)
            return event

    sink = Sink()
    handler = JournalEvents(sink, SYSTEM_CLOCK, "pauses")  # type: ignore[arg-type]
    run = ExperimentRun(
        experiment,
        {"runtime": {"rollbacks": {"strategy": "never"}}},
        handler,
        kubeconfig=tmp_path / "none",
        context=None,
        label="pauses",
        log_file=tmp_path / "ctk.log",
    ).start()
    assert handler.acting.wait(10)
    # the action started after its 0.2 s pause; its 1.5 s pause after is still to come
    assert handler.first_action_started_at is not None and run.running
    assert run.join(20) and run.error is None and run.journal is not None
    assert run.journal["status"] == "completed"
    finished = [e for e in sink.events if e.phase == "finished"]
    assert finished and finished[0].detail["summary"] == "2 of 2 activities succeeded"
    # chaoslib's log went to the file, and its signal handlers were left out (no ValueError in a thread)
    assert "Running experiment: pauses before and after" in (tmp_path / "ctk.log").read_text()


# ---- the experiment shown: each activity by name, status, duration; N of M --------------------------------


def test_the_timeline_names_each_activity_with_status_and_duration() -> None:
    from datetime import UTC, datetime

    from drills.model.events import ChaosToolkitEvent, CommsPosted, Source
    from drills.reporting.view import describe

    at = datetime(2026, 1, 1, tzinfo=UTC)

    def text(phase: str, **detail: Any) -> str:
        event = ChaosToolkitEvent(
            at=at,
            source=Source.SYSTEM,
            actor="chaostoolkit",
            phase=phase,
            detail={"experiment": "x", **detail},
        )
        described = describe(event)
        assert described is not None
        return described[2]

    assert text("activity", name="drain-pool", kind="action", status="succeeded", duration=12.34) == (
        "Chaos Toolkit action drain-pool: succeeded (12.3s)"
    )
    assert text("finished", status="completed", deviated=True, summary="2 of 3 activities succeeded") == (
        "Chaos Toolkit experiment finished: completed, deviated, 2 of 3 activities succeeded"
    )
    assert (
        text("hypothesis-before", met=False)
        == "Chaos Toolkit steady-state hypothesis before the method: NOT met"
    )
    assert "chaoslib 1.44" in text("started", chaoslib_version="1.44", chaosk8s_version="0.39")
    posted = describe(CommsPosted(at=at, source=Source.BOT, actor="bot", template="customer_email"))
    assert posted is not None and "(P0)" not in posted[2]


# ---- parity with chaoslib's own loader and validator, without a cluster ---------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_the_corpus_reads_as_chaoslib_reads_it_but_for_yaml_1_1(path: Path, tmp_path: Path) -> None:
    from chaoslib.loader import load_experiment as chaoslib_load

    from drills.adapters.chaostoolkit import read_experiment

    ours = read_experiment(path)
    with _quiet(tmp_path):
        theirs = chaoslib_load(str(path))
    if path.name == "env-rollback.yaml":
        assert (ours["configuration"].pop("note"), theirs["configuration"].pop("note")) == ("yes", True)
    assert ours == dict(theirs)


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_an_experiment_we_find_problems_in_is_one_chaoslib_refuses_too(
    path: Path, monkeypatch: Any, tmp_path: Path
) -> None:
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    from drills.adapters.chaostoolkit import read_experiment

    monkeypatch.delenv("DRILLS_CTK_NODE_LABEL", raising=False)
    monkeypatch.delenv("DRILLS_CTK_DRAIN_LABEL", raising=False)
    monkeypatch.delenv("DRILLS_CTK_TOKEN", raising=False)
    experiment = read_experiment(path)
    ours = experiment_problems(experiment)
    try:
        with _quiet(tmp_path):
            ensure_experiment_is_valid(experiment)
        refused = False
    except ChaosException:
        refused = True
    assert bool(ours) == refused, ours


def _quiet(tmp_path: Path) -> Any:
    from drills.adapters.chaostoolkit import chaoslib_logs

    return chaoslib_logs(tmp_path / "chaostoolkit.log")
