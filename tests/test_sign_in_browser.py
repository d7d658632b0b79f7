"""Two-factor sign-in in a real browser: the QR code (inline SVG under the Content-Security-Policy)
and the key, confirming with a code, the recovery codes, then signing in with the code; on a
narrow phone the pages do not scroll sideways."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.core.times import utcnow
from tests.browser_support import log_in, no_horizontal_scroll, screenshot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 740}


def test_a_member_of_staff_turns_on_two_factor_and_signs_in_with_a_code(pages, make_staff):
    user = make_staff(Role.organiser, email="olu@example.com", name="Olu Organiser")
    page = pages.new(NARROW)
    log_in(page, user)
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Where you are signed in")
    expect(page.get_by_text("This one")).to_be_visible()
    no_horizontal_scroll(page)
    page.get_by_role("link", name="Two-factor sign-in").click()

    qr = page.locator("figure.qr svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] > 100
    no_horizontal_scroll(page)
    screenshot(page, "two-factor-enrol")
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from your app").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor sign-in is on")
    expect(page.locator("ul.recovery-codes li")).to_have_count(10)
    no_horizontal_scroll(page)

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Email address", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    no_horizontal_scroll(page)
    page.get_by_label("Code").fill(totp.generate_otp(totp.timecode(utcnow()) + 1))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {user.name}")
