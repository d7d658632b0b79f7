"""A delegate who is not the booker gets a link to their own place only (see, change, cancel it,
add it to the calendar), and every link minter checks that the recipient owns what it names."""

from __future__ import annotations

import re

import icalendar
import pytest

from chamber.core.forms import holds_web_address
from chamber.core.tokens import hash_token
from chamber.extensions import db
from chamber.mail import links
from chamber.mail.delivery import deliver_due
from chamber.mail.models import OutboxMessage
from chamber.registration import checkin_services, notifications, places
from chamber.registration.models import Booking, BookingToken, Delegate, DelegateToken
from tests.support import csrf_token, post_form
from tests.test_registration import delegate, register, register_other, statuses

PLACE_LINK = re.compile(r"https?://[^\s\"<>]+/places/([A-Za-z0-9_-]+)")
MANAGE_LINK = re.compile(r"https?://[^\s\"<>]+/r/([A-Za-z0-9_-]+)")
HOSTILE = [
    "<b>bold</b><script>alert(1)</script>",
    "Line one\r\nBcc: evil@example.com",
    "[[link:manage:1]] [[link:place:2]]",
    "{{ 7*7 }} {% raw %}",
    "'; DROP TABLE delegate; --",
    "Zoë 李 \u202etxt.exe",  # looks like a file's or site's name: refused (`no_web_address`)
    "Zoë 李 \u202eÖlçer",
]


def latest_text(smtp_server, address: str, subject_start: str = "") -> str:
    message = next(
        m
        for m in reversed(smtp_server.messages)
        if address in m["To"] and m["Subject"].startswith(subject_start)
    )
    return message.get_body(("plain",)).get_content()


def two_colleagues(client, event, smtp_server):
    """Tony books Zoë and Sam; returns Zoë's place token from her confirmation."""
    response = register(
        client,
        event,
        **{"delegates-1-name": "Sam Smith", "delegates-1-email": "sam@octree.example"},
    )
    assert response.status_code == 302
    deliver_due()
    zoe_mail = latest_text(smtp_server, "zoe@octree.example", "Your place")
    return PLACE_LINK.search(zoe_mail).group(1)


def test_a_colleague_gets_their_own_place_link_and_the_booker_the_booking(
    client, make_event, smtp_server
):
    event = make_event()
    token = two_colleagues(client, event, smtp_server)
    zoe_mail = latest_text(smtp_server, "zoe@octree.example", "Your place")
    assert not MANAGE_LINK.search(zoe_mail)  # never the whole booking's link
    booker_mail = latest_text(smtp_server, "tony@octree.example")
    assert MANAGE_LINK.search(booker_mail) and not PLACE_LINK.search(booker_mail)

    zoe = delegate("zoe@octree.example")
    stored = db.session.scalars(db.select(DelegateToken)).all()
    assert [t.delegate_id for t in stored if t.token_hash == hash_token(token)] == [zoe.id]
    assert all(token != t.token_hash for t in stored) and len(token) >= 43  # 256 bits, hashed

    page = client.get(f"/places/{token}")
    assert page.status_code == 200
    assert "Zoë O&#39;Brien" in page.text and "Place confirmed" in page.text
    assert "Sam Smith" not in page.text and "sam@octree.example" not in page.text
    assert "tony@octree.example" not in page.text
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_a_delegate_changes_their_own_details_with_the_same_rules(client, make_event, smtp_server):
    event = make_event()
    token = two_colleagues(client, event, smtp_server)
    path = f"/places/{token}/details"
    for text in HOSTILE:
        before = delegate("zoe@octree.example").name
        saved = post_form(client, path, {"name": text, "job_title": text, "needs": text})
        # A line break in a one-line field, or a web address in a name: refused with a reason,
        # and nothing stored.
        if "\n" in text or holds_web_address(text):
            assert saved.status_code == 400 and "There is a problem" in saved.text
            assert delegate("zoe@octree.example").name == before
            continue
        assert saved.status_code == 302, text
        zoe = delegate("zoe@octree.example")
        assert zoe.name == text.strip() and zoe.needs == text
        shown = client.get(f"/places/{token}").text
        assert "<script>alert(1)" not in shown and "<b>bold" not in shown
        assert "49" not in shown.split("<main")[1].replace(token, "")  # the link's own is random
    assert zoe.contact.name == HOSTILE[-1].strip()  # the person's own change reaches their record
    before = delegate("zoe@octree.example").name
    bad = post_form(client, path, {"name": "", "needs": "x" * 1001})
    assert bad.status_code == 400
    assert "Enter the delegate&#39;s full name." in bad.text and "1000 characters" in bad.text
    assert delegate("zoe@octree.example").name == before  # nothing stored half-way
    assert client.post(path, data={"name": "No token"}).status_code == 400  # no CSRF token
    assert delegate("zoe@octree.example").name == before


def test_cancelling_your_own_place_asks_first_gives_the_seat_away_and_tells_the_booker(
    client, make_event, smtp_server
):
    event = make_event(capacity=2, business_limit=5)
    token = two_colleagues(client, event, smtp_server)
    register_other(client, event, "wait@other.example", **{"delegates-0-name": "Wai Ting"})
    confirm = client.get(f"/places/{token}/cancel")
    assert confirm.status_code == 200
    assert "next person on the waiting list" in confirm.text and "Cancel my place" in confirm.text
    assert statuses(event)["zoe@octree.example"] == "confirmed"  # a GET cancels nothing

    done = post_form(client, f"/places/{token}/cancel", {})
    assert done.status_code == 302 and done.headers["Location"] == f"/places/{token}"
    assert statuses(event) == {
        "zoe@octree.example": "cancelled",
        "sam@octree.example": "confirmed",
        "wait@other.example": "confirmed",
    }
    keys = db.session.scalars(db.select(OutboxMessage.key)).all()
    assert any(k.startswith("seat-cancelled:delegate:") for k in keys)
    assert any(k.startswith("promoted:delegate:") for k in keys)
    told = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("place-cancelled:booker:%"))
    ).one()
    assert told.to_address == "tony@octree.example"
    after = client.get(f"/places/{token}")
    assert "Cancelled" in after.text and "Cancel your place" not in after.text
    again = post_form(
        client, f"/places/{token}/cancel", {}, token_from=f"/events/{event.slug}/register"
    )
    assert again.status_code == 302 and statuses(event)["wait@other.example"] == "confirmed"


def test_the_place_offers_its_own_calendar_file(client, make_event, smtp_server):
    event = make_event()
    token = two_colleagues(client, event, smtp_server)
    response = client.get(f"/places/{token}/calendar.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert "no-store" in response.headers["Cache-Control"]
    calendar = icalendar.Calendar.from_ical(response.data)
    (vevent,) = calendar.walk("VEVENT")
    assert "zoe@octree.example" in str(vevent["ATTENDEE"]).lower()
    assert "sam@octree.example" not in response.data.decode()
    public = icalendar.Calendar.from_ical(client.get(f"/events/{event.slug}.ics").data)
    assert str(vevent["UID"]) == str(public.walk("VEVENT")[0]["UID"])  # one entry, one UID


def test_a_wrong_or_tampered_place_token_is_a_plain_404(client, make_event, smtp_server):
    event = make_event()
    token = two_colleagues(client, event, smtp_server)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, "x", "a" * 200, token.upper(), "gone"):
        for suffix in ("", "/details", "/cancel", "/calendar.ics"):
            assert client.get(f"/places/{bad}{suffix}").status_code == 404, (bad, suffix)
        forged = client.post(
            f"/places/{bad}/cancel",
            data={"csrf_token": csrf_token(client, f"/places/{token}/cancel")},
        )
        assert forged.status_code == 404
    assert set(statuses(event).values()) == {"confirmed"}


def test_one_delegates_place_link_never_acts_on_another(client, make_event, smtp_server):
    event = make_event()
    token = two_colleagues(client, event, smtp_server)
    sam = delegate("sam@octree.example")
    # The token names the place; there is no other delegate's id to put in the address.
    assert client.get(f"/places/{token}/details?delegate_id={sam.id}").status_code == 200
    post_form(client, f"/places/{token}/details", {"name": "Changed", "delegate_id": sam.id})
    assert delegate("sam@octree.example").name == "Sam Smith"
    post_form(client, f"/places/{token}/cancel", {"delegate_id": sam.id})
    assert statuses(event)["sam@octree.example"] == "confirmed"
    assert statuses(event)["zoe@octree.example"] == "cancelled"


def test_someone_booked_again_is_emailed_their_own_place_link(client, make_event, smtp_server):
    event = make_event()
    two_colleagues(client, event, smtp_server)
    register_other(client, event, "SAM@octree.example")
    deliver_due()
    again = latest_text(smtp_server, "sam@octree.example", "Your place")
    assert "already has one" in again
    assert PLACE_LINK.search(again) and not MANAGE_LINK.search(again)
    page = client.get(f"/places/{PLACE_LINK.search(again).group(1)}")
    assert "Sam Smith" in page.text and "Zoë" not in page.text


# --- the minters check the recipient -------------------------------------------------------------


def count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


@pytest.fixture
def booked(client, make_event):
    register(
        client,
        make_event(),
        **{"delegates-1-name": "Sam Smith", "delegates-1-email": "sam@octree.example"},
    )
    return db.session.scalars(db.select(Booking)).one()


def test_the_manage_minter_refuses_anyone_but_the_booker(booked):
    for recipient, ref in (("zoe@octree.example", str(booked.id)), ("mallory@example.com",
                           str(booked.id)), ("tony@octree.example", "1 OR 1=1"),
                           ("tony@octree.example", ""), ("tony@octree.example", "-1")):  # fmt: skip
        with pytest.raises(links.LinkRefused):
            notifications._mint_manage_link(recipient, ref)
    assert count(BookingToken) == 0
    url = notifications._mint_manage_link(" TONY@octree.example ", str(booked.id))
    assert "/r/" in url and count(BookingToken) == 1


def test_the_place_minter_refuses_anyone_but_that_delegate(booked):
    zoe = delegate("zoe@octree.example")
    for recipient, ref in (("tony@octree.example", str(zoe.id)), ("sam@octree.example",
                           str(zoe.id)), ("zoe@octree.example", "abc"),
                           ("zoe@octree.example", "")):  # fmt: skip
        with pytest.raises(links.LinkRefused):
            places._mint_place_link(recipient, ref)
    assert count(DelegateToken) == 0
    assert "/places/" in places._mint_place_link("Zoe@Octree.example", str(zoe.id))
    assert count(DelegateToken) == 1
    assert places._mint_place_link("anyone@example.com", "999999").endswith("/places/gone")


def test_the_checkin_minter_refuses_anyone_but_that_delegate(booked):
    zoe = delegate("zoe@octree.example")
    for recipient, ref in (("tony@octree.example", str(zoe.id)), ("zoe@octree.example", "x1")):
        with pytest.raises(links.LinkRefused):
            checkin_services._mint_checkin_link(recipient, ref)
    db.session.refresh(zoe)
    assert zoe.checkin_token_hash is None
    assert "/staff/checkin/scan/" in checkin_services._mint_checkin_link(
        "zoe@octree.example", str(zoe.id)
    )
    db.session.refresh(zoe)
    assert zoe.checkin_token_hash is not None
    # A delegate erased since the email was queued: a link that leads nowhere, not a refusal.
    gone = checkin_services._mint_checkin_link("zoe@octree.example", "999999")
    assert gone.endswith("/scan/gone")
    assert db.session.get(Delegate, 999999) is None
