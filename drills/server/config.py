"""How `drill serve` runs: where it listens, its TLS material and its limits, checked before anything binds.

Loopback by default. Any other address carries tokens and kubeconfigs over a network, so it needs TLS: a
certificate and key given (``--tls-cert/--tls-key``) or one signed by the drills CA (``--tls-drills-ca``,
:mod:`drills.adapters.tls`). :func:`check_listen` refuses to start otherwise.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from drills.errors import SafetyError, UsageError
from drills.server.service import StartDefaults
from drills.timing import SYSTEM_CLOCK, Clock

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server."""

    #: Largest request body (bytes); larger ones get 413 before they are read.
    max_body_bytes: int = 256 * 1024
    #: uvicorn's limit_concurrency: connections (SSE streams included) beyond it get 503.
    max_connections: int = 1000
    #: The listen socket's backlog.
    backlog: int = 256
    #: Failed token checks per client address per window before 429.
    max_failed_logins: int = 10
    failed_login_window_seconds: float = 60.0
    #: Seconds an idle keep-alive connection stays open.
    keep_alive_seconds: int = 5


@dataclass(frozen=True)
class ServerConfig:
    """Everything :func:`drills.server.app.create_app` and :func:`drills.server.run.serve` need."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Sign the server's certificate with the drills CA (made on first use in the state directory).
    tls_drills_ca: bool = False
    limits: Limits = field(default_factory=Limits)
    #: The people store's file (None: ``$DRILLS_STATE/server/people.sqlite3``).
    people_file: Path | None = None
    start: StartDefaults = field(default_factory=StartDefaults)
    clock: Clock = SYSTEM_CLOCK
    #: Seconds between looks at a journal for events other writers appended.
    hub_poll_seconds: float = 0.05

    @property
    def tls(self) -> bool:
        return self.tls_drills_ca or (self.tls_cert is not None and self.tls_key is not None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[v6]:PORT``."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(
            f"--listen {value!r}: the port is not a number", hint="e.g. 127.0.0.1:8470"
        ) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--listen {value!r}: port {port} is out of range", hint="e.g. 127.0.0.1:8470")
    return host, port


def check_listen(config: ServerConfig) -> None:
    """Refuse (SafetyError) to listen beyond loopback without TLS, or with half of a certificate pair."""
    if (config.tls_cert is None) != (config.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together", hint="give both, or --tls-drills-ca")
    if config.tls_drills_ca and config.tls_cert is not None:
        raise UsageError("--tls-drills-ca or --tls-cert/--tls-key, not both")
    if not is_loopback(config.host) and not config.tls:
        raise SafetyError(
            f"refusing to listen on {config.host} without TLS: tokens and kubeconfigs would cross the network "
            "in clear",
            hint="give --tls-cert FILE --tls-key FILE, or --tls-drills-ca; or listen on 127.0.0.1",
        )


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "Limits",
    "ServerConfig",
    "check_listen",
    "is_loopback",
    "parse_listen",
]
