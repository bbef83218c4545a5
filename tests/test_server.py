"""The drill server without a cluster: a synthetic served drill, Starlette's TestClient, and the refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import invite, synthetic_drill
from starlette.testclient import TestClient

from drills.adapters.store.journal import read_journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import Acknowledged
from drills.server.app import create_app
from drills.server.config import ServerConfig

DRILL = "20260106-090000-bad-deploy-rollback"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    synthetic_drill(tmp_path / "state", DRILL)
    return tmp_path / "state"


@pytest.fixture
def config(state: Path) -> ServerConfig:
    return ServerConfig(people_file=state / "server" / "people.sqlite3", hub_poll_seconds=0.01)


@pytest.fixture
def client(config: ServerConfig) -> Iterator[TestClient]:
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def store(config: ServerConfig) -> Iterator[PeopleStore]:
    s = PeopleStore(config.people_file)
    yield s
    s.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_responder_acks_and_the_journal_names_them(
    client: TestClient, store: PeopleStore, state: Path
) -> None:
    token = invite(store, "alice", "ic")
    r = client.post(f"/api/drills/{DRILL}/actions/ack", headers=bearer(token), json={})
    assert r.status_code == 201, r.text
    assert r.json()["event"]["actor"] == "alice"
    acks = [
        e
        for e in read_journal(state / "drills" / DRILL / "journal.jsonl").events
        if isinstance(e, Acknowledged)
    ]
    assert [a.actor for a in acks] == ["alice"]


def test_the_stream_sends_each_event_once_and_resumes_after_last_event_id(
    client: TestClient, store: PeopleStore
) -> None:
    gm = invite(store, "gina", "gm")
    for text in ("one", "two"):
        client.post(f"/api/drills/{DRILL}/actions/note", headers=bearer(gm), json={"text": text})
    client.post(f"/api/drills/{DRILL}/actions/abort", headers=bearer(gm), json={"reason": "test"})
    # the runner is not running here: end the drill by hand so the stream closes
    from drills.adapters.store.journal import Journal
    from drills.model.events import DrillEnded, Outcome, Source
    from drills.timing import SYSTEM_CLOCK

    j = Journal(Path(client.app.state.service.drill(DRILL).journal_path))  # type: ignore[attr-defined]
    j.append(DrillEnded(at=SYSTEM_CLOCK.now(), source=Source.SYSTEM, outcome=Outcome.ABORTED))
    with client.stream("GET", f"/api/drills/{DRILL}/stream", headers=bearer(gm)) as r:
        body = "".join(r.iter_text())
    ids = [line[4:] for line in body.splitlines() if line.startswith("id: ")]
    types = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    assert len(ids) == len(set(ids)) and types[:2] == ["drill.started", "fault.injected"]
    assert types.count("note") == 3 and types[-2:] == ["drill.ended", "end"]
    with client.stream(
        "GET", f"/api/drills/{DRILL}/stream", headers={**bearer(gm), "Last-Event-ID": ids[2]}
    ) as r:
        resumed = [line[4:] for line in "".join(r.iter_text()).splitlines() if line.startswith("id: ")]
    assert resumed == ids[3:]


@pytest.mark.parametrize(
    ("make", "status", "says"),
    [
        (lambda s: None, 401, "no token"),
        (lambda s: "drl_000000000000_nope", 401, "unknown token"),
        (lambda s: "not a token", 401, "unknown token"),
        (lambda s: invite(s, "old", "ic", hours=1, ago=2), 401, "expired"),
        (lambda s: invite(s, "watcher", "observer"), 403, "observer"),
    ],
    ids=["missing", "unknown", "malformed", "expired", "wrong-role"],
)
def test_tokens_are_refused(
    client: TestClient, store: PeopleStore, make: object, status: int, says: str
) -> None:
    token = make(store)  # type: ignore[operator]
    r = client.post(f"/api/drills/{DRILL}/actions/ack", headers=bearer(token) if token else {}, json={})
    assert r.status_code == status, r.text
    assert says in r.json()["error"]
