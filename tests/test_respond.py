"""Responder commands: what each records in the running drill's journal, and several writers at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from drills.adapters.files.scenarios import load_scenario
from drills.adapters.store.journal import JOURNAL_FILE, Journal, read_journal
from drills.cli import cli
from drills.engine import comms
from drills.errors import NoActiveDrill, UsageError
from drills.model.events import (
    Acknowledged,
    CommsPosted,
    DrillEnded,
    FaultInjected,
    HintUsed,
    ImpactSampled,
    Mode,
    Note,
    Outcome,
    Paused,
    Resolved,
    Resumed,
    RoleAssigned,
    SeverityDeclared,
    Source,
)
from drills.model.severity import Severity
from drills.runner import respond
from drills.runner.run import started_event
from drills.timing import FakeClock

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
DRILL = "20260106-090000-bad-deploy-rollback"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_RESPONDER", "alice")
    return tmp_path / "state"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def drill(state: Path, clock: FakeClock) -> Path:
    """A running drill (started, fault injected) that the active pointer names."""
    scenario = load_scenario(ROOT / "scenarios" / "bad-deploy-rollback.yaml")
    path = state / "drills" / DRILL / JOURNAL_FILE
    j = Journal.create(
        path,
        started_event(scenario, DRILL, START, mode=Mode.TRAINING, backend="embedded", trainee=None, seed=1),
    )
    j.append(FaultInjected(at=START, source=Source.SYSTEM, fault_kind="bad-deploy", target="deployment/app"))
    respond.set_active(DRILL)
    respond.write_meta(
        path.parent, {"drill_id": DRILL, "kubeconfigs": {"responder": "/k/responder.kubeconfig"}}
    )
    return path


def session(clock: FakeClock, drill_id: str | None = None) -> respond.ResponderSession:
    return respond.ResponderSession.open(drill_id, clock=clock)


def test_no_drill_running_is_a_clear_error(state: Path) -> None:
    with pytest.raises(NoActiveDrill) as e:
        respond.ResponderSession.open()
    assert "drill run" in (e.value.hint or "")
    result = CliRunner().invoke(cli, ["ack"])
    assert result.exit_code == NoActiveDrill.exit_code
    assert "no drill is running" in result.output
    assert "Traceback" not in result.output


def test_each_command_records_its_event(drill: Path, clock: FakeClock) -> None:
    s = session(clock)
    clock.advance(30)
    s.ack()
    s.declare("p0")
    s.role("ic", "@alice")
    s.escalate("engineering-leadership")
    s.ticket("OPS-12")
    s.note("rolled back")
    s.detect("saw 500s")
    s.mitigated("error rate down")
    s.resolve("bad image")
    events = read_journal(drill).events
    kinds = [e.type for e in events[2:]]
    assert kinds == [
        "acknowledged",
        "severity.declared",
        "role.assigned",
        "escalation.notified",
        "ticket.created",
        "note",
        "detected",
        "mitigated",
        "resolved",
    ]
    assert all(e.source == Source.HUMAN and e.actor == "alice" for e in events[2:])
    assert all(e.at == START + timedelta(seconds=30) for e in events[2:])
    declared = next(e for e in events if isinstance(e, SeverityDeclared))
    assert declared.severity == Severity.P0
    role = next(e for e in events if isinstance(e, RoleAssigned))
    assert role.person == "alice"


def test_bad_input_is_refused_with_what_to_type(drill: Path, clock: FakeClock) -> None:
    s = session(clock)
    with pytest.raises(UsageError):
        s.declare("P7")
    with pytest.raises(UsageError):
        s.role("boss", "alice")
    with pytest.raises(UsageError):
        s.note("   ")
    result = CliRunner().invoke(cli, ["declare", "P9"])
    assert result.exit_code == 2 and "P9" in result.output


def test_hints_open_in_time_and_cost_points(drill: Path, clock: FakeClock) -> None:
    s = session(clock)
    hints = s.state().started.hints
    assert hints, "training mode offers hints"
    first_after = min(h.after_seconds for h in hints)
    offer, event = s.hint()
    assert event is None and offer.available_in == timedelta(seconds=first_after)
    clock.advance(first_after)
    offer, event = s.hint()
    assert isinstance(event, HintUsed) and offer.hint is not None
    assert event.cost == offer.hint.cost and event.text == offer.hint.text
    _, second = s.hint()
    assert second is None or (isinstance(second, HintUsed) and second.index != event.index)


def test_comms_prefilled_and_checked(drill: Path, clock: FakeClock) -> None:
    s = session(clock)
    s.declare("P1")
    s.role("ic", "alice")
    text = s.prefilled("initial_alert")
    assert comms.incident_id(START) in text and "@alice" in text and "P1" in text
    assert "[description of what's broken]" in text  # left for the person to write
    rushed = s.post_comms("initial_alert", text)
    assert "symptom" in rushed.event.missing_fields
    complete = text.replace("[description of what's broken]", "checkout errors").replace(
        "[% of users affected, features down]", "60%, checkout"
    )
    complete = complete.replace("[Zoom/Slack link]", "#war-room")
    done = s.post_comms("initial_alert", complete)
    assert done.event.missing_fields == [], done.problems


def test_comms_cli_prints_the_template_then_posts_a_file(drill: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["comms", "status-update"])
    assert shown.exit_code == 0, shown.output
    assert "INCIDENT UPDATE" in shown.output
    message = tmp_path / "m.txt"
    message.write_text(shown.output.split("edit it, then")[0], encoding="utf-8")
    posted = runner.invoke(cli, ["comms", "status_update", "--file", str(message), "--as", "bob"])
    assert posted.exit_code == 0, posted.output
    assert "to fix" in posted.output
    event = next(e for e in read_journal(drill).events if isinstance(e, CommsPosted))
    assert event.actor == "bob" and event.template == "status_update" and event.missing_fields
    unknown = runner.invoke(cli, ["comms", "tweet"])
    assert unknown.exit_code == 2 and "initial_alert" in unknown.output


def test_pause_resume_and_abort(drill: Path, clock: FakeClock) -> None:
    s = session(clock)
    s.pause("coffee")
    with pytest.raises(UsageError):
        s.pause()
    clock.advance(60)
    s.resume()
    with pytest.raises(UsageError):
        s.resume()
    assert respond.abort_requested(drill.parent) is None
    s.abort("cluster needed for a demo")
    request = respond.abort_requested(drill.parent)
    assert request is not None and request["by"] == "alice" and "demo" in request["reason"]
    events = read_journal(drill).events
    assert [type(e) for e in events[2:]] == [Paused, Resumed, Note]


def test_nothing_is_recorded_once_the_drill_ended(drill: Path, clock: FakeClock) -> None:
    Journal(drill).append(DrillEnded(at=START, source=Source.SYSTEM, outcome=Outcome.RESOLVED))
    with pytest.raises(UsageError) as e:
        session(clock).ack()
    assert "already ended" in e.value.message


def test_drill_option_targets_another_drill_and_env_prints_the_identity(drill: Path, state: Path) -> None:
    respond.clear_active(DRILL)
    runner = CliRunner()
    assert runner.invoke(cli, ["ack"]).exit_code == NoActiveDrill.exit_code
    ok = runner.invoke(cli, ["ack", "--drill", DRILL])
    assert ok.exit_code == 0, ok.output
    assert any(isinstance(e, Acknowledged) for e in read_journal(drill).events)
    env = runner.invoke(cli, ["env", "--drill", DRILL])
    assert env.output.strip() == "export KUBECONFIG=/k/responder.kubeconfig"
    bad = runner.invoke(cli, ["ack", "--drill", "../../etc"])
    assert bad.exit_code == 2


def test_status_prints_the_dashboard(drill: Path) -> None:
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "SLA budgets" in result.output and "Checkout crashes" in result.output


def test_resolve_records_health_at_the_time(drill: Path, clock: FakeClock) -> None:
    result = CliRunner().invoke(cli, ["resolve", "--root-cause", "bad image v2.1.0"])
    assert result.exit_code == 0, result.output
    resolved = next(e for e in read_journal(drill).events if isinstance(e, Resolved))
    assert resolved.root_cause == "bad image v2.1.0" and resolved.healthy_at_resolve is None


# ---- several writers at once ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from drills.model.events import Source
    from drills.runner.respond import ResponderSession
    who, n = sys.argv[1], int(sys.argv[2])
    s = ResponderSession.open(actor=who, source=Source.HUMAN)
    for i in range(n):
        s.note(f"{who} {i} " + "x" * (i % 300))
    """
)


def test_runner_and_responder_processes_append_concurrently_without_loss(drill: Path, state: Path) -> None:
    """The runner (a thread here) and responders in other processes, plus real `drill` commands."""
    n_proc, n_runner, n_cli = 300, 300, 6
    env = {**os.environ, "DRILLS_STATE": str(state)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, who, str(n_proc)], env=env)
        for who in ("alice", "bob")
    ]
    runner_journal = Journal(drill)

    def runner_writes() -> None:
        for i in range(n_runner):
            runner_journal.append(
                Note(at=datetime.now(UTC), source=Source.SYSTEM, actor="drills:runner", text=f"runner {i}")
            )

    t = threading.Thread(target=runner_writes)
    t.start()
    drill_bin = Path(sys.executable).parent / "drill"
    clis = [
        subprocess.run(
            [str(drill_bin), "note", f"cli {i}", "--as", "carol"], env=env, capture_output=True, text=True
        )
        for i in range(n_cli)
    ]
    t.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert all(c.returncode == 0 for c in clis), [c.stderr for c in clis]

    read = read_journal(drill)
    assert read.problems == [] and read.duplicates == 0
    notes = [e for e in read.events if isinstance(e, Note)]
    texts = [e.text for e in notes]
    expected = (
        [f"{who} {i} " + "x" * (i % 300) for who in ("alice", "bob") for i in range(n_proc)]
        + [f"runner {i}" for i in range(n_runner)]
        + [f"cli {i}" for i in range(n_cli)]
    )
    assert sorted(texts) == sorted(expected)  # none lost, none torn, none twice
    assert len(notes) == 2 * n_proc + n_runner + n_cli
    # every line is one whole JSON object
    for line in drill.read_bytes().splitlines():
        json.loads(line)


def test_a_pointer_to_a_drill_whose_runner_died_is_refused(drill: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    respond.write_meta(drill.parent, {"drill_id": DRILL, "pid": dead.pid})
    with pytest.raises(NoActiveDrill) as e:
        respond.find_drill()
    assert "is gone" in e.value.message and "drill recover" in (e.value.hint or "")
    # naming the drill explicitly still works (a game master adding notes after a crash)
    assert respond.find_drill(DRILL).drill_id == DRILL
    respond.write_meta(drill.parent, {"drill_id": DRILL, "pid": os.getpid()})
    assert respond.find_drill().drill_id == DRILL


def _sample(at: datetime, pct: float, status: str, p99: float, down: list[str]) -> ImpactSampled:
    return ImpactSampled(
        at=at,
        source=Source.SYSTEM,
        actor="drills-users",
        users_affected_pct=pct,
        users_affected=round(10 * pct),
        users_active=1000,
        status=status,  # type: ignore[arg-type]
        requests_per_second=1000,
        failed_per_second=10 * pct,
        p99_ms=p99,
        features_down=down,
    )


def test_drill_impact_shows_what_users_see_live_and_once_ended(drill: Path) -> None:
    j = Journal(drill)
    j.append(_sample(START + timedelta(seconds=2), 100.0, "down", 20.0, ["browse", "cart", "checkout"]))
    j.append(_sample(START + timedelta(seconds=90), 48.5, "degraded", 1200.0, ["cart", "checkout"]))
    runner = CliRunner()
    with freeze_time(START + timedelta(minutes=2), ignore=["kubernetes"]):
        out = runner.invoke(cli, ["impact", "-o", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    impact = data["impact"]
    assert (impact["users_affected"], impact["users_affected_pct"], impact["status"]) == (
        485,
        48.5,
        "degraded",
    )
    assert impact["error_rate_pct"] == 48.5 and impact["p99_ms"] == 1200.0
    assert impact["features_down"] == ["cart", "checkout"] and impact["peak_users_affected_pct"] == 100.0
    users = impact["sparklines"]["users_affected"]
    # 5 minutes in 30 columns: nothing before T0, everyone from +2s, half from +90s
    assert len(users) == 30 and users.startswith("▁") and "█" in users and users.endswith("▄")
    with freeze_time(START + timedelta(minutes=2), ignore=["kubernetes"]):
        table = runner.invoke(cli, ["impact"])
    assert table.exit_code == 0, table.output
    assert "485 of 1,000 (48.5%)" in table.output and "1,200 ms" in table.output
    assert "features down: cart, checkout" in table.output
    # ended: the figures as at the end, however long after
    j.append(_sample(START + timedelta(seconds=150), 0.0, "ok", 40.0, []))
    j.append(DrillEnded(at=START + timedelta(seconds=160), source=Source.SYSTEM, outcome=Outcome.RESOLVED))
    with freeze_time(START + timedelta(days=3), ignore=["kubernetes"]):
        ended = runner.invoke(cli, ["impact", "--drill", DRILL, "-o", "yaml"])
    assert ended.exit_code == 0, ended.output
    assert "users_affected_pct: 0.0" in ended.output and "ended: true" in ended.output


def test_drill_impact_without_virtual_users_says_so(drill: Path) -> None:
    out = CliRunner().invoke(cli, ["impact"])
    assert out.exit_code == 0, out.output
    assert "no impact samples in this drill" in out.output
    assert json.loads(CliRunner().invoke(cli, ["impact", "-o", "json"]).output)["impact"] is None


def test_drill_env_names_no_prometheus_without_a_running_stack(drill: Path) -> None:
    # the drill's cluster has no monitoring stack recorded: only the identity line
    respond.write_meta(
        drill.parent,
        {
            "drill_id": DRILL,
            "cluster": "drills-nostack",
            "kubeconfigs": {"responder": "/k/responder.kubeconfig"},
        },
    )
    env = CliRunner().invoke(cli, ["env"])
    assert env.exit_code == 0, env.output
    assert env.output.strip() == "export KUBECONFIG=/k/responder.kubeconfig"
