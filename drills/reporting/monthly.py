"""The seed's Monthly Reporting template (incident-response-framework.md:413-443), from the drills on record.

Real incidents and drills are reported in separate sections, each following the template: counts per
severity, MTTD/MTTA/MTTM/MTTR (mean as the seed asks, plus p50 and p90, because one long incident moves a mean
a lot), top categories, action items completed and still open. A drill never inflates the incident numbers.

Durations are active time (the same as wall time when nothing was paused: real incidents are never paused).
Percentiles interpolate linearly between the closest ranks. Severity is the true severity.

Every average says how many values it is of (``n=``), and under :data:`SMALL_SAMPLE` values the median is
the headline (one slow drill of three moves a mean a long way). Action items that ask for the same
improvement in several drills are listed once, with the drills they came from. The HTML page
(:func:`render_monthly_html`) adds trend charts of the last 12 months by team and by category: inline SVG,
nothing fetched.
"""

from __future__ import annotations

import calendar
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from drills.errors import UsageError
from drills.model.durations import format_duration
from drills.model.events import Outcome
from drills.model.policy import Policy
from drills.model.scorecard import Scorecard
from drills.model.severity import Severity
from drills.model.summary import DrillSummary, TrackedAction
from drills.reporting import _templates
from drills.reporting.catalog import load_journal, load_report_dir, summary_from_scorecard
from drills.reporting.report import SCORECARD
from drills.reporting.view import improvement_of

METRICS = ("MTTD", "MTTA", "MTTM", "MTTR")
#: How many action items each list shows in the markdown (the JSON has all of them).
LIST_LIMIT = 20
#: Below this many values, the median is the headline rather than the mean.
SMALL_SAMPLE = 5
#: Months of history in the trend charts, the report's month included.
TREND_MONTHS = 12
NO_TEAM = "no team recorded"


class MetricStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int = Field(description="Drills or incidents with this metric measured.")
    mean_seconds: float | None = None
    p50_seconds: float | None = None
    p90_seconds: float | None = None


class Improvement(BaseModel):
    """One improvement asked for by one or more drills' action items (de-duplicated by its wording)."""

    model_config = ConfigDict(frozen=True)

    text: str
    owners: list[str]
    items: list[str] = Field(description="drill-id/A<n> of every action item asking for it.")
    due: str = Field(default="", description="The earliest due date among them.")

    @property
    def drills(self) -> int:
        return len({i.rsplit("/", 1)[0] for i in self.items})


class GroupTrend(BaseModel):
    """One team's or category's drills over the trend window: a count per month, and its figures."""

    model_config = ConfigDict(frozen=True)

    name: str
    counts: list[int] = Field(description="Drills per month, oldest first (TrendWindow.months).")
    total: int
    passed: int
    mtta: MetricStats
    mttr: MetricStats


class Trend(BaseModel):
    model_config = ConfigDict(frozen=True)

    months: list[str] = Field(description="YYYY-MM, oldest first, ending with the report's month.")
    by_team: list[GroupTrend]
    by_category: list[GroupTrend]
    mtta: list[MetricStats] = Field(description="MTTA of the month's drills, one per month.")
    mttr: list[MetricStats]


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
    median_score: float | None = None
    # Plain dataclasses, taken as they are (no validation): a month can hold tens of thousands of items.
    actions_completed: list[TrackedAction]
    actions_open: list[TrackedAction]
    improvements_completed: list[Improvement] = Field(default_factory=list)
    improvements_open: list[Improvement] = Field(default_factory=list)
    not_steady: int = Field(
        default=0,
        description="Drills that never got going: the steady state did not hold before the fault, nothing "
        "was injected. Counted apart: not in the total, the scores or the times.",
    )


class MonthlyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    month: str
    incidents: MonthlySection
    drills: MonthlySection
    trend: Trend | None = None


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


def improvements(actions: Sequence[TrackedAction]) -> list[Improvement]:
    """Action items grouped by the improvement they ask for, in order of first appearance."""
    groups: dict[str, list[TrackedAction]] = {}
    for a in actions:
        groups.setdefault(improvement_of(a.text).casefold(), []).append(a)
    out = []
    for group in groups.values():
        owners = list(dict.fromkeys(a.owner for a in group if a.owner))
        dues = sorted(a.due for a in group if a.due)
        out.append(
            Improvement(
                text=improvement_of(group[0].text),
                owners=owners,
                items=[f"{a.drill_id}/{a.id}" for a in group],
                due=dues[0] if dues else "",
            )
        )
    return out


def _practised(summaries: Iterable[DrillSummary]) -> list[DrillSummary]:
    """The drills that had a fault to respond to (a steady state not met before the fault had none)."""
    return [s for s in summaries if s.outcome != Outcome.NOT_STEADY.value]


def _section(kind: str, every: Sequence[DrillSummary]) -> MonthlySection:
    summaries = _practised(every)
    by_sev = Counter(s.true_severity for s in summaries)
    categories = Counter(s.category for s in summaries)
    top = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    # Each item's status read once: with 10,000 drills of a month that is tens of thousands of items, and
    # reading it four times (two lists, two groupings) was most of the roll-up (benchmarks/bench_history.py).
    completed: list[TrackedAction] = []
    still_open: list[TrackedAction] = []
    for s in summaries:
        for a in s.actions:
            (completed if a.done else still_open).append(a)
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
        median_score=percentile(sorted(s.score for s in summaries), 0.5) if summaries else None,
        actions_completed=completed,
        actions_open=still_open,
        improvements_completed=improvements(completed),
        improvements_open=improvements(still_open),
        not_steady=len(every) - len(summaries),
    )


def _months_back(month_start: datetime, count: int) -> list[tuple[datetime, datetime]]:
    out = []
    y, m = month_start.year, month_start.month
    for _ in range(count):
        start = datetime(y, m, 1, tzinfo=UTC)
        out.append((start, parse_month(f"{y:04d}-{m:02d}")[1]))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def _group_trend(
    name: str, summaries: Sequence[DrillSummary], windows: Sequence[tuple[datetime, datetime]]
) -> GroupTrend:
    counts = [sum(1 for s in summaries if s.started is not None and a <= s.started < b) for a, b in windows]
    return GroupTrend(
        name=name,
        counts=counts,
        total=len(summaries),
        passed=sum(s.passed for s in summaries),
        mtta=_stats(s.tta for s in summaries),
        mttr=_stats(s.ttr for s in summaries),
    )


def trend(summaries: Sequence[DrillSummary], month: str, months: int = TREND_MONTHS) -> Trend:
    """The drills of the ``months`` months ending with ``month``, by team and by category."""
    start, _ = parse_month(month)
    windows = _months_back(start, months)
    lo, hi = windows[0][0], windows[-1][1]
    drills = [s for s in summaries if s.is_drill and s.started is not None and lo <= s.started < hi]
    by_team: dict[str, list[DrillSummary]] = {}
    by_category: dict[str, list[DrillSummary]] = {}
    for s in drills:
        by_team.setdefault(s.team or NO_TEAM, []).append(s)
        by_category.setdefault(s.category, []).append(s)

    def ranked(groups: dict[str, list[DrillSummary]]) -> list[GroupTrend]:
        names = sorted(groups, key=lambda n: (-len(groups[n]), n))
        return [_group_trend(n, groups[n], windows) for n in names]

    def in_window(a: datetime, b: datetime) -> list[DrillSummary]:
        return [s for s in drills if s.started is not None and a <= s.started < b]

    return Trend(
        months=[f"{a:%Y-%m}" for a, _ in windows],
        by_team=ranked(by_team),
        by_category=ranked(by_category),
        mtta=[_stats(s.tta for s in in_window(a, b)) for a, b in windows],
        mttr=[_stats(s.ttr for s in in_window(a, b)) for a, b in windows],
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


def report_window(month: str, months: int = TREND_MONTHS) -> tuple[datetime, datetime]:
    """[since, until) of the drills a month's report reads: its trend window, the month itself last."""
    start, end = parse_month(month)
    return _months_back(start, months)[0][0], end


def monthly_report(
    sources: Iterable[Path | Scorecard | DrillSummary], month: str, *, policy: Policy | None = None
) -> MonthlyReport:
    """Roll up one calendar month (UTC) of drills and incidents.

    ``sources`` may mix report directories (or their scorecard.json: the fast path), journals (scored now),
    scorecards and summaries already read (:func:`drills.reporting.catalog.scan`).
    """
    start, end = parse_month(month)
    every = [_summary(source, policy) for source in sources]
    in_month = [s for s in every if s.started is not None and start <= s.started < end]
    in_month.sort(key=lambda s: (s.started or start, s.drill_id))
    return MonthlyReport(
        month=f"{start:%Y-%m}",
        incidents=_section("incidents", [s for s in in_month if not s.is_drill]),
        drills=_section("drills", [s for s in in_month if s.is_drill]),
        trend=trend(_practised(every), month),
    )


def _d(seconds: float | None) -> str:
    return format_duration(None if seconds is None else timedelta(seconds=round(seconds)))


def metric_text(stats: MetricStats) -> str:
    """The headline with its sample size: the mean from :data:`SMALL_SAMPLE` values on, the median below."""
    if stats.count == 0:
        return "not measured (n=0)"
    if stats.count < SMALL_SAMPLE:
        return (
            f"median {_d(stats.p50_seconds)} (n={stats.count}, too few for a mean to say much; "
            f"mean {_d(stats.mean_seconds)}, p90 {_d(stats.p90_seconds)})"
        )
    return f"mean {_d(stats.mean_seconds)} (n={stats.count}; p50 {_d(stats.p50_seconds)}, p90 {_d(stats.p90_seconds)})"


def headline(stats: MetricStats) -> str:
    """Short form for tables and charts: ``2m00s median, n=3`` / ``2m00s mean, n=7``."""
    if stats.count == 0:
        return "- (n=0)"
    if stats.count < SMALL_SAMPLE:
        return f"{_d(stats.p50_seconds)} median, n={stats.count}"
    return f"{_d(stats.mean_seconds)} mean, n={stats.count}"


def headline_seconds(stats: MetricStats) -> float | None:
    return stats.p50_seconds if stats.count < SMALL_SAMPLE else stats.mean_seconds


def score_text(section: MonthlySection) -> str:
    n = section.total
    if section.mean_score is None or section.median_score is None:
        return "no score (n=0)"
    if n < SMALL_SAMPLE:
        return f"median score {section.median_score:.1f}, n={n}"
    return f"mean score {section.mean_score:.1f}, n={n}"


def _month_name(month: str) -> str:
    start, _ = parse_month(month)
    return f"{calendar.month_name[start.month]} {start.year}"


def render_monthly_markdown(report: MonthlyReport) -> str:
    return _templates.render(
        "monthly.md.j2",
        report=report,
        month_name=_month_name(report.month),
        sections=[("Incident Report", report.incidents), ("Drill Report", report.drills)],
        metric_text=metric_text,
        score_text=score_text,
        limit=LIST_LIMIT,
    )


def render_monthly_html(report: MonthlyReport) -> str:
    """The monthly report as one self-contained page, with the trend charts (inline SVG, no scripts)."""
    from drills.reporting.trend_chart import count_chart, metric_chart

    tr = report.trend or trend([], report.month)
    charts = [
        ("Drills per month, by team", count_chart(tr.months, tr.by_team, "team")),
        ("Drills per month, by category", count_chart(tr.months, tr.by_category, "category")),
        ("MTTA and MTTR of drills per month", metric_chart(tr.months, {"MTTA": tr.mtta, "MTTR": tr.mttr})),
    ]
    return _templates.render(
        "monthly.html.j2",
        report=report,
        trend=tr,
        month_name=_month_name(report.month),
        sections=[("Incident Report", report.incidents), ("Drill Report", report.drills)],
        metric_text=metric_text,
        headline=headline,
        score_text=score_text,
        charts=[(title, Markup(svg)) for title, svg in charts],  # noqa: S704 - built with ElementTree
        small_sample=SMALL_SAMPLE,
    )
