"""iCalendar files, built by pure functions from plain values (RFC 5545)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

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
    # The delegate an invitation is for (REQUEST and CANCEL name their attendee; public files don't).
    attendee_name: str = ""
    attendee_email: str = ""


# RFC 5546 methods: PUBLISH for files anyone may download; REQUEST and CANCEL for the invitation
# emailed to one delegate, which calendar clients apply to the entry with the same UID.
METHODS = ("PUBLISH", "REQUEST", "CANCEL")


def entry_to_ical(entry: CalendarEntry, *, method: str = "PUBLISH", stamp: datetime) -> bytes:
    """One VEVENT in its own zone (with that zone's VTIMEZONE), ready to attach or serve."""
    return entries_to_ical([entry], method=method, stamp=stamp)


def entries_to_ical(
    entries: Sequence[CalendarEntry],
    *,
    method: str = "PUBLISH",
    stamp: datetime,
    name: str | None = None,
) -> bytes:
    """A calendar of VEVENTs (each in its own zone, with one VTIMEZONE per zone used).

    With METHOD:CANCEL every entry is marked STATUS:CANCELLED: the delegate's copy is withdrawn,
    whether the whole event was cancelled or only their place.
    """
    if method not in METHODS:
        raise ValueError(f"unknown iTIP method {method!r}")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
    for entry in entries:
        calendar.add_component(_vevent(entry, stamp, cancel=method == "CANCEL"))
    if entries:
        # Only the years around the events: a zone's whole history makes the file much larger.
        calendar.add_missing_timezones(
            first_date=date(min(e.starts_at.year for e in entries) - 1, 1, 1),
            last_date=date(max(e.ends_at.year for e in entries) + 2, 1, 1),
        )
    return calendar.to_ical()


def _vevent(entry: CalendarEntry, stamp: datetime, *, cancel: bool = False) -> VEvent:
    event = VEvent()
    event.add("uid", entry.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", entry.sequence)
    event.add("dtstart", _in_zone(entry.starts_at, entry.timezone))
    event.add("dtend", _in_zone(entry.ends_at, entry.timezone))
    event.add("summary", entry.summary)
    event.add("location", entry.location)
    event.add("description", entry.description)
    event.add("url", entry.url)
    organizer = vCalAddress(f"mailto:{entry.organizer_email}")
    organizer.params["cn"] = vText(entry.organizer_name)
    event.add("organizer", organizer)
    if entry.attendee_email:
        attendee = vCalAddress(f"mailto:{entry.attendee_email}")
        attendee.params["cn"] = vText(entry.attendee_name or entry.attendee_email)
        attendee.params["role"] = "REQ-PARTICIPANT"
        # They booked, so they have accepted; no reply is asked for (replies would go unread).
        attendee.params["partstat"] = "ACCEPTED"
        attendee.params["rsvp"] = "FALSE"
        event.add("attendee", attendee)
    event.add("status", "CANCELLED" if entry.cancelled or cancel else "CONFIRMED")
    event.add("created", entry.created_at)
    event.add("last-modified", entry.last_modified)
    return event


def _in_zone(moment: datetime, zone_name: str) -> datetime:
    """The moment in its zone, or in UTC when its wall-clock time happens twice.

    When the clocks go back, 01:30 happens twice. RFC 5545 reads a TZID time as the first, but
    parsers differ (pytz-based ones take the second), so such a moment is written in UTC.
    """
    local = moment.astimezone(zone(zone_name))
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        return moment.astimezone(UTC)
    return local
