"""`drill history`: the past drills on record (the team history's index), newest first, filtered; and
`drill history reindex`, which rebuilds that index from the journals.

Before listing, crashed drills are settled and journals the index lacks are indexed (as `drill trainee`
and the monthly report do), so the list matches what is on disk. The index lives in SQLite in the state
directory, or in PostgreSQL when ``DRILLS_DATABASE_URL`` names one (docs/history.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from drills.cli._app import ExitCode, echo, emit, exits, handle_errors, output_option, print_table, say, warn
from drills.cli.completion import complete_scenarios
from drills.errors import UsageError


def parse_since(text: str, now: datetime) -> datetime:
    """``7d`` / ``12h`` (that long ago) or a UTC date / date-time (``2025-03-01``, ``2025-03-01T10:00``)."""
    from drills.model.durations import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a date",
            hint="write it like 7d, 12h, 2025-03-01 or 2025-03-01T10:00 (UTC)",
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _row(d: Any) -> dict[str, Any]:
    duration = (d.ended - d.started) if d.ended is not None else None
    return {
        "drill_id": d.drill_id,
        "started": d.started.astimezone(UTC),
        "ended": None if d.ended is None else d.ended.astimezone(UTC),
        "duration": duration,
        "scenario": d.scenario,
        "trainee": d.trainee,
        "mode": d.mode,
        "status": d.status.value,
        "outcome": d.outcome,
        "score": d.score,
        "grade": d.grade,
        "passed": d.passed,
    }


@exits()
@click.group("history", invoke_without_command=True)
@click.option("--trainee", metavar="NAME", help="Only this trainee's drills.")
@click.option("--scenario", metavar="ID", shell_complete=complete_scenarios, help="Only this scenario.")
@click.option("--since", metavar="WHEN", help="Only drills started since: 7d, 12h, or a date (UTC).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="0: all of them.")
@output_option
@click.pass_context
@handle_errors
def history_command(
    ctx: click.Context, trainee: str | None, scenario: str | None, since: str | None, limit: int, output: str
) -> None:
    """List past drills: when, scenario, trainee, outcome, score and grade.

    `drill history reindex` rebuilds the index from the journals.
    """
    if ctx.invoked_subcommand is not None:
        return
    from drills.adapters.store.history import History
    from drills.adapters.store.paths import drills_dir, reports_dir
    from drills.reporting.index import refresh
    from drills.timing import SYSTEM_CLOCK

    start = parse_since(since, SYSTEM_CLOCK.now()) if since else None
    with History() as history:
        for problem in refresh(history, drills_dir(), reports_dir()).problems:
            warn(problem)
        records = history.drills()
    chosen = [
        d
        for d in records
        if (trainee is None or d.trainee == trainee)
        and (scenario is None or d.scenario == scenario)
        and (start is None or d.started >= start)
    ]
    chosen.sort(key=lambda d: (d.started, d.drill_id), reverse=True)
    if limit:
        chosen = chosen[:limit]
    rows = [_row(d) for d in chosen]
    if output != "table":
        emit(rows, output)
        return
    if not rows:
        echo("no drills on record" + (" match" if (trainee or scenario or since) else ""))
        return
    print_table(
        ("started", "drill", "scenario", "trainee", "outcome", "score", "grade", "took"),
        [
            (
                f"{r['started']:%Y-%m-%d %H:%M}",
                r["drill_id"],
                r["scenario"],
                r["trainee"],
                r["outcome"] or r["status"],
                None if r["score"] is None else f"{r['score']:.0f}",
                r["grade"],
                _took(r["duration"]),
            )
            for r in rows
        ],
        title=f"{len(rows)} drill{'s' if len(rows) != 1 else ''}",
    )


@exits()
@history_command.command("reindex")
@click.option(
    "--journals",
    type=click.Path(path_type=Path, file_okay=False),
    help="Drills directory to read [default: $DRILLS_STATE/drills].",
)
@click.option(
    "--reports",
    type=click.Path(path_type=Path, file_okay=False),
    help="Reports directory (postmortems' action items as people edited them) [default: $DRILLS_REPORTS].",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Policy YAML for journals that were never reported (scored now).",
)
@output_option
@handle_errors
def reindex_command(
    journals: Path | None, reports: Path | None, policy_file: Path | None, output: str
) -> None:
    """Rebuild the history index from the journals on disk (and reports that have no journal)."""
    from drills.adapters.files.scenarios import load_policy
    from drills.adapters.store.history import History
    from drills.adapters.store.paths import drills_dir, reports_dir
    from drills.reporting.index import reindex
    from drills.timing import SYSTEM_CLOCK

    policy = None if policy_file is None else load_policy(policy_file)
    began = SYSTEM_CLOCK.monotonic()
    with History() as history:
        result = reindex(history, journals or drills_dir(), reports or reports_dir(), policy=policy)
        where = history.where
    took = SYSTEM_CLOCK.monotonic() - began
    for problem in result.problems:
        warn(problem)
    data = {
        "database": where,
        "drills": result.drills,
        "from_journals": result.journals,
        "from_reports_only": result.reports_only,
        "skipped": len(result.problems),
        "seconds": round(took, 3),
    }
    if output != "table":
        emit(data, output)
        return
    say(
        f"indexed {result.drills} drill{'s' if result.drills != 1 else ''} ({result.journals} from journals, "
        f"{result.reports_only} from reports alone) into {where} in {took:.1f}s"
    )


def _took(td: timedelta | None) -> str | None:
    from drills.model.durations import format_duration

    return None if td is None else format_duration(td)


__all__ = ["ExitCode", "history_command", "parse_since", "reindex_command"]
