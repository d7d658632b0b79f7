"""Booking online: the form, its emails, the same person twice, and the manage link."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from chamber.auth.models import Role
from chamber.core import pipeline
from chamber.core.addresses import address_hash
from chamber.core.dialects import on_postgresql
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import OutboxAttachment, OutboxMessage
from chamber.members.models import Contact
from chamber.privacy.notice import save_notice
from chamber.registration import notifications, services
from chamber.registration.models import Booking, BookingToken, Delegate
from tests.factories import make_booking
from tests.support import count_queries, csrf_token, post_form, render_waiting


def form(**changes) -> dict:
    data = {
        "business_name": "Octree Ltd",
        "size_band": "small",
        "sector": "IT",
        "town_or_postcode": "Stevenage",
        "is_member": "yes",
        "booker_name": "Tony Richardson",
        "booker_email": "tony@octree.example",
        "delegates-0-name": "Zoë O'Brien",
        "delegates-0-email": "zoe@octree.example",
        "delegates-0-job_title": "Director",
        "privacy": "y",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def register(client, event, **changes):
    path = f"/events/{event.slug}/register"
    return post_form(client, path, form(**changes))


def statuses(event) -> dict[str, str]:
    rows = db.session.execute(
        db.select(Delegate.email_normalised, Delegate.status).where(Delegate.event_id == event.id)
    )
    return {email: status.value for email, status in rows}


def manage_token(smtp_server, booker: str = "tony@octree.example") -> str:
    """The manage link's token from the latest booker email the worker delivered."""
    deliver_due()
    mail = next(
        m for m in reversed(smtp_server.messages) if booker in m["To"] and "/r/" in m.as_string()
    )
    return re.search(r"/r/(\S+)", mail.get_body(("plain",)).get_content()).group(1)


def register_other(client, event, email: str, **changes):
    """A second business's booking, for a delegate at `email`."""
    return register(
        client,
        event,
        booker_email="b@other.example",
        business_name="Other",
        **{"delegates-0-email": email, **changes},
    )


def delegate(email: str) -> Delegate:
    return db.session.scalars(db.select(Delegate).where(Delegate.email_normalised == email)).one()


def test_a_business_books_a_delegate_and_everyone_gets_the_right_email(
    client, make_event, smtp_server
):
    event = make_event()
    response = register(client, event)
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Booking received" in page.text and "zoe@octree.example" in page.text
    assert statuses(event) == {"zoe@octree.example": "confirmed"}
    # The booker was offered the opt-out and did not take it: the soft opt-in (docs/marketing.md).
    soft = dict(db.session.execute(db.select(Contact.email, Contact.soft_opt_in_at)).all())
    assert soft["tony@octree.example"] is not None and soft["zoe@octree.example"] is None
    deliver_due()
    by_address = {m["To"].split("<")[-1].rstrip(">"): m for m in smtp_server.messages}
    assert set(by_address) == {"zoe@octree.example", "tony@octree.example"}
    confirmation = by_address["zoe@octree.example"]
    assert confirmation["Subject"].startswith("Your place at")
    ics = [p for p in confirmation.walk() if p.get_content_type() == "text/calendar"]
    assert ics and b"BEGIN:VEVENT" in ics[0].get_payload(decode=True)
    booker_mail = by_address["tony@octree.example"].get_body(("plain",)).get_content()
    link = re.search(r"http://\S+/r/(\S+)", booker_mail)
    assert link, booker_mail
    token = link.group(1)
    stored = db.session.scalars(db.select(BookingToken.token_hash)).all()
    assert token not in stored and len(stored) == 1  # only the hash is kept
    manage = client.get(f"/r/{token}")
    assert (
        manage.status_code == 200
        and "Octree Ltd" in manage.text
        and "Place confirmed" in manage.text
    )


def test_a_booking_asks_for_its_places_seats_and_notice_without_extra_round_trips(
    client, make_event, make_staff, monkeypatch
):
    """The statements a public booking sends do not grow with what it reads first: the places the
    people hold and the seats taken are one SELECT, the privacy notice's version is read by the
    booking's own INSERT, and the places go in with one INSERT ... ON CONFLICT (no savepoint)."""
    event = make_event()
    admin = make_staff(role=Role.admin)
    for text in ("First notice.", "Second notice."):
        save_notice(text, "A summary.", by=admin)
    db.session.commit()
    register(client, event, **{"delegates-0-email": "warm@octree.example"})  # caches warm
    csrf = csrf_token(client, f"/events/{event.slug}/register")
    data = form(
        booker_email="ann@two.example",
        business_name="Two Ltd",
        **{
            "delegates-0-email": "bo@two.example",
            "delegates-1-name": "Cy",
            "delegates-1-email": "cy@two.example",
        },
    )
    path = f"/events/{event.slug}/register"
    together, sent_together = pipeline.run, []

    def run(statements):
        sent_together.append([" ".join(str(s).split()).upper() for s, _ in statements])
        return together(statements)

    monkeypatch.setattr(pipeline, "run", run)
    with count_queries() as statements:
        response = client.post(path, data={**data, "csrf_token": csrf})
    assert response.status_code == 302, response.text
    joined = [" ".join(s.split()).upper() for s in statements]
    assert not [s for s in joined if s.startswith(("SAVEPOINT", "RELEASE"))], joined
    assert not [s for s in joined if s.startswith("SELECT MAX(PRIVACY_NOTICE")], joined
    assert len([s for s in joined if s.startswith("INSERT INTO DELEGATE")]) == 1, joined
    assert len([s for s in joined if s.startswith("INSERT INTO CONTACT")]) == 1, joined  # all three
    notice = [s for s in joined if "PRIVACY_NOTICE" in s]
    assert len(notice) == 1 and notice[0].startswith("INSERT INTO BOOKING"), joined
    held = [s for s in joined if "EMAIL_NORMALISED IN" in s and s.startswith("SELECT")]
    assert len(held) == 1 and "COUNT(" in held[0], joined  # the places held, and the seats taken
    # Its emails are queued to be rendered when sent: nothing of the agenda is read for them.
    assert not [s for s in joined if "AGENDA_ITEM" in s or "SPEAKER" in s], joined
    # What a booking of three new people for a new business sends, in all (PostgreSQL: the
    # seat lock's UPDATE returns the event; SQLite: the lock comes first, the event read again).
    assert len(joined) == (11 if on_postgresql() else 13), "\n".join(joined)
    # On PostgreSQL the seat lock and the counts under it are one round trip.
    if on_postgresql():
        assert len(sent_together) == 1 and len(sent_together[0]) == 2, sent_together
        lock, counts = sent_together[0]
        assert (
            lock.startswith("UPDATE EVENT SET UPDATED_AT=EVENT.UPDATED_AT") and "RETURNING" in lock
        )
        assert counts.startswith("SELECT") and "COUNT(DELEGATE.ID)" in counts
    else:
        assert sent_together == []
    booking = db.session.scalars(
        db.select(Booking).join(Booking.booker).where(Contact.email == "ann@two.example")
    ).one()
    assert booking.privacy_notice_version == 2  # the version shown, read as the booking was written
    people = db.session.scalars(db.select(Contact).where(Contact.email.like("%@two.example"))).all()
    assert {c.email: c.email_hash for c in people} == {
        email: address_hash(email)
        for email in ("ann@two.example", "bo@two.example", "cy@two.example")
    }  # each row's own hash, though they went in together
    assert {c.email: c.soft_opt_in_at is not None for c in people} == {
        "ann@two.example": True,  # the booker kept the events offer
        "bo@two.example": False,
        "cy@two.example": False,
    }
    assert statuses(event)["bo@two.example"] == "confirmed"
    assert statuses(event)["cy@two.example"] == "confirmed"


def test_a_booking_reads_the_agenda_for_its_calendar_files_in_a_fixed_number_of_queries(
    client, make_event, make_item, make_speaker
):
    """The confirmations' calendar files list the agenda with its speakers. The booking reads
    none of it (its emails are rendered when sent); the worker's rendering of them reads it in
    the same number of statements for an agenda of one talk as for one of six (no query per
    talk)."""

    def statements_booking(event) -> tuple[int, int]:
        data = form(
            **{
                "delegates-0-email": f"a{event.id}@octree.example",
                "delegates-1-name": "Cy",
                "delegates-1-email": f"c{event.id}@octree.example",
            },
            booker_email=f"tony{event.id}@octree.example",
            business_name=f"Octree {event.id}",
        )
        csrf = csrf_token(client, f"/events/{event.slug}/register")
        with count_queries() as booking:
            answer = client.post(
                f"/events/{event.slug}/register", data={**data, "csrf_token": csrf}
            )
        assert answer.status_code == 302, answer.text
        assert statuses(event) == {
            f"a{event.id}@octree.example": "confirmed",
            f"c{event.id}@octree.example": "confirmed",
        }
        db.session.expire_all()  # as in the worker, nothing of the event is loaded yet
        with count_queries() as rendering:
            assert render_waiting() == 3  # the two confirmations and the booker's email
        return len(booking), len(rendering)

    short, long = make_event(), make_event()
    make_item(short, title="The only talk", speakers=[make_speaker("Ann")])
    for n in range(6):
        make_item(long, minutes_in=30 * n, title=f"Talk {n}", speakers=[make_speaker(f"S{n}")])
    statements_booking(make_event())  # caches warm
    assert statements_booking(short) == statements_booking(long)
    attachment = db.session.scalars(
        db.select(OutboxAttachment)
        .join(OutboxMessage)
        .where(OutboxMessage.to_address == f"c{long.id}@octree.example")
    ).one()
    calendar = attachment.content.decode() if isinstance(attachment.content, bytes) else ""
    assert "Talk 5" in calendar.replace("\r\n ", "") and "S5" in calendar, calendar


def test_a_full_event_puts_delegates_on_the_waiting_list_and_says_so(client, make_event):
    event = make_event(capacity=1)
    response = register(
        client,
        event,
        **{"delegates-1-name": "Second", "delegates-1-email": "second@octree.example"},
    )
    assert response.status_code == 302
    assert statuses(event) == {
        "zoe@octree.example": "confirmed",
        "second@octree.example": "waitlisted",
    }
    kinds = db.session.scalars(db.select(OutboxMessage.key)).all()
    assert sorted(k.split(":")[0] for k in kinds) == ["booking", "confirmed", "waitlisted"]
    assert render_waiting() == 3
    waiting = db.session.scalar(
        db.select(OutboxMessage).where(OutboxMessage.key.like("waitlisted:%"))
    )
    assert "waiting list, number 1" in waiting.text_body


def test_each_person_waiting_is_told_their_own_place_in_the_queue(client, make_event):
    """The emails are queued before the seat lock with a stand-in for the place in the queue,
    which only the lock decides; each email ends up with its own number, and nothing else."""
    event = make_event(capacity=1, business_limit=3)
    register(
        client,
        event,
        **{"delegates-1-name": "Second", "delegates-1-email": "second@octree.example"},
        **{"delegates-2-name": "Third", "delegates-2-email": "third@octree.example"},
    )
    register_other(client, event, "fourth@other.example")
    assert "waiting-list-place" not in "".join(
        db.session.scalars(db.select(OutboxMessage.render_params))
    )
    render_waiting()
    told = {
        message.to_normalised: message
        for message in db.session.scalars(
            db.select(OutboxMessage).where(OutboxMessage.key.like("waitlisted:%"))
        )
    }
    numbers = {"second@octree.example": 1, "third@octree.example": 2, "fourth@other.example": 3}
    assert sorted(told) == sorted(numbers)
    for address, number in numbers.items():
        for body in (told[address].text_body, told[address].html_body):
            assert re.findall(r"waiting list, number (\S+?)[.<]", body) == [str(number)]
            assert "waiting-list-place" not in body
        assert services.waitlist_position(delegate(address)) == number


def test_a_place_decided_by_a_web_process_whose_clock_runs_ahead_still_waits_ahead(
    client, make_event
):
    """The waiting list's order is the order of the seat decisions, even across web processes
    whose clocks disagree: a place decided after one stamped an hour ahead is numbered after it,
    by its email and by `waitlist_position`, and is stamped after it."""
    event = make_event(capacity=1, business_limit=3)
    register(client, event)  # the one seat
    register_other(client, event, "early@other.example")
    ahead = delegate("early@other.example")
    ahead.status_changed_at = utcnow() + timedelta(hours=1)  # another process, its clock fast
    db.session.commit()
    register_other(client, event, "later@third.example")
    render_waiting()
    later = delegate("later@third.example")
    assert later.status_changed_at > ahead.status_changed_at
    assert [services.waitlist_position(d) for d in (ahead, later)] == [1, 2]
    told = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key == f"waitlisted:delegate:{later.id}")
    ).one()
    assert re.findall(r"waiting list, number (\S+?)[.<]", told.text_body) == ["2"]


def test_a_seat_that_came_out_other_than_written_withdraws_the_emails_queued_for_it(
    client, make_event, monkeypatch
):
    """The emails are queued before the seat lock, as the seats stood when the places were
    written. If the lock decides otherwise (the last seat went meanwhile: here the count before
    the lock is made to say the event is empty), those emails are taken back out, with their
    calendar files, and the ones for what was decided are queued instead."""
    event = make_event(capacity=1)
    register_other(client, event, "first@other.example")
    monkeypatch.setattr(services.seats, "confirmed_count", lambda _event_id: 0)
    assert register(client, event).status_code == 302
    assert statuses(event)["zoe@octree.example"] == "waitlisted"
    zoe = delegate("zoe@octree.example")
    render_waiting()
    keys = set(db.session.scalars(db.select(OutboxMessage.key)))
    assert f"confirmed:delegate:{zoe.id}" not in keys
    assert f"waitlisted:delegate:{zoe.id}" in keys
    for key, says in (
        (f"booking:{zoe.booking_id}", "Zoë O'Brien: on the waiting list"),
        (f"waitlisted:delegate:{zoe.id}", "waiting list, number 1."),
    ):
        message = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == key)).one()
        assert says in message.text_body
        assert "waiting-list-place" not in message.text_body + message.html_body
    orphans = db.session.scalar(
        db.select(db.func.count(OutboxAttachment.id)).where(
            OutboxAttachment.message_id.not_in(db.select(OutboxMessage.id))
        )
    )
    assert orphans == 0
    # One calendar file in all: the first delegate's; none for the place that waits.
    assert db.session.scalar(db.select(db.func.count(OutboxAttachment.id))) == 1


def test_an_event_staff_change_while_a_booking_is_written_is_in_the_booking_emails(
    app, client, make_event
):
    """The emails are rendered and queued before the seat lock. If staff move the event in the
    moment between (their commit does not wait for the booking, which has not locked the event
    yet), the lock sees it, and the emails are made again from the event as it now is. Only on
    PostgreSQL: on SQLite a booking takes the lock first, so the change waits for it."""
    from chamber.core.dialects import on_postgresql
    from chamber.events.models import Event

    if not on_postgresql():
        pytest.skip("on SQLite the booking holds the lock from its start")
    event = make_event()
    moved = event.starts_at + timedelta(days=7)
    result = services.book(
        db.session.get(Event, event.id),
        services.BusinessDetails("Octree Ltd", services.SizeBand.small),
        services.DelegateDetails("Tony", "tony@octree.example"),
        [services.DelegateDetails("Zoë", "zoe@octree.example")],
        settle=False,
    )
    with db.engine.connect() as staff:  # another transaction, committed before the lock
        staff.execute(
            db.update(Event)
            .where(Event.id == event.id)
            .values(starts_at=moved, ends_at=moved + timedelta(hours=4), updated_at=utcnow())
        )
        staff.commit()
    notifications.settle_and_tell(result.unsettled.event, result, notifications.booking_emails)
    db.session.commit()
    render_waiting()
    zoe = delegate("zoe@octree.example")
    confirmation = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key == f"confirmed:delegate:{zoe.id}")
    ).one()
    local = moved.astimezone(ZoneInfo(event.timezone))
    assert f"{local:%A} {local.day} {local:%B %Y}" in confirmation.text_body
    assert len(confirmation.attachments) == 1
    assert f"DTSTART;TZID={event.timezone}:{local:%Y%m%dT%H%M%S}".encode() in (
        confirmation.attachments[0].content
    )


def test_the_same_email_twice_gets_no_second_seat_and_a_fresh_link_by_email(client, make_event):
    event = make_event()
    register(client, event)
    again = register(
        client,
        event,
        business_name="Someone Else",
        booker_email="mallory@example.com",
        **{"delegates-0-email": "ZOE@octree.example"},
    )
    assert again.status_code == 302  # the same answer as for anyone: see test_registration_privacy
    page = client.get(again.headers["Location"]).text
    assert "zoe@octree.example" in page and "Director" not in page
    assert statuses(event) == {"zoe@octree.example": "confirmed"}
    resent = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("already-booked:%"))
    ).all()
    assert [m.to_address for m in resent] == ["zoe@octree.example"]
    assert db.session.scalar(db.select(db.func.count(Booking.id))) == 1


def test_missing_and_malformed_fields_come_back_with_clear_messages(client, make_event):
    event = make_event()
    response = register(
        client,
        event,
        business_name="",
        size_band=None,
        booker_email="not-an-email",
        privacy=None,
        **{"delegates-0-email": "", "delegates-1-name": "Half filled"},
    )
    assert response.status_code == 400
    for message in (
        "Enter your business",
        "Choose how many people",
        "right format",
        "Tick the box to say you have read the privacy notice",
        "Enter delegate 1&#39;s email address",
        "Enter delegate 2&#39;s email address",
    ):
        assert message in response.text, message
    assert db.session.scalar(db.select(db.func.count(Delegate.id))) == 0


def test_more_delegates_than_the_business_may_book_is_refused(client, make_event):
    event = make_event(business_limit=1)
    response = register(
        client, event, **{"delegates-1-name": "Extra", "delegates-1-email": "x@octree.example"}
    )
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Delegate.id))) == 0


def test_hostile_text_is_stored_as_typed_and_shown_escaped(client, make_event, smtp_server):
    event = make_event()
    hostile = "<script>alert(1)</script>'; DROP TABLE delegate; -- 李"
    response = register(client, event, business_name=hostile, **{"delegates-0-name": hostile})
    assert response.status_code == 302
    page = client.get(f"/r/{manage_token(smtp_server)}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert db.session.scalars(db.select(Delegate.name)).one() == hostile


def test_the_honeypot_refuses_bots_and_stores_nothing(client, make_event):
    response = register(client, make_event(), website="http://spam.example")
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Delegate.id))) == 0


def test_no_csrf_token_is_refused(client, make_event):
    event = make_event()
    response = client.post(f"/events/{event.slug}/register", data=form())
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Delegate.id))) == 0


def test_draft_events_are_404_and_closed_ones_say_why(client, make_event):
    assert client.get(f"/events/{make_event(status='draft').slug}/register").status_code == 404
    cancelled = make_event(status="cancelled")
    assert "has been cancelled" in client.get(f"/events/{cancelled.slug}/register").text


def test_the_manage_link_cancels_a_place_and_the_first_waiting_gets_it(
    client, make_event, smtp_server
):
    event = make_event(capacity=1, business_limit=5)
    register(client, event)
    register_other(client, event, "wait@other.example", **{"delegates-0-name": "Waiting Person"})
    token = manage_token(smtp_server)
    zoe = delegate("zoe@octree.example")
    response = post_form(
        client, f"/r/{token}/cancel/{zoe.id}", {}, token_from=f"/r/{token}/cancel/{zoe.id}"
    )
    assert response.status_code == 302
    assert statuses(event) == {"zoe@octree.example": "cancelled", "wait@other.example": "confirmed"}
    keys = db.session.scalars(
        db.select(OutboxMessage.key).where(OutboxMessage.key.like("promoted:%"))
    ).all()
    assert len(keys) == 1


def test_a_wrong_token_or_another_bookings_delegate_is_a_404(client, make_event, smtp_server):
    event = make_event()
    register(client, event)
    register_other(client, event, "other@other.example")
    assert client.get("/r/not-a-real-token").status_code == 404
    token = manage_token(smtp_server)
    other = delegate("other@other.example")
    token_value = csrf_token(client, f"/r/{token}/add")
    response = client.post(f"/r/{token}/cancel/{other.id}", data={"csrf_token": token_value})
    assert response.status_code == 404
    assert statuses(event)["other@other.example"] == "confirmed"


def test_the_booker_changes_a_delegates_details_and_needs(client, make_event, smtp_server):
    event = make_event()
    register(client, event)
    token = manage_token(smtp_server)
    zoe = db.session.scalars(db.select(Delegate)).one()
    path = f"/r/{token}/delegates/{zoe.id}"
    response = post_form(
        client,
        path,
        {
            "name": "Zoë O'Brien-Smith",
            "job_title": "CEO",
            "phone": "",
            "needs": "Wheelchair access; vegetarian",
        },
    )
    assert response.status_code == 302
    assert db.session.get(Delegate, zoe.id).needs == "Wheelchair access; vegetarian"
    assert db.session.get(Delegate, zoe.id).name == "Zoë O'Brien-Smith"
    bad = post_form(client, path, {"name": "", "needs": "x" * 1001})
    assert bad.status_code == 400
    assert (
        "Enter the delegate&#39;s full name." in bad.text and "1000 characters or fewer" in bad.text
    )


def test_the_booker_adds_a_delegate_within_the_business_limit(client, make_event, smtp_server):
    event = make_event(business_limit=2, capacity=1)
    register(client, event)
    token = manage_token(smtp_server)
    added = post_form(
        client, f"/r/{token}/add", {"name": "Second Person", "email": "second@octree.example"}
    )
    assert added.status_code == 302
    assert statuses(event) == {
        "zoe@octree.example": "confirmed",
        "second@octree.example": "waitlisted",
    }
    assert (
        db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key.like("waitlisted:%")))
        is not None
    )
    third = post_form(client, f"/r/{token}/add", {"name": "Third", "email": "third@octree.example"})
    assert third.status_code == 400 and "may book up to 2 places" in third.text
    assert "already has" not in third.text
    event.business_limit = 3
    db.session.commit()
    # Someone already on this booking (listed on the booker's page): said on the field, no email.
    messages = db.session.scalar(db.select(db.func.count(OutboxMessage.id)))
    again = post_form(client, f"/r/{token}/add", {"name": "Zoe", "email": "ZOE@octree.example"})
    assert again.status_code == 400
    assert "zoe@octree.example already has a place on this booking" in again.text
    assert 'id="email-error"' in again.text
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == messages
    # Someone with a place on another booking: the same words as anyone added; they are emailed.
    register_other(client, event, "other@other.example")
    messages = db.session.scalar(db.select(db.func.count(OutboxMessage.id)))
    elsewhere = post_form(client, f"/r/{token}/add", {"name": "O", "email": "other@other.example"})
    assert elsewhere.status_code == 302
    told = client.get(elsewhere.headers["Location"]).text
    assert "We have emailed other@other.example with what to do next." in told
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == messages + 1
    assert len(statuses(event)) == 3


def test_another_bookings_delegate_cannot_be_edited_through_this_link(
    client, make_event, smtp_server
):
    event = make_event()
    register(client, event)
    register_other(client, event, "other@other.example")
    token = manage_token(smtp_server)
    other = delegate("other@other.example")
    assert client.get(f"/r/{token}/delegates/{other.id}").status_code == 404
    forged = post_form(
        client,
        f"/r/{token}/delegates/{other.id}",
        {"name": "Hijacked"},
        token_from=f"/r/{token}/add",
    )
    assert forged.status_code == 404
    assert db.session.get(Delegate, other.id).name != "Hijacked"


def test_the_booking_form_is_rate_limited_per_address(app, client, make_event):
    app.config["BOOKING_LIMIT_PER_ADDRESS"] = "2 per hour"
    event = make_event(business_limit=1)
    for n in range(2):
        response = register(
            client,
            event,
            business_name=f"Business {n}",
            **{"delegates-0-email": f"person{n}@example.com"},
        )
        assert response.status_code == 302
    refused = register(
        client, event, business_name="Business 3", **{"delegates-0-email": "p3@example.com"}
    )
    assert refused.status_code == 429
    assert "Too many attempts" in refused.text
    assert len(statuses(event)) == 2
    assert (
        client.get(f"/events/{event.slug}/register").status_code == 200
    )  # reading is never limited


def test_adding_someone_we_know_through_a_staff_bookings_link_leaves_their_record(
    client, make_event, smtp_server
):
    """A booking taken by staff (by phone, or a walk-in) has a private link like any other; what
    its holder types about a person the directory knows stays on the new place, and never renames
    them or moves them to this business."""
    event = make_event(business_limit=5)
    known = make_booking(make_event(), "ceo@bigco.example", business="BigCo Ltd").booking.booker
    staff_booking = make_booking(event, "walker@small.example", business="Small Ltd").booking
    token = services.new_manage_token(staff_booking)
    db.session.commit()
    assert staff_booking.source == "staff"
    record = (known.name, known.job_title, known.organisation_id)
    added = post_form(
        client,
        f"/r/{token}/add",
        {"name": "Renamed By Stranger", "email": "CEO@bigco.example", "job_title": "Intern"},
    )
    assert added.status_code == 302
    db.session.expire_all()
    assert (known.name, known.job_title, known.organisation_id) == record
    place = db.session.scalars(
        db.select(Delegate).where(
            Delegate.event_id == event.id, Delegate.email_normalised == "ceo@bigco.example"
        )
    ).one()
    assert place.name == "Renamed By Stranger" and place.contact_id == known.id
