"""`drill faults`, `drill inject` and `drill recover`: faults on their own, outside a full drill.

- ``drill faults`` lists the fault kinds drills knows (built-ins and plugins of the ``drills.faults`` group);
- ``drill inject SCENARIO --dry-run`` prints the exact API changes the scenario's faults would make, and
  whether the safety rails allow them; without ``--dry-run`` it injects them (with the revert ledger and a
  journal, like a drill), holds them for ``--for`` (or until Ctrl-C / SIGTERM) and reverts them;
- ``drill recover`` replays the reverts a crashed drill left pending.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from drills.adapters import faults
from drills.adapters.clusters import facade as clusters
from drills.adapters.faults.ledger import Ledger, pending_entries, recover
from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.adapters.kube import identities
from drills.adapters.kube.client import Kube
from drills.adapters.store import paths
from drills.adapters.store.journal import JOURNAL_FILE, Journal
from drills.cli._app import ExitCode, cli, console, err_console, handle_errors
from drills.errors import DrillError, UsageError
from drills.model.durations import parse_duration
from drills.model.events import DrillEnded, DrillStarted, Mode, Outcome, Source
from drills.model.scenario import Scenario
from drills.timing import SYSTEM_CLOCK

INJECT_ACTOR = "drills:inject"


@cli.command("faults")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def faults_command(as_json: bool) -> None:
    """List the fault kinds drills can inject."""
    rows = []
    for name, target in sorted(faults.registered().items()):
        try:
            cls = faults.injector_class(name)
            doc = cls.summary or (cls.__doc__ or "").strip().splitlines()[0]
        except (DrillError, IndexError):
            doc = ""
        rows.append({"kind": name, "injector": target, "summary": doc})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("kind", "what it does", title="fault kinds (`drill faults --json` for the injectors)")
    for row in rows:
        table.add_row(row["kind"], row["summary"])
    console().print(table)


def _kube_for(
    cluster: str | None, kubeconfig: Path | None, context: str | None
) -> tuple[Kube, clusters.ClusterHandle | None]:
    if kubeconfig is not None:
        return Kube(kubeconfig, context), None
    handle = clusters.get(cluster or clusters.DEFAULT_NAME)
    return Kube(handle.kubeconfig, context or handle.context), handle


def _load(scenario: str) -> tuple[Scenario, Path]:
    path = find_scenario(scenario)
    return load_scenario(path), path


@cli.command("inject")
@click.argument("scenario")
@click.option("--dry-run", is_flag=True, help="Print the exact API changes; change nothing.")
@click.option("--cluster", "cluster_name", default=None, help="Drill cluster name (default: drills).")
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Use this kubeconfig instead of a drill cluster (its context must be allow-listed).",
)
@click.option("--context", default=None, help="Kubeconfig context.")
@click.option(
    "--for",
    "hold",
    default=None,
    help="Keep the fault this long (e.g. 90s), then revert. Default: until Ctrl-C.",
)
@click.option(
    "--confirm-timeout",
    default="90s",
    show_default=True,
    help="How long to wait for the fault's effect to show.",
)
@click.option(
    "--allow-system-namespaces",
    is_flag=True,
    help="Also needed (with the scenario's safety.allow_system_namespaces) to touch kube-system & co.",
)
@handle_errors
def inject_command(
    scenario: str,
    dry_run: bool,
    cluster_name: str | None,
    kubeconfig: Path | None,
    context: str | None,
    hold: str | None,
    confirm_timeout: str,
    allow_system_namespaces: bool,
) -> None:
    """Inject a scenario's faults (or print them with --dry-run), then revert them."""
    sc, path = _load(scenario)
    try:
        hold_s = parse_duration(hold).total_seconds() if hold else None
        confirm_s = parse_duration(confirm_timeout).total_seconds()
    except ValueError as e:
        raise UsageError(f"--for/--confirm-timeout: {e}") from e
    admin, handle = _kube_for(cluster_name, kubeconfig, context)
    out = console()
    if dry_run:
        plan = faults.plan_scenario(
            sc, admin, allow_system_namespaces=allow_system_namespaces, scenario_dir=path.parent
        )
        out.print(f"dry run: scenario {sc.id} ({path})", markup=False)
        out.print(plan.describe(), markup=False, highlight=False)
        if plan.refusals:
            err_console().print("[bold red]refused:[/] nothing would be changed", markup=True)
            raise SystemExit(int(ExitCode.REFUSED))
        out.print("nothing was changed (dry run)", markup=False)
        return
    _inject_and_hold(sc, path, admin, handle, hold_s, confirm_s, allow_system_namespaces)


def _inject_and_hold(
    sc: Scenario,
    path: Path,
    admin: Kube,
    handle: clusters.ClusterHandle | None,
    hold_s: float | None,
    confirm_s: float,
    allow_system_namespaces: bool,
) -> None:
    out = console()
    drill_id = f"inject-{SYSTEM_CLOCK.now().strftime('%Y%m%d-%H%M%S')}-{sc.id}"
    directory = paths.drill_dir(drill_id)
    kube = admin
    if handle is not None and handle.ca_cert and handle.ca_key:
        ids = identities.setup(
            admin,
            ca_cert=handle.ca_cert,
            ca_key=handle.ca_key,
            server=handle.server,
            context=handle.context,
            directory=directory / "identities",
            namespaces=[sc.target.namespace],
        )
        kube = Kube(ids.injector.kubeconfig, ids.injector.context)
    now = SYSTEM_CLOCK.now()
    journal = Journal.create(
        directory / JOURNAL_FILE,
        DrillStarted(
            at=now,
            source=Source.SYSTEM,
            actor=INJECT_ACTOR,
            drill_id=drill_id,
            scenario_id=sc.id,
            scenario_title=sc.title,
            category=sc.category,
            service=sc.service,
            namespace=sc.target.namespace,
            true_severity=sc.true_severity,
            mode=Mode.CHAOS_TEST,
            backend=handle.backend if handle else "context",
            healthy_for_seconds=sc.steady_state.healthy_for.total_seconds(),
            budget_seconds=sc.time_budget.total_seconds(),
        ),
    )
    ledger = Ledger(directory / "ledger.jsonl", drill_id=drill_id)
    handles: list[faults.FaultHandle] = []
    outcome, reason = Outcome.RESOLVED, "held and reverted"
    try:
        with faults.revert_on_signals(handles):
            # inject() reverts at once when the effect never shows (confirm_timeout)
            fh = faults.inject(
                sc,
                kube,
                ledger,
                journal,
                allow_system_namespaces=allow_system_namespaces,
                scenario_dir=path.parent,
                handles=handles,
                confirm_timeout=confirm_s,
            )
            out.print(f"injected {sc.id} at {fh.injected_at:%H:%M:%S.%f} (drill {drill_id})", markup=False)
            for f in fh.faults:
                out.print(f"effect: {f.effect}", markup=False)
            out.print(
                f"holding the fault {'for ' + str(hold_s) + 's' if hold_s else 'until Ctrl-C'}...",
                markup=False,
            )
            deadline = None if hold_s is None else SYSTEM_CLOCK.monotonic() + hold_s
            while deadline is None or SYSTEM_CLOCK.monotonic() < deadline:
                left = None if deadline is None else deadline - SYSTEM_CLOCK.monotonic()
                SYSTEM_CLOCK.sleep(0.2 if left is None else max(0.0, min(0.2, left)))
            for note in fh.revert(reason="hold time over"):
                out.print(f"reverted: {note}", markup=False)
    except KeyboardInterrupt:
        outcome, reason = Outcome.ABORTED, "interrupted (SIGINT): faults reverted"
        err_console().print("interrupted: faults reverted", markup=False)
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except SystemExit as e:
        outcome, reason = Outcome.ABORTED, f"terminated (exit {e.code}): faults reverted"
        raise
    except DrillError as e:
        outcome, reason = Outcome.CRASHED, e.message
        raise
    finally:
        # whatever happened above, nothing stays injected (a revert that fails stays pending in the ledger)
        for h in handles:
            if not h.reverted:
                try:
                    h.revert(reason=reason)
                except DrillError as e:
                    err_console().print(f"revert failed, pending for `drill recover`: {e}", markup=False)
        with contextlib.suppress(DrillError):
            journal.append(
                DrillEnded(
                    at=SYSTEM_CLOCK.now(),
                    source=Source.SYSTEM,
                    actor=INJECT_ACTOR,
                    outcome=outcome,
                    reason=reason,
                )
            )
        ledger.release()


@cli.command("recover")
@click.option("--drill", "drill_id", default=None, help="Only this drill's pending reverts.")
@click.option("--list", "list_only", is_flag=True, help="Only list what is pending.")
@handle_errors
def recover_command(drill_id: str | None, list_only: bool) -> None:
    """Replay the fault reverts that a crashed or killed drill left pending."""
    out = console()
    pending = [e for e in pending_entries() if drill_id is None or e.drill_id == drill_id]
    if not pending:
        out.print("nothing to recover: every fault was reverted", markup=False)
        return
    for e in pending:
        out.print(
            f"pending: drill {e.drill_id}: {e.fault_kind} on {e.target} (since {e.injected_at or e.planned_at})",
            markup=False,
        )
    if list_only:
        return
    results = recover(drill_id=drill_id)
    failed = 0
    for res in results:
        if res.ok:
            out.print(
                f"recovered: drill {res.entry.drill_id}: {res.entry.fault_kind}: {res.message}", markup=False
            )
        else:
            failed += 1
            err_console().print(
                f"still pending: drill {res.entry.drill_id}: {res.entry.fault_kind}: {res.message}",
                markup=False,
            )
    if failed:
        raise SystemExit(int(ExitCode.ENVIRONMENT))
