"""schema.org `Event` JSON-LD for event pages, so search engines can show them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import current_app
from markupsafe import Markup

from chamber.core.times import utcnow
from chamber.core.urls import external_url
from chamber.events.models import Event
from chamber.registration.services import registration_problem, seats_left

SCHEMA = "https://schema.org"


def _iso(event: Event, moment: datetime) -> str:
    """ISO 8601 in the event's zone, with its offset, to the second."""
    return event.local(moment).replace(microsecond=0).isoformat()


def _address(event: Event) -> dict[str, Any]:
    """The venue's address as a schema.org `PostalAddress`, without the parts it lacks."""
    address: dict[str, Any] = {"@type": "PostalAddress"}
    street = ", ".join(line.strip() for line in event.venue_address.splitlines() if line.strip())
    parts = {
        "streetAddress": street,
        "addressLocality": event.venue_town,
        "postalCode": event.venue_postcode,
        "addressCountry": event.venue_country or current_app.config["COUNTRY"],
    }
    address.update({key: value for key, value in parts.items() if value})
    return address


def _availability(event: Event, now: datetime) -> str:
    """InStock while booking is open with seats left; SoldOut when full (new bookings join the
    waiting list); PreOrder before booking opens; OutOfStock once booking has closed."""
    if event.registration_opens_at and now < event.registration_opens_at and not event.is_cancelled:
        return "PreOrder"
    if registration_problem(event, now) is not None:
        return "OutOfStock"
    return "InStock" if seats_left(event) > 0 else "SoldOut"


def _offer(event: Event, now: datetime) -> dict[str, Any]:
    """Places are free: price 0 in the chamber's currency, booked at the registration page."""
    return {
        "@type": "Offer",
        "price": 0,
        "priceCurrency": current_app.config["CURRENCY"],
        "availability": f"{SCHEMA}/{_availability(event, now)}",
        "url": external_url("registration.register", slug=event.slug),
        "validFrom": _iso(event, event.registration_opens_at or event.created_at),
    }


def _status(event: Event) -> str:
    if event.is_cancelled:
        return "EventCancelled"
    return "EventRescheduled" if event.is_rescheduled else "EventScheduled"


def event_jsonld(event: Event, now: datetime | None = None) -> dict[str, Any]:
    """The event as a schema.org `Event` with what Google's event results need (name, start and
    end with their offset, a Place with a postal address, status, offers, organiser): public
    fields only (never a speaker's email). A moved event is `EventRescheduled` with the start it
    was announced with; `performer` lists the speakers and is left out when there are none."""
    now = now or utcnow()
    organiser = event.host or current_app.config["CHAMBER_NAME"]
    performers: dict[int, dict[str, Any]] = {}
    for item in event.agenda_items:
        for speaker in item.speakers:
            person: dict[str, Any] = {"@type": "Person", "name": speaker.name}
            if speaker.job_title:
                person["jobTitle"] = speaker.job_title
            if speaker.organisation:
                person["affiliation"] = {"@type": "Organization", "name": speaker.organisation}
            performers.setdefault(speaker.id, person)
    data: dict[str, Any] = {
        "@context": SCHEMA,
        "@type": "Event",
        "name": event.title,
        "description": event.summary or event.title,
        "startDate": _iso(event, event.starts_at),
        "endDate": _iso(event, event.ends_at),
        "eventStatus": f"{SCHEMA}/{_status(event)}",
        "eventAttendanceMode": f"{SCHEMA}/OfflineEventAttendanceMode",
        "location": {"@type": "Place", "name": event.venue_name, "address": _address(event)},
        "offers": _offer(event, now),
        "organizer": {
            "@type": "Organization",
            "name": organiser,
            "url": current_app.config["BASE_URL"],
        },
        "url": external_url("events.show", slug=event.slug),
    }
    if event.is_rescheduled and event.previous_starts_at is not None:
        data["previousStartDate"] = _iso(event, event.previous_starts_at)
    if performers:
        data["performer"] = list(performers.values())
    return data


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no `<`, `>` or `&` survives to close it or open a comment."""
    return (
        json.dumps(data, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def event_jsonld_tag(event: Event) -> Markup:
    """`<script type="application/ld+json">` for an event page's head (a template global)."""
    return Markup(f'<script type="application/ld+json">{script_json(event_jsonld(event))}</script>')  # noqa: S704
