"""The journal file: round trip, crash damage, duplicates, several writer processes, secrets, schema."""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from drills.adapters.store.journal import TORN_LAST_LINE, Follower, Journal, follow, read_journal
from drills.engine.redact import REDACTED, is_secret_name, redact, secrets_from_env
from drills.errors import JournalError
from drills.model.events import (
    EVENT_TYPES,
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    AlertFired,
    AlertResolved,
    ChaosToolkitEvent,
    CommsPosted,
    Detected,
    DrillEnded,
    DrillStarted,
    EscalationNotified,
    Event,
    FaultInjected,
    FaultReverted,
    HealthChanged,
    HintUsed,
    ImpactSampled,
    Mitigated,
    Note,
    Outcome,
    PageSent,
    Paused,
    PostmortemCompleted,
    Reopened,
    Resolved,
    Resumed,
    Role,
    RoleAssigned,
    RunbookStep,
    SeverityDeclared,
    Source,
    TicketCreated,
    WorldDifferenceInfo,
    WorldDrifted,
    journal_json_schema,
)
from drills.model.severity import Severity
from drills.timing import FakeClock

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def started(at: datetime = T0) -> DrillStarted:
    return DrillStarted(
        at=at,
        source=Source.SYSTEM,
        actor="drills-runner",
        drill_id="20260303-100000-bad-deploy-rollback",
        scenario_id="bad-deploy-rollback",
        scenario_title="Checkout crashes after the v2.1.0 release",
        category="deployment",
        service="app",
        namespace="production",
        true_severity=Severity.P0,
    )


def one_of_each(at: datetime = T0) -> list[Event]:
    """One event of every type the journal knows, as the runner and responders would write them."""

    def t(s: int) -> datetime:
        return at + timedelta(seconds=s)

    h, s, b, c = Source.HUMAN, Source.SYSTEM, Source.BOT, Source.CONTROLLER
    events: list[Event] = [
        started(at),
        FaultInjected(at=t(5), source=s, fault_kind="bad-deploy", target="deployment/production/app"),
        AlertFired(
            at=t(65), source=s, alert_name="KubePodCrashLooping", received_at=t(67), rule_delay_seconds=62
        ),
        Detected(at=t(70), source=h, actor="alice", how="customer report in #support"),
        PageSent(at=t(66), source=s, channel="terminal", to="alice"),
        Acknowledged(at=t(90), source=h, actor="alice"),
        SeverityDeclared(at=t(120), source=h, actor="alice", severity=Severity.P0),
        RoleAssigned(at=t(125), source=h, actor="alice", role=Role.IC, person="alice"),
        CommsPosted(
            at=t(130), source=h, actor="alice", template="initial-alert", text="INCIDENT DETECTED - P0"
        ),
        EscalationNotified(at=t(140), source=b, whom="engineering-leadership"),
        TicketCreated(at=t(150), source=h, ref="INC-42"),
        ActionObserved(
            at=t(160),
            source=h,
            actor="drills:responder:alice",
            kind=ActionKind.ROLLBACK,
            actor_kind=ActorKind.RESPONDER,
            object="deployment/production/app",
            detail="template back to revision 2",
        ),
        HealthChanged(at=t(175), source=c, healthy=True, reason="every probe holds"),
        Mitigated(at=t(180), source=h, summary="rolled back"),
        HintUsed(at=t(185), source=h, index=0, cost=5, text="look at the rollout history"),
        Paused(at=t(190), source=h, reason="coffee"),
        Resumed(at=t(250), source=h),
        Reopened(at=t(260), source=s, reason="unhealthy again"),
        Note(at=t(270), source=h, text="pods came back"),
        RunbookStep(at=t(275), source=b, step="restore backups", status="done"),
        ChaosToolkitEvent(at=t(276), source=s, phase="method", detail={"activity": "terminate_pods"}),
        ImpactSampled(
            at=t(277),
            source=s,
            users_affected_pct=0.4,
            users_affected=4,
            users_active=950,
            status="ok",
            requests_per_second=1000,
            failed_per_second=0,
            p99_ms=180,
        ),
        WorldDrifted(
            at=t(304),
            source=s,
            differences=[
                WorldDifferenceInfo(
                    ref="Deployment/production/db-proxy",
                    change="missing",
                    text="Deployment/production/db-proxy is missing",
                )
            ],
        ),
        Resolved(at=t(300), source=h, root_cause="nil pointer in v2.1.0", healthy_at_resolve=True),
        FaultReverted(at=t(301), source=s, fault_kind="bad-deploy", target="deployment/production/app"),
        AlertResolved(at=t(302), source=s, alert_name="KubePodCrashLooping"),
        PostmortemCompleted(at=t(3600), source=h, link="https://wiki.example/pm/42"),
        DrillEnded(at=t(305), source=s, outcome=Outcome.RESOLVED),
    ]
    assert {e.type for e in events} == set(EVENT_TYPES), "the sample must cover every event type"
    return events


@pytest.fixture(autouse=True)
def _no_ambient_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own tokens must not make these tests depend on the shell they run in.
    for name in list(os.environ):
        if is_secret_name(name):
            monkeypatch.delenv(name)


def test_round_trip_keeps_every_event_and_stamps_recorded_at(tmp_path: Path) -> None:
    clock = FakeClock(T0 + timedelta(hours=1))
    path = tmp_path / "d" / "journal.jsonl"
    events = one_of_each()
    first = events[0]
    assert isinstance(first, DrillStarted)
    journal = Journal.create(path, first, clock)
    for e in events[1:]:
        journal.append(e)
    read = read_journal(path)
    assert read.problems == []
    assert read.duplicates == 0
    assert [e.id for e in read.events] == [e.id for e in events]
    assert all(e.recorded_at == clock.now() for e in read.events)
    assert [e.model_copy(update={"recorded_at": None}) for e in read.events] == events
    assert read.drill_started is not None and read.drill_started.scenario_id == "bad-deploy-rollback"
    assert read.end_offset == path.stat().st_size


def test_lines_are_json_objects_starting_with_version_and_type(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal.create(path, started())
    line = path.read_text(encoding="utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.startswith('{"v":1,"type":"drill.started","id":"')
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_recorded_at_given_by_the_writer_is_kept_and_times_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, FakeClock(T0))
    paris = timezone(timedelta(hours=1))
    written = journal.append(
        Note(at=datetime(2026, 3, 3, 12, 0, tzinfo=paris), source=Source.HUMAN, text="x", recorded_at=T0)
    )
    assert written.recorded_at == T0
    raw = json.loads(path.read_text())
    assert raw["at"].startswith("2026-03-03T11:00:00") and raw["at"].endswith("Z")


def test_create_refuses_an_existing_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal.create(path, started())
    with pytest.raises(JournalError, match="already exists") as e:
        Journal.create(path, started())
    assert e.value.hint
    assert len(read_journal(path).events) == 1


def test_missing_journal_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal at") as e:
        read_journal(tmp_path / "nope.jsonl")
    assert e.value.hint and "drill status" in e.value.hint
    with pytest.raises(JournalError, match="is a directory"):
        read_journal(tmp_path)


def test_append_into_a_missing_directory_is_a_journal_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "gone" / "journal.jsonl")
    with pytest.raises(JournalError, match="cannot open journal") as e:
        journal.append(Note(at=T0, source=Source.HUMAN, text="x"))
    assert e.value.hint


def test_torn_last_line_is_reported_and_skipped_and_the_next_writer_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal.create(path, started())
    journal.append(Note(at=T0, source=Source.HUMAN, text="before the crash"))
    torn = json.dumps(Note(at=T0, source=Source.HUMAN, text="half").model_dump(mode="json"))[:30]
    with path.open("ab") as f:  # a writer killed in the middle of its line
        f.write(torn.encode())

    read = read_journal(path)
    assert [e.type for e in read.events] == ["drill.started", "note"]
    assert [(p.line, p.message) for p in read.problems] == [(3, TORN_LAST_LINE)]
    assert str(read.problems[0]) == f"{path}:3: {TORN_LAST_LINE}"

    after = journal.append(Note(at=T0, source=Source.HUMAN, text="after the crash"))
    read = read_journal(path)
    assert [e.id for e in read.events][-1] == after.id
    assert len(read.events) == 3
    # The torn line is now a bad line in the middle: still reported, by line number, never fatal.
    assert [p.line for p in read.problems] == [3]
    assert "not valid JSON" in read.problems[0].message


def test_bad_lines_in_the_middle_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal.create(path, started())
    good = Note(at=T0, source=Source.HUMAN, text="kept")
    with path.open("ab") as f:
        f.write(b"this is not json\n")  # line 2
        f.write(
            b'{"v":1,"type":"weather.changed","id":"abcdefgh01","at":"2026-03-03T10:00:00Z","source":"system"}\n'
        )
        f.write(
            b'{"v":2,"type":"note","id":"abcdefgh02","at":"2026-03-03T10:00:00Z","source":"human","text":"x"}\n'
        )
        f.write(b'{"v":1,"type":"note","id":"abcdefgh03","source":"human","text":"no time"}\n')  # line 5
        f.write(b"[1, 2]\n")
        f.write(b"\n")  # blank lines are not problems
        f.write(
            b'{"v":1,"type":"note","id":"abcdefgh04","at":"2026-03-03T10:00:00","source":"human","text":"x"}\n'
        )
        f.write("\u00e9t\u00e9 \xff".encode("latin-1") + b"\n")  # line 9: not UTF-8
    journal.append(good)
    read = read_journal(path)
    assert [e.id for e in read.events] == [read.events[0].id, good.id]
    by_line = {p.line: p for p in read.problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 8, 9]
    assert "not valid JSON" in by_line[2].message
    assert by_line[3].field == "type" and "unknown event type 'weather.changed'" in by_line[3].message
    assert by_line[4].field == "v" and "version 2 is not supported" in by_line[4].message
    assert by_line[5].field == "at" and by_line[5].message.startswith("Field required")
    assert by_line[6].message == "not a JSON object: skipped"
    assert by_line[8].field == "at" and "timezone" in by_line[8].message
    assert all(p.message.endswith("skipped") for p in read.problems)


def test_duplicates_are_counted_once_and_conflicting_ids_reported(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "journal.jsonl"
    journal = Journal.create(path, started(), clock)
    ack = Acknowledged(at=T0 + timedelta(seconds=30), source=Source.HUMAN, actor="alice")
    journal.append(ack)
    clock.advance(5)
    journal.append(ack)  # a retried delivery: same event, recorded later
    journal.append(Note(id=ack.id, at=T0, source=Source.HUMAN, text="a different event, same id"))
    read = read_journal(path)
    assert [e.type for e in read.events] == ["drill.started", "acknowledged"]
    assert read.duplicates == 2
    assert [(p.line, p.field) for p in read.problems] == [(4, "id")]
    assert "already used on line 2" in read.problems[0].message


def _append_many(path: str, worker: int, count: int, start_at: float) -> None:
    journal = Journal(Path(path))
    while time.time() < start_at:  # start together so the writers really race
        time.sleep(0.001)
    padding = "x" * 3000  # long lines: an unlocked writer would interleave within them
    for i in range(count):
        journal.append(Note(at=T0, source=Source.HUMAN, actor=f"w{worker}", text=f"{worker}:{i}:{padding}"))


def test_two_processes_appending_concurrently_lose_and_tear_nothing(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal.create(path, started())
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0
    workers = [ctx.Process(target=_append_many, args=(str(path), w, 500, start_at)) for w in (1, 2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    read = read_journal(path)
    assert read.problems == []
    notes = [e for e in read.events if isinstance(e, Note)]
    assert len(notes) == 1000
    for w in (1, 2):
        seq = [int(n.text.split(":")[1]) for n in notes if n.actor == f"w{w}"]
        assert seq == list(range(500)), "each writer's events are all there, in its order"
    assert path.read_bytes().count(b"\n") == 1001
    actors = [n.actor for n in notes]
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches > 1, "the writers did not overlap; the test proves nothing"


def _append_one(path: str) -> None:
    Journal(Path(path)).append(Note(at=T0, source=Source.HUMAN, text="waited for the lock"))


def test_a_writer_waits_while_another_holds_the_lock(tmp_path: Path) -> None:
    """The locking protocol other tools must follow: flock(LOCK_EX) on the journal for each write."""
    path = tmp_path / "journal.jsonl"
    Journal.create(path, started())
    size = path.stat().st_size
    with path.open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        writer = multiprocessing.get_context("spawn").Process(target=_append_one, args=(str(path),))
        writer.start()
        time.sleep(2.0)
        assert path.stat().st_size == size, "the writer did not wait for the lock"
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    writer.join(60)
    assert writer.exitcode == 0
    assert [e.type for e in read_journal(path).events] == ["drill.started", "note"]


def test_secrets_from_the_environment_never_reach_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "wh-t0ken-7f3a9c2e"
    routing = "R0UT1NG-K3Y-5566"
    monkeypatch.setenv("DRILLS_WEBHOOK_TOKEN", token)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", routing)
    monkeypatch.setenv("HOME_DIR_NAME", "production")  # not a secret name: left alone
    path = tmp_path / "journal.jsonl"
    journal = Journal.create(path, started())
    written = journal.append(
        Note(at=T0, source=Source.HUMAN, text=f"curl -H 'Authorization: Bearer {token}'")
    )
    journal.append(
        FaultInjected(
            at=T0,
            source=Source.SYSTEM,
            fault_kind="secret-rotated",
            target="secret/production/app-secrets",
            detail={"old": {"API_KEY": base64.b64encode(routing.encode()).decode()}, token: [routing]},
        )
    )
    journal.append(
        CommsPosted(at=T0, source=Source.BOT, template="status-update", text=f"routing_key={routing}")
    )
    raw = path.read_bytes()
    for secret in (token, routing, base64.b64encode(routing.encode()).decode()):
        assert secret.encode() not in raw
    assert raw.count(REDACTED.encode()) >= 4
    assert b"production" in raw
    assert isinstance(written, Note) and token not in written.text
    assert read_journal(path).problems == []


def test_explicit_secrets_and_secret_shapes_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, env={}, secrets=["hunter2-hunter2"])
    journal.append(Note(at=T0, source=Source.HUMAN, text="pw hunter2-hunter2 and postgres://u:s3cretpw@db/x"))
    text = path.read_text()
    assert "hunter2" not in text and "s3cretpw" not in text
    assert "postgres://u:[redacted]@db/x" in text


def test_redact_helpers() -> None:
    env = {
        "API_TOKEN": "abcdef123",
        "SHORT_SECRET": "abc",
        "EDITOR": "vim-long-name",
        "MY_PASSWORD": " p4ssw0rd ",
    }
    assert secrets_from_env(env) == {"abcdef123", " p4ssw0rd "}
    assert redact("a abcdef123 b p4ssw0rd c", secrets_from_env(env)) == f"a {REDACTED} b {REDACTED} c"
    assert redact("the token rotation happened", []) == "the token rotation happened"
    assert (
        is_secret_name("GITHUBTOKEN")
        and is_secret_name("slack-webhook-url")
        and not is_secret_name("KEYBOARD")
    )


def test_every_event_written_validates_against_the_published_schema(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    events = one_of_each()
    first = events[0]
    assert isinstance(first, DrillStarted)
    journal = Journal.create(path, first)
    journal.append_many(events[1:])
    schema = journal_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(events)
    for line in lines:
        errors = list(validator.iter_errors(json.loads(line)))
        assert errors == [], line
    # and the schema is not vacuous: it rejects an unknown type and a missing time
    assert list(
        validator.iter_errors({"v": 1, "type": "nope", "id": "abcdefgh", "at": "x", "source": "human"})
    )
    assert list(
        validator.iter_errors({"v": 1, "type": "note", "id": "abcdefgh", "source": "human", "text": "x"})
    )


def test_follow_returns_only_complete_lines_and_where_to_continue(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    assert follow(path, 0) == ([], 0)
    journal = Journal.create(path, started())
    journal.append(Note(at=T0, source=Source.HUMAN, text="one"))
    events, offset = follow(path, 0)
    assert [e.type for e in events] == ["drill.started", "note"]
    assert offset == path.stat().st_size
    line = journal.append(Note(at=T0, source=Source.HUMAN, text="two"))
    full = path.read_bytes()
    path.write_bytes(full[:-10])  # the writer is mid-line
    assert follow(path, offset) == ([], offset)
    path.write_bytes(full)
    events, offset2 = follow(path, offset)
    assert [e.id for e in events] == [line.id]
    assert offset2 == len(full)


def test_follower_yields_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    follower = Follower(path)
    assert follower.poll() == []
    journal = Journal.create(path, started())
    assert [e.type for e in follower.poll()] == ["drill.started"]
    ack = Acknowledged(at=T0, source=Source.HUMAN)
    journal.append(ack)
    journal.append(ack)
    assert [e.id for e in follower.poll()] == [ack.id]
    assert follower.poll() == []


@pytest.mark.parametrize("unit", ["x", "a:", "a://b", "token=", "bearer ", "x@", "ab-", "://:"])
def test_redaction_stays_linear_on_long_adversarial_text(unit: str) -> None:
    # Not a speed target: a guard against a quadratic (backtracking) pattern, which would take minutes here.
    text = unit * (200_000 // len(unit))
    began = time.perf_counter()
    redact(text, ["some-secret-value"])
    assert time.perf_counter() - began < 2.0


def test_the_example_in_docs_is_a_valid_journal() -> None:
    from drills.adapters.store.journal import parse_journal
    from drills.adapters.store.paths import repo_root

    doc = (repo_root() / "docs" / "journal.md").read_text(encoding="utf-8")
    (block,) = doc.split("```json\n")[1:]
    content = block.split("```")[0].encode()
    read = parse_journal(content, file="docs/journal.md")
    assert read.problems == [] and read.duplicates == 0
    assert read.events[0].type == "drill.started" and read.events[-1].type == "drill.ended"
    validator = jsonschema.Draft202012Validator(
        journal_json_schema(), format_checker=jsonschema.FormatChecker()
    )
    for line in content.decode().splitlines():
        assert list(validator.iter_errors(json.loads(line))) == []
