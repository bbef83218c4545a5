"""One clock: outside ``drills/timing.py`` no module of drills reads the time or sleeps by itself.

Every "now", monotonic reading and sleep goes through :class:`drills.timing.Clock` (``SYSTEM_CLOCK`` in
production, a ``FakeClock`` in tests), and in ``model``/``engine`` a "now" is a parameter. This walks the AST
of every module, so an alias (``from time import sleep as nap``, ``import datetime as dt``) is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "drills"
ALLOWED = {PACKAGE / "timing.py"}

#: module -> attributes that read a clock or sleep.
FORBIDDEN: dict[str, set[str]] = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "sleep"},
    "datetime.datetime": {"now", "utcnow", "today"},
    "datetime.date": {"today"},
}


def clock_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every reference to a forbidden clock function in ``tree``."""
    names: dict[str, str] = {}  # a local name -> the module or class it stands for ("time", "datetime.date")
    direct: dict[str, str] = {}  # a local name -> the forbidden function it is ("time.sleep")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("time", "datetime"):
                    names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                local = alias.asname or alias.name
                qualified = f"{node.module}.{alias.name}"
                if qualified in FORBIDDEN:
                    names[local] = qualified
                elif alias.name in FORBIDDEN.get(node.module, set()):
                    direct[local] = qualified
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = _dotted(node.value, names)
            if base is not None and node.attr in FORBIDDEN.get(base, set()):
                found.append((node.lineno, f"{base}.{node.attr}"))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in direct:
            found.append((node.lineno, direct[node.id]))
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                if alias.name in FORBIDDEN.get(node.module, set()):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return sorted(set(found))


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """What ``node`` stands for among the clock's modules and classes (``datetime.datetime``), if anything."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return f"{base}.{node.attr}" if base == "datetime" else None
    return None


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p not in ALLOWED)


def test_no_module_reads_the_clock_or_sleeps_but_timing() -> None:
    offenders = []
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [
            f"{path.relative_to(PACKAGE.parent)}:{line}: {what}" for line, what in clock_reads(tree)
        ]
    assert not offenders, "use drills.timing (a Clock) instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time\ntime.time()", [(2, "time.time")]),
        ("import time as t\nx = t.monotonic", [(2, "time.monotonic")]),
        ("import time\ntime.perf_counter()", [(2, "time.perf_counter")]),
        ("from time import sleep\nsleep(1)", [(1, "from time import sleep"), (2, "time.sleep")]),
        ("from time import sleep as nap\nnap(1)", [(1, "from time import sleep"), (2, "time.sleep")]),
        ("from datetime import datetime\ndatetime.now()", [(2, "datetime.datetime.now")]),
        ("from datetime import datetime as dt\ndt.utcnow()", [(2, "datetime.datetime.utcnow")]),
        ("import datetime\ndatetime.datetime.now()", [(2, "datetime.datetime.now")]),
        ("import datetime as d\nd.date.today()", [(2, "datetime.date.today")]),
        ("from datetime import date\ndate.today()", [(2, "datetime.date.today")]),
        # not clock reads: the same names elsewhere, parsing, arithmetic
        ("from datetime import datetime, timedelta\ndatetime.fromisoformat('2026-01-06')", []),
        ("import time\ntime.timezone", []),
        ("clock.now()\nclock.sleep(1)\nself.time()", []),
        ("from drills.timing import SYSTEM_CLOCK\nSYSTEM_CLOCK.monotonic()", []),
    ],
)
def test_the_walker_sees_through_aliases(source: str, expected: list[tuple[int, str]]) -> None:
    assert clock_reads(ast.parse(source)) == expected
