"""kubectl's conventions in `drill`: -n, --cluster, -o, plain tables in a pipe, durations, completion, history."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from builders import passing_drill
from click.testing import CliRunner, Result

from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.adapters.store.journal import Journal
from drills.cli import cli
from drills.cli._app import ExitCode, print_table
from drills.cli._scenario import retarget
from drills.cli.history import parse_since
from drills.errors import SafetyError, UsageError
from drills.timing import FakeClock

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("DRILLS_CLUSTERS", str(tmp_path / "clusters"))
    monkeypatch.setenv("DRILLS_SCENARIOS", str(SCENARIOS))


def drill(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


# ---- -n/--namespace -------------------------------------------------------------------------------------


def test_retarget_replaces_the_target_namespace_and_the_namespaces_that_named_it() -> None:
    sc = load_scenario(find_scenario("bad-deploy-rollback"))
    moved = retarget(sc, "staging")
    assert moved.target.namespace == "staging"
    dumped = json.dumps(moved.model_dump(mode="json"))
    assert '"production"' not in dumped
    assert moved.id == sc.id and moved.faults[0].kind == sc.faults[0].kind
    assert retarget(sc, None) is sc


def test_retarget_into_a_system_namespace_is_refused() -> None:
    sc = load_scenario(find_scenario("bad-deploy-rollback"))
    with pytest.raises(SafetyError) as e:
        retarget(sc, "kube-system")
    assert "system namespace" in e.value.message and e.value.exit_code == ExitCode.REFUSED


def test_validate_n_checks_the_retargeted_scenarios() -> None:
    path = SCENARIOS / "bad-deploy-rollback.yaml"
    ok = drill("validate", path, "-n", "staging", "-o", "json")
    assert ok.exit_code == ExitCode.OK, ok.output
    assert json.loads(ok.stdout)["valid"] == [{"path": str(path), "id": "bad-deploy-rollback"}]
    refused = drill("validate", path, "--namespace", "kube-system")
    assert refused.exit_code == ExitCode.REFUSED
    assert "refused:" in refused.stdout and "kube-system" in refused.stdout


def test_n_is_offered_where_a_scenario_is_run() -> None:
    for command in (["run"], ["inject"], ["validate"]):
        help_text = drill(*command, "--help").output
        assert "-n, --namespace NAMESPACE" in help_text
    for command in (["run"], ["inject"]):
        help_text = drill(*command, "--help").output
        assert "--context" in help_text and "--kubeconfig" in help_text and "--cluster" in help_text


# ---- one cluster option ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["cluster", "status"], ["monitoring", "status"], ["run"], ["demo"], ["inject"], ["plan", "run"]],
)
def test_every_cluster_option_is_spelled_cluster(command: list[str]) -> None:
    help_text = drill(*command, "--help").output
    assert "--cluster" in help_text
    assert not re.search(r"--name\b(?!space)", help_text)  # the old spelling is a hidden alias


def test_the_old_name_spelling_still_works() -> None:
    new = drill("cluster", "status", "--cluster", "nothing", "-o", "json")
    old = drill("cluster", "status", "--name", "nothing", "--json")
    assert new.exit_code == old.exit_code == ExitCode.ENVIRONMENT
    assert json.loads(new.stdout)["name"] == json.loads(old.stdout)["name"] == "nothing"


# ---- -o json|yaml|table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["validate"],
        ["recover"],
        ["monitoring", "alerts"],
        ["monitoring", "status"],
        ["cluster", "status"],
        ["report", "journal"],
        ["run"],
        ["list"],
        ["history"],
        ["score"],
        ["faults"],
        ["trainee"],
    ],
)
def test_every_data_command_has_o(command: list[str]) -> None:
    help_text = drill(*command, "--help").output
    assert "-o, --output [table|json|yaml]" in help_text, help_text


def test_list_o_yaml_and_json_agree() -> None:
    as_json = json.loads(drill("list", "-o", "json").stdout)
    as_yaml = yaml.safe_load(drill("list", "-o", "yaml").stdout)
    assert as_json == as_yaml and len(as_json) >= 5


def test_recover_list_o_json_is_a_list() -> None:
    result = drill("recover", "--list", "-o", "json")
    assert result.exit_code == ExitCode.OK
    assert json.loads(result.stdout) == []


# ---- plain tables ---------------------------------------------------------------------------------------


def test_a_plain_table_drops_empty_columns_and_names_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(("id", "empty", "title"), [("a", None, "first"), ("bb", "", "second one")], title="t")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["# t", "id  title", "a   first", "bb  second one"]


def test_drill_list_piped_has_no_empty_column() -> None:
    env = {**os.environ, "COLUMNS": "300"}
    proc = subprocess.run(
        [sys.executable, "-c", "from drills.cli import main; main()", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    header = proc.stdout.splitlines()[1]
    assert header.split() == ["id", "title", "category", "difficulty", "sev", "faults", "mitigations"]
    assert "│" not in proc.stdout and "┃" not in proc.stdout


# ---- durations ------------------------------------------------------------------------------------------


def test_duration_flags_take_the_one_format() -> None:
    bad = drill("inject", "bad-deploy-rollback", "--for", "a while", "--dry-run")
    assert bad.exit_code == ExitCode.USAGE and "'90s', '5m'" in bad.output
    help_text = drill("inject", "--help").output
    assert "--for DURATION" in help_text and "--confirm-timeout DURATION" in help_text


# ---- completion -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script(shell: str) -> None:
    result = drill("completion", shell)
    assert result.exit_code == ExitCode.OK
    assert "_DRILL_COMPLETE" in result.stdout


def _complete(words: str, tmp_path: Path) -> list[str]:
    env = {
        **os.environ,
        "_DRILL_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from drills.cli import main; main()"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line]


def test_completion_of_commands_scenarios_drills_and_clusters(tmp_path: Path) -> None:
    assert "history" in _complete("drill hi", tmp_path)
    assert "bad-deploy-rollback" in _complete("drill run bad-", tmp_path)
    journal = tmp_path / "state" / "drills" / "20250310-140000-x" / "journal.jsonl"
    journal.parent.mkdir(parents=True)
    journal.write_text("{}\n")
    assert _complete("drill status --drill 2025", tmp_path) == ["20250310-140000-x"]
    handle = tmp_path / "clusters" / "blue" / "cluster.json"
    handle.parent.mkdir(parents=True)
    handle.write_text("{}")
    assert _complete("drill cluster status --cluster bl", tmp_path) == ["blue"]


# ---- history --------------------------------------------------------------------------------------------


def _journal(tmp_path: Path, drill_id: str, trainee: str, scenario: str) -> None:
    start = datetime.strptime(drill_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    events = passing_drill("P1", drill_id=drill_id, trainee=trainee, scenario_id=scenario, start=start).events
    path = tmp_path / "state" / "drills" / drill_id / "journal.jsonl"
    path.parent.mkdir(parents=True)
    Journal(path, FakeClock(events[0].at), env={}).append_many(events)


def test_history_lists_filters_and_prints_durations_as_seconds_and_iso(tmp_path: Path) -> None:
    _journal(tmp_path, "20250310-140000-a", "alice", "bad-deploy-rollback")
    _journal(tmp_path, "20250311-140000-b", "bob", "pod-kill")
    rows = json.loads(drill("history", "-o", "json").stdout)
    assert [r["drill_id"] for r in rows] == ["20250311-140000-b", "20250310-140000-a"]  # newest first
    assert rows[0]["duration"].startswith("PT") and isinstance(rows[0]["duration_seconds"], float)
    assert [r["trainee"] for r in json.loads(drill("history", "--trainee", "alice", "--json").stdout)] == [
        "alice"
    ]
    assert [
        r["scenario"] for r in json.loads(drill("history", "--scenario", "pod-kill", "-o", "json").stdout)
    ] == ["pod-kill"]
    since = json.loads(drill("history", "--since", "2025-03-11", "-o", "json").stdout)
    assert [r["drill_id"] for r in since] == ["20250311-140000-b"]
    table = drill("history")
    assert table.exit_code == ExitCode.OK
    assert table.stdout.splitlines()[1].split() == [
        "started", "drill", "scenario", "trainee", "outcome", "score", "grade", "took"
    ]  # fmt: skip


def test_history_with_nothing_on_record() -> None:
    result = drill("history")
    assert result.exit_code == ExitCode.OK and "no drills on record" in result.stdout


def test_parse_since() -> None:
    now = FakeClock().now()
    assert now - parse_since("7d", now) == timedelta(days=7)
    assert parse_since("2025-03-01", now).isoformat() == "2025-03-01T00:00:00+00:00"
    with pytest.raises(UsageError):
        parse_since("last tuesday", now)


def test_status_o_json_gives_the_scorecard_so_far_with_seconds_and_iso(tmp_path: Path) -> None:
    _journal(tmp_path, "20250310-140000-a", "alice", "bad-deploy-rollback")
    data = json.loads(drill("status", "--drill", "20250310-140000-a", "-o", "json").stdout)
    assert data["drill_id"] == "20250310-140000-a" and data["ended"] is True
    clocks = data["scorecard"]["clocks"]
    assert clocks["ttd_seconds"] == 60.0 and clocks["ttd"] == "PT1M"
    table = drill("status", "--drill", "20250310-140000-a")
    assert table.exit_code == ExitCode.OK and "this drill ended: resolved" in table.stdout
