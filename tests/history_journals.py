"""Many synthetic journals for the team history: the same ones on every run (seeded), built with DrillBuilder.

Each drill varies what the monthly report looks at: the month (13 months ending March 2025), severity,
category, team, drill or real incident, how fast the page was acknowledged (some miss the SLA, which
leaves action items), whether comms and escalation happened, and a few never end (a crashed runner).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import DrillBuilder

from drills.adapters.store.journal import JOURNAL_FILE, read_journal
from drills.model.events import Event
from drills.model.severity import Severity

CATEGORIES = ("deployment", "capacity", "node", "dependency", "config")
TEAMS = ("payments", "search", "platform", None)
PEOPLE = ("alice", "bob", "carol", "dan")
FIRST = datetime(2024, 3, 1, tzinfo=UTC)
MONTH = "2025-03"


def synthetic_events(n: int) -> list[Event]:
    rnd = random.Random(n)
    start = FIRST + timedelta(seconds=rnd.randrange(0, 395 * 86400))
    severity = rnd.choice(list(Severity))
    person = rnd.choice(PEOPLE)
    team = rnd.choice(TEAMS)
    b = DrillBuilder(
        start=start,
        severity=severity,
        drill_id=f"{start:%Y%m%d-%H%M%S}-{n:05d}",
        scenario_id=f"{rnd.choice(CATEGORIES)}-drill",
        category=rnd.choice(CATEGORIES),
        trainee=person,
        team=team,
        is_drill=rnd.random() < 0.85,
    )
    b.at(f"{rnd.randrange(5, 40)}s").unhealthy()
    alert = rnd.randrange(30, 300)
    b.at(f"{alert}s").alert(received_after="2s").page(person)
    ack = alert + rnd.choice((30, 90, 240, 600, 2400))
    b.at(f"{ack}s").ack(person).declare(rnd.choice(list(Severity)), by=person).assign("ic", person)
    if rnd.random() < 0.7:
        b.after("40s").comms("initial_alert", by=person, missing=("war_room",) if rnd.random() < 0.3 else ())
    if rnd.random() < 0.6:
        b.after("20s").escalate(by=person)
    b.after(f"{rnd.randrange(30, 300)}s").evidence(actor=person)
    b.after(f"{rnd.randrange(30, 600)}s").note("rolled back", by=person)
    if rnd.random() < 0.04:
        return b.events  # the runner died: the journal never ends
    b.after(f"{rnd.randrange(60, 900)}s").healthy()
    b.after(f"{rnd.randrange(60, 1800)}s").resolve(by=person)
    b.after("30s").end()
    return b.events


def write_journals(root: Path, count: int) -> Path:
    """``count`` journals under ``root/<drill-id>/journal.jsonl`` (the state directory's layout)."""
    for n in range(count):
        events = synthetic_events(n)
        path = root / events[0].drill_id / JOURNAL_FILE  # type: ignore[union-attr]
        path.parent.mkdir(parents=True)
        # Written as the journal writes its lines, without its fsync per write: a thousand fsyncs on a busy
        # machine take longer than everything else these tests do (test_journal.py covers the writer).
        lines = []
        for e in events:
            data = e.model_copy(update={"recorded_at": e.at}).model_dump(mode="json", exclude_none=True)
            ordered = {"v": data.pop("v"), "type": data.pop("type"), **data}
            lines.append(json.dumps(ordered, ensure_ascii=False, separators=(",", ":")) + "\n")
        path.write_text("".join(lines), encoding="utf-8")
    return root


def check_roundtrip(path: Path) -> None:
    """The hand-written lines read back as the journal reader reads them (no problems, same events)."""
    read = read_journal(path)
    assert not read.problems, read.problems
