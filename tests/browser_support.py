"""What every browser test shares: Debian's Chromium driven by Playwright (``executable_path``, nothing
downloaded), the marks that skip a test when either is missing, and one browser per module.

A test module sets ``pytestmark = BROWSER_MARKS`` (importing this module skips it without Playwright) and takes
the ``browser`` fixture (tests/conftest.py: one Chromium per module).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is a dev extra: pip install -e '.[dev]'"
)

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="headless Chromium is not installed: apt-get install -y chromium (./dev test installs it)",
    ),
]

