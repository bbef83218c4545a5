"""`drill run` (one drill end to end) and `drill demo` (the README's first command).

The command parses, calls :func:`drills.runner.run.run_drill`, prints the scorecard and where the report is,
and turns the result into an exit code: 0 when the drill passed, 1 when the scorecard failed, 6 when it was
aborted or ran out of time, 4 when something broke (reverts that failed stay pending for `drill recover`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from drills.cli._app import ExitCode, cli, console, err_console, handle_errors
from drills.errors import DrillError
from drills.model.durations import parse_duration
from drills.model.events import Mode, Outcome
from drills.reporting.terminal import scorecard_renderable
from drills.runner.run import (
    ClusterTarget,
    DetectionOptions,
    DrillOptions,
    DrillResult,
    DrillRun,
    ReportingOptions,
    ResponderOptions,
)

DEMO_SCENARIO = "bad-deploy-rollback"
DEMO_RESPONDER = "bot:good"
#: The demo's bot acts 4x faster than its profile says (a demo should not take five minutes); the SLA
#: targets are not scaled, so it passes as the good profile does at full speed.
DEMO_TIME_SCALE = 0.25


def exit_code(result: DrillResult) -> int:
    if result.signal is not None:
        return 128 + int(result.signal)
    if result.revert_error:
        return int(ExitCode.ENVIRONMENT)
    if result.outcome in (Outcome.ABORTED, Outcome.TIMED_OUT):
        return int(ExitCode.ABORTED)
    if result.outcome == Outcome.CRASHED:
        return int(ExitCode.ENVIRONMENT)
    return int(ExitCode.OK if result.passed else ExitCode.SLA_BREACHED)


def debrief_text(result: DrillResult) -> str:
    """The one check to work on next, in blameless words (with the trainee's history when there is one)."""
    from drills.adapters.store.history import History
    from drills.engine.ladder import debrief

    trainee = result.scorecard.trainee
    history = None
    if trainee:
        try:
            with History() as h:
                history = h.trainee(trainee)
        except DrillError:
            history = None
    return debrief(result.scorecard, history=history).text


def print_result(result: DrillResult) -> None:
    out = console()
    out.print(scorecard_renderable(result.scorecard))
    out.print(f"drill {result.drill_id}: {result.outcome.value} ({result.reason})", markup=False)
    text = debrief_text(result)
    if text:
        out.print(f"debrief: {text}", markup=False, highlight=False)
    out.print(f"report: {result.reports.html}", markup=False, highlight=False)
    out.print(f"postmortem draft: {result.reports.postmortem}", markup=False, highlight=False)
    if result.revert_error:
        err_console().print(
            f"[bold red]the fault could not be fully reverted:[/] {result.revert_error}\n"
            "  -> run `drill recover` once the cause is fixed"
        )


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@cli.command("run")
@click.argument("scenario", required=False)
@click.option(
    "--backend", type=click.Choice(["embedded", "kind", "context"]), default="embedded", show_default=True
)
@click.option("--cluster", "cluster_name", default="drills", show_default=True, help="Drill cluster name.")
@click.option(
    "--responder",
    default="human",
    show_default=True,
    help="human, bot (the good profile), bot:NAME (fixtures/responders/NAME.yaml) or bot:FILE.",
)
@click.option("--trainee", metavar="NAME", help="Who is being trained (history, training ladder).")
@click.option(
    "--mode", type=click.Choice([m.value for m in Mode]), default=Mode.TRAINING.value, show_default=True
)
@click.option("--seed", type=int, help="Seed for the bot's jitter (and anything random): replayable drills.")
@click.option(
    "--policy", type=click.Path(dir_okay=False, path_type=Path), help="Policy YAML (SLA targets, weights)."
)
@click.option(
    "--dry-run", is_flag=True, help="Print the exact API changes the fault would make; change nothing."
)
@click.option("--no-dashboard", is_flag=True, help="Print one line per event instead of the live dashboard.")
@click.option(
    "--allow-system-namespaces", is_flag=True, help="Allow a scenario that targets a system namespace."
)
@click.option(
    "--detector",
    default="health-probe",
    show_default=True,
    help="What fires the alert: health-probe (drills' own probe), monitoring (Prometheus + Alertmanager), "
    "none (human detection only), or a plugin.",
)
@click.option(
    "--pager",
    "pagers",
    multiple=True,
    help="How to page the responder (repeatable): terminal (default), pagerduty, slack, memory, or a plugin.",
)
@click.option(
    "--bot-time-scale",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="Multiply the bot's offsets by this (0.1: ten times faster; for demos and CI).",
)
@click.option(
    "--wrap-up", callback=_duration, help="Time after resolution to post final comms (default 60s)."
)
@click.option(
    "--time-budget",
    callback=_duration,
    help="End the drill (timed out) after this much active time; default: the scenario's time_budget.",
)
@click.option(
    "--plan", "plan", type=click.Path(dir_okay=False, path_type=Path), help="Run a DR plan instead."
)
@click.option("--observe", is_flag=True, help="Follow a running drill read-only (the game master's screen).")
@click.option("--drill", "drill_id", metavar="ID", help="With --observe: the drill to follow.")
@handle_errors
def run_cmd(
    scenario: str | None,
    backend: str,
    cluster_name: str,
    responder: str,
    trainee: str | None,
    mode: str,
    seed: int | None,
    policy: Path | None,
    dry_run: bool,
    no_dashboard: bool,
    allow_system_namespaces: bool,
    detector: str,
    pagers: tuple[str, ...],
    bot_time_scale: float,
    wrap_up: timedelta | None,
    time_budget: timedelta | None,
    plan: Path | None,
    observe: bool,
    drill_id: str | None,
) -> None:
    """Run a drill: inject SCENARIO's fault, page the responder, watch, score and report.

    SCENARIO is a scenario id (`drill list`), a file name in scenarios/, or a path.
    """
    if observe:
        raise SystemExit(_observe(drill_id, 0.5))
    if plan is not None:
        raise SystemExit(_run_plan(plan, cluster=cluster_name, backend=backend, seed=seed, policy=policy))
    if scenario is None:
        raise click.UsageError("give a SCENARIO (see `drill list`), or --plan PLAN")
    run = DrillRun(
        scenario,
        DrillOptions(
            mode=Mode(mode),
            policy=policy,
            responder=ResponderOptions(responder, trainee=trainee, seed=seed, time_scale=bot_time_scale),
            detection=DetectionOptions(detector, pagers=list(pagers) or None),
            cluster=ClusterTarget(
                backend, name=cluster_name, allow_system_namespaces=allow_system_namespaces
            ),
            reporting=ReportingOptions(
                dashboard=not no_dashboard and console().is_terminal, console=console()
            ),
            wrap_up=wrap_up,
            time_budget=time_budget,
        ),
    )
    if dry_run:
        fault_plan = run.plan()
        console().print(fault_plan.describe(), markup=False, highlight=False)
        raise SystemExit(ExitCode.REFUSED if fault_plan.refusals else ExitCode.OK)
    result = run.execute()
    print_result(result)
    raise SystemExit(exit_code(result))


def _programs() -> object:
    try:
        from drills.cli import programs
    except ImportError:  # pragma: no cover - shipped with drills
        raise click.UsageError("this drills has no programs support (DR plans, observe)") from None
    return programs


def _run_plan(plan: Path, *, cluster: str, backend: str, seed: int | None, policy: Path | None) -> int:
    """``drill run --plan``: the programs' ``drill plan run``."""
    runner = getattr(_programs(), "run_plan_command", None)
    if runner is None:
        raise click.UsageError(f"use `drill plan run {plan}`")
    code = runner(plan, cluster_name=cluster, backend=backend, seed=seed, policy=policy)
    return int(code or 0)


def _observe(drill_id: str | None, refresh: float) -> int:
    """``drill run --observe``: the game master's read-only second screen (``drill observe``)."""
    observe = getattr(_programs(), "observe_command", None)
    if observe is None:
        raise click.UsageError("use `drill observe`")
    return int(observe(drill_id, refresh) or 0)


@cli.command("demo")
@click.option("--cluster", "cluster_name", default="drills", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--no-dashboard", is_flag=True, help="Print one line per event instead of the live dashboard.")
@handle_errors
def demo_cmd(cluster_name: str, seed: int, no_dashboard: bool) -> None:
    """The demo drill: find or build the cluster binaries, bring the embedded cluster up, run the bad-deploy
    scenario with the scripted responder (the good profile, 4x faster), print the scorecard and the report."""
    from drills.adapters.clusters import binaries
    from drills.adapters.clusters import facade as clusters

    out = console()
    out.print(
        "[bold]drills demo[/]: a bad release on the embedded cluster, answered by the scripted responder"
    )
    binaries.ensure(progress=out.is_terminal, console=out)
    handle = clusters.up(cluster_name, backend="embedded", progress=out.is_terminal)
    run = DrillRun(
        DEMO_SCENARIO,
        DrillOptions(
            responder=ResponderOptions(DEMO_RESPONDER, seed=seed, time_scale=DEMO_TIME_SCALE),
            cluster=ClusterTarget(name=cluster_name, handle=handle),
            reporting=ReportingOptions(dashboard=not no_dashboard and out.is_terminal, console=out),
        ),
    )
    result = run.execute()
    print_result(result)
    raise SystemExit(exit_code(result))


__all__ = ["DEMO_RESPONDER", "DEMO_SCENARIO", "DEMO_TIME_SCALE", "exit_code", "print_result"]
