"""A served synthetic drill for the server's tests and benchmark: a journal on disk, no cluster."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from drills.adapters.files.scenarios import load_scenario
from drills.adapters.store.journal import JOURNAL_FILE, Journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import FaultInjected, Mode, Source
from drills.runner import respond
from drills.runner.run import started_event
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
