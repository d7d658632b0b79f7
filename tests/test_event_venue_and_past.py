"""Staff give a venue's address in parts (street, town, postcode, country), and are asked before
creating or publishing an event that has already ended."""

from __future__ import annotations

from datetime import UTC, datetime

from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from tests.support import post_form
from tests.test_events import create_event

ADDRESS = {
    "venue_address": "St George's Way",
    "venue_town": "Stevenage",
    "venue_postcode": "sg1  1hs",
    "venue_country": "GB",
}
PAST = {"starts_at": "2016-07-04T08:00", "ends_at": "2016-07-04T12:30",
        "registration_closes_at": ""}  # fmt: skip


def events() -> list[Event]:
    return list(db.session.scalars(db.select(Event)))


def test_an_address_in_parts_is_stored_with_the_postcode_as_printed(organiser_client):
    response = create_event(organiser_client, **ADDRESS)
    assert response.status_code == 302
    (event,) = events()
    assert (event.venue_address, event.venue_town, event.venue_postcode, event.venue_country) == (
        "St George's Way", "Stevenage", "SG1 1HS", "GB"
    )  # fmt: skip
    assert event.location_text == "Holiday Inn Stevenage, St George's Way, Stevenage SG1 1HS"
    page = organiser_client.get(f"/events/{event.slug}").text
    assert (
        'Holiday Inn Stevenage<br><span class="address">St George\'s Way<br>Stevenage SG1 1HS'
        in (page.replace("&#39;", "'"))
    )


def test_the_country_defaults_to_the_chambers_own(organiser_client, app):
    page = organiser_client.get("/staff/events/new").text
    assert '<option selected value="GB">United Kingdom</option>' in page
    app.config["COUNTRY"] = "IE"
    assert (
        '<option selected value="IE">Ireland</option>'
        in organiser_client.get("/staff/events/new").text
    )


def test_a_malformed_uk_postcode_or_an_unknown_country_is_refused_and_nothing_is_saved(
    organiser_client,
):
    page = create_event(organiser_client, **{**ADDRESS, "venue_postcode": "SG1 1HS'; DROP--"})
    assert page.status_code == 400
    assert "Enter a UK postcode in the right format, like SG1 1HS." in page.text
    assert 'aria-describedby="venue_postcode-error"' in page.text
    page = create_event(organiser_client, **{**ADDRESS, "venue_country": "XX"})
    assert page.status_code == 400
    assert events() == []
    abroad = create_event(
        organiser_client, **{**ADDRESS, "venue_country": "BE", "venue_postcode": "1000"}
    )
    assert abroad.status_code == 302 and events()[0].venue_postcode == "1000"


def test_a_town_with_markup_line_breaks_or_template_syntax(organiser_client):
    page = create_event(organiser_client, **{**ADDRESS, "venue_town": "Stevenage\r\nBcc: x"})
    assert page.status_code == 400 and events() == []
    assert (
        create_event(
            organiser_client, **{**ADDRESS, "venue_town": "<i>Hitchin</i> {{ 7*7 }}"}
        ).status_code
        == 302
    )
    page = organiser_client.get(f"/events/{events()[0].slug}").text
    assert "&lt;i&gt;Hitchin&lt;/i&gt; {{ 7*7 }}" in page and "<i>Hitchin" not in page


# --- an event that has already ended ---------------------------------------------------------


def test_creating_an_event_that_has_ended_asks_first_and_saves_nothing_until_confirmed(
    organiser_client,
):
    page = create_event(organiser_client, **PAST)
    assert page.status_code == 200
    assert "This event has already ended" in page.text
    assert "It ended on Monday 4 July 2016, 12:30 (London time)" in page.text
    assert "no one can book a place" in page.text
    assert "Confirm: create the event" in page.text and "Go back and change the dates" in page.text
    assert events() == []
    confirmed = create_event(organiser_client, **PAST, confirm_past="yes")
    assert confirmed.status_code == 302
    (event,) = events()
    assert event.status == EventStatus.draft
    assert event.ends_at == datetime(2016, 7, 4, 11, 30, tzinfo=UTC)


def test_an_upcoming_event_is_created_without_the_question(organiser_client):
    assert create_event(organiser_client).status_code == 302


def test_publishing_an_event_that_has_ended_asks_first(make_event, organiser_client):
    past = make_event(status=EventStatus.draft, starts_at=datetime(2016, 7, 4, 7, tzinfo=UTC))
    path = f"/staff/events/{past.id}/publish"
    page = post_form(organiser_client, path, {}, token_from=f"/staff/events/{past.id}")
    assert page.status_code == 200
    assert "This event ended on Monday 4 July 2016, 12:00." in page.text
    assert "Publishing it will show it under past events on the public site; no one can book" in (
        page.text
    )
    db.session.expire_all()
    assert db.session.get(Event, past.id).status == EventStatus.draft
    assert "Go back, publish nothing" in page.text
    done = post_form(
        organiser_client, path, {"confirm_past": "yes"}, token_from=f"/staff/events/{past.id}"
    )
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Event, past.id).status == EventStatus.published


def test_publishing_without_a_csrf_token_changes_nothing(make_event, organiser_client):
    past = make_event(status=EventStatus.draft, starts_at=datetime(2016, 7, 4, 7, tzinfo=UTC))
    response = organiser_client.post(
        f"/staff/events/{past.id}/publish", data={"confirm_past": "yes"}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Event, past.id).status == EventStatus.draft


def test_an_upcoming_draft_is_published_at_once(make_event, organiser_client):
    draft = make_event(status=EventStatus.draft)
    path = f"/staff/events/{draft.id}/publish"
    assert (
        post_form(organiser_client, path, {}, token_from=f"/staff/events/{draft.id}").status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Event, draft.id).status == EventStatus.published
