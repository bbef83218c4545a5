"""The `drill` command line: a thin layer over the library (see ``_app`` for exit codes and the command table).

Nothing heavy is imported here: each command's module is imported when that command runs (``_app.COMMANDS``).
"""

from __future__ import annotations

from drills.cli._app import ExitCode, cli


def main() -> None:
    cli(prog_name="drill")


__all__ = ["ExitCode", "cli", "main"]
