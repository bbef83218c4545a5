"""The seed's Monthly Reporting template (incident-response-framework.md:413-443), from the drills on record.

Real incidents and drills are reported in separate sections, each following the template: counts per
severity, MTTD/MTTA/MTTM/MTTR (mean as the seed asks, plus p50 and p90, because one long incident moves a mean
a lot), top categories, action items completed and still open. A drill never inflates the incident numbers.

Durations are active time (the same as wall time when nothing was paused: real incidents are never paused).
Percentiles interpolate linearly between the closest ranks. Severity is the true severity.
"""

from __future__ import annotations

import calendar
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from drills.errors import UsageError
from drills.model.durations import format_duration
from drills.model.policy import Policy
from drills.model.scorecard import Scorecard
from drills.model.severity import Severity
from drills.reporting import _templates
from drills.reporting.catalog import (
    DrillSummary,
    TrackedAction,
    load_journal,
    load_report_dir,
    summary_from_scorecard,
)
from drills.reporting.report import SCORECARD

METRICS = ("MTTD", "MTTA", "MTTM", "MTTR")
#: How many action items each list shows in the markdown (the JSON has all of them).
LIST_LIMIT = 20


class MetricStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int = Field(description="Drills or incidents with this metric measured.")
    mean_seconds: float | None = None
    p50_seconds: float | None = None
    p90_seconds: float | None = None


class CategoryCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str
    count: int


class MonthlySection(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="'incidents' or 'drills'")
    total: int
    by_severity: dict[str, int]
    metrics: dict[str, MetricStats]
    top_categories: list[CategoryCount]
    passed: int = Field(description="Drills that passed (scorecard.passed).")
    mean_score: float | None = None
    # Plain dataclasses, taken as they are (no validation): a month can hold tens of thousands of items.
    actions_completed: list[TrackedAction]
    actions_open: list[TrackedAction]


class MonthlyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    month: str
    incidents: MonthlySection
    drills: MonthlySection


def parse_month(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` -> [first instant, first instant of the next month), UTC."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise UsageError(f"month {month!r} is not YYYY-MM", hint="for example --month 2025-03")
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); ``sorted_values`` must be non-empty."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _stats(values: Iterable[float | None]) -> MetricStats:
    present = sorted(v for v in values if v is not None)
    if not present:
        return MetricStats(count=0)
    return MetricStats(
        count=len(present),
        mean_seconds=sum(present) / len(present),
        p50_seconds=percentile(present, 0.5),
        p90_seconds=percentile(present, 0.9),
    )


def _section(kind: str, summaries: Sequence[DrillSummary]) -> MonthlySection:
    by_sev = Counter(s.true_severity for s in summaries)
    categories = Counter(s.category for s in summaries)
    top = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    actions = [a for s in summaries for a in s.actions]
    return MonthlySection(
        kind=kind,
        total=len(summaries),
        by_severity={sev.value: by_sev.get(sev.value, 0) for sev in Severity},
        metrics={
            "MTTD": _stats(s.ttd for s in summaries),
            "MTTA": _stats(s.tta for s in summaries),
            "MTTM": _stats(s.ttm for s in summaries),
            "MTTR": _stats(s.ttr for s in summaries),
        },
        top_categories=[CategoryCount(category=c, count=n) for c, n in top],
        passed=sum(s.passed for s in summaries),
        mean_score=sum(s.score for s in summaries) / len(summaries) if summaries else None,
        actions_completed=[a for a in actions if a.done],
        actions_open=[a for a in actions if not a.done],
    )


def _summary(source: Path | Scorecard | DrillSummary, policy: Policy | None) -> DrillSummary:
    if isinstance(source, DrillSummary):
        return source
    if isinstance(source, Scorecard):
        return summary_from_scorecard(source)
    if source.is_dir():
        return load_report_dir(source)
    if source.name == SCORECARD:
        return load_report_dir(source.parent)
    return load_journal(source, policy)


def monthly_report(
    sources: Iterable[Path | Scorecard | DrillSummary], month: str, *, policy: Policy | None = None
) -> MonthlyReport:
    """Roll up one calendar month (UTC) of drills and incidents.

    ``sources`` may mix report directories (or their scorecard.json: the fast path), journals (scored now),
    scorecards and summaries already read (:func:`drills.reporting.catalog.scan`).
    """
    start, end = parse_month(month)
    in_month = []
    for source in sources:
        s = _summary(source, policy)
        if s.started is not None and start <= s.started < end:
            in_month.append(s)
    in_month.sort(key=lambda s: (s.started or start, s.drill_id))
    return MonthlyReport(
        month=f"{start:%Y-%m}",
        incidents=_section("incidents", [s for s in in_month if not s.is_drill]),
        drills=_section("drills", [s for s in in_month if s.is_drill]),
    )


def _metric_text(stats: MetricStats) -> str:
    if stats.count == 0:
        return "not measured"

    def d(seconds: float | None) -> str:
        return format_duration(None if seconds is None else timedelta(seconds=round(seconds)))

    return (
        f"{d(stats.mean_seconds)} (p50 {d(stats.p50_seconds)}, p90 {d(stats.p90_seconds)}, n={stats.count})"
    )


def render_monthly_markdown(report: MonthlyReport) -> str:
    start, _ = parse_month(report.month)
    month_name = f"{calendar.month_name[start.month]} {start.year}"
    return _templates.render(
        "monthly.md.j2",
        report=report,
        month_name=month_name,
        sections=[("Incident Report", report.incidents), ("Drill Report", report.drills)],
        metric_text=_metric_text,
        limit=LIST_LIMIT,
    )
