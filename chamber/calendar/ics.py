"""iCalendar files, built by pure functions from plain values (RFC 5545)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from icalendar import Calendar, vCalAddress, vText
from icalendar import Event as VEvent

from chamber.calendar import zones
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


def ics_filename(title: str) -> str:
    """The file name an event's calendar file is offered under: its title's words (letters and
    digits of any script, lower case) joined by hyphens, e.g. `cybercrime-seminar.ics`."""
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", title).lower())
    name = "-".join(words)[:60].strip("-")
    return f"{name or 'event'}.ics"


def entry_to_ical(entry: CalendarEntry, *, method: str = "PUBLISH", stamp: datetime) -> bytes:
    """One VEVENT in its own zone (with that zone's VTIMEZONE), ready to attach or serve: the
    bytes of `entries_to_ical([entry], ...)`.

    What comes from the event alone is serialised once a process for each entry and method
    (`_around_stamp_and_attendee`), so the invitations to one event, which differ only in their
    stamp and attendee, do not each run icalendar over the whole entry (a booking's most costly
    calendar work). Only the DTSTAMP and ATTENDEE lines are written for each."""
    if method not in METHODS:
        raise ValueError(f"unknown iTIP method {method!r}")
    shared = replace(entry, attendee_name="", attendee_email="")
    moments = tuple(
        moment.isoformat()
        for moment in (entry.starts_at, entry.ends_at, entry.created_at, entry.last_modified)
    )
    head, middle, tail = _around_stamp_and_attendee(shared, moments, method)
    own = VEvent()
    own.add("dtstamp", stamp)
    if entry.attendee_email:
        own.add("attendee", _attendee(entry))
    stamp_line, *attendee_line = _serialise(own).splitlines(keepends=True)[1:-1]
    return b"".join([head, stamp_line, middle, *attendee_line, tail])


@lru_cache(maxsize=128)
def _around_stamp_and_attendee(
    entry: CalendarEntry, _moments: tuple[str, ...], method: str
) -> tuple[bytes, bytes, bytes]:
    """`entries_to_ical([entry])` in three parts: before its DTSTAMP line, between that line and
    its ATTENDEE line, and after that. It is written with stand-ins for both, wherever icalendar
    puts them, and they are cut out. `_moments` keeps two entries whose times are equal instants
    in different zones apart (a `datetime` compares and hashes by its instant)."""
    stand_in = replace(entry, attendee_name="A", attendee_email="a@a")
    whole = entries_to_ical([stand_in], method=method, stamp=_STAND_IN_STAMP)
    stamp = _line_at(whole, b"DTSTAMP:")
    attendee = _line_at(whole, b"ATTENDEE;")
    assert stamp.stop <= attendee.start, "icalendar wrote ATTENDEE before DTSTAMP"
    return whole[: stamp.start], whole[stamp.stop : attendee.start], whole[attendee.stop :]


def _line_at(ical: bytes, start: bytes) -> slice:
    """Where the only content line that starts with `start` lies, folded parts and CRLF included
    (a folded line's next part starts with a space, so no part of another line matches)."""
    begin = ical.index(b"\r\n" + start) + 2
    end = ical.index(b"\r\n", begin)
    while ical.startswith(b"\r\n ", end):
        end = ical.index(b"\r\n", end + 3)
    return slice(begin, end + 2)


_STAND_IN_STAMP = datetime(2000, 1, 1, tzinfo=UTC)


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

    Every component is built and serialised by icalendar, one at a time, and the file is their
    concatenation in icalendar's own order (the calendar's properties, the VTIMEZONEs, sorted by
    TZID, then the VEVENTs): the same bytes as `Calendar.to_ical()` on the whole calendar, but a
    feed of a thousand events never holds a thousand components at once, and each zone's VTIMEZONE
    is computed once per process.
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
    head = _serialise(calendar)
    if not entries:
        return head
    vevents: list[bytes] = []
    tzids: set[str] = set()
    for entry in entries:
        vevent = _vevent(entry, stamp, cancel=method == "CANCEL")
        tzids.update(_tzids(vevent))
        vevents.append(_serialise(vevent))
    timezones = [vtimezone(tzid) for tzid in sorted(tzids - {"UTC"})]
    assert head.endswith(_END_VCALENDAR)
    return b"".join([head[: -len(_END_VCALENDAR)], *timezones, *vevents, _END_VCALENDAR])


_END_VCALENDAR = b"END:VCALENDAR\r\n"


def _tzids(component) -> set[str]:
    """The TZID parameters the component's properties use (as `Calendar.get_used_tzids`)."""
    found = set()
    for values in component.values():
        for value in values if isinstance(values, list) else (values,):
            params = getattr(value, "params", None)
            if params is not None and params.get("TZID"):
                found.add(params["TZID"])
    return found


@lru_cache(maxsize=64)
def vtimezone(tzid: str) -> bytes:
    """The zone's one VTIMEZONE (see `zones`), serialised: the same bytes in every file, feed and
    invitation; b"" for a zone zoneinfo doesn't know.

    Pure, and a fifth of a second to compute, so each process keeps the few it has built.
    """
    if not zones.known_zone(tzid):
        return b""
    return _serialise(zones.vtimezone_component(tzid))


def _serialise(component) -> bytes:
    """`component.to_ical()`, with the same lines folded the same way, only faster."""
    return b"".join(_fold(line) + b"\r\n" for line in component.content_lines() if line)


_FOLD_LIMIT = 75  # octets, as icalendar folds: each folded part is at most 74


def _fold(line: str) -> bytes:
    """A content line folded exactly as icalendar's own folding does (RFC 5545 section 3.1).

    Each part is as long as it can be without reaching 75 octets or splitting a UTF-8 character,
    except that a part never ends with the backslash of a TEXT escape or the caret of an RFC 6868
    parameter escape (that character starts the next part). icalendar does this a character at a
    time in Python; this steps through the UTF-8 bytes a part at a time.
    """
    data = line.encode("utf-8")
    if len(data) < _FOLD_LIMIT:
        return data
    parts = []
    start, end_of_data = 0, len(data)
    while end_of_data - start >= _FOLD_LIMIT:
        end = start + _FOLD_LIMIT - 1
        while data[end] & 0xC0 == 0x80:  # inside a character: end before it
            end -= 1
        if data[end - 1] in b"\\^" and end - 1 > start:
            end -= 1
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return b"\r\n ".join(parts)


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
        event.add("attendee", _attendee(entry))
    event.add("status", "CANCELLED" if entry.cancelled or cancel else "CONFIRMED")
    event.add("created", entry.created_at)
    event.add("last-modified", entry.last_modified)
    return event


def _attendee(entry: CalendarEntry) -> vCalAddress:
    attendee = vCalAddress(f"mailto:{entry.attendee_email}")
    attendee.params["cn"] = vText(entry.attendee_name or entry.attendee_email)
    attendee.params["role"] = "REQ-PARTICIPANT"
    # They booked, so they have accepted; no reply is asked for (replies would go unread).
    attendee.params["partstat"] = "ACCEPTED"
    attendee.params["rsvp"] = "FALSE"
    return attendee


def _in_zone(moment: datetime, zone_name: str) -> datetime:
    """The moment in its zone, or in UTC when its wall-clock time happens twice.

    When the clocks go back, 01:30 happens twice. RFC 5545 reads a TZID time as the first, but
    parsers differ (pytz-based ones take the second), so such a moment is written in UTC.
    """
    local = moment.astimezone(zone(zone_name))
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        return moment.astimezone(UTC)
    return local
