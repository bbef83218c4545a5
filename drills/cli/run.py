"""`drill run` (one drill end to end) and `drill demo` (the README's first command).

The command parses, calls :class:`drills.runner.run.DrillRun`, prints the scorecard and where the report is,
and turns the result into an exit code: 0 when the drill passed, 1 when the scorecard failed, 6 when it was
aborted or ran out of time, 4 when something broke (reverts that failed stay pending for `drill recover`).
DR plans run with `drill plan run`, and the game master's second screen is `drill observe`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from drills.cli._app import (
    DEFAULT_CLUSTER,
    ExitCode,
    clean_model,
    cluster_option,
    console,
    duration_option,
    echo,
    emit,
    err_console,
    exits,
    handle_errors,
    model_data,
    output_option,
    say,
    show,
)
from drills.cli._scenario import namespace_option, retarget
from drills.cli.completion import complete_scenarios
from drills.errors import DrillError
from drills.model.events import Mode, Outcome

if TYPE_CHECKING:
    from drills.runner.run import DrillResult

DEMO_SCENARIO = "bad-deploy-rollback"
DEMO_RESPONDER = "bot:good"
#: The demo's bot acts 4x faster than its profile says (a demo should not take five minutes); the SLA
#: targets are not scaled, so it passes as the good profile does at full speed.
DEMO_TIME_SCALE = 0.25

RUN_EXITS = (
    ExitCode.SLA_BREACHED,
    ExitCode.INVALID_INPUT,
    ExitCode.REFUSED,
    ExitCode.ABORTED,
    ExitCode.NOT_STEADY,
    ExitCode.INTERRUPTED,
    ExitCode.TERMINATED,
)


def exit_code(result: DrillResult) -> int:
    if result.signal is not None:
        return 128 + int(result.signal)
    if result.revert_error:
        return int(ExitCode.ENVIRONMENT)
    if result.outcome in (Outcome.ABORTED, Outcome.TIMED_OUT):
        return int(ExitCode.ABORTED)
    if result.outcome == Outcome.NOT_STEADY:
        return int(ExitCode.NOT_STEADY)
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


def result_data(result: DrillResult) -> dict[str, Any]:
    return {
        "drill_id": result.drill_id,
        "scenario": result.scenario.id,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "passed": result.passed,
        "revert_error": result.revert_error,
        "journal": str(result.journal_path),
        "reports": {
            "postmortem": str(result.reports.postmortem),
            "scorecard": str(result.reports.scorecard_json),
            "html": str(result.reports.html),
            "junit": str(result.reports.junit),
        },
        "scorecard": model_data(result.scorecard),
    }


def print_result(result: DrillResult, output: str = "table") -> None:
    if output != "table":
        emit(result_data(result), output)
    else:
        from drills.reporting.terminal import scorecard_renderable

        show(scorecard_renderable(clean_model(result.scorecard)))
        say(f"drill {result.drill_id}: {result.outcome.value} ({result.reason})")
        if result.outcome == Outcome.NOT_STEADY:
            say(
                "  -> the cluster is not in the state the experiment expects: `drill cluster reset`, or fix the hypothesis"
            )
        text = debrief_text(result)
        if text:
            say(f"debrief: {text}")
        echo(f"report: {result.reports.html}")
        echo(f"postmortem draft: {result.reports.postmortem}")
    if result.revert_error:
        say(("the fault could not be fully reverted: ", "bold red"), result.revert_error, err=True)
        say("  -> run `drill recover` once the cause is fixed", err=True)


@exits(*RUN_EXITS)
@click.command("run")
@click.argument("scenario", required=False, shell_complete=complete_scenarios)
@click.option(
    "--backend", type=click.Choice(["embedded", "kind", "context"]), default="embedded", show_default=True
)
@cluster_option
@click.option("--context", default=None, help="Kubeconfig context to drill on (implies --backend context).")
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Kubeconfig holding --context (default $KUBECONFIG or ~/.kube/config; implies --backend context).",
)
@namespace_option
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
    help="Multiply the bot's delays by this (0.1: ten times faster; for demos and CI). The scenario's clocks "
    "(healthy window, time budget, alert timing) are not scaled.",
)
@duration_option("--wrap-up", help="Time after resolution to post final comms: 90s, 5m (default 60s).")
@duration_option(
    "--time-budget",
    help="End the drill (timed out) after this much active time: 90s, 5m; default: the scenario's time_budget.",
)
@output_option
@handle_errors
def run_cmd(
    scenario: str | None,
    backend: str,
    cluster_name: str,
    context: str | None,
    kubeconfig: Path | None,
    namespace: str | None,
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
    output: str,
) -> None:
    """Run a drill: inject SCENARIO's fault, page the responder, watch, score and report.

    SCENARIO is a scenario id (`drill list`), a file name in scenarios/, or a path. A DR plan runs with
    `drill plan run PLAN`; the game master follows a drill with `drill observe`.
    """
    from drills.runner.run import (
        ClusterTarget,
        DetectionOptions,
        DrillOptions,
        DrillRun,
        ReportingOptions,
        ResponderOptions,
    )

    if scenario is None:
        raise click.UsageError("give a SCENARIO (see `drill list`)")
    handle = None
    if context is not None or kubeconfig is not None:
        from drills.adapters.clusters import facade as clusters

        backend = "context"
        handle = clusters.up(cluster_name, backend, context=context, kubeconfig=kubeconfig, progress=False)
    # with -o json|yaml, stdout holds only the result; the drill's own lines go to stderr
    out = console() if output == "table" else err_console()
    run = DrillRun(
        scenario,
        DrillOptions(
            mode=Mode(mode),
            policy=policy,
            responder=ResponderOptions(responder, trainee=trainee, seed=seed, time_scale=bot_time_scale),
            detection=DetectionOptions(detector, pagers=list(pagers) or None),
            cluster=ClusterTarget(
                backend, name=cluster_name, handle=handle, allow_system_namespaces=allow_system_namespaces
            ),
            reporting=ReportingOptions(
                dashboard=not no_dashboard and output == "table" and out.is_terminal, console=out
            ),
            wrap_up=wrap_up,
            time_budget=time_budget,
        ),
    )
    # -n: the runner keeps the scenario's file (its directory resolves relative paths), with the namespace
    # replaced and the scenario validated again
    run.scenario = retarget(run.scenario, namespace)
    if dry_run:
        fault_plan = run.plan()
        if output != "table":
            emit({"scenario": run.scenario.id, "plan": fault_plan.describe(), "refused": bool(fault_plan.refusals)}, output)  # fmt: skip
        else:
            echo(fault_plan.describe())
        raise SystemExit(ExitCode.REFUSED if fault_plan.refusals else ExitCode.OK)
    result = run.execute()
    print_result(result, output)
    raise SystemExit(exit_code(result))


@exits(*RUN_EXITS)
@click.command("demo")
@cluster_option
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--no-dashboard", is_flag=True, help="Print one line per event instead of the live dashboard.")
@handle_errors
def demo_cmd(cluster_name: str, seed: int, no_dashboard: bool) -> None:
    """The demo drill: find or build the cluster binaries, bring the embedded cluster up, run the bad-deploy
    scenario with the scripted responder (the good profile, 4x faster), print the scorecard and the report."""
    from drills.adapters.clusters import binaries
    from drills.adapters.clusters import facade as clusters
    from drills.runner.run import ClusterTarget, DrillOptions, DrillRun, ReportingOptions, ResponderOptions

    out = console()
    say(
        ("drills demo", "bold"), ": a bad release on the embedded cluster, answered by the scripted responder"
    )
    # on a terminal a spinner; in a log one line per binary and a heartbeat (a cold build takes minutes)
    binaries.ensure(progress=True, console=out)
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


__all__ = [
    "DEFAULT_CLUSTER",
    "DEMO_RESPONDER",
    "DEMO_SCENARIO",
    "DEMO_TIME_SCALE",
    "exit_code",
    "print_result",
]
