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
from drills.model.events import ChaosToolkitEvent, CommsPosted, Event, FaultInjected, Source
from drills.model.scorecard import CheckStatus, Scorecard
from drills.reporting.chart import timeline_svg
from drills.reporting.report import (
    render_html,
    render_junit,
    render_postmortem,
    write_reports,
    write_reports_for,
)
from drills.reporting.view import build_view, deadline_after

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DRILLS_UPDATE_GOLDEN") == "1"
FILES = (
    "postmortem.md",
    "scorecard.json",
    "report.html",
    "junit.xml",
    "action-items.csv",
    "postmortem.confluence.xhtml",
)


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


def test_postmortem_five_whys_are_prefilled_with_what_the_drill_knows(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    whys = re.findall(r"^(\d)\. (Why .*)$", text, re.M)
    assert [n for n, _ in whys] == ["1", "2", "3", "4", "5"]
    assert whys[0][1].startswith(
        "Why was `shop` unhealthy? Because of a `bad-image` fault on deployment/drills-shop/shop"
    )
    # Why not caught sooner: the alert's own delay; then the late acknowledgement; then the rollback.
    assert "The alert `ShopDown` fired 1m02s after the fault (target 5m00s: met)" in whys[1][1]
    assert "the rule itself waits 1m00s" in whys[1][1]
    assert "acknowledged 6m28s after the first signal (target 5m00s: missed)" in whys[2][1]
    assert "after the rollback of deployment/drills-shop/shop at +12m00s" in whys[3][1]
    assert "[root cause:" in whys[4][1]
    assert "[answer]" not in text


def _action_rows(text: str) -> list[tuple[str, ...]]:
    return re.findall(r"^\| (A\d+) \| (.+?) \| ([^|]+) \| (\d{4}-\d\d-\d\d) \| (.+?) \| open \|$", text, re.M)


def test_action_items_are_one_per_cause_owned_by_roles_with_due_dates(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    scorecard = Scorecard.model_validate_json((reports / "scorecard.json").read_text())
    rows = _action_rows(text)
    covered = [c for r in rows for c in re.findall(r"`([\w.]+)`", r[4])]
    assert sorted(covered) == sorted(c.id for c in scorecard.failed_checks)  # every failed check, once
    # One late acknowledgement failed three checks: one item.
    ack = [r for r in rows if "mtta.p0" in r[4]]
    assert len(ack) == 1
    assert ack[0][4] == "`mtta.p0`, `escalation.p0_ack`, `oncall.respond_p0_p1`"
    assert ack[0][2] == "the on-call rotation"
    assert "(target 5m00s, measured 6m28s)" in ack[0][1]
    assert len(rows) == 4 < len(scorecard.failed_checks)
    assert {r[3] for r in rows} == {"2025-03-18"}  # the drill ended 2025-03-04; due 14 days later
    for row in rows:  # blameless: owned by a role or team, about the system; never a person
        assert row[2].startswith("the ")
        assert "alice" not in row[1] and "alice" not in row[2]


def test_action_items_never_name_a_person_even_when_a_check_detail_does() -> None:
    b = DrillBuilder(severity="P1", trainee="bob")
    b.at("10s").unhealthy().at("1m").alert().at("50m").ack("bob").at("55m").healthy().at("58m").resolve("bob")
    sc = score(b.events)
    view = build_view(sc, b.events)
    assert view.action_items
    for a in view.action_items:
        assert "bob" not in a.text and "bob" not in a.owner
    owners = {a.owner for a in view.action_items}
    assert owners <= {
        "the on-call rotation",
        "the incident commander rotation",
        "the communications lead role",
        "the owner of shop",
    }


def test_the_service_owner_is_the_team_when_the_drill_has_one() -> None:
    b = DrillBuilder(severity="P1", team="payments")
    b.at("10s").unhealthy().at("20m").alert().at("21m").ack().at("22m").healthy().at("25m").resolve()
    view = build_view(score(b.events), b.events)
    detection = [a for a in view.action_items if "mttd" in a.check_ids]
    assert [a.owner for a in detection] == ["the payments team (service owner)"]


def test_impact_gives_the_scenarios_declared_impact(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    impact = text.split("## Impact\n", 1)[1].split("\n## ", 1)[0]
    assert "- Users affected: 65% (service degraded)." in impact
    assert "- Features down or degraded: checkout, cart." in impact
    assert "- Revenue impact: critical; data-loss risk: none." in impact
    assert "- Users were affected for 13m00s" in impact


def test_impact_of_an_old_journal_without_it_says_so() -> None:
    b = passing_drill("P1")
    text = render_postmortem(score(b.events), b.events)
    assert "The scenario's declared impact is not in this journal" in text


def test_postmortem_gives_the_messages_posted_and_the_participants(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    messages = text.split("## Messages posted\n", 1)[1].split("\n## ", 1)[0]
    assert "### +8m40s Initial Alert (alice, slack:#incident-response)" in messages
    assert "Fields left to fill: war_room." in messages
    assert "```text\n🚨 INCIDENT ALERT - P1\nService: shop\n" in messages
    assert "Actions taken: rolled back deployment/shop to revision 4" in messages
    assert (
        "### +18m00s Resolution Notification (alice, journal)\n\n(The text of this message was not recorded.)"
        in messages
    )
    people = text.split("## Participants\n", 1)[1].split("\n## ", 1)[0]
    assert (
        "| alice | paged, on-call (acknowledged the page), incident commander, trainee | +1m02s |" in people
    )
    assert "| gm | game master | +9m30s |" in people


def test_a_message_with_backticks_keeps_its_code_block() -> None:
    b = passing_drill("P1")
    b.at("7m").add(
        CommsPosted, source=Source.HUMAN, actor="alice", template="status_update", text="ran ```rm```"
    )
    text = render_postmortem(score(b.events), b.events)
    assert "````text\nran ```rm```\n````" in text


def test_the_key_mitigating_action_is_named(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    assert "Key mitigating action: Rollback of deployment/drills-shop/shop (responder)" in text
    assert "kubectl rollout undo deployment/shop **(key mitigating action)** |" in text
    events = report_events()
    svg = ET.fromstring(timeline_svg(build_view(score(events), events)))
    key = [t.text for t in svg.iter("text") if "key-action" in (t.get("class") or "")]
    assert key == ["Rollback of deployment/drills-shop/shop"]


def test_findings_give_one_lesson_once(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    learned = text.split("## What we learned\n", 1)[1].split("\n## ", 1)[0]
    assert learned.count("the page may not have reached the responder quickly") == 1


def test_postmortem_metrics_show_wall_and_active_time(reports: Path) -> None:
    text = (reports / "postmortem.md").read_text()
    # Acknowledged 7m30s, healthy again at 13m, two minutes paused in between.
    assert "| MITIGATE | TTM | impact reduced − acknowledged | 5m30s | 3m30s | 15m00s | ✅ pass |" in text
    assert "| ACKNOWLEDGE | TTA | acknowledged − first alert | 6m28s | 6m28s | 5m00s | ❌ fail |" in text
    # The issue's two disagreements: TRIAGE from T0 like its card, RESOLVE is TTR.
    assert "| TRIAGE | Triage | severity and IC − T0 | 8m20s | 8m20s | 15m00s | ✅ pass |" in text
    assert "| RESOLVE | TTR | resolved − fault (T0) | 18m00s | 16m00s | 1h00m | ✅ pass |" in text


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
    for phase in ("DETECT", "ACKNOWLEDGE", "TRIAGE", "MITIGATE", "RESOLVE"):
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
    assert "| DETECT | TTD | first human detection − T0 (no alert fired) | 4m00s |" in text
    assert (
        "2. Why was it not caught sooner? No alert fired: a detection gap (a person noticed it +4m00s" in text
    )


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


# ---- one source for bars, cards and metrics ----------------------------------------------------------------


def _bars_and_cards(html: str) -> tuple[dict[str, str], dict[str, str]]:
    bars = dict(re.findall(r'<g class="phase" data-phase="(\w+)" data-seconds="(\d*)"', html))
    cards = dict(re.findall(r'class="card [\w-]+" data-phase="(\w+)" data-seconds="(\d*)"', html))
    return bars, cards


@pytest.mark.parametrize(
    "builder",
    [
        lambda: passing_drill("P0"),
        lambda: DrillBuilder(severity="P1").at("10s").unhealthy().at("1m").alert().at("30m").end("timed_out"),
        lambda: (
            DrillBuilder(severity="P2", mode="chaos-test")
            .at("10s")
            .unhealthy()
            .at("20s")
            .alert()
            .at("40s")
            .healthy()
            .at("2m")
            .end("self_healed")
        ),
        lambda: DrillBuilder(severity="P1").at("10s").unhealthy().at("5m").healthy().at("8m").resolve(),
    ],
    ids=["passing", "unfinished", "self-healed", "never-acknowledged"],
)
def test_chart_bars_and_cards_come_from_one_source(builder: object) -> None:
    b = builder()  # type: ignore[operator]
    sc = score(b.events)
    html = render_html(sc, b.events)
    bars, cards = _bars_and_cards(html)
    assert list(bars) == ["DETECT", "ACKNOWLEDGE", "TRIAGE", "MITIGATE", "RESOLVE"]
    assert bars == cards
    view = build_view(sc, b.events)
    for p in view.phases:
        assert bars[p.name] == ("" if p.seconds is None else str(p.seconds))


def test_phases_follow_the_engines_clocks(reports: Path) -> None:
    events = report_events()
    sc = score(events)
    phases = {p.name: p for p in build_view(sc, events).phases}
    c = sc.clocks
    assert phases["DETECT"].duration == c.ttd_active
    assert phases["ACKNOWLEDGE"].duration == c.tta_active
    assert phases["TRIAGE"].duration == c.ttt_active
    assert phases["MITIGATE"].duration == c.ttm_active
    assert phases["RESOLVE"].duration == c.ttr_active
    assert phases["RESOLVE"].start == c.t0 and phases["RESOLVE"].end == c.resolved
    assert phases["MITIGATE"].start == c.acknowledged


def test_without_acknowledgement_there_is_no_mitigation_phase() -> None:
    b = DrillBuilder(severity="P1")
    b.at("10s").unhealthy().at("1m").alert().at("5m").action().at("6m").healthy().at("8m").resolve()
    view = build_view(score(b.events), b.events)
    mitigate = view.phase("MITIGATE")
    ack = view.phase("ACKNOWLEDGE")
    assert ack.end is None and ack.text == "not acknowledged"
    if view.scorecard.clocks.ttm is None:  # the seed: MTTM = impact reduced - acknowledged
        assert mitigate.seconds is None
        assert mitigate.text in ("no acknowledgement", "self-healed", "not reached")


# ---- label layout -------------------------------------------------------------------------------------------


def test_label_layout_never_overlaps_or_leaves_the_chart() -> None:
    from drills.reporting.chart import LabelLayout

    layout = LabelLayout(300, [])
    placed = []
    for n in range(12):  # twelve labels at the same point near the right edge
        spot = layout.place(
            f"label {n}", 11, [(280, 20 + r * 14, side) for r in range(6) for side in ("start", "end")]
        )
        if spot is not None:
            placed.append(layout.box(f"label {n}", spot[0], spot[1], 11, spot[2]))
    assert len(placed) == 6  # one per row, all to the left: the right would be clipped
    for i, a in enumerate(placed):
        assert a[0] >= 0 and a[2] <= 300
        for b in placed[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_sla_labels_of_close_deadlines_take_separate_rows() -> None:
    events = report_events()
    svg = ET.fromstring(timeline_svg(build_view(score(events), events)))
    labels = [t for t in svg.iter("text") if "sla-label" in (t.get("class") or "")]
    rows: dict[str, list[float]] = {}
    for t in labels:
        rows.setdefault(t.get("y", ""), []).append(float(t.get("x", "0")))
    assert len(rows) >= 2  # MTTD at +5m and MTTA at +6m02s cannot share a row


# ---- exports ------------------------------------------------------------------------------------------------


def test_jira_csv_has_one_issue_per_action_item(reports: Path) -> None:
    import csv

    with (reports / "action-items.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    assert head == [
        "Summary",
        "Description",
        "Issue Type",
        "Priority",
        "Labels",
        "Labels",
        "Component",
        "Due Date",
    ]
    assert "Assignee" not in head  # owned by roles and teams, not people
    postmortem = (reports / "postmortem.md").read_text()
    assert len(body) == len(_action_rows(postmortem)) == 4
    first = dict(zip(head, body[0], strict=False))
    assert first["Summary"].startswith("Make sure pages reach the on-call engineer")
    assert "Checks: mtta.p0, escalation.p0_ack, oncall.respond_p0_p1." in first["Description"]
    assert (first["Issue Type"], first["Priority"], first["Component"], first["Due Date"]) == (
        "Task",
        "Highest",
        "the on-call rotation",
        "2025-03-18",
    )
    assert [r[4:6] for r in body] == [["drill-postmortem", "drill-deployment"]] * 4
    assert all(" " not in label for r in body for label in r[4:6])


def _storage_root(text: str) -> ET.Element:
    """Storage format is a page body: it parses once wrapped in an element declaring ac: and ri:."""
    wrapped = (
        '<page xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier">'
        f"{text}</page>"
    )
    return ET.fromstring(wrapped)


def test_confluence_storage_format_is_xml_with_macros(reports: Path) -> None:
    text = (reports / "postmortem.confluence.xhtml").read_text()
    root = _storage_root(text)
    ac = "{http://atlassian.com/content}"
    macros = [m.get(f"{ac}name") for m in root.iter(f"{ac}structured-macro")]
    assert macros[0] == "info"  # the blameless note
    assert macros.count("code") == 3  # one per message posted
    assert "status" in macros
    headings = [h.text for h in root.iter("h2")]
    for heading in (
        "Summary",
        "Impact",
        "Participants",
        "Timeline",
        "Messages posted",
        "Metrics",
        "Root cause analysis (5 Whys)",
        "Action items",
        "All checks",
    ):
        assert heading in headings
    bodies = [b.text for b in root.iter(f"{ac}plain-text-body")]
    assert bodies[0].startswith("🚨 INCIDENT ALERT - P1\nService: shop")
    assert "<![CDATA[" in text
    whys = [li.text for li in next(root.iter("ol"))]
    assert len(whys) == 5 and whys[1].startswith("Why was it not caught sooner?")


def test_confluence_survives_markup_cdata_ends_and_control_characters() -> None:
    from drills.reporting.exports import confluence_storage

    b = passing_drill("P1")
    b.at("7m").note("<b>bold</b> & \x1b[31mred\x1b[0m")
    b.at("8m").add(
        CommsPosted, source=Source.HUMAN, actor="alice", template="status_update", text="a ]]> b <c>"
    )
    view = build_view(score(b.events), b.events)
    root = _storage_root(confluence_storage(view, [], "-"))
    ac = "{http://atlassian.com/content}"
    assert [x.text for x in root.iter(f"{ac}plain-text-body")][-1] == "a ]]> b <c>"
    assert any("<b>bold</b> & [31mred[0m" in (td.text or "") for td in root.iter("td"))


def _chaos_events() -> list[Event]:
    b = DrillBuilder(severity="P3", mode="chaos-test", scenario_id="chaostoolkit-terminate-pod")
    events = b.events[:1]  # drill.started; the fault is the experiment
    start = b.start

    def ctk(seconds: float, phase: str, **detail: object) -> ChaosToolkitEvent:
        return ChaosToolkitEvent(
            id=f"ctk-{seconds:06.1f}-{phase}",
            at=start + timedelta(seconds=seconds),
            source=Source.SYSTEM,
            actor="chaostoolkit",
            phase=phase,
            detail={"experiment": "Terminate an app pod", **detail},
        )

    events += [
        ctk(1, "started"),
        ctk(2, "activity", name="app-pods-running", kind="probe", status="succeeded"),
        ctk(2.5, "hypothesis-before", met=True),
        ctk(3, "method-started"),
        ctk(4, "activity", name="terminate-one-app-pod", kind="action", status="succeeded"),
        FaultInjected(
            id="fault-0001",
            at=start + timedelta(seconds=4),
            source=Source.SYSTEM,
            actor="drills",
            fault_kind="chaostoolkit",
            target="ChaosToolkit/terminate-app-pod.json",
        ),
        ctk(5, "method-completed"),
        ctk(6, "finished", status="completed", deviated=False),
        ctk(60, "rollbacks-started"),
        ctk(62, "activity", name="restore-replicas", kind="action", status="succeeded"),
        ctk(63, "rollbacks-completed"),
    ]
    b2 = DrillBuilder(severity="P3")
    events += [b2.at("70s").end("self_healed").events[-1]]
    return events


def test_chaostoolkit_drills_get_a_chaoslib_shaped_journal(tmp_path: Path) -> None:
    from chaoslib.run import initialize_run_journal

    events = _chaos_events()
    paths = write_reports_for(score(events), events, tmp_path / "ctk")
    assert paths.chaostoolkit_journal is not None
    journal = json.loads(paths.chaostoolkit_journal.read_text())
    reference = initialize_run_journal({"title": "x"})
    assert set(reference) <= set(journal)
    assert {"end", "duration"} <= set(journal)
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert journal["experiment"]["title"] == "Terminate an app pod"
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    [action] = journal["run"]
    assert action["activity"] == {"type": "action", "name": "terminate-one-app-pod"}
    assert (action["status"], action["duration"], action["output"]) == ("succeeded", 1.0, None)
    assert action["start"] == "2025-03-04T09:00:03+00:00" and action["end"] == "2025-03-04T09:00:04+00:00"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["restore-replicas"]
    assert journal["duration"] == 62.0
    [ext] = journal["experiment"]["extensions"]
    assert ext["name"] == "drills" and ext["drill_id"] == "drill-0001"


def test_other_drills_have_no_chaostoolkit_journal(reports: Path) -> None:
    assert not (reports / "journal.json").exists()


# ---- secrets ------------------------------------------------------------------------------------------------


def test_no_report_renders_a_secret(tmp_path: Path) -> None:
    secret = "s3cr3t-routing-value-42"
    b = passing_drill("P1", scenario_title=f"Drill {secret}")
    b.at("7m").note(f"paged with key {secret} and Authorization: Bearer abcdefgh12345678")
    b.at("8m").add(
        CommsPosted, source=Source.HUMAN, actor="alice", template="status_update", text=f"token={secret}"
    )
    events = b.events
    paths = write_reports_for(score(events), events, tmp_path / "r", secrets=[secret])
    for path in paths.files:
        text = path.read_text()
        assert secret not in text, path.name
        assert "abcdefgh12345678" not in text, path.name
    assert "[redacted]" in (tmp_path / "r" / "postmortem.md").read_text()


def test_reports_redact_the_environments_secrets_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_PAGER_TOKEN", "env-secret-9876")
    b = passing_drill("P1")
    b.at("7m").note("the key is env-secret-9876")
    assert "env-secret-9876" not in render_postmortem(score(b.events), b.events)
    assert "env-secret-9876" not in render_html(score(b.events), b.events)


def test_plurals() -> None:
    from drills.reporting.text import plural

    assert [plural(n, "drill") for n in (0, 1, 2)] == ["0 drills", "1 drill", "2 drills"]
    assert plural(1, "real incident") == "1 real incident"
    assert plural(3, "category") == "3 categories"
    assert plural(2, "person") == "2 people"


def test_the_postmortem_lists_what_the_drill_left_behind() -> None:
    from datetime import timedelta

    from report_journal import report_events

    from drills.model.events import Source, WorldDifferenceInfo, WorldDrifted

    events = report_events()
    plain = render_postmortem(score(events), events)
    assert "## Left behind" not in plain
    end = max(e.at for e in events)
    drifted = WorldDrifted(
        at=end - timedelta(seconds=1),
        source=Source.SYSTEM,
        differences=[
            WorldDifferenceInfo(
                ref="Deployment/production/db-proxy",
                change="missing",
                text="Deployment/production/db-proxy is missing (it was in the baseline)",
            ),
        ],
    )
    text = render_postmortem(score([*events, drifted]), [*events, drifted])
    section = text.split("## Left behind", 1)[1].split("## Action items", 1)[0]
    assert "- Deployment/production/db-proxy is missing (it was in the baseline)" in section
    assert "drill cluster reset" in section


# ---- measured impact in the reports ----------------------------------------------------------------------


def _impact_drill() -> DrillBuilder:
    from drills.model.events import ActionKind
    from drills.model.slo import Slo

    b = passing_drill("P0", slos=[Slo(service="app", availability_pct=99.9)])
    b.at("10s").impact(100, down=("browse", "cart", "checkout"))
    b.at("5m20s").impact(0)
    b.at("6m30s").action(ActionKind.DELETED, object="deployment/production/db-proxy", destructive=True)
    b.at("6m32s").impact(48.5, "degraded", down=("cart", "checkout"))
    b.at("7m").impact(0)
    return b


def test_the_postmortem_gives_the_measured_impact() -> None:
    b = _impact_drill()
    text = render_postmortem(score(b.events), b.events)
    impact = text.split("## Impact", 1)[1].split("\n## ", 1)[0]
    assert "Measured: users affected peaked at 1,000 (100%)" in impact
    assert "user-minutes" in impact and "failed requests of" in impact
    assert "Features down: browse, cart, checkout." in impact
    assert (
        "Impact reduced (users affected under the threshold) 5m20s after T0; the health probes held from 6m00s"
        in impact
    )
    assert "of app's 99.9% availability budget" in impact
    # the delete is in the timeline as a change that raised impact
    row = next(line for line in text.splitlines() if "db-proxy" in line and line.startswith("|"))
    assert "raised impact: users affected 0.0 % -> 48.5 % (cart, checkout down)" in row


def test_the_timeline_chart_has_an_impact_lane_only_with_virtual_users() -> None:
    b = _impact_drill()
    svg = timeline_svg(build_view(score(b.events), b.events))
    assert ">Users affected<" in svg
    lane = ET.fromstring(svg).find(".//{*}g[@class='impact']")
    assert lane is not None
    title = lane.find("{*}title")
    assert title is not None and title.text == "users affected: peak 100.0 % at +10s"
    assert "change that raised impact" in svg
    plain = passing_drill("P0")
    assert "Users affected" not in timeline_svg(build_view(score(plain.events), plain.events))
