"""schema.org `Event` JSON-LD for event pages, so search engines can show them."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app
from markupsafe import Markup

from chamber.core.urls import external_url
from chamber.events.models import Event

SCHEMA = "https://schema.org"


def event_jsonld(event: Event) -> dict[str, Any]:
    """The event as a schema.org `Event`: public fields only (never a speaker's email)."""
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
    status = "EventCancelled" if event.is_cancelled else "EventScheduled"
    data: dict[str, Any] = {
        "@context": SCHEMA,
        "@type": "Event",
        "name": event.title,
        "description": event.summary,
        "startDate": event.local_start.isoformat(),
        "endDate": event.local_end.isoformat(),
        "eventStatus": f"{SCHEMA}/{status}",
        "eventAttendanceMode": f"{SCHEMA}/OfflineEventAttendanceMode",
        "location": {
            "@type": "Place",
            "name": event.venue_name,
            "address": {"@type": "PostalAddress", "streetAddress": event.venue_address},
        },
        "organizer": {
            "@type": "Organization",
            "name": organiser,
            "url": current_app.config["BASE_URL"],
        },
        "performer": list(performers.values()),
        "url": external_url("events.show", slug=event.slug),
    }
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
