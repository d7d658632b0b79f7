"""Staff manage events, speakers and agendas; the public sees published events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chamber.events.models import AgendaItem, Event, EventStatus, Speaker
from chamber.extensions import db
from tests.support import count_queries, post_form

EVENT_FORM = {
    "title": "Cybercrime: protect your business",
    "slug": "",
    "summary": "A morning seminar.",
    "description": "Learn **how** to stay safe.",
    "venue_name": "Holiday Inn Stevenage",
    "venue_address": "St George's Way\nStevenage SG1 1HS",
    "timezone": "Europe/London",
    "starts_at": "2030-07-04T08:00",
    "ends_at": "2030-07-04T12:30",
    "capacity": "120",
    "business_limit": "3",
    "registration_opens_at": "",
    "registration_closes_at": "2030-07-03T17:00",
    "host": "Hertfordshire Chamber of Commerce",
    "supporters": "Police and Crime Commissioner's Community Fund\nOctree",
}


def create_event(client, **changes):
    return post_form(client, "/staff/events/new", {**EVENT_FORM, **changes})


def only_event() -> Event:
    return db.session.scalars(db.select(Event)).one()


def test_staff_create_an_event_in_local_time_as_a_draft_with_a_generated_slug(organiser_client):
    response = create_event(organiser_client)
    assert response.status_code == 302
    event = only_event()
    assert event.slug == "cybercrime-protect-your-business"
    assert event.status == EventStatus.draft
    assert event.starts_at == datetime(2030, 7, 4, 7, 0, tzinfo=UTC)  # 08:00 BST
    assert event.registration_closes_at == datetime(2030, 7, 3, 16, 0, tzinfo=UTC)
    assert event.supporter_list == ["Police and Crime Commissioner's Community Fund", "Octree"]
    page = organiser_client.get(response.headers["Location"])
    assert "Draft." in page.text and "08:00" in page.text


def test_a_second_event_with_the_same_title_gets_its_own_slug(organiser_client):
    create_event(organiser_client)
    create_event(organiser_client)
    slugs = sorted(db.session.scalars(db.select(Event.slug)))
    assert slugs == ["cybercrime-protect-your-business", "cybercrime-protect-your-business-2"]


def test_an_explicit_slug_is_kept_and_editable(organiser_client):
    create_event(organiser_client, slug="cyber-2030")
    event = only_event()
    response = post_form(
        organiser_client, f"/staff/events/{event.id}/edit", {**EVENT_FORM, "slug": "cyber-july"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert only_event().slug == "cyber-july"


def test_edit_form_shows_times_in_the_events_zone(organiser_client, make_event):
    event = make_event(starts_at=datetime(2030, 7, 4, 7, 0, tzinfo=UTC))
    page = organiser_client.get(f"/staff/events/{event.id}/edit").text
    assert 'value="2030-07-04T08:00"' in page


def test_changing_time_or_place_raises_the_calendar_sequence_but_other_edits_do_not(
    organiser_client,
):
    create_event(organiser_client)
    event = only_event()
    path = f"/staff/events/{event.id}/edit"
    post_form(organiser_client, path, {**EVENT_FORM, "summary": "New words."})
    db.session.expire_all()
    assert only_event().sequence == 0
    post_form(organiser_client, path, {**EVENT_FORM, "starts_at": "2030-07-04T08:30"})
    db.session.expire_all()
    assert only_event().sequence == 1
    post_form(
        organiser_client,
        path,
        {**EVENT_FORM, "starts_at": "2030-07-04T08:30", "venue_name": "Knebworth House"},
    )
    db.session.expire_all()
    assert only_event().sequence == 2


def test_publish_unpublish_and_cancel(organiser_client, client):
    create_event(organiser_client)
    event = only_event()
    public_path = f"/events/{event.slug}"
    assert client.get(public_path).status_code == 404

    post_form(
        organiser_client,
        f"/staff/events/{event.id}/publish",
        {},
        token_from=f"/staff/events/{event.id}",
    )
    db.session.expire_all()
    assert only_event().status == EventStatus.published
    assert client.get(public_path).status_code == 200
    assert "Cybercrime: protect your business" in client.get("/").text

    post_form(
        organiser_client,
        f"/staff/events/{event.id}/unpublish",
        {},
        token_from=f"/staff/events/{event.id}",
    )
    assert client.get(public_path).status_code == 404

    post_form(
        organiser_client,
        f"/staff/events/{event.id}/publish",
        {},
        token_from=f"/staff/events/{event.id}",
    )
    confirm = organiser_client.get(f"/staff/events/{event.id}/cancel")
    assert "Yes, cancel the event" in confirm.text
    post_form(
        organiser_client,
        f"/staff/events/{event.id}/cancel",
        {},
        token_from=f"/staff/events/{event.id}/cancel",
    )
    db.session.expire_all()
    assert only_event().status == EventStatus.cancelled
    assert only_event().sequence == 4  # publish, unpublish, publish, cancel
    assert "This event has been cancelled" in client.get(public_path).text


def test_a_cancelled_event_cannot_be_published_again(organiser_client, make_event):
    event = make_event(status=EventStatus.cancelled)
    response = post_form(
        organiser_client,
        f"/staff/events/{event.id}/publish",
        {},
        token_from=f"/staff/events/{event.id}",
        follow_redirects=True,
    )
    assert "A cancelled event can only go back to draft." in response.text
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == EventStatus.cancelled


def test_past_events_say_so_and_leave_the_home_page(client, make_event):
    past = make_event(
        title="Last year's seminar", starts_at=datetime.now(UTC) - timedelta(days=400)
    )
    assert "Last year&#39;s seminar" not in client.get("/").text
    assert "Last year&#39;s seminar" in client.get("/events/past").text
    assert "This event has taken place" in client.get(f"/events/{past.slug}").text


def item_form(**changes):
    return {
        "title": "Cyber Essentials",
        "kind": "talk",
        "starts_at": "2030-07-04T09:00",
        "ends_at": "2030-07-04T09:30",
        "description": "",
        "speakers-0": "0",
        "speakers-1": "0",
        "speakers-2": "0",
        "speakers-3": "0",
        **changes,
    }


def test_add_an_agenda_item_with_two_speakers_in_the_chosen_order(organiser_client, make_speaker):
    create_event(organiser_client)
    event = only_event()
    stephanie = make_speaker("Stephanie Frankish", "Crime Reduction and Community Safety Unit")
    julie = make_speaker("Julie Lloyd", "Crime Reduction and Community Safety Unit")
    response = post_form(
        organiser_client,
        f"/staff/events/{event.id}/agenda/new",
        item_form(**{"speakers-0": str(julie.id), "speakers-1": str(stephanie.id)}),
    )
    assert response.status_code == 302
    item = db.session.scalars(db.select(AgendaItem)).one()
    assert [s.name for s in item.speakers] == ["Julie Lloyd", "Stephanie Frankish"]
    assert item.starts_at == datetime(2030, 7, 4, 8, 0, tzinfo=UTC)

    post_form(
        organiser_client,
        f"/staff/events/{event.id}/publish",
        {},
        token_from=f"/staff/events/{event.id}",
    )
    page = organiser_client.get(f"/events/{event.slug}").text
    assert page.index("Julie Lloyd") < page.index("Stephanie Frankish")
    assert "09:00" in page


def test_an_agenda_item_outside_the_events_hours_is_refused(organiser_client):
    create_event(organiser_client)
    event = only_event()
    response = post_form(
        organiser_client,
        f"/staff/events/{event.id}/agenda/new",
        item_form(starts_at="2030-07-04T12:00", ends_at="2030-07-04T13:00"),
    )
    assert response.status_code == 400
    assert "within the event&#39;s hours (08:00 to 12:30)" in response.text
    assert db.session.scalar(db.select(db.func.count(AgendaItem.id))) == 0


def test_moving_the_event_so_items_fall_outside_is_refused(organiser_client, make_item):
    create_event(organiser_client)
    event = only_event()
    make_item(event, minutes_in=60)
    response = post_form(
        organiser_client,
        f"/staff/events/{event.id}/edit",
        {**EVENT_FORM, "starts_at": "2030-07-04T10:00"},
    )
    assert response.status_code == 400
    assert "would fall outside the event&#39;s new hours" in response.text
    db.session.expire_all()
    assert only_event().starts_at == datetime(2030, 7, 4, 7, 0, tzinfo=UTC)


def test_overlapping_items_are_kept_and_shown_with_a_warning(
    organiser_client, make_event, make_item
):
    event = make_event()
    make_item(event, minutes_in=0, length=45, title="First")
    make_item(event, minutes_in=30, length=30, title="Second")
    make_item(event, minutes_in=90, length=30, title="Apart")
    page = organiser_client.get(f"/staff/events/{event.id}").text
    assert "2 agenda items overlap" in page
    assert page.count("Overlaps</strong>") == 2


def test_move_swaps_two_items_within_their_slot(organiser_client, make_event, make_item):
    event = make_event()
    first = make_item(event, minutes_in=0, length=30, title="Welcome")
    second = make_item(event, minutes_in=40, length=60, title="Keynote")
    third = make_item(event, minutes_in=120, length=30, title="Close")
    response = post_form(
        organiser_client,
        f"/staff/events/{event.id}/agenda/{second.id}/earlier",
        {},
        token_from=f"/staff/events/{event.id}",
    )
    assert response.status_code == 302
    db.session.expire_all()
    reloaded = db.session.get(Event, event.id)
    assert [i.title for i in reloaded.agenda_items] == ["Keynote", "Welcome", "Close"]
    keynote, welcome, close = reloaded.agenda_items
    assert keynote.starts_at == event.starts_at and keynote.ends_at == event.starts_at + timedelta(
        minutes=60
    )
    assert welcome.starts_at == keynote.ends_at + timedelta(minutes=10)  # the gap is kept
    assert welcome.ends_at == event.starts_at + timedelta(minutes=100)
    assert close.starts_at == third.starts_at
    assert first.id == welcome.id


def test_edit_and_delete_an_agenda_item(organiser_client, make_event, make_item):
    event = make_event()
    item_id = make_item(event).id
    path = f"/staff/events/{event.id}/agenda/{item_id}"
    start = event.local_start.strftime("%Y-%m-%dT%H:%M")
    end = (event.local_start + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M")
    response = post_form(
        organiser_client,
        path,
        item_form(title="Renamed", kind="panel", starts_at=start, ends_at=end),
    )
    assert response.status_code == 302
    assert db.session.get(AgendaItem, item_id).title == "Renamed"
    post_form(organiser_client, f"{path}/delete", {}, token_from=f"/staff/events/{event.id}")
    assert db.session.scalar(db.select(AgendaItem).where(AgendaItem.id == item_id)) is None


def test_speakers_are_reused_and_one_in_use_cannot_be_deleted(
    organiser_client, make_event, make_item
):
    response = post_form(
        organiser_client,
        "/staff/speakers/new",
        {
            "name": "Peter Smits",
            "job_title": "Managing Director",
            "organisation": "Ashbourne Insurance",
            "email": "Peter@Example.com",
            "bio": "Insurance for *cyber* risk.",
        },
    )
    assert response.status_code == 302
    speaker = db.session.scalars(db.select(Speaker)).one()
    assert speaker.email == "peter@example.com"
    make_item(make_event(), speakers=[speaker])
    make_item(make_event(), speakers=[speaker])
    listing = organiser_client.get("/staff/speakers/").text
    assert "Ashbourne Insurance" in listing
    refused = post_form(
        organiser_client,
        f"/staff/speakers/{speaker.id}/delete",
        {},
        token_from="/staff/speakers/",
        follow_redirects=True,
    )
    assert "speaks on 2 agenda item(s)" in refused.text
    assert db.session.get(Speaker, speaker.id) is not None


def test_the_speakers_private_email_never_reaches_the_public_page(
    client, make_event, make_item, make_speaker
):
    event = make_event()
    make_item(event, speakers=[make_speaker(email="private@example.com", bio="Bio here")])
    page = client.get(f"/events/{event.slug}").text
    assert "Bio here" in page and "private@example.com" not in page


def test_the_event_page_query_count_does_not_grow_with_the_agenda(
    client, make_event, make_item, make_speaker
):
    small = make_event()
    make_item(small, speakers=[make_speaker()])
    large = make_event(ends_at=datetime.now(UTC) + timedelta(days=20))
    speakers = [make_speaker(f"Speaker {n}", f"Org {n}") for n in range(30)]
    for n in range(30):
        make_item(
            large, minutes_in=n * 10, length=10, title=f"Item {n}", speakers=speakers[n : n + 2]
        )
    with count_queries() as one:
        assert client.get(f"/events/{small.slug}").status_code == 200
    with count_queries() as thirty:
        response = client.get(f"/events/{large.slug}")
    assert response.text.count('class="agenda-item') == 30
    assert len(thirty) == len(one)


def test_staff_event_list_filters_and_paginates(organiser_client, make_event):
    for n in range(27):
        make_event(title=f"Seminar number {n:02d}", status=EventStatus.draft)
    make_event(title="Published one")
    first = organiser_client.get("/staff/events/?show=draft")
    assert first.text.count("Seminar number") == 25 and "Published one" not in first.text
    second = organiser_client.get("/staff/events/?show=draft&page=2")
    assert second.text.count("Seminar number") == 2
    assert organiser_client.get("/staff/events/?show=nonsense").status_code == 200


def test_the_home_page_shows_a_page_of_events_in_the_same_number_of_queries(client, make_event):
    """Issue 12: the home page's cost does not grow with the calendar (a page of 12 at a time)."""
    from chamber.events.views import UPCOMING_PER_PAGE
    from tests.factories import at
    from tests.support import count_queries

    make_event(title="Only one", starts_at=at(3))
    with count_queries() as one:
        assert "Only one" in client.get("/?page=1").text  # a fresh address: rendered, not kept
    for n in range(UPCOMING_PER_PAGE * 2 + 1):
        make_event(title=f"Seminar number {n:02d}", starts_at=at(10 + n))
    with count_queries() as many:
        first = client.get("/?page=1&fresh").text
    assert len(many) == len(one)
    assert first.count('class="card"') == UPCOMING_PER_PAGE
    assert "Only one" in first and "Seminar number 10" in first
    assert "Seminar number 11" not in first  # the 13th event is on page 2
    second = client.get("/?page=2").text
    assert "Seminar number 11" in second and "Only one" not in second
    third = client.get("/?page=3").text
    assert "Seminar number 24" in third
    for bad in ("0", "-1", "abc", "99999999999999999999", "1%00"):
        assert client.get(f"/?page={bad}").status_code == 200
    assert "no such page" in client.get("/?page=50").text
