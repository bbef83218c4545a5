"""A human drill, end to end, the way a person runs it: two terminals in tmux.

Terminal 1 runs ``drill run`` with its live dashboard. Terminal 2 is the responder: it types the responder
commands (``drill ack``, ``drill declare``...), takes its own identity with ``eval "$(drill env)"`` and fixes
the fault with real kubectl. The test reads the journal to know when to type (as a person would watch the
dashboard), captures the dashboard with ``tmux capture-pane`` at each phase and keeps the captures (text,
ANSI, HTML and a PNG screenshot through headless Chromium) under ``test-artifacts/human-drill/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from terminal_shots import ARTIFACTS, save_capture

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.files.scenarios import load_scenario
from drills.adapters.store.journal import read_journal
from drills.engine import comms
from drills.engine.timeline import build
from drills.model.events import (
    Acknowledged,
    ActionKind,
    ActionObserved,
    ActorKind,
    DrillEnded,
    Event,
    Outcome,
    PageSent,
    Source,
)
from drills.runner.bot import bot_message

TMUX = shutil.which("tmux")
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.tmux,
    pytest.mark.skipif(TMUX is None, reason="needs tmux"),
]
ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 120, 52
OUT = ARTIFACTS / "human-drill"


class Tmux:
    """One private tmux server (its own socket) with a runner window and a responder window."""

    def __init__(self, socket: str, env: dict[str, str]) -> None:
        assert TMUX is not None
        self.cmd = [TMUX, "-L", socket]
        self.env = env

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            [*self.cmd, *args], env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, f"tmux {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def start(self) -> None:
        self(
            "new-session",
            "-d",
            "-s",
            "drill",
            "-n",
            "runner",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "bash",
            "--norc",
        )
        self("set-option", "-g", "history-limit", "5000")
        self("new-window", "-d", "-t", "drill", "-n", "responder", "bash", "--norc")

    def type(self, window: str, line: str) -> None:
        self("send-keys", "-t", f"drill:{window}", "-l", line)
        self("send-keys", "-t", f"drill:{window}", "Enter")

    def keys(self, window: str, *keys: str) -> None:
        self("send-keys", "-t", f"drill:{window}", *keys)

    def capture(self, window: str, *, history: int = 0) -> str:
        """The window's screen (and ``history`` lines of its scrollback above it)."""
        extra = ["-S", f"-{history}"] if history else []
        return self("capture-pane", "-p", "-e", *extra, "-t", f"drill:{window}")

    def kill(self) -> None:
        subprocess.run([*self.cmd, "kill-server"], env=self.env, capture_output=True, timeout=30, check=False)


@pytest.fixture
def tmux(tmp_path: Path, world: ClusterHandle) -> Iterator[tuple[Tmux, Path, ClusterHandle]]:
    state = tmp_path / "state"
    venv_bin = Path(sys.executable).parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TMUX")},
        "DRILLS_STATE": str(state),
        "DRILLS_REPORTS": str(tmp_path / "reports"),
        "DRILLS_RESPONDER": "alice",
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "PS1": "$ ",
    }
    t = Tmux(f"drills-test-{os.getpid()}", env)
    t.start()
    try:
        yield t, state, world
    finally:
        t.kill()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def journal_events(state: Path) -> list[Event]:
    found = sorted((state / "drills").glob("*/journal.jsonl")) if (state / "drills").exists() else []
    return read_journal(found[0]).events if found else []


def test_human_drill_from_a_second_terminal(tmux: tuple[Tmux, Path, ClusterHandle], tmp_path: Path) -> None:
    t, state, cluster = tmux
    shots: dict[str, dict[str, Path]] = {}

    def shot(name: str) -> str:
        ansi = t.capture("runner")
        shots[name] = save_capture(ansi, OUT, name, width=WIDTH)
        return shots[name]["txt"].read_text(encoding="utf-8")

    # terminal 1: the drill, with its live dashboard
    t.type(
        "runner",
        f"drill run bad-deploy-rollback --cluster {cluster.name} --responder human --trainee alice --wrap-up 8s",
    )
    events = wait_for(
        "the page", lambda: (e := journal_events(state)) and any(isinstance(x, PageSent) for x in e) and e
    )
    started = events[0]
    # the dashboard redraws on its own tick: the page is in the journal a moment before it is on the screen
    wait_for(
        "the page on the dashboard",
        lambda: "phase" in (s := shot("1-paged")) and ("PAGE" in s or "Page sent" in s) and s,
    )

    # terminal 2: the responder
    t.type("responder", "drill ack")
    wait_for("the acknowledgement", lambda: any(isinstance(e, Acknowledged) for e in journal_events(state)))

    # the game master's Ctrl-C on the runner asks first; answering no keeps the drill going
    t.keys("runner", "C-c")
    prompt = wait_for("the abort question", lambda: "Abort the drill" in (s := shot("2-ctrl-c")) and s)
    assert "revert" in prompt
    t.type("runner", "n")

    t.type("responder", "drill role ic alice")
    t.type("responder", "drill declare P0")
    scenario = load_scenario(ROOT / "scenarios" / "bad-deploy-rollback.yaml")
    message = tmp_path / "initial_alert.txt"
    message.write_text(
        bot_message("initial_alert", journal_events(state), scenario, started.at, name="alice"),
        encoding="utf-8",
    )
    t.type("responder", f"drill comms initial_alert --file {message}")
    t.type("responder", "drill escalate engineering-leadership")
    t.type("responder", "drill comms statuspage_investigating > /dev/null")
    # the responder's own identity, then real kubectl: evidence first, then the rollback
    t.type(
        "responder",
        'eval "$(drill env)" && kubectl config view --minify -o jsonpath="{.users[0].name}"; echo',
    )
    t.type("responder", "kubectl get pods -n production")
    t.type("responder", "kubectl logs -n production deployment/app --tail=20 --since=10m")
    t.type("responder", 'drill note "saved the logs; rolling back to the previous revision"')
    t.type("responder", "kubectl rollout undo deployment/app -n production")
    rollback = wait_for(
        "the rollback in the journal",
        lambda: next(
            (
                e
                for e in journal_events(state)
                if isinstance(e, ActionObserved)
                and e.kind == ActionKind.ROLLBACK
                and e.actor_kind != ActorKind.DRILLS
            ),
            None,
        ),
        timeout=60,
    )
    shot("3-rolled-back")
    # a person watches health hold for the scenario's window before resolving
    wait_for(
        "a lasting recovery",
        lambda: (
            (tl := build(journal_events(state), now=datetime.now(UTC))).mitigated is not None
            and tl.healthy_now
        ),
        timeout=120,
    )
    shot("4-mitigated")
    t.type("responder", 'drill resolve --root-cause "v2.1.0 crashes on start; rolled back to v2.0.0"')
    resolution = tmp_path / "resolution.txt"
    resolution.write_text(
        bot_message("resolution", journal_events(state), scenario, started.at, name="alice"), encoding="utf-8"
    )
    t.type("responder", f"drill comms resolution --file {resolution}")
    ended = wait_for(
        "the end of the drill",
        lambda: next((e for e in journal_events(state) if isinstance(e, DrillEnded)), None),
        timeout=60,
    )
    wait_for("the scorecard", lambda: "report:" in (s := shot("5-scorecard")) and s, timeout=60)
    responder_screen = t.capture("responder")
    save_capture(responder_screen, OUT, "6-responder-terminal", width=WIDTH)

    # what the drill saw
    events = journal_events(state)
    assert ended.outcome == Outcome.RESOLVED, ended.reason
    ack = next(e for e in events if isinstance(e, Acknowledged))
    assert ack.source == Source.HUMAN and ack.actor == "alice"
    assert rollback.actor_kind == ActorKind.RESPONDER and "alice" in (rollback.actor or "")
    assert "drills:responder:alice" in responder_screen  # kubectl ran as the responder's own identity
    reads = [e for e in events if isinstance(e, ActionObserved) and e.kind == ActionKind.EVIDENCE_READ]
    assert any(e.actor_kind == ActorKind.RESPONDER for e in reads)
    clocks = build(events).clocks()
    assert clocks.mitigated_by == "human"
    assert comms.incident_id(started.at) in message.read_text(encoding="utf-8")
    # what the dashboard showed
    rolled = shots["3-rolled-back"]["txt"].read_text(encoding="utf-8")
    assert "rollback" in rolled and "alice" in rolled and "SLA budgets" in rolled
    # the verdict heads the scorecard, which is taller than the pane: read the scrollback too
    whole = t.capture("runner", history=400)
    assert "passed" in whole or "did not pass" in whole
    assert (OUT / "1-paged.html").exists()
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        assert shots["4-mitigated"].get("png") is not None, "Chromium did not produce the screenshot"
