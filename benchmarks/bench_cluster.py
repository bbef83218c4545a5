"""How long the embedded drill cluster takes: `drill cluster up` to fixtures Ready, and `down`.

Binaries must already be built (`drill cluster build`); the cold build time is read from the build stamp
(``~/.cache/drills/bin/<version>/manifest.json``) and printed for reference. Goal: up <= 20 s here.

    .venv/bin/python benchmarks/bench_cluster.py [--runs 3]

The cluster is a throwaway (``drills-bench``) in a temporary clusters directory; nothing else is touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

GOAL_UP_SECONDS = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="drills-bench-") as tmp:
        os.environ["DRILLS_CLUSTERS"] = tmp
        from drills.adapters.clusters import binaries
        from drills.adapters.clusters import facade as clusters

        binaries.locate()  # fail fast, and never time a build here
        ups: list[float] = []
        downs: list[float] = []
        for run in range(1, args.runs + 1):
            try:
                start = time.monotonic()
                handle = clusters.up("drills-bench", progress=False)
                ups.append(time.monotonic() - start)
                st = clusters.status("drills-bench")
                if not (st.healthy and st.fixtures_ready):
                    print(f"run {run}: not healthy after up: {st.to_dict()}", file=sys.stderr)
                    return 1
            finally:
                start = time.monotonic()
                clusters.down("drills-bench")
                downs.append(time.monotonic() - start)
            print(
                f"run {run}: up {ups[-1]:5.1f} s (fixtures Ready, {handle.server})   down {downs[-1]:4.1f} s"
            )

    print()
    print(
        f"up to fixtures Ready: median {statistics.median(ups):.1f} s, min {min(ups):.1f} s, max {max(ups):.1f} s"
        f"  (goal <= {GOAL_UP_SECONDS:.0f} s: {'met' if statistics.median(ups) <= GOAL_UP_SECONDS else 'MISSED'})"
    )
    print(f"down:                 median {statistics.median(downs):.1f} s, max {max(downs):.1f} s")

    seconds = binaries.build_seconds()
    known = {k: v for k, v in seconds.items() if v is not None}
    print()
    print(f"cold build of the binaries (stamp {binaries.manifest_path()}):")
    for name, value in seconds.items():
        print(f"  {name:<24} {'unknown (adopted)' if value is None else f'{value:6.0f} s'}")
    if known:
        total = sum(known.values())
        print(f"  {'total':<24} {total:6.0f} s ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
