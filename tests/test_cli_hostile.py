"""User text is shown, never obeyed: rich markup and terminal escapes through every command (issue #13).

`[/]` in a path, an id or a journal field used to crash every command with rich's MarkupError; an ANSI escape
in a journal reached the terminal. Each test feeds such text through one command and checks three things:
the exit code is a documented one, there is no traceback, and the text is printed literally (escapes shown
as ``\\x1b``, never emitted).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from builders import passing_drill
from click.testing import CliRunner, Result

from drills.adapters.store.journal import Journal
from drills.cli import cli
from drills.cli._app import ExitCode, clean
from drills.model.events import ActionKind
from drills.timing import FakeClock

ESC = "\x1b[31m"
#: Markup that crashed rich (`[/]` closes nothing), markup that would style, and a colour escape.
HOSTILE = f"A[/]B[bold]C{ESC}D"
SHOWN = "A[/]B[bold]C\\x1b[31mD"
DRILL_ID = "20250310-140000-hostile"
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CODES = {int(c) for c in ExitCode}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("COLUMNS", "200")


def drill(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert result.exit_code in CODES, (result.exit_code, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    assert "\x1b" not in out, out
    return result


def shown(result: Result, text: str = SHOWN) -> bool:
    return text in (result.stdout + result.stderr)


def hostile_journal(tmp_path: Path, *, ended: bool = True) -> Path:
    """A drill journal whose free-text fields (title, trainee, notes, actions) carry markup and escapes."""
    b = passing_drill(
        "P1",
        drill_id=DRILL_ID,
        scenario_id=f"sc{HOSTILE}",
        scenario_title=f"title {HOSTILE}",
        trainee=f"t{HOSTILE}",
    )
    b.at("5m5s").note(f"note {HOSTILE}", by=HOSTILE)
    b.at("5m6s").action(ActionKind.ROLLBACK, detail=f"kubectl {HOSTILE}")
    events = [e for e in b.events if ended or e.type != "drill.ended"]
    path = tmp_path / "state" / "drills" / DRILL_ID / "journal.jsonl"
    path.parent.mkdir(parents=True)
    Journal(path, FakeClock(events[0].at), env={}).append_many(events)
    return path


def test_clean_shows_escapes_and_control_characters_as_text() -> None:
    assert clean(f"a{ESC}b\x07c\x9bd\ttab\nline") == "a\\x1b[31mb\\x07c\\x9bd\ttab\nline"


def test_score(tmp_path: Path) -> None:
    result = drill("score", hostile_journal(tmp_path))
    assert result.exit_code == ExitCode.OK
    assert shown(result, f"title {SHOWN}")


def test_score_json_keeps_the_text_as_data(tmp_path: Path) -> None:
    result = drill("score", hostile_journal(tmp_path), "-o", "json")
    assert json.loads(result.stdout)["scenario_title"] == f"title {HOSTILE}"


def test_score_of_a_path_with_markup() -> None:
    result = drill("score", f"/tmp/{HOSTILE}/x")
    assert result.exit_code in (ExitCode.USAGE, ExitCode.ENVIRONMENT, ExitCode.INVALID_INPUT)
    assert shown(result)


def test_report(tmp_path: Path) -> None:
    result = drill("report", hostile_journal(tmp_path), "--out", tmp_path / "out")
    assert result.exit_code == ExitCode.OK
    assert "postmortem" in result.stdout


def test_note_with_a_hostile_drill_id_and_text() -> None:
    result = drill("note", "--drill", HOSTILE, HOSTILE)
    assert result.exit_code == ExitCode.USAGE
    assert shown(result)


def test_note_recorded_in_a_drill(tmp_path: Path) -> None:
    hostile_journal(tmp_path, ended=False)
    result = drill("note", "--drill", DRILL_ID, "--as", HOSTILE, HOSTILE)
    assert result.exit_code == ExitCode.OK
    assert shown(result)


def test_status(tmp_path: Path) -> None:
    hostile_journal(tmp_path)
    result = drill("status", "--drill", DRILL_ID)
    assert result.exit_code == ExitCode.OK
    assert shown(result, "title A[/]B[bold]C")


def _scenario_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    text = (SCENARIOS / "bad-deploy-rollback.yaml").read_text(encoding="utf-8")
    text = text.replace("title: Checkout crashes after the v2.1.0 release", f"title: {json.dumps(HOSTILE)}")
    (directory / "hostile.yaml").write_text(text, encoding="utf-8")
    broken = directory / f"{HOSTILE}.yaml"  # the `/` of `[/]` makes a sub-directory: the path holds `[/]`
    broken.parent.mkdir(parents=True)
    broken.write_text(f"id: [/]\ntitle: {json.dumps(HOSTILE)}\n", encoding="utf-8")
    return directory


def test_list_with_a_hostile_title(tmp_path: Path) -> None:
    result = drill("list", "--dir", _scenario_dir(tmp_path))
    assert result.exit_code == ExitCode.OK
    assert shown(result)


def test_list_on_a_wide_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("drills.cli._app.wide_terminal", lambda: True)
    result = drill("list", "--dir", _scenario_dir(tmp_path))
    assert "A[/]B[bold]C" in result.stdout


def test_validate_with_hostile_paths_and_text(tmp_path: Path) -> None:
    directory = _scenario_dir(tmp_path)
    result = drill("validate", directory, directory / f"{HOSTILE}.yaml")
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert shown(result)  # the bad file's name, literally, in its problem line
    result = drill("validate", directory / "hostile.yaml", "-n", HOSTILE)
    assert result.exit_code in (ExitCode.REFUSED, ExitCode.INVALID_INPUT)
    assert shown(result)


def test_recover_list_with_a_hostile_ledger(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "drills" / DRILL_ID
    directory.mkdir(parents=True)
    record = {
        "v": 1,
        "record": "planned",
        "entry": "e1",
        "at": "2025-03-10T14:00:00+00:00",
        "drill_id": HOSTILE,
        "fault_kind": HOSTILE,
        "target": HOSTILE,
        "kubeconfig": "k",
        "context": "c",
        "ops": [],
    }
    (directory / "ledger.jsonl").write_text(json.dumps(record, separators=(",", ":")) + "\n")
    result = drill("recover", "--list")
    assert result.exit_code == ExitCode.OK
    assert shown(result)
    # and the warning every other command prints at start
    assert shown(drill("schema", "policy"))


def test_history(tmp_path: Path) -> None:
    hostile_journal(tmp_path)
    result = drill("history")
    assert result.exit_code == ExitCode.OK
    assert shown(result)
    data = json.loads(drill("history", "-o", "json").stdout)
    assert data[0]["trainee"] == f"t{HOSTILE}"


def test_errors_show_the_input_literally(tmp_path: Path) -> None:
    result = drill("run", HOSTILE)
    assert result.exit_code == ExitCode.USAGE
    assert shown(result)
    result = drill("history", "--since", HOSTILE)
    assert result.exit_code == ExitCode.USAGE
    assert shown(result)


def test_a_hostile_cluster_name(tmp_path: Path) -> None:
    result = drill("cluster", "status", "--cluster", HOSTILE)
    assert result.exit_code in (ExitCode.USAGE, ExitCode.ENVIRONMENT)
    assert shown(result) or "cluster name" in result.stderr


def test_a_hostile_scenario_file_name(tmp_path: Path) -> None:
    directory = _scenario_dir(tmp_path)
    shutil.copy(directory / "hostile.yaml", directory / f"{HOSTILE}.yml")
    result = drill("briefing", directory / f"{HOSTILE}.yml")
    assert result.exit_code == ExitCode.OK
    assert shown(result)


def test_a_rich_table_shows_a_hostile_title_and_cells(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from drills.cli._app import print_table

    monkeypatch.setattr("drills.cli._app.wide_terminal", lambda: True)
    print_table(("x",), [(HOSTILE,)], title=HOSTILE)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "A[/]B[bold]" in out and out.count("A[/]B") == 2
