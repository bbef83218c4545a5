"""Who did what: each person's posted events and their own identity's cluster actions, under their name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drills.engine.people import who_did_what
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    CommsPosted,
    Event,
    Note,
    SeverityDeclared,
    Source,
)
from drills.model.severity import Severity

T = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def at(s: int) -> datetime:
    return T + timedelta(seconds=s)


def test_posted_events_and_audited_kubectl_are_joined_per_person() -> None:
    h = Source.HUMAN
    events: list[Event] = [
        Acknowledged(at=at(1), source=h, actor="ivy"),
        SeverityDeclared(at=at(2), source=h, actor="ivy", severity=Severity.P1),
        CommsPosted(at=at(3), source=h, actor="cole", template="initial_alert"),
        ActionObserved(
            at=at(4),
            source=h,
            actor="drills:responder:tara",
            kind=next(iter(ActionKind)),
            actor_kind=ActorKind.RESPONDER,
            object="deployment/production/app",
        ),
        ActionObserved(
            at=at(5),
            source=Source.CONTROLLER,
            actor="kube-controller-manager/deployment",
            kind=next(iter(ActionKind)),
            actor_kind=ActorKind.CONTROLLER,
            object="replicaset/production/app-1",
        ),
        Note(at=at(6), source=Source.SYSTEM, actor="drills-runner", text="not a person"),
    ]
    people = who_did_what(events + events[:2])  # a redelivered event counts once
    assert [p["person"] for p in people] == ["ivy", "cole", "tara"]
    assert [d["what"] for d in people[0]["did"]] == ["acknowledged the page", "declared P1"]
    assert people[1]["did"][0]["what"] == "posted initial_alert"
    assert people[2]["did"][0]["what"].endswith("deployment/production/app")
