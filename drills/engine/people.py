"""Who did what in a drill: each person's part, from the journal, for the scorecard and the debrief.

A team drill has several people: the IC declares, the comms lead posts, the tech lead rolls back. Events
they post carry their name as the actor (the drill server records the authenticated person); cluster actions
carry the identity the audit log names (``drills:responder:<person>``), which is that person's own kubeconfig.
Both are joined here under the person's name, in time order. Pure: a function of the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drills.model.events import (
    Acknowledged,
    ActionObserved,
    ActorKind,
    CommsPosted,
    Detected,
    EscalationNotified,
    Event,
    HintUsed,
    Mitigated,
    Note,
    Paused,
    Resolved,
    Resumed,
    RoleAssigned,
    SeverityDeclared,
    Source,
    TicketCreated,
)

RESPONDER_USER_PREFIX = "drills:responder:"


def _what(e: Event) -> str | None:
    if isinstance(e, Acknowledged):
        return "acknowledged the page"
    if isinstance(e, SeverityDeclared):
        return f"declared {e.severity.value}"
    if isinstance(e, RoleAssigned):
        return f"assigned {e.role.value} to {e.person}"
    if isinstance(e, CommsPosted):
        return f"posted {e.template}" + (
            f" ({len(e.missing_fields)} field(s) missing)" if e.missing_fields else ""
        )
    if isinstance(e, EscalationNotified):
        return f"escalated to {e.whom}"
    if isinstance(e, TicketCreated):
        return f"created ticket {e.ref}".strip()
    if isinstance(e, Note):
        return "wrote a note"
    if isinstance(e, HintUsed):
        return f"took hint {e.index + 1}"
    if isinstance(e, Mitigated):
        return "said impact is reduced"
    if isinstance(e, Resolved):
        return "resolved the incident"
    if isinstance(e, Detected):
        return "noticed the incident"
    if isinstance(e, Paused):
        return "paused the drill"
    if isinstance(e, Resumed):
        return "resumed the drill"
    return None


def person_of(e: Event) -> str | None:
    """The person behind an event: a human's posted event, or a responder identity's cluster action."""
    if isinstance(e, ActionObserved):
        if e.actor_kind is ActorKind.RESPONDER and e.actor and e.actor.startswith(RESPONDER_USER_PREFIX):
            return e.actor[len(RESPONDER_USER_PREFIX) :]
        return None
    if e.source is Source.HUMAN and e.actor and _what(e) is not None:
        return e.actor
    return None


def who_did_what(events: Sequence[Event]) -> list[dict[str, Any]]:
    """One entry per person, in order of first action: ``{"person", "did": [{"at", "what"}...]}``."""
    people: dict[str, list[dict[str, str]]] = {}
    # Each event once (a retried delivery is the same event), in an order that does not depend on the file's.
    unique = {e.id: e for e in events}.values()
    # Only the events of a person are sorted (a big journal's are a few out of tens of thousands).
    theirs = [(e, who) for e in unique if (who := person_of(e)) is not None]
    for e, who in sorted(theirs, key=lambda x: (x[0].at, x[0].id)):
        what = f"{e.kind.value} {e.object}" if isinstance(e, ActionObserved) else _what(e) or e.type
        people.setdefault(who, []).append({"at": e.at.isoformat(), "what": what})
    return [{"person": p, "did": did} for p, did in people.items()]


__all__ = ["RESPONDER_USER_PREFIX", "person_of", "who_did_what"]
