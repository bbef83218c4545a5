"""Report speed: rendering one postmortem (and HTML report), and the monthly report over 10,000 journals.

Goal (issue 3): the monthly report over 10,000 journals in <= 2 s on the 2-core reference machine. It prints
figures; it is not a timed test.

    .venv/bin/python benchmarks/bench_reports.py [--journals 10000] [--keep DIR]

Setup (not part of the figure): generate the journals with a seeded random response, score each and write the
two files the monthly report reads (scorecard.json, postmortem.md), as `drill run` leaves them. The figure is
`drill report monthly`'s work: scan the reports directory, read every scorecard and postmortem, roll up.
The slow path (journals never reported, scored on the fly) is measured on a sample and extrapolated.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drills.adapters.store.journal import JOURNAL_FILE
from drills.engine.scoring import score
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    AlertFired,
    CommsPosted,
    DrillEnded,
    DrillStarted,
    EscalationNotified,
    Event,
    FaultInjected,
    HealthChanged,
    Outcome,
    PageSent,
    Resolved,
    Role,
    RoleAssigned,
    SeverityDeclared,
    Source,
)
from drills.model.severity import Severity
from drills.reporting.catalog import load_journal, scan
from drills.reporting.monthly import monthly_report, render_monthly_markdown
from drills.reporting.report import (
    POSTMORTEM,
    SCORECARD,
    render_html,
    render_postmortem,
    scorecard_json,
)

CATEGORIES = ("deployment", "capacity", "node", "dependency", "config", "dr")
FAULTS = {
    "deployment": "bad-deploy",
    "capacity": "load-spike",
    "node": "node-not-ready",
    "dependency": "dependency-outage",
    "config": "broken-config",
    "dr": "namespace-lost",
}
MONTH_START = datetime(2025, 3, 1, tzinfo=UTC)


def generate(n: int) -> list[Event]:
    """One drill's journal: a plausible response with seeded random timings (n is the seed)."""
    rnd = random.Random(n)
    category = rnd.choice(CATEGORIES)
    severity = rnd.choice(list(Severity))
    start = MONTH_START + timedelta(seconds=rnd.randrange(0, 30 * 86400))
    drill_id = f"{start:%Y%m%d-%H%M%S}-{n:05d}"
    person = rnd.choice(("alice", "bob", "carol", "dan"))
    t = start
    seq = 0

    def at(seconds: float) -> datetime:
        nonlocal t
        t = t + timedelta(seconds=seconds)
        return t

    def eid() -> str:
        nonlocal seq
        seq += 1
        return f"{drill_id}-{seq:03d}"

    events: list[Event] = [
        DrillStarted(
            id=eid(),
            at=start,
            source=Source.SYSTEM,
            actor="drills",
            drill_id=drill_id,
            scenario_id=f"{FAULTS[category]}-drill",
            scenario_title=f"{category} drill",
            category=category,
            service="app",
            namespace="production",
            true_severity=severity,
            is_drill=rnd.random() < 0.8,
            trainee=person,
        ),
        FaultInjected(
            id=eid(), at=at(3), source=Source.SYSTEM, fault_kind=FAULTS[category], target="production/app"
        ),
        HealthChanged(
            id=eid(), at=at(rnd.uniform(5, 30)), source=Source.SYSTEM, healthy=False, reason="probe"
        ),
        AlertFired(id=eid(), at=at(rnd.uniform(20, 400)), source=Source.SYSTEM, alert_name="AppDown"),
        PageSent(id=eid(), at=at(1), source=Source.SYSTEM, to=person),
        Acknowledged(id=eid(), at=at(rnd.uniform(20, 900)), source=Source.HUMAN, actor=person),
        RoleAssigned(
            id=eid(),
            at=at(rnd.uniform(5, 120)),
            source=Source.HUMAN,
            actor=person,
            role=Role.IC,
            person=person,
        ),
        SeverityDeclared(
            id=eid(),
            at=at(rnd.uniform(5, 300)),
            source=Source.HUMAN,
            actor=person,
            severity=rnd.choice(list(Severity)),
        ),
        CommsPosted(
            id=eid(), at=at(rnd.uniform(5, 200)), source=Source.HUMAN, actor=person, template="initial_alert"
        ),
        ActionObserved(
            id=eid(),
            at=at(rnd.uniform(10, 120)),
            source=Source.SYSTEM,
            actor=person,
            kind=ActionKind.EVIDENCE_READ,
            actor_kind=ActorKind.RESPONDER,
            object="pod/production/app-1",
        ),
        ActionObserved(
            id=eid(),
            at=at(rnd.uniform(10, 600)),
            source=Source.SYSTEM,
            actor=person,
            kind=ActionKind.ROLLBACK,
            actor_kind=ActorKind.RESPONDER,
            object="deployment/production/app",
            destructive=True,
        ),
        HealthChanged(
            id=eid(), at=at(rnd.uniform(20, 120)), source=Source.SYSTEM, healthy=True, reason="probe"
        ),
        CommsPosted(
            id=eid(), at=at(rnd.uniform(60, 900)), source=Source.HUMAN, actor=person, template="status_update"
        ),
        EscalationNotified(
            id=eid(), at=at(rnd.uniform(5, 60)), source=Source.HUMAN, actor=person, whom="sme"
        ),
    ]
    if rnd.random() < 0.9:
        events.append(Resolved(id=eid(), at=at(rnd.uniform(60, 1200)), source=Source.HUMAN, actor=person))
        events.append(DrillEnded(id=eid(), at=at(2), source=Source.SYSTEM, outcome=Outcome.RESOLVED))
    else:
        events.append(DrillEnded(id=eid(), at=at(1800), source=Source.SYSTEM, outcome=Outcome.TIMED_OUT))
    return events


def _write_one(args: tuple[int, str, str]) -> None:
    n, journals, reports = args
    events = generate(n)
    started = events[0]
    assert isinstance(started, DrillStarted)
    jdir = Path(journals) / started.drill_id
    jdir.mkdir(parents=True, exist_ok=True)
    (jdir / JOURNAL_FILE).write_text("".join(e.model_dump_json() + "\n" for e in events), encoding="utf-8")
    sc = score(events)
    rdir = Path(reports) / started.drill_id
    rdir.mkdir(parents=True, exist_ok=True)
    (rdir / SCORECARD).write_text(scorecard_json(sc), encoding="utf-8")
    (rdir / POSTMORTEM).write_text(render_postmortem(sc, events), encoding="utf-8")


def bench_render() -> None:
    events = generate(7)
    sc = score(events)
    for name, fn in (("postmortem.md", render_postmortem), ("report.html", render_html)):
        fn(sc, events)  # templates compiled once, as in a long-running process
        runs = []
        for _ in range(30):
            t = time.perf_counter()
            fn(sc, events)
            runs.append(time.perf_counter() - t)
        print(
            f"render {name:<14} median {statistics.median(runs) * 1000:6.2f} ms "
            f"  (30 runs, {len(events)} events)"
        )
    t = time.perf_counter()
    score(events)
    print(f"score one journal      {(time.perf_counter() - t) * 1000:6.2f} ms   (for comparison)")


def bench_monthly(count: int, root: Path) -> None:
    journals, reports = root / "drills", root / "reports"
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_write_one, [(n, str(journals), str(reports)) for n in range(count)], chunksize=64))
    print(f"setup: {count} journals generated, scored and reported in {time.perf_counter() - t:.1f} s")

    timings = []
    for _ in range(3):
        t = time.perf_counter()
        catalog = scan(reports, journals)
        report = monthly_report(catalog.summaries, "2025-03")
        render_monthly_markdown(report)
        timings.append(time.perf_counter() - t)
    total = report.drills.total + report.incidents.total
    print(
        f"monthly report over {len(catalog.summaries)} reported drills ({total} in March 2025): "
        f"best {min(timings):.2f} s, worst {max(timings):.2f} s of 3 runs (files in the page cache); "
        "goal <= 2 s"
    )

    sample = sorted(journals.iterdir())[:300]
    t = time.perf_counter()
    for d in sample:
        load_journal(d / JOURNAL_FILE)
    per = (time.perf_counter() - t) / len(sample)
    print(
        f"slow path (journal read + scored, no reports): {per * 1000:.2f} ms per journal, "
        f"~{per * count:.1f} s for {count} on one core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journals", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="Generate into this directory and keep it.")
    args = parser.parse_args()
    bench_render()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        bench_monthly(args.journals, args.keep)
    else:
        root = Path(tempfile.mkdtemp(prefix="drills-bench-"))
        try:
            bench_monthly(args.journals, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
