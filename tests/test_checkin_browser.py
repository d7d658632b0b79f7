"""The door in a real browser: a volunteer on a phone adds a walk-in and sees them checked in;
the badges and the sign-in sheet lay out on A4 when printed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.members.models import SizeBand
from chamber.registration.services import BusinessDetails
from tests.browser_support import PHONE, log_in, no_horizontal_scroll, screenshot
from tests.factories import make_booking

pytestmark = pytest.mark.browser

MM = 96 / 25.4  # CSS pixels in a millimetre
A4_WIDTH_MM, A4_HEIGHT_MM, PAGE_MARGIN_MM = 210, 297, 10


@pytest.fixture
def seminar(make_event):
    event = make_event(
        title="Cyber seminar", capacity=12, business_limit=5,
        starts_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
    )  # fmt: skip
    octree = BusinessDetails("Octree Ltd", SizeBand.small, is_member=True)
    make_booking(
        event, "tony.richardson@octree.example", "zoe.obrien@octree.example", business=octree
    )
    for n in range(8):
        make_booking(
            event,
            f"delegate.{n}@business{n}.example",
            business=f"Hertfordshire Business Number {n} Limited",
        )
    return event


def test_a_volunteer_adds_a_walk_in_and_sees_them_checked_in(pages, make_staff, seminar):
    volunteer = make_staff(Role.checkin, email="door@example.com", name="Dee Door")
    page = pages.new(PHONE)
    log_in(page, volunteer)
    page.goto(f"/staff/checkin/{seminar.id}")
    screenshot(page, "door-phone")
    no_horizontal_scroll(page)

    page.get_by_role("link", name="Add a walk-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a walk-in")
    expect(page.get_by_text("2 of 12 places free.")).to_be_visible()
    page.get_by_label("Full name", exact=True).fill("Walter Inman")
    page.get_by_label("Email address", exact=True).fill("walter@inman.example")
    page.get_by_label("Business", exact=True).fill("Inman & Co")
    page.get_by_role("button", name="Add and check in").click()

    # A new business: the size is asked for, the rest kept as typed.
    expect(page.get_by_role("alert")).to_contain_text("choose how many people it employs")
    expect(page.get_by_label("Full name", exact=True)).to_have_value("Walter Inman")
    screenshot(page, "walk-in-error-phone")
    no_horizontal_scroll(page)
    page.get_by_label("How many people does the business employ?").select_option(value="micro")
    page.get_by_role("button", name="Add and check in").click()

    expect(
        page.get_by_role("status").filter(has_text="Added and checked in: Walter Inman.")
    ).to_be_visible()
    walter = page.locator(".door-person", has_text="Walter Inman")
    expect(walter).to_contain_text("Checked in")
    expect(walter).to_contain_text("Inman & Co")
    expect(page.locator("[data-count=checked_in]")).to_have_text("1")
    screenshot(page, "walk-in-done-phone")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/staff/checkin/{seminar.id}/walk-in")
    screenshot(page, "walk-in-desktop")


def test_badges_fit_the_a4_page_two_across_and_four_down(pages, make_staff, seminar):
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olive Organiser")
    page = pages.new()
    log_in(page, organiser)
    page.goto(f"/staff/checkin/{seminar.id}/badges")
    screenshot(page, "badges-screen")
    page.set_viewport_size({"width": 320, "height": 800})
    no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.emulate_media(media="print")
    expect(page.locator(".print-toolbar")).to_be_hidden()
    sheets = page.locator(".badge-sheet")
    expect(sheets).to_have_count(2)  # ten badges: eight, then two
    printable = (A4_WIDTH_MM - 2 * PAGE_MARGIN_MM) * MM
    for index in range(2):
        sheet = sheets.nth(index).bounding_box()
        assert sheet["width"] <= printable + 1, sheet
    badges = page.locator(".badge")
    expect(badges).to_have_count(10)
    first_sheet = [badges.nth(i).bounding_box() for i in range(8)]
    left = min(box["x"] for box in first_sheet)
    assert len({round(box["x"]) for box in first_sheet}) == 2  # two across
    assert len({round(box["y"]) for box in first_sheet}) == 4  # four down
    for box in first_sheet:
        assert box["x"] + box["width"] - left <= printable + 1
        assert box["height"] * 4 <= (A4_HEIGHT_MM - 2 * PAGE_MARGIN_MM) * MM + 1
    # A long name and business wrap inside their badge, never past it.
    for i in range(8):
        name = badges.nth(i).locator(".badge-business").bounding_box()
        box = first_sheet[i]
        assert name["x"] + name["width"] <= box["x"] + box["width"] + 0.5

    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 2  # one sheet of eight, one of two


def test_the_sign_in_sheet_prints_on_a4_with_a_signature_column(pages, make_staff, seminar):
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olive Organiser")
    page = pages.new()
    log_in(page, organiser)
    page.goto(f"/staff/checkin/{seminar.id}/sign-in-sheet")
    screenshot(page, "sign-in-sheet-screen")
    page.set_viewport_size({"width": 320, "height": 800})
    no_horizontal_scroll(page)
    # In print the page is as wide as A4 inside its margins: the table fits that width.
    printable = round((A4_WIDTH_MM - 2 * PAGE_MARGIN_MM) * MM)
    page.set_viewport_size({"width": printable, "height": 1000})
    page.emulate_media(media="print")
    table = page.locator("table.sign-in").bounding_box()
    assert table["x"] + table["width"] <= printable + 0.5
    no_horizontal_scroll(page)
    expect(page.get_by_role("columnheader", name="Signature")).to_be_visible()
    expect(page.locator("table.sign-in tbody tr")).to_have_count(10 + 5)  # and five blank lines
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
