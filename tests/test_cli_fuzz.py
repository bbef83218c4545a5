"""Hostile strings through the CLI: whatever the arguments, a command ends with a documented exit code.

Hypothesis builds the text (brackets and rich markup, terminal escapes, control characters, huge strings)
and click's CliRunner runs the commands in-process. An uncaught exception is a bug; so is an exit code that
is not in ``ExitCode``, or an escape sequence reaching the output. NUL is left out: no shell can pass it in
argv.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drills.cli import cli
from drills.cli._app import ExitCode

CODES = {int(c) for c in ExitCode}
FRAGMENTS = ["[/]", "[bold]", "[/bold]", "[link=x]", "\\", "\x1b[31m", "\x1b]8;;x\x07", "\x9b", "\r", "\n", "%s", "{}", "..", "/"]  # fmt: skip

characters = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
hostile = st.one_of(
    st.text(characters, max_size=40),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(characters, max_size=5)), max_size=12).map(
        "".join
    ),
    st.text(characters, min_size=2000, max_size=6000),
).filter(lambda s: not s.startswith("-"))  # an option name is click's to judge, not this test's

#: (command line with {0}/{1} for the hostile strings). Commands that need a cluster stop at finding it.
COMMAND_LINES = [
    ["score", "{0}"],
    ["score", "{0}", "-o", "json"],
    ["report", "{0}"],
    ["note", "--drill", "{0}", "{1}"],
    ["note", "{1}"],
    ["ack", "--drill", "{0}"],
    ["status", "--drill", "{0}", "-o", "json"],
    ["validate", "{0}"],
    ["validate", "{0}", "-n", "{1}"],
    ["list", "--dir", "{0}", "--tag", "{1}"],
    ["list", "--category", "{0}"],
    ["history", "--trainee", "{0}", "--scenario", "{1}"],
    ["history", "--since", "{0}"],
    ["recover", "--list", "--drill", "{0}"],
    ["run", "{0}", "--dry-run"],
    ["run", "bad-deploy-rollback", "--wrap-up", "{0}"],
    ["inject", "{0}", "--dry-run"],
    ["briefing", "{0}"],
    ["trainee", "{0}", "-o", "json"],
    ["cluster", "status", "--cluster", "{0}"],
    ["monitoring", "status", "--cluster", "{0}"],
    ["schema", "{0}"],
    ["completion", "{0}"],
    ["{0}"],
]


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    monkeypatch.setenv("DRILLS_STATE", str(root / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(root / "reports"))
    monkeypatch.setenv("DRILLS_CLUSTERS", str(root / "clusters"))
    monkeypatch.chdir(root)


@pytest.mark.parametrize("line", COMMAND_LINES, ids=[" ".join(x) for x in COMMAND_LINES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(a=hostile, b=hostile)
def test_hostile_arguments_never_crash_a_command(line: list[str], a: str, b: str) -> None:
    args = [part.format(a, b) for part in line]
    result = CliRunner().invoke(cli, args)
    out = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert result.exit_code in CODES, (args, result.exit_code, out[-2000:])
    assert "Traceback" not in out
    assert "\x1b" not in out, out[-500:]


def test_the_fuzzer_reaches_the_commands(tmp_path: Path) -> None:
    # not only click's usage errors: a hostile journal path gets as far as the journal reader
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "[/]x")])
    assert result.exit_code != ExitCode.USAGE or "journal" in result.stderr.lower() + result.stdout.lower()
