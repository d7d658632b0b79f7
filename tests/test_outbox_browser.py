"""In a real browser, at desktop and phone widths: staff read in the Outbox why a confirmation was
withdrawn rather than sent (the place was cancelled before the worker sent it)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import OutboxMessage
from chamber.registration import notifications, staff
from chamber.registration.services import DelegateDetails
from tests.browser_support import DESKTOP, log_in, no_horizontal_scroll, screenshot
from tests.factories import make_booking

pytestmark = pytest.mark.browser

PHONE = {"width": 320, "height": 640}


def test_staff_read_why_a_confirmation_was_withdrawn(pages, make_event, admin, smtp_server):
    event = make_event(title="Cyber seminar", capacity=5)
    people = [DelegateDetails("Ann Booker", "ann@octree.example")]
    result = make_booking(event, *people, source="web", commit=False)
    notifications.booking_emails(event, result)
    db.session.commit()
    staff.cancel(event, result.confirmed[0], by=admin)
    db.session.commit()
    deliver_due()
    withdrawn = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.startswith("confirmed:"))
    ).one()

    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page = pages.new(size)
        log_in(page, admin)
        page.goto("/staff/outbox/?status=cancelled")
        row = page.get_by_role("row").filter(has_text="Your place at Cyber seminar")
        expect(row).to_contain_text("Withdrawn: out of date when it was due to go.")
        no_horizontal_scroll(page)
        screenshot(page, f"outbox-withdrawn-list-{label}")
        row.get_by_role("link", name="Your place at Cyber seminar").click()
        expect(page).to_have_url(f"{pages.base_url}/staff/outbox/{withdrawn.id}")
        reason = page.locator("dt", has_text="Why not sent").locator("xpath=following-sibling::dd")
        expect(reason).to_contain_text("The place is now cancelled")
        expect(page.locator("dt", has_text="Last error")).to_have_count(0)
        no_horizontal_scroll(page)
        screenshot(page, f"outbox-withdrawn-message-{label}")
