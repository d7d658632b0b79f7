"""The event pages changed for issue 17, in Chromium at 1280 and 360 px: the event form with the
venue's address and the "move the agenda" box and its check step, the past-event confirmations,
the copy form, and the public page's address block."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.events.models import EventStatus
from chamber.extensions import db
from tests.browser_support import SCREENSHOTS, log_in, no_horizontal_scroll, screenshot
from tests.factories import make_booking

pytestmark = pytest.mark.browser

PHONE_320 = {"width": 360, "height": 800}
WIDE = {"width": 1280, "height": 900}


def shot(page, name: str) -> None:
    """A screenshot (copied to $SHOTS_DIR too, when set, for a reviewer to look at)."""
    no_horizontal_scroll(page)
    screenshot(page, name)
    if shots := os.environ.get("SHOTS_DIR"):
        Path(shots).mkdir(exist_ok=True)
        shutil.copy(SCREENSHOTS / f"{name}.png", Path(shots) / f"{name}.png")


def test_the_event_pages_of_issue_17_at_two_widths(
    app, pages, make_staff, make_event, make_item, make_speaker
):
    organiser = make_staff(role=Role.organiser)
    starts = datetime(2030, 3, 20, 9, 0, tzinfo=UTC)
    event = make_event(
        title="Cybercrime: protect your business",
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        venue_address="St George's Way",
        venue_town="Stevenage",
        venue_postcode="SG1 1HS",
    )
    make_item(event, minutes_in=0, title="Welcome")
    make_item(event, minutes_in=60, title="Keynote", speakers=[make_speaker()])
    make_booking(event, "ann@example.com")
    past = make_event(
        title="Last year's seminar",
        status=EventStatus.draft,
        starts_at=datetime(2016, 7, 4, 8, tzinfo=UTC),
    )
    for width, viewport in (("1280", WIDE), ("360", PHONE_320)):
        page = pages.new(viewport)
        log_in(page, organiser)

        page.goto(f"/events/{event.slug}")
        expect(page.locator(".address")).to_contain_text("Stevenage SG1 1HS")
        shot(page, f"event-public-{width}")

        page.goto(f"/staff/events/{event.id}")
        shot(page, f"event-staff-{width}")

        page.goto(f"/staff/events/{event.id}/edit")
        expect(page.get_by_label("Move the agenda with the event")).to_be_checked()
        shot(page, f"event-edit-{width}")
        page.get_by_label("Starts", exact=True).fill("2030-03-20T09:30")
        page.get_by_label("Ends", exact=True).fill("2030-03-20T12:30")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("heading", name="Check before you save")).to_be_visible()
        expect(page.locator("#notify-check")).to_contain_text("The agenda moves with the event too")
        shot(page, f"event-edit-check-{width}")

        page.goto(f"/staff/events/{event.id}/copy")
        expect(page.get_by_label("Title of the copy")).to_have_value(
            "Cybercrime: protect your business (copy)"
        )
        shot(page, f"event-copy-{width}")
        page.get_by_label("Title of the copy").fill("")
        page.get_by_role("button", name="Copy as a draft").click()
        expect(page.locator(".error-summary")).to_contain_text("Enter the copy's title.")
        shot(page, f"event-copy-error-{width}")

        page.goto(f"/staff/events/{past.id}")
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Publish “Last year's seminar”?")
        shot(page, f"event-publish-past-{width}")

        page.goto("/staff/events/new")
        page.get_by_label("Title", exact=True).fill("An old seminar")
        page.get_by_label("Venue", exact=True).fill("Holiday Inn Stevenage")
        page.get_by_label("Starts", exact=True).fill("2016-07-04T08:00")
        page.get_by_label("Ends", exact=True).fill("2016-07-04T12:00")
        page.get_by_label("Capacity").fill("50")
        page.get_by_label("Delegates per business").fill("3")
        page.get_by_role("button", name="Create draft event").click()
        expect(page.get_by_role("heading", name="This event has already ended")).to_be_visible()
        shot(page, f"event-create-past-{width}")
    db.session.expire_all()
    assert db.session.get(type(past), past.id).status == EventStatus.draft
