"""The HTML report as a person sees it: opened in headless Chromium, screenshotted, and the chart looked for.

The screenshot is kept at test-artifacts/report.png so a reviewer can look at the chart.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from report_journal import DRILL_ID, write_report_journal

from drills.model.scorecard import CheckStatus
from drills.reporting.chart import PHASE_COLOURS, STATUS_COLOURS
from drills.reporting.report import write_reports

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="headless Chromium is not installed: apt-get install -y chromium (./dev test installs it)",
    ),
]


def _screenshot(html: Path, png: Path, profile: Path) -> None:
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
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1280,1600",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _count(image: Image.Image, colour: str, tolerance: int = 12) -> int:
    """Pixels within ``tolerance`` of ``colour`` (#rrggbb) on every channel."""
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    histogram = image.getcolors(maxcolors=1 << 20) or []
    return sum(
        n for n, rgb in histogram if all(abs(int(c) - w) <= tolerance for c, w in zip(rgb, want, strict=True))
    )


def test_report_renders_its_chart_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / DRILL_ID
    paths = write_reports(write_report_journal(tmp_path), out)
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "report.png"
    png.unlink(missing_ok=True)
    _screenshot(paths.html, png, tmp_path / "chromium-profile")

    assert png.stat().st_size > 50_000, "a screenshot this small is a blank page"
    image = Image.open(png).convert("RGB")
    assert image.size == (1280, 1600)
    # Every phase bar is drawn in its colour, and the missed MTTA deadline in red (the golden drill
    # acknowledges 6m28s after the alert against 5m).
    for phase, colour in PHASE_COLOURS.items():
        assert _count(image, colour) > 300, f"no {phase} bar in the screenshot"
    assert _count(image, STATUS_COLOURS[CheckStatus.FAIL]) > 30, "the missed deadline line is not drawn"
    # The chart sits in the first screen, below the header: not white there.
    chart = image.crop((100, 500, 1200, 1000))
    non_white = sum(n for n, rgb in chart.getcolors(maxcolors=1 << 20) or [] if min(rgb) < 235)
    assert non_white > 20_000
