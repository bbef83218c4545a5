"""Timer and scorer speed: the live view the dashboard redraws every ~0.25 s, and one scorecard.

The dashboard calls ``live_view`` with every event so far on each redraw, so its cost must stay small as a
drill's journal grows (a long drill with a chatty observer: a few thousand events). It prints figures; it is
not a timed test.

    .venv/bin/python benchmarks/bench_engine.py [--events 1000 5000 20000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import DrillBuilder

from drills.engine.scoring import score
from drills.engine.timeline import live_view
from drills.model.events import ActionKind, Event
from drills.model.policy import SlaTargets


def journal(n: int, seed: int = 1) -> tuple[list[Event], datetime]:
    """``n`` events over two hours: mostly observer traffic (actions, health flaps), a few people."""
    rnd = random.Random(seed)
    b = DrillBuilder(start=datetime(2025, 3, 4, 9, tzinfo=UTC))
    b.at("10s").unhealthy()
    b.at("1m").alert()
    b.at("2m").ack().declare("P0").assign("ic", "alice")
    span = 2 * 3600
    for _ in range(max(0, n - len(b.events))):
        b.at(rnd.uniform(120, span))
        pick = rnd.random()
        if pick < 0.6:
            b.action(ActionKind.POD_CREATED, actor="rs", actor_kind="controller")
        elif pick < 0.75:
            b.healthy() if rnd.random() < 0.5 else b.unhealthy()
        elif pick < 0.85:
            b.note("status")
        elif pick < 0.95:
            b.evidence()
        else:
            b.comms("status_update")
    events = b.events
    rnd.shuffle(events)  # delivery order is not time order
    return events, b.start + timedelta(seconds=span)


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, nargs="+", default=[1000, 5000, 20000])
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    targets = SlaTargets()
    print(f"{'events':>8}  {'live_view median':>17}  {'p90':>8}  {'score median':>13}  {'p90':>8}")
    for n in args.events:
        events, now = journal(n)
        lv = sorted(timed(lambda ev=events, t=now: live_view(ev, t, targets), args.repeat))
        sc = sorted(timed(lambda ev=events: score(ev), max(3, args.repeat // 4)))
        print(
            f"{n:>8}  {statistics.median(lv) * 1000:>14.1f} ms  {lv[int(len(lv) * 0.9) - 1] * 1000:>5.1f} ms"
            f"  {statistics.median(sc) * 1000:>10.1f} ms  {sc[int(len(sc) * 0.9) - 1] * 1000:>5.1f} ms"
        )
    print("budget: the dashboard redraws every 250 ms; live_view should take a small fraction of that.")


if __name__ == "__main__":
    main()
