"""The booker's and the delegate's private pages in a real browser (Debian's Chromium), on a
320 px phone: every action reachable without sideways scrolling, and cancelling a place goes
through a confirmation that works from the keyboard, end to end."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.registration import places, services
from chamber.registration.models import Delegate, DelegateStatus
from chamber.registration.services import DelegateDetails
from tests.browser_support import DESKTOP, log_in, no_horizontal_scroll, screenshot
from tests.factories import make_booking

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}
PHONE_360 = {"width": 360, "height": 740}
BOOKER = DelegateDetails(
    "Alexandra Featherstonehaugh-Worthington", "alexandra.booker@octree.example"
)
PEOPLE = [
    BOOKER,
    DelegateDetails(
        "Colin Colleague", "colin.with.a.very.long.address.indeed@subsidiary.octree.example"
    ),
    DelegateDetails("Dana Third", "dana@octree.example"),
]
WAITING = "wendy@waiting.example"


@pytest.fixture
def booked(make_event):
    """Three places booked by Alexandra (the last seats) and Wendy waiting; Alexandra's manage
    token and Colin's place token."""
    event = make_event(
        capacity=3,
        business_limit=5,
        title="Cybercrime seminar: protecting Hertfordshire's businesses from online fraud",
    )
    result = make_booking(event, *PEOPLE, business="Octree Ltd", source="web", commit=False)
    make_booking(event, WAITING, business="Waiting Ltd", source="web", commit=False)
    manage = services.new_manage_token(result.booking)
    place = places.new_place_token(result.confirmed[1])
    db.session.execute(db.delete(OutboxMessage))
    db.session.commit()
    return event, manage, place


def status(email: str) -> DelegateStatus:
    db.session.expire_all()
    return db.session.scalars(
        db.select(Delegate.status).where(Delegate.email_normalised == email)
    ).one()


def assert_reachable(page, locator) -> None:
    """Visible, inside the viewport's width, and clickable (Playwright's actionability checks,
    without clicking)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    locator.click(trial=True)


def test_every_action_on_the_manage_page_is_reachable_at_320_px(pages, booked):
    _, manage, _ = booked
    page = pages.new(viewport=NARROW)
    page.goto(f"/r/{manage}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your booking")
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-manage")
    for person in PEOPLE:
        assert_reachable(
            page, page.get_by_role("link", name=f"Change details for {person.name}", exact=True)
        )
        assert_reachable(
            page, page.get_by_role("link", name=f"Cancel this place ({person.name})", exact=True)
        )
    assert_reachable(page, page.get_by_role("link", name="Add a delegate", exact=True))
    assert_reachable(page, page.get_by_role("link", name="Cancel the whole booking", exact=True))


def test_cancelling_a_place_from_the_keyboard_asks_first_then_does_it(pages, booked):
    _, manage, _ = booked
    colin = PEOPLE[1]
    page = pages.new(viewport=NARROW)
    page.goto(f"/r/{manage}")

    # Go back leaves everything as it was.
    page.get_by_role("link", name=f"Cancel this place ({colin.name})").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel {colin.name}'s place?")
    expect(page.get_by_text("The seat goes to the next person on the waiting list")).to_be_visible()
    expect(page.get_by_text(f"We email {colin.name} ({colin.email})")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-cancel-place")
    assert_reachable(page, page.get_by_role("button", name=f"Cancel {colin.name}'s place"))
    page.get_by_role("link", name="Go back").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your booking")
    assert status(colin.email) == DelegateStatus.confirmed

    # Confirming cancels, gives the seat to Wendy and says so.
    page.get_by_role("link", name=f"Cancel this place ({colin.name})").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name=f"Cancel {colin.name}'s place").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your booking")
    expect(page.get_by_text(f"Cancelled {colin.name}'s place.")).to_be_visible()
    no_horizontal_scroll(page)
    assert status(colin.email) == DelegateStatus.cancelled
    assert status(WAITING) == DelegateStatus.confirmed
    recipients = sorted(db.session.scalars(db.select(OutboxMessage.to_address)))
    assert recipients == sorted([colin.email, BOOKER.email, WAITING])


def test_cancelling_the_whole_booking_at_320_px(pages, booked):
    _, manage, _ = booked
    page = pages.new(viewport=NARROW)
    page.goto(f"/r/{manage}")
    page.get_by_role("link", name="Cancel the whole booking").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel the whole booking?")
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-cancel-booking")
    page.get_by_role("button", name="Cancel the whole booking").click()
    expect(page.get_by_text("Cancelled the whole booking.")).to_be_visible()
    no_horizontal_scroll(page)
    assert [status(p.email) for p in PEOPLE] == [DelegateStatus.cancelled] * 3
    # Nothing left to cancel: the page offers no cancel actions now.
    expect(page.get_by_role("link", name="Cancel the whole booking")).to_have_count(0)


def test_a_delegate_cancels_their_own_place_at_320_px(pages, booked):
    _, _, place = booked
    colin = PEOPLE[1]
    page = pages.new(viewport=NARROW)
    page.goto(f"/places/{place}")
    no_horizontal_scroll(page)
    page.get_by_role("link", name="Cancel your place").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your place?")
    expect(page.get_by_text(f"We email {BOOKER.name}, who booked your place")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-320-place-cancel")
    page.get_by_role("button", name="Cancel my place").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your place is cancelled.")).to_be_visible()
    assert status(colin.email) == DelegateStatus.cancelled
    recipients = sorted(db.session.scalars(db.select(OutboxMessage.to_address)))
    assert recipients == sorted([colin.email, BOOKER.email, WAITING])


def test_the_changed_pages_at_desktop_and_phone_widths(pages, booked, make_staff):
    """Screenshots for a person to look at (test-artifacts/screenshots), and no sideways
    scrolling at either width."""
    event, manage, place = booked
    colin = db.session.scalars(
        db.select(Delegate).where(Delegate.email_normalised == PEOPLE[1].email)
    ).one()
    paths = {
        "event-full": f"/events/{event.slug}",
        "register-full": f"/events/{event.slug}/register",
        "manage": f"/r/{manage}",
        "cancel-place": f"/r/{manage}/cancel/{colin.id}",
        "cancel-booking": f"/r/{manage}/cancel",
        "place-cancel": f"/places/{place}/cancel",
    }
    for label, viewport in (("desktop", DESKTOP), ("phone-360", PHONE_360)):
        page = pages.new(viewport=viewport)
        for name, path in paths.items():
            page.goto(path)
            no_horizontal_scroll(page)
            screenshot(page, f"{label}-{name}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your place?")
    page.goto(f"/events/{event.slug}")
    expect(page.get_by_role("link", name="Join the waiting list")).to_be_visible()

    organiser = make_staff(email="olivia@chamber.example", name="Olivia Organiser")
    for label, viewport in (("desktop", DESKTOP), ("phone-360", PHONE_360)):
        page = pages.new(viewport=viewport)
        log_in(page, organiser)
        page.goto(f"/staff/events/{event.id}/registrations/{colin.id}/cancel")
        expect(page.get_by_text("Their seat goes straight to")).to_be_visible()
        no_horizontal_scroll(page)
        screenshot(page, f"{label}-staff-cancel")


def test_the_booking_forms_tick_boxes_keep_their_size_with_hint_and_error_under_the_label(
    pages, booked
):
    """The consent and the opt-out of news: each box its full size, its label beside it, and the
    hint and any error under the label, at 320 px and on a desktop (they were squeezed into
    columns of their own, a word a line)."""
    event, _manage, _place = booked
    for label, viewport in (("phone-320", NARROW), ("desktop", DESKTOP)):
        page = pages.new(viewport=viewport)
        page.goto(f"/events/{event.slug}/register")
        page.get_by_role("button", name="Join the waiting list").click()
        expect(
            page.locator("#privacy-error").get_by_text("Tick the box to say you have read")
        ).to_be_visible()
        for name in ("privacy", "no_marketing"):
            box = page.locator(f"input[name={name}]").bounding_box()
            text = page.locator(f"label[for={name}]").bounding_box()
            assert box["width"] >= 24 and box["height"] >= 24, (label, name, box)
            assert text["x"] > box["x"] + box["width"], (label, name)  # beside the box
        under = {
            "privacy": page.locator("#privacy-error"),
            "no_marketing": page.locator("#no_marketing-hint"),
        }
        for name, part in under.items():
            expect(part).to_be_visible()
            label_box = page.locator(f"label[for={name}]").bounding_box()
            part_box = part.bounding_box()
            assert part_box["y"] >= label_box["y"] + label_box["height"] - 1, (label, name)
            assert abs(part_box["x"] - label_box["x"]) < 2, (label, name)  # lined up with it
        no_horizontal_scroll(page)
        screenshot(page, f"{label}-booking-form-tick-boxes")


def test_the_registrations_list_fits_a_desktop_with_a_long_address(pages, booked, make_staff):
    """A long address breaks inside its cell, so the table fits the page at 1280 px and every
    row's actions are in sight without scrolling it sideways."""
    event, _manage, _place = booked
    organiser = make_staff(email="olivia@chamber.example", name="Olivia Organiser")
    page = pages.new(viewport=DESKTOP)
    log_in(page, organiser)
    page.goto(f"/staff/events/{event.id}/registrations")
    table, wrap = page.evaluate(
        "() => [document.querySelector('.delegates-table').scrollWidth,"
        " document.querySelector('.table-wrap').clientWidth]"
    )
    assert table <= wrap, (table, wrap)
    for action in page.locator(".row-actions a, .row-actions button").all():
        box = action.bounding_box()
        assert box["x"] + box["width"] <= DESKTOP["width"], box
    screenshot(page, "desktop-registrations-long-address")
