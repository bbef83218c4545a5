"""`drill score`, `drill report`, `drill report monthly` and `drill handoff` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import passing_drill
from click.testing import CliRunner, Result
from freezegun import freeze_time
from report_journal import DRILL_ID, report_events, write_report_journal

from drills.adapters.store.journal import Journal
from drills.cli import ExitCode, cli
from drills.engine.scoring import score
from drills.timing import FakeClock

# freezegun walks every loaded module's attributes; the kubernetes client builds pydantic models lazily on
# attribute access, which fails while datetime is faked. Reports never read the cluster's clock.
FREEZE_IGNORE = ["kubernetes"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))


def drill(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def flat(text: str) -> str:
    """Error text with the terminal's line wrapping undone."""
    return " ".join(text.split())


def _passing_journal(directory: Path) -> Path:
    events = passing_drill("P1", drill_id="20250310-140000-passing").events
    path = directory / "passing" / "journal.jsonl"
    path.parent.mkdir(parents=True)
    Journal(path, FakeClock(events[0].at), env={}).append_many(events)
    return path


# ---- drill score -------------------------------------------------------------------------------------


def test_score_json_is_the_scorecard_and_a_failed_drill_exits_sla_breached(tmp_path: Path) -> None:
    result = drill("score", write_report_journal(tmp_path), "--json")
    assert result.exit_code == ExitCode.SLA_BREACHED
    printed = json.loads(result.stdout)
    assert printed == json.loads(score(report_events()).model_dump_json())
    assert printed["passed"] is False


def test_score_of_a_passing_drill_exits_ok(tmp_path: Path) -> None:
    result = drill("score", _passing_journal(tmp_path))
    assert result.exit_code == ExitCode.OK, result.output
    assert "grade A passed" in result.stdout
    assert "mtta.p1" in result.stdout
    assert "mtta.p0" not in result.stdout  # n/a for a P1 drill: hidden unless --all
    assert "mtta.p0" in drill("score", _passing_journal(tmp_path / "again"), "--all").stdout


def test_score_a_missing_journal_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = drill("score", tmp_path / "nope.jsonl")
    assert result.exit_code == 4
    assert f"error: no journal at {tmp_path / 'nope.jsonl'}" in flat(result.stderr)
    assert "Traceback" not in result.output


def test_score_a_file_that_is_not_a_drill_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text("".join(e.model_dump_json() + "\n" for e in report_events()[1:]))
    result = drill("score", path)
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert f"error: {path}: no drill.started event: this is not a drill journal" in flat(result.stderr)


def test_score_warns_about_a_torn_line_and_still_scores(tmp_path: Path) -> None:
    path = write_report_journal(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"v": 1, "type": "note", "id": "torn')
    result = drill("score", path, "--json")
    assert result.exit_code == ExitCode.SLA_BREACHED
    assert "warning:" in result.stderr and "torn last line" in flat(result.stderr)
    assert json.loads(result.stdout)["drill_id"] == DRILL_ID


def test_score_with_a_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("sla:\n  mtta_p0: 10m\n  p0_ack: 10m\n  oncall_respond_p0_p1: 10m\n")
    result = drill("score", write_report_journal(tmp_path), "--json", "--policy", policy)
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["mtta.p0"]["status"] == "pass"
    assert checks["mtta.p0"]["target"] == "PT10M"


def test_score_with_a_broken_policy_names_file_and_line(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("sla:\n  mtta_p0: soon\n")
    result = drill("score", write_report_journal(tmp_path), "--policy", policy)
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert f"{policy}:2: sla.mtta_p0:" in flat(result.stderr)


# ---- drill report JOURNAL ----------------------------------------------------------------------------


def test_report_writes_the_four_files_under_drills_reports(tmp_path: Path) -> None:
    result = drill("report", write_report_journal(tmp_path))
    assert result.exit_code == ExitCode.OK, result.output
    out = tmp_path / "reports" / DRILL_ID
    for name in ("postmortem.md", "scorecard.json", "report.html", "junit.xml"):
        assert (out / name).is_file()
        assert str(out / name) in result.stdout
    assert "69.9/100, grade D, did not pass" in result.stdout


def test_report_out_dir_and_the_long_form(tmp_path: Path) -> None:
    journal = write_report_journal(tmp_path)
    assert drill("report", journal, "--out", tmp_path / "x").exit_code == 0
    assert drill("report", "journal", journal, "--out", tmp_path / "y").exit_code == 0
    assert (tmp_path / "x" / "report.html").read_bytes() == (tmp_path / "y" / "report.html").read_bytes()


def test_report_help_lists_monthly() -> None:
    result = drill("report", "--help")
    assert result.exit_code == 0
    assert "monthly" in result.stdout and "journal" in result.stdout


# ---- drill report monthly ----------------------------------------------------------------------------


def _reported(tmp_path: Path) -> Path:
    drill("report", write_report_journal(tmp_path))
    drill("report", _passing_journal(tmp_path))
    return tmp_path / "reports"


def test_monthly_json(tmp_path: Path) -> None:
    reports = _reported(tmp_path)
    result = drill("report", "monthly", "--month", "2025-03", "--reports", reports, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["month"] == "2025-03"
    assert data["drills"]["total"] == 2
    assert data["drills"]["by_severity"] == {"P0": 1, "P1": 1, "P2": 0, "P3": 0}
    assert data["incidents"]["total"] == 0
    assert len(data["drills"]["actions_open"]) == 4  # the golden drill's failed checks, one item per cause
    assert len(data["drills"]["improvements_open"]) == 4


@freeze_time("2025-03-20 10:00:00", ignore=FREEZE_IGNORE)
def test_monthly_defaults_to_this_month_and_reads_unreported_journals(tmp_path: Path) -> None:
    state = tmp_path / "state" / "drills" / DRILL_ID
    state.mkdir(parents=True)
    write_report_journal(state)  # a drill whose runner crashed before writing reports
    result = drill("report", "monthly")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("## Incident Report - March 2025\n")
    assert "## Drill Report - March 2025" in result.stdout
    assert "- Total Drills: 1\n  - P0: 1\n" in result.stdout


def test_monthly_markdown_to_a_file(tmp_path: Path) -> None:
    reports = _reported(tmp_path)
    out = tmp_path / "monthly" / "2025-03.md"
    result = drill("report", "monthly", "--month", "2025-03", "--reports", reports, "--out", out)
    assert out.read_text() == result.stdout
    html = (tmp_path / "monthly" / "2025-03.html").read_text()  # the HTML page beside the markdown
    assert html.startswith("<!DOCTYPE html>") and '<svg viewBox="0 0 760' in html


def test_monthly_bad_month_is_a_usage_error(tmp_path: Path) -> None:
    result = drill("report", "monthly", "--month", "2025-13")
    assert result.exit_code == ExitCode.USAGE
    assert "month '2025-13' is not YYYY-MM" in flat(result.stderr)


def test_monthly_warns_about_a_broken_report_and_counts_the_rest(tmp_path: Path) -> None:
    reports = _reported(tmp_path)
    (reports / "broken").mkdir()
    (reports / "broken" / "scorecard.json").write_text("{")
    result = drill("report", "monthly", "--month", "2025-03", "--reports", reports, "--json")
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "broken/scorecard.json: skipped" in flat(result.stderr)
    assert json.loads(result.stdout)["drills"]["total"] == 2


# ---- drill handoff ------------------------------------------------------------------------------------


@freeze_time("2025-03-10 09:00:00", ignore=FREEZE_IGNORE)
def test_handoff_covers_the_last_seven_days(tmp_path: Path) -> None:
    _reported(tmp_path)  # the golden drill on 2025-03-04, the passing one on 2025-03-04 too (builder start)
    result = drill("handoff")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("## On-Call Handoff - 2025-03-03 09:00 to 2025-03-10 09:00 UTC\n")
    assert "#incident-20250304-0900 Bad deploy: the new release crash-loops: drill, P0" in result.stdout
    assert "### Ongoing Issues\n- A1 (20250304-090000-bad-deploy-rollback): " in result.stdout


@freeze_time("2025-03-10 09:00:00", ignore=FREEZE_IGNORE)
def test_handoff_since_and_json(tmp_path: Path) -> None:
    _reported(tmp_path)
    data = json.loads(drill("handoff", "--since", "2025-03-05", "--json").stdout)
    assert data["incidents"] == []
    assert data["since"] == "2025-03-05T00:00:00Z"
    assert data["until"] == "2025-03-10T09:00:00Z"
    assert len(data["ongoing"]) == 4


def test_handoff_bad_date_is_a_usage_error() -> None:
    result = drill("handoff", "--since", "last tuesday")
    assert result.exit_code == ExitCode.USAGE
    assert "Invalid value for '--since'" in result.stderr
