"""Record a drill cluster's watch streams and audit log while something happens, for replayed tests.

    python -m drills.adapters.clusters.recorder --cluster drills --scenario bad-deploy-rollback \\
        --out tests/recordings/my-case.jsonl --seconds 60 [--identities DIR]

Runs the observer against the cluster for ``--seconds`` (or until Ctrl-C) with its sources teed into a
recording (:mod:`drills.adapters.kube.recording`): every list and raw watch event per kind, the audit records
each read of the log found, and the journal events the observer wrote. Do the thing to record meanwhile
(kubectl as the responder, a fault, a restart). ``--identities`` is a drill's identities directory, so the
responder and the bot are known by name. It lives with the clusters because it finds one by name; the
recording itself is the kube package's.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from drills.adapters.clusters import facade
from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.adapters.kube.identities import Identities
from drills.adapters.kube.recording import recorded
from drills.errors import DrillError
from drills.timing import SYSTEM_CLOCK, Clock


def record(
    cluster: str,
    scenario_ref: str,
    out: Path,
    seconds: float,
    *,
    identities: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Path:
    handle = facade.get(cluster)
    scenario = load_scenario(find_scenario(scenario_ref))
    ids = Identities.load(identities) if identities is not None else None
    kube = handle.kube()
    try:
        with recorded(kube, scenario, out, audit_log=handle.audit_log, identities=ids) as observer:
            print(
                f"recording {cluster} ({', '.join(observer.kinds)}) for {seconds:g}s into {out}; Ctrl-C ends early",
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                clock.sleep(seconds)
    finally:
        kube.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drills.adapters.clusters.recorder",
        description="Record a drill cluster's watch streams and audit log for replayed observer tests.",
    )
    parser.add_argument("--cluster", default=facade.DEFAULT_NAME, help="the drill cluster's name")
    parser.add_argument(
        "--scenario", required=True, help="scenario id or file: its namespaces and steady state"
    )
    parser.add_argument("--out", required=True, type=Path, help="the recording (.jsonl or .jsonl.gz)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to record (default 60)")
    parser.add_argument("--identities", type=Path, help="a drill's identities directory")
    args = parser.parse_args(argv)
    try:
        path = record(args.cluster, args.scenario, args.out, args.seconds, identities=args.identities)
    except DrillError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
