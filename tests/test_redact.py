"""The secret scanner: secrets people type (comms, notes, root causes) never reach a journal; evidence stays.

Issue #13 found Slack, GitHub and AWS tokens, JWTs, PEM keys and ``Authorization: Basic`` typed into comms
reaching postmortem.md and report.html. Each canary below is one of those shapes; the test writes it
through the journal writer, as ``drill comms`` / ``drill note`` / ``drill resolve`` do, and reads the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import DrillBuilder

from drills.adapters.store.journal import Journal, read_journal
from drills.engine.redact import REDACTED, redact, scrub, scrub_data, scrub_shapes
from drills.model.events import CommsPosted, DrillStarted, Note, Resolved, Source

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)

# (what a person typed, the part that must not reach the file)
CANARIES: list[tuple[str, str]] = [
    ("posted the bot token xoxb-2048132-7293847562-Zk9qLwPb3RtYuN8mXcVa1sDf", "Zk9qLwPb3RtYuN8mXcVa1sDf"),
    ("user token xoxp-1234567890-0987654321-abcdefABCDEF123456", "abcdefABCDEF123456"),
    (
        "webhook https://hooks.slack.com/services/T024BE7LD/B01ABCDEF9G/k3Yq8XwZ0p1Lm2Nn3Bb4Vv5C",
        "k3Yq8XwZ0p1Lm2Nn3Bb4Vv5C",
    ),
    ("GITHUB_TOKEN=ghp_R4nD0mT0k3nV4lu3F0rT3st1ng0123456789", "ghp_R4nD0mT0k3nV4lu3F0rT3st1ng0123456789"),
    ("oauth gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
    (
        "pat github_pat_11ABCDEFG0a1b2c3d4e5f6_g7h8i9j0k1l2m3n4o5p6q7r8s9t0",
        "11ABCDEFG0a1b2c3d4e5f6_g7h8i9j0k1l2m3n4o5p6q7r8s9t0",
    ),
    ("the deploy key is AKIAZ7EXAMPLE4QWERTY in us-east-1", "AKIAZ7EXAMPLE4QWERTY"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    ),
    (
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImFkbWluIjp0cnVlfQ."
        "Qm3kf9Vx2LpZr8TnW1yHs5GdJe7BcA0uXoNiMqRtY4E",
        "Qm3kf9Vx2LpZr8TnW1yHs5GdJe7BcA0uXoNiMqRtY4E",
    ),
    (
        f"the db key, do not share:\n{PEM}\nthanks",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    ),
    ("curl -H 'Authorization: Basic YWRtaW46c3VwZXJzZWNyZXQ=' http://shop", "YWRtaW46c3VwZXJzZWNyZXQ="),
    ("Authorization: Bearer sk.9f8e7d6c5b4a3210fedcba", "sk.9f8e7d6c5b4a3210fedcba"),
    ('PagerDuty: -H "Authorization: Token token=y_NbAkKc66ryYTWUXYEu"', "y_NbAkKc66ryYTWUXYEu"),
    ("routing_key=R02KX5Y3Q8WZ7J1M4N6P9T0V2B5C8D1F", "R02KX5Y3Q8WZ7J1M4N6P9T0V2B5C8D1F"),
    ("tried password=Sup3r-S3cret! on the replica", "Sup3r-S3cret!"),
    ('config has api_key: "4f9a2c7e1b8d3f60a5e2"', "4f9a2c7e1b8d3f60a5e2"),
    ("psql postgres://app:Pa55w0rdX@db-proxy:5432/shop", "Pa55w0rdX"),
    ("gitlab glpat-xY7zK2mN9pQ4rS6tU8vW", "glpat-xY7zK2mN9pQ4rS6tU8vW"),
    ("mysql -u root --password hunter2hunter2 -h db", "hunter2hunter2"),
]

ORDINARY = [
    "kubectl rollout undo deployment/shop -n production --to-revision=3",
    "kubectl get secret app-secrets -n production -o yaml",
    "kubectl set image deployment/shop shop=registry.local/shop:v2.1.0",
    "image app:v2.1.0 sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "trace 3fa85f64-5717-4562-b3fc-2c963f66afa6 event 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d",
    "commit 4e1243bd22c66e76c2ba9eddc1f91394e57f9f83 rolled back",
    "drill 20250304-090000-bad-deploy-rollback at 2025-03-04T09:12:30.123456+00:00",
    "the token was rotated by the secret-rotated fault; the secret is missing API_KEY",
    "Authorization header missing: 401 from the ingress",
    "password reset flow is down for 3% of users",
    "ghp and AKIA are prefixes we grep for",
    "the bearer of bad news: p99 latency 2.3s",
    "https://grafana.local:3000/d/abc?orgId=1 shows the spike",
    "--dry-run=client -o yaml | kubectl apply -f -",
]


def _started(b: DrillBuilder) -> DrillStarted:
    started = b.events[0]
    assert isinstance(started, DrillStarted)
    return started


@pytest.mark.parametrize(("typed", "secret"), CANARIES, ids=[c[1][:12] for c in CANARIES])
def test_each_secret_shape_is_scrubbed(typed: str, secret: str) -> None:
    out = scrub(typed)
    assert secret not in out
    assert REDACTED in out
    assert scrub(out) == out  # idempotent: a report scrubbing a scrubbed journal changes nothing


def test_labels_and_surrounding_text_are_kept() -> None:
    assert scrub("tried password=Sup3r-S3cret! on the replica") == f"tried password={REDACTED} on the replica"
    assert scrub(f"key:\n{PEM}\nthanks") == f"key:\n{REDACTED}\nthanks"
    assert (
        scrub("psql postgres://app:Pa55w0rdX@db-proxy/shop")
        == f"psql postgres://app:{REDACTED}@db-proxy/shop"
    )


def test_a_pem_block_cut_short_is_scrubbed_to_the_end() -> None:
    cut = PEM.split("-----END")[0]
    assert scrub(f"pasted:\n{cut}") == f"pasted:\n{REDACTED}"


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_drill_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_known_values_and_data_are_scrubbed_too() -> None:
    assert scrub("key q9-q9-q9-q9 here", ["q9-q9-q9-q9"]) == f"key {REDACTED} here"
    assert scrub_data({"a": ["xoxb-2048132-7293847562-Zk9qLwPb3RtYuN8m"], "n": 3}) == {
        "a": [REDACTED],
        "n": 3,
    }
    assert scrub_shapes("token=abcdefgh") == f"token={REDACTED}"
    assert redact("token=abcdefgh", []) == f"token={REDACTED}"  # the old name still works


def test_canaries_typed_into_comms_notes_and_root_causes_never_reach_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    b = DrillBuilder()
    journal = Journal.create(path, _started(b), env={})
    at = b.start
    for i, (typed, _secret) in enumerate(CANARIES):
        journal.append(
            CommsPosted(at=at, source=Source.HUMAN, actor="alice", template="status_update", text=typed)
        )
        journal.append(Note(at=at, source=Source.HUMAN, actor="alice", text=f"note {i}: {typed}"))
    journal.append(Resolved(at=at, source=Source.HUMAN, actor="alice", root_cause=CANARIES[0][0]))
    raw = path.read_text(encoding="utf-8")
    for typed, secret in CANARIES:
        assert secret not in raw, typed
    read = read_journal(path)
    assert not read.problems
    assert sum(1 for e in read.events if isinstance(e, Note) and REDACTED in e.text) == len(CANARIES)


def test_ordinary_text_reaches_the_journal_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    b = DrillBuilder()
    journal = Journal.create(path, _started(b), env={})
    for text in ORDINARY:
        journal.append(Note(at=b.start, source=Source.HUMAN, actor="alice", text=text))
    notes = [e.text for e in read_journal(path).events if isinstance(e, Note)]
    assert notes == ORDINARY


def test_a_revert_failure_written_to_the_ledger_is_scrubbed_but_its_undo_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drills.adapters.faults.ledger import Ledger, read_ledger

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    led = Ledger.for_drill("d-redact")
    old_value = "the-old-secret-value-to-restore"
    entry = led.plan(
        fault_kind="secret-rotated",
        target="Secret/production/app-secrets",
        kubeconfig="/nowhere/kubeconfig",
        context=None,
        ops=[{"op": "none", "why": f"restore {old_value}"}],
    )
    led.revert_failed(
        entry, "403 for request with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    )
    raw = led.path.read_text(encoding="utf-8")
    assert "eyJzdWIiOiJ4In0" not in raw
    (e,) = read_ledger(led.path).pending()
    assert e.failures == [f"403 for request with Authorization: Bearer {REDACTED}"]
    assert old_value in raw  # the undo operations are not scrubbed: the revert must put back what was there
