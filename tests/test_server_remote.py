"""The responder commands through a real drill server (uvicorn on 127.0.0.1): the same output and exit codes
as on the drill host, the token's person as the actor; and errors from the server as DrillErrors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from server_support import invite, running_server, synthetic_drill

from drills.adapters.store.journal import read_journal
from drills.adapters.store.people import PeopleStore
from drills.cli import cli
from drills.model.events import Acknowledged, CommsPosted, Note, SeverityDeclared
from drills.runner import respond
from drills.server.config import ServerConfig

DRILL = "20260106-090000-bad-deploy-rollback"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("DRILLS_SERVER", raising=False)
    monkeypatch.delenv("DRILLS_TOKEN", raising=False)
    synthetic_drill(tmp_path / "state", DRILL)
    return tmp_path / "state"


@pytest.fixture
def server(state: Path) -> Iterator[tuple[str, PeopleStore]]:
    config = ServerConfig(people_file=state / "server" / "people.sqlite3", hub_poll_seconds=0.01)
    store = PeopleStore(config.people_file)
    with running_server(config) as url:
        yield url, store
    store.close()


def drill(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def test_remote_commands_print_what_local_ones_print_and_record_the_tokens_person(
    server: tuple[str, PeopleStore], state: Path
) -> None:
    url, store = server
    env = {"DRILLS_SERVER": url, "DRILLS_TOKEN": invite(store, "bob", "ic")}
    journal = state / "drills" / DRILL / "journal.jsonl"
    respond.set_active(DRILL)
    local = drill(["ack", "--as", "bob"])
    remote = drill(["ack"], env)
    assert remote == local
    assert drill(["declare", "p1"], env)[0] == 0
    assert drill(["note", "rolled", "back"], env)[0] == 0
    code, out = drill(["comms", "initial_alert", "--file", "-"], env, stdin="[placeholder] only")
    assert code == 0 and "field(s) to fix" in out
    events = read_journal(journal).events
    mine = [e for e in events if isinstance(e, Acknowledged | SeverityDeclared | Note | CommsPosted)]
    assert [e.actor for e in mine] == ["bob"] * 5
    assert (
        sum(isinstance(e, Acknowledged) for e in events) == 2
    )  # the local one and the remote one, once each
    code, out = drill(["status", "-o", "json"], env)
    assert code == 0 and DRILL in out
    assert drill(["status", "-o", "json"])[1] == out  # the same scorecard, read locally


def test_remote_refusals_keep_their_exit_codes(server: tuple[str, PeopleStore], state: Path) -> None:
    url, store = server
    watcher = {"DRILLS_SERVER": url, "DRILLS_TOKEN": invite(store, "wanda", "observer")}
    code, out = drill(["ack"], watcher)
    assert code == 5 and "may not respond" in out
    code, out = drill(["pause"], {"DRILLS_SERVER": url, "DRILLS_TOKEN": invite(store, "ivy", "ic")})
    assert code == 5 and "game master" in out
    code, out = drill(["ack"], {"DRILLS_SERVER": url, "DRILLS_TOKEN": "drl_000000000000_wrong"})
    assert code == 5 and "unknown token" in out
    code, out = drill(["ack"], {"DRILLS_SERVER": url})
    assert code == 2 and "DRILLS_TOKEN is not set" in out
    gm = {"DRILLS_SERVER": url, "DRILLS_TOKEN": invite(store, "gina", "gm")}
    assert drill(["pause", "coffee"], gm)[0] == 0
    code, out = drill(["pause"], gm)
    assert code == 2 and "already paused" in out  # the library's UsageError, exit 2 as locally
    code, out = drill(["ack"], {"DRILLS_SERVER": "http://127.0.0.1:9", "DRILLS_TOKEN": "drl_x"})
    assert code == 4 and "cannot reach the drill server" in out


def test_remote_observe_once_draws_the_dashboard(server: tuple[str, PeopleStore]) -> None:
    url, store = server
    code, out = drill(
        ["observe", "--once"], {"DRILLS_SERVER": url, "DRILLS_TOKEN": invite(store, "o", "observer")}
    )
    assert code == 0, out
    assert "game master view" in out


def test_tls_with_the_drills_ca(state: Path) -> None:
    config = ServerConfig(people_file=state / "server" / "people.sqlite3", tls_drills_ca=True)
    store = PeopleStore(config.people_file)
    try:
        with running_server(config) as url:
            assert url.startswith("https://")
            env = {"DRILLS_SERVER": url, "DRILLS_TOKEN": invite(store, "tess", "tech-lead")}
            code, out = drill(["ack"], env)
            assert code == 4 and "cannot reach the drill server" in out  # the drills CA is not trusted yet
            env["DRILLS_SERVER_CA"] = str(state / "server" / "tls" / "ca.crt")
            code, out = drill(["ack"], env)
            assert code == 0 and "as tess" in out
    finally:
        store.close()


def test_drill_serve_serves_until_terminated(state: Path) -> None:
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    from drills.timing import SYSTEM_CLOCK

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "drill"), "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = SYSTEM_CLOCK.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and SYSTEM_CLOCK.monotonic() < deadline, (
                    proc.stdout.read() if proc.stdout else ""
                )
                SYSTEM_CLOCK.sleep(0.1)
        assert r.json() == {"ok": True} and "server" not in r.headers
        assert r.headers["cache-control"] == "no-store"
        assert httpx.get(f"http://127.0.0.1:{port}/api/drills", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert f"drill server on http://127.0.0.1:{port}" in out
