"""The resource library and an event's resource pack in a real browser (Debian's Chromium through
Playwright), on screen and as printed on A4, with screenshots for a person to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.demo import load_demo, seminar
from chamber.extensions import db
from tests.browser_support import (
    PHONE,
    SCREENSHOTS,
    log_in,
    no_horizontal_scroll,
    screenshot,
)

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 375, "height": 812}


def test_the_library_the_event_page_and_the_pack_on_screen_and_on_paper(app, pages, make_staff):
    load_demo(app)
    db.session.commit()
    slug = seminar.PAST_EDITION_SLUG
    page = pages.new()

    page.goto("/resources")
    expect(page.get_by_role("heading", level=1)).to_have_text("Resource library")
    expect(page.get_by_role("status").filter(has_text="6 resources")).to_be_visible()
    screenshot(page, "resource-library")

    page.get_by_label("Search the library").fill("cyber essentials")
    page.get_by_label("Size of business").select_option("micro")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(
        page.get_by_role("heading", name="Cyber Essentials Guide").or_(
            page.get_by_role("heading", name="Cyber Essentials", exact=True)
        )
    ).to_be_visible()
    screenshot(page, "resource-library-search")

    page.get_by_role("link", name="Cyber Essentials (Cyber Streetwise)").click()
    expect(page.get_by_role("note").filter(has_text="This has been replaced.")).to_be_visible()
    screenshot(page, "resource-replaced")

    page.goto(f"/events/{slug}")
    talk = page.locator(".agenda-item").filter(has_text="Cyber Essentials and your security plan")
    expect(talk.get_by_role("link", name="Five steps to a business security plan")).to_be_visible()
    screenshot(page, "event-resources")
    # The full page is long: these two show the parts this feature adds, at a readable size.
    talk.screenshot(path=str(SCREENSHOTS / "event-talk-resources.png"))
    page.locator("section.event-resources").screenshot(
        path=str(SCREENSHOTS / "event-resources-section.png")
    )

    # A past seminar's page leads to its pack from the top.
    page.get_by_role("complementary", name="Resources from this seminar").get_by_role(
        "link", name="the resource pack"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Resource pack")
    screenshot(page, "resource-pack")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download for offline use").click()
    download = download_info.value
    assert download.suggested_filename == f"{slug}-resources.html"
    saved = SCREENSHOTS / download.suggested_filename
    download.save_as(saved)

    # On paper: A4, no navigation, every address written out.
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator(".pack-actions")).to_be_hidden()
    screenshot(page, "resource-pack-print")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    page.emulate_media(media="screen")

    # The downloaded file opened from disk: styled by its own inline stylesheet, nothing fetched.
    offline = pages.new()
    offline.goto(saved.as_uri())
    expect(offline.get_by_role("heading", level=1)).to_contain_text("Resource pack")
    colour = offline.evaluate(
        "getComputedStyle(document.querySelector('.successor')).borderLeftColor"
    )
    assert colour == "rgb(0, 112, 60)"  # the inline stylesheet applied
    screenshot(offline, "resource-pack-offline")

    phone = pages.new(PHONE)
    phone.goto(f"/events/{slug}/resources")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the pack scrolls sideways on a phone ({width}px)"
    screenshot(phone, "phone-resource-pack")

    staff = pages.new()
    log_in(staff, make_staff(Role.organiser, name="Olu Organiser"))
    staff.get_by_role("navigation", name="Staff").get_by_role("link", name="Resources").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("Resources")
    screenshot(staff, "staff-resources")
    staff.get_by_role("link", name="Add a link").click()
    staff.get_by_role("button", name="Save as a draft").click()
    expect(staff.get_by_role("alert").filter(has_text="There is a problem")).to_be_visible()
    screenshot(staff, "staff-resource-form-errors")
    staff.goto("/staff/resources/events")
    staff.get_by_role("link", name=seminar.TITLE).first.click()
    expect(staff.get_by_role("heading", level=1)).to_contain_text("Resources")
    screenshot(staff, "staff-event-resources")


def test_the_library_and_a_past_seminar_on_a_small_phone_and_a_desktop(app, pages):
    load_demo(app)
    db.session.commit()
    for name, viewport in (("phone", SMALL_PHONE), ("desktop", None)):
        page = pages.new(viewport) if viewport else pages.new()
        page.goto("/resources")
        publisher = page.get_by_label("Publisher")
        expect(publisher).to_be_visible()
        width = publisher.evaluate("el => el.getBoundingClientRect().right")
        assert width <= page.viewport_size["width"], f"the Publisher menu sticks out ({width}px)"
        no_horizontal_scroll(page)
        screenshot(page, f"{name}-resource-library")

        page.goto(f"/events/{seminar.PAST_EDITION_SLUG}")
        box = page.get_by_role("complementary", name="Resources from this seminar")
        expect(box).to_be_visible()
        agenda = page.get_by_role("heading", name="Agenda", exact=True)
        assert box.bounding_box()["y"] < agenda.bounding_box()["y"]
        expect(page.get_by_role("link", name="Add to Google Calendar")).to_have_count(0)
        # A replaced 2016 link sends people to its successor; the old one is named beside it.
        entry = page.locator("section.event-resources li.resource").first
        expect(entry.get_by_role("link").first).to_have_attribute(
            "href", "https://www.ncsc.gov.uk/cyberessentials/overview"
        )
        expect(
            entry.get_by_role("link", name="Cyber Essentials (Cyber Streetwise)")
        ).to_have_attribute("href", "/resources/cyber-streetwise-cyber-essentials")
        no_horizontal_scroll(page)
        screenshot(page, f"{name}-past-seminar")
        page.locator("section.event-resources").screenshot(
            path=str(SCREENSHOTS / f"{name}-past-seminar-resources.png")
        )


def test_link_health_and_a_resources_health_for_staff_on_a_phone_and_a_desktop(
    app, pages, make_staff
):
    load_demo(app)
    db.session.commit()
    organiser = make_staff(Role.organiser, name="Olu Organiser")
    for name, viewport in (("phone", SMALL_PHONE), ("desktop", None)):
        page = pages.new(viewport) if viewport else pages.new()
        log_in(page, organiser)
        page.goto("/staff/resources/health/")
        region = page.get_by_role("region", name="Links that need attention (scrolls sideways)")
        expect(region).to_contain_text("address not found: www.cyberstreetwise.com")
        # Keyboard users reach the scrolling table with Tab, and see where they are.
        region.focus()
        expect(region).to_be_focused()
        outline = region.evaluate("el => getComputedStyle(el).outlineStyle")
        assert outline == "solid"
        page.keyboard.press("ArrowRight")
        no_horizontal_scroll(page)
        screenshot(page, f"{name}-link-health")

        page.get_by_role("link", name="Cyber incident response services (CESG and CPNI)").click()
        section = page.locator("section[aria-labelledby=link-health]")
        expect(section).to_contain_text("redirected")
        expect(section).to_contain_text("https://www.ncsc.gov.uk/")
        expect(section.get_by_role("button", name="Use the new address")).to_be_visible()
        no_horizontal_scroll(page)
        screenshot(page, f"{name}-staff-resource-health")
