"""Public `.ics` files: one event, its agenda items, and the feed of published events."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, abort, current_app, request

from chamber.calendar import entries, queries
from chamber.calendar.ics import entries_to_ical, entry_to_ical
from chamber.core.times import utcnow
from chamber.events import services
from chamber.events.models import Event

bp = Blueprint("calendar", __name__)

CALENDAR_TYPE = "text/calendar; charset=utf-8"


@bp.app_context_processor
def calendar_helpers() -> dict:
    return {
        "google_calendar_link": entries.google_link,
        "outlook_calendar_link": entries.outlook_link,
        "calendar_feed_webcal": entries.webcal_url,
    }


def ics_response(content: bytes, filename: str) -> Response:
    """A calendar file to download (the other domains' own .ics files use it too)."""
    response = Response(content, content_type=CALENDAR_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _public_event(slug: str) -> Event:
    """A published or cancelled event with its agenda, else 404 (drafts are never served)."""
    if "\x00" in slug:  # PostgreSQL refuses NUL in a query (a 500)
        abort(404)
    event = services.event_with_agenda(slug)
    if event is None or event.is_draft:
        abort(404)
    return event


@bp.get("/events/<slug>.ics")
def event_ics(slug: str):
    event = _public_event(slug)
    content = entry_to_ical(entries.calendar_entry(event), method="PUBLISH", stamp=utcnow())
    return ics_response(content, f"{event.slug}.ics")


@bp.get("/events/<slug>/agenda.ics")
def agenda_ics(slug: str):
    event = _public_event(slug)
    content = entries_to_ical(
        [entries.item_entry(item) for item in event.agenda_items],
        method="PUBLISH",
        stamp=utcnow(),
        name=event.title,
    )
    return ics_response(content, f"{event.slug}-agenda.ics")


@bp.get("/events/<slug>/agenda/<int:item_id>.ics")
def item_ics(slug: str, item_id: int):
    event = _public_event(slug)
    item = next((i for i in event.agenda_items if i.id == item_id), None)
    if item is None:
        abort(404)
    content = entry_to_ical(entries.item_entry(item), method="PUBLISH", stamp=utcnow())
    return ics_response(content, f"{event.slug}-item-{item.id}.ics")


@bp.get("/calendar.ics")
def feed():
    """Published and cancelled events, upcoming and the last 90 days. Conditional GETs get a 304."""
    now = utcnow()
    versions = queries.feed_versions(now)
    digest = hashlib.sha256(
        "|".join(f"{i}:{s}:{u.isoformat()}" for i, s, u in versions).encode()
    ).hexdigest()[:32]
    response = Response(content_type=CALENDAR_TYPE)
    response.set_etag(digest)
    if versions:
        response.last_modified = max(u for _, _, u in versions)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.make_conditional(request)
    if response.status_code == 304:
        return response
    rows = queries.feed_rows(now)
    response.set_data(
        entries_to_ical(
            entries.feed_entries(rows.events, rows.items, rows.speakers),
            method="PUBLISH",
            stamp=now,
            name=current_app.config["CHAMBER_NAME"],
        )
    )
    response.headers["Content-Disposition"] = 'inline; filename="calendar.ics"'
    return response
