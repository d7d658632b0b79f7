"""Retention and erasure in a real browser: an admin erases a person from the preview with mouse
and keyboard, the seat goes to the person waiting, and the pages fit a desktop and a 320 px phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.registration.models import Delegate, DelegateStatus
from tests.browser_support import log_in, no_horizontal_scroll, screenshot
from tests.privacy_support import rows_holding
from tests.test_privacy_erasure import LOCAL, PERSON, full_event_with_person_and_waiting

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 320, "height": 740}}


def test_an_admin_erases_a_person_after_the_preview(pages, make_staff, make_event):
    event, held, waiting = full_event_with_person_and_waiting(make_event)
    admin = make_staff(Role.admin, email="admin@example.com", name="Ada Admin")
    page = pages.new(WIDTHS["phone"])
    log_in(page, admin)

    page.goto("/staff/privacy/retention")
    expect(page.get_by_role("heading", level=1)).to_have_text("Retention")
    no_horizontal_scroll(page)
    screenshot(page, "privacy-retention-phone")

    page.goto("/staff/privacy/erase")
    page.get_by_role("button", name="See what erasing would do").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter the email address")
    field = page.get_by_label("Email address of the person to erase")
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill(PERSON.upper())
    field.press("Enter")
    expect(page.get_by_role("heading", level=2)).to_contain_text(PERSON)
    expect(page.locator(".what-happens")).to_contain_text(
        "the seat goes to the first person waiting"
    )
    assert LOCAL not in page.url
    no_horizontal_scroll(page)
    screenshot(page, "privacy-erase-preview-phone")

    page.get_by_role("button", name="Erase this person").click()
    expect(page.get_by_text("Erased.")).to_be_visible()
    assert LOCAL not in page.url
    db.session.expire_all()
    assert db.session.get(Delegate, waiting.id).status == DelegateStatus.confirmed
    assert db.session.get(Delegate, held.id).status == DelegateStatus.cancelled
    assert mail.is_suppressed(PERSON) and rows_holding(LOCAL) == []
