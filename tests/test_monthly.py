"""The monthly report and the on-call handoff: roll-ups of the drills and incidents on record."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from drills.errors import UsageError
from drills.model.events import DrillStarted, Event, FaultInjected, Source
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Clocks, Scorecard
from drills.model.severity import Severity
from drills.reporting.catalog import parse_action_items, scan, summary_from_scorecard
from drills.reporting.handoff import build_handoff, render_handoff_markdown
from drills.reporting.monthly import monthly_report, parse_month, percentile, render_monthly_markdown
from drills.reporting.report import write_reports_for

MARCH = datetime(2025, 3, 1, tzinfo=UTC)


def _scorecard(
    drill_id: str,
    started: datetime,
    severity: Severity,
    category: str,
    *,
    is_drill: bool = True,
    minutes: tuple[float | None, float | None, float | None, float | None] = (1, 2, 5, 20),
    failed: tuple[str, ...] = (),
    score: float = 85.0,
) -> Scorecard:
    ttd, tta, ttm, ttr = (None if m is None else timedelta(minutes=m) for m in minutes)
    t0 = started + timedelta(seconds=5)
    checks = [
        Check(
            id=check_id,
            family=CheckFamily.ACKNOWLEDGEMENT,
            rule=f"rule of {check_id}",
            citation="incident-response-framework.md:402",
            target=timedelta(minutes=5),
            measured=timedelta(minutes=7),
            status=CheckStatus.FAIL,
        )
        for check_id in failed
    ]
    return Scorecard(
        drill_id=drill_id,
        scenario_id=f"scenario-{category}",
        scenario_title=f"{category} trouble",
        category=category,
        mode="training",
        is_drill=is_drill,
        started=started,
        true_severity=severity,
        clocks=Clocks(
            t0=t0,
            resolved=t0 + ttr if ttr is not None else None,
            ttd=ttd,
            tta=tta,
            ttm=ttm,
            ttr=ttr,
            ttd_active=ttd,
            tta_active=tta,
            ttm_active=ttm,
            ttr_active=ttr,
        ),
        checks=checks,
        outcome="resolved" if ttr is not None else "aborted",
        score=score,
        grade="B",
        passed=not failed,
    )


def _events(sc: Scorecard) -> list[Event]:
    assert sc.started is not None
    return [
        DrillStarted(
            id=f"start-{sc.drill_id}",
            at=sc.started,
            source=Source.SYSTEM,
            drill_id=sc.drill_id,
            scenario_id=sc.scenario_id,
            scenario_title=sc.scenario_title,
            category=sc.category,
            service="app",
            namespace="production",
            true_severity=sc.true_severity,
            is_drill=sc.is_drill,
        ),
        FaultInjected(
            id=f"fault-{sc.drill_id}",
            at=sc.started + timedelta(seconds=5),
            source=Source.SYSTEM,
            fault_kind="bad-deploy",
            target="deployment/production/app",
        ),
    ]


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == 5.5
    assert percentile(values, 0.9) == pytest.approx(9.1)
    assert percentile([42.0], 0.9) == 42.0
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert percentile(values, 0.9) == pytest.approx(deciles[8])


def test_month_must_be_yyyy_mm() -> None:
    assert parse_month("2025-12") == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    for bad in ("2025-13", "March", "2025-3", ""):
        with pytest.raises(UsageError, match="is not YYYY-MM"):
            parse_month(bad)


def _month() -> list[Scorecard]:
    return [
        _scorecard(
            "inc-1",
            MARCH + timedelta(days=2),
            Severity.P0,
            "deployment",
            is_drill=False,
            minutes=(2, 4, 10, 50),
        ),
        _scorecard(
            "inc-2",
            MARCH + timedelta(days=9),
            Severity.P1,
            "capacity",
            is_drill=False,
            minutes=(4, 8, 30, 90),
        ),
        _scorecard(
            "drill-1",
            MARCH + timedelta(days=4),
            Severity.P0,
            "node",
            minutes=(1, 3, 6, 12),
            failed=("mtta.p0",),
        ),
        _scorecard("drill-2", MARCH + timedelta(days=5), Severity.P2, "node", minutes=(1, 1, 4, 9)),
        _scorecard(
            "drill-3",
            MARCH + timedelta(days=30, hours=23),
            Severity.P0,
            "config",
            minutes=(3, None, None, None),
        ),
        # Outside March: February's last second and April's first.
        _scorecard("feb", MARCH - timedelta(seconds=1), Severity.P0, "deployment"),
        _scorecard("apr", datetime(2025, 4, 1, tzinfo=UTC), Severity.P0, "deployment", is_drill=False),
    ]


def test_monthly_keeps_drills_apart_from_real_incidents() -> None:
    report = monthly_report(_month(), "2025-03")
    assert report.incidents.total == 2
    assert report.incidents.by_severity == {"P0": 1, "P1": 1, "P2": 0, "P3": 0}
    assert report.drills.total == 3
    assert report.drills.by_severity == {"P0": 2, "P1": 0, "P2": 1, "P3": 0}
    assert [(c.category, c.count) for c in report.drills.top_categories] == [("node", 2), ("config", 1)]
    assert report.drills.passed == 2


def test_monthly_metrics_are_mean_p50_p90_over_measured_values() -> None:
    report = monthly_report(_month(), "2025-03")
    mttr = report.incidents.metrics["MTTR"]
    assert mttr.count == 2
    assert mttr.mean_seconds == pytest.approx(70 * 60)
    assert mttr.p50_seconds == pytest.approx(70 * 60)
    assert mttr.p90_seconds == pytest.approx((50 + 0.9 * 40) * 60)
    mtta = report.drills.metrics["MTTA"]  # drill-3 never acknowledged: not counted as zero
    assert mtta.count == 2
    assert mtta.mean_seconds == pytest.approx(statistics.mean([180, 60]))
    mttd = report.drills.metrics["MTTD"]
    assert mttd.count == 3
    assert mttd.p50_seconds == pytest.approx(statistics.median([60, 60, 180]))


def test_monthly_markdown_follows_the_seed_template() -> None:
    text = render_monthly_markdown(monthly_report(_month(), "2025-03"))
    incidents, drills = text.split("## Drill Report - March 2025")
    assert incidents.startswith("## Incident Report - March 2025\n")
    for part, noun, total in ((incidents, "Incidents", 2), (drills, "Drills", 3)):
        assert f"### Summary\n- Total {noun}: {total}\n  - P0: " in part
        assert "### Metrics\n- MTTD: " in part
        assert "### Top " in part and "Categories\n1. " in part
        assert "### Action Items Completed\n" in part
        assert "### Ongoing Improvements\n" in part
    # Two values: the median is the headline, and every figure says how many values it is of.
    assert "- MTTR: median 1h10m (n=2, too few for a mean to say much; mean 1h10m, p90 1h26m)" in incidents
    assert "- MTTA: median 2m00s (n=2, too few for a mean to say much; mean 2m00s, p90 2m48s)" in drills
    assert "1. node: 2 drills" in drills
    assert "2. config: 1 drill\n" in drills  # not "1 drills"
    assert "2. deployment: 1 incident\n" in incidents
    assert "- Passed: 2 of 3 drills (median score 85.0, n=3)" in drills


def test_an_empty_month_says_so() -> None:
    report = monthly_report(_month(), "2024-01")
    assert report.incidents.total == report.drills.total == 0
    text = render_monthly_markdown(report)
    assert "- MTTD: not measured (n=0)" in text
    assert "- None this month." in text


def test_action_items_are_read_back_from_the_edited_postmortem(tmp_path: Path) -> None:
    sc = _scorecard(
        "drill-9",
        MARCH + timedelta(days=1),
        Severity.P0,
        "node",
        failed=("mtta.p0", "oncall.ack_all", "comms.fields"),
    )
    paths = write_reports_for(sc, _events(sc), tmp_path / "drill-9")
    items = parse_action_items(paths.postmortem.read_text(), "drill-9")
    # Two checks failed by one late acknowledgement are one item.
    assert [(a.id, a.check_id, a.status) for a in items] == [
        ("A1", "mtta.p0, oncall.ack_all", "open"),
        ("A2", "comms.fields", "open"),
    ]
    assert items[0].due == "2025-03-16"  # 14 days after the drill's last event (2025-03-02)

    edited = paths.postmortem.read_text().replace(
        "| `mtta.p0`, `oncall.ack_all` | open |", "| `mtta.p0`, `oncall.ack_all` | done |"
    )
    paths.postmortem.write_text(edited)
    report = monthly_report([tmp_path / "drill-9"], "2025-03")
    assert [a.id for a in report.drills.actions_completed] == ["A1"]
    assert [a.id for a in report.drills.actions_open] == ["A2"]
    text = render_monthly_markdown(report)
    assert "### Action Items Completed\n- Make sure pages reach" in text


def test_action_item_text_with_a_pipe_survives_the_table() -> None:
    markdown = "| A1 | use a \\| b in the runbook | alice | 2025-03-16 | `comms.fields` | open |\n"
    [item] = parse_action_items(markdown, "d")
    assert item.text == "use a | b in the runbook"
    assert item.owner == "alice"


def test_scan_reports_a_broken_scorecard_and_keeps_the_rest(tmp_path: Path) -> None:
    good = _scorecard("drill-ok", MARCH + timedelta(days=1), Severity.P1, "node")
    write_reports_for(good, _events(good), tmp_path / "drill-ok")
    (tmp_path / "drill-bad").mkdir()
    (tmp_path / "drill-bad" / "scorecard.json").write_text("{not json")
    (tmp_path / "drill-partial").mkdir()
    (tmp_path / "drill-partial" / "scorecard.json").write_text(json.dumps({"drill_id": "x"}))
    (tmp_path / "no-scorecard").mkdir()
    catalog = scan(tmp_path)
    assert [s.drill_id for s in catalog.summaries] == ["drill-ok"]
    assert [(Path(p.file).parent.name, p.message.split(" (")[0]) for p in catalog.problems] == [
        ("drill-bad", "skipped: cannot read it"),
        ("drill-partial", "skipped: cannot read it"),
    ]
    assert "field 'checks' missing" in catalog.problems[1].message


def test_scan_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert scan(tmp_path / "nowhere").summaries == []


def test_handoff_lists_the_weeks_drills_and_every_open_action_item() -> None:
    records = [summary_from_scorecard(c) for c in _month()]
    handoff = build_handoff(
        records,
        since=MARCH + timedelta(days=3),
        until=MARCH + timedelta(days=10),
        today=date(2025, 3, 11),
    )
    assert [i.drill_id for i in handoff.incidents] == ["drill-1", "drill-2", "inc-2"]
    assert handoff.incidents[0].status == "resolved"
    assert handoff.incidents[0].incident_id == "#incident-20250305-0000"
    assert [(a.drill_id, a.id) for a in handoff.ongoing] == [("drill-1", "A1")]
    text = render_handoff_markdown(handoff)
    # Headed with its real period, not the day it was written.
    assert text.startswith("## On-Call Handoff - 2025-03-04 to 2025-03-11 UTC\n\n### Incidents This Week\n")
    assert (
        "- #incident-20250310-0000 capacity trouble: incident, P1; resolved in 1h30m. Status: resolved"
        in text
    )
    assert (
        "### Ongoing Issues\n- A1 (drill-1): Make sure pages reach the on-call engineer and are quick to "
        "acknowledge (paging path, notification settings, escalation policy). Owner: the on-call rotation\n"
    ) in text
    assert "### Upcoming\n- Scheduled maintenance: [Date/time]\n" in text
    assert (
        "- 2 drills and 1 real incident from 2025-03-04 00:00:00 UTC to 2025-03-11 00:00:00 UTC; "
        "handoff written 2025-03-11." in text
    )


def test_handoff_of_a_quiet_week() -> None:
    handoff = build_handoff([], since=MARCH, until=MARCH + timedelta(days=7), today=date(2025, 3, 8))
    text = render_handoff_markdown(handoff)
    assert "- None since 2025-03-01 00:00:00 UTC." in text
    assert "- 0 drills and 0 real incidents from" in text


def test_a_handoff_that_is_not_a_week_says_since_when() -> None:
    handoff = build_handoff(
        [], since=MARCH + timedelta(hours=9), until=MARCH + timedelta(days=3, hours=9), today=date(2025, 3, 4)
    )
    text = render_handoff_markdown(handoff)
    assert text.startswith(
        "## On-Call Handoff - 2025-03-01 09:00 to 2025-03-04 09:00 UTC\n\n### Incidents Since 2025-03-01\n"
    )
    assert "- No open action items." in text


# ---- de-duplication, sample sizes, trends, HTML ------------------------------------------------------------


def _late_ack(drill_id: str, day: int, **kw: object) -> Scorecard:
    return _scorecard(
        drill_id,
        MARCH + timedelta(days=day),
        Severity.P0,
        "deployment",
        failed=("mtta.p0", "escalation.p0_ack", "oncall.respond_p0_p1"),
        **kw,  # type: ignore[arg-type]
    )


def test_monthly_lists_an_improvement_once_with_the_drills_that_asked_for_it(tmp_path: Path) -> None:
    dirs = []
    for n in range(3):
        sc = _late_ack(f"drill-{n}", n + 1)
        write_reports_for(sc, _events(sc), tmp_path / sc.drill_id)
        dirs.append(tmp_path / sc.drill_id)
    report = monthly_report(dirs, "2025-03")
    assert len(report.drills.actions_open) == 3  # one item per drill (three checks each, one cause)
    [improvement] = report.drills.improvements_open
    assert improvement.items == ["drill-0/A1", "drill-1/A1", "drill-2/A1"]
    assert improvement.owners == ["the on-call rotation"]
    assert improvement.drills == 3
    text = render_monthly_markdown(report)
    ongoing = text.split("### Ongoing Improvements\n")[-1]
    assert ongoing.count("Make sure pages reach the on-call engineer") == 1
    assert "(3 items from 3 drills: drill-0/A1, drill-1/A1, drill-2/A1; owner the on-call rotation" in ongoing


def test_means_from_five_values_on_medians_below() -> None:
    cards = [_late_ack(f"d{n}", n + 1, minutes=(1, 2 + n, 5, 20)) for n in range(5)]
    report = monthly_report(cards, "2025-03")
    text = render_monthly_markdown(report)
    assert "- MTTA: mean 4m00s (n=5; p50 4m00s, p90 5m36s)" in text
    assert "(mean score 85.0, n=5)" in text
    fewer = render_monthly_markdown(monthly_report(cards[:4], "2025-03"))
    assert "- MTTA: median 3m30s (n=4, too few for a mean to say much; mean 3m30s, p90 4m42s)" in fewer


def _year() -> list[Scorecard]:
    """Drills over a year, by two teams (one of them with most) and three categories."""
    cards = []
    for month in range(1, 13):
        for n in range(month % 3 + 1):
            category = ("node", "deployment", "config")[n]
            cards.append(
                _scorecard(
                    f"2025{month:02d}-{n}",
                    datetime(2025, month, 3 + n, tzinfo=UTC),
                    Severity.P1,
                    category,
                    minutes=(1, 2 + n, 5, 10 + month),
                )
            )
    return cards


def test_trend_covers_twelve_months_by_team_and_category() -> None:
    from drills.reporting.catalog import summary_from_scorecard as summary

    summaries = [summary(c, team="payments" if c.category == "node" else "platform") for c in _year()]
    summaries.append(summary(_scorecard("old", datetime(2024, 12, 31, tzinfo=UTC), Severity.P1, "node")))
    report = monthly_report(summaries, "2025-12")
    trend = report.trend
    assert trend is not None
    assert trend.months[0] == "2025-01" and trend.months[-1] == "2025-12" and len(trend.months) == 12
    teams = {g.name: g for g in trend.by_team}
    assert teams["payments"].counts == [1] * 12  # every month has a node drill; December 2024 is outside
    assert teams["platform"].total == sum(month % 3 for month in range(1, 13))
    categories = {g.name: g.counts for g in trend.by_category}
    assert categories["config"] == [1 if m % 3 == 2 else 0 for m in range(1, 13)]
    assert [s.count for s in trend.mttr] == [m % 3 + 1 for m in range(1, 13)]


def test_monthly_html_has_inline_trend_charts_and_sample_sizes() -> None:
    from drills.reporting.catalog import summary_from_scorecard as summary
    from drills.reporting.monthly import render_monthly_html

    summaries = [summary(c, team="payments" if c.category == "node" else None) for c in _year()]
    html = render_monthly_html(monthly_report(summaries, "2025-12"))
    assert html.count("<svg ") == 3
    assert "<script" not in html and "http://" not in html and "https://" not in html and "<link" not in html
    assert 'data-group="payments"' in html and 'data-group="no team recorded"' in html
    assert 'data-metric="MTTR" data-month="2025-12" data-n="1"' in html
    assert "MTTR 12m00s median, n=3" in html or "median, n=" in html
    assert "1 drill" in html and "1 drills" not in html
    assert "hollow: median of fewer" in html


def test_team_is_read_back_from_the_postmortem(tmp_path: Path) -> None:
    sc = _scorecard("drill-t", MARCH + timedelta(days=1), Severity.P1, "node")
    events = _events(sc)
    events[0] = events[0].model_copy(update={"team": "payments"})
    write_reports_for(sc, events, tmp_path / "drill-t")
    [s] = scan(tmp_path).summaries
    assert s.team == "payments"
