"""The revert ledger on disk: entries, pending, torn lines, the owner lock across processes, recover's flow.

Replaying real reverts against the cluster is in tests/test_faults_signals.py; here the operations are the
ones that need no cluster (``none``) or fail on purpose (an unknown operation)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drills.adapters.faults import ledger as ledger_mod
from drills.adapters.faults.ledger import Ledger, owner_alive, read_ledger, recover, warn_pending
from drills.errors import JournalError


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def plan(led: Ledger, ops: list[dict[str, Any]] | None = None, kind: str = "pod-kill") -> str:
    return led.plan(
        fault_kind=kind,
        target="Deployment/production/app",
        kubeconfig="/nowhere/kubeconfig",
        context="drills-test",
        ops=ops if ops is not None else [{"op": "none", "why": "nothing to undo"}],
    )


def test_entry_life_cycle_and_file_mode() -> None:
    led = Ledger.for_drill("d1")
    entry = plan(led)
    assert [e.entry for e in led.pending()] == [entry]
    led.injected(entry)
    assert led.pending()[0].injected_at is not None
    led.reverted(entry)
    assert led.pending() == []
    assert stat.S_IMODE(led.path.stat().st_mode) == 0o600


def test_torn_last_line_is_a_problem_not_a_failure() -> None:
    led = Ledger.for_drill("d2")
    entry = plan(led)
    with led.path.open("ab") as f:
        f.write(b'{"v":1,"record":"reverted","entry":"' + entry.encode()[:5])  # killed mid-write
    state = read_ledger(led.path)
    assert [e.entry for e in state.pending()] == [entry]
    assert len(state.problems) == 1 and "torn last line" in state.problems[0]


def test_revert_failures_keep_the_entry_pending() -> None:
    led = Ledger.for_drill("d3")
    entry = plan(led)
    led.revert_failed(entry, "API server said 500")
    (e,) = led.pending()
    assert e.failures == ["API server said 500"]


def _hold_owner_lock(drill_id: str, state: str, ready: Any) -> None:
    os.environ["DRILLS_STATE"] = state
    led = Ledger.for_drill(drill_id)
    led.claim()
    ready.set()
    time.sleep(60)


def test_owner_lock_blocks_a_second_owner_until_the_first_dies(state: Path) -> None:
    led = Ledger.for_drill("d4")
    plan(led)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_owner_lock, args=("d4", str(state), ready))
    proc.start()
    try:
        assert ready.wait(30)
        assert owner_alive(led.path) == proc.pid
        with pytest.raises(JournalError, match="another process owns the faults of drill d4"):
            Ledger.for_drill("d4").claim()
        # a live drill's faults are not "left behind": no warning, recover leaves them alone
        assert warn_pending() == []
        assert recover(lambda kubeconfig, context: object()) == []
    finally:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    assert owner_alive(led.path) is None
    (line,) = warn_pending()
    assert line.startswith("drill d4: fault pod-kill on Deployment/production/app was not reverted")
    assert line.endswith("run `drill recover`")


def test_recover_replays_newest_first_and_closes_entries() -> None:
    led = Ledger.for_drill("d5")
    first = plan(led, [{"op": "none", "why": "first"}], kind="crash-loop")
    second = plan(led, [{"op": "none", "why": "second"}], kind="oom")
    built: list[tuple[str, str | None]] = []

    def factory(kubeconfig: str, context: str | None) -> object:
        built.append((kubeconfig, context))
        return object()

    results = recover(factory)
    assert [(r.entry.entry, r.ok, r.message) for r in results] == [
        (second, True, "second"),
        (first, True, "first"),
    ]
    assert built == [("/nowhere/kubeconfig", "drills-test")] * 2
    assert led.pending() == []
    assert recover(factory) == []  # idempotent: nothing left


def test_recover_keeps_a_failing_revert_pending_and_says_why() -> None:
    led = Ledger.for_drill("d6")
    # A ledger written by a newer drills: an operation this one does not know.
    record = {"v": 1, "record": "planned", "entry": "e6", "at": "2026-01-06T09:00:00+00:00", "drill_id": "d6",
              "fault_kind": "pod-kill", "target": "t", "kubeconfig": "/k", "context": None,
              "ops": [{"op": "from-the-future"}]}  # fmt: skip
    led.path.parent.mkdir(parents=True, exist_ok=True)
    led.path.write_text(json.dumps(record) + "\n")
    (result,) = recover(lambda kubeconfig, context: object())
    assert not result.ok and "unknown revert operation 'from-the-future'" in result.message
    assert f"{led.path}:1: ops[0]" in result.message
    (e,) = led.pending()
    assert e.failures and "from-the-future" in e.failures[0]


def test_recover_only_one_drill() -> None:
    plan(Ledger.for_drill("d7"))
    plan(Ledger.for_drill("d8"))
    results = recover(lambda kubeconfig, context: object(), drill_id="d8")
    assert [r.entry.drill_id for r in results] == ["d8"]
    assert [e.drill_id for e in ledger_mod.pending_entries()] == ["d7"]


def test_a_revert_resolved_by_hand_stops_repeating_and_says_who_and_why() -> None:
    from click.testing import CliRunner

    from drills.cli import cli

    led = Ledger.for_drill("d9")
    record = {"v": 1, "record": "planned", "entry": "e9", "at": "2026-01-09T09:00:00+00:00", "drill_id": "d9",
              "fault_kind": "chaostoolkit", "target": "t", "kubeconfig": "/k", "context": None,
              "ops": [{"op": "from-the-future"}]}  # fmt: skip
    led.path.parent.mkdir(parents=True, exist_ok=True)
    led.path.write_text(json.dumps(record) + "\n")  # a revert that can never succeed
    assert [r.ok for r in recover(lambda kubeconfig, context: object())] == [False]
    result = CliRunner().invoke(
        cli, ["recover", "--resolved-by-hand", "d9", "--why", "uncordoned by hand", "--by", "ana"]
    )
    assert result.exit_code == 0, result.output
    assert "resolved by hand: drill d9" in result.output
    assert recover(lambda kubeconfig, context: object()) == []  # nothing left to repeat
    (entry,) = read_ledger(led.path).entries
    assert (entry.resolved_by, entry.resolved_why) == ("ana", "uncordoned by hand")
    missing = CliRunner().invoke(cli, ["recover", "--resolved-by-hand", "d9", "--why", "again"])
    assert missing.exit_code == 2 and "no pending revert" in missing.output


def test_a_revert_resolved_by_hand_is_journaled_for_the_timeline_and_postmortem(tmp_path: Path) -> None:
    """Days after the drill, the journal gets who and why; the score stays what drills' own revert made it."""
    from builders import START, passing_drill

    from drills.adapters.store.journal import JOURNAL_FILE, Journal, read_journal
    from drills.engine.scoring import score
    from drills.model.events import FaultReverted, Source
    from drills.reporting.report import render_postmortem
    from drills.reporting.view import describe
    from drills.timing import FakeClock

    events = passing_drill(drill_id="d10").events
    led = Ledger.for_drill("d10")
    journal = Journal.create(led.path.parent / JOURNAL_FILE, events[0])  # type: ignore[arg-type]
    journal.append_many(events[1:])
    before = score(read_journal(journal.path).events)
    entry = plan(led, kind="chaostoolkit")  # left pending, as a revert that cannot succeed is
    clock = FakeClock(START + timedelta(days=3))
    (marked,) = ledger_mod.resolve_by_hand("d10", by="ana", why="uncordoned node-2 by hand", clock=clock)
    assert marked.entry == entry

    read = read_journal(journal.path)
    assert read.problems == []  # three days after the end is not "outside the drill" for this event
    last = read.events[-1]
    assert isinstance(last, FaultReverted) and last.source == Source.HUMAN and last.actor == "ana"
    assert last.detail == {"by_hand": True, "by": "ana", "why": "uncordoned node-2 by hand", "entry": entry}
    assert last.at == clock.now()
    line = describe(last)
    assert line is not None
    assert line[2] == (
        "Fault reverted by hand by ana: chaostoolkit on Deployment/production/app: uncordoned node-2 by hand"
    )
    after = score(read.events)
    assert [(c.id, c.status) for c in after.checks] == [(c.id, c.status) for c in before.checks]
    assert "Fault reverted by hand by ana" in render_postmortem(after, read.events)


def test_a_revert_resolved_by_hand_without_a_journal_still_closes_the_ledger() -> None:
    led = Ledger.for_drill("d11")
    plan(led)
    assert [e.drill_id for e in ledger_mod.resolve_by_hand("d11", by="ana", why="fixed")] == ["d11"]
    assert ledger_mod.pending_entries() == []
