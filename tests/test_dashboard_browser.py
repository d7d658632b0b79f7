"""The staff home page in a real browser: its figures, attention list and chart fit a phone and a
desktop, and its health notice shows when the worker has not run."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration.services import BusinessDetails
from chamber.resources import health
from chamber.resources.models import Resource, ResourceKind, ResourceStatus
from tests.browser_support import log_in, no_horizontal_scroll, screenshot
from tests.factories import at, make_booking

pytestmark = pytest.mark.browser


def test_the_staff_home_page_fits_a_phone_and_a_desktop(pages, make_staff, make_event):
    event = make_event(title="Cybercrime: protect your business", capacity=6, starts_at=at(days=3))
    for n in range(4):
        make_booking(
            event, f"p{n}a@example.com", f"p{n}b@example.com",
            business=BusinessDetails(f"Business {n}", SizeBand.small, is_member=n % 2 == 0),
        )  # fmt: skip
    make_event(title="Cyber Essentials clinic", starts_at=at(days=40))
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olive Organiser")
    page = pages.new({"width": 360, "height": 800})
    log_in(page, organiser)
    expect(page.locator("#health-notice")).to_contain_text("No worker has run yet")
    card = page.locator(".event-card", has_text="Cybercrime")
    expect(card.locator("dd").first).to_have_text("6 of 6")
    expect(card.get_by_role("img")).to_have_attribute(
        "aria-label", re.compile(r"^8 registration\(s\) from ")
    )
    screenshot(page, "dashboard-phone")
    no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "dashboard-desktop")


def test_the_link_health_page_after_an_offline_check(pages, make_staff, app):
    db.session.add(
        Resource(
            slug="guide", title="NCSC small business guide",
            url="https://guide.chamber-test.invalid/", kind=ResourceKind.link,
            status=ResourceStatus.published,
        )
    )  # fmt: skip
    db.session.commit()
    health.run_check(health.start_run("test"))
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olive Organiser")
    page = pages.new({"width": 360, "height": 800})
    log_in(page, organiser)
    page.goto("/staff/resources/health/")
    expect(page.locator("#run-offline")).to_contain_text(
        "The checker could not reach the internet; link states were kept."
    )
    screenshot(page, "link-health-offline-phone")
    no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "link-health-offline-desktop")
