"""Debian's Chromium under Playwright, for any test module that needs a real browser.

`playwright install` is not used: the browser is the system package at /usr/bin/chromium. Without
it the browser tests are skipped on a laptop but fail in CI (CI=true), where they must run.

Only one Playwright (sync API) can be running in a process at a time, so the `browser` fixture in
conftest.py opens one per test module, never one per session. `pages` opens pages (each with its
own cookies) against the live server and fails the test on any script error or failed load; the
helpers below take screenshots and check labels and descriptions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

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


# --- pages, screenshots and checks shared by the browser tests ---------------------------------

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000  # generous: CI machines are slow, and expect() returns as soon as it can

expect.set_options(timeout=TIMEOUT_MS)


class Pages:
    """Opens browser pages (each in its own context, so its own cookies) and watches for errors."""

    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts = []
        self.problems: list[str] = []

    def new(self, viewport: dict[str, int] = DESKTOP):
        context = self.browser.new_context(
            base_url=self.base_url, viewport=viewport, locale="en-GB"
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()

        # A console error is a script error or a Content-Security-Policy refusal. Failed loads are
        # reported by `on_response` instead, with their address: a form sent back with its errors
        # is a 400 document, which is right, but a missing stylesheet or any 500 is not.
        def on_console(message) -> None:
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                self.problems.append(f"{page.url}: console error: {message.text}")

        def on_response(response) -> None:
            document = response.request.resource_type == "document"
            if response.status >= 500 or (response.status >= 400 and not document):
                self.problems.append(f"{response.request.method} {response.url}: {response.status}")

        page.on("console", on_console)
        page.on("response", on_response)
        page.on(
            "pageerror", lambda error: self.problems.append(f"{page.url}: script error: {error}")
        )
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


ARIA_PROBLEMS = """() => {
  const problems = [];
  for (const el of document.querySelectorAll("[aria-describedby], [aria-labelledby]")) {
    for (const attr of ["aria-describedby", "aria-labelledby"]) {
      for (const id of (el.getAttribute(attr) || "").split(/\\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) {
          problems.push(`#${el.id || el.tagName}: ${attr} "${id}" is not on the page`);
        }
      }
    }
  }
  for (const el of document.querySelectorAll("[aria-invalid]")) {
    const value = el.getAttribute("aria-invalid");
    // Any value but "false" means invalid to assistive technology, so only "true" is honest here.
    if (value !== "true") problems.push(`#${el.id}: aria-invalid="${value}"`);
  }
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (!el.labels || el.labels.length === 0) problems.push(`#${el.id || el.name}: no label`);
  }
  return problems;
}"""


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot, then check that labels and descriptions point somewhere."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    problems = page.evaluate(ARIA_PROBLEMS)
    assert not problems, f"{page.url} has accessibility problems:\n" + "\n".join(problems)


def log_in(page, user) -> None:
    page.goto("/staff/login")
    page.get_by_label("Email address", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {user.name}")


def no_horizontal_scroll(page) -> None:
    # After a click the heading can be in the DOM before the stylesheet has loaded: measure the
    # page as it is laid out for the reader, with its styles.
    page.wait_for_load_state("load")
    widths = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"{page.url} scrolls sideways: {widths}"
