"""End to end in a real browser: Debian's Chromium, driven by Playwright, against a live server.

Inputs are found by their labels, so these tests also prove that every field is labelled.
Screenshots of the main pages go to test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from tests.browser_support import chromium_browser
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000  # generous: CI machines are slow, and expect() returns as soon as it can

expect.set_options(timeout=TIMEOUT_MS)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator:
    # Module scope, not session: only one Playwright may run in a process at a time, and other
    # test modules start their own.
    with chromium_browser() as browser:
        yield browser


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


@pytest.fixture
def pages(browser, live_server) -> Iterator[Pages]:
    opened = Pages(browser, live_server)
    yield opened
    opened.close()
    assert not opened.problems, "the browser reported errors:\n" + "\n".join(opened.problems)


@pytest.fixture
def page(pages):
    """A desktop-sized page with nobody logged in."""
    return pages.new()


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


def staff_nav(page):
    return page.get_by_role("navigation", name="Staff")


def fill_event_form(page, *, title: str, starts: str, ends: str) -> None:
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Summary", exact=True).fill(
        "Practical advice on keeping your business safe online."
    )
    page.get_by_label("Description", exact=True).fill(
        "Cybercrime costs UK businesses billions each year.\n\n"
        "- Hear from the police\n- Leave with a plan"
    )
    page.get_by_label("Time zone", exact=True).select_option("Europe/London")
    page.get_by_label("Starts", exact=True).fill(starts)
    page.get_by_label("Ends", exact=True).fill(ends)
    page.get_by_label("Venue", exact=True).fill("Holiday Inn Stevenage")
    page.get_by_label("Venue address", exact=True).fill("St George's Way\nStevenage SG1 1HS")
    page.get_by_label("Capacity", exact=True).fill("80")
    page.get_by_label("Delegates per business", exact=True).fill("3")
    page.get_by_label("Host", exact=True).fill("Hertfordshire Chamber of Commerce")
    page.get_by_label("Supporters", exact=True).fill(
        "Police and Crime Commissioner's Community Fund"
    )


def add_agenda_item(
    page, *, title: str, kind: str, starts: str, ends: str, speaker: str | None = None
):
    page.get_by_role("link", name="Add an agenda item", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add an agenda item")
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Kind", exact=True).select_option(label=kind)
    page.get_by_label("Starts", exact=True).fill(starts)
    page.get_by_label("Ends", exact=True).fill(ends)
    if speaker:
        page.get_by_label("Speaker 1", exact=True).select_option(label=speaker)
    page.get_by_role("button", name="Add item").click()
    expect(page.get_by_role("status").filter(has_text="Saved the agenda item.")).to_be_visible()


# --- the journey ---------------------------------------------------------------------------------


def test_organiser_builds_and_publishes_an_event_that_the_public_then_sees(pages, make_staff):
    organiser = make_staff(Role.organiser, name="Olu Organiser")
    staff = pages.new()

    staff.goto("/staff/login")
    screenshot(staff, "login")
    log_in(staff, organiser)
    screenshot(staff, "staff-dashboard")

    # A speaker, through the speaker directory.
    staff_nav(staff).get_by_role("link", name="Speakers", exact=True).click()
    staff.get_by_role("link", name="Add a speaker", exact=True).click()
    staff.get_by_label("Name", exact=True).fill("Tony Richardson")
    staff.get_by_label("Job title", exact=True).fill("Managing Director")
    staff.get_by_label("Organisation", exact=True).fill("Octree")
    staff.get_by_label("Email address (private)", exact=True).fill("tony@example.com")
    staff.get_by_role("button", name="Add speaker").click()
    expect(staff.get_by_role("status")).to_have_text("Saved Tony Richardson.")
    expect(staff.get_by_role("cell", name="Octree")).to_be_visible()

    # The event, as a draft.
    staff_nav(staff).get_by_role("link", name="Events", exact=True).click()
    staff.get_by_role("link", name="Create an event", exact=True).click()
    fill_event_form(
        staff,
        title="Cybercrime: protect your business",
        starts="2030-03-05T09:00",
        ends="2030-03-05T12:30",
    )
    staff.get_by_role("button", name="Create draft event").click()
    expect(staff.get_by_role("status")).to_contain_text(
        "Created “Cybercrime: protect your business” as a draft"
    )
    expect(staff.get_by_role("note")).to_contain_text("Draft.")
    expect(staff.locator(".facts")).to_contain_text("Tuesday 5 March 2030, 09:00")

    # Two agenda items, the later one first: the agenda must still come out in time order.
    add_agenda_item(
        staff,
        title="How criminals get into small businesses",
        kind="Talk",
        starts="2030-03-05T09:15",
        ends="2030-03-05T10:00",
        speaker="Tony Richardson (Octree)",
    )
    add_agenda_item(
        staff,
        title="Welcome and introductions",
        kind="Welcome",
        starts="2030-03-05T09:00",
        ends="2030-03-05T09:15",
    )
    agenda_rows = staff.get_by_role("table", name="Agenda items, in order").locator("tbody tr")
    expect(agenda_rows).to_have_count(2)
    expect(agenda_rows.nth(0)).to_contain_text("09:00–09:15")
    expect(agenda_rows.nth(0)).to_contain_text("Welcome and introductions")
    expect(agenda_rows.nth(1)).to_contain_text("Tony Richardson")

    staff.get_by_role("button", name="Publish", exact=True).click()
    expect(staff.get_by_role("status")).to_contain_text("it is now on the public site")
    expect(staff.get_by_role("button", name="Unpublish", exact=True)).to_be_visible()
    screenshot(staff, "staff-event")

    # A member of the public, with no staff cookie, finds it from the home page.
    public = pages.new()
    public.goto("/")
    expect(public.get_by_role("heading", level=1)).to_have_text("Business seminars")
    card = public.locator(".card").filter(has_text="Cybercrime: protect your business")
    expect(card).to_contain_text("Tuesday 5 March 2030, 09:00")
    expect(card).to_contain_text("Holiday Inn Stevenage")
    screenshot(public, "home")

    card.get_by_role("link", name="Cybercrime: protect your business").click()
    expect(public).to_have_url(re.compile(r"/events/[a-z0-9-]+$"))
    expect(public.get_by_role("heading", level=1)).to_have_text("Cybercrime: protect your business")
    expect(public.locator(".staff-bar")).to_have_count(0)
    expect(public.locator(".agenda-title")).to_have_text(
        ["Welcome and introductions", "How criminals get into small businesses"]
    )
    expect(public.locator(".agenda-time")).to_have_text(["09:00–09:15", "09:15–10:00"])
    expect(public.locator(".agenda-item").nth(1).locator(".agenda-speakers")).to_have_text(
        re.compile(r"Tony Richardson,\s*Octree")
    )
    speakers = public.get_by_role("region", name="Speakers")
    expect(speakers.get_by_role("heading", name="Tony Richardson")).to_be_visible()
    expect(speakers).not_to_contain_text("tony@example.com")  # the email is private
    expect(
        public.get_by_role("region", name="About this event").get_by_role("listitem")
    ).to_have_text(["Hear from the police", "Leave with a plan"])
    screenshot(public, "event")


def test_invalid_event_form_shows_the_error_summary_and_focuses_it(pages, make_staff):
    page = pages.new()
    log_in(page, make_staff(Role.admin, name="Ada Admin"))
    page.goto("/staff/events/new")
    fill_event_form(page, title="Back to front", starts="2030-03-05T12:00", ends="2030-03-05T09:00")
    page.get_by_role("button", name="Create draft event").click()

    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()  # a keyboard or screen reader user starts at the problem
    summary_link = summary.get_by_role("link", name="The event must end after it starts.")
    expect(summary_link).to_have_attribute("href", "#ends_at")

    ends = page.get_by_label("Ends", exact=True)
    expect(ends).to_have_attribute("aria-invalid", "true")
    expect(ends).to_have_accessible_description(re.compile("The event must end after it starts"))
    expect(page.locator("#ends_at-error")).to_contain_text("The event must end after it starts.")
    # What was typed is kept.
    expect(page.get_by_label("Title", exact=True)).to_have_value("Back to front")
    expect(page.get_by_label("Starts", exact=True)).to_have_value("2030-03-05T12:00")
    screenshot(page, "event-form-errors")

    # The next Tab reaches the summary's link, and following it leads to the field.
    page.keyboard.press("Tab")
    expect(summary_link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#ends_at$"))
    expect(ends).to_be_in_viewport()


def test_wrong_password_is_refused_with_a_summary(page, make_staff):
    user = make_staff(Role.organiser)
    page.goto("/staff/login")
    page.get_by_label("Email address", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("The email address or password is not right.")
    expect(summary).to_be_focused()
    expect(page.get_by_label("Email address", exact=True)).to_have_value(user.email)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    screenshot(page, "login-error")


# --- small screens -------------------------------------------------------------------------------


def no_horizontal_scroll(page) -> None:
    widths = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"{page.url} scrolls sideways: {widths}"


def test_public_pages_fit_a_phone_without_sideways_scrolling(
    pages, make_event, make_item, make_speaker
):
    event = make_event(
        title="Cybercrime seminar: protecting Hertfordshire's businesses from online fraud",
        starts_at=datetime(2030, 3, 5, 9, 0, tzinfo=UTC),
        supporters="Police and Crime Commissioner's Community Fund\nHertfordshire Constabulary",
        description=(
            "Cybercrime costs UK businesses billions each year. Free courses for small firms: "
            # A real-world address: too long for a phone's line, with no break the browser likes.
            "https://www.nationalarchives.gov.uk/information-management/manage-information/\n\n"
            "- Audit\n- Plan\n- Execute\n- Monitor\n- Repeat"
        ),
    )
    make_item(event, title="Welcome and introductions", length=15)
    make_item(
        event,
        minutes_in=15,
        length=45,
        title="Cybercrime: the threats facing small businesses",
        speakers=[
            make_speaker(job_title="Managing Director"),
            make_speaker("Detective Sergeant Julie Lloyd", "Eastern Region Cyber Crime Unit"),
        ],
    )
    page = pages.new(viewport=PHONE)

    page.goto(f"/events/{event.slug}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cybercrime seminar")
    expect(page.locator(".agenda-item")).to_have_count(2)
    screenshot(page, "phone-event")
    no_horizontal_scroll(page)

    page.goto("/")
    expect(page.get_by_role("link", name=event.title)).to_be_visible()
    screenshot(page, "phone-home")
    no_horizontal_scroll(page)
