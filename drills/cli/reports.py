"""`drill score`, `drill report`, `drill report monthly` and `drill handoff`: reading what drills left behind.

`drill score` exits 1 (SLA_BREACHED) when the drill did not pass, so CI can gate on it; every other failure
(a missing journal, a bad --month) is a different code. Report commands write files and exit 0.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from drills.adapters.store.journal import stream_journal
from drills.adapters.store.paths import drills_dir, reports_dir
from drills.cli._app import (
    ExitCode,
    clean_model,
    echo,
    emit,
    exits,
    handle_errors,
    model_data,
    output_option,
    say,
    show,
    warn,
)
from drills.engine.scoring import score
from drills.engine.traffic import Traffic, split_traffic
from drills.errors import Problem, ScenarioError
from drills.model.events import Event
from drills.model.policy import Policy
from drills.model.summary import DrillSummary
from drills.reporting.catalog import Catalog, scan
from drills.reporting.handoff import build_handoff, render_handoff_markdown
from drills.reporting.monthly import (
    monthly_report,
    parse_month,
    render_monthly_html,
    render_monthly_markdown,
    report_window,
)
from drills.reporting.report import write_reports_for
from drills.reporting.terminal import scorecard_renderable
from drills.timing import SYSTEM_CLOCK, utc

_policy_option = click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Policy YAML: SLA overrides, weights and grades (see `drill schema policy`).",
)


def _policy(path: Path | None) -> Policy | None:
    if path is None:
        return None
    # Imported here: the scenario loader is a third of the command's imports, and most runs pass no policy.
    from drills.adapters.files.scenarios import load_policy

    return load_policy(path)


def _warn(problems: list[Problem]) -> None:
    for p in problems:
        warn(p)


@contextlib.contextmanager
def _settled() -> Iterator[None]:
    """While scoring and rendering: the events just read live until the command ends, so the cyclic
    collector is kept from walking them again at every collection (a third of scoring a 200k-line
    journal). They are handed back to it afterwards, for callers that run commands in process (tests)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _journal(path: Path) -> tuple[list[Event], Traffic]:
    """A drill journal, streamed: its events but the observer traffic, and the traffic folded (a journal
    of hundreds of thousands of lines is never held whole; the scorecard is the one of every event)."""
    stream = stream_journal(path)
    events, traffic = split_traffic(stream)
    _warn(stream.problems)
    if stream.drill_started is None:
        raise ScenarioError(
            [Problem(str(path), None, "", "no drill.started event: this is not a drill journal")]
        )
    return events, traffic


@exits(ExitCode.SLA_BREACHED, ExitCode.INVALID_INPUT)
@click.command("score")
@click.argument("journal", type=click.Path(path_type=Path))
@output_option
@click.option(
    "--all", "show_all", is_flag=True, help="Also list the checks that do not apply to this severity."
)
@_policy_option
@handle_errors
def score_command(journal: Path, output: str, show_all: bool, policy_file: Path | None) -> None:
    """Score a drill journal against the SLAs; exit 1 if the drill did not pass.

    -o json prints the scorecard (`drill schema scorecard`), each duration as `x_seconds` and ISO 8601 `x`.
    """
    events, traffic = _journal(journal)
    with _settled():
        scorecard = score(events, _policy(policy_file), traffic)
        if output != "table":
            emit(model_data(scorecard), output)
        else:
            show(scorecard_renderable(clean_model(scorecard), show_na=show_all))
    sys.exit(ExitCode.OK if scorecard.passed else ExitCode.SLA_BREACHED)


class _ReportGroup(click.Group):
    """`drill report JOURNAL` is short for `drill report journal JOURNAL`; `monthly` is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["journal", *args]
        return super().parse_args(ctx, args)


@click.group("report", cls=_ReportGroup)
def report_group() -> None:
    """Write a drill's reports (`drill report JOURNAL`) or the monthly report (`drill report monthly`)."""


@exits(ExitCode.INVALID_INPUT)
@report_group.command("journal")
@click.argument("journal", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for the reports [default: $DRILLS_REPORTS/<drill-id>, i.e. ./reports/<drill-id>].",
)
@_policy_option
@output_option
@handle_errors
def report_journal(journal: Path, out: Path | None, policy_file: Path | None, output: str) -> None:
    """Write postmortem.md, scorecard.json, report.html, junit.xml and the exports for a drill journal."""
    events, traffic = _journal(journal)
    with _settled():
        scorecard = score(events, _policy(policy_file), traffic)
        out_dir = out or reports_dir() / scorecard.drill_id
        paths = write_reports_for(scorecard, events, out_dir, traffic=traffic)
    files = {
        "postmortem": paths.postmortem,
        "scorecard": paths.scorecard_json,
        "html": paths.html,
        "junit": paths.junit,
        "jira csv": paths.jira_csv,
        "confluence": paths.confluence,
        "chaos": paths.chaostoolkit_journal,
    }
    if output != "table":
        emit(
            {
                "drill_id": scorecard.drill_id,
                "score": scorecard.score,
                "grade": scorecard.grade,
                "passed": scorecard.passed,
                "files": {k: str(v) for k, v in files.items() if v is not None},
            },
            output,
        )
        return
    verdict = ("passed", "green") if scorecard.passed else ("did not pass", "red")
    say(f"{scorecard.drill_id}: {scorecard.score:.1f}/100, grade {scorecard.grade}, ", verdict)
    # Plain lines, never cut to the terminal's width: scripts and people copy these paths.
    for label, path in files.items():
        if path is not None:
            echo(f"  {label:<11}{path}")


def _catalog(reports: Path | None, journals: Path | None, policy_file: Path | None) -> Catalog:
    catalog = scan(reports or reports_dir(), journals or drills_dir(), policy=_policy(policy_file))
    _warn(catalog.problems)
    return catalog


def _summaries(
    reports: Path | None,
    journals: Path | None,
    policy_file: Path | None,
    window: tuple[datetime, datetime] | None = None,
) -> list[DrillSummary]:
    """The drills on record: from the team history's index, brought up to date first.

    Directories given with --reports/--journals are read as files instead, without the index (someone
    else's reports, a copy).
    """
    if reports is not None or journals is not None:
        return _catalog(reports, journals, policy_file).summaries
    from drills.adapters.store.history import History
    from drills.reporting.index import refresh

    since, until = window or (None, None)
    with History() as history:
        _warn(refresh(history, drills_dir(), reports_dir(), policy=_policy(policy_file)).problems)
        return history.summaries(since=since, until=until)


_reports_option = click.option(
    "--reports",
    type=click.Path(path_type=Path, file_okay=False),
    help="Reports directory to read as files, without the history index [default: the index, kept from "
    "$DRILLS_REPORTS (or ./reports) and the state directory's journals].",
)
_journals_option = click.option(
    "--journals",
    type=click.Path(path_type=Path, file_okay=False),
    help="Drills directory whose unreported journals are scored too, read as files without the index.",
)


@exits(ExitCode.INVALID_INPUT)
@report_group.command("monthly")
@click.option("--month", help="Calendar month, YYYY-MM (UTC) [default: this month].")
@_reports_option
@_journals_option
@output_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the markdown to FILE, and the HTML page with the trend charts beside it (FILE.html).",
)
@_policy_option
@handle_errors
def report_monthly(
    month: str | None,
    reports: Path | None,
    journals: Path | None,
    output: str,
    out: Path | None,
    policy_file: Path | None,
) -> None:
    """The seed's Monthly Reporting template, drills apart from real incidents."""
    month = month or f"{SYSTEM_CLOCK.now():%Y-%m}"
    parse_month(month)  # a bad --month is a usage error before any file is read
    report = monthly_report(_summaries(reports, journals, policy_file, report_window(month)), month)
    markdown = render_monthly_markdown(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown, encoding="utf-8")
        out.with_suffix(".html").write_text(render_monthly_html(report), encoding="utf-8")
    if output != "table":
        emit(model_data(report), output)
    else:
        echo(markdown, nl=False)


@exits(ExitCode.INVALID_INPUT)
@click.command("handoff")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Start of the on-call week, UTC [default: 7 days ago].",
)
@_reports_option
@_journals_option
@output_option
@handle_errors
def handoff_command(since: datetime | None, reports: Path | None, journals: Path | None, output: str) -> None:
    """The seed's on-call handoff, from the drills and incidents on record."""
    now = SYSTEM_CLOCK.now()
    start = utc(since) if since is not None else now - timedelta(days=7)
    handoff = build_handoff(
        _summaries(reports, journals, None), since=start, until=now, today=now.astimezone(UTC).date()
    )
    if output != "table":
        emit(model_data(handoff), output)
    else:
        echo(render_handoff_markdown(handoff), nl=False)
