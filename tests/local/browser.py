"""Headless Chromium for the report test, when one is installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    # No sandbox as root; no background or component traffic (this network is closed).
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def find_chromium() -> tuple[str | None, str]:
    """The installed Chromium (or Chrome) binary; else (None, why). Not installed from here:
    tests never reach the network, and an apt-get would."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found, ""
    return None, "no chromium on PATH (Debian/Ubuntu: apt-get install chromium)"


def render_dom(chromium: str, page: Path) -> str:
    """The DOM after Chromium has loaded and laid out the page."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                               page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    done.check_returncode()
    return done.stdout


def screenshot(chromium: str, page: Path, png: Path, size: str = "1200,1600") -> Path:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        "--hide-scrollbars", f"--screenshot={png.resolve()}", page.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120).check_returncode()
    return png
