"""The JSON-LD on event pages meets Google's Event structured data requirements (required and
recommended properties, right types, ISO 8601 dates with their offset) for a normal, a full, a
moved, a cancelled and a speakerless event."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from chamber.core.times import utcnow
from chamber.events import services
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from tests.factories import acting_staff, at, make_booking

SCRIPT = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)
SCHEMA = "https://schema.org/"
STATUSES = {f"{SCHEMA}{s}" for s in ("EventScheduled", "EventCancelled", "EventRescheduled",
                                     "EventPostponed", "EventMovedOnline")}  # fmt: skip
AVAILABILITY = {f"{SCHEMA}{s}" for s in ("InStock", "SoldOut", "PreOrder", "OutOfStock")}
MODES = {f"{SCHEMA}{m}EventAttendanceMode" for m in ("Offline", "Online", "Mixed")}


def iso_with_offset(value: object) -> datetime:
    assert isinstance(value, str) and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?[+-]\d\d:\d\d", value
    ), value
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() is not None
    return moment


def google_event_problems(data: dict) -> list[str]:
    """What Google's Event rich result checks would flag (developers.google.com/search/docs/
    appearance/structured-data/event): required name, startDate, location (a Place with a
    PostalAddress); recommended description, endDate, eventAttendanceMode, eventStatus, offers,
    organizer, performer (when given), previousStartDate (when rescheduled)."""
    problems: list[str] = []
    if data.get("@context") != "https://schema.org" or data.get("@type") != "Event":
        problems.append("not a schema.org Event")
    for key in ("name", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append(f"{key} missing")
    start, end = iso_with_offset(data.get("startDate")), iso_with_offset(data.get("endDate"))
    if end <= start:
        problems.append("endDate not after startDate")
    place = data.get("location") or {}
    address = place.get("address") or {}
    if place.get("@type") != "Place" or not place.get("name"):
        problems.append("location is not a named Place")
    if address.get("@type") != "PostalAddress":
        problems.append("address is not a PostalAddress")
    for key in ("streetAddress", "addressLocality", "postalCode", "addressCountry"):
        if not isinstance(address.get(key), str) or not address[key]:
            problems.append(f"address.{key} missing")
    if not re.fullmatch(r"[A-Z]{2}", address.get("addressCountry", "")):
        problems.append("addressCountry is not an ISO 3166 code")
    if data.get("eventStatus") not in STATUSES:
        problems.append("eventStatus")
    if data.get("eventAttendanceMode") not in MODES:
        problems.append("eventAttendanceMode")
    offer = data.get("offers") or {}
    if offer.get("@type") != "Offer" or not isinstance(offer.get("price"), int | float | str):
        problems.append("offers.price")
    if not re.fullmatch(r"[A-Z]{3}", offer.get("priceCurrency", "")):
        problems.append("offers.priceCurrency")
    if offer.get("availability") not in AVAILABILITY:
        problems.append("offers.availability")
    if not str(offer.get("url", "")).startswith(("http://", "https://")):
        problems.append("offers.url")
    iso_with_offset(offer.get("validFrom"))
    organiser = data.get("organizer") or {}
    if organiser.get("@type") != "Organization" or not organiser.get("name"):
        problems.append("organizer")
    performers = data.get("performer", [{"@type": "Person", "name": "left out"}])
    if not performers or not all(p.get("@type") == "Person" and p.get("name") for p in performers):
        problems.append("performer empty or nameless")
    rescheduled = data.get("eventStatus") == f"{SCHEMA}EventRescheduled"
    if rescheduled and iso_with_offset(data.get("previousStartDate")) == start:
        problems.append("previousStartDate is the new start")
    return problems


def jsonld_of(client, event: Event) -> dict:
    page = client.get(f"/events/{event.slug}")
    assert page.status_code == 200
    (found,) = SCRIPT.findall(page.text)
    return json.loads(found)


@pytest.fixture
def event(make_event, make_item, make_speaker) -> Event:
    made = make_event(
        slug="cyber",
        capacity=2,
        venue_address="Holiday Inn, St George's Way",
        venue_town="Stevenage",
        venue_postcode="SG1 1HS",
    )
    make_item(made, title="Keynote", speakers=[make_speaker(name="Tony Richardson")])
    return made


def test_a_normal_event(client, event):
    data = jsonld_of(client, event)
    assert google_event_problems(data) == []
    assert data["eventStatus"] == f"{SCHEMA}EventScheduled" and "previousStartDate" not in data
    assert data["location"]["address"] == {
        "@type": "PostalAddress",
        "streetAddress": "Holiday Inn, St George's Way",
        "addressLocality": "Stevenage",
        "postalCode": "SG1 1HS",
        "addressCountry": "GB",
    }
    assert data["offers"]["price"] == 0 and data["offers"]["priceCurrency"] == "GBP"
    assert data["offers"]["availability"] == f"{SCHEMA}InStock"
    assert data["offers"]["url"].endswith("/events/cyber/register")
    assert [p["name"] for p in data["performer"]] == ["Tony Richardson"]
    assert data["startDate"].endswith("+01:00") or data["startDate"].endswith("+00:00")


def test_a_full_event_is_sold_out_and_a_closed_one_out_of_stock(client, event):
    make_booking(event, "a@example.com", "b@example.com")
    assert jsonld_of(client, event)["offers"]["availability"] == f"{SCHEMA}SoldOut"
    event.registration_opens_at = utcnow() - timedelta(days=2)
    event.registration_closes_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    data = jsonld_of(client, event)
    assert google_event_problems(data) == []
    assert data["offers"]["availability"] == f"{SCHEMA}OutOfStock"


def test_an_event_before_booking_opens_is_a_pre_order_valid_from_the_opening(client, event):
    event.registration_opens_at = at(3, hour=9)
    db.session.commit()
    data = jsonld_of(client, event)
    assert google_event_problems(data) == []
    assert data["offers"]["availability"] == f"{SCHEMA}PreOrder"
    assert datetime.fromisoformat(data["offers"]["validFrom"]) == at(3, hour=9)


def test_a_moved_event_is_rescheduled_with_the_start_it_was_announced_with(client, event):
    announced = event.starts_at
    later = replace(
        services.EventDetails.of(event),
        starts_at=announced + timedelta(days=7),
        ends_at=event.ends_at + timedelta(days=7),
    )
    services.save_event(event, later, by=acting_staff(), move_agenda=True)
    db.session.commit()
    data = jsonld_of(client, event)
    assert google_event_problems(data) == []
    assert data["eventStatus"] == f"{SCHEMA}EventRescheduled"
    assert datetime.fromisoformat(data["previousStartDate"]) == announced
    # Moved again: still the start first announced. Moved back there: no longer rescheduled.
    again = replace(later, starts_at=later.starts_at + timedelta(days=1),
                    ends_at=later.ends_at + timedelta(days=1))  # fmt: skip
    services.save_event(event, again, by=acting_staff(), move_agenda=True)
    db.session.commit()
    assert datetime.fromisoformat(jsonld_of(client, event)["previousStartDate"]) == announced
    back = replace(later, starts_at=announced, ends_at=announced + timedelta(hours=4))
    services.save_event(event, back, by=acting_staff(), move_agenda=True)
    db.session.commit()
    data = jsonld_of(client, event)
    assert data["eventStatus"] == f"{SCHEMA}EventScheduled" and "previousStartDate" not in data


def test_moving_a_draft_is_not_a_rescheduling(make_event):
    draft = make_event(status=EventStatus.draft)
    moved = replace(
        services.EventDetails.of(draft),
        starts_at=draft.starts_at + timedelta(hours=1),
        ends_at=draft.ends_at + timedelta(hours=1),
    )
    services.save_event(draft, moved, by=acting_staff())
    assert draft.previous_starts_at is None and not draft.is_rescheduled


def test_a_cancelled_event(client, event):
    services.set_status(event, EventStatus.cancelled, by=acting_staff())
    db.session.commit()
    data = jsonld_of(client, event)
    assert google_event_problems(data) == []
    assert data["eventStatus"] == f"{SCHEMA}EventCancelled"
    assert data["offers"]["availability"] == f"{SCHEMA}OutOfStock"


def test_an_event_without_speakers_has_no_performer(client, make_event):
    bare = make_event(venue_address="1 High Street", venue_town="Hitchin", venue_postcode="SG5 1AA")
    data = jsonld_of(client, bare)
    assert google_event_problems(data) == []
    assert "performer" not in data


def test_a_venue_abroad_names_its_country_on_the_page_and_in_the_data(client, make_event):
    abroad = make_event(
        venue_address="Rue de la Loi 1", venue_town="Bruxelles", venue_postcode="1000",
        venue_country="BE",
    )  # fmt: skip
    data = jsonld_of(client, abroad)
    assert data["location"]["address"]["addressCountry"] == "BE"
    page = client.get(f"/events/{abroad.slug}").text
    assert "Rue de la Loi 1<br>Bruxelles 1000<br>Belgium" in page


def test_the_checker_catches_what_google_would_flag():
    assert "address.postalCode missing" in google_event_problems(
        {
            "@context": "https://schema.org",
            "@type": "Event",
            "name": "x",
            "description": "y",
            "startDate": "2030-01-01T09:00:00+00:00",
            "endDate": "2030-01-01T10:00:00+00:00",
            "location": {"@type": "Place", "name": "v", "address": {"@type": "PostalAddress"}},
            "offers": {"validFrom": "2030-01-01T09:00:00+00:00"},
        }
    )
    with pytest.raises(AssertionError):
        iso_with_offset("2030-01-01T09:00:00")  # no offset
