"""End to end in a real browser: Debian's Chromium, driven by Playwright, against a live server.

Inputs are found by their labels, so these tests also prove that every field is labelled.
Screenshots of the main pages go to test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from tests.browser_support import PHONE, log_in, no_horizontal_scroll, screenshot

pytestmark = pytest.mark.browser


# --- helpers -------------------------------------------------------------------------------------


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
    page.get_by_label("Street address", exact=True).fill("St George's Way")
    page.get_by_label("Town or city", exact=True).fill("Stevenage")
    page.get_by_label("Postcode", exact=True).fill("SG1 1HS")
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
