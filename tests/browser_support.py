"""Debian's Chromium under Playwright, for any test module that needs a real browser.

`playwright install` is not used: the browser is the system package at /usr/bin/chromium. Without
it the browser tests are skipped on a laptop but fail in CI (CI=true), where they must run.

Only one Playwright (sync API) can be running in a process at a time, so open the browser with a
module-scoped fixture (or inside one test), never a session-scoped one:

    @pytest.fixture(scope="module")
    def browser():
        with chromium_browser() as browser:
            yield browser
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip the test (fail it in CI) when Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}. Browser tests must run in CI.", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium_browser() -> Iterator:
    """A headless Chromium, closed (with its Playwright driver) when the block ends."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
