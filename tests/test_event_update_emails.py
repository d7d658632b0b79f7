"""The email a change of time, place or status sends says what changed, in words: old and new
values, times in the event's own zone, the same in the text and the HTML part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chamber.events import services
from chamber.events.changes import describe_changes, zone_label
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from tests import test_event_changes
from tests.factories import acting_staff
from tests.support import render_waiting
from tests.test_event_changes import WINTER, save

seminar = test_event_changes.seminar  # the fixture: a seminar with a talk and a delegate


def the_update() -> OutboxMessage:
    """The update email, rendered as the worker renders it when it sends it."""
    render_waiting()
    return db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("event-update:%"))
    ).one()


def test_a_later_start_is_told_as_old_and_new_time_in_the_events_zone(seminar, organiser_client):
    response = save(
        organiser_client, seminar, starts_at="2030-03-20T08:30", ends_at="2030-03-20T13:00"
    )
    assert response.status_code == 302
    message = the_update()
    start = "The start moved from Wednesday 20 March 2030, 08:00 to 08:30 (London time)."
    end = "The end moved from Wednesday 20 March 2030, 12:30 to 13:00 (London time)."
    for body in (message.text_body, message.html_body):
        assert start in body and end in body
    assert f"- {start}" in message.text_body and f"<li>{start}</li>" in message.html_body


def test_a_move_to_another_day_names_both_days(seminar, organiser_client):
    save(organiser_client, seminar, starts_at="2030-04-03T08:00", ends_at="2030-04-03T12:30")
    text = the_update().text_body
    assert (
        "The start moved from Wednesday 20 March 2030, 08:00 to Wednesday 3 April 2030, 08:00 "
        "(London time)." in text
    )


def test_a_new_venue_and_address_are_told_old_and_new_and_typed_markup_stays_text(
    seminar, organiser_client
):
    response = save(
        organiser_client,
        seminar,
        venue_name="<b>Knebworth</b> {{ 7*7 }}",
        venue_address="Knebworth Park",
        venue_town="Knebworth",
        venue_postcode="sg3 6pY",
    )
    assert response.status_code == 302
    message = the_update()
    assert (
        "The venue changed from Holiday Inn Stevenage to <b>Knebworth</b> {{ 7*7 }}."
        in message.text_body
    )
    assert "&lt;b&gt;Knebworth&lt;/b&gt; {{ 7*7 }}" in message.html_body
    assert "<b>Knebworth</b>" not in message.html_body and "to 49" not in message.text_body
    assert (
        "The address changed from St George's Way, Stevenage SG1 1HS to Knebworth Park, "
        "Knebworth SG3 6PY." in message.text_body
    )


def test_a_cancellation_and_a_change_of_zone_in_words(seminar, app):
    event = db.session.get(Event, seminar.id)
    assert describe_changes(event, {"status": EventStatus.published}) == []  # nothing changed
    services.set_status(event, EventStatus.cancelled, by=acting_staff())
    assert describe_changes(event, {"status": EventStatus.published}) == [
        "The event was cancelled."
    ]
    event.timezone = "Europe/Paris"
    event.starts_at = WINTER - timedelta(hours=1)  # 08:00 in Paris (CET)
    assert describe_changes(event, {"timezone": "Europe/London", "starts_at": WINTER})[:2] == [
        "The time zone changed from Europe/London to Europe/Paris.",
        "The start moved from Wednesday 20 March 2030, 08:00 (London time) to "
        "Wednesday 20 March 2030, 08:00 (Paris time).",
    ]
    db.session.rollback()


def test_zone_labels_read_as_people_say_them():
    assert zone_label("Europe/London") == "London time"
    assert zone_label("America/New_York") == "New York time"
    assert zone_label("America/Argentina/Buenos_Aires") == "Buenos Aires time"


def test_a_first_address_and_a_removed_one(seminar, app):
    event = db.session.get(Event, seminar.id)
    was = {"venue_address": "", "venue_town": "", "venue_postcode": ""}
    assert describe_changes(event, was) == [
        "The address is now St George's Way, Stevenage SG1 1HS."
    ]
    event.venue_address = ""
    removed = describe_changes(event, {"venue_address": "St George's Way"})
    assert removed == ["The address (St George's Way) was removed."]
    db.session.rollback()


def test_an_event_back_from_draft_is_said_to_be_going_ahead(seminar, app):
    event = db.session.get(Event, seminar.id)
    assert describe_changes(event, {"status": EventStatus.draft}) == [
        "The event is published again and going ahead."
    ]
    assert event.starts_at == datetime(2030, 3, 20, 8, 0, tzinfo=UTC)


def test_two_changes_before_the_worker_runs_keep_their_own_words_and_sequence(
    seminar, organiser_client
):
    """Each update email is written as the organiser saves: its words and its calendar file's
    SEQUENCE are that change's, even when the next change comes before the worker sends it
    (invariant 6: the SEQUENCE rises with every change)."""
    save(organiser_client, seminar, starts_at="2030-03-20T08:30", ends_at="2030-03-20T13:00")
    save(organiser_client, seminar, starts_at="2030-03-20T09:30", ends_at="2030-03-20T14:00")
    render_waiting()
    updates = list(
        db.session.scalars(
            db.select(OutboxMessage)
            .where(OutboxMessage.key.like("event-update:%"))
            .order_by(OutboxMessage.id)
        )
    )
    assert len(updates) == 2
    sequences = []
    for message, start in zip(updates, ("08:30", "09:30"), strict=True):
        assert f"to {start} (London time)" in message.text_body
        (calendar,) = message.attachments
        ics = calendar.content.decode()
        assert f"DTSTART;TZID=Europe/London:20300320T{start.replace(':', '')}00" in ics
        sequences.append(int(ics.split("SEQUENCE:")[1].split()[0]))
    assert sequences[1] == sequences[0] + 1


def test_the_update_emails_cost_the_same_queries_for_any_number_of_bookings(app, make_event):
    """Each email's own link names the booking's booker: they are read with the delegates, not one
    booking and one booker at a time, and the emails go in together (no N+1)."""
    from chamber.registration import notifications
    from tests.factories import make_booking
    from tests.support import count_queries

    def statements_for(bookings: int) -> int:
        event = make_event()
        for n in range(bookings):
            make_booking(event, f"person{n}@business{n}.example", business=f"Business {n}")
        db.session.expire_all()  # as a request that saves the event finds them: not yet read
        event = db.session.get(Event, event.id)
        before = {"starts_at": event.starts_at}
        event.starts_at += timedelta(minutes=30)
        event.ends_at += timedelta(minutes=30)
        with count_queries() as statements:
            notifications.event_changed(app, event=event, changed=("starts_at",), before=before)
        assert (
            db.session.scalar(
                db.select(db.func.count(OutboxMessage.id)).where(
                    OutboxMessage.key.like(f"event-update:{event.id}:%")
                )
            )
            == bookings
        )
        db.session.rollback()
        return len(statements)

    assert statements_for(2) == statements_for(6)
