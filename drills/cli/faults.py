"""`drill faults`, `drill inject` and `drill recover`: faults on their own, outside a full drill.

- ``drill faults`` lists the fault kinds drills knows (built-ins and plugins of the ``drills.faults`` group);
- ``drill inject SCENARIO --dry-run`` prints the exact API changes the scenario's faults would make, and
  whether the safety rails allow them; without ``--dry-run`` it injects them (with the revert ledger and a
  journal, like a drill), holds them for ``--for`` (or until Ctrl-C / SIGTERM) and reverts them;
- ``drill recover`` replays the reverts a crashed drill left pending.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.adapters.store import paths
from drills.adapters.store.journal import JOURNAL_FILE, Journal
from drills.cli._app import (
    ExitCode,
    cluster_option,
    duration_option,
    echo,
    emit,
    exits,
    handle_errors,
    output_option,
    print_table,
    say,
)
from drills.cli._scenario import namespace_option, retarget
from drills.cli.completion import complete_drills, complete_scenarios
from drills.errors import DrillError, SteadyStateNotMet
from drills.model.events import DrillEnded, DrillStarted, Mode, Outcome, Source
from drills.model.scenario import Scenario
from drills.timing import SYSTEM_CLOCK

# The faults package brings the kubernetes client (a second of CPU): imported inside the commands, so that
# completing `drill inject <Tab>` or asking `--help` stays quick.
if TYPE_CHECKING:
    from drills.adapters.clusters.facade import ClusterHandle
    from drills.adapters.kube.client import Kube

INJECT_ACTOR = "drills:inject"


@exits()
@click.command("faults")
@output_option
@handle_errors
def faults_command(output: str) -> None:
    """List the fault kinds drills can inject."""
    from drills.adapters import faults

    rows = []
    for name, target in sorted(faults.registered().items()):
        try:
            cls = faults.injector_class(name)
            doc = cls.summary or (cls.__doc__ or "").strip().splitlines()[0]
        except (DrillError, IndexError):
            doc = ""
        rows.append({"kind": name, "injector": target, "summary": doc})
    if output != "table":
        emit(rows, output)
        return
    print_table(
        ("kind", "what it does"),
        [(row["kind"], row["summary"]) for row in rows],
        title="fault kinds (`drill faults -o json` for the injectors)",
    )


def _kube_for(
    cluster: str, kubeconfig: Path | None, context: str | None
) -> tuple[Kube, ClusterHandle | None]:
    from drills.adapters.clusters import facade as clusters
    from drills.adapters.kube.client import Kube

    if kubeconfig is not None:
        return Kube(kubeconfig, context), None
    handle = clusters.get(cluster)
    return Kube(handle.kubeconfig, context or handle.context), handle


def _load(scenario: str) -> tuple[Scenario, Path]:
    path = find_scenario(scenario)
    return load_scenario(path), path


@exits(ExitCode.INVALID_INPUT, ExitCode.REFUSED, ExitCode.INTERRUPTED)
@click.command("inject")
@click.argument("scenario", shell_complete=complete_scenarios)
@click.option("--dry-run", is_flag=True, help="Print the exact API changes; change nothing.")
@cluster_option
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Use this kubeconfig instead of a drill cluster (its context must be allow-listed).",
)
@click.option("--context", default=None, help="Kubeconfig context.")
@namespace_option
@duration_option("--for", "hold", default=None, help="Keep the fault this long (90s, 5m), then revert. Default: until Ctrl-C.")  # fmt: skip
@duration_option(
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
@output_option
@handle_errors
def inject_command(
    scenario: str,
    dry_run: bool,
    cluster_name: str,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    hold: timedelta | None,
    confirm_timeout: timedelta,
    allow_system_namespaces: bool,
    output: str,
) -> None:
    """Inject a scenario's faults (or print them with --dry-run), then revert them."""
    sc, path = _load(scenario)
    sc = retarget(sc, namespace)
    hold_s = hold.total_seconds() if hold else None
    confirm_s = confirm_timeout.total_seconds()
    admin, handle = _kube_for(cluster_name, kubeconfig, context)
    if dry_run:
        from drills.adapters import faults

        plan = faults.plan_scenario(
            sc, admin, allow_system_namespaces=allow_system_namespaces, scenario_dir=path.parent
        )
        if output != "table":
            emit(
                {
                    "scenario": sc.id,
                    "path": str(path),
                    "namespace": sc.target.namespace,
                    "plan": plan.describe(),
                    "refused": bool(plan.refusals),
                },
                output,
            )
            raise SystemExit(int(ExitCode.REFUSED if plan.refusals else ExitCode.OK))
        say(f"dry run: scenario {sc.id} ({path}) in namespace {sc.target.namespace}")
        echo(plan.describe())
        if plan.refusals:
            say(("refused: ", "bold red"), "nothing would be changed", err=True)
            raise SystemExit(int(ExitCode.REFUSED))
        say("nothing was changed (dry run)")
        return
    _inject_and_hold(sc, path, admin, handle, hold_s, confirm_s, allow_system_namespaces)


def _inject_and_hold(
    sc: Scenario,
    path: Path,
    admin: Kube,
    handle: ClusterHandle | None,
    hold_s: float | None,
    confirm_s: float,
    allow_system_namespaces: bool,
) -> None:
    from drills.adapters import faults
    from drills.adapters.faults.ledger import Ledger
    from drills.adapters.kube import identities
    from drills.adapters.kube.client import Kube

    clock = SYSTEM_CLOCK
    drill_id = f"inject-{clock.now().astimezone(UTC).strftime('%Y%m%d-%H%M%S')}-{sc.id}"
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
    now = clock.now().astimezone(UTC)
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
            say(f"injected {sc.id} at {fh.injected_at:%H:%M:%S.%f} (drill {drill_id})")
            for f in fh.faults:
                say(f"effect: {f.effect}")
            say(f"holding the fault {'for ' + str(hold_s) + 's' if hold_s else 'until Ctrl-C'}...")
            deadline = None if hold_s is None else clock.monotonic() + hold_s
            while deadline is None or clock.monotonic() < deadline:
                clock.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - clock.monotonic())))
            for note in fh.revert(reason="hold time over"):
                say(f"reverted: {note}")
    except KeyboardInterrupt:
        outcome, reason = Outcome.ABORTED, "interrupted (SIGINT): faults reverted"
        say("interrupted: faults reverted", err=True)
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except SystemExit as e:
        outcome, reason = Outcome.ABORTED, f"terminated (exit {e.code}): faults reverted"
        raise
    except SteadyStateNotMet as e:
        outcome, reason = (
            Outcome.NOT_STEADY,
            f"steady state not met before the fault: nothing injected ({e.message})",
        )
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
                    say(f"revert failed, pending for `drill recover`: {e}", err=True)
        with contextlib.suppress(DrillError):
            journal.append(
                DrillEnded(
                    at=clock.now().astimezone(UTC),
                    source=Source.SYSTEM,
                    actor=INJECT_ACTOR,
                    outcome=outcome,
                    reason=reason,
                )
            )
        ledger.release()


@exits()
@click.command("recover")
@click.option(
    "--drill",
    "drill_id",
    default=None,
    shell_complete=complete_drills,
    help="Only this drill's pending reverts.",
)
@click.option("--list", "list_only", is_flag=True, help="Only list what is pending.")
@click.option(
    "--resolved-by-hand",
    "by_hand",
    metavar="ID",
    default=None,
    help="Mark the pending reverts of drill (or entry) ID as restored by hand, so they stop repeating.",
)
@click.option("--why", default="", help="With --resolved-by-hand: what was done by hand (recorded).")
@click.option("--by", "who", default=None, help="With --resolved-by-hand: who did it (default: $USER).")
@output_option
@handle_errors
def recover_command(
    drill_id: str | None, list_only: bool, by_hand: str | None, why: str, who: str | None, output: str
) -> None:
    """Replay the fault reverts that a crashed or killed drill left pending."""
    from drills.adapters.faults.ledger import pending_entries, recover, resolve_by_hand

    if by_hand is not None:
        import getpass

        marked = resolve_by_hand(by_hand, by=who or getpass.getuser(), why=why)
        if output != "table":
            emit([{"drill_id": e.drill_id, "entry": e.entry, "target": e.target} for e in marked], output)
        for e in marked if output == "table" else []:
            say(f"resolved by hand: drill {e.drill_id}: {e.fault_kind} on {e.target}")
        if marked and output == "table":
            say(
                "journaled in the drill's journal too: `drill report JOURNAL` rewrites its postmortem with it"
            )
        return

    pending = [e for e in pending_entries() if drill_id is None or e.drill_id == drill_id]
    rows = [
        {
            "drill_id": e.drill_id,
            "fault_kind": e.fault_kind,
            "target": e.target,
            "since": e.injected_at or e.planned_at,
        }
        for e in pending
    ]
    if output != "table" and (list_only or not pending):
        emit(rows, output)
        return
    if not pending:
        say("nothing to recover: every fault was reverted")
        return
    if output == "table":
        for r in rows:
            say(f"pending: drill {r['drill_id']}: {r['fault_kind']} on {r['target']} (since {r['since']})")
    if list_only:
        return
    results = recover(drill_id=drill_id)
    failed = 0
    done = []
    for res in results:
        done.append(
            {
                "drill_id": res.entry.drill_id,
                "fault_kind": res.entry.fault_kind,
                "ok": res.ok,
                "message": res.message,
            }
        )
        if output != "table":
            failed += 0 if res.ok else 1
        elif res.ok:
            say(f"recovered: drill {res.entry.drill_id}: {res.entry.fault_kind}: {res.message}")
        else:
            failed += 1
            say(f"still pending: drill {res.entry.drill_id}: {res.entry.fault_kind}: {res.message}", err=True)
    if output != "table":
        emit({"pending": rows, "recovered": done}, output)
    if failed:
        raise SystemExit(int(ExitCode.ENVIRONMENT))
