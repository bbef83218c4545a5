"""`drill cluster ...`: bring the drill cluster up and down, see how it is, point kubectl at it.

Thin: parsing and rendering only; the work is in drills.adapters.clusters.facade (backends, fixtures) and
drills.adapters.clusters.binaries (finding or building the embedded cluster's binaries).
"""

from __future__ import annotations

import shlex
import sys
from collections import deque
from pathlib import Path

import click

from drills.adapters.clusters import binaries as bins
from drills.adapters.clusters import facade as clusters
from drills.cli._app import (
    ExitCode,
    cluster_option,
    echo,
    emit,
    err_console,
    exits,
    handle_errors,
    output_option,
    plain,
    print_table,
    say,
    warn,
)

_name_option = cluster_option(dest="name", help="Which drill cluster (several can run).")


@click.group()
def cluster() -> None:
    """The drill cluster: `up`, `down`, `status`, `kubeconfig`, `logs`, `build`, `reset`, `baseline`."""


@exits()
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
    say(
        "cluster ",
        (handle.name, "bold"),
        f" is up ({handle.backend}, {handle.server}), context {handle.context}",
    )
    say(f"use it:  export KUBECONFIG={shlex.quote(str(handle.kubeconfig))}")
    if monitoring:
        from drills.adapters.monitoring import stack as monitoring_stack

        stack = monitoring_stack.start_monitoring(handle, progress=not quiet)
        say(f"Prometheus {stack.prometheus_url}  Alertmanager {stack.alertmanager_url}")


@exits()
@cluster.command()
@_name_option
@handle_errors
def down(name: str) -> None:
    """Stop the drill cluster: no process, port or state directory is left behind."""
    if clusters.down(name):
        say(f"cluster {name} is down")
    else:
        say(f"no cluster named {name}: nothing to do")


@exits()
@cluster.command()
@_name_option
@output_option
@handle_errors
def status(name: str, output: str) -> None:
    """Each component with its PID and ports, the API server, and whether the fixtures are Ready.

    Exit code 0 when everything is healthy, 4 otherwise.
    """
    st = clusters.status(name)
    if output != "table":
        emit(st.to_dict(), output)
        sys.exit(ExitCode.OK if st.healthy else ExitCode.ENVIRONMENT)
    if st.backend is None:
        flag = "" if name == clusters.DEFAULT_NAME else f" --cluster {name}"
        say(f"cluster {name}: not up  (start it: drill cluster up{flag})")
        sys.exit(ExitCode.ENVIRONMENT)
    state = ("up", "green") if st.up else ("down", "red")
    say("cluster ", (st.name, "bold"), f" ({st.backend}): ", state, f"  {st.server}  {st.version or ''}")
    say(f"context {st.context}  kubeconfig {st.kubeconfig}")
    if st.components:
        print_table(
            ("component", "pid", "ports", "state"),
            [
                (
                    c.name,
                    str(c.pid or "-"),
                    ", ".join(f"127.0.0.1:{p}" for p in c.ports) or "-",
                    plain("healthy", "green") if c.healthy else plain(c.detail or "not listening", "red"),
                )
                for c in st.components
            ],
        )
    if st.fixtures_ready is not None:
        if st.fixtures_ready:
            say("fixtures: ", ("Ready", "green"))
        else:
            say("fixtures: ", ("not Ready", "yellow"), ": " + "; ".join(st.waiting_for))
    if st.problem:
        say((st.problem, "red"))
    sys.exit(ExitCode.OK if st.healthy else ExitCode.ENVIRONMENT)


@exits()
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
    echo(f"export KUBECONFIG={path}" if export else str(handle.kubeconfig))


@exits()
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
        echo(path)
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        lines = list(f) if tail <= 0 else list(deque(f, maxlen=tail))
    click.echo("".join(lines), nl=False)


@exits()
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
    print_table(
        ("binary", "from", "path"),
        [
            (name, res.sources.get(name) or plain("missing", "red"), str(res.paths.get(name, "")))
            for name in (*bins.COMPONENT_NAMES, "kubectl")
        ],
    )
    built = ", ".join(f"{r.name} {r.seconds:.0f} s" for r in results)
    say(f"built: {built}" if results else f"nothing to build (cache: {bins.bin_dir()})")
    if not components:
        # The kwok module (default Stages) is part of what `up` needs; fetch it now, not during a drill.
        bins.kwok_module_dir()
    sys.exit(ExitCode.OK if not res.missing else ExitCode.ENVIRONMENT)


@exits(ExitCode.ENVIRONMENT)
@cluster.command()
@_name_option
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for Ready.")
@handle_errors
def reset(name: str, timeout: float) -> None:
    """Put the world back to its baseline (after a drill left it changed) and wait until it is Ready.

    On drills' own clusters the runbook's fixtures are re-applied first; then every remaining difference from
    the baseline is restored. Exit code 4 when something could not be restored (each is listed, with why).
    """
    from drills.adapters.kube import world

    handle = clusters.get(name)
    kept = world.load(clusters.baseline_file(name))
    before = clusters.check_world(handle, kept.namespaces) if kept is not None else []
    done, left = clusters.reset_world(handle, timeout=timeout)
    still = {d.ref for d in left}
    for diff in before:
        if diff.ref not in still:
            say("restored: ", diff.describe())
    for line in done.left:
        warn(line)
    for diff in left:
        warn(f"still differs: {diff.describe()}")
    if done.left or left:
        sys.exit(ExitCode.ENVIRONMENT)
    say(f"the world of {name} is back to its baseline")


@exits(ExitCode.ENVIRONMENT)
@cluster.command()
@_name_option
@click.option("--record", is_flag=True, help="Take the world as it is now as the new baseline.")
@click.option(
    "-n", "--namespace", "namespaces", multiple=True, help="Drill namespaces (default: those the baseline has)."
)
@output_option
@handle_errors
def baseline(name: str, record: bool, namespaces: tuple[str, ...], output: str) -> None:
    """How the world differs from its baseline (exit code 4 when it does), or `--record` a new baseline.

    Every drill is held to the baseline: its preflight refuses a world that differs, its end lists what it
    left behind. `drill cluster up` records it; record again when the world changed on purpose.
    """
    from drills.adapters.kube import world

    handle = clusters.get(name)
    current = world.load(clusters.baseline_file(name))
    scope = list(namespaces) or (current.namespaces if current else ["production"])
    if record:
        taken = clusters.record_world(handle, scope)
        say(f"baseline of {name} recorded: {len(taken.state)} objects in {', '.join(taken.namespaces)} and the nodes")
        return
    diffs = clusters.check_world(handle, scope)
    if output != "table":
        emit({"cluster": name, "namespaces": scope, "differences": [d.as_dict() for d in diffs]}, output)
    elif diffs:
        print_table(["object", "change", "fields"], [[d.ref, d.change, ", ".join(d.fields)] for d in diffs],
                    title=f"differences from the baseline of {name}")
    else:
        say(f"the world of {name} matches its baseline")
    if diffs:
        sys.exit(ExitCode.ENVIRONMENT)
