"""The drill server under a team's load: 50 clients posting events and 200 SSE watchers on one served drill.

A real `drill serve` (its own process, uvicorn on 127.0.0.1) serves a synthetic drill (no cluster). The
watchers (in a few worker processes, so the clients' parsing does not queue behind itself) follow the drill's
live journal as Server-Sent Events; the posters (asyncio, one connection each) post notes at a steady pace
(by default one a second each: 50 events a second on one drill, far more than a team types, and each is
delivered 200 times), each note tagged. Figures:

- post-to-stream latency: from a poster starting its POST to a watcher reading that event, over every
  (event, watcher) pair: p50, p90, p99, max. Goal (issue #15): p99 <= 100 ms.
- lost events: (event, watcher) pairs never delivered, and events not journaled exactly once. Goal: 0.
- the server's CPU time and the posts' own round trip.

    python benchmarks/bench_server.py [--posters 50] [--watchers 200] [--events 20] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

DRILL = "20260106-090000-bad-deploy-rollback"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _watch(url: str, token: str, ready: Any, out: dict[str, float]) -> None:
    import httpx

    from drills.timing import SYSTEM_CLOCK

    timeout = httpx.Timeout(30.0, read=None)
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
        client.stream(
            "GET", f"{url}/api/drills/{DRILL}/stream", headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        ready()
        # Frames are read as bytes and only the note's tag is looked for: the watchers share the machine with
        # the server, and parsing 200 x JSON per event in Python would measure the clients, not the server.
        buffer = b""
        async for chunk in r.aiter_raw():
            now = SYSTEM_CLOCK.monotonic()
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                if frame.startswith(b"event: end") or b"\nevent: end" in frame:
                    return
                at = frame.find(b'"text":"bench ')
                if at >= 0:
                    start = at + len(b'"text":"')
                    out[frame[start : frame.index(b'"', start)].decode()] = now


def _watcher_process(url: str, token: str, n: int, ready_q: Any, result_q: Any) -> None:
    async def main() -> list[dict[str, float]]:
        outs: list[dict[str, float]] = [{} for _ in range(n)]
        tasks = [asyncio.create_task(_watch(url, token, lambda: ready_q.put(1), outs[i])) for i in range(n)]
        await asyncio.gather(*tasks, return_exceptions=True)
        return outs

    result_q.put(asyncio.run(main()))


async def _post_all(
    url: str, tokens: list[str], events: int, interval: float
) -> tuple[dict[str, float], list[float]]:
    import httpx

    from drills.timing import SYSTEM_CLOCK

    sent: dict[str, float] = {}
    round_trips: list[float] = []

    async def poster(i: int, token: str) -> None:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        ) as client:
            await asyncio.sleep(interval * i / len(tokens))  # spread the posters over one interval
            for k in range(events):
                tag = f"bench {i}-{k}"
                start = SYSTEM_CLOCK.monotonic()
                sent[tag] = start
                r = await client.post(f"/api/drills/{DRILL}/actions/note", json={"text": tag})
                round_trips.append(SYSTEM_CLOCK.monotonic() - start)
                if r.status_code != 201:
                    raise RuntimeError(f"post failed: {r.status_code} {r.text}")
                await asyncio.sleep(max(0.0, interval - (SYSTEM_CLOCK.monotonic() - start)))

    await asyncio.gather(*(poster(i, t) for i, t in enumerate(tokens)))
    return sent, round_trips


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posters", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--events", type=int, default=20, help="Events each poster posts.")
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between a poster's events.")
    parser.add_argument("--processes", type=int, default=4, help="Worker processes for the watchers.")
    args = parser.parse_args()

    from server_support import invite, synthetic_drill

    from drills.adapters.store.journal import Journal, read_journal
    from drills.adapters.store.people import PeopleStore
    from drills.model.events import DrillEnded, Note, Outcome, Source
    from drills.timing import SYSTEM_CLOCK

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        state = Path(tmp) / "state"
        journal = synthetic_drill(state, DRILL)
        env = {**os.environ, "DRILLS_STATE": str(state)}
        os.environ["DRILLS_STATE"] = str(state)
        store = PeopleStore()
        watcher_token = invite(store, "watcher", "observer")
        tokens = [invite(store, f"responder-{i}", "sme") for i in range(args.posters)]
        store.close()
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "drill"), "serve", "--listen", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            import httpx

            deadline = SYSTEM_CLOCK.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if SYSTEM_CLOCK.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(
                        f"drill serve did not start: {server.stderr.read() if server.stderr else ''}"
                    )
                SYSTEM_CLOCK.sleep(0.1)

            ctx = mp.get_context("spawn")
            ready_q, result_q = ctx.Queue(), ctx.Queue()
            per = [
                args.watchers // args.processes + (i < args.watchers % args.processes)
                for i in range(args.processes)
            ]
            workers = [
                ctx.Process(target=_watcher_process, args=(url, watcher_token, n, ready_q, result_q))
                for n in per
                if n
            ]
            for w in workers:
                w.start()
            for _ in range(args.watchers):
                ready_q.get(timeout=120)

            import resource

            before = resource.getrusage(resource.RUSAGE_SELF)
            start = SYSTEM_CLOCK.monotonic()
            sent, round_trips = asyncio.run(_post_all(url, tokens, args.events, args.interval))
            posting = SYSTEM_CLOCK.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            posters_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            SYSTEM_CLOCK.sleep(1.0)  # let the last events reach every stream before the end
            Journal(journal).append(
                DrillEnded(at=SYSTEM_CLOCK.now(), source=Source.SYSTEM, outcome=Outcome.ABORTED)
            )
            outs: list[dict[str, float]] = []
            for _ in workers:
                outs.extend(result_q.get(timeout=120))
            for w in workers:
                w.join(30)
            import psutil

            cpu = psutil.Process(server.pid).cpu_times()
            server_cpu = cpu.user + cpu.system
        finally:
            server.terminate()
            server.wait(30)

        latencies = [out[tag] - t for out in outs for tag, t in sent.items() if tag in out]
        lost = sum(1 for out in outs for tag in sent if tag not in out)
        notes = [
            e.text
            for e in read_journal(journal).events
            if isinstance(e, Note) and e.text.startswith("bench ")
        ]
        not_once = sum(1 for tag in sent if notes.count(tag) != 1) + len(set(notes) - set(sent))
        total = len(sent)
        print(f"drill server: {args.posters} posters x {args.events} events, {len(outs)} SSE watchers")
        print(f"  posted {total} events in {posting:.2f} s ({total / posting:.0f}/s)")
        print(
            f"  post round trip   p50 {statistics.median(round_trips) * 1000:6.1f} ms   "
            f"p99 {_pct(round_trips, 99) * 1000:6.1f} ms"
        )
        if latencies:
            print(
                f"  post-to-stream    p50 {_pct(latencies, 50) * 1000:6.1f} ms   p90 {_pct(latencies, 90) * 1000:6.1f} ms"
                f"   p99 {_pct(latencies, 99) * 1000:6.1f} ms   max {max(latencies) * 1000:6.1f} ms"
                f"   (goal: p99 <= 100 ms) over {len(latencies)} deliveries"
            )
        print(
            f"  server CPU        {server_cpu:.2f} s (user + sys, whole run); posters' CPU {posters_cpu:.2f} s"
        )
        print(f"  machine load      {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} CPUs)")
        print(f"  lost deliveries   {lost}   (goal: 0)")
        print(f"  journaled not exactly once: {not_once}   (goal: 0)")


if __name__ == "__main__":
    main()
