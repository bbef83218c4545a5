"""The web console in a real browser, without a cluster: a synthetic drill's journal served by the real app.

The game master and two responders sign in from their own browser contexts (their own cookies) and use the
console from the keyboard: a responder's acknowledgement, typed with Tab and Enter, reaches the game
master's open page through the Server-Sent Events stream without a reload. Every page fits 1280 px and 375 px
without horizontal scrolling, every control has a label, focus is visible, text people typed is shown as
text, and a form post without the CSRF token is refused. Screenshots of each view are kept (the path is
printed). The whole drill on the real cluster is tests/test_console_e2e.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import BROWSER_MARKS
from builders import DrillBuilder
from console_support import artifacts_dir, served, shots, sign_in, unlabelled

from drills.adapters.store import paths
from drills.adapters.store.journal import Journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import ImpactSampled, Source
from drills.server.app import create_app
from drills.server.config import ServerConfig
from drills.timing import SYSTEM_CLOCK

pytestmark = BROWSER_MARKS

DRILL = "20260101-090000-console"


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    """A running synthetic drill (paged, unhealthy, users affected) and the tokens of gm, bob and carol."""
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    now = SYSTEM_CLOCK.now()
    b = DrillBuilder(
        start=now - timedelta(minutes=2),
        severity="P1",
        drill_id=DRILL,
        hints=[("Something changed recently: look at the rollout history.", 5)],
        budget_seconds=1800,
        trainee="bob",
    )
    b.at("5s").unhealthy("deployment app: 1/3 available; pods crash on start")
    b.add(
        ImpactSampled,
        source=Source.SYSTEM,
        actor="drills-users",
        users_affected_pct=65.0,
        users_affected=130,
        users_active=200,
        status="degraded",
        requests_per_second=400,
        failed_per_second=260,
        p99_ms=1450,
        features_down=["checkout"],
    )
    b.at("20s").alert("KubePodCrashLooping").page("bob")
    b.at("30s").note("<script>document.title='owned'</script> looking", by="gm")
    events = b.events
    journal = Journal.create(paths.drill_dir(DRILL) / "journal.jsonl", events[0])  # type: ignore[arg-type]
    journal.append_many(events[1:])
    store = PeopleStore(tmp_path / "people.sqlite3")
    tokens = {}
    for person, role in (("gm", "gm"), ("bob", "ic"), ("carol", "comms-lead"), ("olga", "observer")):
        _, token = store.invite(person, role, drill_id=None, ttl=timedelta(hours=1), now=now)
        tokens[person] = token
    store.close()
    yield DRILL, tokens


@pytest.fixture
def base(drill: tuple[str, dict[str, str]], tmp_path: Path) -> Iterator[str]:
    app = create_app(ServerConfig(people_file=tmp_path / "people.sqlite3", hub_poll_seconds=0.05))
    with served(app) as url:
        yield url


def _tab_to(page: Any, selector: str, limit: int = 80) -> list[str]:
    """Press Tab until ``selector`` has the focus; the focus order seen on the way."""
    seen = []
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()")
        )
        if target.evaluate("e => e === document.activeElement"):
            return seen
    raise AssertionError(f"Tab never reached {selector}: {seen}")


def test_three_people_use_the_console_from_the_keyboard(
    browser: Any, base: str, drill: tuple[str, dict[str, str]]
) -> None:
    drill_id, tokens = drill
    out = artifacts_dir("synthetic")
    url = f"{base}/console/drills/{drill_id}"
    gm_ctx, gm = sign_in(browser, base, tokens["gm"])
    bob_ctx, bob = sign_in(browser, base, tokens["bob"])
    carol_ctx, carol = sign_in(browser, base, tokens["carol"], width=375)
    try:
        # The game master's view: live panels, and the text people typed shown as text.
        gm.goto(url)
        gm.wait_for_url(f"{url}/gm")
        assert gm.locator("[data-testid=health]").inner_text().startswith("UNHEALTHY")
        impact = gm.locator("[data-testid=impact]").inner_text()
        assert "65.0%" in impact and "65.0%" in impact and "1450 ms" in impact
        assert "<script>" in gm.locator("#timeline").inner_text()
        assert gm.title() != "owned"
        assert unlabelled(gm) == []
        gm.wait_for_function("() => document.body.dataset.stream_open === '1'", timeout=10_000)
        # the stream replays the journal from its start: 7 events so far
        gm.wait_for_function("() => Number(document.body.dataset.streamed) >= 7", timeout=10_000)

        # A responder, from the keyboard: Tab to the acknowledge button (focus visible), Enter.
        bob.goto(url)
        bob.wait_for_url(f"{url}/respond")
        assert "Alert KubePodCrashLooping" in bob.locator("[data-testid=page]").inner_text()
        assert unlabelled(bob) == []
        order = _tab_to(bob, "#ack")
        assert order[0] == "Skip to content", "the first stop skips the navigation"
        outline = bob.locator("#ack").evaluate("e => getComputedStyle(e).outlineStyle")
        assert outline != "none", "the focused control shows it"
        bob.keyboard.press("Enter")
        bob.wait_for_url(f"{url}/respond?done=ack")
        assert bob.locator("#flash").inner_text() == "Acknowledged."
        assert bob.evaluate("() => document.activeElement.id") == "flash", "focus goes to what happened"

        # ... and the game master's open page hears of it through the stream, without a reload.
        gm.wait_for_function("() => Number(document.body.dataset.streamed) >= 8", timeout=10_000)
        gm.locator("#timeline").get_by_text("Acknowledged (via console)").wait_for(timeout=10_000)

        # Declare and take the IC role, by label.
        bob.get_by_label("Severity", exact=True).select_option("P1")
        bob.get_by_role("button", name="Declare severity").click()
        bob.wait_for_url("**done=declare")
        bob.get_by_label("Role", exact=True).select_option("ic")
        bob.get_by_role("button", name="Assign role").click()
        bob.wait_for_url("**done=role")
        assert bob.locator("[data-role=ic]").inner_text() == "bob"

        # Posting a template with fields left empty is journaled, and the page says which ones.
        alert = bob.locator("#comms-initial_alert")
        alert.locator("summary").first.click()
        assert alert.get_by_label("Incident commander").input_value() == "@bob"
        alert.get_by_role("button", name="Post Initial Alert").click()
        bob.wait_for_url("**done=comms**")
        flash = bob.locator("#flash").inner_text()
        assert flash.endswith(
            "Still missing or not filled in (journaled as such): symptom, impact, war_room."
        )
        assert bob.locator("#comms-initial_alert").get_attribute("open") is not None, "the form stays open"

        # The comms lead on a phone: the status-page form, prefilled, missing fields marked, filled in.
        carol.goto(f"{url}/respond")
        form = carol.locator("#comms-statuspage_investigating")
        form.locator("summary").first.click()
        service = form.get_by_label("Service Name")
        assert service.input_value() == "shop"
        issue = form.get_by_label("Description of issue")
        assert issue.get_attribute("aria-invalid") == "true"
        issue.fill("failed checkouts")
        form.get_by_label("Specific impact").fill("errors when paying")
        form.get_by_role("button", name="Post Status Page Update - Investigating").click()
        carol.wait_for_url("**done=comms**")
        assert carol.locator("#flash").inner_text() == "Message posted."

        carol.goto(f"{url}/status")
        banner = carol.locator("[data-testid=status-state]")
        assert banner.inner_text() == "We are investigating an issue"
        colours = banner.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
        assert colours == ["rgb(255, 255, 255)", "rgb(207, 34, 46)"], "white on red, readable"
        assert "We are investigating reports of failed checkouts." in carol.locator("article").inner_text()

        # A form post without the person's CSRF token is refused, and nothing is journaled.
        refused = bob.request.post(f"{url}/do/note", form={"text": "no csrf"})
        assert refused.status == 403
        assert "no csrf" not in gm.locator("#timeline").inner_text()

        # Screenshots of every view, at both widths (each checked to fit).
        gm.locator("#timeline").get_by_text("Severity declared P1").wait_for(timeout=10_000)
        shots(gm, out, "game-master")
        bob.goto(f"{url}/respond")
        shots(bob, out, "responder")
        shots(carol, out, "status-page")
        assert len(list(out.glob("*.png"))) >= 6
    finally:
        for ctx in (gm_ctx, bob_ctx, carol_ctx):
            ctx.close()


def test_roles_decide_what_a_page_offers(browser: Any, base: str, drill: tuple[str, dict[str, str]]) -> None:
    drill_id, tokens = drill
    url = f"{base}/console/drills/{drill_id}"
    ctx, olga = sign_in(browser, base, tokens["olga"])
    try:
        olga.goto(url)
        olga.wait_for_url(f"{url}/respond")
        assert olga.locator("main form").count() == 0  # only the header's sign-out
        assert olga.goto(f"{url}/gm").status == 403  # only the game master's
        assert olga.goto(f"{url}/report").status == 409  # written when the drill ends
        olga.goto(f"{url}/respond")
        olga.get_by_role("button", name="Sign out").click()
        olga.wait_for_url(f"{base}/console/login")
        assert olga.goto(f"{url}/respond").url.startswith(f"{base}/console/login"), "signed out"
    finally:
        ctx.close()
    anonymous = browser.new_context()
    try:
        page = anonymous.new_page()
        page.goto(f"{url}/gm")
        assert page.url.startswith(f"{base}/console/login"), "no token: to the sign-in page"
        page.get_by_label("Your drill token").fill("drl_nope_nope")
        page.keyboard.press("Enter")
        page.wait_for_url("**failed=1**")
        assert page.locator("#flash").inner_text() == "That token was not accepted."
    finally:
        anonymous.close()


def test_game_master_pauses_resumes_and_reveals_a_hint_from_the_keyboard(
    browser: Any, base: str, drill: tuple[str, dict[str, str]]
) -> None:
    drill_id, tokens = drill
    url = f"{base}/console/drills/{drill_id}"
    ctx, gm = sign_in(browser, base, tokens["gm"])
    try:
        gm.goto(f"{url}/gm")
        assert "Something changed recently" not in gm.content(), "a hint's text stays hidden until revealed"
        _tab_to(gm, "#pause-reason")
        gm.keyboard.type("coffee break")
        gm.keyboard.press("Enter")  # submits the pause form
        gm.wait_for_url("**done=pause")
        assert gm.locator("#flash").inner_text() == "Drill paused."
        assert "paused" in gm.locator(".drill-head").inner_text()
        assert "Drill paused: coffee break" in gm.locator("#timeline").inner_text()
        _tab_to(gm, "text=Resume the drill")
        gm.keyboard.press("Enter")
        gm.wait_for_url("**done=resume")
        gm.get_by_role("button", name="Reveal the next hint").click()
        gm.wait_for_url("**done=reveal-hint")
        hints = gm.locator(".hints").inner_text()
        assert "revealed: Something changed recently: look at the rollout history." in hints
        gm.get_by_role("button", name="Reveal the next hint").click()  # none left: said, not a crash
        gm.wait_for_url("**error=*")
        assert "no hints left" in gm.locator("#flash").inner_text()
        assert "flash error" in (gm.locator("#flash").get_attribute("class") or "")
    finally:
        ctx.close()
