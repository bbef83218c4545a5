"""drills.adapters.processes against real processes: liveness, zombies, reused PIDs."""

from __future__ import annotations

import subprocess
import sys

from drills.adapters import processes
from drills.timing import SYSTEM_CLOCK


def _wait_until(predicate: object, seconds: float = 5.0) -> bool:
    assert callable(predicate)
    deadline = SYSTEM_CLOCK.monotonic() + seconds
    while SYSTEM_CLOCK.monotonic() < deadline:
        if predicate():
            return True
        SYSTEM_CLOCK.sleep(0.01)
    return bool(predicate())


def test_a_running_child_is_alive_and_ours_by_creation_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        created = processes.created_at(child.pid)
        assert created is not None
        assert processes.alive(child.pid)
        assert processes.alive(child.pid, created)
        assert processes.argv0(child.pid) == sys.executable
        # Another creation time means the PID was reused by another process: not ours.
        assert not processes.alive(child.pid, created - 100)
    finally:
        child.kill()
        child.wait()


def test_an_exited_unreaped_child_is_a_zombie_and_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert _wait_until(lambda: processes.zombie(child.pid))
        assert not processes.threads_left(child.pid)
        assert not processes.alive(child.pid)
    finally:
        child.wait()
    assert not processes.zombie(child.pid)
    assert processes.created_at(child.pid) is None or not processes.alive(child.pid)


def test_a_zombie_leader_whose_threads_still_run_is_alive() -> None:
    # The main thread exits (pthread_exit through threading's machinery is not reachable from Python), so
    # emulate the Go case: a thread keeps running while the main thread has returned from main.
    code = (
        "import threading, time, os, sys\n"
        "t = threading.Thread(target=time.sleep, args=(3,))\n"
        "t.start()\n"
        "import ctypes\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert _wait_until(lambda: processes.zombie(child.pid))
        assert processes.threads_left(child.pid)
        assert processes.alive(child.pid)
        assert _wait_until(lambda: not processes.alive(child.pid), seconds=10)
    finally:
        child.kill()
        child.wait()


def test_no_such_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not processes.alive(child.pid)
    assert processes.argv0(child.pid) is None
    assert not processes.threads_left(child.pid)
