"""`drill`'s commands are imported only when used, and the command table cannot drift from the commands.

The table (``drills.cli._app.COMMANDS``) holds each command's name, one-line help and ``module:attr``; the
group's help is printed from it, so a test checks every entry against the command it names.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import drills.cli
from drills.adapters.clusters import facade
from drills.cli import cli
from drills.cli._app import COMMANDS, DEFAULT_CLUSTER, EXIT_MEANINGS, ExitCode, LazyGroup

HEAVY = ("kubernetes", "chaoslib", "chaosk8s", "rich", "jinja2", "prometheus_client", "pydantic", "yaml")

_PROBE = """
import json, sys
from drills.cli import cli
try:
    cli({args!r}, prog_name="drill")
except SystemExit:
    pass
sys.stderr.write("\\nLOADED=" + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)) + "\\n")
"""


def loaded_after(args: list[str], tmp_path: Path) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running `drill ARGS`."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DRILLS_STATE": str(tmp_path / "state"),
        "DRILLS_REPORTS": str(tmp_path / "reports"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args, heavy=HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("LOADED="))
    return list(json.loads(line.removeprefix("LOADED=")))


def test_drill_help_imports_nothing_heavy(tmp_path: Path) -> None:
    assert loaded_after(["--help"], tmp_path) == []


def test_a_command_help_imports_only_its_own_module(tmp_path: Path) -> None:
    # `drill note --help` needs the responder module, never the kubernetes client or chaoslib
    loaded = loaded_after(["note", "--help"], tmp_path)
    assert "kubernetes" not in loaded and "chaoslib" not in loaded


def test_the_pending_revert_warning_is_cheap_without_open_ledgers(tmp_path: Path) -> None:
    # the group callback (the ledger check) runs before `drill history`; no open ledger: no faults import
    closed = tmp_path / "state" / "drills" / "d1"
    closed.mkdir(parents=True)
    (closed / "ledger.jsonl").write_text(
        '{"v":1,"record":"planned","entry":"e1"}\n{"v":1,"record":"reverted","entry":"e1"}\n'
    )
    assert "kubernetes" not in loaded_after(["completion", "bash"], tmp_path)
    assert "kubernetes" not in loaded_after(["history", "-o", "json"], tmp_path)


def test_an_open_ledger_is_still_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    directory = tmp_path / "state" / "drills" / "20250101-000000-x"
    directory.mkdir(parents=True)
    (directory / "ledger.jsonl").write_text(
        json.dumps(
            {
                "v": 1,
                "record": "planned",
                "entry": "e1",
                "at": "2025-01-01T00:00:00+00:00",
                "drill_id": "20250101-000000-x",
                "fault_kind": "bad-deploy",
                "target": "deployment/app",
                "kubeconfig": "k",
                "context": "c",
                "ops": [],
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    result = CliRunner().invoke(cli, ["schema", "policy"])
    assert "fault bad-deploy on deployment/app was not reverted" in " ".join(result.stderr.split())


@pytest.mark.parametrize("entry", list(COMMANDS.values()), ids=list(COMMANDS))
def test_every_table_entry_resolves_and_its_help_matches(entry: object) -> None:
    from drills.cli._app import LazyCommand

    assert isinstance(entry, LazyCommand)
    cmd = entry.load()
    assert cmd.name == entry.name
    assert entry.help == cmd.get_short_help_str(limit=10_000), f"update COMMANDS[{entry.name!r}]"


def _walk(cmd: click.Command, path: str = "drill") -> list[tuple[str, click.Command]]:
    found = [(path, cmd)]
    if isinstance(cmd, click.Group) and not isinstance(cmd, LazyGroup):
        for name, sub in cmd.commands.items():
            found += _walk(sub, f"{path} {name}")
    return found


def _all_commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for entry in COMMANDS.values():
        found += _walk(entry.load(), f"drill {entry.name}")
    return found


def test_every_command_lists_its_exit_codes() -> None:
    for path, cmd in _all_commands():
        if isinstance(cmd, click.Group) and not getattr(cmd, "invoke_without_command", False):
            continue  # a group only dispatches; its commands say what they return
        assert cmd.epilog and cmd.epilog.startswith("\b\nExit codes:"), (
            f"{path} has no exit codes in its help"
        )
        for code in getattr(cmd, "exit_codes", ()):
            assert f"{int(code):<3} {EXIT_MEANINGS[code]}" in cmd.epilog


def test_the_exit_codes_show_in_a_commands_help() -> None:
    result = CliRunner().invoke(cli, ["score", "--help"])
    assert result.exit_code == 0
    text = result.output
    assert "Exit codes:" in text
    assert f"  1   {EXIT_MEANINGS[ExitCode.SLA_BREACHED]}" in text
    assert f"  3   {EXIT_MEANINGS[ExitCode.INVALID_INPUT]}" in text


def test_no_module_registers_a_command_behind_the_tables_back() -> None:
    """Every click command defined in drills.cli is in the table or under a group that is."""
    reachable = {id(cmd) for _, cmd in _all_commands()}
    for info in pkgutil.iter_modules(drills.cli.__path__):
        module = importlib.import_module(f"drills.cli.{info.name}")
        for attr, value in vars(module).items():
            if isinstance(value, click.Command) and value is not cli:
                assert id(value) in reachable, f"drills.cli.{info.name}.{attr} is not in COMMANDS"
    assert set(cli.commands) <= set(COMMANDS)


def test_the_group_help_lists_the_tables_short_helps() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"\n  {name} " in result.output


def test_the_default_cluster_is_the_facades() -> None:
    assert DEFAULT_CLUSTER == facade.DEFAULT_NAME


def test_the_old_plan_and_observe_flags_of_run_are_gone() -> None:
    for flag in ("--plan", "--observe"):
        result = CliRunner().invoke(cli, ["run", "bad-deploy-rollback", flag, "x"])
        assert result.exit_code == ExitCode.USAGE
        assert "No such option" in result.output


@pytest.mark.parametrize(
    ("records", "open_"),
    [
        ([("planned", "a"), ("reverted", "a")], False),
        ([("planned", "a"), ("planned", "b"), ("reverted", "a"), ("reverted", "a")], True),
        ([("planned", "a"), ("injected", "a")], True),
        ([("planned", "a"), ("revert_failed", "a"), ("reverted", "a")], False),
    ],
)
def test_the_quick_ledger_scan(
    records: list[tuple[str, str]], open_: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drills.adapters.faults.ledger import Ledger, read_ledger
    from drills.cli._app import _ledgers_with_open_entries

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    path = tmp_path / "state" / "drills" / "d" / "ledger.jsonl"
    path.parent.mkdir(parents=True)
    ledger = Ledger(path, drill_id="d")
    ids: dict[str, str] = {}
    for kind, name in records:
        if kind == "planned":
            ids[name] = ledger.plan(
                fault_kind="bad-deploy", target="deployment/app", kubeconfig="k", context="c", ops=[]
            )
        else:
            getattr(ledger, kind)(ids[name], *(["boom"] if kind == "revert_failed" else []))
    assert _ledgers_with_open_entries() is open_
    # the quick scan agrees with the ledger's own reader
    assert bool(read_ledger(path).pending()) is open_
