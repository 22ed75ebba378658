"""Playwright on Debian's chromium (no browser download): a page on a live JupyterLab."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .live import REPO, TOKEN, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: screenshots of the browser tests (gitignored), for people to look at
ARTIFACTS = REPO / "tests" / "artifacts"


@contextmanager
def lab_page(server: LiveServer) -> Iterator[object]:
    """A chromium page showing the lab, its launcher loaded."""
    if not os.path.exists(CHROMIUM):
        raise AssertionError(
            f"Debian's chromium is needed at {CHROMIUM} for the browser tests: "
            "apt-get install chromium (.ci/run does)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            page.goto(f"{server.base}/lab?reset&token={TOKEN}")
            page.wait_for_selector(".jp-LauncherCard", timeout=90_000)
            yield page
        finally:
            browser.close()


def shot(page: object, name: str) -> Path:
    """Save a screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path
