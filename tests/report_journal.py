"""The journal the report tests render: one P0 drill that shows every part of a report.

Fixed ids and times (``DrillBuilder``), so its reports are golden files. The response is realistic and
imperfect: the page is acknowledged 6m28s after the alert (MTTA missed), the severity is declared P1 for a
P0, the initial alert misses a field, the game master pauses for two minutes, a hint is used, the responder
rolls back after reading the logs, the service is healthy again at 13m and the drill is resolved at 18m.
"""

from __future__ import annotations

from pathlib import Path

from builders import DrillBuilder

from drills.adapters.store.journal import Journal
from drills.model.events import ActionKind, ActorKind, CommsPosted, Event, Source
from drills.model.severity import Impact, Level, ServiceStatus
from drills.timing import FakeClock

DRILL_ID = "20250304-090000-bad-deploy-rollback"

IMPACT = Impact(
    users_affected_pct=65,
    service_status=ServiceStatus.DEGRADED,
    data_loss_risk=Level.NONE,
    revenue_impact=Level.CRITICAL,
    features=["checkout", "cart"],
)
INITIAL_ALERT = """🚨 INCIDENT ALERT - P1
Service: shop
Impact: checkout failing for most users
Status: Investigating
Incident Commander: alice
War Room: [link]"""
STATUS_UPDATE = """📊 STATUS UPDATE - #incident-20250304-0900
Current Status: Mitigated
Actions taken: rolled back deployment/shop to revision 4
Next update: 09:31 UTC"""


def report_events() -> list[Event]:
    b = DrillBuilder(
        severity="P0",
        drill_id=DRILL_ID,
        scenario_title="Bad deploy: the new release crash-loops",
        service="shop",
        hints=[("Check what changed last: kubectl rollout history deployment/shop", 5)],
        impact=IMPACT,
    )
    b.at("20s").unhealthy("shop available 0/3")
    b.at("1m02s").alert("ShopDown", rule_delay=60, received_after="2s").page("alice")
    b.at("7m30s").ack("alice")
    b.at("7m50s").assign("ic", "alice")
    b.at("8m20s").declare("P1")
    b.at("8m40s").add(
        CommsPosted,
        source=Source.HUMAN,
        actor="alice",
        template="initial_alert",
        channel="slack:#incident-response",
        missing_fields=["war_room"],
        text=INITIAL_ALERT,
    )
    b.at("9m").evidence("pod/drills-shop/shop-7d9f-x2x")
    b.at("9m30s").pause("game master: the trainee asked a question")
    b.at("11m30s").resume()
    b.at("11m40s").hint(0, cost=5)
    b.at("12m").action(ActionKind.ROLLBACK, destructive=True, detail="kubectl rollout undo deployment/shop")
    b.at("12m02s").note("rolled back shop to revision 4")
    b.at("12m05s").action(
        ActionKind.POD_CREATED,
        actor="replicaset-controller",
        actor_kind=ActorKind.CONTROLLER,
        object="pod/drills-shop/shop-5c8b-q7k",
    )
    b.at("13m").healthy("shop available 3/3")
    b.at("14m").escalate("engineering-leadership")
    b.at("16m").add(
        CommsPosted,
        source=Source.HUMAN,
        actor="alice",
        template="status_update",
        channel="slack:#incident-response",
        text=STATUS_UPDATE,
    )
    b.at("18m").resolve(root_cause="v2.1.0 crashes on start; rolled back to v2.0.0").comms("resolution")
    b.at("18m05s").end()
    return b.events


def write_report_journal(directory: Path) -> Path:
    """The journal as the runner writes it (through ``Journal``, with ``recorded_at`` from a fixed clock)."""
    events = report_events()
    path = directory / "journal.jsonl"
    Journal(path, FakeClock(events[0].at), env={}).append_many(events)
    return path
