"""What the console's browser tests share: a real server on 127.0.0.1, Chromium, sign-in, layout checks, shots.

The server is the real app (``create_app``) under uvicorn in a thread, on a free port of 127.0.0.1; the browser
is Debian's Chromium driven by Playwright (``executable_path``, nothing downloaded). Screenshots go to
``$DRILLS_ARTIFACTS/console-e2e`` (else ``reports/console-e2e`` in the checkout, which git ignores), and each
test prints where.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = {"desktop": 1280, "phone": 375}


def artifacts_dir(name: str) -> Path:
    base = Path(os.environ["DRILLS_ARTIFACTS"]) if os.environ.get("DRILLS_ARTIFACTS") else ROOT / "reports"
    out = base / "console-e2e" / name
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {out}")
    return out


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def sign_in(browser: Any, base: str, token: str, width: int = 1280) -> tuple[Any, Any]:
    """A new browser context (its own cookies) signed in with ``token`` from the keyboard; (context, page)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{base}/console/login")
    page.get_by_label("Your drill token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/**")
    assert page.locator("#flash").inner_text() == "Signed in."
    return context, page


_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = e => { for (let a = e.parentElement; a; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return true; } return false; };
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1 && !clipped(e))
    .slice(0, 5).map(e => e.tagName + '.' + e.className);
  return {scroll: document.documentElement.scrollWidth, client: width, wide: wide};
}"""

_UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(e => e.offsetParent !== null)
  .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label') ||
                 (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 120))"""


def fits(page: Any) -> None:
    """No horizontal scrolling at this width: nothing sticks out of the viewport, except inside a box that
    scrolls or clips on its own (a wide table scrolls in place)."""
    m = page.evaluate(_OVERFLOW)
    assert m["scroll"] <= m["client"], m
    assert m["wide"] == [], m


def unlabelled(page: Any) -> list[str]:
    result: list[str] = page.evaluate(_UNLABELLED)
    return result


def shots(page: Any, out: Path, name: str) -> list[Path]:
    """The page at 1280 px and at 375 px (full page each), checked to fit at both widths."""
    made = []
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        fits(page)
        path = out / f"{name}-{label}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        made.append(path)
    page.set_viewport_size({"width": 1280, "height": 900})
    return made
