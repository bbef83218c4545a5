"""`drill validate`, `drill schema`, `drill list` through click, as a person or a script would call them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from drills.adapters.store.paths import repo_root
from drills.cli import ExitCode, cli
from drills.model.events import EVENT_TYPES

SCENARIOS = repo_root() / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_the_shipped_scenarios(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_SCENARIOS", str(SCENARIOS))
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == ExitCode.OK, result.output
    assert result.output == f"{len(SHIPPED)} scenarios valid, 0 problems\n"


def test_validate_prints_every_problem_and_exits_invalid_input(runner: CliRunner, tmp_path: Path) -> None:
    good = SCENARIOS / "bad-deploy-rollback.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        good.read_text()
        .replace("difficulty: beginner", "difficulty: easy")
        .replace("  - kind: bad-deploy", "  - kind: bad-deplyo")
    )
    result = runner.invoke(cli, ["validate", str(good), str(broken)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    lines = result.output.splitlines()
    assert lines[-1] == "1 scenario valid, 2 problems"
    assert (
        lines[0].startswith(f"{broken}:")
        and ": difficulty: 'easy' is not allowed (allowed: beginner," in lines[0]
    )
    assert re.match(
        rf"{re.escape(str(broken))}:\d+: faults\[0\]\.kind: unknown fault kind 'bad-deplyo'", lines[1]
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff\xfe garbage", b"", b"- just\n- a list\n", b"a: &a [*a]\n", b"key: [unclosed\n", b"\t- tab\n"],
)
def test_validate_never_prints_a_traceback(runner: CliRunner, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.exception is None or isinstance(result.exception, SystemExit)
    problem_lines = result.output.splitlines()[:-1]
    assert problem_lines and all(re.match(rf"{re.escape(str(path))}:\d+: \S", line) for line in problem_lines)


def test_validate_a_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.output == f"{tmp_path / 'nope'}: no such file or directory\n0 scenarios valid, 1 problem\n"


def test_validate_policy_files(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("sla:\n  mttd: 3m\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pass_score: 170\n")
    result = runner.invoke(cli, ["validate", "--kind", "policy", str(good), str(bad)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.output == f"{bad}:1: pass_score: must be <= 100 (got 170)\n1 policy valid, 1 problem\n"


@pytest.mark.parametrize("what", ["scenario", "journal", "scorecard", "policy"])
def test_schema_prints_a_valid_json_schema(runner: CliRunner, what: str) -> None:
    result = runner.invoke(cli, ["schema", what])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_scenario_schema_accepts_every_shipped_scenario_and_rejects_typos(runner: CliRunner) -> None:
    """Editors complete and check against this schema: it must agree with the loader."""
    schema = json.loads(runner.invoke(cli, ["schema", "scenario"]).output)
    validator = jsonschema.Draft202012Validator(schema)
    for path in SHIPPED:
        data = yaml.safe_load(path.read_text())
        assert list(validator.iter_errors(data)) == [], path
    data = yaml.safe_load(SHIPPED[0].read_text())
    data["titel"] = "typo"
    assert list(validator.iter_errors(data))


def test_the_journal_schema_knows_every_event_type(runner: CliRunner) -> None:
    schema = json.loads(runner.invoke(cli, ["schema", "journal"]).output)
    assert sorted(schema["discriminator"]["mapping"]) == sorted(EVENT_TYPES)


def test_schema_out_writes_a_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "journal.schema.json"
    result = runner.invoke(cli, ["schema", "journal", "--out", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text())["title"].startswith("drills journal event")
    result = runner.invoke(cli, ["schema", "journal", "--out", str(tmp_path / "no" / "dir.json")])
    assert result.exit_code == ExitCode.USAGE
    assert "cannot write" in result.output


def test_schema_refuses_an_unknown_kind(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema", "scenarios"])
    assert result.exit_code == 2
    assert "'scenarios' is not one of" in result.output


def test_list_shows_a_table_of_the_scenarios(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_SCENARIOS", str(SCENARIOS))
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED)} scenarios" in result.output
    row = next(line for line in result.output.splitlines() if "quarterly-dr-namespace-lost" in line)
    assert re.search(r"dr\s+│ expert\s+│ P0\s+│ namespace-lost\s+│ restore-backup", row), row


def test_list_json_filters_by_tag_and_category(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_SCENARIOS", str(SCENARIOS))
    everything = json.loads(runner.invoke(cli, ["list", "--json"]).output)
    assert len(everything) == len(SHIPPED)
    node = json.loads(runner.invoke(cli, ["list", "--json", "--category", "node"]).output)
    assert node and {s["category"] for s in node} == {"node"}
    assert {s["id"] for s in node} < {s["id"] for s in everything}
    healing = json.loads(
        runner.invoke(cli, ["list", "--json", "--tag", "chaos-test", "--tag", "self-healing"]).output
    )
    assert {s["id"] for s in healing} == {"pod-kill-self-healing", "chaostoolkit-terminate-pod"}
    assert all(s["self_healing"] for s in healing)
    dr = next(s for s in everything if s["id"] == "quarterly-dr-namespace-lost")
    assert dr["true_severity"] == "P0" and dr["mitigations"] == ["restore-backup"]


def test_list_mentions_invalid_files_without_failing(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text((SCENARIOS / "bad-deploy-rollback.yaml").read_text())
    (tmp_path / "broken.yaml").write_text("id: [\n")
    result = runner.invoke(cli, ["list", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert [s["id"] for s in json.loads(result.stdout)] == ["bad-deploy-rollback"]
    assert "`drill validate` shows them" in result.stderr


def _code_blocks(markdown: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", markdown, re.S)


def test_the_validate_example_in_docs_is_what_validate_prints(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (repo_root() / "docs" / "scenarios.md").read_text()
    broken = next(b for b in _code_blocks(doc, "yaml") if b.startswith("id: broken"))
    expected = next(b for b in _code_blocks(doc, "text") if b.startswith("scenarios/broken.yaml"))
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "broken.yaml").write_text(broken)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["validate", "scenarios/broken.yaml"])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.output == expected


def test_the_shipped_scenario_table_in_docs_is_current(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_SCENARIOS", str(SCENARIOS))
    doc = (repo_root() / "docs" / "scenarios.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (P[0-3]) \|", doc, re.M))
    listed = {s["id"]: s["true_severity"] for s in json.loads(runner.invoke(cli, ["list", "--json"]).output)}
    assert rows == listed
