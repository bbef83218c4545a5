"""`drill ctk`: bring Chaos Toolkit experiments a team already has (docs/chaostoolkit.md)."""

from __future__ import annotations

from pathlib import Path

import click

from drills.cli._app import ExitCode, echo, exits, handle_errors, say


@click.group("ctk")
def ctk_group() -> None:
    """Chaos Toolkit experiments: `import` one as a scenario."""


@exits(ExitCode.INVALID_INPUT)
@ctk_group.command("import")
@click.argument("experiment", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the scenario to this file (default: print it; the scenario is itself YAML, so "
              "this command's -o is a file, not a format).")  # fmt: skip
@handle_errors
def import_command(experiment: Path, out: Path | None) -> None:
    """Wrap a Chaos Toolkit experiment into a scenario: targets, blast radius, mitigation, configuration."""
    from drills.adapters.files.ctk_import import import_experiment

    found = import_experiment(experiment, output=out)
    if out is not None:
        out.write_text(found.scenario_yaml, encoding="utf-8")
    else:
        echo(found.scenario_yaml)
    # What was found goes to stderr when the scenario goes to stdout, so `> scenario.yaml` works too.
    to_err = out is None
    for t in found.targets:
        say(f"target: {t}", err=to_err)
    for r in found.blast_radius:
        say(f"blast radius: {r}", err=to_err)
    say(f"suggested mitigation: {found.mitigation}", err=to_err)
    for key, value in found.configuration.items():
        default = f", default {value['default']!r}" if "default" in value else ", no default"
        say(f"configuration needed: {key} (env {value.get('key')}{default})", err=to_err)
    for p in found.problems:
        say(str(p), err=True)
    if found.problems:
        raise SystemExit(int(ExitCode.INVALID_INPUT))
    say(f"wrote {out}; `drill validate {out}` passes" if out else "the scenario validates", err=to_err)
