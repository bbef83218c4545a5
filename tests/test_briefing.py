"""The game master's briefing: the answer key, for every shipped scenario, and how it looks printed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from drills.adapters.files.scenarios import load_scenario, load_scenarios
from drills.cli import cli
from drills.engine.ladder import training_hints
from drills.model.severity import Severity
from drills.reporting.briefing import build_briefing, render_html, render_markdown

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def scenario(name: str):  # type: ignore[no-untyped-def]
    return load_scenario(ROOT / "scenarios" / f"{name}.yaml")


def test_every_shipped_scenario_has_a_complete_briefing() -> None:
    loaded, problems = load_scenarios([ROOT / "scenarios"])
    assert not problems
    for _, sc in loaded:
        b = build_briefing(sc)
        md = render_markdown(b)
        assert f"True severity: **{sc.true_severity.value}**" in md
        assert "For the game master only" in md
        assert sc.expected_response.mitigations[0].value in md
        assert len(b.hints) == len(training_hints(sc))
        for command in sc.expected_response.runbook:
            assert f"`{command}`" in md
        assert "{{" not in md and "{%" not in md and "{workload}" not in md  # nothing left unfilled
        html = render_html(b)
        assert "<script" not in html and not re.search(r"(src|href)=\"https?://", html)


def test_why_the_severity_names_the_rows_that_decide_it() -> None:
    b = build_briefing(scenario("quarterly-dr-namespace-lost"))
    assert b.severity == Severity.P0
    assert all(r.decides for r in b.severity_rows)  # down, 100%, high data-loss risk, critical revenue
    md = render_markdown(b)
    assert "| Data loss risk | high | **P0** |" in md
    # the scenario's SLA override is shown, and the P0 clocks with their seed lines
    assert "mttm_p0=30m00s" in md
    assert "| `mtta.p0` (core) | Acknowledge a P0 in under 5 minutes (ack - alert) | 5m00s |" in md
    assert "kubectl apply -f fixtures/backups/production/" in md
    assert "Restore order" in md


def test_a_lower_severity_scenario_shows_its_own_clocks_and_no_escalation() -> None:
    scenarios = [s for _, s in load_scenarios([ROOT / "scenarios"])[0]]
    low = next(s for s in scenarios if s.true_severity in (Severity.P2, Severity.P3))
    b = build_briefing(low)
    ids = {c.check_id for c in b.clocks}
    assert "mtta.p0" not in ids and "mtta.p1" not in ids
    assert "response_time" in ids
    assert any("a ticket, and no escalation" in w for w in b.watch_for)


def test_hints_say_when_to_offer_them_and_what_they_cost() -> None:
    b = build_briefing(scenario("bad-deploy-rollback"))
    first, *rest = b.hints
    assert first.after == "T+3m00s" and first.cost == 5
    give_away = next(h for h in b.hints if "rollout undo" in h.text)
    assert "gives the answer away" in give_away.offer_when
    assert any(h.runbook and "if the trainee has not looked there yet" in h.offer_when for h in rest)


def test_cli_prints_or_writes_the_briefing(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["briefing", "bad-deploy-rollback"])
    assert r.exit_code == 0, r.output
    assert "Game master briefing" in r.output and "True severity" in r.output
    md, html = tmp_path / "b.md", tmp_path / "b.html"
    r = runner.invoke(cli, ["briefing", "bad-deploy-rollback", "--out", str(md), "--html", str(html)])
    assert r.exit_code == 0, r.output
    assert md.read_text().startswith("# Game master briefing")
    assert html.read_text().startswith("<!DOCTYPE html>")
    r = runner.invoke(cli, ["briefing", "no-such-scenario"])
    assert r.exit_code == 2 and "no scenario 'no-such-scenario'" in r.output
    assert "Traceback" not in r.output


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="headless Chromium is not installed: apt-get install -y chromium"
)
def test_briefing_screenshot(tmp_path: Path) -> None:
    from PIL import Image

    html = tmp_path / "briefing.html"
    html.write_text(render_html(build_briefing(scenario("quarterly-dr-namespace-lost"))))
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "briefing.png"
    png.unlink(missing_ok=True)
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1100,1500",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(png).convert("RGB")
    assert image.size == (1100, 1500)
    colours = image.getcolors(maxcolors=1 << 20) or []
    red = sum(
        n for n, (r, g, b) in colours if abs(r - 0xCF) < 12 and abs(g - 0x22) < 12 and abs(b - 0x2E) < 12
    )
    amber = sum(
        n for n, (r, g, b) in colours if abs(r - 0xFF) < 6 and abs(g - 0xF8) < 6 and abs(b - 0xC5) < 8
    )
    assert red > 2000, "the P0 severity badge is not drawn"
    assert amber > 5000, "the game-master-only banner is not drawn"
