"""A drill's reports from its journal: golden files, and what each file must hold whatever the wording.

`DRILLS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_reports.py` rewrites tests/golden/; review the diff.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from builders import DrillBuilder, passing_drill
from report_journal import DRILL_ID, report_events, write_report_journal

from drills.engine.scoring import score
from drills.errors import DrillError, JournalError
from drills.model.scorecard import CheckStatus, Scorecard
from drills.reporting.chart import timeline_svg
from drills.reporting.report import render_html, render_junit, render_postmortem, write_reports
from drills.reporting.view import build_view, deadline_after

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DRILLS_UPDATE_GOLDEN") == "1"
FILES = ("postmortem.md", "scorecard.json", "report.html", "junit.xml")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    write_reports(write_report_journal(root), root / DRILL_ID)
    return root / DRILL_ID


@pytest.mark.parametrize("name", FILES)
def test_report_matches_golden_file(reports: Path, name: str) -> None:
    produced = (reports / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with DRILLS_UPDATE_GOLDEN=1 and review it"
    assert produced == golden.read_text(encoding="utf-8"), (
        f"{name} differs from {golden}; if intended, rerun with DRILLS_UPDATE_GOLDEN=1 and review the diff"
    )


def test_same_journal_same_bytes(reports: Path, tmp_path: Path) -> None:
    write_reports(write_report_journal(tmp_path), tmp_path / "again")
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (reports / name).read_bytes(), name


# ---- what the postmortem must hold ------------------------------------------------------------------


def test_postmortem_has_the_seeds_components(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    for heading in (
        "## Summary",
        "## Impact",
        "## Timeline",
        "## Metrics",
        "## Root cause analysis (5 Whys)",
        "## What went well",
        "## Action items",
    ):
        assert f"\n{heading}\n" in text
    assert "#incident-20250304-0900" in text
    assert "| Severity | declared P1, true severity P0 (declared less severe than it was) |" in text


def test_postmortem_timeline_is_relative_to_t0(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    assert "| +1m02s | 09:01:02 | alertmanager | Alert ShopDown fired |" in text
    assert "| +7m30s | 09:07:30 | alice | Acknowledged (via cli) |" in text
    assert "| +18m00s | 09:18:00 | alice | Resolved: v2.1.0 crashes on start; rolled back to v2.0.0 |" in text


def test_postmortem_five_whys_start_from_the_fault(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    assert (
        "1. Why was `shop` unhealthy? Because of a `bad-image` fault on deployment/drills-shop/shop" in text
    )
    assert "2. Why did that happen? [answer]" in text


def test_action_items_come_from_failed_checks_with_owner_and_due_date(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    scorecard = Scorecard.model_validate_json((reports / "scorecard.json").read_text())
    rows = re.findall(
        r"^\| (A\d+) \| (.+?) \| (\w+) \| (\d{4}-\d\d-\d\d) \| `([\w.]+)` \| open \|$", text, re.M
    )
    assert [r[4] for r in rows] == [c.id for c in scorecard.failed_checks]
    assert {r[2] for r in rows} == {"alice"}
    assert {r[3] for r in rows} == {"2025-03-18"}  # the drill ended 2025-03-04; due 14 days later
    mtta = next(r for r in rows if r[4] == "mtta.p0")
    assert "(target 5m00s, measured 6m28s)" in mtta[1]
    for row in rows:  # blameless: about the system and the process, never a person
        assert "alice" not in row[1]


def test_postmortem_metrics_show_wall_and_active_time(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    # Acknowledged 7m30s, healthy again at 13m, two minutes paused in between.
    assert "| TTM | impact reduced − acknowledged | 5m30s | 3m30s | 15m00s | ✅ pass |" in text
    assert "| TTA | acknowledged − first alert | 6m28s | 6m28s | 5m00s | ❌ fail |" in text


def test_hint_text_comes_from_the_scenario_when_the_event_has_none(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    assert "- Hint 1 (cost 5): Check what changed last: kubectl rollout history deployment/shop" in text


# ---- junit -----------------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_check(reports: Path) -> None:
    scorecard = Scorecard.model_validate_json((reports / "scorecard.json").read_text())
    suite = ET.parse(reports / "junit.xml").getroot()
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (c.family.value, c.id) for c in scorecard.checks
    ]
    assert int(suite.get("tests", "")) == len(scorecard.checks)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [c.id for c in scorecard.failed_checks]
    assert int(suite.get("failures", "")) == len(failed)
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert skipped == [
        c.id for c in scorecard.checks if c.status in (CheckStatus.NOT_APPLICABLE, CheckStatus.NOT_MEASURED)
    ]
    mtta = next(c for c in cases if c.get("name") == "mtta.p0").find("failure")
    assert mtta is not None
    assert (
        mtta.get("message")
        == "Acknowledge a P0 in under 5 minutes (ack - alert): target 5m00s, measured 6m28s"
    )
    assert "source: incident-response-framework.md:402" in (mtta.text or "")


# ---- html ------------------------------------------------------------------------------------------


class _Assets(HTMLParser):
    """Collects anything a browser would fetch or run."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.found.append(tag)
        for name, value in attrs:
            if name in ("src", "href") or (value and re.search(r"url\((?!#)", value)):
                self.found.append(f"{tag}[{name}={value}]")


def test_html_is_self_contained(reports: Path) -> None:
    html = (reports / "report.html").read_text()
    parser = _Assets()
    parser.feed(html)
    assert parser.found == []
    assert "@import" not in html and "http://" not in html and "https://" not in html
    assert "<svg" in html and "<style>" in html


def test_chart_draws_phases_deadlines_and_events(reports: Path) -> None:
    events = report_events()
    view = build_view(score(events), events)
    svg = ET.fromstring(timeline_svg(view))
    texts = [t.text for t in svg.iter("text")]
    for phase in ("DETECT", "TRIAGE", "MITIGATE", "RESOLVE"):
        assert phase in texts
    sla = {
        t.text.split("  ")[0]: t.get("fill")
        for t in svg.iter("text")
        if "sla-label" in (t.get("class") or "")
    }
    assert sla == {
        "MTTD ≤ 5m": "#1a7f37",
        "MTTA ≤ 5m": "#cf222e",
        "MTTM ≤ 15m": "#1a7f37",
        "MTTR ≤ 1h": "#1a7f37",
    }
    titles = [t.text or "" for t in svg.iter("title")]
    assert any(t.startswith("+7m30s  Acknowledged") for t in titles)
    assert any(t.startswith("Paused +9m30s to +11m30s") for t in titles)


def test_mtta_deadline_moves_right_by_the_pause_it_spans() -> None:
    events = report_events()
    view = build_view(score(events), events)
    marker = {m.metric: m for m in view.markers}
    t0 = view.t0
    assert marker["MTTA"].reference == t0 + timedelta(minutes=1, seconds=2)
    assert marker["MTTA"].deadline == t0 + timedelta(minutes=6, seconds=2)  # before the pause: not moved
    # MTTM: from the ack at 7m30s, 15 minutes of active time, the 2-minute pause at 9m30s excluded.
    assert marker["MTTM"].deadline == t0 + timedelta(minutes=24, seconds=30)


def test_deadline_after_pauses() -> None:
    start = report_events()[0].at
    m = timedelta(minutes=1)
    pauses = [(start + 2 * m, start + 3 * m), (start + 10 * m, None)]
    assert deadline_after(start, 5 * m, pauses) == start + 6 * m
    assert deadline_after(start, m, pauses) == start + m
    assert deadline_after(start + 2 * m, m, pauses) == start + 4 * m  # starts inside a pause
    assert deadline_after(start, 20 * m, pauses) is None  # runs into a pause never resumed


def test_html_escapes_what_people_typed() -> None:
    b = passing_drill("P1")
    b.at("7m").note("<script>alert(1)</script> & <b>bold</b>")
    html = render_html(score(b.events), b.events)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_markdown_table_cells_survive_pipes_and_newlines() -> None:
    b = passing_drill("P1")
    b.at("7m").note("kubectl get pods | grep shop\nthen rolled back")
    text = render_postmortem(score(b.events), b.events)
    assert "| alice | Note: kubectl get pods \\| grep shop then rolled back |" in text


# ---- shapes of drills ---------------------------------------------------------------------------------


def test_self_healed_drill_credits_the_system() -> None:
    b = DrillBuilder(severity="P2", mode="chaos-test")
    b.at("10s").unhealthy().at("20s").alert().at("40s").healthy().at("2m").end("self_healed")
    text = render_postmortem(score(b.events), b.events)
    assert "credited to the system (self-healing)" in text
    assert "from T0 until impact was reduced by the system itself (self-healing)." in text


def test_unfinished_drill_shows_phases_not_reached() -> None:
    b = DrillBuilder(severity="P1")
    b.at("10s").unhealthy().at("1m").alert().at("3m").ack().at("30m").end("timed_out")
    events = b.events
    sc = score(events)
    svg = timeline_svg(build_view(sc, events))
    assert svg.count(">not reached<") >= 2  # mitigate and resolve never happened
    text = render_postmortem(sc, events)
    assert "Impact was not reduced before the drill ended: users were affected for at least 30m00s." in text
    assert "Not resolved when the journal ends." in text


def test_detection_gap_is_called_out() -> None:
    b = DrillBuilder(severity="P1")
    b.at("10s").unhealthy().at("4m").detect("bob").at("5m").ack("bob").at("6m").healthy().at("8m").resolve()
    text = render_postmortem(score(b.events), b.events)
    assert "No alert fired: a detection gap. Acknowledgement is timed from the first human detection." in text
    assert "| TTD (human) | first human detection − T0 | 4m00s |" in text


def test_a_passing_drill_has_no_action_items() -> None:
    b = passing_drill("P0")
    sc = score(b.events)
    assert sc.failed_checks == []
    text = render_postmortem(sc, b.events)
    assert "| - | No check failed; no action items. |" in text
    junit = ET.fromstring(render_junit(sc).split("\n", 1)[1])
    assert junit.get("failures") == "0"


# ---- errors ------------------------------------------------------------------------------------------


def test_a_journal_without_drill_started_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    events = report_events()[1:]
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    with pytest.raises(JournalError, match=r"has no drill\.started event"):
        write_reports(path, tmp_path / "out")


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    journal = write_report_journal(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DrillError, match="cannot write reports to"):
        write_reports(journal, blocker / "out")


def test_scorecard_json_is_the_scorecard(reports: Path) -> None:
    data = json.loads((reports / "scorecard.json").read_text())
    assert data["drill_id"] == DRILL_ID
    assert Scorecard.model_validate(data) == score(report_events())
