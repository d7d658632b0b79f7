"""Invariant 3: every seat that appears goes to the first people waiting, in the same transaction,
and they are emailed; so a booking made right after finds the event as full as before.

Each way a seat appears is driven as its user drives it (the booker's manage link, the delegate's
place link, the staff pages), then the same questions are asked: who got the seats, in what order,
which emails are in the outbox, and where does the next booking go.
"""

from __future__ import annotations

import threading

import pytest

from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.registration import places, services, waitlist
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.registration.services import DelegateDetails
from tests.factories import make_booking
from tests.support import post_form

BOOKER = DelegateDetails("Alice Booker", "alice@octree.example")
COLLEAGUE = DelegateDetails("Colin Colleague", "colin@octree.example")
WAITING = [f"wait{n}@queue{n}.example" for n in range(1, 6)]


def statuses(event: Event) -> dict[str, str]:
    rows = db.session.execute(
        db.select(Delegate.email_normalised, Delegate.status).where(Delegate.event_id == event.id)
    )
    return {email: status.value for email, status in rows}


def confirmed(event: Event) -> int:
    return sum(1 for status in statuses(event).values() if status == "confirmed")


def outbox(prefix: str) -> list[str]:
    """Who the outbox messages whose key starts with `prefix` go to, in the order queued."""
    return list(
        db.session.scalars(
            db.select(OutboxMessage.to_address)
            .where(OutboxMessage.key.like(f"{prefix}%"))
            .order_by(OutboxMessage.id)
        )
    )


def by_email(email: str) -> Delegate:
    return db.session.scalars(db.select(Delegate).where(Delegate.email_normalised == email)).one()


@pytest.fixture
def full(make_event) -> Event:
    """Capacity 2, taken by Alice (who booked) and her colleague Colin; five people waiting, each
    from their own business, in the order of WAITING."""
    event = make_event(capacity=2, business_limit=5)
    make_booking(event, BOOKER, COLLEAGUE, business="Octree Ltd", source="web")
    for n, email in enumerate(WAITING, 1):
        result = make_booking(event, email, business=f"Queue {n} Ltd", source="web")
        assert result.waitlisted
    db.session.execute(db.delete(OutboxMessage))  # the booking emails: not what is tested here
    db.session.commit()
    return event


def manage_token(event: Event) -> str:
    booking = db.session.scalars(db.select(Booking).where(Booking.event_id == event.id)).first()
    token = services.new_manage_token(booking)
    db.session.commit()
    return token


def edit_form(event: Event, **changes) -> dict:
    """The staff edit form as it stands for `event`, with `changes`."""

    def local(moment):
        return f"{event.local(moment):%Y-%m-%dT%H:%M}" if moment else ""

    fields = {
        "title": event.title,
        "slug": event.slug,
        "summary": event.summary,
        "description": event.description or "",
        "venue_name": event.venue_name,
        "venue_address": event.venue_address,
        "timezone": event.timezone,
        "starts_at": local(event.starts_at),
        "ends_at": local(event.ends_at),
        "capacity": str(event.capacity),
        "business_limit": str(event.business_limit),
        "registration_opens_at": local(event.registration_opens_at),
        "registration_closes_at": local(event.registration_closes_at),
        "host": event.host,
        "supporters": event.supporters or "",
    }
    return {**fields, **{name: str(value) for name, value in changes.items()}}


def assert_seats_went_to_the_waiting(event: Event, count: int) -> None:
    """The first `count` people waiting have the seats, in order, each emailed once; the event is
    as full as its capacity; and a booking made right after joins the waiting list."""
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    found = statuses(event)
    assert [found[email] for email in WAITING] == ["confirmed"] * count + ["waitlisted"] * (
        len(WAITING) - count
    )
    assert confirmed(event) == event.capacity
    assert outbox("promoted:") == WAITING[:count]
    late = make_booking(event, "late@latecomer.example", business="Latecomer Ltd", source="web")
    assert late.waitlisted and not late.confirmed


# --- each way a seat appears ---------------------------------------------------------------------


def test_the_booker_cancelling_one_place_gives_it_to_the_first_waiting(client, full):
    token = manage_token(full)
    colin = by_email(COLLEAGUE.email)
    path = f"/r/{token}/cancel/{colin.id}"
    assert post_form(client, path, {}).status_code == 302
    assert_seats_went_to_the_waiting(full, 1)
    # Colin is told, Alice (who did it) gets one confirmation: nobody twice.
    assert outbox("seat-cancelled:") == [COLLEAGUE.email]
    assert outbox("places-cancelled:") == [BOOKER.email]
    assert outbox("place-cancelled:") == []


def test_the_booker_cancelling_the_whole_booking_gives_both_seats_in_order(client, full):
    token = manage_token(full)
    assert post_form(client, f"/r/{token}/cancel", {}).status_code == 302
    assert_seats_went_to_the_waiting(full, 2)
    # Alice's own place is in her one confirmation (with its calendar CANCEL), not a second email.
    assert outbox("seat-cancelled:") == [COLLEAGUE.email]
    (summary,) = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("places-cancelled:%"))
    ).all()
    assert summary.to_address == BOOKER.email
    assert b"METHOD:CANCEL" in summary.attachments[0].content
    assert sorted(m.to_address for m in db.session.scalars(db.select(OutboxMessage))) == sorted(
        [COLLEAGUE.email, BOOKER.email, *WAITING[:2]]
    )


def test_a_delegate_cancelling_through_their_own_link_gives_it_to_the_first_waiting(client, full):
    token = places.new_place_token(by_email(COLLEAGUE.email))
    db.session.commit()
    assert post_form(client, f"/places/{token}/cancel", {}).status_code == 302
    assert_seats_went_to_the_waiting(full, 1)
    assert outbox("seat-cancelled:") == [COLLEAGUE.email]
    assert outbox("place-cancelled:booker:") == [BOOKER.email]


def test_staff_cancelling_a_place_gives_it_to_the_first_waiting(organiser_client, full):
    colin = by_email(COLLEAGUE.email)
    path = f"/staff/events/{full.id}/registrations/{colin.id}/cancel"
    assert post_form(organiser_client, path, {}).status_code == 302
    assert_seats_went_to_the_waiting(full, 1)
    assert outbox("seat-cancelled:") == [COLLEAGUE.email]
    assert outbox("place-cancelled:booker:") == [BOOKER.email]


def test_staff_raising_the_capacity_gives_the_new_seats_to_the_waiting(organiser_client, full):
    """The bug as reported: seven waiting, capacity raised by two, nobody promoted."""
    path = f"/staff/events/{full.id}/edit"
    response = post_form(organiser_client, path, edit_form(full, capacity=4))
    assert response.status_code == 302, response.text
    assert_seats_went_to_the_waiting(full, 2)


def test_raising_the_capacity_beyond_the_waiting_list_leaves_seats_to_book(organiser_client, full):
    path = f"/staff/events/{full.id}/edit"
    assert post_form(organiser_client, path, edit_form(full, capacity=10)).status_code == 302
    db.session.expire_all()
    assert [statuses(full)[email] for email in WAITING] == ["confirmed"] * 5
    assert outbox("promoted:") == WAITING
    assert services.seats_left(db.session.get(Event, full.id)) == 3


def test_raising_the_business_limit_frees_no_seat_and_the_list_stays_in_order(
    organiser_client, full
):
    """The per-business limit counts those waiting too, so raising it frees no seat: nobody is
    promoted, nobody is emailed, and the next booking still waits."""
    path = f"/staff/events/{full.id}/edit"
    assert post_form(organiser_client, path, edit_form(full, business_limit=9)).status_code == 302
    assert_seats_went_to_the_waiting(full, 0)


def test_an_event_published_again_gives_the_seats_that_appeared_meanwhile(organiser_client, full):
    """Staff take the event back to draft, raise its capacity, and publish it again: nobody is
    told of a seat while it is a draft; the seats go to those waiting when it is published."""
    staff_page = f"/staff/events/{full.id}"
    post_form(organiser_client, f"{staff_page}/unpublish", {}, token_from=staff_page)
    assert post_form(
        organiser_client, f"{staff_page}/edit", edit_form(full, capacity=4)
    ).status_code == (302)
    db.session.expire_all()
    assert outbox("promoted:") == [] and confirmed(full) == 2
    post_form(organiser_client, f"{staff_page}/publish", {}, token_from=staff_page)
    db.session.expire_all()
    assert db.session.get(Event, full.id).status == EventStatus.published
    assert_seats_went_to_the_waiting(full, 2)


def test_a_cancelled_event_gives_no_seats_away(organiser_client, full):
    staff_page = f"/staff/events/{full.id}"
    post_form(organiser_client, f"{staff_page}/cancel", {}, token_from=staff_page)
    colin = by_email(COLLEAGUE.email)
    path = f"/staff/events/{full.id}/registrations/{colin.id}/cancel"
    assert post_form(organiser_client, path, {}).status_code == 302
    db.session.expire_all()
    assert [statuses(full)[email] for email in WAITING] == ["waitlisted"] * 5
    assert outbox("promoted:") == []


# --- at the same time ----------------------------------------------------------------------------


def test_simultaneous_cancellations_never_promote_anyone_twice_or_overfill(app, make_event):
    """Four confirmed places cancelled at once, each in its own transaction and thread, by the
    booker, the delegate and staff: the four seats go to the first four waiting, each once."""
    event = make_event(capacity=4, business_limit=5)
    seated = [f"seated{n}@firm{n}.example" for n in range(4)]
    for n, email in enumerate(seated):
        make_booking(event, email, business=f"Firm {n}", source="web")
    for n, email in enumerate(WAITING):
        make_booking(event, email, business=f"Queue {n}", source="web")
    db.session.execute(db.delete(OutboxMessage))
    db.session.commit()
    ids = [by_email(email).id for email in seated]
    who = [
        waitlist.CancelledBy.booker,
        waitlist.CancelledBy.delegate,
        waitlist.CancelledBy.staff,
        waitlist.CancelledBy.staff,
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(ids))

    def cancel(delegate_id: int, by: waitlist.CancelledBy) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                loaded = db.session.get(Event, event.id)
                with services.seats_locked(loaded):
                    delegate = db.session.get(Delegate, delegate_id)
                    waitlist.cancel_places(loaded, [delegate], by=by)
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=cancel, args=pair) for pair in zip(ids, who, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    found = statuses(event)
    assert [found[email] for email in seated] == ["cancelled"] * 4
    assert [found[email] for email in WAITING] == ["confirmed"] * 4 + ["waitlisted"]
    assert confirmed(event) == 4
    assert sorted(outbox("promoted:")) == sorted(WAITING[:4])  # each promoted exactly once


def test_a_capacity_raise_racing_cancellations_fills_every_seat_once(app, make_event):
    """Staff raise the capacity while two places are cancelled: whichever commits first, every
    free seat ends with the people waiting longest, and nobody is emailed twice."""
    event = make_event(capacity=2, business_limit=5)
    seated = ["seated0@firm0.example", "seated1@firm1.example"]
    for n, email in enumerate(seated):
        make_booking(event, email, business=f"Firm {n}", source="web")
    for n, email in enumerate(WAITING):
        make_booking(event, email, business=f"Queue {n}", source="web")
    db.session.execute(db.delete(OutboxMessage))
    db.session.commit()
    ids = [by_email(email).id for email in seated]
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def cancel(delegate_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                loaded = db.session.get(Event, event.id)
                with services.seats_locked(loaded):
                    delegate = db.session.get(Delegate, delegate_id)
                    waitlist.cancel_places(loaded, [delegate], by=waitlist.CancelledBy.staff)
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    def raise_capacity() -> None:
        from dataclasses import replace

        from chamber.events import services as events
        from tests.factories import acting_staff

        with app.app_context():
            try:
                barrier.wait(timeout=30)
                loaded = db.session.get(Event, event.id)
                # The seat lock first, so that on SQLite the save never reads before it writes.
                with services.seats_locked(loaded):
                    details = replace(events.EventDetails.of(loaded), capacity=3)
                    events.save_event(loaded, details, by=acting_staff())
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=cancel, args=(i,)) for i in ids]
    threads.append(threading.Thread(target=raise_capacity))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    found = statuses(event)
    assert [found[email] for email in WAITING] == ["confirmed"] * 3 + ["waitlisted"] * 2
    assert sorted(outbox("promoted:")) == sorted(WAITING[:3])


def test_a_waiting_delegate_cancelling_gives_no_seat(client, full):
    token = places.new_place_token(by_email(WAITING[0]))
    db.session.commit()
    assert post_form(client, f"/places/{token}/cancel", {}).status_code == 302
    db.session.expire_all()
    assert statuses(full)[WAITING[0]] == "cancelled"
    assert outbox("promoted:") == []
    assert by_email(WAITING[1]).status == DelegateStatus.waitlisted
    assert services.waitlist_position(by_email(WAITING[1])) == 1
