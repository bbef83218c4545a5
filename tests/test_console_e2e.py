"""The must-show of the web console: a game master and two responders, each in their own browser context, run a
bad-deploy drill on the real embedded cluster through the console, to the report.

The game master starts the drill from the console; the incident commander (bob) sees the page arrive live,
acknowledges, declares and takes the IC role; the communications lead (carol, on a phone-sized screen) takes
her role and posts the initial alert and the status page from the seed's templates; bob rolls back with the
real kubectl, the game master's page shows the service healthy again, bob resolves, and the drill ends and
its report is read in the browser. The scenario is the shipped bad-deploy one with a 5 s healthy window, so
the drill takes about a minute. Screenshots of every view at 1280 px and 375 px are kept (path printed).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser_support import BROWSER_MARKS, playwright_api
from console_support import ROOT, artifacts_dir, served, shots, sign_in

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.store.journal import read_journal
from drills.adapters.store.people import PeopleStore
from drills.model.events import Acknowledged, CommsPosted, DrillEnded, Outcome, Resolved, RoleAssigned
from drills.server.app import create_app, make_service
from drills.server.config import ServerConfig
from drills.server.service import StartDefaults
from drills.timing import SYSTEM_CLOCK

expect = playwright_api.expect

pytestmark = [pytest.mark.cluster, *BROWSER_MARKS]

LIVE = 90_000  # ms: how long a live panel may take to show what the cluster did


def _quick_scenario(tmp_path: Path) -> Path:
    """The shipped bad-deploy scenario with a 5 s healthy window and a short budget (hints moved to fit)."""
    data = yaml.safe_load((ROOT / "scenarios" / "bad-deploy-rollback.yaml").read_text(encoding="utf-8"))
    data["steady_state"]["healthy_for"] = "5s"
    data["time_budget"] = "4m"
    for hint, after in zip(data["hints"], ("20s", "40s"), strict=True):
        hint["after"] = after
    path = tmp_path / "bad-deploy-quick.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _post(page: Any, template: str, values: dict[str, str]) -> None:
    """Open a comms form, check the fields given (by key) are marked missing, fill them, post it."""
    form = page.locator(f"#comms-{template}")
    if form.get_attribute("open") is None:
        form.locator("summary").first.click()
    for key, value in values.items():
        field = form.locator(f"#f-{template}-{key}")
        assert field.get_attribute("aria-invalid") == "true", f"{template}: {key} is marked missing"
        field.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*done=comms.*"))


def test_game_master_and_two_responders_run_a_bad_deploy_drill_to_the_report(
    world: ClusterHandle, kubectl: Any, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    out = artifacts_dir("bad-deploy")
    scenario = _quick_scenario(tmp_path)
    people = tmp_path / "people.sqlite3"
    store = PeopleStore(people)
    tokens = {}
    for person, role in (("gm", "gm"), ("bob", "ic"), ("carol", "comms-lead")):
        _, tokens[person] = store.invite(
            person, role, drill_id=None, ttl=timedelta(hours=1), now=SYSTEM_CLOCK.now()
        )
    store.close()
    config = ServerConfig(
        people_file=people,
        start=StartDefaults(backend=world.backend, cluster=world.name),
        hub_poll_seconds=0.05,
    )
    service = make_service(config)
    drill_id = ""
    with served(create_app(config, service=service)) as base:
        gm_ctx, gm = sign_in(browser, base, tokens["gm"])
        bob_ctx, bob = sign_in(browser, base, tokens["bob"])
        carol_ctx, carol = sign_in(browser, base, tokens["carol"], width=375)
        try:
            # The game master starts the drill from the console.
            gm.get_by_label("Scenario (an id or a file)").fill(str(scenario))
            gm.get_by_label("Trainee: who is paged (empty: you)").fill("bob")
            gm.get_by_label("Wrap-up after the resolution, in seconds (empty: 60)").fill("3")
            gm.get_by_role("button", name="Start the drill").click()
            gm.wait_for_url(re.compile(r".*/console/drills/[^/]+/gm$"), timeout=180_000)
            drill_id = gm.url.rsplit("/", 2)[-2]
            url = f"{base}/console/drills/{drill_id}"
            expect(gm.locator("#timeline")).to_contain_text("Fault injected: bad-deploy", timeout=LIVE)

            # The responders join; the page reaches them live.
            bob.goto(f"{url}/respond")
            carol.goto(f"{url}/respond")
            expect(bob.locator("[data-testid=page]")).to_contain_text(
                "Paged via terminal to bob", timeout=LIVE
            )
            bob.get_by_role("button", name="Acknowledge the page").focus()
            bob.keyboard.press("Enter")
            bob.wait_for_url("**done=ack")
            bob.get_by_label("Severity", exact=True).select_option("P1")
            bob.get_by_role("button", name="Declare severity").click()
            bob.wait_for_url("**done=declare")
            bob.get_by_label("Role", exact=True).select_option("ic")
            bob.get_by_role("button", name="Assign role").click()
            bob.wait_for_url("**done=role")

            carol.get_by_label("Role", exact=True).select_option("comms")
            carol.get_by_role("button", name="Assign role").click()
            carol.wait_for_url("**done=role")
            _post(
                carol,
                "initial_alert",
                {
                    "symptom": "checkout pods crash on start after v2.1.0",
                    "impact": "about 65% of users; checkout and cart",
                    "war_room": "#war-room-checkout",
                },
            )
            _post(
                carol,
                "statuspage_investigating",
                {"issue": "failed checkouts", "user_impact": "errors when paying"},
            )
            expect(gm.locator("#timeline")).to_contain_text("Posted Initial Alert", timeout=LIVE)
            shots(gm, out, "game-master")
            bob.reload()
            shots(bob, out, "responder")

            # The tech work: bob rolls back with the real kubectl; health comes back on the gm's page.
            kubectl("rollout", "undo", "deployment/app", "-n", "production")
            expect(gm.locator("[data-testid=health]")).to_contain_text("HEALTHY", timeout=LIVE)
            expect(gm.locator("[data-testid=health]")).not_to_contain_text("UNHEALTHY", timeout=LIVE)
            expect(gm.locator("[data-testid=phase]")).to_have_text("RESOLVE", timeout=LIVE)

            carol.goto(f"{url}/respond?open=statuspage_resolved")
            _post(
                carol,
                "statuspage_resolved",
                {"root_cause": "a faulty release, rolled back", "duration": "about a minute"},
            )
            bob.get_by_label("What reduced the impact").fill("rolled back to the previous revision")
            bob.get_by_role("button", name="Report impact reduced").click()
            bob.wait_for_url("**done=mitigated")
            bob.get_by_label("Root cause").fill("v2.1.0 crashes on start (nil cart-discount field)")
            bob.get_by_role("button", name="Resolve the incident").click()
            bob.wait_for_url("**done=resolve")

            # The drill ends (fault reverted, scored); the report is read in the browser.
            expect(gm.locator(".drill-head")).to_contain_text("ended: resolved", timeout=LIVE)
            assert service.wait_run(drill_id, timeout=120) == Outcome.RESOLVED.value
            carol.goto(f"{url}/status")
            expect(carol.locator("[data-testid=status-state]")).to_have_text("The issue has been resolved")
            shots(carol, out, "status-page")
            gm.reload()
            gm.get_by_role("link", name="Read the report").click()
            gm.wait_for_url(f"{url}/report")
            expect(gm.locator("h1")).to_have_text("Checkout crashes after the v2.1.0 release")
            facts = gm.locator("dl.facts").inner_text()
            assert "bob" in facts and "carol" in facts
            shots(gm, out, "report")  # the report fits a phone too
        finally:
            for ctx in (gm_ctx, bob_ctx, carol_ctx):
                ctx.close()
            if drill_id:
                service.wait_run(drill_id, timeout=120)

    # Each event once, with the person who posted it as the actor.
    events = read_journal(tmp_path / "state" / "drills" / drill_id / "journal.jsonl").events
    acks = [e for e in events if isinstance(e, Acknowledged)]
    assert [(e.actor, e.via) for e in acks] == [("bob", "console")]
    assert {(e.actor, e.role.value, e.person) for e in events if isinstance(e, RoleAssigned)} == {
        ("bob", "ic", "bob"),
        ("carol", "comms", "carol"),
    }
    posted = [(e.actor, e.template, tuple(e.missing_fields)) for e in events if isinstance(e, CommsPosted)]
    assert posted == [
        ("carol", "initial_alert", ()),
        ("carol", "statuspage_investigating", ()),
        ("carol", "statuspage_resolved", ()),
    ]
    assert [e.actor for e in events if isinstance(e, Resolved)] == ["bob"]
    ended = [e for e in events if isinstance(e, DrillEnded)]
    assert len(ended) == 1 and ended[0].outcome == Outcome.RESOLVED
    assert len(list(out.glob("*.png"))) >= 8
