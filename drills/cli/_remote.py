"""The responder commands against a drill server (``DRILLS_SERVER`` and ``DRILLS_TOKEN`` set).

:class:`RemoteSession` has the methods of :class:`~drills.runner.respond.ResponderSession` the commands call,
and returns the same values (events parsed from the server's answer, hint offers, comms problems), so each
command prints the same lines and exits with the same codes whether the journal is on this machine or on the
server. The server records the token's person as the actor; ``--as`` cannot change that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from drills.errors import UsageError

if TYPE_CHECKING:
    from drills.adapters.server_client import ServerClient, ServerTarget
    from drills.model.events import Event
    from drills.runner.respond import HintOffer


def target() -> ServerTarget | None:
    """The drill server to talk to, or None to work locally (cheap: httpx is imported only when used)."""
    import os

    if not os.environ.get("DRILLS_SERVER") and not os.environ.get("DRILLS_TOKEN"):
        return None
    from drills.adapters.server_client import from_env

    return from_env()


@dataclass(frozen=True)
class RemoteRef:
    drill_id: str


@dataclass(frozen=True)
class RemoteComms:
    event: Event
    problems: list[str]


def _event(data: dict[str, Any]) -> Event:
    from drills.model.events import EVENT_ADAPTER

    return EVENT_ADAPTER.validate_python(data["event"])


class RemoteSession:
    """One person's actions on one drill, through the server."""

    def __init__(self, client: ServerClient, drill_id: str | None, actor: str | None = None) -> None:
        self.client = client
        me = client.whoami()
        self.actor = str(me["person"])
        if actor and actor != self.actor:
            raise UsageError(
                f"--as {actor}: the drill server records you as {self.actor} (your token's person)",
                hint="drop --as, or use the token of the person acting",
            )
        self.ref = RemoteRef(client.drill_id(drill_id))

    @classmethod
    def open(cls, t: ServerTarget, drill_id: str | None, actor: str | None = None) -> RemoteSession:
        import click

        from drills.adapters.server_client import ServerClient

        client = ServerClient(t)
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.call_on_close(client.close)  # the connection ends with the command
        try:
            return cls(client, drill_id, actor)
        except BaseException:
            client.close()
            raise

    def _do(self, action: str, **body: Any) -> Event:
        return _event(self.client.act(self.ref.drill_id, action, body))

    def ack(self) -> Event:
        return self._do("ack", via="cli")

    def declare(self, severity: str) -> Event:
        return self._do("declare", severity=severity)

    def role(self, role: str, person: str) -> Event:
        return self._do("role", role=role, person=person)

    def prefilled(self, template: str) -> str:
        return self.client.get_text(f"/api/drills/{self.ref.drill_id}/comms/{template}")

    def post_comms(self, template: str, text: str) -> RemoteComms:
        data = self.client.act(self.ref.drill_id, "comms", {"template": template, "text": text})
        return RemoteComms(_event(data), [str(p) for p in data.get("problems") or []])

    def escalate(self, whom: str) -> Event:
        return self._do("escalate", whom=whom)

    def ticket(self, ref: str = "") -> Event:
        return self._do("ticket", ref=ref)

    def hint(self) -> tuple[HintOffer, Event | None]:
        from drills.model.events import HintInfo
        from drills.runner.respond import HintOffer

        data = self.client.act(self.ref.drill_id, "hint", {})
        h = data.get("hint") or {}
        wait = h.get("available_in_seconds")
        info = (
            HintInfo(text=h["text"], cost=h["cost"], after_seconds=0) if h.get("text") is not None else None
        )
        offer = HintOffer(
            h.get("index"),
            info,
            available_in=None if wait is None else timedelta(seconds=wait),
            remaining=int(h.get("remaining") or 0),
        )
        return offer, None if data.get("event") is None else _event(data)

    def mitigated(self, summary: str = "") -> Event:
        return self._do("mitigated", summary=summary)

    def resolve(self, root_cause: str = "") -> Event:
        return self._do("resolve", root_cause=root_cause)

    def note(self, text: str) -> Event:
        return self._do("note", text=text)

    def detect(self, how: str = "") -> Event:
        return self._do("detect", how=how)

    def pause(self, reason: str = "") -> Event:
        return self._do("pause", reason=reason)

    def resume(self) -> Event:
        return self._do("resume")

    def abort(self, reason: str = "") -> Event:
        return self._do("abort", reason=reason)

    def events(self) -> list[Event]:
        from drills.model.events import EVENT_ADAPTER

        return [EVENT_ADAPTER.validate_python(e) for e in self.client.events_json(self.ref.drill_id)]

    def kubeconfig(self) -> str:
        return self.client.get_text(f"/api/drills/{self.ref.drill_id}/kubeconfig")


__all__ = ["RemoteComms", "RemoteRef", "RemoteSession", "target"]
