"""Changing an event's date, hours or zone: the agenda moves with a postponement, a change that
would strand a talk is refused before anyone is asked to confirm, and the past stays past."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chamber.events import services
from chamber.events.models import AgendaItem, Event, EventStatus
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members.models import SizeBand
from chamber.registration import notifications
from chamber.registration import services as booking
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.factories import acting_staff
from tests.support import post_form
from tests.test_events import EVENT_FORM

# 08:00 to 12:30 GMT on Wednesday 20 March 2030 (the clocks go forward on 31 March).
WINTER = datetime(2030, 3, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def seminar(make_event, make_item) -> Event:
    event = make_event(
        starts_at=WINTER,
        ends_at=WINTER + timedelta(hours=4, minutes=30),
        venue_address=EVENT_FORM["venue_address"],
        slug="moving",
    )
    make_item(event, minutes_in=0, length=30, title="Welcome")
    make_item(event, minutes_in=60, length=45, title="Keynote")
    person = DelegateDetails(name="Ann Delegate", email="ann@example.com")
    business = BusinessDetails("Octree Ltd", SizeBand.small, "IT", "Stevenage")
    notifications.booking_emails(event, booking.book(event, business, person, [person]))
    db.session.commit()
    return event


def local_items(event_id: int) -> dict[str, str]:
    db.session.expire_all()
    event = db.session.get(Event, event_id)
    return {item.title: f"{item.local_start:%Y-%m-%d %H:%M}" for item in event.agenda_items}


def form(**changes) -> dict:
    return {
        **EVENT_FORM,
        "slug": "moving",
        "starts_at": "2030-03-20T08:00",
        "ends_at": "2030-03-20T12:30",
        "registration_closes_at": "",
        "move_agenda": "y",
        **changes,
    }


def save(client, event: Event, **changes):
    path = f"/staff/events/{event.id}/edit"
    return post_form(client, path, form(**changes, notify_confirmed="1"))


def test_postponing_to_another_day_moves_the_agenda_at_the_same_local_times(
    seminar, organiser_client
):
    # Across the change to summer time: 09:00 on the programme stays 09:00, now BST.
    response = save(
        organiser_client, seminar, starts_at="2030-04-03T08:00", ends_at="2030-04-03T12:30"
    )
    assert response.status_code == 302
    assert local_items(seminar.id) == {"Welcome": "2030-04-03 08:00", "Keynote": "2030-04-03 09:00"}
    keynote = db.session.scalars(db.select(AgendaItem).where(AgendaItem.title == "Keynote")).one()
    assert keynote.starts_at == datetime(2030, 4, 3, 8, 0, tzinfo=UTC)
    assert keynote.ends_at - keynote.starts_at == timedelta(minutes=45)
    event = db.session.get(Event, seminar.id)
    assert event.sequence == 1  # one change, one email
    assert (
        db.session.scalar(
            db.select(db.func.count(OutboxMessage.id)).where(
                OutboxMessage.key.like("event-update:%")
            )
        )
        == 1
    )


def test_the_check_step_says_the_agenda_moves_with_the_event(seminar, organiser_client):
    path = f"/staff/events/{seminar.id}/edit"
    page = post_form(
        organiser_client, path, form(starts_at="2030-04-03T08:00", ends_at="2030-04-03T12:30")
    )
    assert page.status_code == 200
    assert "You changed the start time and end time." in page.text
    assert "The agenda moves with the event too: each item keeps its time from the start." in (
        page.text
    )
    assert 'name="move_agenda" type="checkbox" value="y"' in page.text  # the choice is kept
    same_day = post_form(organiser_client, path, form(ends_at="2030-03-20T13:00"))
    assert "You changed the end time." in same_day.text
    assert "The agenda moves with the event" not in same_day.text


def update_emails() -> list[OutboxMessage]:
    return list(
        db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key.like("event-update:%")))
    )


def test_moving_the_start_half_an_hour_moves_the_agenda_in_one_save_and_one_email(
    seminar, organiser_client
):
    response = save(
        organiser_client, seminar, starts_at="2030-03-20T08:30", ends_at="2030-03-20T13:00"
    )
    assert response.status_code == 302
    assert local_items(seminar.id) == {"Welcome": "2030-03-20 08:30", "Keynote": "2030-03-20 09:30"}
    assert db.session.get(Event, seminar.id).sequence == 1
    assert len(update_emails()) == 1  # one delegate, one email


def test_a_half_hour_move_across_the_change_of_clocks_keeps_the_local_programme(
    seminar, organiser_client
):
    # 20 March is GMT, 3 April BST: the 09:00 keynote is at 09:30 local, an hour after 08:30.
    response = save(
        organiser_client, seminar, starts_at="2030-04-03T08:30", ends_at="2030-04-03T13:00"
    )
    assert response.status_code == 302
    assert local_items(seminar.id) == {"Welcome": "2030-04-03 08:30", "Keynote": "2030-04-03 09:30"}
    keynote = db.session.scalars(db.select(AgendaItem).where(AgendaItem.title == "Keynote")).one()
    assert keynote.starts_at == datetime(2030, 4, 3, 8, 30, tzinfo=UTC)  # 09:30 BST
    assert keynote.ends_at - keynote.starts_at == timedelta(minutes=45)


def test_unticked_the_agenda_stays_and_a_start_after_a_talk_is_refused(seminar, organiser_client):
    path = f"/staff/events/{seminar.id}/edit"
    earlier = save(organiser_client, seminar, starts_at="2030-03-20T07:30", move_agenda="")
    assert earlier.status_code == 302
    assert local_items(seminar.id) == {"Welcome": "2030-03-20 08:00", "Keynote": "2030-03-20 09:00"}
    later = post_form(organiser_client, path, form(starts_at="2030-03-20T08:30", move_agenda=""))
    assert later.status_code == 400
    assert "The agenda item “Welcome” (08:00 on 20 March) would fall outside" in later.text
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).starts_at == WINTER - timedelta(minutes=30)


def test_unticked_a_move_to_another_day_is_refused_rather_than_stranding_the_agenda(
    seminar, organiser_client
):
    response = save(
        organiser_client,
        seminar,
        starts_at="2030-04-03T08:00",
        ends_at="2030-04-03T12:30",
        move_agenda="",
    )
    assert response.status_code == 400
    assert "would fall outside" in response.text
    assert local_items(seminar.id)["Welcome"] == "2030-03-20 08:00"


def test_the_box_is_ticked_when_the_event_has_an_agenda_and_absent_when_it_has_none(
    seminar, make_event, organiser_client
):
    page = organiser_client.get(f"/staff/events/{seminar.id}/edit").text
    assert 'checked id="move_agenda" name="move_agenda" type="checkbox" value="y"' in page
    assert "Move the agenda with the event: each talk keeps its time from the start" in page
    bare = make_event()
    assert "move_agenda" not in organiser_client.get(f"/staff/events/{bare.id}/edit").text


def test_a_change_that_strands_a_talk_is_refused_before_anyone_is_asked_to_confirm(
    seminar, organiser_client
):
    path = f"/staff/events/{seminar.id}/edit"
    page = post_form(organiser_client, path, form(ends_at="2030-03-20T09:30"))
    assert page.status_code == 400
    assert "The agenda item “Keynote” (09:00 on 20 March) would fall outside" in page.text
    assert "Check before you save" not in page.text and "notify_confirmed" not in page.text
    db.session.expire_all()
    event = db.session.get(Event, seminar.id)
    assert event.ends_at == WINTER + timedelta(hours=4, minutes=30) and event.sequence == 0
    assert local_items(seminar.id)["Keynote"] == "2030-03-20 09:00"


def test_checking_a_change_alters_nothing(seminar, app):
    event = db.session.get(Event, seminar.id)
    details = services.EventDetails.of(event)
    late = replace(
        details,
        starts_at=WINTER + timedelta(days=14),
        ends_at=WINTER + timedelta(days=14, hours=1),
    )
    assert "would fall outside" in services.change_problem(event, late)
    assert services.change_problem(event, replace(details, venue_name="Knebworth House")) is None
    assert event.starts_at == WINTER and event.venue_name == "Holiday Inn Stevenage"
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).starts_at == WINTER


def test_moving_to_another_zone_keeps_the_programmes_wall_clock(seminar, organiser_client):
    response = save(
        organiser_client,
        seminar,
        timezone="Europe/Paris",
        starts_at="2030-03-20T08:00",
        ends_at="2030-03-20T12:30",
    )
    assert response.status_code == 302
    assert local_items(seminar.id) == {"Welcome": "2030-03-20 08:00", "Keynote": "2030-03-20 09:00"}


def test_an_event_that_has_taken_place_cannot_be_cancelled(make_event, organiser_client):
    past = make_event(starts_at=datetime(2016, 7, 4, 7, tzinfo=UTC))
    path = f"/staff/events/{past.id}/cancel"
    assert "Cancel event" not in organiser_client.get(f"/staff/events/{past.id}").text
    confirm = organiser_client.get(path).text
    assert "already taken place" in confirm and "Yes, cancel the event" not in confirm
    page = post_form(organiser_client, path, {}, token_from=path, follow_redirects=True)
    assert "already taken place" in page.text
    db.session.expire_all()
    event = db.session.get(Event, past.id)
    assert event.status == EventStatus.published and event.sequence == 0


# --- what calendars show changes with the agenda and the speakers -----------------------------


def feed_etag(client) -> str:
    return client.get("/calendar.ics").headers["ETag"]


def test_moving_a_talk_raises_the_sequence_and_refreshes_the_feed(
    seminar, client, organiser_client
):
    etag = feed_etag(client)
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    keynote = db.session.scalars(db.select(AgendaItem).where(AgendaItem.title == "Keynote")).one()
    path = f"/staff/events/{seminar.id}/agenda/{keynote.id}/earlier"
    post_form(organiser_client, path, {}, token_from=f"/staff/events/{seminar.id}")
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).sequence == 1
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 200
    feed = client.get("/calendar.ics").data.decode()
    assert feed.index("Keynote") < feed.index("Welcome")  # the agenda in the description


def test_rewording_a_talk_refreshes_the_feed_without_a_new_sequence(seminar, client):
    etag = feed_etag(client)
    event = db.session.get(Event, seminar.id)
    keynote = next(item for item in event.agenda_items if item.title == "Keynote")
    details = services.AgendaItemDetails(
        title="Keynote: the threat today",
        description="",
        kind=keynote.kind,
        starts_at=keynote.starts_at,
        ends_at=keynote.ends_at,
    )
    services.save_agenda_item(event, keynote, details, [], by=acting_staff())
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Event, seminar.id).sequence == 0
    assert feed_etag(client) != etag
    assert "Keynote: the threat today" in client.get("/calendar.ics").data.decode()


def test_renaming_a_speaker_refreshes_the_feeds_of_their_events(
    seminar, client, make_speaker, make_item
):
    speaker = make_speaker(name="Tony Richardson", organisation="Octree")
    make_item(db.session.get(Event, seminar.id), minutes_in=120, speakers=[speaker])
    etag = feed_etag(client)
    services.save_speaker(
        speaker,
        services.SpeakerDetails(name="Tony Richardson", job_title="", organisation="Octree Ltd",
                                bio="", email=None),
        by=acting_staff(),
    )  # fmt: skip
    db.session.commit()
    assert feed_etag(client) != etag
    assert "Octree Ltd" in client.get("/calendar.ics").data.decode()


def test_two_staff_changing_the_place_at_once_are_two_changes_and_two_emails(app, seminar):
    barrier = threading.Barrier(2)
    errors: list[Exception] = []
    event_id = seminar.id  # read here: the fixture's object belongs to this thread's session
    acting_staff()  # made here, so that neither thread makes it
    db.session.commit()

    def change(hall: str) -> None:
        with app.app_context():
            try:
                event = db.session.get(Event, event_id)
                assert event.sequence == 0
                barrier.wait(timeout=30)  # both have read the event before either writes
                moved = replace(services.EventDetails.of(event), venue_name=hall)
                services.save_event(event, moved, by=acting_staff())
                db.session.commit()
            except Exception as error:  # reported in the test's thread
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=change, args=(hall,)) for hall in ("Hall A", "Hall B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    assert db.session.get(Event, event_id).sequence == 2
    keys = db.session.scalars(
        db.select(OutboxMessage.key).where(OutboxMessage.key.like("event-update:%"))
    ).all()
    assert sorted(key.split(":")[2] for key in keys) == ["1", "2"]
