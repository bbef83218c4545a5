"""`drill run` refuses bad input before touching a cluster: clear messages, exit codes, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from drills.cli import cli
from drills.cli._app import ExitCode
from drills.cli.run import exit_code
from drills.model.events import Outcome


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_unknown_scenario_suggests_close_ids() -> None:
    code, out = invoke("bad-deploy-rolback")
    assert code == ExitCode.USAGE
    assert "no scenario 'bad-deploy-rolback'" in out and "bad-deploy-rollback" in out


def test_scenario_is_required() -> None:
    code, out = invoke()
    assert code == ExitCode.USAGE and "SCENARIO" in out


def test_unknown_responder_profile_lists_the_shipped_ones() -> None:
    code, out = invoke("bad-deploy-rollback", "--responder", "bot:sloww")
    assert code == ExitCode.USAGE
    assert "no responder file" in out and "slow" in out and "good" in out


def test_unknown_responder_kind() -> None:
    code, out = invoke("bad-deploy-rollback", "--responder", "robot")
    assert code == ExitCode.USAGE and "human, bot or bot:FILE" in out


def test_broken_responder_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("steps:\n  - step: ack\n    offset: 2 minutes\n", encoding="utf-8")
    code, out = invoke("bad-deploy-rollback", "--responder", f"bot:{bad}")
    assert code == ExitCode.INVALID_INPUT
    assert f"{bad}:3:" in out and "offset" in out


def test_broken_policy_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("sla:\n  mtta_p0: fast\n", encoding="utf-8")
    code, out = invoke("bad-deploy-rollback", "--policy", str(bad))
    assert code == ExitCode.INVALID_INPUT
    assert f"{bad}:2:" in out and "mtta_p0" in out


def test_bad_wrap_up_duration() -> None:
    code, out = invoke("bad-deploy-rollback", "--wrap-up", "a while")
    assert code == ExitCode.USAGE and "wrap-up" in out


class _Result:
    def __init__(
        self, outcome: Outcome, passed: bool, *, signal: int | None = None, revert: str | None = None
    ):
        self.outcome = outcome
        self.passed = passed
        self.signal = signal
        self.revert_error = revert


@pytest.mark.parametrize(
    ("outcome", "passed", "signal", "revert", "code"),
    [
        (Outcome.RESOLVED, True, None, None, ExitCode.OK),
        (Outcome.RESOLVED, False, None, None, ExitCode.SLA_BREACHED),
        (Outcome.SELF_HEALED, True, None, None, ExitCode.OK),
        (Outcome.ABORTED, False, None, None, ExitCode.ABORTED),
        (Outcome.TIMED_OUT, False, None, None, ExitCode.ABORTED),
        (Outcome.CRASHED, False, None, None, ExitCode.ENVIRONMENT),
        (Outcome.RESOLVED, True, None, "revert failed", ExitCode.ENVIRONMENT),
        (Outcome.ABORTED, False, 15, None, 143),
    ],
)
def test_exit_codes(
    outcome: Outcome, passed: bool, signal: int | None, revert: str | None, code: int
) -> None:
    assert exit_code(_Result(outcome, passed, signal=signal, revert=revert)) == code  # type: ignore[arg-type]
