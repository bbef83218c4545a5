"""Benchmark: an unattended bad-deploy drill, wall time from `drill run` to the report on disk.

The cluster is brought up first (not timed); then the drill runs with the ``zero`` responder (every step at
offset 0, resolving as soon as the service is healthy) so what is measured is drills' own overhead: preflight,
identities, injection, observer start, detection, paging, the bot's real kubectl, health coming back,
revert, scoring and the four reports. Goal: <= 15 s. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_drill.py [--runs 3] [--cli] [--keep-cluster]

``--cli`` times the `drill run` command in a subprocess instead (adds interpreter start-up and imports).
State, reports and the cluster live in a temporary directory; the cluster is torn down at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

from rich.console import Console

CLUSTER = "drills-bench"


def run_library(cluster, index: int) -> tuple[float, dict[str, float], str]:  # type: ignore[no-untyped-def]
    from drills.adapters.store.journal import read_journal
    from drills.runner.run import ClusterTarget, DrillOptions, DrillRun, ReportingOptions, ResponderOptions

    started = time.monotonic()
    result = DrillRun(
        "bad-deploy-rollback",
        DrillOptions(
            responder=ResponderOptions("bot:zero", seed=index),
            cluster=ClusterTarget(name=CLUSTER, handle=cluster),
            reporting=ReportingOptions(dashboard=False, console=Console(file=StringIO()), record_history=False),
            handle_signals=False,
            drill_id=f"bench-{index}-{int(time.time())}",
        ),
    ).execute()
    wall = time.monotonic() - started
    assert result.reports.html.exists()
    events = read_journal(result.journal_path).events
    t0 = next(e.at for e in events if e.type == "fault.injected")
    start = events[0].at
    marks = {
        "setup (preflight, journal, identities, observer, inject)": (t0 - start).total_seconds(),
        "fault -> alert": (result.scorecard.clocks.first_alert - t0).total_seconds()
        if result.scorecard.clocks.first_alert
        else float("nan"),
        "fault -> resolved": (result.scorecard.clocks.resolved - t0).total_seconds()
        if result.scorecard.clocks.resolved
        else float("nan"),
    }
    return wall, marks, result.outcome.value


def run_cli(index: int) -> tuple[float, dict[str, float], str]:
    drill = Path(sys.executable).parent / "drill"
    started = time.monotonic()
    proc = subprocess.run(
        [str(drill), "run", "bad-deploy-rollback", "--cluster", CLUSTER, "--responder", "bot:zero", "--no-dashboard",
         "--pager", "memory", "--seed", str(index)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    outcome = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    return wall, {}, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="time the `drill run` command in a subprocess")
    parser.add_argument("--keep-cluster", action="store_true")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="drills-bench-")
    os.environ.setdefault("DRILLS_STATE", str(Path(tmp) / "state"))
    os.environ.setdefault("DRILLS_REPORTS", str(Path(tmp) / "reports"))
    from drills.adapters.clusters import facade as clusters

    t = time.monotonic()
    cluster = clusters.up(CLUSTER, progress=False)
    print(f"cluster up (not timed): {time.monotonic() - t:.1f} s")
    walls = []
    try:
        for i in range(args.runs):
            if i:
                clusters.reset_fixtures(cluster)
            wall, marks, outcome = run_cli(i) if args.cli else run_library(cluster, i)
            walls.append(wall)
            detail = "  ".join(f"{k}: {v:.2f}s" for k, v in marks.items())
            print(f"run {i + 1}: {wall:.2f} s  ({outcome})  {detail}")
    finally:
        if not args.keep_cluster:
            clusters.down(CLUSTER)
    print(
        f"drill run -> report on disk ({'cli' if args.cli else 'library'}): "
        f"median {statistics.median(walls):.2f} s, min {min(walls):.2f} s, max {max(walls):.2f} s "
        f"over {len(walls)} runs (goal <= 15 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
