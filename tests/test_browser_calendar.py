"""In a real browser: staff change a seminar's venue, are told who will be emailed, and confirm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members.models import SizeBand
from chamber.registration import notifications
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.browser_support import log_in, screenshot
from tests.factories import make_booking

pytestmark = pytest.mark.browser


def test_changing_the_venue_asks_first_then_emails_each_confirmed_delegate(
    pages, make_staff, make_event
):
    starts = datetime(2030, 7, 4, 7, 0, tzinfo=UTC)
    event = make_event(starts_at=starts, ends_at=starts + timedelta(hours=4), capacity=5)
    people = [DelegateDetails(name=f"Person {n}", email=f"p{n}@example.com") for n in (1, 2)]
    business = BusinessDetails("Octree Ltd", SizeBand.small, "IT", "Stevenage")
    booked = make_booking(event, *people, business=business, source="web", commit=False)
    notifications.booking_emails(event, booked)
    db.session.commit()
    organiser = make_staff(role=Role.organiser)

    page = pages.new()
    log_in(page, organiser)
    page.goto(f"/staff/events/{event.id}/edit")
    expect(page.locator("#notify-hint")).to_contain_text("2 confirmed delegates will be emailed")
    page.get_by_label("Venue", exact=True).fill("Knebworth House")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("heading", name="Check before you save")).to_be_visible()
    expect(page.locator("#notify-check")).to_contain_text("You changed the venue")
    screenshot(page, "staff-event-change-check")
    page.get_by_role("button", name="Save and email 2 delegates").click()
    expect(page.get_by_role("status")).to_contain_text("2 confirmed delegates will be emailed")

    db.session.expire_all()
    updates = db.session.scalars(
        db.select(OutboxMessage.to_address).where(OutboxMessage.key.like("event-update:%"))
    ).all()
    assert sorted(updates) == ["p1@example.com", "p2@example.com"]
