"""`drill cluster build` (and `./dev demo`) written to a log: a line per binary and a heartbeat, never silence.

The build itself is a stand-in for build.sh that takes a few tenths of a second; the heartbeat interval is
shortened to match. On a terminal the spinner is unchanged (rich's Progress).
"""

from __future__ import annotations

import io
import re
import stat
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from rich.console import Console

from drills.adapters.clusters import binaries as b
from drills.errors import BuildError


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("DRILLS_BIN_DIR", raising=False)


def _slow_build(seconds: float, *, fail: str | None = None):  # type: ignore[no-untyped-def]
    def run(cmd: list[str], log: Path, env: Mapping[str, str]) -> int:
        threading.Event().wait(seconds)
        out_dir, name = Path(cmd[2]), cmd[3]
        log.write_text(f"built {name}\n")
        if name == fail:
            return 1
        binary = out_dir / name
        binary.write_text("#!/bin/sh\necho fake\n")
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
        return 0

    return run


def _log_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=200), buf


def test_a_build_in_a_log_prints_start_heartbeat_and_finish_per_binary() -> None:
    console, buf = _log_console()
    b.build(["etcd", "kwokctl"], progress=True, console=console, runner=_slow_build(0.4), heartbeat=0.1)
    lines = buf.getvalue().splitlines()
    assert all(re.match(r"^\[\d\d:\d\d:\d\d\] \([12]/2\) ", line) for line in lines), lines
    text = "\n".join(lines)
    assert re.search(r"\(1/2\) building etcd \(.*\), log .*etcd\.log: started", text)
    assert re.search(r"\(1/2\) still building etcd: \d+s so far", text)
    assert re.search(r"\(1/2\) etcd: finished after \d+s", text)
    assert re.search(r"\(2/2\) kwokctl: finished after \d+s", text)
    # started before finished, and etcd's lines all before kwokctl's
    assert text.index("etcd: finished") < text.index("building kwokctl")


def test_a_failed_build_says_so_before_the_error() -> None:
    console, buf = _log_console()
    with pytest.raises(BuildError):
        b.build(["etcd"], progress=True, console=console, runner=_slow_build(0.0, fail="etcd"), heartbeat=5)
    assert "(1/1) etcd: failed after" in buf.getvalue()
    assert "finished" not in buf.getvalue()


def test_no_heartbeat_thread_outlives_the_build() -> None:
    console, _ = _log_console()
    b.build(["etcd"], progress=True, console=console, runner=_slow_build(0.2), heartbeat=0.05)
    assert not [t for t in threading.enumerate() if t.name.startswith("build-heartbeat-")]


def test_quiet_prints_nothing() -> None:
    console, buf = _log_console()
    b.build(["etcd"], progress=False, console=console, runner=_slow_build(0.0))
    assert buf.getvalue() == ""
