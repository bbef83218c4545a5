"""Crash safety with real signals: a `drill inject` process holding a fault gets SIGINT, SIGTERM or SIGKILL
(then `drill recover`), for each fault family; the cluster ends at baseline, the ledger has nothing pending
and the journal reads back (a torn last line at most, after SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from faults_support import baseline, wait_for_baseline

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.faults.ledger import read_ledger
from drills.adapters.kube.client import Kube
from drills.adapters.store.journal import TORN_LAST_LINE, read_journal
from drills.model.events import DrillEnded, FaultInjected, FaultReverted

pytestmark = pytest.mark.cluster

FAMILIES = {
    "workload": "bad-deploy-rollback",
    "pods": "pod-kill-self-healing",
    "nodes": "node-drain-stuck-uncordon",
    "config": "secret-rotated-restore",
    "namespace": "quarterly-dr-namespace-lost",
    "chaostoolkit": "chaostoolkit-replicas-lost",
}
DRILL = [sys.executable, "-c", "from drills.cli import main; main()"]


class Lines:
    """Collects a process's output lines in the background, so the test can wait for one."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.stream = stream
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._thread.join(10)  # the process is gone: its pipe reaches end of file
        self.stream.close()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(text in line for line in self.lines), timeout=timeout)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_signal_reverts_or_recover_does(
    family: str, sig: str, world: ClusterHandle, kube: Kube, tmp_path: Path
) -> None:
    env = dict(os.environ, DRILLS_STATE=str(tmp_path / "state"), PYTHONUNBUFFERED="1", COLUMNS="200")
    before = baseline(kube)
    proc = subprocess.Popen(
        [*DRILL, "inject", FAMILIES[family], "--cluster", world.name, "--for", "10m"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        assert out.wait_for("holding the fault", 120), f"no fault held:\n{out.lines}\n{err.lines}"
        if family != "pods":  # killed pods are replaced within a second or two: nothing stays different
            assert differences_exist(kube, before), "the fault changed nothing"
        proc.send_signal(getattr(signal, sig))
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        out.close()
        err.close()
    (drill_dir,) = (tmp_path / "state" / "drills").iterdir()
    if sig == "SIGKILL":
        assert code == -signal.SIGKILL
        assert read_ledger(drill_dir / "ledger.jsonl").pending(), "SIGKILL left nothing pending?"
        warn = subprocess.run(
            [*DRILL, "recover", "--list"], env=env, capture_output=True, text=True, timeout=60
        )
        assert f"pending: drill {drill_dir.name}" in warn.stdout
        rec = subprocess.run([*DRILL, "recover"], env=env, capture_output=True, text=True, timeout=300)
        assert rec.returncode == 0, rec.stdout + rec.stderr
        assert f"recovered: drill {drill_dir.name}" in rec.stdout
    else:
        assert code == (130 if sig == "SIGINT" else 128 + signal.SIGTERM), (out.lines, err.lines)
    assert read_ledger(drill_dir / "ledger.jsonl").pending() == []
    journal = read_journal(drill_dir / "journal.jsonl")
    assert all(p.message == TORN_LAST_LINE for p in journal.problems), journal.problems
    assert any(isinstance(e, FaultInjected) for e in journal.events)
    if sig != "SIGKILL":
        assert any(isinstance(e, FaultReverted) and e.ok for e in journal.events)
        (ended,) = [e for e in journal.events if isinstance(e, DrillEnded)]
        assert ended.outcome.value == "aborted"
        assert ("SIGINT" if sig == "SIGINT" else "terminated") in ended.reason
    diffs = wait_for_baseline(kube, before)
    assert diffs == [], "\n".join(diffs)


def differences_exist(kube: Kube, before: dict[str, object], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if baseline(kube) != before:
            return True
        time.sleep(0.5)
    return False
