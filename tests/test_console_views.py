"""The web console's pages rendered from synthetic journals: what each view shows, and what it never shows.

No server and no browser: :mod:`drills.server.console.views` is pure and the templates render from its
values, so the facts (budgets, health, user impact, hints, the page, the comms forms, the status page) are
checked here cheaply; tests/test_console_browser.py checks the same pages in Chromium.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from builders import DrillBuilder, passing_drill

from drills.engine import comms
from drills.model.events import CommsPosted, Event, ImpactSampled, Source
from drills.model.policy import SlaTargets
from drills.server.console import views
from drills.server.console.pages import render

CTX = {
    "drill_id": "drill-0001",
    "csrf_token": "csrf-abc",
    "action_url": "/console/drills/drill-0001/do",
    "live_url": "/console/drills/drill-0001/gm/live",
    "stream_url": "/api/drills/drill-0001/events",
    "open_template": "",
    "event_types": "drill.started acknowledged",
}


def _sample(b: DrillBuilder, pct: float, failed: float, p99: float, status: str = "degraded") -> None:
    b.add(
        ImpactSampled,
        source=Source.SYSTEM,
        actor="drills-users",
        users_affected_pct=pct,
        users_affected=int(pct * 2),
        users_active=200,
        status=status,
        requests_per_second=400,
        failed_per_second=failed,
        p99_ms=p99,
    )


def _running() -> DrillBuilder:
    b = DrillBuilder(
        severity="P1",
        hints=[("Look at `kubectl rollout history`.", 5), ("Roll back with rollout undo.", 15)],
        budget_seconds=600,
    )
    b.at("10s").unhealthy("deployment app: 0/3 available")
    b.at("20s")
    _sample(b, 64.5, 250, 1200)
    b.at("30s").alert("KubePodCrashLooping").page("bob")
    b.at("50s")
    _sample(b, 40.0, 100, 800)
    b.at("1m").ack("bob").declare("P1", by="bob").assign("ic", "bob")
    return b


def test_game_master_sees_budgets_health_impact_and_hints_without_the_answers() -> None:
    b = _running()
    b.at("2m").hint(0, cost=5, by="bob")
    now = b.time("3m30s")
    v = views.game_master_view(b.events, now, SlaTargets())
    assert v.header.phase == "MITIGATE"
    assert v.header.declared == "P1"
    assert v.header.budget_left == "6m30s"
    budgets = {r.check_id: r for r in v.budgets}
    assert budgets["comms.initial_alert"].used == "2m30s"  # from the acknowledgement, the seed's clock
    assert budgets["comms.initial_alert"].left == "2m30s"
    assert budgets["comms.initial_alert"].level == "ok"
    assert v.health.state == "unhealthy" and v.health.reason == "deployment app: 0/3 available"
    # the latest sample is in force; the worst so far is kept
    assert (v.impact.users_affected_pct, v.impact.error_rate_pct, v.impact.p99_ms) == (40.0, 25.0, 800.0)
    assert (v.impact.peak_affected_pct, v.impact.peak_p99_ms) == (64.5, 1200.0)
    assert [(h.state, h.text) for h in v.hints] == [
        ("used", "Look at `kubectl rollout history`."),
        ("available", ""),
    ]
    html = render("gm.html.j2", v=v, person=views.Person("gm", "gm"), **CTX)
    assert "Roll back with rollout undo." not in html, "a hint not yet taken stays hidden"
    assert "true severity" not in html.lower()
    assert "Pause the drill" in html and "Abort the drill" in html and "Reveal the next hint" in html
    assert "40.0%" in html and "25.0%" in html and "800 ms" in html


def test_budget_past_its_target_is_marked_breached() -> None:
    b = _running()
    v = views.game_master_view(b.events, b.time("9m"), SlaTargets())
    row = next(r for r in v.budgets if r.check_id == "comms.initial_alert")
    assert row.breached and row.level == "breached" and row.left == "breached by 3m00s" and row.share == 100


def test_no_impact_samples_says_so() -> None:
    b = DrillBuilder()
    b.at("10s").unhealthy()
    v = views.game_master_view(b.events, b.time("20s"), SlaTargets())
    assert not v.impact.measured
    assert "No virtual-user samples" in render("_gm_live.html.j2", v=v, **CTX)


def test_responder_sees_the_page_and_comms_forms_prefilled_with_missing_fields_marked() -> None:
    b = _running()
    now = b.time("2m")
    v = views.responder_view(b.events, now, SlaTargets())
    assert v.page.paged and v.page.to == "bob" and v.page.alert == "Alert KubePodCrashLooping"
    assert v.acknowledged_by == "bob"
    assert {r: who for r, _, who in v.roles}["ic"] == "bob"
    form = next(c for c in v.comms if c.template == "initial_alert")
    values = {f.key: f.value for f in form.fields}
    assert values["severity"] == "P1" and values["service"] == "shop" and values["ic"] == "@bob"
    assert values["incident_id"] == "#incident-20250304-0900"
    assert form.missing == ("symptom", "impact", "war_room")
    assert {c.template for c in v.comms} == set(comms.TEMPLATE_IDS)

    html = render("respond.html.j2", v=v, person=views.Person("bob", "ic"), **CTX)
    # every missing field is marked for eyes and for screen readers
    for key in form.missing:
        fid = f"f-initial_alert-{key}"
        assert re.search(rf'id="{fid}"[^>]*aria-invalid="true"[^>]*aria-describedby="{fid}-m"', html), key
        assert f'<span class="missing-mark" id="{fid}-m">missing</span>' in html
    assert 'name="field.severity" value="P1"' in html


def test_a_filled_comms_form_makes_a_message_the_checker_accepts() -> None:
    b = _running()
    v = views.responder_view(b.events, b.time("2m"), SlaTargets())
    form = next(c for c in v.comms if c.template == "initial_alert")
    values = {f.key: f.value for f in form.fields}
    values.update(symptom="checkout returns 500", impact="65% of users, checkout down", war_room="#war-room")
    text = views.filled_comms("initial_alert", values)
    assert comms.check("initial_alert", text, expected_incident_id="#incident-20250304-0900") == []
    # a field left empty stays the seed's placeholder, which the checker names
    values["symptom"] = "  "
    problems = comms.validate("initial_alert", views.filled_comms("initial_alert", values))
    assert problems == ["symptom"]


def test_observer_gets_no_forms_and_an_ended_drill_points_to_the_report() -> None:
    b = _running()
    v = views.responder_view(b.events, b.time("2m"), SlaTargets())
    html = render("respond.html.j2", v=v, person=views.Person("olga", "observer"), **CTX)
    assert "/do/" not in html and "observe this drill" in html
    ended = passing_drill("P1")
    v = views.responder_view(ended.events, ended.time("11m"), SlaTargets())
    html = render("respond.html.j2", v=v, person=views.Person("bob", "ic"), **CTX)
    assert "/do/" not in html and "/console/drills/drill-0001/report" in html


def test_status_page_shows_only_status_page_posts_newest_first() -> None:
    b = _running()
    b.at("2m").add(
        CommsPosted,
        source=Source.HUMAN,
        actor="carol",
        template="statuspage_investigating",
        text="Investigating - shop\n\nWe are investigating reports of <b>failed checkouts</b>.",
    )
    b.at("3m").comms("initial_alert", by="bob")
    b.at("9m").add(
        CommsPosted,
        source=Source.HUMAN,
        actor="carol",
        template="statuspage_resolved",
        text="Resolved - shop\n\nThe issue with shop has been resolved.",
    )
    v = views.status_page_view(b.events)
    assert v.state == "resolved" and v.headline == "The issue has been resolved"
    assert [p.state for p in v.posts] == ["Resolved", "Investigating"]
    html = render("status.html.j2", v=v)
    assert "&lt;b&gt;failed checkouts&lt;/b&gt;" in html and "<b>" not in html
    assert "Initial Alert" not in html
    assert views.status_page_view(DrillBuilder().events).headline == "All systems operational"


def test_every_text_people_typed_is_escaped_and_secrets_redacted() -> None:
    b = _running()
    b.at("2m").note(
        '<img src=x onerror="alert(1)"> token=ghp_0123456789abcdefghijklmnopqrstuvwxyzAB', by="bob"
    )
    v = views.game_master_view(b.events, b.time("3m"), SlaTargets())
    html = render("gm.html.j2", v=v, person=views.Person("gm", "gm"), **CTX)
    assert "<img" not in html and "&lt;img" in html
    assert "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB" not in html


class _Controls(HTMLParser):
    """Every form control and the labels that name them."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)


def test_every_control_has_a_label() -> None:
    b = _running()
    now = b.time("2m")
    pages = [
        render(
            "gm.html.j2",
            v=views.game_master_view(b.events, now, SlaTargets()),
            person=views.Person("gm", "gm"),
            **CTX,
        ),
        render(
            "respond.html.j2",
            v=views.responder_view(b.events, now, SlaTargets()),
            person=views.Person("bob", "ic"),
            **CTX,
        ),
    ]
    for html in pages:
        p = _Controls()
        p.feed(html)
        assert p.controls
        unlabelled = [c for c in p.controls if c.get("id") not in p.labels and not c.get("aria-label")]
        assert unlabelled == []
        ids = [c.get("id") for c in p.controls]
        assert len(ids) == len(set(ids)), "ids are unique, so each label names one control"


def test_the_journal_lines_are_the_reports_words() -> None:
    events: list[Event] = passing_drill("P1").events
    lines = views.journal_lines(events, events[0].at)
    texts = [line.text for line in lines]
    assert "Acknowledged (via cli)" in texts
    assert any(t.startswith("Severity declared P1") for t in texts)
    assert lines[-1].text.startswith("Drill ended")
