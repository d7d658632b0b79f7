"""Calendar entries and "add to calendar" links for events and agenda items.

Turns events into the plain `CalendarEntry` values the pure builders in `ics.py` take. Only public
fields are used: never a speaker's email or a delegate's private link.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import current_app

from chamber.calendar.ics import CalendarEntry
from chamber.core.times import zone
from chamber.core.urls import external_url
from chamber.events.models import AgendaItem, Event, EventStatus
from chamber.events.places import address_lines, one_line
from chamber.events.services import agenda_with_speakers


def event_url(event: Event) -> str:
    return external_url("events.show", slug=event.slug)


def _organizer() -> tuple[str, str]:
    """(name, address) of the chamber, from MAIL_FROM ("Name <address>" or a bare address)."""
    sender = current_app.config["MAIL_FROM"]
    name, _, address = sender.rpartition("<")
    address = address.rstrip(">").strip() or sender
    return name.strip().strip('"') or current_app.config["CHAMBER_NAME"], address


def uid_domain() -> str:
    return _organizer()[1].rpartition("@")[2] or "chamber"


def location(event: Event) -> str:
    return event.location_text


def _location(venue_name: str, street: str, town: str, postcode: str, country: str) -> str:
    """`Event.location_text` from a feed row: the venue and its full address on one line."""
    return one_line(venue_name, address_lines(street, town, postcode, country))


def _speaker(name: str, organisation: str) -> str:
    return f"{name} ({organisation})" if organisation else name


def speaker_line(item: AgendaItem) -> str:
    return ", ".join(_speaker(s.name, s.organisation) for s in item.speakers)


def description(event: Event) -> str:
    """Summary, the agenda in the event's local time with speakers, and the event's page."""
    agenda = [
        AgendaLine(item.starts_at, item.ends_at, item.title, speaker_line(item))
        for item in agenda_with_speakers(event)
    ]
    return _description(event.summary, event.timezone, agenda, event_url(event))


class AgendaLine(NamedTuple):
    """One line of an event's agenda in its entry's description: UTC times, speakers joined."""

    starts_at: datetime
    ends_at: datetime
    title: str
    speakers: str


def _description(summary: str, timezone: str, agenda: Sequence[AgendaLine], url: str) -> str:
    parts = [summary.strip()] if summary.strip() else []
    if agenda:
        tz = zone(timezone)
        lines = [f"Agenda (times in {timezone}):"]
        for item in agenda:
            start, end = item.starts_at.astimezone(tz), item.ends_at.astimezone(tz)
            line = f"{start:%H:%M}–{end:%H:%M} {item.title}"
            lines.append(f"{line} – {item.speakers}" if item.speakers else line)
        parts.append("\n".join(lines))
    parts.append(url)
    return "\n\n".join(parts)


def calendar_entry(event: Event) -> CalendarEntry:
    """The event's entry; its UID stays the same for the event's whole life."""
    organizer_name, organizer_email = _organizer()
    return CalendarEntry(
        uid=f"event-{event.id}@{uid_domain()}",
        sequence=event.sequence,
        summary=event.title,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        timezone=event.timezone,
        location=location(event),
        description=description(event),
        url=event_url(event),
        organizer_name=organizer_name,
        organizer_email=organizer_email,
        cancelled=event.is_cancelled,
        created_at=event.created_at,
        last_modified=event.updated_at,
    )


def feed_entries(events: Iterable, items: Iterable, speakers: Iterable) -> list[CalendarEntry]:
    """The entries `calendar_entry` gives, for many events at once, from plain rows.

    For the feed, where loading a thousand events with their agendas as ORM objects costs more
    than building the file. `events` are rows with the `Event` columns used below, `items` rows of
    (event_id, id, starts_at, ends_at, title) in agenda order, `speakers` rows of
    (agenda_item_id, name, organisation) in each item's speaker order.
    """
    speakers_of: dict[int, list[str]] = defaultdict(list)
    for item_id, name, organisation in speakers:
        speakers_of[item_id].append(_speaker(name, organisation))
    agenda_of: dict[int, list[AgendaLine]] = defaultdict(list)
    for event_id, item_id, starts_at, ends_at, title in items:
        line = AgendaLine(starts_at, ends_at, title, ", ".join(speakers_of.get(item_id, ())))
        agenda_of[event_id].append(line)
    organizer_name, organizer_email = _organizer()
    domain = organizer_email.rpartition("@")[2] or "chamber"
    result = []
    for event in events:
        url = external_url("events.show", slug=event.slug)
        result.append(
            CalendarEntry(
                uid=f"event-{event.id}@{domain}",
                sequence=event.sequence,
                summary=event.title,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                timezone=event.timezone,
                location=_location(
                    event.venue_name,
                    event.venue_address,
                    event.venue_town,
                    event.venue_postcode,
                    event.venue_country,
                ),
                description=_description(
                    event.summary, event.timezone, agenda_of.get(event.id, ()), url
                ),
                url=url,
                organizer_name=organizer_name,
                organizer_email=organizer_email,
                cancelled=event.status == EventStatus.cancelled,
                created_at=event.created_at,
                last_modified=event.updated_at,
            )
        )
    return result


def delegate_entry(event: Event, name: str, email: str) -> CalendarEntry:
    """The event's entry as emailed to one delegate: the same UID, with them as its attendee."""
    return replace(calendar_entry(event), attendee_name=name, attendee_email=email)


def item_entry(item: AgendaItem) -> CalendarEntry:
    """One agenda item as its own entry (it shares the event's SEQUENCE and status)."""
    event = item.event
    organizer_name, organizer_email = _organizer()
    speakers = speaker_line(item)
    text = [f"{event.title}"]
    if speakers:
        text.append(f"Speakers: {speakers}")
    if item.description.strip():
        text.append(item.description.strip())
    url = external_url("events.show", slug=event.slug, _anchor=f"item-{item.id}")
    text.append(url)
    return CalendarEntry(
        uid=f"item-{item.id}@{uid_domain()}",
        sequence=event.sequence,
        summary=item.title,
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        timezone=event.timezone,
        location=location(event),
        description="\n\n".join(text),
        url=url,
        organizer_name=organizer_name,
        organizer_email=organizer_email,
        cancelled=event.is_cancelled,
        created_at=event.created_at,
        last_modified=event.updated_at,
    )


# --- links ---------------------------------------------------------------------------------------


def _short_details(event: Event) -> str:
    summary = event.summary.strip()
    return f"{summary}\n\n{event_url(event)}" if summary else event_url(event)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def google_link(event: Event) -> str:
    dates = f"{_utc(event.starts_at):%Y%m%dT%H%M%SZ}/{_utc(event.ends_at):%Y%m%dT%H%M%SZ}"
    query = urlencode({
        "action": "TEMPLATE",
        "text": event.title,
        "dates": dates,
        "ctz": event.timezone,
        "details": _short_details(event),
        "location": location(event),
    })  # fmt: skip
    return f"https://calendar.google.com/calendar/render?{query}"


def outlook_link(event: Event) -> str:
    query = urlencode({
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": event.title,
        "startdt": f"{_utc(event.starts_at):%Y-%m-%dT%H:%M:%SZ}",
        "enddt": f"{_utc(event.ends_at):%Y-%m-%dT%H:%M:%SZ}",
        "body": _short_details(event),
        "location": location(event),
    })  # fmt: skip
    return f"https://outlook.live.com/calendar/0/deeplink/compose?{query}"


def webcal_url() -> str:
    """The feed as a `webcal://` address, which calendar apps offer to subscribe to."""
    return urlunsplit(urlsplit(external_url("calendar.feed"))._replace(scheme="webcal"))
