"""A campaign's staff pages in a real browser (Debian's Chromium): what staff typed, however long,
fits a 320 px phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.campaigns.models import Campaign
from chamber.extensions import db
from tests.browser_support import DESKTOP, log_in, no_horizontal_scroll, screenshot

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}


def test_a_long_unbroken_subject_breaks_rather_than_widening_the_page(pages, make_staff):
    subject = "Café culture: Zoë's 5 " + "x" * 120
    campaign = Campaign(subject=subject, preview_text="Two-step logins, backups, updates")
    db.session.add(campaign)
    db.session.commit()
    organiser = make_staff(email="olivia@chamber.example", name="Olivia Organiser")
    for label, viewport in (("phone-320", NARROW), ("desktop", DESKTOP)):
        page = pages.new(viewport=viewport)
        log_in(page, organiser)
        for name, path in (
            ("show", f"/staff/campaigns/{campaign.id}"),
            ("list", "/staff/campaigns"),
        ):
            page.goto(path)
            expect(page.get_by_text("Café culture: Zoë's 5").first).to_be_visible()
            no_horizontal_scroll(page)
            screenshot(page, f"{label}-campaign-long-subject-{name}")
