"""The drill server without a cluster: a synthetic served drill, Starlette's TestClient, and the refusals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import invite, synthetic_drill
from starlette.testclient import TestClient

from drills.adapters.store.journal import read_journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import Acknowledged, Note
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


def test_a_revoked_token_is_refused(client: TestClient, store: PeopleStore) -> None:
    token = invite(store, "rita", "ic")
    assert client.get("/api/whoami", headers=bearer(token)).status_code == 200
    from drills.timing import SYSTEM_CLOCK

    assert [p.person for p in store.revoke("rita", SYSTEM_CLOCK.now())] == ["rita"]
    r = client.get("/api/whoami", headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.json()["error"]


def test_only_the_game_master_pauses_and_a_token_for_another_drill_is_refused(
    client: TestClient, store: PeopleStore
) -> None:
    ic = invite(store, "ian", "ic")
    r = client.post(f"/api/drills/{DRILL}/actions/pause", headers=bearer(ic), json={})
    assert r.status_code == 403 and "game master" in r.json()["error"]
    elsewhere = invite(store, "olga", "gm", drill_id="20250101-000000-other")
    r = client.post(f"/api/drills/{DRILL}/actions/pause", headers=bearer(elsewhere), json={})
    assert r.status_code == 403 and "invited to drill 20250101-000000-other" in r.json()["error"]
    gm = invite(store, "gina", "gm")
    assert client.post(f"/api/drills/{DRILL}/actions/pause", headers=bearer(gm), json={}).status_code == 201
    assert client.post(f"/api/drills/{DRILL}/actions/resume", headers=bearer(gm), json={}).status_code == 201
    r = client.post(f"/api/drills/{DRILL}/actions/reveal-hint", headers=bearer(gm), json={})
    assert r.status_code == 201 and r.json()["event"]["type"] == "hint.used"
    assert r.json()["event"]["actor"] == "gina"


def test_failed_token_checks_are_rate_limited(client: TestClient, store: PeopleStore) -> None:
    good = invite(store, "gus", "ic")
    for _ in range(10):
        assert client.get("/api/whoami", headers=bearer("drl_000000000000_guess")).status_code == 401
    r = client.get("/api/whoami", headers=bearer(good))
    assert r.status_code == 429 and "too many failed logins" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "ctype", "status", "says"),
    [
        (b"{not json", "application/json", 400, "malformed JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'{"text": 3}', "application/json", 422, "text"),
        (b'{"text": "x", "extra": 1}', "application/json", 422, "extra"),
        (b"\xff\xfe", "application/json", 400, "malformed JSON"),
        (b"text=hi", "text/plain", 415, "content type"),
        (b'{"text": "' + b"x" * 300_000 + b'"}', "application/json", 413, "too large"),
    ],
    ids=["not-json", "not-object", "wrong-type", "unknown-field", "not-utf8", "content-type", "oversize"],
)
def test_malformed_and_oversize_bodies_are_refused(
    client: TestClient, store: PeopleStore, state: Path, body: bytes, ctype: str, status: int, says: str
) -> None:
    token = invite(store, "nina", "ic")
    before = len(read_journal(state / "drills" / DRILL / "journal.jsonl").events)
    r = client.post(
        f"/api/drills/{DRILL}/actions/note", headers={**bearer(token), "content-type": ctype}, content=body
    )
    assert r.status_code == status, r.text
    assert says in r.json()["error"]
    assert len(read_journal(state / "drills" / DRILL / "journal.jsonl").events) == before


def test_an_oversize_chunked_body_is_cut_off(client: TestClient, store: PeopleStore) -> None:
    token = invite(store, "cora", "ic")

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    r = client.post(
        f"/api/drills/{DRILL}/actions/note",
        headers={**bearer(token), "content-type": "application/json"},
        content=chunks(),
    )
    assert r.status_code == 413


def test_form_posts_need_the_csrf_token(client: TestClient, store: PeopleStore, state: Path) -> None:
    token = invite(store, "fay", "comms-lead")
    r = client.post("/login", data={"token": token})
    assert r.status_code == 200 and r.json()["person"] == "fay"
    url = f"/api/drills/{DRILL}/actions/note"
    refused = client.post(url, data={"text": "no csrf"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert client.post(url, data={"text": "bad", "csrf_token": "0" * 64}).status_code == 403
    assert client.post(url, json={"text": "cookie json without the header"}).status_code == 403
    csrf = client.get("/api/whoami").json()["csrf_token"]
    ok = client.post(url, data={"text": "with csrf", "csrf_token": csrf})
    assert ok.status_code == 201, ok.text
    client.cookies.clear()
    # a form with a bearer token still needs it (a form is a browser's)
    assert client.post(url, headers=bearer(token), data={"text": "bearer form"}).status_code == 403
    notes = [
        e.text for e in read_journal(state / "drills" / DRILL / "journal.jsonl").events if isinstance(e, Note)
    ]
    assert notes == ["with csrf"]


def test_tokens_are_never_logged(
    client: TestClient, store: PeopleStore, caplog: pytest.LogCaptureFixture
) -> None:
    token = invite(store, "lou", "ic")
    caplog.set_level(logging.DEBUG)
    client.post(f"/api/drills/{DRILL}/actions/ack", headers=bearer(token), json={})
    client.get("/api/whoami", headers=bearer(token + "x"))
    client.post("/login", data={"token": token})
    assert caplog.records, "nothing was logged at DEBUG: the check would prove nothing"
    secret = token.split("_", 2)[2]
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_listening_beyond_loopback_needs_tls(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from drills.cli import cli
    from drills.errors import SafetyError
    from drills.server.config import check_listen

    for host in ("0.0.0.0", "192.168.1.10", "::", "drills.example.com"):
        with pytest.raises(SafetyError, match="without TLS"):
            check_listen(ServerConfig(host=host))
    check_listen(ServerConfig(host="0.0.0.0", tls_drills_ca=True))
    check_listen(ServerConfig(host="127.0.0.1"))
    check_listen(ServerConfig(host="::1"))
    result = CliRunner().invoke(
        cli, ["serve", "--listen", "0.0.0.0:8470"], env={"DRILLS_STATE": str(tmp_path)}
    )
    assert result.exit_code == 5 and "refusing to listen on 0.0.0.0 without TLS" in result.output
    result = CliRunner().invoke(cli, ["serve", "--tls-cert", str(tmp_path / "c.pem")])
    assert result.exit_code == 2 and "go together" in result.output


def test_local_commands_refuse_a_drill_a_server_serves(state: Path) -> None:
    import subprocess
    import sys

    from click.testing import CliRunner

    from drills.cli import cli
    from drills.runner import respond

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a live "server" pid
    try:
        marker = state / "drills" / DRILL / respond.SERVED_MARKER
        marker.write_text(f'{{"pid": {server.pid}, "listen": "127.0.0.1:8470"}}\n')
        result = CliRunner().invoke(
            cli, ["ack", "--drill", DRILL], env={"DRILLS_SERVER": "", "DRILLS_TOKEN": ""}
        )
        assert result.exit_code == 2 and "only writer" in result.output
        assert (
            CliRunner().invoke(cli, ["status", "--drill", DRILL, "-o", "json"]).exit_code == 0
        )  # reading is fine
    finally:
        server.kill()
        server.wait()
    result = CliRunner().invoke(cli, ["ack", "--drill", DRILL], env={"DRILLS_SERVER": "", "DRILLS_TOKEN": ""})
    assert result.exit_code == 0  # the server is gone: the drill host's commands work again


def test_starting_a_drill_is_the_game_masters(client: TestClient, store: PeopleStore) -> None:
    r = client.post(
        "/api/drills", headers=bearer(invite(store, "ian", "ic")), json={"scenario": "bad-deploy-rollback"}
    )
    assert r.status_code == 403
    listed = client.get("/api/drills", headers=bearer(invite(store, "oz", "observer"))).json()["drills"]
    assert [d["drill_id"] for d in listed] == [DRILL]
    r = client.post("/api/drills", headers=bearer(invite(store, "gm", "gm")), json={"scenario": 3})
    assert r.status_code == 422 and "scenario" in r.json()["error"]


def test_joining_says_your_role_and_kubeconfigs_are_for_responders(
    client: TestClient, store: PeopleStore
) -> None:
    tara = invite(store, "tara", "tech-lead")
    joined = client.post(f"/api/drills/{DRILL}/join", headers=bearer(tara), json={}).json()
    assert joined["person"] == "tara" and joined["role"] == "tech-lead" and not joined["game_master"]
    assert joined["kubeconfig"] is None and "no cluster identities" in joined["kubeconfig_problem"]
    r = client.get(f"/api/drills/{DRILL}/kubeconfig", headers=bearer(tara))
    assert r.status_code == 409  # this synthetic drill has no cluster to sign for
    r = client.get(f"/api/drills/{DRILL}/kubeconfig", headers=bearer(invite(store, "oz", "observer")))
    assert r.status_code == 403
