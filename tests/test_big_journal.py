"""A big journal (issue #13, "Big journals"): streamed, its observer traffic folded, its scorecard bounded.

What is measured (time, memory) is benchmarks/bench_journal.py; here, that streaming changes no result: the
stream reads what ``read_journal`` reads, a split journal scores like the whole one, the scorecard of a
journal with many observer events stays small with the right counts, and the report folds what repeats.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from builders import DrillBuilder, passing_drill
from report_journal import report_events

from drills.adapters.store.journal import Journal, read_journal, stream_journal
from drills.engine.scoring import score
from drills.engine.traffic import MAX_ACTIONS, split_traffic
from drills.errors import JournalError
from drills.model.events import ActionKind, ActorKind, Event
from drills.reporting import view as view_module
from drills.reporting.chart import timeline_svg
from drills.reporting.report import render_postmortem
from drills.reporting.view import FOLD_REPEATS_AFTER, MAX_TIMELINE_ENTRIES, build_view
from drills.timing import FakeClock


def _write(path: Path, events: list[Event]) -> Path:
    Journal(path, FakeClock(events[0].at), env={}).append_many(events)
    return path


def _chatty(pods: int = 3000, probes: int = 400, reads: int = 300) -> DrillBuilder:
    """A passing P0 drill, then a controller creating ``pods`` pods, a probe flapping and repeated reads."""
    b = passing_drill()
    end = b.events.pop()  # drill.ended goes last again
    for i in range(pods):
        b.at(timedelta(minutes=4, seconds=i * 0.1)).action(
            ActionKind.POD_CREATED,
            actor="replicaset-controller",
            actor_kind=ActorKind.CONTROLLER,
            object=f"pod/drills-shop/shop-{i:05x}",
        )
    for i in range(probes):
        b.at(timedelta(minutes=4, seconds=i * 0.25))
        b.healthy("shop available 3/3") if i % 2 else b.unhealthy("shop available 2/3")
    b.at(timedelta(minutes=6)).healthy()
    for _ in range(reads):
        b.at("7m").evidence()
    b.event(end)
    return b


def test_the_stream_reads_what_read_journal_reads(tmp_path: Path) -> None:
    events = report_events()
    path = _write(tmp_path / "journal.jsonl", events)
    # A retried delivery (same event, recorded later), a different event reusing an id, a bad line, an
    # event years before the drill, a torn last line.
    again = events[3].model_copy(update={"recorded_at": events[3].at + timedelta(seconds=9)})
    clash = events[5].model_copy(update={"actor": "mallory"})
    old = events[6].model_copy(update={"id": "old-event-1", "at": events[0].at - timedelta(days=400)})
    with path.open("a", encoding="utf-8") as f:
        for e in (again, clash, old):
            f.write(e.model_dump_json(exclude_none=True) + "\n")
        f.write('{"v": 1, "type": "note"}\n')
        f.write('{"v": 1, "type": "no')
    read = read_journal(path)
    stream = stream_journal(path)
    streamed = list(stream)
    assert [e.id for e in streamed] == [e.id for e in read.events]
    assert streamed == read.events
    assert stream.problems == read.problems
    n = len(events)  # the redelivery is line n + 1; then the clash, the old event, the bad and torn lines
    assert [p.line for p in stream.problems] == [n + 2, n + 3, n + 4, n + 5]
    assert "already used on line 6" in stream.problems[0].message
    assert (stream.duplicates, stream.end_offset) == (read.duplicates, read.end_offset)
    assert read.duplicates == 2
    assert stream.drill_started == read.drill_started


def test_the_stream_tells_a_redelivery_in_another_key_order_from_a_different_event(tmp_path: Path) -> None:
    events = passing_drill().events
    path = _write(tmp_path / "journal.jsonl", events)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[4])
    reordered = dict(reversed(list(first.items())))  # same event, keys the other way round
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(reordered) + "\n")
    stream = stream_journal(path)
    assert len(list(stream)) == len(events)
    assert (stream.duplicates, stream.problems) == (1, [])


def test_a_stream_is_read_once_and_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    stream = stream_journal(_write(tmp_path / "journal.jsonl", passing_drill().events))
    list(stream)
    with pytest.raises(RuntimeError, match="read once"):
        list(stream)
    with pytest.raises(JournalError, match="no journal at"):
        list(stream_journal(tmp_path / "missing.jsonl"))


def test_a_split_journal_scores_like_the_whole_journal() -> None:
    events = _chatty().events
    kept, traffic = split_traffic(events)
    assert traffic.count == 3000 and len(kept) == len(events) - 3000
    assert score(kept, None, traffic) == score(events)
    # Without drill.ended the horizon is the last event, here a controller's: the traffic counts.
    live = events[:-1]
    live_kept, live_traffic = split_traffic(live)
    assert score(live_kept, None, live_traffic) == score(live)


def test_many_observer_events_give_a_bounded_scorecard_with_the_right_counts() -> None:
    b = _chatty()
    # Distinct responder actions beyond the cap: each is kept before any traffic, the rest counted.
    for i in range(MAX_ACTIONS + 50):
        b.at(timedelta(minutes=9, seconds=i)).evidence(object=f"pod/drills-shop/shop-{i:05x}")
    b.event(b.events.pop(-MAX_ACTIONS - 51))  # drill.ended back to the end
    sc = score(b.events)
    assert len(sc.actions) == MAX_ACTIONS
    assert all(a["actor_kind"] == "responder" for a in sc.actions)
    listed = sum(a.get("count", 1) for a in sc.actions)
    observed = 1 + 1 + 300 + 3000 + MAX_ACTIONS + 50  # evidence, rollback, repeated reads, pods, distinct
    assert listed + sc.actions_omitted == observed
    # Left out: the pods, and the latest distinct reads past the cap (the rollback and the first reads,
    # earlier, are listed).
    assert sc.actions_omitted == 3000 + (MAX_ACTIONS + 50) - (MAX_ACTIONS - 2)
    assert len(sc.model_dump_json()) < 100_000
    assert "actions_omitted" in json.loads(sc.model_dump_json())


def test_observer_traffic_is_one_counted_entry_and_repeats_count_on_their_first() -> None:
    sc = score(_chatty().events)
    by_kind = {(a["kind"], a["actor"], a["object"]): a for a in sc.actions}
    pods = by_kind[("pod_created", "replicaset-controller", "pod/drills-shop/*")]
    assert pods["count"] == 3000
    assert pods["last_at"] > pods["at"]
    reads = by_kind[("evidence_read", "alice", "pod/drills-shop/shop-1")]
    assert reads["count"] == 301  # passing_drill's own read and the 300 repeats
    assert len(sc.actions) == 3  # the rollback, the reads, the pods
    # Nothing left out: the key is not written at all, so a small drill's scorecard reads as before.
    assert sc.actions_omitted == 0
    assert "actions_omitted" not in json.loads(sc.model_dump_json())


def test_the_report_folds_repeats_and_draws_a_flapping_probe_once() -> None:
    events = _chatty().events
    kept, traffic = split_traffic(events)
    sc = score(kept, None, traffic)
    view = build_view(sc, kept, traffic=traffic, secrets=())
    whats = [e.what for e in view.timeline]
    pods = [w for w in whats if w.startswith("Pod created")]
    assert pods == ["Pod created of pod/drills-shop/* (Kubernetes controller) ×3,000 until +9m00s"]
    flaps = [w for w in whats if w.startswith("Service unhealthy: shop available 2/3")]
    assert flaps == ["Service unhealthy: shop available 2/3 (and 199 more times until +5m40s)"]
    assert len(view.timeline) < 40
    postmortem = render_postmortem(sc, kept, secrets=(), traffic=traffic)
    assert postmortem.count("×3,000 until +9m00s") == 1
    svg = timeline_svg(view)
    assert "flapping from" in svg and svg.count('class="health"') < 20


def test_repeats_up_to_the_fold_are_each_shown() -> None:
    b = passing_drill()
    end = b.events.pop()
    for _ in range(FOLD_REPEATS_AFTER - 1):
        b.at("7m").note("still watching")
    b.event(end)
    view = build_view(score(b.events), b.events, secrets=())
    assert sum(e.what == "Note: still watching" for e in view.timeline) == FOLD_REPEATS_AFTER - 1


def test_the_timeline_is_bounded_with_an_honest_count(monkeypatch: pytest.MonkeyPatch) -> None:
    b = passing_drill()
    end = b.events.pop()
    distinct = MAX_TIMELINE_ENTRIES + 500
    for i in range(distinct):
        b.at(timedelta(minutes=7, seconds=i * 0.01)).note(f"looked at shop-{i}")
    b.event(end)
    view = build_view(score(b.events), b.events, secrets=())
    assert len(view.timeline) == MAX_TIMELINE_ENTRIES
    last = view.timeline[-1].what
    assert last.endswith("more events are not shown here; the journal has every one")
    left_out = int(last.split(" ", 1)[0].replace(",", ""))
    monkeypatch.setattr(view_module, "MAX_TIMELINE_ENTRIES", 10**6)
    unbounded = build_view(score(b.events), b.events, secrets=()).timeline
    assert left_out == len(unbounded) - (MAX_TIMELINE_ENTRIES - 1)
    # Every key entry is kept, even those after the cut (the resolution at 8m).
    assert any(e.marker == "resolved" for e in view.timeline)


def test_reports_scrub_every_text_of_an_event_and_keep_clean_events_as_they_are() -> None:
    from drills.model.events import AlertFired, Source, WorldDifferenceInfo, WorldDrifted
    from drills.reporting.redaction import report_redactor, scrub_events

    secret = "s3cr3t-value-4242"
    b = passing_drill()
    at = b.time("2m")
    events = [
        *b.events,
        AlertFired(at=at, source=Source.SYSTEM, alert_name="ShopDown", labels={"team": secret, secret: "x"}),
        WorldDrifted(
            at=at,
            source=Source.SYSTEM,
            differences=[WorldDifferenceInfo(ref="configmap/p/c", change="changed", text=f"now {secret}")],
        ),
    ]
    scrubbed = scrub_events(events, report_redactor([secret]))
    assert all(a is b for a, b in zip(scrubbed[:-2], events[:-2], strict=True))  # nothing to scrub: same
    assert secret not in scrubbed[-2].model_dump_json() and "[redacted]" in scrubbed[-2].model_dump_json()
    assert secret not in scrubbed[-1].model_dump_json()
    assert [e.id for e in scrubbed] == [e.id for e in events]


def test_a_secret_in_the_observers_traffic_is_scrubbed_from_the_report() -> None:
    secret = "s3cr3t-value-4242"
    b = _chatty(pods=30, probes=0, reads=0)
    end = b.events.pop()
    b.at("4m").action(
        ActionKind.PATCHED,
        actor="replicaset-controller",
        actor_kind=ActorKind.CONTROLLER,
        object="configmap/drills-shop/cfg",
        detail=f"password={secret}",
    )
    b.event(end)
    kept, traffic = split_traffic(b.events)
    text = render_postmortem(score(kept, None, traffic), kept, secrets=[secret], traffic=traffic)
    assert secret not in text and "password=[redacted]" in text


def test_a_change_that_raised_impact_is_never_counted_with_its_repeats() -> None:
    from drills.engine.traffic import action_entries
    from drills.model.events import ActionObserved

    b = passing_drill()
    for _ in range(3):
        b.at("5m30s").action(ActionKind.SCALE, object="deployment/drills-shop/shop")
    same = [e for e in b.events if isinstance(e, ActionObserved) and e.kind == ActionKind.SCALE]
    entries, omitted = action_entries(same, raised={same[1].id: "users affected 0.0 % -> 40.0 %"})
    assert omitted == 0
    assert [(e.get("count", 1), e.get("raised_impact")) for e in entries] == [
        (2, None),
        (1, "users affected 0.0 % -> 40.0 %"),
    ]
