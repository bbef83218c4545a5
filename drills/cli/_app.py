"""The click group every `drill` command hangs off, and the mapping of outcomes to exit codes.

Commands live in the sibling modules (one per area) and only parse, call the library, render and return an
exit code. A breached SLA is a result (exit 1), not a crash; a DrillError is printed without a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import ParamSpec, TypeVar

import click
from rich.console import Console

from drills.adapters.faults import ledger
from drills.errors import DrillError

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    OK = 0
    SLA_BREACHED = 1
    USAGE = 2
    INVALID_INPUT = 3
    ENVIRONMENT = 4
    REFUSED = 5
    ABORTED = 6
    INTERRUPTED = 130


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn DrillErrors into a message and an exit code instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DrillError as e:
            err = err_console()
            err.print(f"[bold red]error:[/] {e.message}", markup=True, highlight=False)
            if e.hint:
                err.print(f"  -> {e.hint}", markup=False)
            sys.exit(e.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "DRILLS"})
@click.version_option(package_name="drills")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """drills: chaos drills and incident-response rehearsal on Kubernetes."""
    # A crashed drill may have left a fault in a cluster: say so at every start, until `drill recover` runs.
    if ctx.invoked_subcommand != "recover":
        for line in ledger.warn_pending():
            err_console().print(f"[bold yellow]warning:[/] {line}", markup=True, highlight=False)
