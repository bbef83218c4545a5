"""How long `drill` takes to start: `drill --help`, `drill list`, `drill score J`, next to `chaos --help`.

Each command runs N times (default 10) as a fresh process; the figures are the child's CPU time (user + sys,
from ``os.wait4``) and wall time, min and median, and the ratio of each drill command to `chaos --help`
(Chaos Toolkit's CLI, installed with the dev extras) measured in the same run, interleaved so that the
machine's load hits both alike. Goal (issue #11): `drill --help` within `chaos --help` in CPU time (ratio
<= 1.0).

    python benchmarks/bench_cli.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _journal(directory: Path) -> Path:
    from report_journal import write_report_journal

    return write_report_journal(directory)


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one run of ``cmd`` as a child process."""
    from drills.timing import SYSTEM_CLOCK

    start = SYSTEM_CLOCK.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = SYSTEM_CLOCK.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    bindir = Path(sys.executable).parent
    drill = str(bindir / "drill")
    chaos = shutil.which("chaos", path=str(bindir)) or shutil.which("chaos")
    if chaos is None:
        sys.exit("chaos (chaostoolkit) is not installed: pip install -e '.[dev]'")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = {
            **os.environ,
            "DRILLS_STATE": str(Path(tmp) / "state"),
            "DRILLS_REPORTS": str(Path(tmp) / "reports"),
        }
        journal = _journal(Path(tmp))
        commands = {
            "chaos --help": [chaos, "--help"],
            "drill --help": [drill, "--help"],
            "drill list": [drill, "list"],
            f"drill score {journal.name}": [drill, "score", str(journal)],
        }
        for cmd in commands.values():  # warm the page cache and .pyc files
            run_once(cmd, env)
        cpu: dict[str, list[float]] = {k: [] for k in commands}
        wall: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                c, w = run_once(cmd, env)
                cpu[name].append(c)
                wall[name].append(w)

    base_cpu = statistics.median(cpu["chaos --help"])
    base_wall = statistics.median(wall["chaos --help"])
    print(f"{args.runs} runs each, interleaved; CPU = user + sys of the child (os.wait4)")
    print(
        f"{'command':<26}{'cpu min':>9}{'cpu med':>9}{'wall min':>10}{'wall med':>10}"
        f"{'cpu / chaos':>13}{'wall / chaos':>14}"
    )
    for name in commands:
        c, w = cpu[name], wall[name]
        print(
            f"{name:<26}{min(c):>8.3f}s{statistics.median(c):>8.3f}s{min(w):>9.3f}s{statistics.median(w):>9.3f}s"
            f"{statistics.median(c) / base_cpu:>13.2f}{statistics.median(w) / base_wall:>14.2f}"
        )
    ratio = statistics.median(cpu["drill --help"]) / base_cpu
    verdict = "met" if ratio <= 1.0 else "NOT met"
    print(f"goal `drill --help` CPU <= `chaos --help` CPU (median): ratio {ratio:.2f}, {verdict}")


if __name__ == "__main__":
    main()
