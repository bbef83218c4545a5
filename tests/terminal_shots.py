"""Terminal screenshots for test artifacts: tmux captures turned into HTML and PNG.

``tmux capture-pane -e`` gives the pane's text with its colours as ANSI escapes. rich parses those
(``Text.from_ansi``) and writes the same picture as a self-contained HTML page; headless Chromium then
screenshots the page into a PNG. Everything is local: Chromium loads a ``file://`` page with networking
features off, and nothing else is fetched.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from io import StringIO
from pathlib import Path

from rich.console import Console
from rich.text import Text

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def ansi_to_html(ansi: str, *, width: int, title: str) -> str:
    console = Console(
        record=True, width=width, file=StringIO(), force_terminal=True, color_system="truecolor"
    )
    console.print(Text.from_ansi(ansi), soft_wrap=True)
    return console.export_html(inline_styles=True, theme=None).replace(
        "<head>", f"<head><title>{title}</title>", 1
    )


def screenshot(html_path: Path, png_path: Path, *, size: tuple[int, int] = (1280, 900)) -> bool:
    """Screenshot a local HTML page with headless Chromium; False when Chromium is not available."""
    if not Path(CHROMIUM).exists():
        return False
    with tempfile.TemporaryDirectory(prefix="drills-chromium-") as profile:
        proc = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={png_path}",
                html_path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    return proc.returncode == 0 and png_path.exists() and png_path.stat().st_size > 0


def save_capture(ansi: str, directory: Path, name: str, *, width: int) -> dict[str, Path]:
    """Write ``name``.ansi (raw), .txt (plain), .html and, if Chromium is here, .png; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {
        "ansi": directory / f"{name}.ansi",
        "txt": directory / f"{name}.txt",
        "html": directory / f"{name}.html",
    }
    out["ansi"].write_text(ansi, encoding="utf-8")
    out["txt"].write_text(Text.from_ansi(ansi).plain, encoding="utf-8")
    out["html"].write_text(ansi_to_html(ansi, width=width, title=name), encoding="utf-8")
    png = directory / f"{name}.png"
    lines = ansi.count("\n") + 1
    if screenshot(out["html"], png, size=(max(1000, width * 11), 60 + lines * 20)):
        out["png"] = png
    return out
