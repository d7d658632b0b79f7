"""The double opt-in in a real browser (Debian's Chromium): subscribe on a 320 px phone, confirm
from the link in the email the worker delivered, then change one's choices and unsubscribe from
the link in the welcome email. Every page fits the screen and keeps its labels honest."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.delivery import deliver_due
from chamber.members.marketing import Basis, status_of
from chamber.members.models import Consent, Contact, MarketingTopic
from tests.browser_support import DESKTOP, no_horizontal_scroll, screenshot

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}
ADDRESS = "alexandra.featherstonehaugh@octree.example"


def emailed_link(smtp_server, path: str) -> str:
    """The path of the link to `path` in the newest email the worker delivers now."""
    report = deliver_due()
    assert report.sent >= 1 and report.failed == 0
    body = smtp_server.messages[-1].get_body(("plain",)).get_content()
    return urlsplit(re.search(rf"https?://\S+{re.escape(path)}\S+", body).group(0)).path


def anne() -> Contact:
    db.session.expire_all()
    return db.session.scalars(db.select(Contact).where(Contact.email == ADDRESS)).one()


def test_subscribe_confirm_and_choose_topics_on_a_phone(pages, smtp_server):
    page = pages.new(viewport=NARROW)
    page.goto("/subscribe")
    expect(page.get_by_role("heading", level=1)).to_have_text("Get our emails")
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-subscribe")

    # Sent empty: the error summary, each error beside its field.
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.get_by_role("link", name="Enter your name.")).to_be_visible()
    expect(
        page.get_by_role("link", name="Choose at least one thing to hear about.")
    ).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-subscribe-errors")

    page.get_by_label("Your full name").fill("Alexandra Featherstonehaugh-Worthington")
    page.get_by_label("Your email address").fill(ADDRESS)
    page.get_by_label("Your business or organisation (optional)").fill("Octree Ltd")
    page.get_by_label("Events and seminars").check()
    page.get_by_label("The chamber's newsletter").check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_text(ADDRESS)).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-subscribe-check-email")
    assert status_of(anne(), MarketingTopic.events).basis is Basis.no_basis

    # The link in the email opens a page with a button; opening it confirms nothing.
    page.goto(emailed_link(smtp_server, "/subscribe/confirm/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your subscription")
    expect(page.get_by_role("listitem").filter(has_text="Events and seminars")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-subscribe-confirm")
    assert all(c is None for c in db.session.scalars(db.select(Consent.confirmed_at)))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-subscribe-confirmed")
    assert status_of(anne(), MarketingTopic.events).basis is Basis.consent
    assert status_of(anne(), MarketingTopic.newsletter).basis is Basis.consent

    # The welcome email's preferences link: drop the newsletter, then unsubscribe from all.
    page.goto(emailed_link(smtp_server, "/preferences/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email choices")
    expect(page.get_by_label("Events and seminars")).to_be_checked()
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-preferences")
    page.get_by_label("The chamber's newsletter").uncheck()
    page.get_by_label("Surveys about business needs").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_role("status").filter(has_text="Your choices are saved")).to_be_visible()
    expect(page.get_by_label("The chamber's newsletter")).not_to_be_checked()
    assert status_of(anne(), MarketingTopic.newsletter).basis is Basis.opted_out
    assert status_of(anne(), MarketingTopic.events).basis is Basis.consent
    page.get_by_role("button", name="Unsubscribe from everything").click()
    expect(page.get_by_role("status").filter(has_text="You are unsubscribed")).to_have_count(2)
    no_horizontal_scroll(page)
    assert mail.is_suppressed(ADDRESS)


def test_the_public_pages_at_1280_px(pages, smtp_server):
    page = pages.new(viewport=DESKTOP)
    page.goto("/subscribe")
    screenshot(page, "desktop-subscribe")
    page.get_by_label("Your full name").fill("Sam Walker")
    page.get_by_label("Your email address").fill("sam@walker.example")
    page.get_by_label("Surveys about business needs").check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    screenshot(page, "desktop-subscribe-check-email")
    page.goto(emailed_link(smtp_server, "/subscribe/confirm/"))
    screenshot(page, "desktop-subscribe-confirm")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    page.goto(emailed_link(smtp_server, "/preferences/"))
    expect(page.get_by_label("Surveys about business needs")).to_be_checked()
    screenshot(page, "desktop-preferences")
