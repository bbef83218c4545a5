"""A served drill on the real embedded cluster: three responders, three processes, one server.

The game master starts a short bad-deploy drill through `drill serve` (uvicorn on 127.0.0.1, in this test's
process); an IC, a tech lead and a comms lead, each a separate `drill` process with their own DRILLS_TOKEN
and their own state directory (their "laptop"), post at the same moment while the fault runs. The tech lead
takes their own kubeconfig with `drill env` and rolls the release back with kubectl. Then: every event is
journaled once with the right actor, the scorecard names who did what, and the audit log names the tech lead
as the one who ran the rollback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from server_support import invite, running_server

from drills.adapters.clusters.binaries import kubectl_binary
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.store.journal import read_journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    CommsPosted,
    DrillEnded,
    EscalationNotified,
    HealthChanged,
    Note,
    Resolved,
    SeverityDeclared,
)
from drills.server.config import ServerConfig
from drills.server.service import StartDefaults
from drills.timing import SYSTEM_CLOCK

ROOT = Path(__file__).resolve().parents[1]
NOTES = 4  # notes each responder posts in the burst, on top of their own part


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ClusterHandle
) -> Iterator[tuple[str, PeopleStore]]:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    config = ServerConfig(
        people_file=tmp_path / "state" / "server" / "people.sqlite3",
        start=StartDefaults(backend="embedded", cluster=world.name),
    )
    store = PeopleStore(config.people_file)
    with running_server(config) as url:
        yield url, store
    store.close()


def short_bad_deploy(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "scenarios" / "bad-deploy-rollback.yaml").read_text(encoding="utf-8"))
    data["steady_state"]["healthy_for"] = "5s"
    data["time_budget"] = "3m"
    data["hints"] = [{**h, "after": f"{10 * (i + 1)}s"} for i, h in enumerate(data["hints"])]
    path = tmp_path / "short-bad-deploy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def responder(tmp_path: Path, name: str, url: str, token: str, script: str) -> subprocess.Popen[str]:
    """`bash -c script` as one person on their own machine: their token, their own state directory."""
    home = tmp_path / "laptops" / name
    home.mkdir(parents=True)
    drill_bin = Path(sys.executable).parent
    env = {
        "PATH": f"{drill_bin}{os.pathsep}{kubectl_binary().parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "DRILLS_STATE": str(home / "state"),
        "DRILLS_SERVER": url,
        "DRILLS_TOKEN": token,
    }
    go = tmp_path / "go"
    wait = f"while [ ! -e {go} ]; do sleep 0.02; done\n"
    return subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", wait + script],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(what: str, check: object, timeout: float = 90) -> None:
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if SYSTEM_CLOCK.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        SYSTEM_CLOCK.sleep(0.25)


def test_three_responders_in_three_processes_post_through_the_server(
    served: tuple[str, PeopleStore], tmp_path: Path
) -> None:
    url, store = served
    gm = invite(store, "gina", "gm")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {gm}"}, timeout=300) as http:
        played(http, store, url, tmp_path)


def played(http: httpx.Client, store: PeopleStore, url: str, tmp_path: Path) -> None:
    r = http.post("/api/drills", json={"scenario": str(short_bad_deploy(tmp_path)), "wrap_up_seconds": 2})
    assert r.status_code == 201, r.text
    drill_id = r.json()["drill_id"]
    journal = Path(os.environ["DRILLS_STATE"]) / "drills" / drill_id / "journal.jsonl"
    tokens = {
        p: invite(store, p, role, drill_id=drill_id)
        for p, role in [("ivy", "ic"), ("tara", "tech-lead"), ("cole", "comms-lead")]
    }
    (tmp_path / "status.txt").write_text(
        "[INCIDENT] P1 checkout errors after the v2.1.0 release. Investigating; next update in 15 minutes.\n"
    )
    burst = "".join(f'drill note "{{who}} burst {i}" &\n' for i in range(NOTES)) + "wait\n"
    procs = {
        "ivy": responder(
            tmp_path,
            "ivy",
            url,
            tokens["ivy"],
            burst.format(who="ivy")
            + "drill ack\ndrill declare P1\ndrill role ic ivy\n"
            + 'eval "$(drill env)"\n'
            + "kubectl logs -n production deployment/app --tail=20 --since=10m || true\n",
        ),
        "tara": responder(
            tmp_path,
            "tara",
            url,
            tokens["tara"],
            burst.format(who="tara")
            + 'eval "$(drill env)"\n'
            + "kubectl rollout undo deployment/app -n production\n"
            + 'drill mitigated "rolled back to the previous release"\n',
        ),
        "cole": responder(
            tmp_path,
            "cole",
            url,
            tokens["cole"],
            burst.format(who="cole")
            + f"drill comms initial_alert --file {tmp_path / 'status.txt'}\n"
            + "drill escalate engineering-lead\n"
            + 'eval "$(drill env)"\n'
            + "kubectl logs -n production deployment/app --tail=5 || true\n",
        ),
    }
    (tmp_path / "go").touch()
    for name, p in procs.items():
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, f"{name}:\n{out}"
    # the observer cannot act, even with the drill running
    watcher = invite(store, "otto", "observer", drill_id=drill_id)
    r = httpx.post(
        f"{url}/api/drills/{drill_id}/actions/ack", headers={"Authorization": f"Bearer {watcher}"}, json={}
    )
    assert r.status_code == 403

    def healthy_again() -> bool:
        events = read_journal(journal).events
        return any(isinstance(e, HealthChanged) and e.healthy for e in events)

    wait_for("the service to be healthy after the rollback", healthy_again)
    ivy = responder(
        tmp_path, "ivy-2", url, tokens["ivy"], 'drill resolve --root-cause "v2.1.0 crashes on start"\n'
    )
    out, _ = ivy.communicate(timeout=60)
    assert ivy.returncode == 0, out
    wait_for(
        "the drill to end", lambda: any(isinstance(e, DrillEnded) for e in read_journal(journal).events), 120
    )

    events = read_journal(journal).events
    notes = [e for e in events if isinstance(e, Note) and " burst " in e.text]
    assert sorted((e.actor, e.text) for e in notes) == sorted(
        (who, f"{who} burst {i}") for who in ("ivy", "tara", "cole") for i in range(NOTES)
    )
    assert [(e.actor) for e in events if isinstance(e, Acknowledged)] == ["ivy"]
    assert [(e.actor, e.severity.value) for e in events if isinstance(e, SeverityDeclared)] == [("ivy", "P1")]
    assert [e.actor for e in events if isinstance(e, CommsPosted)] == ["cole"]
    assert [e.actor for e in events if isinstance(e, EscalationNotified)] == ["cole"]
    assert [e.actor for e in events if isinstance(e, Resolved)] == ["ivy"]
    assert len({e.id for e in events}) == len(events)

    actions = [(e.actor, e.kind, e.object) for e in events if isinstance(e, ActionObserved)]
    rollbacks = [a for a in actions if a[1] is ActionKind.ROLLBACK]
    assert rollbacks and {a[0] for a in rollbacks} == {"drills:responder:tara"}, actions
    readers = {a[0] for a in actions if a[1] is ActionKind.EVIDENCE_READ}
    assert {"drills:responder:ivy", "drills:responder:cole"} <= readers, actions
    card = http.get(f"/api/drills/{drill_id}/scorecard").json()
    did = {p["person"]: [d["what"] for d in p["did"]] for p in card["people"]}
    assert "acknowledged the page" in did["ivy"] and "declared P1" in did["ivy"]
    assert "rollback Deployment/production/app" in did["tara"]
    assert any(w.startswith("evidence_read Pod/production/") for w in did["ivy"]), did
    assert "posted initial_alert" in " ".join(did["cole"])
    assert json.dumps(card).count("otto") == 0
