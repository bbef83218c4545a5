"""Responder and game master commands, typed in another terminal while `drill run` shows its dashboard.

Each command appends one event to the running drill's journal (the active drill, or ``--drill ID``) and says
what it recorded. ``--as NAME`` records who did it (default ``$DRILLS_RESPONDER`` or the login name).

With ``DRILLS_SERVER`` and ``DRILLS_TOKEN`` set, the same commands act through the drill server
(:mod:`drills.cli._remote`): the same output and exit codes, the token's person recorded as the actor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from drills.cli._app import (
    ExitCode,
    clean_model,
    console,
    echo,
    emit,
    exits,
    handle_errors,
    model_data,
    output_option,
    plain,
    print_table,
    say,
    show,
)
from drills.cli.completion import complete_drills
from drills.engine import comms
from drills.errors import UsageError
from drills.model.durations import format_duration
from drills.model.events import Role, Source
from drills.model.severity import Severity
from drills.runner.respond import ResponderSession, env_line, find_drill, prometheus_lines, served_by
from drills.timing import SYSTEM_CLOCK

if TYPE_CHECKING:
    from drills.cli._remote import RemoteSession

F = TypeVar("F", bound=Callable[..., Any])


def drill_option(help: str = "The drill (default: the running one).") -> Callable[[F], F]:
    """``--drill ID``, completed from the drills on this machine: one spelling for every command here."""
    return click.option("--drill", "drill_id", metavar="ID", shell_complete=complete_drills, help=help)


def _who(fn: F) -> F:
    fn = click.option(
        "--as", "actor", metavar="NAME", help="Who is acting (default: $DRILLS_RESPONDER or $USER)."
    )(fn)
    return drill_option("The drill to act on (default: the running one).")(fn)


def _session(
    drill_id: str | None, actor: str | None, *, writes: bool = True
) -> ResponderSession | RemoteSession:
    from drills.cli._remote import RemoteSession, target

    remote = target()
    if remote is not None:
        return RemoteSession.open(remote, drill_id, actor)
    session = ResponderSession.open(drill_id, actor=actor, source=Source.HUMAN)
    server = served_by(session.ref) if writes else None
    if server is not None:
        raise UsageError(
            f"drill {session.ref.drill_id} is served by `drill serve` on {server.get('listen')} "
            f"(pid {server.get('pid')}): the server is its journal's only writer",
            hint="set DRILLS_SERVER and DRILLS_TOKEN (ask the game master for an invitation)",
        )
    return session


def _said(session: ResponderSession | RemoteSession, what: str) -> None:
    say(("recorded ", "green"), what, (f"  (drill {session.ref.drill_id}, as {session.actor})", "dim"))


@exits()
@click.command("ack")
@_who
@handle_errors
def ack_cmd(drill_id: str | None, actor: str | None) -> None:
    """Acknowledge the page."""
    s = _session(drill_id, actor)
    s.ack()
    _said(s, "acknowledgement")


@exits()
@click.command("declare")
@click.argument("severity", type=click.Choice([s.value for s in Severity], case_sensitive=False))
@_who
@handle_errors
def declare_cmd(severity: str, drill_id: str | None, actor: str | None) -> None:
    """Declare the incident's severity (P0-P3, from the seed's severity matrix)."""
    s = _session(drill_id, actor)
    s.declare(severity.upper())
    _said(s, f"severity {severity.upper()}")


@exits()
@click.command("role")
@click.argument("role", type=click.Choice([r.value for r in Role], case_sensitive=False))
@click.argument("person")
@_who
@handle_errors
def role_cmd(role: str, person: str, drill_id: str | None, actor: str | None) -> None:
    """Assign a role: ic (incident commander), tech, comms or sme."""
    s = _session(drill_id, actor)
    s.role(role.lower(), person)
    _said(s, f"{person.lstrip('@')} as {role.upper()}")


@exits()
@click.command("comms")
@click.argument("template", metavar="TEMPLATE")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="The message you wrote ('-' reads stdin). Without it, prints the template prefilled.",
)
@_who
@handle_errors
def comms_cmd(template: str, file: Path | None, drill_id: str | None, actor: str | None) -> None:
    """Post a message from the seed's templates (without --file: print it prefilled to edit).

    TEMPLATE is one of: initial_alert, status_update, resolution, statuspage_investigating,
    statuspage_identified, statuspage_resolved, customer_email.
    """
    s = _session(drill_id, actor)
    t = comms.get_template(template)
    if file is None:
        echo(s.prefilled(t.id), nl=False)
        say(
            f"edit it, then: drill comms {t.id} --file MESSAGE.txt "
            "(fields left as [placeholders] count as missing)",
            err=True,
            style="dim",
        )
        return
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {file}: {e}") from None
    result = s.post_comms(t.id, text)
    if result.problems:
        say((f"posted {t.title}, with {len(result.problems)} field(s) to fix:", "yellow"), err=True)
        for p in result.problems:
            say(f"  - {p}", err=True)
    else:
        _said(s, f"{t.title} (complete)")


@exits()
@click.command("escalate")
@click.argument("whom")
@_who
@handle_errors
def escalate_cmd(whom: str, drill_id: str | None, actor: str | None) -> None:
    """Record an escalation: engineering-lead, engineering-leadership, executives, sme..."""
    s = _session(drill_id, actor)
    s.escalate(whom)
    _said(s, f"escalation to {whom}")


@exits()
@click.command("ticket")
@click.argument("ref", required=False, default="")
@_who
@handle_errors
def ticket_cmd(ref: str, drill_id: str | None, actor: str | None) -> None:
    """Record that a ticket was created in the issue tracker (P2/P3 incidents)."""
    s = _session(drill_id, actor)
    s.ticket(ref)
    _said(s, f"ticket {ref}".strip())


@exits()
@click.command("hint")
@_who
@handle_errors
def hint_cmd(drill_id: str | None, actor: str | None) -> None:
    """Show the next available hint (its cost comes off the score)."""
    s = _session(drill_id, actor)
    offer, event = s.hint()
    if event is None or offer.hint is None or offer.index is None:
        if offer.available_in is not None:
            say(f"no hint yet: the next one is available in {format_duration(offer.available_in)}")
        else:
            say("no hints left in this drill")
        return
    from rich.panel import Panel

    show(
        Panel(plain(offer.hint.text), title=f"hint {offer.index + 1} (cost {offer.hint.cost})", expand=False)
    )


@exits()
@click.command("mitigated")
@click.argument("summary", required=False, default="")
@_who
@handle_errors
def mitigated_cmd(summary: str, drill_id: str | None, actor: str | None) -> None:
    """Say that impact is reduced (the timer trusts observed health; this is kept for the record)."""
    s = _session(drill_id, actor)
    s.mitigated(summary)
    _said(s, "mitigation claim")


@exits()
@click.command("resolve")
@click.option("--root-cause", "root_cause", required=True, help="The root cause, in a sentence.")
@_who
@handle_errors
def resolve_cmd(root_cause: str, drill_id: str | None, actor: str | None) -> None:
    """Resolve the incident (ends the drill once the wrap-up time has passed)."""
    s = _session(drill_id, actor)
    event = s.resolve(root_cause)
    _said(s, "resolution")
    if getattr(event, "healthy_at_resolve", None) is False:
        say("note: the service was not healthy when this was resolved", err=True, style="yellow")


@exits()
@click.command("note")
@click.argument("text", nargs=-1, required=True)
@_who
@handle_errors
def note_cmd(text: tuple[str, ...], drill_id: str | None, actor: str | None) -> None:
    """Write a note in the journal (document changes as you make them)."""
    s = _session(drill_id, actor)
    s.note(" ".join(text))
    _said(s, "note")


@exits()
@click.command("detect")
@click.argument("how", nargs=-1)
@_who
@handle_errors
def detect_cmd(how: tuple[str, ...], drill_id: str | None, actor: str | None) -> None:
    """Record that you noticed the incident yourself (human detection, timed apart from alerts)."""
    s = _session(drill_id, actor)
    s.detect(" ".join(how))
    _said(s, "human detection")


@exits()
@click.command("pause")
@click.argument("reason", nargs=-1)
@_who
@handle_errors
def pause_cmd(reason: tuple[str, ...], drill_id: str | None, actor: str | None) -> None:
    """Game master: pause the drill's clocks (SLAs are judged on active time)."""
    s = _session(drill_id, actor)
    s.pause(" ".join(reason))
    _said(s, "pause")


@exits()
@click.command("resume")
@_who
@handle_errors
def resume_cmd(drill_id: str | None, actor: str | None) -> None:
    """Game master: resume a paused drill."""
    s = _session(drill_id, actor)
    s.resume()
    _said(s, "resume")


@exits()
@click.command("abort")
@click.argument("reason", nargs=-1)
@_who
@handle_errors
def abort_cmd(reason: tuple[str, ...], drill_id: str | None, actor: str | None) -> None:
    """Game master: end the drill now; the runner reverts the fault and writes the reports."""
    s = _session(drill_id, actor)
    s.abort(" ".join(reason))
    _said(s, "abort request (the runner reverts and ends the drill)")


@exits()
@click.command("status")
@drill_option()
@click.option(
    "--policy", type=click.Path(dir_okay=False, path_type=Path), help="Policy file for the SLA targets."
)
@output_option
@handle_errors
def status_cmd(drill_id: str | None, policy: Path | None, output: str) -> None:
    """Show where the drill stands: phase, clocks, SLA budgets, health, actions, hints.

    -o json|yaml prints the live scorecard so far (durations as `x_seconds` and ISO 8601 `x`).
    """
    from drills.engine.scoring import scenario_overrides
    from drills.runner.run import resolve_policy

    s = _session(drill_id, None, writes=False)
    events = s.events()
    from drills.runner.respond import DrillState

    state = DrillState.of(events, s.ref.drill_id)
    policy_model = resolve_policy(policy)
    if output != "table":
        from drills.engine.scoring import score

        emit(
            {
                "drill_id": s.ref.drill_id,
                "ended": state.ended is not None,
                "outcome": None if state.ended is None else state.ended.outcome.value,
                "scorecard": model_data(score(events, policy_model)),
            },
            output,
        )
        return
    from drills.reporting.dashboard import render_dashboard

    targets = policy_model.targets(scenario_overrides(state.started))
    out = console()
    show(
        render_dashboard(
            clean_model(list(events)), SYSTEM_CLOCK.now(), targets, min(out.width, 120), title="drill status"
        )
    )
    if state.ended is not None:
        say(f"this drill ended: {state.ended.outcome.value}")


@exits()
@click.command("impact")
@drill_option()
@output_option
@handle_errors
def impact_cmd(drill_id: str | None, output: str) -> None:
    """Show what users see: users affected, error rate and p99 latency, with sparklines.

    From the journal's impact samples (the virtual users), so it works for a running drill and for one that
    ended (then as at its end). The sparklines cover the last 5 minutes.
    """
    from drills.reporting.impact_panel import impact_now, rows

    s = ResponderSession.open(drill_id)
    events = s.events()
    state = s.state()
    at = state.ended.at if state.ended is not None else SYSTEM_CLOCK.now()
    current = impact_now(events, at)
    if output != "table":
        emit(
            {
                "drill_id": s.ref.drill_id,
                "ended": state.ended is not None,
                "impact": None if current is None else current.data(),
            },
            output,
        )
        return
    if current is None:
        say(
            "no impact samples in this drill: its service graph has no virtual users in the drill's namespace"
        )
        return
    print_table(["", "now", "last 5 min"], rows(current), title=f"users of drill {s.ref.drill_id}")
    say(f"status {current.status}; features down: {', '.join(current.features_down) or 'none'}")
    if state.ended is not None:
        say(f"this drill ended: {state.ended.outcome.value} (figures as at its end)")


@exits()
@click.command("env")
@drill_option()
@click.option("--bot", is_flag=True, help="The bot's identity instead of the responder's.")
@handle_errors
def env_cmd(drill_id: str | None, bot: bool) -> None:
    """Print the export line for your own cluster identity in this drill: eval "$(drill env)".

    While the drill's monitoring stack runs, also ``PROMETHEUS_URL`` for the seed's health check
    (``curl "$PROMETHEUS_URL/api/v1/query?query=up"``) and any query of the users' metrics.
    """
    from drills.cli._remote import target

    remote = target()
    if remote is not None:
        echo(_remote_env(remote, drill_id, bot))
        return
    ref = find_drill(drill_id)
    echo(env_line(ref, "bot" if bot else "responder"))
    for line in prometheus_lines(ref):
        echo(line)


def _remote_env(remote: Any, drill_id: str | None, bot: bool) -> str:
    """Your own kubeconfig from the drill server, kept in this machine's state directory (mode 0600)."""
    import os

    from drills.adapters.store import paths
    from drills.cli._remote import RemoteSession

    if bot:
        raise UsageError("the bot's identity stays on the drill server", hint="drop --bot")
    s = RemoteSession.open(remote, drill_id)
    text = s.kubeconfig()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in s.actor)
    path = paths.state_dir() / "remote" / s.ref.drill_id / f"{safe}.kubeconfig"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return f"export KUBECONFIG={path}"


__all__ = ["ExitCode"]
