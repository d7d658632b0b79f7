"""iCalendar files, built by pure functions from plain values (RFC 5545)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from icalendar import Calendar, vCalAddress, vText
from icalendar import Event as VEvent

from chamber.core.times import zone

PRODID = "-//Chamber//Business seminars//EN"


@dataclass(frozen=True)
class CalendarEntry:
    uid: str
    sequence: int
    summary: str
    starts_at: datetime  # aware, any zone
    ends_at: datetime
    timezone: str
    location: str
    description: str
    url: str
    organizer_name: str
    organizer_email: str
    cancelled: bool
    created_at: datetime
    last_modified: datetime


def entry_to_ical(entry: CalendarEntry, *, method: str = "PUBLISH", stamp: datetime) -> bytes:
    """One VEVENT in its own zone (with that zone's VTIMEZONE), ready to attach or serve."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    event = VEvent()
    event.add("uid", entry.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", entry.sequence)
    event.add("dtstart", entry.starts_at.astimezone(zone(entry.timezone)))
    event.add("dtend", entry.ends_at.astimezone(zone(entry.timezone)))
    event.add("summary", entry.summary)
    event.add("location", entry.location)
    event.add("description", entry.description)
    event.add("url", entry.url)
    organizer = vCalAddress(f"mailto:{entry.organizer_email}")
    organizer.params["cn"] = vText(entry.organizer_name)
    event.add("organizer", organizer)
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    event.add("created", entry.created_at)
    event.add("last-modified", entry.last_modified)
    calendar.add_component(event)
    # Only the years around the event: the zone's whole history makes the file five times larger.
    calendar.add_missing_timezones(
        first_date=date(entry.starts_at.year - 1, 1, 1),
        last_date=date(entry.ends_at.year + 2, 1, 1),
    )
    return calendar.to_ical()
