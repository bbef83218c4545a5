"""The `drill` command line: a thin layer over the library (see ``_app`` for exit codes)."""

from __future__ import annotations

# Each module registers its commands on ``cli`` when imported.
from drills.cli import cluster as _cluster  # noqa: F401  (registers commands)
from drills.cli import faults as _faults  # noqa: F401  (registers commands)
from drills.cli import monitoring as _monitoring  # noqa: F401  (registers commands)
from drills.cli import programs as _programs  # noqa: F401  (registers commands)
from drills.cli import reports as _reports  # noqa: F401  (registers commands)
from drills.cli import respond as _respond  # noqa: F401  (registers commands)
from drills.cli import run as _run  # noqa: F401  (registers commands)
from drills.cli import scenarios as _scenarios  # noqa: F401  (registers commands)
from drills.cli._app import ExitCode, cli


def main() -> None:
    cli(prog_name="drill")


__all__ = ["ExitCode", "cli", "main"]
