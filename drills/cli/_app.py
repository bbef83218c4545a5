"""The click group every `drill` command hangs off, the table of commands, exit codes and the output helpers.

Commands live in the sibling modules (one per area) and only parse, call the library, render and return an
exit code. A breached SLA is a result (exit 1), not a crash; a DrillError is printed without a traceback.

Why a table: importing every command module pulls in the kubernetes client, chaoslib, rich and jinja2, which
cost a second and a half of CPU before `drill --help` could print. :data:`COMMANDS` names each top-level
command, its one-line help and the ``module:attr`` that defines it; :class:`LazyGroup` imports a command's
module only when that command runs or its own ``--help`` is asked. A test keeps the table and the commands'
docstrings from drifting apart.

Why one output path: everything people type (ids, paths, notes, titles, journal fields) is printed through
:func:`say`, :func:`warn`, :func:`emit` and :func:`print_table`, which never interpret rich markup and
neutralise terminal escape sequences, so ``[/]`` or ``\\x1b[31m`` in a journal is shown, not obeyed.
This module stays light: rich, yaml and pydantic are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum, IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import click

from drills.errors import DrillError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

#: The drill cluster commands use when no ``--cluster`` is given (``facade.DEFAULT_NAME``; a test checks).
DEFAULT_CLUSTER = "drills"
#: Below this many columns (or when stdout is not a terminal) tables are plain text, one row a line.
WIDE_TERMINAL = 100


class ExitCode(IntEnum):
    OK = 0
    SLA_BREACHED = 1
    USAGE = 2
    INVALID_INPUT = 3
    ENVIRONMENT = 4
    REFUSED = 5
    ABORTED = 6
    NOT_STEADY = 7
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.SLA_BREACHED: "the drill did not pass (an SLA breached or the score below the pass mark)",
    ExitCode.USAGE: "bad command line, or no drill running",
    ExitCode.INVALID_INPUT: "an input file is invalid (file:line: field: message)",
    ExitCode.ENVIRONMENT: "drills or its environment failed (cluster, binaries, a revert)",
    ExitCode.REFUSED: "refused by a safety rail",
    ExitCode.ABORTED: "the drill was aborted or timed out",
    ExitCode.NOT_STEADY: "the system was not in its steady state before the fault (a Chaos Toolkit "
    "hypothesis did not hold): nothing was injected",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.TERMINATED: "terminated by SIGTERM (after reverting and reporting)",
}

#: Every command can end with these: success, a bad command line, a DrillError (drills' own failure).
BASE_EXITS = (ExitCode.OK, ExitCode.USAGE, ExitCode.ENVIRONMENT)


def exit_epilog(codes: Iterable[ExitCode]) -> str:
    rows = sorted(set(BASE_EXITS) | set(codes))
    # \b keeps click from re-wrapping the list into one paragraph
    return "\b\nExit codes:\n" + "\n".join(f"  {int(c):<3} {EXIT_MEANINGS[c]}" for c in rows)


def exits(*codes: ExitCode) -> Callable[[F], F]:
    """Give a command (applied above ``@click.command``) an epilog listing the exit codes it can return."""

    def apply(cmd: F) -> F:
        if not isinstance(cmd, click.Command):
            raise TypeError("@exits goes above @click.command")
        cmd.epilog = exit_epilog(codes)
        cmd.exit_codes = frozenset(set(BASE_EXITS) | set(codes))  # type: ignore[attr-defined]
        return cmd

    return apply


# ---- the command table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LazyCommand:
    name: str
    target: str  # "module:attr"
    help: str  # the first sentence of the command's docstring (a test keeps them equal)

    def load(self) -> click.Command:
        module, _, attr = self.target.partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        if not isinstance(cmd, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return cmd


def _table(*rows: tuple[str, str, str]) -> dict[str, LazyCommand]:
    return {name: LazyCommand(name, target, help) for name, target, help in rows}


COMMANDS: dict[str, LazyCommand] = _table(
    ("run", "drills.cli.run:run_cmd", "Run a drill: inject SCENARIO's fault, page the responder, watch, score and report."),
    ("demo", "drills.cli.run:demo_cmd", "The demo drill: find or build the cluster binaries, bring the embedded cluster up, run the bad-deploy scenario with the scripted responder (the good profile, 4x faster), print the scorecard and the report."),
    ("list", "drills.cli.scenarios:list_scenarios", "List the scenarios: id, title, category, difficulty, true severity, faults and mitigations."),
    ("validate", "drills.cli.scenarios:validate", "Check scenario (or policy) files; print every problem as file:line: field: message."),
    ("schema", "drills.cli.scenarios:schema", "Print the JSON Schema of a scenario, journal event, scorecard or policy (for editors and tools)."),
    ("score", "drills.cli.reports:score_command", "Score a drill journal against the SLAs; exit 1 if the drill did not pass."),
    ("report", "drills.cli.reports:report_group", "Write a drill's reports (`drill report JOURNAL`) or the monthly report (`drill report monthly`)."),
    ("handoff", "drills.cli.reports:handoff_command", "The seed's on-call handoff, from the drills and incidents on record."),
    ("history", "drills.cli.history:history_command", "List past drills: when, scenario, trainee, outcome, score and grade."),
    ("ack", "drills.cli.respond:ack_cmd", "Acknowledge the page."),
    ("declare", "drills.cli.respond:declare_cmd", "Declare the incident's severity (P0-P3, from the seed's severity matrix)."),
    ("role", "drills.cli.respond:role_cmd", "Assign a role: ic (incident commander), tech, comms or sme."),
    ("comms", "drills.cli.respond:comms_cmd", "Post a message from the seed's templates (without --file: print it prefilled to edit)."),
    ("escalate", "drills.cli.respond:escalate_cmd", "Record an escalation: engineering-lead, engineering-leadership, executives, sme..."),
    ("ticket", "drills.cli.respond:ticket_cmd", "Record that a ticket was created in the issue tracker (P2/P3 incidents)."),
    ("hint", "drills.cli.respond:hint_cmd", "Show the next available hint (its cost comes off the score)."),
    ("mitigated", "drills.cli.respond:mitigated_cmd", "Say that impact is reduced (the timer trusts observed health; this is kept for the record)."),
    ("resolve", "drills.cli.respond:resolve_cmd", "Resolve the incident (ends the drill once the wrap-up time has passed)."),
    ("note", "drills.cli.respond:note_cmd", "Write a note in the journal (document changes as you make them)."),
    ("detect", "drills.cli.respond:detect_cmd", "Record that you noticed the incident yourself (human detection, timed apart from alerts)."),
    ("pause", "drills.cli.respond:pause_cmd", "Game master: pause the drill's clocks (SLAs are judged on active time)."),
    ("resume", "drills.cli.respond:resume_cmd", "Game master: resume a paused drill."),
    ("abort", "drills.cli.respond:abort_cmd", "Game master: end the drill now; the runner reverts the fault and writes the reports."),
    ("status", "drills.cli.respond:status_cmd", "Show where the drill stands: phase, clocks, SLA budgets, health, actions, hints."),
    ("impact", "drills.cli.respond:impact_cmd", "Show what users see: users affected, error rate and p99 latency, with sparklines."),
    ("env", "drills.cli.respond:env_cmd", 'Print the export line for your own cluster identity in this drill: eval "$(drill env)".'),
    ("cluster", "drills.cli.cluster:cluster", "The drill cluster: `up`, `down`, `status`, `kubeconfig`, `logs`, `build`, `reset`, `baseline`."),
    ("faults", "drills.cli.faults:faults_command", "List the fault kinds drills can inject."),
    ("inject", "drills.cli.faults:inject_command", "Inject a scenario's faults (or print them with --dry-run), then revert them."),
    ("ctk", "drills.cli.ctk:ctk_group", "Chaos Toolkit experiments: `import` one as a scenario."),
    ("recover", "drills.cli.faults:recover_command", "Replay the fault reverts that a crashed or killed drill left pending."),
    ("monitoring", "drills.cli.monitoring:monitoring_group", "Prometheus and Alertmanager for a drill cluster: `up`, `down`, `status`, `alerts`, `rules`."),
    ("plan", "drills.cli.programs:plan_group", "DR plans: several scenarios and teams, each runbook step timed (scenarios/plans/)."),
    ("schedule", "drills.cli.programs:schedule_group", "The monthly chaos test: render (or --install) its cron entry or Kubernetes CronJob."),
    ("trainee", "drills.cli.programs:trainee_command", "A trainee's history, scores per check over time, level on the ladder and the next step."),
    ("briefing", "drills.cli.programs:briefing_command", "The game master's briefing for SCENARIO: the answer key the trainee never sees."),
    ("observe", "drills.cli.programs:observe_cli", "Follow a running drill read-only on a second screen (the game master's view)."),
    ("completion", "drills.cli.completion:completion_command", "Print the shell completion script for bash, zsh or fish."),
)  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` only when one is used."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's main, except that its own error messages (which quote what was typed) are cleaned too."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as e:
            e.message = clean(e.message)  # type: ignore[misc]  # click marks it Final; we only clean it
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        except OSError as e:
            if e.errno == errno.EPIPE:  # `drill list | head`: the reader left; no traceback
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(1)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.commands[cmd_name] = self.lazy[cmd_name].load()
        return self.commands.get(cmd_name)

    def _short_helps(self) -> list[tuple[str, str]]:
        return [(name, self.lazy[name].help if name in self.lazy else self.commands[name].get_short_help_str()) for name in sorted(set(self.commands) | set(self.lazy))]  # fmt: skip

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = self._short_helps()
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, _shorten(text, limit)) for name, text in rows])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        # the table's help, so completing a command name imports none of them
        items = [CompletionItem(n, help=h) for n, h in self._short_helps() if n.startswith(incomplete)]
        return items + click.Command.shell_complete(self, ctx, incomplete)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "..."


# ---- the pending-revert warning, cheaply ---------------------------------------------------------------


_LEDGER_RECORD = re.compile(r'"record":"(planned|reverted)","entry":"([^"]+)"')


def _ledgers_with_open_entries() -> bool:
    """Whether any drill's ledger may still hold an unreverted fault (a quick scan, before any import).

    The ledger writes compact JSON (``{"v":1,"record":"planned","entry":ID,...}``); a file where every
    planned entry has a ``reverted`` record is closed. Anything else (another spelling, a torn line, an
    unreadable file) counts as open, and the real reader (which imports the faults package, and with it
    the kubernetes client) decides.
    """
    from drills.adapters.store.paths import drills_dir

    root = drills_dir()
    if not root.is_dir():
        return False
    for path in root.glob("*/ledger.jsonl"):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return True
        planned: set[str] = set()
        reverted: set[str] = set()
        for kind, entry in _LEDGER_RECORD.findall(text):
            (planned if kind == "planned" else reverted).add(entry)
        if text.count('"record":"planned"') != len(planned) or planned - reverted:
            return True
    return False


def pending_warnings() -> list[str]:
    if not _ledgers_with_open_entries():
        return []
    from drills.adapters.faults import ledger

    return ledger.warn_pending()


# ---- output: one path for user text --------------------------------------------------------------------

# CSI/OSC and other escape sequences, and the C0/C1 control characters except tab and newline
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: object) -> str:
    """User text made safe to print: escape sequences and control characters shown, never obeyed."""
    s = str(text)
    s = _ESCAPES.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), s)
    return _CONTROLS.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), s)


def plain(text: object, style: str | None = None) -> Text:
    """A rich Text of user text: no markup parsed, escapes neutralised."""
    from rich.text import Text

    return Text(clean(text), style=style or "")


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def say(*parts: object, err: bool = False, style: str | None = None) -> None:
    """Print one line. ``str`` parts are user text (shown literally); ``(text, style)`` tuples are styled."""
    from rich.text import Text

    line = Text()
    for part in parts:
        if isinstance(part, tuple):
            line.append(clean(part[0]), style=part[1])
        elif isinstance(part, Text):
            line.append_text(part)
        else:
            line.append(clean(part))
    if style:
        line.stylize(style)
    (err_console() if err else console()).print(line, soft_wrap=True)


def warn(text: object) -> None:
    say(("warning: ", "yellow"), text, err=True)


def show(renderable: RenderableType) -> None:
    """Print a rich renderable built by reporting (which builds its cells from Text, not markup)."""
    console().print(renderable)


def echo(text: object = "", *, nl: bool = True, err: bool = False) -> None:
    """Plain text for scripts (paths, ids), with terminal escapes neutralised."""
    click.echo(clean(text), nl=nl, err=err)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn DrillErrors into a message and an exit code instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DrillError as e:
            say(("error: ", "bold red"), e.message, err=True)
            if e.hint:
                say("  -> ", e.hint, err=True)
            sys.exit(e.exit_code if e.exit_code in set(ExitCode) else int(ExitCode.ENVIRONMENT))
        except OSError as e:
            # a path typed on the command line that the OS refuses (too long, not there, a loop...)
            if e.errno == errno.EPIPE:
                raise
            where = f"{e.filename}: " if e.filename is not None else ""
            say(("error: ", "bold red"), f"{where}{e.strerror or e}", err=True)
            if e.errno in _BAD_PATH:
                say("  -> check the path", err=True)
                sys.exit(int(ExitCode.USAGE))
            sys.exit(int(ExitCode.ENVIRONMENT))

    return wrapper


_BAD_PATH = {errno.ENOENT, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EINVAL}


# ---- -o json|yaml|table, with --json kept as a hidden alias --------------------------------------------

OUTPUT_FORMATS = ("table", "json", "yaml")


def output_option(fn: F) -> F:
    """``-o/--output json|yaml|table`` (the command gets ``output``); ``--json`` stays as ``-o json``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, json_alias: bool = False, **kwargs: Any) -> Any:
        if json_alias:
            kwargs["output"] = "json"
        return fn(*args, **kwargs)

    wrapper = click.option("--json", "json_alias", is_flag=True, hidden=True, help="Same as -o json.")(
        wrapper
    )
    return click.option(  # type: ignore[return-value]
        "-o",
        "--output",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(wrapper)


def hidden_alias(alias: str, dest: str, **option: Any) -> Callable[[F], F]:
    """An old spelling of an option (``--name`` for ``--cluster``), hidden from help, still accepted."""

    key = "alias_" + dest

    def apply(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(key, None)
            if value is not None:
                kwargs[dest] = value
            return fn(*args, **kwargs)

        return click.option(alias, key, hidden=True, default=None, **option)(wrapper)  # type: ignore[return-value]

    return apply


@overload
def cluster_option(fn: F, /) -> F: ...
@overload
def cluster_option(*, dest: str = ..., help: str = ...) -> Callable[[F], F]: ...
def cluster_option(
    fn: F | None = None, /, *, dest: str = "cluster_name", help: str = "Drill cluster name."
) -> F | Callable[[F], F]:
    """``--cluster NAME`` (the one spelling; ``--name`` stays as a hidden alias), completing cluster names."""

    def apply(f: F) -> F:
        from drills.cli.completion import complete_clusters

        f = hidden_alias("--name", dest)(f)
        return click.option(
            "--cluster",
            dest,
            default=DEFAULT_CLUSTER,
            show_default=True,
            help=help,
            shell_complete=complete_clusters,
        )(f)

    return apply(fn) if fn is not None else apply


def duration_option(*decls: str, **option: Any) -> Callable[[F], F]:
    """A duration flag: ``90s``, ``5m``, ``1h30m`` (a bare number is seconds); the command gets a timedelta."""

    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> timedelta | None:
        if value is None or isinstance(value, timedelta):
            return value
        from drills.model.durations import parse_duration

        try:
            return parse_duration(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    option.setdefault("metavar", "DURATION")
    return click.option(*decls, callback=convert, **option)


# ---- rendering data ------------------------------------------------------------------------------------


def iso_duration(td: timedelta) -> str:
    """ISO 8601: ``PT1M35S``, ``P1DT2H``, ``PT0.5S``, ``-PT5S``."""
    total = td.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    secs = f"{seconds:.6f}".rstrip("0").rstrip(".") if seconds else ""
    date = f"{int(days)}D" if days else ""
    time_part = "".join(
        f"{v}{u}" for v, u in ((int(hours) or "", "H"), (int(minutes) or "", "M"), (secs, "S")) if v
    )
    if not date and not time_part:
        return "PT0S"
    return f"{sign}P{date}{'T' + time_part if time_part else ''}"


def with_durations(data: Any) -> Any:
    """JSON-ready data where every duration ``x`` is ``"x": "PT1M35S"`` plus ``"x_seconds": 95.0``."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            if isinstance(v, timedelta):
                out[f"{k}_seconds"] = v.total_seconds()
                out[str(k)] = iso_duration(v)
            else:
                out[str(k)] = with_durations(v)
        return out
    if isinstance(data, list | tuple):
        return [with_durations(v) for v in data]
    if isinstance(data, timedelta):
        return iso_duration(data)
    if isinstance(data, Path):
        return str(data)
    if hasattr(data, "isoformat"):
        return data.isoformat()
    if isinstance(data, Enum):
        return data.value
    return data


def model_data(model: Any) -> Any:
    """A pydantic model as JSON-ready data: pydantic's JSON form, every duration ``x`` as ISO 8601 plus
    ``x_seconds`` (see :func:`with_durations`)."""
    return _merge(model.model_dump(mode="python"), model.model_dump(mode="json"))


def _merge(py: Any, js: Any) -> Any:
    if isinstance(py, timedelta):
        return iso_duration(py)
    if isinstance(py, Mapping) and isinstance(js, Mapping):
        out: dict[str, Any] = {}
        for k, v in js.items():
            pv = py.get(k)
            if isinstance(pv, timedelta):
                out[f"{k}_seconds"] = pv.total_seconds()
            out[k] = _merge(pv, v)
        return out
    if isinstance(py, list | tuple) and isinstance(js, list) and len(py) == len(js):
        return [_merge(a, b) for a, b in zip(py, js, strict=True)]
    return js


def emit(data: Any, output: str) -> None:
    """Print data as JSON or YAML (``-o json|yaml``); strings stay JSON strings, never markup."""
    if output == "yaml":
        import yaml

        click.echo(
            yaml.safe_dump(with_durations(data), sort_keys=False, allow_unicode=False, width=200), nl=False
        )
    else:
        click.echo(json.dumps(with_durations(data), indent=2, default=str))


def wide_terminal() -> bool:
    """Rich tables only on a terminal at least :data:`WIDE_TERMINAL` columns wide."""
    if not sys.stdout.isatty():
        return False
    try:
        columns = int(os.environ.get("COLUMNS", "") or os.get_terminal_size().columns)
    except (OSError, ValueError):
        return False
    return columns >= WIDE_TERMINAL


Cell = Any  # str, a number, None, or a rich Text (styled cells on a terminal)


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    err: bool = False,
) -> None:
    """A table: rich on a wide terminal, otherwise plain aligned text with no empty columns.

    Cells are user text: plain strings are never read as markup (and escapes are neutralised).
    """
    texts = [[_cell_text(c) for c in row] for row in rows]
    if wide_terminal() and not err:
        from rich.table import Table

        table = Table(title=plain(title) if title else None, title_justify="left")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row, raw in zip(texts, rows, strict=True):
            table.add_row(*[c if _is_text(c) else plain(t) for c, t in zip(raw, row, strict=True)])
        console().print(table)
        return
    # plain: drop columns with no value in any row, so a pipe never sees an empty column
    keep = [i for i, _ in enumerate(columns) if any(row[i].strip() for row in texts)] if texts else list(range(len(columns)))  # fmt: skip
    header = [columns[i] or "-" for i in keep]
    body = [[row[i] or "-" for i in keep] for row in texts]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = [f"# {clean(title)}"] if title else []
    for row in (header, *body):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    click.echo("\n".join(lines), err=err)


def _is_text(cell: Cell) -> bool:
    return type(cell).__name__ == "Text" and hasattr(cell, "plain")


def _cell_text(cell: Cell) -> str:
    if cell is None:
        return ""
    if _is_text(cell):
        return clean(cell.plain)
    return clean(cell).replace("\n", "; ")


# ---- the group -----------------------------------------------------------------------------------------


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "DRILLS"},
)
@click.version_option(package_name="drills")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """drills: chaos drills and incident-response rehearsal on Kubernetes."""
    # A crashed drill may have left a fault in a cluster: say so at every start, until `drill recover` runs.
    if ctx.invoked_subcommand not in ("recover", "completion"):
        for line in pending_warnings():
            say(("warning: ", "bold yellow"), line, err=True)


def clean_model(model: R) -> R:
    """A pydantic model (or list/dict of them) with every string passed through :func:`clean`.

    For renderers that take whole models (the scorecard, the dashboard's events): terminal escapes in a
    journal field are shown as text. No validation runs again: only strings change.
    """
    return _clean_value(model)  # type: ignore[no-any-return]


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = clean(value)
        return value if cleaned == value else type(value)(cleaned) if type(value) is str else value
    if isinstance(value, list | tuple):
        items = [_clean_value(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
    if isinstance(value, dict):
        return {k: _clean_value(v) for k, v in value.items()}
    fields = getattr(type(value), "model_fields", None)
    if fields is None:
        return value
    updates = {}
    for name in fields:
        old = getattr(value, name, None)
        new = _clean_value(old)
        if new is not old:
            updates[name] = new
    return value.model_copy(update=updates) if updates else value
