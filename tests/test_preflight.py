"""Preflight pieces that need no cluster: the context allow-list sources and the time-budget watchdog."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from drills.adapters.kube.preflight import BudgetWatchdog, allowed_contexts
from drills.errors import UsageError
from drills.timing import FakeClock


def test_allow_list_defaults_env_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path))
    monkeypatch.delenv("DRILLS_ALLOWED_CONTEXTS", raising=False)
    assert allowed_contexts() == ("drills-*",)
    monkeypatch.setenv("DRILLS_ALLOWED_CONTEXTS", "kind-drills, staging-*")
    (tmp_path / "config.yaml").write_text("allowed_contexts: [lab-1]\n")
    assert allowed_contexts() == ("drills-*", "kind-drills", "staging-*", "lab-1")


def test_a_bad_config_is_a_usage_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path))
    (tmp_path / "config.yaml").write_text("allowed_contexts: lab-1\n")
    with pytest.raises(UsageError, match=r"config.yaml: allowed_contexts: must be a list"):
        allowed_contexts()


def test_budget_watchdog_fires_once_when_the_budget_runs_out() -> None:
    clock = FakeClock()
    fired = threading.Event()
    calls: list[float] = []

    def expire() -> None:
        calls.append(clock.monotonic())
        fired.set()

    dog = BudgetWatchdog(timedelta(minutes=30), expire, clock).start()
    clock.advance(timedelta(minutes=29))
    assert not fired.wait(1.5) and dog.remaining() == pytest.approx(60)
    clock.advance(timedelta(minutes=1, seconds=1))
    assert fired.wait(3)
    assert dog.expired.is_set() and len(calls) == 1
    dog.cancel()


def test_a_cancelled_watchdog_never_fires() -> None:
    clock = FakeClock()
    fired = threading.Event()
    dog = BudgetWatchdog(timedelta(seconds=5), fired.set, clock).start()
    dog.cancel()
    clock.advance(60)
    assert not fired.wait(1.5)
