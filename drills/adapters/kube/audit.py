"""Who changed what: the API server's audit log, tailed and indexed for the observer.

A watch event says *what* changed, never *who* changed it. The embedded cluster's API server writes an audit
log (``fixtures/cluster/audit-policy.yaml``: every write at Metadata level, plus ``get pods/log``), one JSON
event per line with the user, the user agent and the object. The observer joins the two: for a change it saw
on object X at time t, the writer is the latest successful write to X the audit log recorded at or before t.
Objects created with ``generateName`` have no name in the audit log (the request did not carry one), so
creates are also matched by namespace and time.

Attribution by user: drills' own identities (:mod:`drills.adapters.kube.identities`); the cluster's components
by their user agent (``kube-controller-manager/v1.37.2 ... /replicaset-controller``). The audit log never
carries object bodies (Metadata level), so no Secret value passes through here.
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.kube.identities import Identities, actor_kind_for
from drills.model.events import ActorKind

#: Old records are dropped this often (a sweep over every object: not on every read of the log).
PRUNE_EVERY = timedelta(seconds=10)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class AuditRecord:
    audit_id: str
    #: When the API server finished the request (``stageTimestamp`` of ResponseComplete): the change's time.
    at: datetime
    received: datetime
    verb: str
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    user: str
    groups: tuple[str, ...]
    user_agent: str
    code: int | None
    request_uri: str = ""

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    def actor_kind(self, identities: Identities | None) -> ActorKind:
        return actor_kind_for(self.user, self.user_agent, identities)

    @property
    def component(self) -> str | None:
        """The controller inside a shared component identity: ``.../kubernetes/<hash>/<controller>``."""
        _, sep, rest = self.user_agent.partition(" kubernetes/")
        if sep and "/" in rest:
            return rest.split("/", 1)[1].split(" ")[0] or None
        return None

    @property
    def actor(self) -> str:
        """A short name for the journal: our identities by name, components by what they are."""
        program = self.user_agent.split("/")[0] if self.user_agent else ""
        if self.user.startswith("drills:"):
            return self.user
        if self.component:
            return f"{program}/{self.component}"
        if program and program != self.user:
            return f"{self.user} ({program})"
        return self.user or program or "unknown"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AuditRecord | None:
        """One audit event (the ResponseComplete stage only), or None when it is not one we can use."""
        if data.get("stage") not in (None, "ResponseComplete"):
            return None
        ref = data.get("objectRef") or {}
        at = _time(data.get("stageTimestamp"))
        received = _time(data.get("requestReceivedTimestamp")) or at
        if at is None or received is None:
            return None
        user = data.get("user") or {}
        return cls(
            audit_id=str(data.get("auditID", "")),
            at=at,
            received=received,
            verb=str(data.get("verb", "")),
            resource=ref.get("resource"),
            subresource=ref.get("subresource"),
            namespace=ref.get("namespace"),
            name=ref.get("name"),
            user=str(user.get("username", "")),
            groups=tuple(user.get("groups") or ()),
            user_agent=str(data.get("userAgent", "")),
            code=(data.get("responseStatus") or {}).get("code"),
            request_uri=str(data.get("requestURI", "")),
        )


class AuditTail:
    """Reads the audit log's new complete lines; survives the API server reopening or rotating the file."""

    def __init__(self, path: Path, *, from_start: bool = False) -> None:
        self.path = Path(path)
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        if not from_start and self.path.exists():
            st = self.path.stat()
            self._offset, self._inode = st.st_size, st.st_ino
        self.unreadable = 0

    def poll(self) -> list[AuditRecord]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if self._inode is not None and (st.st_ino != self._inode or st.st_size < self._offset):
            # rotated or truncated: start the new file from its beginning
            self._offset, self._partial = 0, b""
        self._inode = st.st_ino
        if st.st_size <= self._offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read(st.st_size - self._offset)
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the rest
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                rec = AuditRecord.parse(json.loads(line))
            except (ValueError, TypeError, AttributeError):
                self.unreadable += 1
                continue
            if rec is not None:
                records.append(rec)
        return records


class AuditIndex:
    """Recent audit records by object, for the observer's join; thread-safe, bounded by age."""

    def __init__(self, *, keep: timedelta = timedelta(minutes=10)) -> None:
        self.keep = keep
        self._by_object: dict[tuple[str | None, str | None, str | None], deque[AuditRecord]] = defaultdict(
            deque
        )
        self._reads: deque[AuditRecord] = deque()
        self._lock = threading.Condition()
        self.latest: datetime | None = None
        self.count = 0
        self.polled_at: datetime | None = None
        self._pruned: datetime | None = None

    def add(self, records: Iterable[AuditRecord]) -> None:
        with self._lock:
            for rec in records:
                self.count += 1
                if self.latest is None or rec.at > self.latest:
                    self.latest = rec.at
                if rec.is_write:
                    self._by_object[(rec.resource, rec.namespace, rec.name)].append(rec)
                    if rec.name is not None and rec.verb == "create" and rec.subresource is None:
                        # generateName creates are looked up without a name as well
                        self._by_object[(rec.resource, rec.namespace, None)].append(rec)
                else:
                    self._reads.append(rec)
            if self.latest is not None and (self._pruned is None or self.latest - self._pruned > PRUNE_EVERY):
                self._prune()
                self._pruned = self.latest
            self._lock.notify_all()

    def _prune(self) -> None:
        if self.latest is None:
            return
        horizon = self.latest - self.keep
        for key in list(self._by_object):
            q = self._by_object[key]
            while q and q[0].at < horizon:
                q.popleft()
            if not q:
                del self._by_object[key]
        while self._reads and self._reads[0].at < horizon:
            self._reads.popleft()

    def writers(
        self,
        resource: str,
        namespace: str | None,
        name: str | None,
        *,
        at: datetime,
        window: timedelta = timedelta(seconds=10),
        verbs: frozenset[str] = WRITE_VERBS,
        subresources: frozenset[str | None] | None = None,
        exclude: set[str] | None = None,
    ) -> list[AuditRecord]:
        """The successful writes to an object that can explain a change seen at ``at``, oldest first: the
        API server received them before ``at`` (a request received later cannot have caused the change;
        one that *finished* a little after ``at`` can, the watch event outrunning the response), and not
        longer ago than ``window``."""
        with self._lock:
            found = [
                rec
                for rec in self._by_object.get((resource, namespace, name), ())
                if rec.ok
                and rec.verb in verbs
                and (subresources is None or rec.subresource in subresources)
                and not (exclude and rec.audit_id in exclude)
                and rec.received <= at
                and rec.at >= at - window
            ]
        return sorted(found, key=lambda rec: rec.received)

    def writer(self, resource: str, namespace: str | None, name: str | None, **kw: Any) -> AuditRecord | None:
        """The latest of :meth:`writers` (the observer, which consumes records in order, takes the oldest)."""
        found = self.writers(resource, namespace, name, **kw)
        return found[-1] if found else None

    def mark_polled(self, at: datetime) -> None:
        """The tail has read the log up to ``at`` (called after every read, new lines or not)."""
        with self._lock:
            self.polled_at = at
            self._lock.notify_all()

    def wait_polled_after(self, at: datetime, timeout: float) -> bool:
        """Block until the tail has read the log at a time after ``at`` (lines written by then are in)."""
        with self._lock:
            return self._lock.wait_for(
                lambda: self.polled_at is not None and self.polled_at >= at, timeout=timeout
            )

    def wait_for_more(self, seen: int, timeout: float) -> bool:
        """Block until more than ``seen`` records were added (the tail read new lines), or ``timeout``."""
        with self._lock:
            return self._lock.wait_for(lambda: self.count > seen, timeout=timeout)

    def reads_since(self, since: datetime) -> list[AuditRecord]:
        with self._lock:
            return [r for r in self._reads if r.at > since]


def audit_log_readable(path: Path | None) -> bool:
    return path is not None and path.exists() and os.access(path, os.R_OK)
