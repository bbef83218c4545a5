"""SLO burn-rate alerts, as the SRE Workbook's "Alerting on SLOs" builds them, scaled to drill time.

Multiwindow, multi-burn-rate alerts for a 30-day SLO (the workbook's table):

| severity | budget spent | burn rate | long window | short window |
|----------|--------------|-----------|-------------|--------------|
| page     | 2 % in 1 h   | 14.4      | 1 h         | 5 m          |
| page     | 5 % in 6 h   | 6         | 6 h         | 30 m         |
| ticket   | 10 % in 3 d  | 1         | 3 d         | 6 h          |

An alert fires when the error ratio over *both* windows is at least ``burn rate x error budget``: the long
window makes it significant, the short one makes it stop soon after the errors do (the short window is 1/12
of the long one). The burn rate is relative to the SLO window: for another window than 30 days, the budget
spent in each long window stays the same share, so the rates scale by ``window / 30 d``.

A drill lasts minutes, not days, so every window is divided by the SLO's ``time_scale`` (default 60: the 1 h
window is 60 s). Burn rates stay as they are: what is scaled is time, not the error ratio. A TTD measured in
a drill therefore corresponds to ``time_scale`` times as long in production; :func:`rule_floor` gives both.

Pure: rules are returned as plain dicts (the Prometheus rule file's shape), the caller writes the YAML.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from drills.model.slo import Slo

AlertSeverity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnRateWindow:
    severity: AlertSeverity
    budget_share: float  # the share of the whole budget spent in `long` at this burn rate
    long: timedelta
    short: timedelta

    def burn_rate(self, slo_window: timedelta) -> float:
        return self.budget_share * slo_window / self.long


#: The workbook's table, in its own (production) time.
WORKBOOK: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("page", 0.02, timedelta(hours=1), timedelta(minutes=5)),
    BurnRateWindow("page", 0.05, timedelta(hours=6), timedelta(minutes=30)),
    BurnRateWindow("ticket", 0.10, timedelta(days=3), timedelta(hours=6)),
)

SLI_KINDS = ("availability", "latency")


def prom_duration(td: timedelta) -> str:
    """A Prometheus duration (``1m``, ``5s``, ``1h12m``), whole milliseconds at the finest."""
    ms = round(td.total_seconds() * 1000)
    if ms <= 0:
        raise ValueError("a Prometheus duration must be positive")
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out += f"{n}{unit}"
    return out


def _camel(service: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", service))


def alert_name(slo: Slo, sli: str, severity: AlertSeverity) -> str:
    """``AppAvailabilityBurnRatePage``: what a scenario's ``expected_alert`` names."""
    return f"{_camel(slo.service)}{sli.capitalize()}BurnRate{severity.capitalize()}"


def _windows(slo: Slo) -> list[tuple[BurnRateWindow, timedelta, timedelta]]:
    """Each workbook row with its windows in drill time."""
    return [(w, w.long / slo.time_scale, w.short / slo.time_scale) for w in WORKBOOK]


def _record(slo: Slo, sli: str, window: timedelta) -> str:
    return f"slo:sli_error:ratio_rate{prom_duration(window)}"


def _sli_expr(slo: Slo, sli: str, window: timedelta) -> str:
    w = prom_duration(window)
    sel = f'service="{slo.service}"'
    if sli == "availability":
        return (
            f'sum(rate(http_requests_total{{{sel},code=~"5.."}}[{w}]))\n'
            f"/\nsum(rate(http_requests_total{{{sel}}}[{w}]))"
        )
    assert slo.latency is not None
    le = f"{slo.latency.threshold.total_seconds():g}"
    return (
        f'1 - (\n  sum(rate(http_request_duration_seconds_bucket{{{sel},le="{le}"}}[{w}]))\n'
        f"  /\n  sum(rate(http_request_duration_seconds_count{{{sel}}}[{w}]))\n)"
    )


def _budget(slo: Slo, sli: str) -> float:
    if sli == "availability":
        return slo.error_budget
    assert slo.latency is not None
    return 1.0 - slo.latency.objective_pct / 100.0


def slis(slo: Slo) -> list[str]:
    return ["availability"] + (["latency"] if slo.latency else [])


def generate_rules(slo: Slo, *, evaluation_interval: timedelta = timedelta(seconds=2)) -> dict[str, Any]:
    """Recording rules for every window and the page/ticket alert pairs, as a Prometheus rule file."""
    groups: list[dict[str, Any]] = []
    for sli in slis(slo):
        windows = sorted({d for _, long, short in _windows(slo) for d in (long, short)})
        recording = [
            {
                "record": _record(slo, sli, w),
                "expr": _sli_expr(slo, sli, w),
                "labels": {"service": slo.service, "sli": sli},
            }
            for w in windows
        ]
        budget = _budget(slo, sli)
        alerts: list[dict[str, Any]] = []
        for severity in ("page", "ticket"):
            rows = [(w, long, short) for w, long, short in _windows(slo) if w.severity == severity]
            clauses = []
            for w, long, short in rows:
                factor = w.burn_rate(slo.window) * budget
                clauses.append(
                    f'(\n  {_record(slo, sli, long)}{{service="{slo.service}",sli="{sli}"}} > {factor:.6g}\n'
                    f'  and\n  {_record(slo, sli, short)}{{service="{slo.service}",sli="{sli}"}} > {factor:.6g}\n)'
                )
            alerts.append(
                {
                    "alert": alert_name(slo, sli, severity),
                    "expr": "\nor\n".join(clauses),
                    # The windows do the smoothing (the short one makes it stop soon after the errors do):
                    # the workbook's alerts fire as soon as both windows burn, with no `for:` of their own.
                    "for": "0s",
                    "labels": {
                        "severity": "critical" if severity == "page" else "warning",
                        "service": slo.service,
                        "sli": sli,
                        "slo_alert": severity,
                    },
                    "annotations": {
                        "summary": f"{slo.service} is burning its {sli} error budget too fast ({severity}).",
                        "description": (
                            f"SLO {slo.availability_pct if sli == 'availability' else slo.latency.objective_pct}% "  # type: ignore[union-attr]
                            f"{sli} over {prom_duration(slo.window)}; windows scaled 1/{slo.time_scale:g} for the "
                            "drill (SRE Workbook multiwindow, multi-burn-rate alert)."
                        ),
                        "time_scale": f"{slo.time_scale:g}",
                    },
                }
            )
        groups.append(
            {
                "name": f"slo-{slo.service}-{sli}",
                "interval": prom_duration(evaluation_interval),
                "rules": recording + alerts,
            }
        )
    return {"groups": groups}


@dataclass(frozen=True)
class RuleFloor:
    """The fastest an SLO alert can fire at a constant error ratio starting at T0."""

    alert: str
    error_ratio: float
    #: None: the ratio is under every burn-rate threshold of the alert; it never fires.
    drill_seconds: float | None
    production_seconds: float | None
    #: The seed's MTTD target (5 min) in production time, and whether the floor meets it.
    mttd_target_seconds: float
    meets_mttd: bool

    def describe(self) -> str:
        if self.drill_seconds is None or self.production_seconds is None:
            return (
                f"{self.alert} never fires at {self.error_ratio:.2%} errors: under every burn-rate threshold; "
                f"the seed asks for detection within {self.mttd_target_seconds / 60:g} min"
            )
        verdict = "meets" if self.meets_mttd else "cannot meet"
        return (
            f"{self.alert} fires at the earliest {self.drill_seconds:.0f}s into the drill at "
            f"{self.error_ratio:.2%} errors (= {self.production_seconds / 60:.1f} min in production): it {verdict} "
            f"the seed's MTTD < {self.mttd_target_seconds / 60:g} min"
        )


def rule_floor(
    slo: Slo,
    sli: str,
    severity: AlertSeverity,
    error_ratio: float,
    *,
    scrape_interval: timedelta = timedelta(seconds=2),
    evaluation_interval: timedelta = timedelta(seconds=2),
    mttd_target: timedelta = timedelta(minutes=5),
) -> RuleFloor:
    """When the alert fires at the earliest, for errors at ``error_ratio`` from T0 on and none before.

    A window of length W averages ``error_ratio x t / W`` at ``t`` seconds after T0 (t < W), so it crosses a
    threshold ``k`` at ``t = k x W / error_ratio`` (never when ``error_ratio < k``). Both windows of a row must
    cross; the alert takes its fastest row, plus one scrape and one evaluation for the data to be seen.
    """
    budget = _budget(slo, sli)
    best: float | None = None
    for w, long, short in _windows(slo):
        if w.severity != severity:
            continue
        k = w.burn_rate(slo.window) * budget
        if error_ratio <= k:
            continue
        t = max(k * long.total_seconds() / error_ratio, k * short.total_seconds() / error_ratio)
        best = t if best is None else min(best, t)
    lag = scrape_interval.total_seconds() + evaluation_interval.total_seconds()
    drill = None if best is None else best + lag
    production = None if best is None else best * slo.time_scale + lag
    target = mttd_target.total_seconds()
    return RuleFloor(
        alert=alert_name(slo, sli, severity),
        error_ratio=error_ratio,
        drill_seconds=drill,
        production_seconds=production,
        mttd_target_seconds=target,
        meets_mttd=production is not None and production < target and not math.isnan(production),
    )
