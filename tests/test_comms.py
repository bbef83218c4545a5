"""The seed's communication templates: the seed's text, prefilling, and checking what responders post."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drills.engine import comms
from drills.errors import UsageError
from drills.model.events import (
    AlertFired,
    CommsPosted,
    Detected,
    DrillStarted,
    Resolved,
    Role,
    RoleAssigned,
    SeverityDeclared,
    Source,
)
from drills.model.severity import Severity

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "incident-response-framework.md"
T = datetime(2025, 3, 4, 12, 3, 27, tzinfo=UTC)

# A value each field accepts; free-text fields get a plain sentence.
VALID = {
    "severity": "P1",
    "incident_id": "#incident-20250304-1203",
    "ic": "alice",
    "team": "alice @bob",
    "update_number": "2",
    "time": "12:20",
    "status": "🔧 Mitigating",
}


def _fill_all(template: comms.CommsTemplate, free_text: str = "written by the responder") -> str:
    return comms.render(template, {key: VALID.get(key, free_text) for key in template.keys})


def _seed_blocks() -> dict[int, str]:
    """Code blocks of the seed, keyed by the line number of their heading."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    blocks: dict[int, str] = {}
    heading = 0
    i = 0
    while i < len(lines):
        if lines[i].startswith("#### "):
            heading = i + 1
        if lines[i].startswith("```") and heading:
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            blocks[heading] = "\n".join(lines[i + 1 : j]) + "\n"
            heading = 0
            i = j
        i += 1
    return blocks


@pytest.mark.skipif(not SEED.exists(), reason=f"the seed is not at {SEED}")
@pytest.mark.parametrize("template_id", comms.TEMPLATE_IDS)
def test_template_text_is_the_seeds(template_id: str) -> None:
    template = comms.TEMPLATES[template_id]
    line = int(template.citation.rsplit(":", 1)[1])
    assert _seed_blocks()[line] == template.text


def test_there_are_the_seven_templates_of_the_seed() -> None:
    assert comms.TEMPLATE_IDS == (
        "initial_alert",
        "status_update",
        "resolution",
        "statuspage_investigating",
        "statuspage_identified",
        "statuspage_resolved",
        "customer_email",
    )


def test_incident_id_is_the_utc_minute_of_the_start() -> None:
    assert comms.incident_id(T) == "#incident-20250304-1203"
    in_paris = datetime(2025, 3, 4, 13, 3, tzinfo=timezone(timedelta(hours=1)))
    assert comms.incident_id(in_paris) == "#incident-20250304-1203"


def test_render_fills_what_is_known_and_leaves_the_rest_as_placeholders() -> None:
    text = comms.render(
        "initial_alert",
        {
            "severity": "P0",
            "service": "app",
            "start_time": T,
            "ic": "alice",
            "incident_id": comms.incident_id(T),
        },
    )
    assert text.splitlines()[0] == "🚨 INCIDENT DETECTED - P0"
    assert "Service: app\n" in text
    assert "Start Time: 2025-03-04 12:03 UTC\n" in text
    assert "Incident Commander: @alice\n" in text
    assert text.rstrip().endswith("#incident-20250304-1203")
    assert "Symptom: [description of what's broken]" in text
    assert comms.validate("initial_alert", text) == ["symptom", "impact", "war_room"]


def test_render_does_not_double_the_at_sign() -> None:
    assert "Incident Commander: @alice" in comms.render("initial_alert", {"ic": "@alice"})


@pytest.mark.parametrize("template_id", comms.TEMPLATE_IDS)
def test_the_bare_template_misses_every_field(template_id: str) -> None:
    template = comms.TEMPLATES[template_id]
    assert comms.validate(template, template.text) == list(template.keys)


@pytest.mark.parametrize("template_id", comms.TEMPLATE_IDS)
def test_a_filled_template_passes(template_id: str) -> None:
    template = comms.TEMPLATES[template_id]
    text = _fill_all(template)
    assert "[" not in text.replace("[ ]", "")
    assert comms.check(template, text) == []


def test_people_may_drop_emoji_change_case_and_spacing() -> None:
    text = _fill_all(comms.TEMPLATES["initial_alert"])
    typed = (
        text.replace("🚨 ", "").replace("Service: ", "service:   ").upper().replace("#INCIDENT", "#incident")
    )
    assert comms.validate("initial_alert", typed) == []


def test_severity_must_be_p0_to_p3() -> None:
    text = _fill_all(comms.TEMPLATES["initial_alert"]).replace("- P1", "- P5")
    [problem] = comms.check("initial_alert", text)
    assert problem.field == "severity"
    assert problem.message == "'P5' is not P0, P1, P2 or P3"


def test_a_missing_line_is_named_with_the_seed_line() -> None:
    text = _fill_all(comms.TEMPLATES["initial_alert"])
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("🚨", "#incident")))
    problems = comms.check("initial_alert", text)
    assert [str(p) for p in problems] == [
        "severity: line missing (the template has '🚨 INCIDENT DETECTED - P[0-3]')",
        "incident_id: line missing (the template has '#incident-[YYYYMMDD-HHMM]')",
    ]


def test_the_incident_tag_is_found_anywhere_and_checked_against_the_drill() -> None:
    text = _fill_all(comms.TEMPLATES["status_update"]).replace(
        "Incident Commander: @alice\n#incident-20250304-1203",
        "Incident Commander: @alice #incident-20250304-1203",
    )
    assert comms.validate("status_update", text, expected_incident_id="#incident-20250304-1203") == []
    problems = comms.check("status_update", text, expected_incident_id="#incident-20250304-1300")
    assert [str(p) for p in problems] == [
        "incident_id: is #incident-20250304-1203, but this incident is #incident-20250304-1300"
    ]


def test_a_malformed_incident_tag_is_not_accepted() -> None:
    text = _fill_all(comms.TEMPLATES["initial_alert"]).replace("#incident-20250304-1203", "#incident-today")
    assert comms.validate("initial_alert", text) == ["incident_id"]


def test_check_boxes_and_links_are_not_placeholders() -> None:
    text = _fill_all(comms.TEMPLATES["status_update"])
    assert "- [ ] written by the responder" in text
    text = text.replace(
        "- [ ] written by the responder", "- [x] [rollback runbook](https://runbooks.invalid/r)", 1
    )
    assert comms.validate("status_update", text) == []


def test_a_placeholder_left_in_a_reworded_line_is_still_caught() -> None:
    text = _fill_all(comms.TEMPLATES["statuspage_investigating"])
    text += "\nUpdate: we expect a fix by [time]\n"
    [problem] = comms.check("statuspage_investigating", text)
    assert problem.field == "placeholder:[time]"


def test_optional_list_items_may_be_removed_but_not_left_as_placeholders() -> None:
    template = comms.TEMPLATES["status_update"]
    text = _fill_all(template)
    trimmed = "\n".join(line for line in text.splitlines() if not line.startswith("- [ ]"))
    assert comms.validate(template, trimmed) == []
    half = comms.render(template, {k: VALID.get(k, "x") for k in template.keys if k != "next_step"})
    assert comms.validate(template, half) == ["next_step"]


def test_section_headings_must_stay() -> None:
    text = _fill_all(comms.TEMPLATES["status_update"]).replace("Actions Taken:\n", "")
    assert comms.validate("status_update", text) == ["section:Actions Taken"]


def test_status_must_be_one_of_the_seeds_states() -> None:
    text = _fill_all(comms.TEMPLATES["status_update"]).replace("🔧 Mitigating", "on fire")
    [problem] = comms.check("status_update", text)
    assert problem.field == "status"
    assert "Investigating, Mitigating, Resolved or Monitoring" in problem.message


def test_a_paragraph_placeholder_is_anchored_to_its_heading() -> None:
    template = comms.TEMPLATES["customer_email"]
    text = _fill_all(template)
    assert comms.validate(template, text) == []
    # The explanation paragraph deleted: "What happened:" now runs into the next heading.
    gone = text.replace("What happened:\nwritten by the responder\n", "What happened:\n")
    assert comms.validate(template, gone) == ["what_happened"]


def test_unknown_template_is_a_usage_error_listing_the_templates() -> None:
    with pytest.raises(UsageError, match="unknown communication template 'tweet'") as e:
        comms.get_template("tweet")
    assert e.value.hint is not None and "initial_alert" in e.value.hint
    assert comms.get_template("status-update").id == "status_update"


def _started(**kw: object) -> DrillStarted:
    return DrillStarted(
        id="drill-start-1",
        at=T,
        source=Source.SYSTEM,
        drill_id="20250304-120327-bad-deploy",
        scenario_id="bad-deploy",
        scenario_title="Bad deploy",
        category="deployment",
        service="app",
        namespace="production",
        true_severity=Severity.P0,
        **kw,  # type: ignore[arg-type]
    )


def test_drill_context_prefills_what_the_responder_knows_never_the_true_severity() -> None:
    events = [
        _started(),
        AlertFired(id="alert-0001", at=T + timedelta(minutes=2), source=Source.SYSTEM, alert_name="AppDown"),
    ]
    ctx = comms.drill_context(events)
    assert ctx["incident_id"] == "#incident-20250304-1203"
    assert ctx["service"] == "app"
    assert ctx["start_time"] == "2025-03-04 12:05 UTC"
    assert "severity" not in ctx  # the true severity is what the responder must work out
    assert "ic" not in ctx
    assert ctx["update_number"] == "1"


def test_drill_context_follows_the_response() -> None:
    events = [
        _started(),
        Detected(id="detect-001", at=T + timedelta(minutes=1), source=Source.HUMAN, actor="bob"),
        AlertFired(id="alert-0001", at=T + timedelta(minutes=2), source=Source.SYSTEM, alert_name="AppDown"),
        RoleAssigned(
            id="role-00001", at=T + timedelta(minutes=3), source=Source.HUMAN, role=Role.IC, person="alice"
        ),
        RoleAssigned(
            id="role-00002", at=T + timedelta(minutes=3), source=Source.HUMAN, role=Role.TECH, person="bob"
        ),
        SeverityDeclared(
            id="sev-000001", at=T + timedelta(minutes=4), source=Source.HUMAN, severity=Severity.P1
        ),
        CommsPosted(
            id="comms-0001", at=T + timedelta(minutes=5), source=Source.HUMAN, template="status_update"
        ),
        Resolved(id="resolved-1", at=T + timedelta(minutes=31), source=Source.HUMAN),
    ]
    now = T + timedelta(minutes=32)
    ctx = comms.drill_context(events, now=now)
    assert ctx["start_time"] == "2025-03-04 12:04 UTC"  # the human noticed before the alert
    assert ctx["ic"] == "alice"
    assert ctx["team"] == "alice @bob"
    assert ctx["severity"] == "P1"
    assert ctx["update_number"] == "2"
    assert ctx["duration"] == "30m00s"
    assert ctx["posted_at"] == "2025-03-04 12:35 UTC"
    assert ctx["time"] == "12:35 UTC"
    resolution = comms.render("resolution", ctx)
    assert "Thank you to the response team: @alice @bob" in resolution
    assert "Duration: 30m00s" in resolution


# No parentheses: the customer email's "to [end time] ([duration])." reads a value that is only "(" as the
# duration's opening parenthesis, and the end time as empty (a responder's "14:00 (UTC)" reads fine).
_free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp", "So"), blacklist_characters="[]()"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "" and not re.search(r"#incident-", s, re.I))


@settings(max_examples=60, deadline=None)
@given(template_id=st.sampled_from(comms.TEMPLATE_IDS), value=_free_text)
def test_any_honest_fill_in_passes(template_id: str, value: str) -> None:
    template = comms.TEMPLATES[template_id]
    assert comms.validate(template, _fill_all(template, value.strip())) == []


@settings(max_examples=60, deadline=None)
@given(template_id=st.sampled_from(comms.TEMPLATE_IDS), data=st.data())
def test_leaving_any_required_field_out_is_reported(template_id: str, data: st.DataObject) -> None:
    template = comms.TEMPLATES[template_id]
    left_out = data.draw(st.sampled_from(template.required_keys))
    text = comms.render(template, {k: VALID.get(k, "filled") for k in template.keys if k != left_out})
    assert left_out in comms.validate(template, text)
