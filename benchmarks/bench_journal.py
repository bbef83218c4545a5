"""A big journal through `drill score` and `drill report`: time and peak memory (issue #13, "Big journals").

A long drill with a chatty observer writes hundreds of thousands of lines (every pod the controllers make,
every health flap). Scoring and reporting it must stay cheap: the goal is 200k lines in at most 3 s and
150 MB. This builds a realistic synthetic journal (a P0 drill: alert, page, ack, declare, comms, a
rollback, then mostly observer traffic), then runs each command in a fresh child process and prints its
wall time and peak RSS (``ru_maxrss`` of that child, from ``os.wait4``). It also times reading the journal
alone, as a list (``read_journal``) and as the stream the commands read (``stream_journal`` and
``split_traffic``, which folds the observer's traffic), so the cost of the reader and of the engine can be
told apart. It prints figures; it is not a test.

    .venv/bin/python benchmarks/bench_journal.py [--lines 200000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import DrillBuilder

from drills.model.events import ActionKind, ActorKind

START = datetime(2025, 3, 4, 9, tzinfo=UTC)
SPAN = 4 * 3600  # a long drill: four hours of observer traffic


def build_journal(path: Path, lines: int, seed: int = 1) -> None:
    """Write ``lines`` events as the journal writer does (one JSON object a line, ``v`` and ``type`` first)."""
    rnd = random.Random(seed)
    b = DrillBuilder(severity="P0", start=START, service="shop")
    b.at("20s").unhealthy("shop available 0/3")
    b.at("1m").alert("ShopDown", rule_delay=60, received_after="2s").page("alice")
    b.at("3m").ack("alice").assign("ic", "alice").declare("P0")
    b.at("4m").comms("initial_alert")
    b.at("5m").evidence("pod/drills-shop/shop-1")
    b.at("6m").action(ActionKind.ROLLBACK, destructive=True, detail="kubectl rollout undo deployment/shop")
    head = b.events
    b.at(SPAN - 60).healthy("shop available 3/3")
    b.at(SPAN - 30).resolve(root_cause="v2.1.0 crashes on start; rolled back to v2.0.0").comms("resolution")
    b.at(SPAN).end()
    tail = b.events[len(head) :]
    with path.open("w", encoding="utf-8") as f:
        for e in head:
            f.write(e.model_dump_json(exclude_none=True) + "\n")
        offsets = sorted(rnd.uniform(400, SPAN - 120) for _ in range(max(0, lines - len(head) - len(tail))))
        for i, offset in enumerate(offsets):
            at = START + timedelta(seconds=offset)
            base = {
                "v": 1,
                "id": f"bench-{i:08d}",
                "at": at.isoformat(),
                "recorded_at": (at + timedelta(milliseconds=40)).isoformat(),
            }
            pick = rnd.random()
            if pick < 0.7:
                row = {
                    "type": "action.observed",
                    **base,
                    "source": "controller",
                    "actor": "replicaset-controller",
                    "kind": ActionKind.POD_CREATED.value,
                    "actor_kind": ActorKind.CONTROLLER.value,
                    "object": f"pod/drills-shop/shop-{rnd.randrange(16**5):05x}",
                    "attribution": "audit",
                }
            elif pick < 0.9:
                healthy = rnd.random() < 0.5
                row = {
                    "type": "health.changed",
                    **base,
                    "source": "system",
                    "actor": "observer",
                    "healthy": healthy,
                    "reason": "shop available 3/3" if healthy else "shop available 2/3",
                }
            elif pick < 0.97:
                row = {
                    "type": "action.observed",
                    **base,
                    "source": "human",
                    "actor": "alice",
                    "kind": ActionKind.EVIDENCE_READ.value,
                    "actor_kind": ActorKind.RESPONDER.value,
                    "object": "pod/drills-shop/shop-1",
                    "detail": "kubectl logs",
                    "attribution": "audit",
                }
            else:
                row = {"type": "note", **base, "source": "human", "actor": "alice", "text": "still watching"}
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
        for e in tail:
            f.write(e.model_dump_json(exclude_none=True) + "\n")


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS in MB and exit code of one child process.

    CPU time is printed beside wall time because the machine may be shared: wall time then includes waiting.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if proc.returncode not in (0, 1) and err:
            print(err[-2000:], file=sys.stderr)
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is in KiB on Linux


READ_ONLY = """
import sys
from drills.adapters.store.journal import read_journal
r = read_journal(sys.argv[1])
print(len(r.events), len(r.problems))
"""

STREAM_ONLY = """
import sys
from drills.adapters.store.journal import stream_journal
from drills.engine.traffic import split_traffic
stream = stream_journal(sys.argv[1])
events, traffic = split_traffic(stream)
print(len(events), traffic.count, len(stream.problems))
"""

IMPORTS_ONLY = """
import drills.cli, drills.engine.scoring, drills.reporting.report
"""


def writer_costs(directory: Path, n: int = 2000) -> None:
    """The secret scanner runs at every append: what it costs a line, and what an append costs in all."""
    from drills.adapters.store.journal import Journal
    from drills.engine.redact import scrub
    from drills.model.events import CommsPosted, DrillStarted, Source

    texts = [
        "kubectl rollout undo deployment/shop -n production; image registry.local/shop:v2.0.0",
        "Status: shop is degraded since 09:01 UTC; rolled back; next update in 15 min",
        "pasted by mistake: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln token=abc12345",
    ]
    t = time.process_time()
    for i in range(n):
        scrub(texts[i % len(texts)])
    per_line = (time.process_time() - t) / n * 1e6
    b = DrillBuilder(severity="P0", start=START)
    started = b.events[0]
    assert isinstance(started, DrillStarted)
    path = directory / "writer.jsonl"
    path.unlink(missing_ok=True)  # --keep reuses the directory
    journal = Journal.create(path, started, env={})
    t = time.perf_counter()
    for i in range(200):
        journal.append(
            CommsPosted(
                at=START, source=Source.HUMAN, actor="alice", template="status_update", text=texts[i % 3]
            )
        )
    per_append = (time.perf_counter() - t) / 200 * 1e3
    print(
        f"writer: scrub {per_line:.0f} us a line (CPU); Journal.append {per_append:.2f} ms an event (fsync)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="build the journal in this directory and keep it")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = ns.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        journal = base / "journal.jsonl"
        t = time.perf_counter()
        build_journal(journal, ns.lines)
        size = journal.stat().st_size / 1e6
        print(f"journal: {ns.lines} lines, {size:.1f} MB, built in {time.perf_counter() - t:.1f} s")
        env = {**os.environ, "DRILLS_REPORTS": str(base / "reports"), "NO_COLOR": "1", "COLUMNS": "120"}
        py = sys.executable
        drill = [py, "-c", "from drills.cli import main; main()"]
        runs = {
            "imports only": [py, "-c", IMPORTS_ONLY],
            "read_journal": [py, "-c", READ_ONLY, str(journal)],
            "stream+split": [py, "-c", STREAM_ONLY, str(journal)],
            "drill score": [*drill, "score", str(journal)],
            "drill report": [*drill, "report", str(journal), "--out", str(base / "reports")],
        }
        writer_costs(base)
        print(f"{'command':<14}{'wall s':>8}{'cpu s':>8}{'peak RSS MB':>13}{'exit':>6}")
        for name, args in runs.items():
            seconds, cpu, rss, code = run_child(args, env)
            print(f"{name:<14}{seconds:>8.2f}{cpu:>8.2f}{rss:>13.0f}{code:>6}")


if __name__ == "__main__":
    main()
