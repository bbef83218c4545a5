"""A served synthetic drill for the server's tests and benchmark: a journal on disk, no cluster."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from drills.adapters.files.scenarios import load_scenario
from drills.adapters.store.journal import JOURNAL_FILE, Journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import FaultInjected, Mode, Source
from drills.runner import respond
from drills.runner.run import started_event
from drills.server.config import ServerConfig
from drills.timing import SYSTEM_CLOCK

ROOT = Path(__file__).resolve().parents[1]


def synthetic_drill(state: Path, drill_id: str = "20260106-090000-bad-deploy-rollback") -> Path:
    """A running drill (started, fault injected, now) in ``state``; returns its journal's path."""
    scenario = load_scenario(ROOT / "scenarios" / "bad-deploy-rollback.yaml")
    path = state / "drills" / drill_id / JOURNAL_FILE
    now = SYSTEM_CLOCK.now()
    j = Journal.create(
        path,
        started_event(scenario, drill_id, now, mode=Mode.TRAINING, backend="embedded", trainee=None, seed=1),
    )
    j.append(FaultInjected(at=now, source=Source.SYSTEM, fault_kind="bad-deploy", target="deployment/app"))
    respond.write_meta(path.parent, {"drill_id": drill_id, "scenario": scenario.id, "kubeconfigs": {}})
    return path


def invite(
    store: PeopleStore,
    person: str,
    role: str,
    *,
    drill_id: str | None = None,
    hours: float = 8,
    ago: float = 0,
) -> str:
    """A token for ``person``, valid ``hours`` from ``ago`` hours ago."""
    now = SYSTEM_CLOCK.now() - timedelta(hours=ago)
    return store.invite(person, role, drill_id=drill_id, ttl=timedelta(hours=hours), now=now)[1]


@contextlib.contextmanager
def running_server(config: ServerConfig) -> Iterator[str]:
    """A real uvicorn serving ``config`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    from drills.server.run import uvicorn_config

    ucfg = uvicorn_config(replace(config, host="127.0.0.1", port=0))
    server = uvicorn.Server(ucfg)
    thread = threading.Thread(target=server.run, name="test-drill-server", daemon=True)
    thread.start()
    deadline = SYSTEM_CLOCK.monotonic() + 20
    while not server.started:
        if SYSTEM_CLOCK.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test drill server did not start")
        SYSTEM_CLOCK.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if config.tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
