"""The drill server's client: what the responder commands use when ``DRILLS_SERVER`` and ``DRILLS_TOKEN`` are set.

One wrapper around httpx, like the Kubernetes client's: every transport failure and every refusal from the
server becomes a :class:`~drills.errors.DrillError` carrying the server's message, hint and exit code, so a
remote ``drill ack`` fails exactly as the local one would (an ended drill is a usage error, exit 2; a wrong
role is a refusal, exit 5). The token goes in the ``Authorization`` header only, never in a URL.

``DRILLS_SERVER_CA`` names a CA bundle to trust (the drills CA of ``drill serve --tls-drills-ca``).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from drills.errors import DrillError, ServerError

SERVER_ENV = "DRILLS_SERVER"
TOKEN_ENV = "DRILLS_TOKEN"
CA_ENV = "DRILLS_SERVER_CA"


@dataclass(frozen=True)
class ServerTarget:
    url: str
    token: str
    ca: str | None = None


def from_env(env: Mapping[str, str] | None = None) -> ServerTarget | None:
    """The server the CLI talks to, or None (both unset: work locally). Half of it set is a usage error."""
    env = os.environ if env is None else env
    url, token = env.get(SERVER_ENV, "").strip(), env.get(TOKEN_ENV, "").strip()
    if not url and not token:
        return None
    if not url or not token:
        missing = SERVER_ENV if not url else TOKEN_ENV
        raise ServerError(
            f"{missing} is not set, but {TOKEN_ENV if not url else SERVER_ENV} is",
            hint=f"set both to use a drill server ({SERVER_ENV}=https://host:8470), or neither to work locally",
            status=400,
        )
    return ServerTarget(url.rstrip("/"), token, env.get(CA_ENV) or None)


def _error(response: httpx.Response) -> DrillError:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    e = ServerError(
        str(data.get("error") or f"the drill server answered {response.status_code}"),
        hint=data.get("hint") if isinstance(data.get("hint"), str) else None,
        status=response.status_code,
    )
    code = data.get("exit_code")
    if isinstance(code, int):
        e.exit_code = code
    return e


class ServerClient:
    """Calls on one drill server as one person (their token)."""

    def __init__(
        self, target: ServerTarget, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ):
        self.target = target
        verify: ssl.SSLContext | bool = True
        if target.ca:
            try:
                verify = ssl.create_default_context(cafile=target.ca)
            except (OSError, ssl.SSLError) as e:
                raise ServerError(
                    f"cannot read {CA_ENV}={target.ca}: {e}",
                    hint="point it at the server's CA certificate (PEM), e.g. <state>/server/tls/ca.crt",
                    status=400,
                ) from e
        self._http = httpx.Client(
            base_url=target.url,
            headers={"Authorization": f"Bearer {target.token}", "User-Agent": "drills-cli"},
            timeout=timeout,
            verify=verify,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.HTTPError as e:
            raise ServerError(
                f"cannot reach the drill server {self.target.url}: {e}",
                hint=f"check {SERVER_ENV} and that `drill serve` runs there (and {CA_ENV} for its CA)",
                status=503,
            ) from e
        if response.status_code >= 400:
            raise _error(response)
        return response

    def get_json(self, path: str) -> Any:
        return self._request("GET", path).json()

    def get_text(self, path: str) -> str:
        return self._request("GET", path).text

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._request("POST", path, json=dict(body or {})).json()

    def whoami(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get_json("/api/whoami")
        return data

    def drill_id(self, drill_id: str | None) -> str:
        """The drill to act on: the one named, the one the token is for, else the only running one."""
        if drill_id:
            return drill_id
        me = self.whoami()
        if me.get("drill_id"):
            return str(me["drill_id"])
        drills = [d for d in self.get_json("/api/drills")["drills"] if not d.get("outcome")]
        if len(drills) == 1:
            return str(drills[0]["drill_id"])
        raise ServerError(
            "no drill is running on the server" if not drills else "several drills run on the server",
            hint="name one with --drill ID",
            status=404 if not drills else 409,
        )

    def act(self, drill_id: str, action: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = self.post(f"/api/drills/{drill_id}/actions/{action}", body)
        return data

    def events_json(self, drill_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.get_json(f"/api/drills/{drill_id}/events")["events"]
        return events

    def stream(self, drill_id: str, last_event_id: str | None = None) -> Iterator[tuple[str, str, str]]:
        """The drill's live journal: ``(id, event type, JSON)`` per event until the drill ends."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            with self._http.stream(
                "GET",
                f"/api/drills/{drill_id}/stream",
                headers=headers,
                timeout=httpx.Timeout(30.0, read=None),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                ident = kind = ""
                data: list[str] = []
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        ident = line[4:]
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif not line:
                        if kind == "end":
                            return
                        if data and ident:
                            yield ident, kind, "\n".join(data)
                        ident = kind = ""
                        data = []
        except httpx.HTTPError as e:
            raise ServerError(
                f"the drill server's stream broke: {e}", hint="run the command again", status=503
            ) from e


__all__ = ["CA_ENV", "SERVER_ENV", "TOKEN_ENV", "ServerClient", "ServerTarget", "from_env"]
