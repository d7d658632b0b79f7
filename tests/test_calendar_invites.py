"""Invitations by email: REQUEST on confirmation, an update for each change of time or place, a
CANCEL when the event or the seat is cancelled; always the event's UID with a rising SEQUENCE."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import vobject

from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import OutboxMessage
from chamber.registration import notifications, services
from chamber.registration.models import Delegate, DelegateStatus
from chamber.registration.services import DelegateDetails
from tests.factories import make_booking
from tests.support import csrf_token, post_form
from tests.test_events import EVENT_FORM

START = datetime(2030, 7, 4, 7, 0, tzinfo=UTC)  # 08:00 BST


@pytest.fixture
def seminar(make_event) -> Event:
    """A published event with two confirmed delegates and one on the waiting list."""
    event = make_event(
        starts_at=START,
        ends_at=START + timedelta(hours=4, minutes=30),
        venue_address=EVENT_FORM["venue_address"],
        capacity=2,
        slug="cyber",
    )
    people = [DelegateDetails(name=f"Person {n}", email=f"p{n}@example.com") for n in (1, 2, 3)]
    notifications.booking_emails(event, make_booking(event, *people, source="web", commit=False))
    db.session.commit()
    return event


def edit(client, event: Event, **changes):
    """Staff save the edit form, agreeing to email whoever the check step says will be told."""
    path = f"/staff/events/{event.id}/edit"
    data = {**EVENT_FORM, "slug": event.slug, **changes}
    first = post_form(client, path, data)
    if first.status_code == 200 and "notify_confirmed" in first.text:
        count = re.search(r'name="notify_confirmed" value="(\d+)"', first.text).group(1)
        return post_form(client, path, {**data, "notify_confirmed": count})
    return first


def invitations(smtp_server, address: str) -> list[tuple[str, icalendar.Calendar, str]]:
    """(subject, parsed calendar, Content-Type method) of each delivered message to `address`."""
    deliver_due()
    found = []
    for message in smtp_server.messages:
        if address not in message["To"]:
            continue
        parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        if not parts:
            continue
        # The invitation (an alternative) and the same bytes as a file to keep (RFC 6047).
        invitation, attached = parts
        assert invitation.get_content_disposition() is None
        assert attached.get_content_disposition() == "attachment"
        assert attached.get_filename().endswith(".ics")
        raw = invitation.get_payload(decode=True)
        assert attached.get_payload(decode=True) == raw
        assert attached.get_param("method") == invitation.get_param("method")
        found.append((message["Subject"], raw, invitation.get_param("method")))
    return [(subject, icalendar.Calendar.from_ical(raw), method) for subject, raw, method in found]


def vevent(calendar: icalendar.Calendar) -> icalendar.Event:
    (event,) = calendar.walk("VEVENT")
    return event


def test_the_confirmation_is_a_request_naming_the_delegate_with_the_events_uid(
    seminar, smtp_server, client
):
    ((subject, calendar, method),) = invitations(smtp_server, "p1@example.com")
    assert subject.startswith("Your place at")
    assert method == "REQUEST" and calendar["METHOD"] == "REQUEST"
    entry = vevent(calendar)
    public = icalendar.Calendar.from_ical(client.get("/events/cyber.ics").data)
    assert entry["UID"] == vevent(public)["UID"]  # one entry, whichever arrives first
    assert entry["SEQUENCE"] == 0
    assert entry.decoded("DTSTART") == START and entry.decoded("DTEND") == seminar.ends_at
    attendee = entry["ATTENDEE"]
    assert str(attendee) == "mailto:p1@example.com"
    assert attendee.params["CN"] == "Person 1" and attendee.params["RSVP"] == "FALSE"
    assert str(entry["ORGANIZER"]).startswith("mailto:")
    # An independent parser reads the same thing.
    parsed = vobject.readOne(calendar.to_ical().decode())
    assert parsed.method.value == "REQUEST"
    assert parsed.vevent.dtstart.value.astimezone(UTC) == START
    assert parsed.vevent.attendee.value == "mailto:p1@example.com"


def test_nobody_on_the_waiting_list_gets_an_invitation(seminar, smtp_server):
    assert invitations(smtp_server, "p3@example.com") == []


def test_time_changed_twice_then_cancelled_gives_three_emails_with_one_uid_and_rising_sequence(
    seminar, smtp_server, organiser_client, client
):
    (confirmation,) = invitations(smtp_server, "p1@example.com")
    uid = vevent(confirmation[1])["UID"]

    assert edit(organiser_client, seminar, starts_at="2030-07-04T09:00").status_code == 302
    deliver_due()
    assert edit(organiser_client, seminar, starts_at="2030-07-04T09:30").status_code == 302
    deliver_due()
    post_form(
        organiser_client,
        f"/staff/events/{seminar.id}/cancel",
        {},
        token_from=f"/staff/events/{seminar.id}/cancel",
    )

    received = invitations(smtp_server, "p1@example.com")[1:]
    assert [subject.split(":")[0] for subject, _, _ in received] == [
        "Changed",
        "Changed",
        "Cancelled",
    ]
    assert [method for _, _, method in received] == ["REQUEST", "REQUEST", "CANCEL"]
    entries = [vevent(calendar) for _, calendar, _ in received]
    assert {entry["UID"] for entry in entries} == {uid}
    assert [entry["SEQUENCE"] for entry in entries] == [1, 2, 3]
    assert [entry.decoded("DTSTART") for entry in entries] == [
        datetime(2030, 7, 4, 8, 0, tzinfo=UTC),
        datetime(2030, 7, 4, 8, 30, tzinfo=UTC),
        datetime(2030, 7, 4, 8, 30, tzinfo=UTC),
    ]
    assert [str(entry["STATUS"]) for entry in entries] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    for _, calendar, method in received:  # what the MIME type says is what the file says
        assert calendar["METHOD"] == method
        assert vobject.readOne(calendar.to_ical().decode()).vevent.uid.value == uid

    # The feed and the event's own file show the final state.
    for path in ("/calendar.ics", "/events/cyber.ics"):
        feed = icalendar.Calendar.from_ical(client.get(path).data)
        (entry,) = [e for e in feed.walk("VEVENT") if e["UID"] == uid]
        assert entry["SEQUENCE"] == 3 and str(entry["STATUS"]) == "CANCELLED"
        assert entry.decoded("DTSTART") == datetime(2030, 7, 4, 8, 30, tzinfo=UTC)


def test_one_save_changing_time_and_venue_is_one_change_and_one_email(
    seminar, smtp_server, organiser_client
):
    invitations(smtp_server, "p1@example.com")
    edit(organiser_client, seminar, starts_at="2030-07-04T09:00", venue_name="Knebworth House")
    received = invitations(smtp_server, "p1@example.com")[1:]
    assert len(received) == 1
    subject, calendar, _ = received[0]
    assert vevent(calendar)["SEQUENCE"] == 1
    assert "Knebworth House" in str(vevent(calendar)["LOCATION"])
    message = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("event-update:%"))
    ).first()
    assert (
        "The time and venue of Cybercrime: protect your business have changed" in message.text_body
    )


def test_saves_that_change_nothing_on_the_calendar_email_nobody(
    seminar, smtp_server, organiser_client
):
    invitations(smtp_server, "p1@example.com")
    response = edit(organiser_client, seminar, summary="New words", capacity="3")
    assert response.status_code == 302
    response = edit(organiser_client, seminar)  # the same form again
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).sequence == 0
    assert invitations(smtp_server, "p1@example.com")[1:] == []


def test_staff_see_how_many_delegates_will_be_told_before_anything_is_saved(
    seminar, organiser_client
):
    path = f"/staff/events/{seminar.id}/edit"
    page = organiser_client.get(path)
    assert "2 confirmed delegates will be emailed if you change the time or place" in page.text
    data = {**EVENT_FORM, "slug": seminar.slug, "venue_name": "Knebworth House"}
    check = post_form(organiser_client, path, data)
    assert check.status_code == 200
    assert "You changed the venue" in check.text
    assert "Save and email 2 delegates" in check.text
    db.session.expire_all()
    event = db.session.get(Event, seminar.id)
    assert event.venue_name == "Holiday Inn Stevenage" and event.sequence == 0
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id)).where(
        OutboxMessage.key.like("event-update:%"))) == 0  # fmt: skip

    # A count that no longer matches (someone booked or cancelled meanwhile) asks again.
    again = post_form(organiser_client, path, {**data, "notify_confirmed": "5"})
    assert again.status_code == 200 and "Save and email 2 delegates" in again.text

    done = post_form(organiser_client, path, {**data, "notify_confirmed": "2"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).venue_name == "Knebworth House"
    keys = db.session.scalars(
        db.select(OutboxMessage.to_address).where(OutboxMessage.key.like("event-update:%"))
    ).all()
    assert sorted(keys) == ["p1@example.com", "p2@example.com"]


def test_the_cancel_page_says_who_will_be_told(seminar, organiser_client):
    page = organiser_client.get(f"/staff/events/{seminar.id}/cancel")
    assert "2 confirmed delegates" in page.text and "waiting list is told" in page.text


def test_cancelling_the_event_tells_the_waiting_list_without_an_invitation(
    seminar, smtp_server, organiser_client
):
    post_form(
        organiser_client,
        f"/staff/events/{seminar.id}/cancel",
        {},
        token_from=f"/staff/events/{seminar.id}/cancel",
    )
    deliver_due()
    waiting = [m for m in smtp_server.messages if "p3@example.com" in m["To"]]
    assert [m["Subject"] for m in waiting][-1].startswith("Cancelled:")
    assert not [p for p in waiting[-1].walk() if "calendar" in p.get_content_type()]
    assert "waiting list" in waiting[-1].get_body(("plain",)).get_content()


def test_changes_to_a_draft_email_nobody(make_event, organiser_client, smtp_server):
    event = make_event(starts_at=START, slug="unpublished")
    person = DelegateDetails(name="Early Bird", email="early@example.com")
    make_booking(event, person, commit=False)
    event.status = EventStatus.draft  # taken off the site after someone booked
    db.session.commit()
    deliver_due()
    before = len(smtp_server.messages)
    response = edit(organiser_client, event, starts_at="2030-07-04T10:00")
    assert response.status_code == 302  # no check step: a draft has nobody to tell
    deliver_due()
    assert len(smtp_server.messages) == before


def test_a_delegate_who_cancels_their_own_seat_gets_a_cancel_for_their_entry(
    seminar, smtp_server, client
):
    from chamber.registration.models import Booking

    booking = db.session.scalars(db.select(Booking)).one()
    token = services.new_manage_token(booking)
    db.session.commit()
    first = db.session.scalars(
        db.select(Delegate).where(Delegate.email_normalised == "p1@example.com")
    ).one()
    invitations(smtp_server, "p1@example.com")
    response = post_form(
        client, f"/r/{token}/cancel/{first.id}", {}, token_from=f"/r/{token}/cancel/{first.id}"
    )
    assert response.status_code == 302
    received = invitations(smtp_server, "p1@example.com")[1:]
    ((subject, calendar, method),) = received
    assert subject.startswith("Cancelled: your place") and method == "CANCEL"
    entry = vevent(calendar)
    assert str(entry["STATUS"]) == "CANCELLED" and str(entry["ATTENDEE"]) == "mailto:p1@example.com"
    assert entry["UID"].startswith(f"event-{seminar.id}@")
    # The freed seat went to the waiting list, with an invitation of its own.
    ((_, promoted, promoted_method),) = invitations(smtp_server, "p3@example.com")
    assert promoted_method == "REQUEST" and vevent(promoted)["UID"] == entry["UID"]


def test_staff_cancelling_a_place_tells_the_delegate(seminar, smtp_server, organiser_client):
    second = db.session.scalars(
        db.select(Delegate).where(Delegate.email_normalised == "p2@example.com")
    ).one()
    assert [method for _, _, method in invitations(smtp_server, "p2@example.com")] == ["REQUEST"]
    path = f"/staff/events/{seminar.id}/registrations"
    post_form(organiser_client, f"{path}/{second.id}/cancel", {}, token_from=path)
    db.session.expire_all()
    assert db.session.get(Delegate, second.id).status == DelegateStatus.cancelled
    methods = [method for _, _, method in invitations(smtp_server, "p2@example.com")]
    assert methods == ["REQUEST", "CANCEL"]


def test_no_private_link_or_personal_data_in_any_calendar_file(
    seminar, smtp_server, organiser_client, client
):
    edit(organiser_client, seminar, starts_at="2030-07-04T09:00")
    deliver_due()
    for message in smtp_server.messages:
        body = message.get_body(("plain",)).get_content()
        secrets = re.findall(r"/(?:r|checkin|unsubscribe|c)/([A-Za-z0-9_-]{20,})", body)
        for part in message.walk():
            if part.get_content_maintype() == "text" and (
                "calendar" in part.get_content_type() or part.get_filename()
            ):
                content = part.get_payload(decode=True).decode()
                assert "/r/" not in content and "checkin" not in content.lower()
                assert not [s for s in secrets if s in content]
    for path in ("/calendar.ics", "/events/cyber.ics", "/events/cyber/agenda.ics"):
        text = client.get(path).data.decode()
        assert "@example.com" not in text and "Person 1" not in text and "ATTENDEE" not in text


def test_forged_edits_change_nothing_and_email_nobody(seminar, organiser_client):
    path = f"/staff/events/{seminar.id}/edit"
    data = {**EVENT_FORM, "slug": seminar.slug, "starts_at": "2030-07-04T09:00"}
    no_token = organiser_client.post(path, data={**data, "notify_confirmed": "2"})
    wrong = organiser_client.post(
        path, data={**data, "notify_confirmed": "2", "csrf_token": "forged"}
    )
    assert no_token.status_code == 400 and wrong.status_code == 400
    hostile = post_form(
        organiser_client, path, {**data, "notify_confirmed": "<script>alert(1)</script>"}
    )
    assert hostile.status_code == 200 and "<script>alert" not in hostile.text
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).sequence == 0
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id)).where(
        OutboxMessage.key.like("event-update:%"))) == 0  # fmt: skip
    assert csrf_token(organiser_client, path)


# --- the invitation across clock changes and zones --------------------------------------------


@pytest.mark.parametrize(
    ("starts", "hours", "zone_name"),
    [
        (datetime(2027, 10, 30, 23, 0, tzinfo=UTC), 4, "Europe/London"),  # across October's change
        (datetime(2027, 10, 31, 0, 30, tzinfo=UTC), 2, "Europe/London"),  # the first 01:30
        (datetime(2027, 10, 31, 1, 30, tzinfo=UTC), 2, "Europe/London"),  # the second 01:30
        (datetime(2027, 3, 28, 0, 30, tzinfo=UTC), 3, "Europe/London"),  # across March's change
        (datetime(2027, 11, 7, 4, 0, tzinfo=UTC), 3, "America/New_York"),  # another zone's change
    ],
)
@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_every_invitation_reads_back_at_the_events_times_in_two_parsers(
    app, make_event, starts, hours, zone_name, method
):
    event = make_event(
        starts_at=starts, ends_at=starts + timedelta(hours=hours), timezone=zone_name
    )
    delegate = Delegate(name="Zoë, O'Brien; 李", email_normalised="zoe@example.com")
    attachment = notifications.invite(event, delegate, method)
    assert attachment.content_type == f"text/calendar; charset=utf-8; method={method}"

    calendar = icalendar.Calendar.from_ical(attachment.content)
    assert calendar["METHOD"] == method
    entry = vevent(calendar)
    assert entry.decoded("DTSTART").astimezone(UTC) == starts
    assert entry.decoded("DTEND").astimezone(UTC) == event.ends_at
    assert entry["ATTENDEE"].params["CN"] == "Zoë, O'Brien; 李"
    assert str(entry["STATUS"]) == ("CANCELLED" if method == "CANCEL" else "CONFIRMED")

    parsed = vobject.readOne(attachment.content.decode())
    assert parsed.method.value == method
    assert parsed.vevent.dtstart.value.astimezone(UTC) == starts
    assert parsed.vevent.dtend.value.astimezone(UTC) == event.ends_at
    assert parsed.vevent.attendee.params["CN"] == ["Zoë, O'Brien; 李"]
