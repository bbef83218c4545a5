"""Each joined responder's own cluster identity: a certificate for ``drills:responder:<person>`` with the
same RBAC as the drill's responder, so the API server's audit log says which person ran which kubectl.

The runner makes the drill's identities (responder, bot, injector) when the drill starts; a person who joins
through the server gets one more, issued on first request and kept beside the others in the drill's
directory (``people/<person>.kubeconfig``); the runner's revoke at the end removes their bindings too.
"""

from __future__ import annotations

import threading

from drills.errors import ServerError
from drills.runner.respond import DrillRef

_lock = threading.Lock()


def person_kubeconfig(ref: DrillRef, person: str) -> str:
    """The text of ``person``'s kubeconfig in drill ``ref`` (issued and granted on first request)."""
    from drills.adapters.clusters import facade
    from drills.adapters.kube import identities
    from drills.adapters.kube.client import Kube

    with _lock:
        existing = identities.person_kubeconfig_path(ref.directory, person)
        if not existing.is_file():
            cluster = ref.meta.get("cluster")
            if not (ref.directory / identities.IDENTITIES_FILE).is_file() or not isinstance(cluster, str):
                raise ServerError(
                    f"drill {ref.drill_id} has no cluster identities to give you one",
                    hint="identities exist on clusters drills can sign certificates for (the embedded backend); "
                    "on a context cluster use your own kubeconfig",
                    status=409,
                )
            handle = facade.get(cluster)
            if handle.ca_cert is None or handle.ca_key is None:
                raise ServerError(f"cluster {cluster} has no CA drills can sign with", status=409)
            ids = identities.Identities.load(ref.directory)
            identities.issue_person(
                Kube(handle.kubeconfig),
                ids,
                person,
                ca_cert=handle.ca_cert,
                ca_key=handle.ca_key,
                server=handle.server,
            )
        return existing.read_text(encoding="utf-8")


__all__ = ["person_kubeconfig"]
