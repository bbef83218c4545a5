"""`drill cluster ...`: bring the drill cluster up and down, see how it is, point kubectl at it.

Thin: parsing and rendering only; the work is in drills.adapters.clusters.facade (backends, fixtures) and
drills.adapters.clusters.binaries (finding or building the embedded cluster's binaries).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections import deque
from pathlib import Path

import click
from rich.table import Table

from drills.adapters.clusters import binaries as bins
from drills.adapters.clusters import facade as clusters
from drills.adapters.monitoring import stack as monitoring_stack
from drills.cli._app import ExitCode, cli, console, err_console, handle_errors

_name_option = click.option(
    "--name", default=clusters.DEFAULT_NAME, show_default=True, help="Which drill cluster (several can run)."
)


@cli.group()
def cluster() -> None:
    """The drill cluster: `up`, `down`, `status`, `kubeconfig`, `logs`, `build`, `reset`."""


@cluster.command()
@_name_option
@click.option(
    "--backend",
    type=click.Choice(list(clusters.BACKENDS)),
    default="embedded",
    show_default=True,
    help="embedded: local control plane + kwok (no Docker); kind: Docker; "
    "context: an allow-listed kubeconfig context.",
)
@click.option(
    "--context", "context", default=None, help="For --backend context: the kubeconfig context to use."
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="For --backend context: the kubeconfig holding it (default $KUBECONFIG or ~/.kube/config).",
)
@click.option(
    "--monitoring/--no-monitoring",
    default=False,
    help="Also start Prometheus, Alertmanager and the state-metrics exporter on 127.0.0.1 (the detection chain).",
)
@click.option("--quiet", is_flag=True, help="No progress display.")
@handle_errors
def up(
    name: str, backend: str, context: str | None, kubeconfig: Path | None, monitoring: bool, quiet: bool
) -> None:
    """Start the drill cluster with the runbook's world (namespace production) and wait until it is Ready.

    Safe to repeat: a cluster that is already up is left as it is.
    """
    handle = clusters.up(
        name, backend, progress=not quiet, context=context, kubeconfig=kubeconfig, console=err_console()
    )
    out = console()
    out.print(
        f"cluster [bold]{handle.name}[/] is up ({handle.backend}, {handle.server}), context {handle.context}"
    )
    out.print(f"use it:  export KUBECONFIG={shlex.quote(str(handle.kubeconfig))}", markup=False)
    if monitoring:
        stack = monitoring_stack.start_monitoring(handle, progress=not quiet)
        out.print(f"Prometheus {stack.prometheus_url}  Alertmanager {stack.alertmanager_url}", markup=False)


@cluster.command()
@_name_option
@handle_errors
def down(name: str) -> None:
    """Stop the drill cluster: no process, port or state directory is left behind."""
    if clusters.down(name):
        console().print(f"cluster {name} is down")
    else:
        console().print(f"no cluster named {name}: nothing to do")


@cluster.command()
@_name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status(name: str, as_json: bool) -> None:
    """Each component with its PID and ports, the API server, and whether the fixtures are Ready.

    Exit code 0 when everything is healthy, 4 otherwise.
    """
    st = clusters.status(name)
    if as_json:
        click.echo(json.dumps(st.to_dict(), indent=2))
        sys.exit(ExitCode.OK if st.healthy else ExitCode.ENVIRONMENT)
    out = console()
    if st.backend is None:
        flag = "" if name == clusters.DEFAULT_NAME else f" --name {name}"
        out.print(f"cluster {name}: not up  (start it: drill cluster up{flag})")
        sys.exit(ExitCode.ENVIRONMENT)
    state = "[green]up[/]" if st.up else "[red]down[/]"
    out.print(f"cluster [bold]{st.name}[/] ({st.backend}): {state}  {st.server}  {st.version or ''}")
    out.print(f"context {st.context}  kubeconfig {st.kubeconfig}", markup=False)
    if st.components:
        table = Table("component", "pid", "ports", "state")
        for c in st.components:
            ports = ", ".join(f"127.0.0.1:{p}" for p in c.ports) or "-"
            health = "[green]healthy[/]" if c.healthy else f"[red]{c.detail or 'not listening'}[/]"
            table.add_row(c.name, str(c.pid or "-"), ports, health)
        out.print(table)
    if st.fixtures_ready is not None:
        if st.fixtures_ready:
            out.print("fixtures: [green]Ready[/]")
        else:
            out.print("fixtures: [yellow]not Ready[/]: " + "; ".join(st.waiting_for))
    if st.problem:
        out.print(f"[red]{st.problem}[/]")
    sys.exit(ExitCode.OK if st.healthy else ExitCode.ENVIRONMENT)


@cluster.command()
@_name_option
@click.option("--export", "export", is_flag=True, help="Print an `export KUBECONFIG=...` line for eval.")
@handle_errors
def kubeconfig(name: str, export: bool) -> None:
    """The cluster's kubeconfig path (drills never writes ~/.kube/config).

    eval "$(drill cluster kubeconfig --export)"
    """
    handle = clusters.get(name)
    path = shlex.quote(str(handle.kubeconfig))
    click.echo(f"export KUBECONFIG={path}" if export else str(handle.kubeconfig))


@cluster.command()
@click.argument("component", type=click.Choice(list(clusters.LOG_COMPONENTS)))
@_name_option
@click.option("--tail", type=int, default=100, show_default=True, help="Lines from the end (0: all).")
@click.option("--path", "path_only", is_flag=True, help="Print the log file's path only.")
@handle_errors
def logs(component: str, name: str, tail: int, path_only: bool) -> None:
    """A component's log (embedded backend): etcd, kube-apiserver, ..., kwok-controller, audit, kwokctl."""
    path = clusters.logs(name, component)
    if path_only:
        click.echo(str(path))
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        lines = list(f) if tail <= 0 else list(deque(f, maxlen=tail))
    click.echo("".join(lines), nl=False)


@cluster.command()
@click.option(
    "--component",
    "components",
    multiple=True,
    type=click.Choice(list(bins.COMPONENT_NAMES)),
    help="Only these (repeatable). Default: every missing one.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the cache has the right version.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@handle_errors
def build(components: tuple[str, ...], force: bool, quiet: bool) -> None:
    """Build the embedded cluster's binaries from their Go modules (cached; a cold build takes 8-17 min).

    Binaries you point drills at (DRILLS_BIN_DIR, DRILLS_<NAME>_BINARY, the config's binaries:) are used
    as they are and never built.
    """
    res = bins.resolve()
    missing = {c.name for c in res.missing}
    if not force and missing:
        bins.adopt(res.missing)
        res = bins.resolve()
    names = list(components) if components else [c.name for c in res.missing]
    if force and not components:
        names = [n for n in bins.COMPONENT_NAMES if res.sources.get(n, "cache") == "cache"]
    results = bins.build(names, force=force, progress=not quiet, console=err_console()) if names else []
    res = bins.resolve()
    out = console()
    table = Table("binary", "from", "path")
    for name in (*bins.COMPONENT_NAMES, "kubectl"):
        table.add_row(name, res.sources.get(name, "[red]missing[/]"), str(res.paths.get(name, "")))
    out.print(table)
    built = ", ".join(f"{r.name} {r.seconds:.0f} s" for r in results)
    out.print(f"built: {built}" if results else f"nothing to build (cache: {bins.bin_dir()})")
    if not components:
        # The kwok module (default Stages) is part of what `up` needs; fetch it now, not during a drill.
        bins.kwok_module_dir()
    sys.exit(ExitCode.OK if not res.missing else ExitCode.ENVIRONMENT)


@cluster.command()
@_name_option
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for Ready.")
@handle_errors
def reset(name: str, timeout: float) -> None:
    """Put the runbook's world back to its baseline (after a drill left it changed) and wait until Ready."""
    handle = clusters.get(name)
    clusters.reset_fixtures(handle, timeout=timeout)
    console().print(f"fixtures of {name} reset and Ready")
