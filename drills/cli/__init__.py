"""The `drill` command line: a thin layer over the library (see ``_app`` for exit codes)."""

from __future__ import annotations

from drills.cli._app import ExitCode, cli

# Each module registers its commands on ``cli`` when imported.
from drills.cli import scenarios as _scenarios  # noqa: F401  (registers commands)


def main() -> None:
    cli(prog_name="drill")


__all__ = ["ExitCode", "cli", "main"]
