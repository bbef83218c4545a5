"""Team history speed: 10,000 drills indexed into a real PostgreSQL, and the monthly report read from it.

Goal (issue 15): the monthly report over 10,000 drills from PostgreSQL in <= 2 s on the 2-core reference
machine. It prints figures; it is not a timed test.

    .venv/bin/python benchmarks/bench_history.py [--journals 10000] [--sample 500]

Setup (not part of the figures): the journals of benchmarks/bench_reports.py (seeded, all in March 2025),
scored and reported as `drill run` leaves them; a PostgreSQL server of Debian's package started in a
temporary directory on 127.0.0.1 (tests/postgres.py), stopped at the end. Figures:

- reindex throughput: `drill history reindex` over every drill (reported: reads scorecard.json and the
  postmortem), and over a sample of journals without reports (each scored and its postmortem rendered);
- the monthly report from the index: the index read (two queries), the roll-up, markdown and HTML, split;
- the same as `drill report monthly` does it, with the refresh that looks for new journals and edited
  postmortems first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_reports import _write_one  # noqa: E402
from postgres import PostgresServer, pg_bin_dir  # noqa: E402

from drills.adapters.store.history import History  # noqa: E402
from drills.reporting.index import refresh, reindex  # noqa: E402
from drills.reporting.monthly import (  # noqa: E402
    monthly_report,
    render_monthly_html,
    render_monthly_markdown,
    report_window,
)

MONTH = "2025-03"


def _best(fn: Callable[[], object], runs: int = 3) -> tuple[float, float, float]:
    """Best and worst wall time of ``runs``, and the CPU time of this process in the best run.

    The CPU figure leaves out waiting for a shared, loaded machine's cores (and PostgreSQL's own work).
    """
    timings = []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        timings.append((time.perf_counter() - t, time.process_time() - c))
    best = min(timings)
    return best[0], max(timings)[0], best[1]


def bench(count: int, sample: int, root: Path, server: PostgresServer) -> None:
    journals, reports = root / "drills", root / "reports"
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_write_one, [(n, str(journals), str(reports)) for n in range(count)], chunksize=64))
    print(f"setup: {count} journals generated, scored and reported in {time.perf_counter() - t:.1f} s")

    url = server.create_database("bench")
    with History(url=url) as history:
        t = time.perf_counter()
        result = reindex(history, journals, reports)
        took = time.perf_counter() - t
        print(
            f"reindex into PostgreSQL, reported drills: {result.drills} in {took:.1f} s "
            f"({result.drills / took:.0f} drills/s)"
        )

        since, until = report_window(MONTH)
        summaries = history.summaries(since=since, until=until)
        report = monthly_report(summaries, MONTH)
        total = report.drills.total + report.incidents.total
        read = _best(lambda: history.summaries(since=since, until=until))
        roll = _best(lambda: monthly_report(summaries, MONTH))
        md = _best(lambda: render_monthly_markdown(report))
        html = _best(lambda: render_monthly_html(report))

        def whole() -> None:
            r = monthly_report(history.summaries(since=since, until=until), MONTH)
            render_monthly_markdown(r)
            render_monthly_html(r)

        best, worst, cpu = _best(whole)
        print(
            f"monthly report from PostgreSQL over {len(summaries)} drills ({total} in March 2025): "
            f"best {best:.2f} s (CPU {cpu:.2f} s), worst {worst:.2f} s of 3 runs; goal <= 2 s"
        )
        print(
            f"  split (best of 3): index read {read[0]:.2f} s, roll-up {roll[0]:.2f} s, "
            f"markdown {md[0]:.2f} s, HTML {html[0]:.2f} s"
        )

        def cli_path() -> None:
            refresh(history, journals, reports)
            whole()

        best, worst, cpu = _best(cli_path)
        print(
            f"as `drill report monthly` does it (refresh: new journals, edited postmortems; then the report): "
            f"best {best:.2f} s (CPU {cpu:.2f} s), worst {worst:.2f} s"
        )
        print(f"load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    url = server.create_database("bench_journals")
    some = root / "sample"
    some.mkdir()
    for d in sorted(journals.iterdir())[:sample]:
        (some / d.name).symlink_to(d)
    with History(url=url) as history:
        t = time.perf_counter()
        result = reindex(history, some, None)
        took = time.perf_counter() - t
    print(
        f"reindex into PostgreSQL, journals without reports (scored, postmortem rendered): "
        f"{result.drills} in {took:.1f} s ({result.drills / took:.0f} drills/s; "
        f"~{count / (result.drills / took):.0f} s for {count})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journals", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=500, help="Journals reindexed without their reports.")
    args = parser.parse_args()
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql, or set DRILLS_PG_BIN)")
    server = PostgresServer(bin_dir).start()
    root = Path(tempfile.mkdtemp(prefix="drills-bench-history-"))
    try:
        bench(args.journals, args.sample, root, server)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
