"""Measured impact in a real drill on the embedded cluster: the virtual users see the bad release and the
rollback, and deleting the app's dependency takes checkout and cart down while browse keeps working."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_run_cluster import run

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.store.journal import read_journal
from drills.model.events import ActionKind, ActionObserved, FaultInjected, ImpactSampled

pytestmark = pytest.mark.cluster


@pytest.fixture
def drill_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ClusterHandle) -> ClusterHandle:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    return world


def test_a_bad_release_affects_most_users_and_the_rollback_brings_them_back(drill_env: ClusterHandle) -> None:
    result = run(drill_env, "bad-deploy-rollback", "bot:good")
    events = read_journal(result.journal_path).events
    t0 = next(e.at for e in events if isinstance(e, FaultInjected))
    samples = [e for e in events if isinstance(e, ImpactSampled)]
    assert samples, "the virtual users ran"
    bad = next(s for s in samples if s.users_affected_pct > 50)
    # the model's resolution is 1 s and the crash is kwok's Stage after a short delay
    assert bad.at - t0 <= timedelta(seconds=15), (
        bad.at - t0,
        [(s.at - t0, s.users_affected_pct) for s in samples],
    )
    rollback = next(e for e in events if isinstance(e, ActionObserved) and e.kind == ActionKind.ROLLBACK)
    after = [s for s in samples if s.at > rollback.at]
    assert after and after[-1].users_affected_pct < 1, [(s.at - t0, s.users_affected_pct) for s in after]
    assert after[-1].status == "ok"
