"""The programs around single drills: DR plans, the monthly chaos test, the training ladder, game master.

- ``drill plan validate [PLANS]`` / ``drill plan run PLAN``: the quarterly DR
  drill as a plan of several scenarios and teams, every runbook step timed; exits 1 when an objective or a
  drill was missed.
- ``drill schedule`` renders (``--install`` installs) the monthly test's cron entry or CronJob manifest;
  ``drill schedule pick`` shows a seeded pick and records it; ``drill schedule run`` is what cron runs.
- ``drill trainee NAME``: history, scores per check over time, level on the ladder and the next step.
- ``drill briefing SCENARIO``: the game master's printable briefing; ``drill observe``: a read-only second
  screen following the running drill.
"""

from __future__ import annotations

import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import click
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from drills.adapters.files.plans import find_plan, load_plan, plans_dir
from drills.adapters.files.scenarios import (
    find_scenario,
    load_model,
    load_policy,
    load_scenario,
    load_scenarios,
)
from drills.adapters.schedule_install import (
    install_cron,
    local_timezone_name,
    render_cron,
    render_cronjob,
    same_zone,
)
from drills.adapters.store.history import History
from drills.adapters.store.paths import scenarios_dir
from drills.cli._app import (
    ExitCode,
    clean_model,
    cluster_option,
    console,
    echo,
    emit,
    exits,
    handle_errors,
    output_option,
    plain,
    print_table,
    say,
    show,
    warn,
)
from drills.cli.completion import complete_drills, complete_scenarios
from drills.engine.ladder import LEVELS, next_step, scores_by_check
from drills.engine.schedule import clearance, parse_month, pick_monthly
from drills.errors import Problem, ScenarioError, UsageError
from drills.model.durations import format_duration
from drills.model.scenario import Scenario
from drills.model.schedule import MonthlySchedule
from drills.model.scorecard import CheckStatus
from drills.reporting.briefing import build_briefing, render_html, render_markdown
from drills.timing import SYSTEM_CLOCK

DEFAULT_SCHEDULE = Path("schedules") / "monthly.yaml"


# ---- DR plans --------------------------------------------------------------------------------------------


@click.group("plan")
def plan_group() -> None:
    """DR plans: several scenarios and teams, each runbook step timed (scenarios/plans/)."""


@exits(ExitCode.INVALID_INPUT)
@plan_group.command("validate")
@click.argument("plans", nargs=-1, type=click.Path(path_type=Path))
@handle_errors
def plan_validate(plans: tuple[Path, ...]) -> None:
    """Check plan files and everything they refer to (scenarios, responders, backups)."""
    files = list(plans) or sorted(p for p in plans_dir().glob("*.y*ml"))
    if not files:
        raise UsageError(f"no plan files in {plans_dir()}", hint="give the path of a plan file")
    problems: list[Problem] = []
    ok = 0
    for f in files:
        try:
            loaded = load_plan(f)
        except ScenarioError as e:
            problems.extend(e.problems)
            continue
        ok += 1
        p = loaded.plan
        echo(
            f"{f}: plan {p.id}: {len(p.entries)} drills, {len(p.teams)} teams, "
            f"{sum(len(e.runbook) for e in p.entries)} runbook steps"
        )
    for prob in problems:
        echo(prob)
    echo(
        f"{ok} plan{'s' if ok != 1 else ''} valid, {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    )
    sys.exit(ExitCode.INVALID_INPUT if problems else ExitCode.OK)


def run_plan_command(
    plan: Path | str,
    *,
    cluster_name: str = "drills",
    backend: str = "embedded",
    seed: int | None = None,
    policy: Any = None,
    out_dir: Path | None = None,
    output: str = "table",
) -> None:
    """Run a DR plan on one cluster and print the combined report's summary; exits with the result."""
    from drills.adapters.clusters import facade as clusters
    from drills.runner.plans import cluster_checkers, run_drill_launcher, run_plan

    loaded = load_plan(find_plan(plan))
    if isinstance(policy, str | Path):
        policy = load_policy(Path(policy))
    out = console()
    handle = clusters.up(cluster_name, backend=backend, progress=out.is_terminal)
    say(
        ("DR plan", "bold"),
        f" {loaded.plan.title}: {len(loaded.plan.entries)} drills on cluster {cluster_name}",
    )
    result = run_plan(
        loaded,
        launcher=run_drill_launcher(
            cluster_name=cluster_name, cluster=handle, backend=backend, seed=seed, policy=policy
        ),
        checkers=cluster_checkers(Path(handle.kubeconfig), handle.context),
        clock=SYSTEM_CLOCK,
        out_dir=out_dir,
    )
    if output != "table":
        from drills.reporting.plan_report import as_dict

        emit(as_dict(result), output)
    else:
        show(_plan_table(result))
        assert result.report is not None
        echo(f"report: {result.report.markdown}\n        {result.report.html}")
    sys.exit(ExitCode.OK if result.passed else ExitCode.SLA_BREACHED)


def _plan_table(result: Any) -> Table:
    from drills.reporting.plan_report import verdict

    t = Table(title=Text(result.plan.title), title_justify="left")
    for col in ("entry", "team", "scenario", "score", "recovery / RTO", "steps", "objectives"):
        t.add_column(col)
    for e in result.entries:
        sc = e.scorecard
        t.add_row(
            Text(e.entry_id),
            Text(e.team),
            Text(e.scenario_id),
            "-" if sc is None else f"{sc.score:.0f} {sc.grade}",
            f"{format_duration(e.recovery)} / {format_duration(e.rto)} {verdict(e.rto_met)}",
            f"{e.steps_done}/{len(e.steps)}",
            Text("met", style="green") if e.objectives_met else Text("missed", style="red"),
        )
    return t


@exits(ExitCode.SLA_BREACHED, ExitCode.INVALID_INPUT, ExitCode.REFUSED)
@plan_group.command("run")
@click.argument("plan")
@cluster_option
@click.option(
    "--backend", default="embedded", show_default=True, type=click.Choice(["embedded", "kind", "context"])
)
@click.option("--seed", type=int, default=None, help="Seed for the bots' jitter (reproducible runs).")
@click.option("--policy", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None)
@output_option
@handle_errors
def plan_run(
    plan: str,
    cluster_name: str,
    backend: str,
    seed: int | None,
    policy: Path | None,
    out_dir: Path | None,
    output: str,
) -> None:
    """Run a DR plan (a file, or a plan id in scenarios/plans/) and write the combined report."""
    run_plan_command(
        plan,
        cluster_name=cluster_name,
        backend=backend,
        seed=seed,
        policy=policy,
        out_dir=out_dir,
        output=output,
    )


# ---- monthly chaos test ----------------------------------------------------------------------------------


def _schedule_file(config: Path | None) -> Path | None:
    if config is not None:
        return config
    default = scenarios_dir() / DEFAULT_SCHEDULE
    return default if default.is_file() else None


def _load_schedule(config: Path | None) -> tuple[MonthlySchedule, Path | None, str]:
    path = _schedule_file(config)
    if path is None:
        s = MonthlySchedule()
        return s, None, "# the default schedule: first Tuesday, 10:00 UTC\n{}\n"
    schedule = load_model(path, MonthlySchedule)
    from drills.runner.monthly import zone

    zone(schedule)  # an unknown time zone is an error now, not on the day
    return schedule, path, path.read_text(encoding="utf-8")


def _scenarios() -> list[Scenario]:
    loaded, problems = load_scenarios([scenarios_dir()])
    for p in problems:
        warn(f"{p} (left out of the monthly pick)")
    return [s for _, s in loaded]


@exits(ExitCode.INVALID_INPUT)
@click.group("schedule", invoke_without_command=True)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Schedule file (default: scenarios/schedules/monthly.yaml).",
)
@click.option("--format", "fmt", type=click.Choice(["cron", "cronjob"]), default="cron", show_default=True)
@click.option(
    "--install", is_flag=True, help="Install the cron entry (crontab, or a file when there is none)."
)
@click.option("--namespace", default="default", show_default=True, help="CronJob namespace.")
@click.option("--image", default="drills:latest", show_default=True, help="CronJob container image.")
@click.pass_context
@handle_errors
def schedule_group(
    ctx: click.Context, config: Path | None, fmt: str, install: bool, namespace: str, image: str
) -> None:
    """The monthly chaos test: render (or --install) its cron entry or Kubernetes CronJob."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    if ctx.invoked_subcommand is not None:
        return
    schedule, path, text = _load_schedule(config)
    if fmt == "cronjob":
        if install:
            raise UsageError("--install is for cron", hint="apply the CronJob with `kubectl apply -f -`")
        click.echo(
            render_cronjob(
                schedule, text, namespace=namespace, image=image, duration=clearance(schedule, _scenarios())
            ),
            nl=False,
        )
        return
    cfg = path or (scenarios_dir() / DEFAULT_SCHEDULE)
    if path is None and install:
        raise UsageError(
            f"no schedule file at {cfg}",
            hint="write one (see docs/programs.md) or pass --config FILE; cron needs a file to read",
        )
    block = render_cron(schedule, cfg)
    if not install:
        click.echo(block, nl=False)
        tz = local_timezone_name()
        if tz and not same_zone(schedule.timezone, tz):
            say(f"note: this machine keeps {tz}; the schedule is in {schedule.timezone}", err=True)
        return
    done = install_cron(block)
    say(done.message)


def _pick_table(pick: Any) -> Table:
    d = pick.as_dict()
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    local = pick.at
    t.add_row("month", d["month"])
    t.add_row("scenario", d["scenario"])
    t.add_row("when", f"{local.astimezone(zone_for(pick)):%a %Y-%m-%d %H:%M %Z} ({d['at']})")
    t.add_row("seed", str(d["seed"]))
    t.add_row("last month", str(d["last_scenario"] or "-"))
    t.add_row("eligible", ", ".join(d["eligible"]))
    if d["excluded"]:
        t.add_row("left out", "\n".join(f"{x['scenario']}: {x['why']}" for x in d["excluded"]))
    if d["skipped_days"]:
        t.add_row("days skipped", "\n".join(f"{x['day']}: {x['why']}" for x in d["skipped_days"]))
    t.add_row("replay", d["replay"])
    return t


def zone_for(pick: Any) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(pick.timezone)


@exits(ExitCode.INVALID_INPUT)
@schedule_group.command("pick")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--month", default=None, help="YYYY-MM (default: this month).")
@click.option(
    "--seed", type=int, default=None, help="Replay a pick: the seed it logged (default: a new one)."
)
@click.option("--last", "last", default=None, help="Last month's scenario (default: from the history).")
@click.option("--no-record", is_flag=True, help="Show the pick without appending it to the history.")
@output_option
@click.pass_context
@handle_errors
def schedule_pick(
    ctx: click.Context,
    config: Path | None,
    month: str | None,
    seed: int | None,
    last: str | None,
    no_record: bool,
    output: str,
) -> None:
    """Pick this month's unannounced scenario (seeded: the same seed picks the same) and record it."""
    from drills.runner.monthly import log_pick, new_seed, zone

    schedule, _, _ = _load_schedule(config or ctx.obj.get("config"))
    tz = zone(schedule)
    if month is None:
        now = SYSTEM_CLOCK.now().astimezone(tz)
        year, mon = now.year, now.month
    else:
        year, mon = parse_month(month)
    key = f"{year:04d}-{mon:02d}"
    with History() as history:
        if last is None:
            last = history.last_run_scenario(key)
        pick = pick_monthly(
            _scenarios(),
            schedule,
            year=year,
            month=mon,
            seed=new_seed() if seed is None else seed,
            tz=tz,
            last_scenario=last,
        )
        if not no_record:
            history.record_pick(pick)
            log_pick(pick, event="picked")
    if output != "table":
        emit(pick.as_dict(), output)
    else:
        show(_pick_table(pick))


@exits(ExitCode.SLA_BREACHED, ExitCode.INVALID_INPUT, ExitCode.REFUSED, ExitCode.ABORTED)
@schedule_group.command("run")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--force", is_flag=True, help="Run now even if this month's test is not due.")
@click.option("--seed", type=int, default=None, help="Use this seed instead of a fresh one.")
@cluster_option
@click.option(
    "--backend", default="embedded", show_default=True, type=click.Choice(["embedded", "kind", "context"])
)
@click.pass_context
@handle_errors
def schedule_run(
    ctx: click.Context, config: Path | None, force: bool, seed: int | None, cluster_name: str, backend: str
) -> None:
    """What cron runs: if this month's test is due, pick a scenario, run it unannounced, record it."""
    from drills.runner.monthly import monthly_tick

    schedule, _, _ = _load_schedule(config or ctx.obj.get("config"))

    def run(scenario: Scenario, pick: Any) -> tuple[str | None, bool | None]:
        from drills.model.events import Mode
        from drills.runner.run import (
            ClusterTarget,
            DrillOptions,
            ReportingOptions,
            ResponderOptions,
            run_drill,
        )

        result = run_drill(
            find_scenario(scenario.id),
            DrillOptions(
                mode=Mode.CHAOS_TEST,
                responder=ResponderOptions(schedule.responder, seed=pick.seed),
                cluster=ClusterTarget(backend, name=cluster_name),
                reporting=ReportingOptions(dashboard=False),
            ),
        )
        return result.drill_id, result.passed

    with History() as history:
        tick = monthly_tick(schedule, _scenarios(), history=history, run=run, seed=seed, force=force)
    if not tick.ran:
        say(f"monthly chaos test: nothing to do ({tick.why})")
        return
    assert tick.pick is not None
    say(
        f"monthly chaos test {tick.pick.month}: ran {tick.pick.scenario_id} (seed {tick.pick.seed}) as drill "
        f"{tick.drill_id}: {'passed' if tick.passed else 'did not pass'}"
    )
    sys.exit(ExitCode.OK if tick.passed else ExitCode.SLA_BREACHED)


@exits()
@schedule_group.command("history")
@output_option
@handle_errors
def schedule_history(output: str) -> None:
    """Every monthly pick recorded, with its seed (to replay it) and what became of it."""
    with History() as history:
        picks = history.picks()
    if output != "table":
        emit(picks, output)
        return
    print_table(
        ("month", "scenario", "seed", "status", "drill", "picked at"),
        [
            (p["month"], p["scenario"], str(p["seed"]), p["status"], p["drill_id"] or "-", p["picked_at"])
            for p in picks
        ],
        title="monthly chaos test picks",
    )


# ---- training ladder -------------------------------------------------------------------------------------


def reconcile_history(history: History) -> list[tuple[str, str]]:
    """Settle crashed drills and import journals the history lacks (``drill recover`` may call this too)."""
    settled = [(d, s.value) for d, s in history.reconcile()]
    settled += [(d, "imported") for d in history.sync()]
    return settled


_MARK = {
    CheckStatus.PASS: ("✓", "green"),
    CheckStatus.FAIL: ("✗", "red"),
    CheckStatus.NOT_APPLICABLE: ("·", "dim"),
    CheckStatus.NOT_MEASURED: ("?", "yellow"),
}


@exits()
@click.command("trainee")
@click.argument("name")
@output_option
@click.option(
    "--checks",
    "max_checks",
    type=int,
    default=12,
    show_default=True,
    help="How many checks to show over time.",
)
@handle_errors
def trainee_command(name: str, output: str, max_checks: int) -> None:
    """A trainee's history, scores per check over time, level on the ladder and the next step."""
    with History() as history:
        reconcile_history(history)
        th = history.trainee(name)
    step = next_step(th)
    last = th.responded[-1] if th.responded else None
    if output != "table":
        emit(_trainee_json(th, step), output)
        return
    out = console()
    ladder = Text()
    for lvl in LEVELS:
        reached = LEVELS.index(lvl) <= LEVELS.index(step.level)
        ladder.append(
            f" {lvl.label} ",
            style="bold reverse green" if lvl == step.level else ("green" if reached else "dim"),
        )
        if lvl != LEVELS[-1]:
            ladder.append(" → ", style="dim")
    out.print(Text(name, style="bold"), ladder)
    say(step.summary())
    print_table(
        ("criterion", "have", "need", "result"),
        [
            (
                c.text,
                f"{c.have:g}",
                f"{c.need:g}",
                plain("met", "green") if c.met else plain("missing", "red"),
            )
            for c in (*step.met, *step.missing)
        ],
        title=f"entry criteria for {step.next_level.label}" if step.next_level else "criteria met",
    )
    print_table(
        ("started", "drill", "scenario", "roles", "status", "score", "grade"),
        [
            (
                f"{d.started:%Y-%m-%d %H:%M}",
                d.drill_id,
                d.scenario,
                ", ".join(sorted(r.value for r in d.roles)),
                d.status.value,
                "-" if d.score is None else f"{d.score:.0f}",
                d.grade or "-",
            )
            for d in th.drills
        ],
        title="drills",
    )
    series = scores_by_check(th)
    if series:
        ids = [d.drill_id for d in th.responded][-8:]
        grid = Table(title="checks over time (oldest → newest)", title_justify="left")
        grid.add_column("check")
        for i in range(len(ids)):
            grid.add_column(str(i + 1), justify="center")
        failing_first = sorted(series, key=lambda c: -sum(1 for _, s in series[c] if s == CheckStatus.FAIL))
        for cid in failing_first[:max_checks]:
            by_drill = dict(series[cid])
            row = [Text(*_MARK[by_drill[i]]) if i in by_drill else Text("") for i in ids]
            grid.add_row(plain(cid), *row)
        out.print(grid)
    if last is not None and last.improve_next:
        say(f"Last drill: the check to improve next is {last.improve_next}.")


def _trainee_json(th: Any, step: Any) -> dict[str, Any]:
    return {
        "name": th.name,
        "level": step.level.value,
        "next_level": None if step.next_level is None else step.next_level.value,
        "missing": [{"id": c.id, "text": c.text, "have": c.have, "need": c.need} for c in step.missing],
        "met": [{"id": c.id, "text": c.text, "have": c.have, "need": c.need} for c in step.met],
        "drills": [
            {
                "drill_id": d.drill_id,
                "scenario": d.scenario,
                "started": d.started.astimezone(UTC).isoformat(),
                "status": d.status.value,
                "roles": sorted(r.value for r in d.roles),
                "score": d.score,
                "grade": d.grade,
                "passed": d.passed,
                "checks": {k: v.value for k, v in sorted(d.checks.items())},
            }
            for d in th.drills
        ],
        "checks_over_time": {
            cid: [{"drill_id": did, "status": s.value} for did, s in rows]
            for cid, rows in scores_by_check(th).items()
        },
    }


# ---- game master -----------------------------------------------------------------------------------------


@exits(ExitCode.INVALID_INPUT)
@click.command("briefing")
@click.argument("scenario", shell_complete=complete_scenarios)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write the Markdown here."
)
@click.option(
    "--html",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a self-contained HTML page (print it, or open it on a second screen).",
)
@click.option("--policy", type=click.Path(path_type=Path, dir_okay=False), default=None)
@handle_errors
def briefing_command(scenario: str, out: Path | None, html: Path | None, policy: Path | None) -> None:
    """The game master's briefing for SCENARIO: the answer key the trainee never sees."""
    sc = load_scenario(find_scenario(scenario))
    b = build_briefing(sc, load_policy(policy) if policy else None)
    md = render_markdown(b)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(b), encoding="utf-8")
    c = console()
    if out is None and html is None:
        if c.is_terminal:
            c.print(Markdown(md))
        else:
            echo(md, nl=False)
    else:
        for p in (out, html):
            if p is not None:
                say(f"wrote {p}")


def observe_command(
    drill_id: str | None, refresh: float = 0.5, *, once: bool = False, observer: str | None = None
) -> None:
    from drills.cli._remote import target

    remote = target()
    if remote is not None:
        _observe_remote(remote, drill_id, once=once)
        return
    from drills.runner.observe import observe

    observe(drill_id, console=console(), refresh=refresh, once=once, observer=observer)


def _observe_remote(remote: Any, drill_id: str | None, *, once: bool) -> None:
    """The observer's screen over the drill server's live journal (Server-Sent Events)."""
    from rich.live import Live

    from drills.cli._remote import RemoteSession
    from drills.model.events import EVENT_ADAPTER, DrillEnded, Event
    from drills.runner.observe import frame
    from drills.timing import SYSTEM_CLOCK

    s = RemoteSession.open(remote, drill_id)
    out = console()
    events: list[Event] = s.events()
    ended = any(isinstance(e, DrillEnded) for e in events)

    def draw() -> Any:
        return frame(clean_model(events), SYSTEM_CLOCK.now(), out.width, drill_id=s.ref.drill_id, ended=ended)

    if once or ended:
        out.print(draw())
        return
    last = events[-1].id if events else None
    try:
        with Live(draw(), console=out, refresh_per_second=4, transient=False) as live:
            for _, _, data in s.client.stream(s.ref.drill_id, last):
                event = EVENT_ADAPTER.validate_json(data)
                events.append(event)
                ended = ended or isinstance(event, DrillEnded)
                live.update(draw())
    except KeyboardInterrupt:
        pass


@exits()
@click.command("observe")
@click.option(
    "--drill",
    "drill_id",
    default=None,
    shell_complete=complete_drills,
    help="A drill id (default: the active drill).",
)
@click.option("--refresh", type=float, default=0.5, show_default=True, help="Seconds between redraws.")
@click.option("--once", is_flag=True, help="Draw one frame and exit.")
@click.option(
    "--as", "observer", default=None, help="Record NAME as an observer of this drill (training ladder)."
)
@handle_errors
def observe_cli(drill_id: str | None, refresh: float, once: bool, observer: str | None) -> None:
    """Follow a running drill read-only on a second screen (the game master's view)."""
    observe_command(drill_id, refresh, once=once, observer=observer)


__all__ = ["observe_command", "reconcile_history", "run_plan_command"]
