"""The live dashboard, rendered from a journal at a fixed instant: golden files and what it must (not) show.

`DRILLS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_dashboard.py` rewrites tests/golden/dashboard-*.txt;
review the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    AlertFired,
    DrillStarted,
    Event,
    FaultInjected,
    HealthChanged,
    HintInfo,
    HintUsed,
    PageSent,
    Paused,
    RoleAssigned,
    SeverityDeclared,
    Source,
)
from drills.model.policy import SlaTargets
from drills.model.severity import Severity
from drills.reporting.dashboard import render_dashboard

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DRILLS_UPDATE_GOLDEN") == "1"
T = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def journal() -> list[Event]:
    n = iter(range(1, 1000))

    def i() -> str:
        return f"evt-{next(n):05d}"

    return [
        DrillStarted(
            id=i(),
            at=T,
            source=Source.SYSTEM,
            actor="drills:runner",
            drill_id="20260106-090000-bad-deploy-rollback",
            scenario_id="bad-deploy-rollback",
            scenario_title="Checkout crashes after the v2.1.0 release",
            category="deployment",
            service="app",
            namespace="production",
            true_severity=Severity.P0,
            trainee="alice",
            hints=[
                HintInfo(text="SECRET-HINT-ONE rollout history", after_seconds=30, cost=5),
                HintInfo(text="SECRET-HINT-TWO rollout undo", after_seconds=480, cost=15),
            ],
            budget_seconds=1800,
        ),
        FaultInjected(
            id=i(), at=at(2), source=Source.SYSTEM, actor="drills:injector", fault_kind="bad-deploy",
            target="Deployment/production/app",
        ),
        HealthChanged(id=i(), at=at(9), source=Source.SYSTEM, healthy=False, reason="deployment app: 1/3 available"),
        AlertFired(
            id=i(), at=at(9), source=Source.SYSTEM, actor="drills-health-probe", alert_name="KubePodCrashLooping"
        ),
        PageSent(id=i(), at=at(10), source=Source.SYSTEM, actor="drills:runner", channel="terminal", to="alice"),
        Acknowledged(id=i(), at=at(41), source=Source.HUMAN, actor="alice"),
        RoleAssigned(id=i(), at=at(50), source=Source.HUMAN, actor="alice", role="ic", person="alice"),
        SeverityDeclared(id=i(), at=at(55), source=Source.HUMAN, actor="alice", severity=Severity.P1),
        HintUsed(id=i(), at=at(70), source=Source.HUMAN, actor="alice", index=0, cost=5, text="SECRET-HINT-ONE"),
        ActionObserved(
            id=i(), at=at(95), source=Source.HUMAN, actor="drills:responder:alice", kind=ActionKind.EVIDENCE_READ,
            actor_kind=ActorKind.RESPONDER, object="Pod/production/app-7d9f-x2", detail="logs --previous",
        ),
        ActionObserved(
            id=i(), at=at(120), source=Source.HUMAN, actor="drills:responder:alice", kind=ActionKind.ROLLBACK,
            actor_kind=ActorKind.RESPONDER, object="Deployment/production/app", detail="to revision 2",
        ),
        ActionObserved(
            id=i(), at=at(121), source=Source.CONTROLLER, actor="kube-controller-manager",
            kind=ActionKind.POD_DELETED, actor_kind=ActorKind.CONTROLLER, object="Pod/production/app-7d9f-x2",
            destructive=True,
        ),
    ]  # fmt: skip


def render(events: list[Event], now: datetime, width: int) -> str:
    console = Console(file=StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(render_dashboard(events, now, SlaTargets(), width))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


@pytest.mark.parametrize(
    ("name", "cut", "seconds", "width"),
    [
        ("dashboard-triage-100.txt", 12, 130, 100),
        ("dashboard-detect-80.txt", 4, 20, 80),
    ],
)
def test_dashboard_matches_golden_file(name: str, cut: int, seconds: float, width: int) -> None:
    produced = render(journal()[:cut], at(seconds), width)
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with DRILLS_UPDATE_GOLDEN=1 and review it"
    assert produced == golden.read_text(encoding="utf-8")
    assert all(len(line) <= width for line in produced.splitlines())


def test_what_the_dashboard_shows() -> None:
    text = render(journal(), at(130), 100)
    assert "phase MITIGATE" in text
    assert "elapsed 2m08s" in text and "trainee alice" in text
    assert "UNHEALTHY" in text and "deployment app: 1/3 available" in text
    # the declared P1's budgets count down from the acknowledgement / the alert
    assert "mttm.p1" in text and "mttr.p1" in text
    # who did what: the responder's rollback, the controller's pod deletion
    assert "alice" in text and "rollback" in text and "controller" in text
    assert "used" in text and "in 5m52s" in text  # hint 1 used, hint 2 opens 8m after the fault
    assert "Acknowledged (via cli)" in text


def test_it_never_gives_the_answer_away() -> None:
    text = render(journal(), at(130), 100)
    assert "SECRET-HINT-TWO" not in text  # a hint not taken stays hidden
    assert "SECRET-HINT-ONE" not in text  # even a used one: the terminal that took it shows it
    assert "P0" not in text  # the true severity is what triage is judged on
    before_declaring = render(journal()[:6], at(45), 100)
    assert "mtta.p0" not in before_declaring and "mttm" not in before_declaring


def test_paused_and_breached_budgets_show() -> None:
    events = journal()[:6]
    late = render(events, at(60 * 20), 100)
    assert "BREACHED" in late  # triage.within (15m) is over
    paused = [*events, Paused(at=at(60), source=Source.HUMAN, actor="gm", reason="lunch")]
    text = render(paused, at(600), 100)
    assert "PAUSED" in text and "active 58s" in text


def test_same_journal_same_picture_in_any_order() -> None:
    events = journal()
    assert render(events, at(130), 100) == render(list(reversed(events)), at(130), 100)


def test_the_users_panel_shows_what_users_see_only_with_virtual_users() -> None:
    from drills.model.events import ImpactSampled

    def sample(s: float, pct: float, status: str, p99: float, down: list[str]) -> ImpactSampled:
        return ImpactSampled(
            at=at(s),
            source=Source.SYSTEM,
            actor="drills-users",
            users_affected_pct=pct,
            users_affected=round(100 * pct),
            users_active=10_000,
            status=status,  # type: ignore[arg-type]
            requests_per_second=1000,
            failed_per_second=10 * pct,
            p99_ms=p99,
            features_down=down,
        )

    events = [
        *journal(),
        sample(3, 100.0, "down", 20, ["browse", "cart", "checkout"]),
        sample(100, 48.5, "degraded", 1200, ["cart", "checkout"]),
    ]
    text = render(events, at(130), 100)
    assert "Users (last 5 min)" in text
    assert "4,850 of 10,000 (48.5%)" in text and "1,200 ms" in text
    assert "DEGRADED" in text and "features down cart, checkout" in text
    assert "█" in text  # the sparkline shows the outage
    assert "Users (last 5 min)" not in render(journal(), at(130), 100)
    # the same figures as `drill impact` would print
    assert all(len(line) <= 100 for line in text.splitlines())
