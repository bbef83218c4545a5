"""Measured impact in a real drill on the embedded cluster: the virtual users follow the real cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_run_cluster import run

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.store.journal import read_journal
from drills.model.events import ActionKind, ActionObserved, ImpactSampled
from drills.model.scorecard import CheckStatus

pytestmark = pytest.mark.cluster

#: The good bot's rollback, then (once users are served again) a delete of the app's dependency, and a
#: resolution as soon as the probes hold: they watch the app, not db-proxy. A profile minute is 3 s here.
RECKLESS = """\
name: reckless-bot
description: Mitigates by the runbook, then deletes db-proxy and resolves on the probes' word.
relative_to: page
steps:
  - {step: ack, offset: 20s}
  - {step: role, role: ic, offset: 30s}
  - {step: declare, severity: "true", offset: 40s}
  - {step: mitigate, offset: 50s}
  - {step: kubectl, args: [delete, deployment, db-proxy, -n, production], offset: 6m}
  - {step: resolve, offset: 7m, wait: lasting}
"""


def test_deleting_the_dependency_takes_checkout_and_cart_down_but_not_browse(
    world: ClusterHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    profile = tmp_path / "reckless.yaml"
    profile.write_text(RECKLESS)
    result = run(world, "bad-deploy-rollback", profile)
    events = read_journal(result.journal_path).events
    samples = [e for e in events if isinstance(e, ImpactSampled)]
    assert samples, "the virtual users ran"
    deleted = next(
        e
        for e in events
        if isinstance(e, ActionObserved) and e.kind == ActionKind.DELETED and "db-proxy" in (e.object or "")
    )
    # From the bot's rollback on, only db-proxy is missing (bad-deploy-no-canary is the release that hurts
    # every route until then: tests/test_impact_faults_cluster.py).
    rollback = next(e for e in events if isinstance(e, ActionObserved) and e.kind == ActionKind.ROLLBACK)
    after = [s for s in samples if s.at >= max(deleted.at, rollback.at)]
    # half of the traffic is browse, which needs no db-proxy: about half the active users are affected
    hit = next(
        (s for s in after if s.features_down == ["cart", "checkout"] and 35 < s.users_affected_pct < 65), None
    )
    assert hit is not None, [(s.at, s.users_affected_pct, s.features_down) for s in samples]
    assert hit.status == "degraded"
    assert hit.errors and set(hit.errors) <= {"503"}
    # the timeline and the findings record the delete as a change that raised impact
    sc = result.scorecard
    assert sc is not None
    recorded = next(a for a in sc.actions if a.get("raised_impact"))
    assert "db-proxy" in str(recorded["object"]), sc.actions
    assert "raised impact" in str(recorded["raised_impact"])
    assert any(f.startswith("A responder change raised impact: deleted") for f in sc.findings), sc.findings
    # the bot resolved once the probes held, with checkout still failing: that cannot pass
    assert sc.clocks.resolved_while_affected
    healthy = next(c for c in sc.checks if c.id == "resolution.healthy")
    assert healthy.status == CheckStatus.FAIL and "of users were still affected" in healthy.detail
    assert not sc.passed
