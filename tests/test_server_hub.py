"""The served drill's hub and writer without HTTP: the incremental state fold agrees with DrillState.of, and
the writer streams a batch only once it is on disk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from server_support import synthetic_drill

from drills.adapters.store.journal import Journal, read_journal
from drills.model.events import (
    Acknowledged,
    Event,
    HealthChanged,
    HintUsed,
    Note,
    Paused,
    Resumed,
    Source,
)
from drills.runner.respond import DrillState
from drills.server.service import GroupCommitJournal, JournalHub
from drills.timing import SYSTEM_CLOCK


def test_the_hubs_state_is_what_folding_the_whole_journal_says(tmp_path: Path) -> None:
    path = synthetic_drill(tmp_path / "state")
    hub = JournalHub(path)
    now = SYSTEM_CLOCK.now()
    j = Journal(path)
    s = Source.HUMAN

    def check() -> None:
        hub.poll()
        assert hub.state("d") == DrillState.of(read_journal(path).events, "d")

    check()
    # Out of `at` order on purpose: the later-written pause is earlier than the resume, and a tie at the end.
    later: list[Event] = [
        Resumed(at=now + timedelta(seconds=5), source=s),
        Paused(at=now + timedelta(seconds=2), source=s),
        HealthChanged(at=now + timedelta(seconds=9), source=Source.SYSTEM, healthy=False),
        HealthChanged(at=now + timedelta(seconds=3), source=Source.SYSTEM, healthy=True),
        Acknowledged(at=now, source=s, via="cli"),
        HintUsed(at=now, source=s, index=1),
        Paused(at=now + timedelta(seconds=5), source=s),
    ]
    for e in later:
        j.append(e)
        check()
    assert hub.state("d").paused  # the tie goes to the one written later, as a stable sort does


def test_the_writer_streams_a_batch_only_once_it_is_on_disk(tmp_path: Path) -> None:
    path = synthetic_drill(tmp_path / "state")
    hub = JournalHub(path)
    hub.poll()
    before = len(hub)
    on_disk_when_streamed: list[bool] = []

    def published(events: list[Event]) -> None:
        ids = {e.id for e in read_journal(path).events}
        on_disk_when_streamed.append(all(e.id in ids for e in events))
        hub.publish(events)

    journal = GroupCommitJournal(path, on_written=published)
    written = journal.append(Note(at=SYSTEM_CLOCK.now(), source=Source.HUMAN, text="rolled back"))
    assert on_disk_when_streamed == [True]
    assert [i.id for i in hub.since(before)] == [written.id]
    assert hub.poll() == 0  # read back from the file, it is not streamed twice
    assert b'"text":"rolled back"' in hub.since(before)[0].frame
