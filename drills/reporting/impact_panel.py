"""What the users see right now, for the responder: users affected, error rate and p99 latency, each with a
sparkline of the last minutes, from the journal's ``impact.sample`` events.

One pure function of the events and an explicit ``now`` (:func:`impact_now`) feeds ``drill impact`` (live
or ended drills, ``-o json|yaml|table``) and the dashboard's panel (:func:`impact_panel`), so both show the
same figures. It shows what a real team's dashboards would: the traffic, not the scenario's declared impact
nor the measured severity (those are what the drill measures the responder on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from drills.model.events import Event, FaultInjected, ImpactSampled

SPARK = "▁▂▃▄▅▆▇█"
#: How far back the sparklines reach, and in how many columns.
WINDOW = timedelta(minutes=5)
COLUMNS = 30


def sparkline(values: Sequence[float], top: float | None = None) -> str:
    """One character per value, ``▁`` for 0 up to ``█`` for ``top`` (default: the largest value)."""
    if not values:
        return ""
    high = top if top is not None else max(values)
    if high <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, round(max(0.0, v) / high * (len(SPARK) - 1)))] for v in values)


@dataclass(frozen=True)
class ImpactNow:
    """The latest sample in force at ``now`` and the sparklines that lead to it."""

    at: datetime
    since_t0: timedelta | None
    users_affected: int
    users_active: int
    users_affected_pct: float
    error_rate_pct: float
    p99_ms: float
    status: str
    features_down: tuple[str, ...]
    peak_users_affected_pct: float
    users_spark: str
    errors_spark: str
    p99_spark: str

    def data(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "since_t0_seconds": self.since_t0.total_seconds() if self.since_t0 is not None else None,
            "users_affected": self.users_affected,
            "users_active": self.users_active,
            "users_affected_pct": self.users_affected_pct,
            "error_rate_pct": self.error_rate_pct,
            "p99_ms": self.p99_ms,
            "status": self.status,
            "features_down": list(self.features_down),
            "peak_users_affected_pct": self.peak_users_affected_pct,
            "sparklines": {
                "users_affected": self.users_spark,
                "error_rate": self.errors_spark,
                "p99": self.p99_spark,
            },
        }


def _error_pct(s: ImpactSampled) -> float:
    return 100.0 * s.failed_per_second / s.requests_per_second if s.requests_per_second else 0.0


def impact_now(events: Sequence[Event], now: datetime) -> ImpactNow | None:
    """What users saw at ``now`` (None: the drill has no virtual users, or none sampled yet)."""
    samples = sorted((e for e in events if isinstance(e, ImpactSampled) and e.at <= now), key=lambda e: e.at)
    if not samples:
        return None
    t0 = min((e.at for e in events if isinstance(e, FaultInjected)), default=None)
    last = samples[-1]
    start = now - WINDOW
    step = WINDOW / COLUMNS
    users: list[float] = []
    errors: list[float] = []
    p99: list[float] = []
    i = 0
    current: ImpactSampled | None = None
    for c in range(COLUMNS):
        until = start + step * (c + 1)
        while i < len(samples) and samples[i].at <= until:
            current = samples[i]
            i += 1
        # a column before the first sample shows nothing measured
        users.append(current.users_affected_pct if current else 0.0)
        errors.append(_error_pct(current) if current else 0.0)
        p99.append(current.p99_ms if current else 0.0)
    return ImpactNow(
        at=last.at,
        since_t0=(now - t0) if t0 is not None else None,
        users_affected=last.users_affected,
        users_active=last.users_active,
        users_affected_pct=last.users_affected_pct,
        error_rate_pct=round(_error_pct(last), 2),
        p99_ms=last.p99_ms,
        status=last.status,
        features_down=tuple(last.features_down),
        peak_users_affected_pct=max(s.users_affected_pct for s in samples),
        users_spark=sparkline(users, 100.0),
        errors_spark=sparkline(errors, 100.0),
        p99_spark=sparkline(p99),
    )


STATUS_STYLE = {"ok": "bold green", "slow": "bold yellow", "degraded": "bold red", "down": "bold red"}


def rows(now: ImpactNow) -> list[tuple[str, str, str]]:
    """(figure, value, sparkline) rows, as ``drill impact`` and the dashboard print them."""
    return [
        (
            "users affected",
            f"{now.users_affected:,} of {now.users_active:,} ({now.users_affected_pct:g}%)",
            now.users_spark,
        ),
        ("error rate", f"{now.error_rate_pct:g}%", now.errors_spark),
        ("p99 latency", f"{now.p99_ms:,.0f} ms", now.p99_spark),
    ]


def impact_panel(events: Sequence[Event], now: datetime) -> RenderableType | None:
    """The dashboard's "Users" panel; None without virtual users."""
    current = impact_now(events, now)
    if current is None:
        return None
    table = Table(
        title=f"Users (last {WINDOW.total_seconds() / 60:g} min)",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        show_header=False,
    )
    table.add_column(no_wrap=True, min_width=14)
    table.add_column(justify="right", no_wrap=True, min_width=24)
    table.add_column(no_wrap=True, min_width=COLUMNS)
    for name, value, spark in rows(current):
        table.add_row(name, value, Text(spark, style="red" if name == "users affected" else "cyan"))
    status = Text.assemble(
        ("status ", "dim"),
        (current.status.upper(), STATUS_STYLE.get(current.status, "bold")),
        ("   features down ", "dim"),
        (", ".join(current.features_down) or "none", ""),
    )
    return Group(table, status)


__all__ = ["ImpactNow", "impact_now", "impact_panel", "rows", "sparkline"]
