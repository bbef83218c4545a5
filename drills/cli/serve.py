"""`drill serve`: the team's drill server, and the game master's people and tokens (docs/server.md)."""

from __future__ import annotations

from pathlib import Path

import click

from drills.cli._app import ExitCode, echo, emit, exits, handle_errors, output_option, print_table, say

_ROLES = ["gm", "ic", "tech-lead", "comms-lead", "sme", "observer"]


@exits(ExitCode.REFUSED)
@click.group("serve", invoke_without_command=True)
@click.option(
    "--listen", default="127.0.0.1:8470", show_default=True, metavar="HOST:PORT", help="Where to listen."
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="TLS private key (PEM).")
@click.option("--tls-drills-ca", is_flag=True, help="Serve TLS with a certificate signed by the drills CA.")
@click.option("--backend", default="embedded", show_default=True, help="Cluster backend drills start on.")
@click.option(
    "--cluster", "cluster_name", default="drills", show_default=True, help="Cluster drills start on."
)
@click.option(
    "--policy", type=click.Path(dir_okay=False, path_type=Path), help="SLA policy for started drills."
)
@click.option(
    "--max-body", type=int, default=256 * 1024, show_default=True, help="Largest request body (bytes)."
)
@click.option("--max-connections", type=int, default=1000, show_default=True, help="Concurrent connections.")
@click.pass_context
@handle_errors
def serve_group(
    ctx: click.Context,
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_drills_ca: bool,
    backend: str,
    cluster_name: str,
    policy: Path | None,
    max_body: int,
    max_connections: int,
) -> None:
    """Serve drills to a team: responders join from their own machines (`invite`, `revoke`, `tokens`)."""
    if ctx.invoked_subcommand is not None:
        return
    from drills.server.config import Limits, ServerConfig, check_listen, parse_listen
    from drills.server.service import StartDefaults

    host, port = parse_listen(listen)
    config = ServerConfig(
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_drills_ca=tls_drills_ca,
        limits=Limits(max_body_bytes=max_body, max_connections=max_connections),
        start=StartDefaults(
            backend=backend, cluster=cluster_name, policy=None if policy is None else str(policy)
        ),
    )
    check_listen(config)
    from drills.server.run import serve

    scheme = "https" if config.tls else "http"
    say(f"drill server on {scheme}://{host}:{port}  (Ctrl-C to stop)")
    serve(config)


@exits()
@click.command("invite")
@click.option("--person", required=True, help="Who is invited (their name in the journal).")
@click.option("--role", type=click.Choice(_ROLES), required=True, help="Their role in the drill.")
@click.option(
    "--drill", "drill_id", metavar="ID", help="Only this drill (default: any drill on this server)."
)
@click.option("--expires", default="8h", show_default=True, help="How long the token is valid (e.g. 8h, 2d).")
@handle_errors
def invite_cmd(person: str, role: str, drill_id: str | None, expires: str) -> None:
    """Invite a person with a role: prints their personal token, once."""
    from drills.adapters.store.people import PeopleStore
    from drills.errors import UsageError
    from drills.model.durations import parse_duration
    from drills.timing import SYSTEM_CLOCK

    try:
        ttl = parse_duration(expires)
    except ValueError as e:
        raise UsageError(f"--expires {expires!r}: {e}", hint="e.g. 8h, 90m, 2d") from None
    store = PeopleStore()
    invited, token = store.invite(person, role, drill_id=drill_id, ttl=ttl, now=SYSTEM_CLOCK.now())
    store.close()
    say(
        f"invited {invited.person} as {invited.role}"
        + (f" to drill {drill_id}" if drill_id else "")
        + f", until {invited.expires_at:%Y-%m-%d %H:%M} UTC (token id {invited.token_id}).",
        err=True,
    )
    say("their token (shown once; give it to them, they set DRILLS_TOKEN):", err=True)
    echo(token)


@exits()
@click.command("revoke")
@click.argument("who")
@handle_errors
def revoke_cmd(who: str) -> None:
    """Revoke a token by its id, or every token of a person by name."""
    from drills.adapters.store.people import PeopleStore
    from drills.errors import UsageError
    from drills.timing import SYSTEM_CLOCK

    store = PeopleStore()
    revoked = store.revoke(who, SYSTEM_CLOCK.now())
    store.close()
    if not revoked:
        raise UsageError(f"no active token of {who!r}", hint="`drill serve tokens` lists them")
    for p in revoked:
        say(f"revoked token {p.token_id} of {p.person} ({p.role})")


@exits()
@click.command("tokens")
@output_option
@handle_errors
def tokens_cmd(output: str) -> None:
    """List the invitations: token id, person, role, drill, expiry, state (never the tokens)."""
    from drills.adapters.store.people import PeopleStore
    from drills.timing import SYSTEM_CLOCK

    store = PeopleStore()
    people = store.people()
    store.close()
    now = SYSTEM_CLOCK.now()
    if output != "table":
        emit(
            [
                {
                    "token_id": p.token_id,
                    "person": p.person,
                    "role": p.role,
                    "drill_id": p.drill_id,
                    "expires_at": p.expires_at.isoformat(),
                    "state": p.state(now),
                }
                for p in people
            ],
            output,
        )
        return
    print_table(
        ["token", "person", "role", "drill", "expires", "state"],
        [
            [
                p.token_id,
                p.person,
                p.role,
                p.drill_id or "any",
                f"{p.expires_at:%Y-%m-%d %H:%M}",
                p.state(now),
            ]
            for p in people
        ],
    )


serve_group.add_command(invite_cmd)
serve_group.add_command(revoke_cmd)
serve_group.add_command(tokens_cmd)

__all__ = ["serve_group"]
