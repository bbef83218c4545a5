"""How much of what the observer's cluster tests exercise do the replayed-watch unit tests exercise?

Branch coverage over the observer (drills/adapters/kube/observer*.py) and the change classification
(drills/engine/changes.py), measured twice: once for tests/test_observer_cluster.py (the real embedded
cluster: minutes) and once for tests/test_observer_replay.py (recordings: seconds). Prints both, and the
ratio the issue asks for: branches covered by replay and cluster / branches covered by cluster. Also split
by part of the code: the watching I/O (threads, reconnects, the live sources), which a replay skips by
design, and the rest (classification, the audit join, the cache, health pacing).

    .venv/bin/python benchmarks/observer_coverage.py                  # replay only, reuse cluster data
    .venv/bin/python benchmarks/observer_coverage.py --run-cluster    # also run the cluster tier (minutes)

The cluster run uses DRILLS_TEST_CLUSTER (default drills-obs-cov); its data is kept in
``.coverage.observer-cluster`` so later runs can compare without the cluster.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("drills/adapters/kube/observer.py", "drills/engine/changes.py")
INCLUDE = "*/drills/adapters/kube/observer*,*/drills/engine/changes.py"
#: The watching I/O: what only a live cluster runs (threads, the cluster source, reconnect loops).
IO = {
    "KubeWatchSource",
    "Observer.start",
    "Observer.stop",
    "Observer._spawn",
    "Observer.__enter__",
    "Observer.__exit__",
    "Observer.events",
    "Observer._watch",
    "Observer._relist",
    "Observer._tail_audit",
    "Observer._process",
    "Observer._list",
}

Branches = set[tuple[str, int, int]]


def run(tests: str, data: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            "--branch",
            "--source=drills",
            f"--data-file={data}",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            tests,
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    return time.monotonic() - started


def branches(data: Path) -> tuple[Branches, Branches]:
    """(executed, all) branches of the measured files, as (file, from line, to line)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "coverage",
                "json",
                f"--data-file={data}",
                f"--include={INCLUDE}",
                "-o",
                out.name,
                "-q",
            ],
            cwd=ROOT,
            check=True,
        )
        report = json.loads(Path(out.name).read_text())
    executed: Branches = set()
    every: Branches = set()
    for name, f in report["files"].items():
        rel = str(Path(name).resolve().relative_to(ROOT)) if Path(name).is_absolute() else name
        for a, b in f.get("executed_branches", []):
            executed.add((rel, a, b))
            every.add((rel, a, b))
        for a, b in f.get("missing_branches", []):
            every.add((rel, a, b))
    return executed, every


def io_lines() -> set[tuple[str, int]]:
    """The lines of the I/O functions (by qualified name) in the measured files."""
    out: set[tuple[str, int]] = set()
    for rel in FILES:
        tree = ast.parse((ROOT / rel).read_text())

        def walk(node: ast.AST, prefix: str, rel: str = rel) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    name = f"{prefix}{child.name}"
                    if name in IO:
                        end = child.end_lineno or child.lineno
                        out.update((rel, n) for n in range(child.lineno, end + 1))
                    else:
                        walk(child, name + ".")

        walk(tree, "")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-cluster", action="store_true", help="run tests/test_observer_cluster.py too")
    parser.add_argument("--cluster-data", type=Path, default=ROOT / ".coverage.observer-cluster")
    parser.add_argument("--replay-data", type=Path, default=ROOT / ".coverage.observer-replay")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.run_cluster:
        env.setdefault("DRILLS_TEST_CLUSTER", "drills-obs-cov")
        took = run("tests/test_observer_cluster.py", args.cluster_data, env)
        print(f"cluster tier: tests/test_observer_cluster.py ran in {took:.0f}s")
    if not args.cluster_data.exists():
        print(f"no cluster coverage data at {args.cluster_data}: run with --run-cluster", file=sys.stderr)
        return 2
    took = run("tests/test_observer_replay.py", args.replay_data, dict(env, DRILLS_SKIP_CLUSTER="1"))
    print(f"replay tier: tests/test_observer_replay.py ran in {took:.1f}s (pytest and coverage included)")

    cluster, every = branches(args.cluster_data)
    replay, _ = branches(args.replay_data)
    io = io_lines()

    def part(selected: Branches) -> tuple[Branches, Branches]:
        return cluster & selected, replay & selected

    print(f"\nbranch coverage of {', '.join(FILES)} ({len(every)} branches)")
    rows = [
        ("all", every),
        ("watching I/O", {b for b in every if (b[0], b[1]) in io}),
        ("classification, attribution, cache, pacing", {b for b in every if (b[0], b[1]) not in io}),
    ]
    for label, selected in rows:
        c, r = part(selected)
        n = len(selected) or 1
        ratio = len(c & r) / len(c) if c else 0.0
        print(
            f"  {label:45s} cluster {len(c):4d}/{len(selected):4d} ({len(c) / n:6.1%})"
            f"   replay {len(r):4d}/{len(selected):4d} ({len(r) / n:6.1%})"
            f"   replay∩cluster/cluster {ratio:6.1%}"
        )
    missed = sorted(cluster - replay)
    if missed:
        print(f"\nbranches the cluster tier covers and the replays do not ({len(missed)}):")
        for rel, a, b in missed:
            where = "I/O " if (rel, a) in io else ""
            print(f"  {where}{rel}:{a} -> {b if b > 0 else 'exit'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
