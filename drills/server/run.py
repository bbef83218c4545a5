"""Running the drill server: check where it may listen, get its TLS material, and hand the app to uvicorn.

uvicorn's access log is off (a token in a mistyped URL must not reach a log file), its ``Server`` header is
off, open streams get five seconds when it stops, and its limits come from :class:`~drills.server.config.Limits`: ``limit_concurrency`` (503 beyond it,
SSE streams included), ``backlog``, and keep-alive timeouts.
"""

from __future__ import annotations

from pathlib import Path

import uvicorn

from drills.errors import EnvironmentProblem
from drills.server.app import create_app
from drills.server.config import ServerConfig, check_listen


def tls_files(config: ServerConfig) -> tuple[Path, Path] | None:
    """The certificate and key to serve with (made by the drills CA if asked), or None for plain HTTP."""
    if config.tls_cert is not None and config.tls_key is not None:
        for p in (config.tls_cert, config.tls_key):
            if not p.is_file():
                raise EnvironmentProblem(
                    f"TLS file {p} does not exist", hint="check --tls-cert and --tls-key"
                )
        return config.tls_cert, config.tls_key
    if config.tls_drills_ca:
        from drills.adapters.tls import server_certificate

        return server_certificate(config.host, clock=config.clock)
    return None


def uvicorn_config(config: ServerConfig) -> uvicorn.Config:
    """The uvicorn configuration for ``config`` (refuses beyond loopback without TLS)."""
    check_listen(config)
    tls = tls_files(config)
    return uvicorn.Config(
        create_app(config),
        host=config.host,
        port=config.port,
        ssl_certfile=None if tls is None else str(tls[0]),
        ssl_keyfile=None if tls is None else str(tls[1]),
        # httptools (a dependency), not pure-Python h11: writing each SSE frame to 200 streams is the server's
        # main work, and h11 cost a third of its CPU there (benchmarks/bench_server.py).
        http="httptools",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        limit_concurrency=config.limits.max_connections,
        backlog=config.limits.backlog,
        timeout_keep_alive=config.limits.keep_alive_seconds,
        # Live streams never end by themselves: on Ctrl-C, give them this long, then close them.
        timeout_graceful_shutdown=5,
        log_level="warning",
        lifespan="on",
    )


def serve(config: ServerConfig) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM and closes the streams)."""
    server = uvicorn.Server(uvicorn_config(config))
    try:
        server.run()
    except OSError as e:
        raise EnvironmentProblem(
            f"cannot listen on {config.host}:{config.port}: {e.strerror}",
            hint="is another server on that port? pick one with --listen 127.0.0.1:PORT",
        ) from e


__all__ = ["serve", "tls_files", "uvicorn_config"]
