"""Processes drills starts and supervises (the cluster's binaries, Prometheus, Alertmanager), read through psutil.

One place answers "is this process still ours, and still running?" for every part of drills that starts
long-lived processes, so the subtle cases are handled once:

- a reused PID is never taken for ours: callers keep the process' creation time and compare it;
- a zombie is not running once all its threads are gone: a Go binary's main thread turns zombie before its
  other threads exit, and those threads still hold the listening sockets until they have (``down`` promises
  closed ports, so it must wait for them).
"""

from __future__ import annotations

import psutil


def created_at(pid: int) -> float | None:
    """The process' creation time (seconds since the epoch), or None when there is no such process."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def argv0(pid: int) -> str | None:
    """The program the process runs (its first argument), or None when it cannot be read."""
    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return cmdline[0] if cmdline else None


def threads_left(pid: int) -> bool:
    """Whether threads other than the (exited) main one still run: until they have, sockets stay open."""
    try:
        return any(t.id != pid for t in psutil.Process(pid).threads())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def zombie(pid: int) -> bool:
    """The process has exited but was not reaped yet."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return False


def alive(pid: int, created: float | None = None) -> bool:
    """The process runs (a zombie whose threads are all gone does not), and is the one created at ``created``.

    A process we may not inspect counts as running: it exists, and it is not ours to declare dead.
    """
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 0.05:
            return False  # the PID now belongs to another process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return threads_left(pid)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return True
