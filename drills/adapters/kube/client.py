"""The one wrapper around the Kubernetes Python client.

Everything that talks to a cluster goes through :class:`Kube`; :meth:`Kube.call` is the only place that
catches the client's exceptions, and turns them into the ``DrillError`` tree with the cause chained and a
message that says what to do next. The client is synchronous, and so are we.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from drills.errors import ClusterError, ClusterUnreachable, Forbidden, NotFound


def _reason(e: ApiException) -> str:
    try:
        body = json.loads(e.body or "{}")
        return str(body.get("message") or e.reason)
    except (ValueError, TypeError):
        return str(e.reason)


class Kube:
    """API clients for one kubeconfig context, each with a short name (``core``, ``apps``...)."""

    def __init__(self, kubeconfig: Path | str, context: str | None = None, *, timeout: float = 15.0) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.context = context
        self.timeout = timeout
        cfg = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig), context=context, client_configuration=cfg
            )
        except (config.ConfigException, OSError, KeyError) as e:
            raise ClusterError(
                f"cannot load kubeconfig {self.kubeconfig} (context {context or 'current'}): {e}",
                hint="run `drill cluster up` or pass a kubeconfig that exists and names this context",
            ) from e
        cfg.retries = 2
        self.configuration = cfg
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.events = client.EventsV1Api(self.api)
        self.version = client.VersionApi(self.api)

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def call(self, what: str) -> Iterator[None]:
        """Run Kubernetes calls, translating failures. ``what`` says what we were doing, for the message."""
        try:
            yield
        except ApiException as e:
            reason = _reason(e)
            if e.status == 403:
                raise Forbidden(
                    f"{what}: forbidden: {reason}",
                    hint="this identity is not allowed to do that; check the drill's RBAC or use the right kubeconfig",
                ) from e
            if e.status == 404:
                raise NotFound(
                    f"{what}: not found: {reason}", hint="check the scenario's target names"
                ) from e
            if e.status == 0 or e.status is None:
                raise ClusterUnreachable(
                    f"{what}: the API server at {self.server} did not answer: {reason}",
                    hint="is the cluster up? `drill cluster status`",
                ) from e
            raise ClusterError(f"{what}: API server said {e.status}: {reason}") from e
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as e:
            raise ClusterUnreachable(
                f"{what}: the API server at {self.server} did not answer ({type(e).__name__}: {e})",
                hint="is the cluster up? `drill cluster status`; `drill cluster up` starts it",
            ) from e

    def ping(self) -> str:
        """The server's gitVersion; raises ClusterUnreachable when nothing answers."""
        with self.call("asking the API server for its version"):
            info: Any = self.version.get_code(_request_timeout=5)
        return str(info.git_version)

    def to_dict(self, obj: Any) -> dict[str, Any]:
        """A client model as the plain JSON dict the API server sends (camelCase keys)."""
        result: dict[str, Any] = self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return result
