"""Copying an event to a new date: a draft with the same details, agenda and speakers, each time
keeping its wall-clock distance from the start. Bookings and whatever delegates did never come
along; resources and the survey are copied by their own domains on `events.signals.event_copied`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chamber.auth.models import StaffUser
from chamber.core.times import NonexistentLocalTime, local_to_utc, utc_to_local, utcnow
from chamber.events import signals
from chamber.events.models import AgendaItem, AgendaItemSpeaker, Event, EventStatus
from chamber.events.services import EventError, unique_slug
from chamber.extensions import db

log = logging.getLogger(__name__)

# What a copy takes from its source as it is; times are shifted, the rest is the copy's own.
COPIED_FIELDS = (
    "summary", "description", "venue_name", "venue_address", "venue_town", "venue_postcode",
    "venue_country", "timezone", "capacity", "business_limit", "host", "supporters",
    "parking", "access", "what_to_bring",
    "reminder_enabled", "reminder_days_before", "reminder_time",
)  # fmt: skip


@dataclass(frozen=True)
class EventCopy:
    """What staff choose for a copy: its title and its start (UTC)."""

    title: str
    starts_at: datetime


def copy_title(event: Event) -> str:
    """The title a copy is offered: the source's, marked as a copy, within the column's 200."""
    return f"{event.title[:193]} (copy)"


def _shifter(source: Event, starts_at: datetime) -> Callable[[datetime], datetime]:
    """A function moving a time of `source` to the copy starting at `starts_at`: the same wall
    clock distance from the start in the event's zone (a 10:00 talk in a 09:00 event is at 10:00
    on the new day whether or not the clocks changed in between)."""
    zone_name = source.timezone
    shift = utc_to_local(starts_at, zone_name).replace(tzinfo=None) - (
        source.local_start.replace(tzinfo=None)
    )
    elapsed = starts_at - source.starts_at

    def shifted(moment: datetime) -> datetime:
        wall = utc_to_local(moment, zone_name).replace(tzinfo=None) + shift
        try:
            return local_to_utc(wall, zone_name)
        except NonexistentLocalTime:  # skipped when the clocks go forward: the same length
            return moment + elapsed

    return shifted


def copy_event(
    source: Event, details: EventCopy, *, by: StaffUser, now: datetime | None = None
) -> Event:
    """A draft copy of `source` starting at `details.starts_at`: its details, its agenda and each
    talk's speakers, every time shifted with the start; and, through `event_copied`, its
    resources and its survey. Never its bookings, delegates, check-ins or survey responses."""
    title = details.title.strip()
    if not title:
        raise EventError("Enter the copy's title.", field="title")
    if len(title) > 200:
        raise EventError("Title must be 200 characters or fewer.", field="title")
    shifted = _shifter(source, details.starts_at)
    ends_at = shifted(source.ends_at)
    if ends_at <= (now or utcnow()):
        raise EventError(
            "The copy would already have ended: choose a later start.", field="starts_at"
        )
    copy = Event(
        title=title,
        slug=unique_slug(title),
        status=EventStatus.draft,
        sequence=0,
        starts_at=details.starts_at,
        ends_at=ends_at,
        registration_opens_at=_maybe(shifted, source.registration_opens_at),
        registration_closes_at=_maybe(shifted, source.registration_closes_at),
        **{field: getattr(source, field) for field in COPIED_FIELDS},
    )
    db.session.add(copy)
    items: dict[int, AgendaItem] = {}
    for item in source.agenda_items:
        twin = AgendaItem(
            event=copy,
            title=item.title,
            description=item.description,
            kind=item.kind,
            position=item.position,
            starts_at=shifted(item.starts_at),
            ends_at=shifted(item.ends_at),
        )
        twin.speaker_links = [
            AgendaItemSpeaker(speaker_id=link.speaker_id, position=link.position)
            for link in item.speaker_links
        ]
        db.session.add(twin)
        items[item.id] = twin
    db.session.flush()
    signals.event_copied.send(signals.this_app(), source=source, copy=copy, items=items)
    log.info("%s copied event %s to %s", by.email, source.id, copy.id)
    return copy


def _maybe(shifted: Callable[[datetime], datetime], moment: datetime | None) -> datetime | None:
    return shifted(moment) if moment is not None else None


def copy_shift(source: Event, copy: Event) -> timedelta:
    """How far the copy moved from its source, in elapsed time (for what follows the event's end,
    such as a survey sent the morning after)."""
    return copy.ends_at - source.ends_at
