"""Calendar entries and "add to calendar" links for events and agenda items.

Turns events into the plain `CalendarEntry` values the pure builders in `ics.py` take. Only public
fields are used: never a speaker's email or a delegate's private link.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from flask import current_app

from chamber.calendar.ics import CalendarEntry
from chamber.events.models import AgendaItem, Event, Speaker


def event_url(event: Event) -> str:
    return f"{current_app.config['BASE_URL']}/events/{event.slug}"


def _organizer() -> tuple[str, str]:
    """(name, address) of the chamber, from MAIL_FROM ("Name <address>" or a bare address)."""
    sender = current_app.config["MAIL_FROM"]
    name, _, address = sender.rpartition("<")
    address = address.rstrip(">").strip() or sender
    return name.strip().strip('"') or current_app.config["CHAMBER_NAME"], address


def uid_domain() -> str:
    return _organizer()[1].rpartition("@")[2] or "chamber"


def location(event: Event) -> str:
    return ", ".join(p for p in (event.venue_name, " ".join(event.venue_address.split())) if p)


def _speaker(speaker: Speaker) -> str:
    return f"{speaker.name} ({speaker.organisation})" if speaker.organisation else speaker.name


def speaker_line(item: AgendaItem) -> str:
    return ", ".join(_speaker(s) for s in item.speakers)


def description(event: Event) -> str:
    """Summary, the agenda in the event's local time with speakers, and the event's page."""
    parts = [event.summary.strip()] if event.summary.strip() else []
    if event.agenda_items:
        lines = [f"Agenda (times in {event.timezone}):"]
        for item in event.agenda_items:
            line = f"{item.local_start:%H:%M}–{item.local_end:%H:%M} {item.title}"
            speakers = speaker_line(item)
            lines.append(f"{line} – {speakers}" if speakers else line)
        parts.append("\n".join(lines))
    parts.append(event_url(event))
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
    url = f"{event_url(event)}#item-{item.id}"
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
    base = urlsplit(current_app.config["BASE_URL"])
    return f"webcal://{base.netloc}{base.path.rstrip('/')}/calendar.ics"
