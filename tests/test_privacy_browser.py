"""In a real browser: a person books on a phone, following the privacy notice from the privacy
box; an admin finds everything held about them and downloads it as a zip of JSON."""

from __future__ import annotations

import json
import zipfile

import pytest
from playwright.sync_api import expect

from chamber.core.addresses import address_hash
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.registration.models import Booking, Delegate, DelegateStatus
from tests.browser_support import DESKTOP, log_in, no_horizontal_scroll
from tests.factories import at
from tests.privacy_support import DOMAIN, figures, rows_holding, seminar_with_survey

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}
EMAIL = "zoe.obrien@octree.example"
LOCAL = "amara.okafor"  # came to last month's seminar (privacy_support.PEOPLE)
PERSON = f"{LOCAL}@{DOMAIN}"


def book_on_a_phone(page, event, email: str = EMAIL) -> None:
    page.goto(f"/events/{event.slug}/register")
    fields = {
        "business_name": "Octree Ltd", "sector": "IT services", "town_or_postcode": "Stevenage",
        "booker_name": "Zoë O'Brien", "booker_email": email, "delegates-0-name": "Zoë O'Brien",
        "delegates-0-email": email, "delegates-0-needs": "Vegetarian",
    }  # fmt: skip
    for name, value in fields.items():
        page.locator(f"[name='{name}']").fill(value)
    page.locator("[name='size_band'][value='small']").check()
    page.locator("[name='is_member'][value='yes']").check()
    link = page.get_by_role("link", name="privacy notice (opens in a new tab)")
    expect(link).to_have_attribute("href", "/privacy")
    with page.context.expect_page() as opened:
        link.click()  # a new tab: what was typed stays in the form
    notice = opened.value
    notice.wait_for_load_state()
    expect(notice.get_by_role("heading", level=1)).to_have_text("Privacy notice")
    expect(notice.get_by_text("24 months after the event", exact=False)).to_be_visible()
    no_horizontal_scroll(notice)
    notice.close()
    page.get_by_label("I have read the privacy notice", exact=False).check()
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Booking received")


def test_a_person_books_and_an_admin_downloads_all_they_hold(pages, make_event, admin, tmp_path):
    event = make_event(title="Cyber seminar")
    book_on_a_phone(pages.new(NARROW), event)
    assert db.session.scalars(db.select(Booking.privacy_notice_version)).one() == 0

    staff = pages.new(DESKTOP)
    log_in(staff, admin)
    staff.get_by_role("link", name="Privacy", exact=True).click()
    staff.get_by_role("link", name="A person's data").click()
    staff.get_by_label("Email address", exact=True).fill(EMAIL.upper())
    staff.get_by_role("button", name="Find their data").click()
    expect(staff.get_by_role("heading", name=f"Held about {EMAIL}")).to_be_visible()
    assert "@" not in staff.url.split("/staff/", 1)[1]  # the address is never in the URL
    expect(staff.get_by_role("region", name="Delegate places (scrolls sideways)")).to_contain_text(
        "Vegetarian"
    )
    with staff.expect_download() as downloaded:
        staff.get_by_role("button", name="Download as JSON files (zip)").click()
    path = tmp_path / downloaded.value.suggested_filename
    downloaded.value.save_as(path)
    assert path.name.startswith("personal-data-") and path.suffix == ".zip"
    with zipfile.ZipFile(path) as archive:
        places = json.loads(archive.read("places.json"))
        bookings = json.loads(archive.read("bookings.json"))
    assert places[0]["name"] == "Zoë O'Brien" and places[0]["needs"] == "Vegetarian"
    assert bookings[0]["privacy_notice_version"] == 0

    phone = pages.new(NARROW)
    log_in(phone, admin)
    phone.goto("/staff/privacy/people")
    phone.get_by_label("Email address", exact=True).fill(EMAIL)
    phone.get_by_role("button", name="Find their data").click()
    expect(phone.get_by_role("heading", name=f"Held about {EMAIL}")).to_be_visible()
    no_horizontal_scroll(phone)


def test_a_person_books_is_exported_then_erased_and_every_figure_stays(
    pages, make_event, make_item, admin, tmp_path
):
    """Issue 15's whole path: someone who came to last month's seminar and answered its survey
    books the next one on a phone; an admin downloads their data, then erases them after the
    preview. The seminar's counts and survey results read the same; the new seat goes back; the
    address is nowhere in the database but as its hash."""
    seminar, survey, _delegates = seminar_with_survey(make_event, make_item, anonymous=False)
    later = utcnow()
    before = figures(seminar, survey, later)
    event = make_event(title="Cyber seminar 2027", starts_at=at(20))
    book_on_a_phone(pages.new(NARROW), event, PERSON)

    staff = pages.new(DESKTOP)
    log_in(staff, admin)
    staff.get_by_role("link", name="Privacy", exact=True).click()
    staff.get_by_role("link", name="A person's data").click()
    staff.get_by_label("Email address", exact=True).fill(PERSON)
    staff.get_by_role("button", name="Find their data").click()
    with staff.expect_download() as downloaded:
        staff.get_by_role("button", name="Download as JSON files (zip)").click()
    path = tmp_path / downloaded.value.suggested_filename
    downloaded.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        places = json.loads(archive.read("places.json"))
    assert len(places) == 2  # last month's seminar and the new booking

    staff.get_by_role("button", name="Erase this person…").click()
    expect(staff.get_by_role("heading", level=2)).to_contain_text(PERSON)
    staff.get_by_role("button", name="Erase this person", exact=True).click()
    expect(staff.get_by_text("Erased.")).to_be_visible()

    assert figures(seminar, survey, later) == before
    db.session.expire_all()
    place = db.session.scalars(db.select(Delegate).where(Delegate.event_id == event.id)).one()
    assert place.status == DelegateStatus.cancelled
    assert rows_holding(LOCAL) == []
    assert rows_holding(address_hash(PERSON)) == [("suppression", "email_hash", 1)]
