"""Operations on events, agendas and speakers. Each flushes and never commits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.interfaces import LoaderOption

from chamber.auth.models import StaffUser
from chamber.core.errors import Refusal
from chamber.core.text import slugify
from chamber.core.times import NonexistentLocalTime, local_to_utc, utc_to_local, utcnow
from chamber.events import signals
from chamber.events.models import (
    AgendaItem,
    AgendaItemSpeaker,
    AgendaKind,
    Event,
    EventStatus,
    Speaker,
)
from chamber.extensions import db

log = logging.getLogger(__name__)

# Fields whose change alters what a calendar entry says: each change raises the event's SEQUENCE.
CALENDAR_FIELDS = (
    "starts_at", "ends_at", "venue_name", "venue_address", "venue_town", "venue_postcode",
    "venue_country", "timezone", "status",
)  # fmt: skip
# Fields whose change may free seats or places: registration is told (`signals.seats_changed`).
SEAT_FIELDS = ("capacity", "business_limit")
EVENT_FIELDS = (
    "title", "slug", "summary", "description", "venue_name", "venue_address", "venue_town",
    "venue_postcode", "venue_country", "timezone",
    "starts_at", "ends_at", "capacity", "business_limit", "registration_opens_at",
    "registration_closes_at", "host", "supporters", "parking", "access", "what_to_bring",
)  # fmt: skip


class EventError(Refusal):
    """A change that would break a rule about events; the message is shown to the user."""


@dataclass(frozen=True)
class EventDetails:
    """What staff set on an event (times in UTC). An empty slug is made from the title."""

    title: str
    slug: str
    summary: str
    description: str
    venue_name: str
    venue_address: str
    timezone: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    business_limit: int
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    host: str
    supporters: str
    venue_town: str = ""
    venue_postcode: str = ""
    venue_country: str = "GB"
    # Joining details (Markdown): not calendar fields, so changing them emails nobody.
    parking: str = ""
    access: str = ""
    what_to_bring: str = ""

    @classmethod
    def of(cls, event: Event) -> EventDetails:
        """The event's details as they stand, to change a few with `dataclasses.replace`."""
        return cls(**{field.name: getattr(event, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class AgendaItemDetails:
    """What staff set on an agenda item (times in UTC)."""

    title: str
    kind: AgendaKind
    description: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class SpeakerDetails:
    """What staff set on a speaker; `email` is private, and None when not given."""

    name: str
    job_title: str
    organisation: str
    bio: str
    email: str | None


# --- telling higher layers about calendar changes -------------------------------------------------
# Events sit below registration and surveys, which connect to `events.signals` in their init_app:
# to email delegates about a change in the same transaction, and to say how many a change would reach.


def calendar_audience(event: Event) -> int:
    """How many people a change of the event's time, place or status would email now: the sum of
    what the `calendar_audience` signal's receivers count."""
    if event.is_draft:
        return 0
    counts = signals.calendar_audience.send(signals.this_app(), event=event)
    return sum(int(count) for count in signals.replies(counts))


def _calendar_changed(event: Event, changed: tuple[str, ...], before: dict[str, Any]) -> None:
    _entries_changed(event, sequence=True)
    signals.calendar_changed.send(signals.this_app(), event=event, changed=changed, before=before)


def _entries_changed(event: Event, *, sequence: bool) -> None:
    """What calendars show of `event` changed: raise its `updated_at` (the feed's ETag and
    Last-Modified) and, for a change of time, place or status, its SEQUENCE.

    Raised in SQL rather than in Python, so that two staff saving at once both count (the second
    waits for the first's row lock on PostgreSQL) and no change shares another's SEQUENCE, whose
    number keys the update emails.
    """
    values: dict[str, Any] = {"updated_at": utcnow()}
    if sequence:
        values["sequence"] = Event.sequence + 1
    db.session.execute(
        update(Event)
        .where(Event.id == event.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(event, ["sequence", "updated_at"])


# --- reading -------------------------------------------------------------------------------------


def _with_agenda() -> LoaderOption:
    return (
        selectinload(Event.agenda_items)
        .selectinload(AgendaItem.speaker_links)
        .selectinload(AgendaItemSpeaker.speaker)
    )


def agenda_with_speakers(event: Event) -> list[AgendaItem]:
    """`event.agenda_items` with each talk's speakers, read in two queries however long the agenda
    (reading the relationship as it is reads each talk's speakers one by one), or as they are if
    they were read already. For what lists the agenda from an event read without it (a booking's
    calendar files, a reminder)."""
    if "agenda_items" not in sa_inspect(event).unloaded:
        return event.agenda_items
    items = list(
        db.session.scalars(
            select(AgendaItem)
            .where(AgendaItem.event_id == event.id)
            .order_by(AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)
            .options(selectinload(AgendaItem.speaker_links).joinedload(AgendaItemSpeaker.speaker))
        )
    )
    set_committed_value(event, "agenda_items", items)
    return items


def event_by_slug(slug: str) -> Event | None:
    """The event at `slug`, drafts included, without its agenda; None for none (or a NUL, which
    PostgreSQL refuses in a query)."""
    if "\x00" in slug:
        return None
    event: Event | None = db.session.scalar(db.select(Event).where(Event.slug == slug))
    return event


def event_with_agenda(slug: str) -> Event | None:
    """The event and its whole agenda with speakers in a fixed number of queries."""
    event: Event | None = db.session.scalar(
        db.select(Event).where(Event.slug == slug).options(_with_agenda())
    )
    return event


def upcoming_published(now: datetime | None = None) -> Select[tuple[Event]]:
    """Published (and called-off) events that have not ended, soonest first, for `paginate`."""
    return (
        select(Event)
        .where(Event.status != EventStatus.draft, Event.ends_at > (now or utcnow()))
        .order_by(Event.starts_at, Event.id)
    )


def upcoming_for_staff(now: datetime | None = None, limit: int = 10) -> list[Event]:
    return list(
        db.session.scalars(
            db.select(Event)
            .where(Event.ends_at > (now or utcnow()))
            .order_by(Event.starts_at)
            .limit(limit)
        )
    )


def past_published(now: datetime | None = None) -> Select[tuple[Event]]:
    query: Select[tuple[Event]] = (
        db.select(Event)
        .where(Event.status != EventStatus.draft, Event.ends_at <= (now or utcnow()))
        .order_by(Event.starts_at.desc())
    )
    return query


def slug_taken(slug: str, exclude_id: int | None = None) -> bool:
    query = db.select(Event.id).where(Event.slug == slug)
    if exclude_id is not None:
        query = query.where(Event.id != exclude_id)
    return db.session.scalar(query) is not None


def unique_slug(title: str, exclude_id: int | None = None) -> str:
    base = slugify(title, max_length=72)
    slug, counter = base, 2
    while slug_taken(slug, exclude_id):
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


# --- events --------------------------------------------------------------------------------------


def _check_event(event: Event, item_times: dict[int, tuple[datetime, datetime]]) -> None:
    """Refuse an event that breaks a rule; `item_times` are its agenda items' times as planned."""
    if event.ends_at <= event.starts_at:
        raise EventError("The event must end after it starts.")
    if event.capacity < 0:
        raise EventError("Capacity cannot be negative.")
    if event.business_limit < 1:
        raise EventError("Each business must be allowed at least one delegate.")
    opens, closes = event.registration_opens_at, event.registration_closes_at
    if opens and closes and closes <= opens:
        raise EventError("Registration must close after it opens.")
    if closes and closes > event.ends_at:
        raise EventError("Registration must close before the event ends.")
    for item in event.agenda_items:
        starts, ends = item_times.get(id(item), (item.starts_at, item.ends_at))
        if not (event.starts_at <= starts and ends <= event.ends_at):
            local = event.local(starts)
            raise EventError(
                f"The agenda item “{item.title}” ({local:%H:%M} on {local:%-d %B}) would fall "
                "outside the event's new hours. Change its time first, or keep the event's hours "
                "around it."
            )


def _within(item: AgendaItem, event: Event) -> bool:
    return event.starts_at <= item.starts_at and item.ends_at <= event.ends_at


def _moved_agenda(
    event: Event, old_start: datetime, old_zone: str
) -> dict[int, tuple[datetime, datetime]]:
    """Where the agenda goes when the event's start moves (to another time, day or zone): each item
    keeps its wall-clock distance from the start, so a 10:00 talk in a 09:00 event is at 10:30
    when the event moves to 09:30, and still at 10:30 local time if a change of the clocks falls
    between the old date and the new. Keyed by id(item); empty when the start did not move."""
    old_wall = utc_to_local(old_start, old_zone).replace(tzinfo=None)
    shift = event.local_start.replace(tzinfo=None) - old_wall
    if not shift and event.timezone == old_zone:
        return {}

    def moved(moment: datetime) -> datetime:
        wall = utc_to_local(moment, old_zone).replace(tzinfo=None) + shift
        try:
            return local_to_utc(wall, event.timezone)
        except NonexistentLocalTime:  # skipped when the clocks go forward: keep the same length
            return moment + (event.starts_at - old_start)

    return {id(item): (moved(item.starts_at), moved(item.ends_at)) for item in event.agenda_items}


def _apply(
    event: Event, details: EventDetails, *, move_agenda: bool
) -> dict[int, tuple[datetime, datetime]]:
    """Set `details` on `event` and check it; returns the agenda's new times (not yet applied):
    moved with the start when `move_agenda`, otherwise left where they are."""
    old_start, old_zone = event.starts_at, event.timezone
    for field in EVENT_FIELDS:
        setattr(event, field, getattr(details, field))
    moving = move_agenda and old_start is not None
    item_times = _moved_agenda(event, old_start, old_zone) if moving else {}
    _check_event(event, item_times)
    return item_times


def change_problem(event: Event, details: EventDetails, *, move_agenda: bool = True) -> str | None:
    """Why saving `details` on `event` would be refused, without changing anything (so staff hear
    about it before being asked to confirm whom the change will email)."""
    kept = {field: getattr(event, field) for field in EVENT_FIELDS}
    try:
        with db.session.no_autoflush:
            _apply(event, details, move_agenda=move_agenda)
    except EventError as error:
        return str(error)
    finally:
        with db.session.no_autoflush:
            for field, value in kept.items():
                setattr(event, field, value)
    return None


def start_moves(event: Event, details: EventDetails) -> bool:
    """Whether `details` move the event's start as its programme reads it (its local time or zone)."""
    if event.starts_at is None or details.starts_at is None:
        return False
    new_wall = utc_to_local(details.starts_at, details.timezone).replace(tzinfo=None)
    return details.timezone != event.timezone or new_wall != event.local_start.replace(tzinfo=None)


def agenda_moves(event: Event, details: EventDetails, *, move_agenda: bool) -> bool:
    """Whether saving `details` would move the agenda with the event."""
    return move_agenda and bool(event.agenda_items) and start_moves(event, details)


def save_event(
    event: Event | None, details: EventDetails, *, by: StaffUser, move_agenda: bool = True
) -> Event:
    """Create an event (when `event` is None) or change one to `details`.

    With `move_agenda` (the default; staff choose on the form), moving the event's start (to
    another time, day or zone) moves its agenda with it, each item keeping its distance from the
    start; without, the agenda stays and a change that would leave an item outside the event's
    hours is refused. Raises the event's calendar SEQUENCE when its time or place changes, and
    tells the listeners (registration emails every confirmed delegate the new entry, once per such
    save). A published event whose start moves remembers the start it was announced with
    (`previous_starts_at`, the JSON-LD's `previousStartDate`) until it moves back there.
    """
    creating = event is None
    if event is None:
        event = Event(status=EventStatus.draft, sequence=0)
    before = {field: getattr(event, field) for field in CALENDAR_FIELDS + SEAT_FIELDS}
    item_times = _apply(event, details, move_agenda=move_agenda)
    for item in event.agenda_items:
        if id(item) in item_times:
            item.starts_at, item.ends_at = item_times[id(item)]
    if not creating and event.starts_at != before["starts_at"]:
        _remember_previous_start(event, before["starts_at"])
    event.slug = event.slug or unique_slug(event.title, exclude_id=event.id)
    if creating:
        db.session.add(event)
    try:
        db.session.flush()
    except IntegrityError as error:  # another save took the address after `slug_taken` looked
        raise EventError("Another event already uses this web address.", field="slug") from error
    changed = tuple(f for f in CALENDAR_FIELDS if getattr(event, f) != before[f])
    if not creating and changed:
        _calendar_changed(event, changed, {field: before[field] for field in changed})
    seat_changes = tuple(f for f in SEAT_FIELDS if getattr(event, f) != before[f])
    if not creating and seat_changes:
        signals.seats_changed.send(
            signals.this_app(),
            event=event,
            changed=seat_changes,
            before={field: before[field] for field in seat_changes},
        )
    log.info("%s %s event %s", by.email, "created" if creating else "changed", event.id)
    return event


def _remember_previous_start(event: Event, old_start: datetime) -> None:
    """A published event keeps the first start it was announced with while it is rescheduled; a
    move back to that start is no longer a rescheduling. A draft was never announced."""
    if event.previous_starts_at == event.starts_at:
        event.previous_starts_at = None
    elif event.is_published and event.previous_starts_at is None:
        event.previous_starts_at = old_start


def set_status(
    event: Event, status: EventStatus, *, by: StaffUser, now: datetime | None = None
) -> None:
    if event.status == status:
        return
    if event.is_cancelled and status != EventStatus.draft:
        raise EventError("A cancelled event can only go back to draft.")
    if status == EventStatus.cancelled and event.is_past(now):
        raise EventError(
            "This event has already taken place, so it cannot be cancelled: its delegates would "
            "be told it was called off after they came."
        )
    before = {"status": event.status}
    event.status = status
    _calendar_changed(event, ("status",), before)
    log.info("%s set event %s to %s", by.email, event.id, status.value)


def calendar_change_summary(event: Event, details: EventDetails) -> list[str]:
    """Which calendar-visible fields `details` would change, for a warning before saving."""
    return [
        field
        for field in CALENDAR_FIELDS
        if field in EVENT_FIELDS and getattr(event, field) != getattr(details, field)
    ]


# --- agenda --------------------------------------------------------------------------------------


def _check_item(event: Event, item: AgendaItem) -> None:
    if item.ends_at <= item.starts_at:
        raise EventError("The agenda item must end after it starts.")
    if not _within(item, event):
        start, end = event.local_start, event.local_end
        raise EventError(
            f"The agenda item must be within the event's hours ({start:%H:%M} to {end:%H:%M})."
        )


def save_agenda_item(
    event: Event,
    item: AgendaItem | None,
    details: AgendaItemDetails,
    speaker_ids: list[int],
    *,
    by: StaffUser,
) -> AgendaItem:
    """Add or change an agenda item and set its speakers in the given order."""
    ordered = list(dict.fromkeys(speaker_ids))  # keep the first mention of each speaker
    speakers = {
        s.id: s for s in db.session.scalars(db.select(Speaker).where(Speaker.id.in_(ordered)))
    }
    if len(speakers) != len(ordered):
        raise EventError("One of the chosen speakers no longer exists.")
    # A new item joins the event (and the session) only once it is known to be valid.
    new = item is None
    if item is None:
        item = AgendaItem(position=len(event.agenda_items))
    moved = new or (item.starts_at, item.ends_at) != (details.starts_at, details.ends_at)
    for field in fields(AgendaItemDetails):
        setattr(item, field.name, getattr(details, field.name))
    _check_item(event, item)
    existing = {link.speaker_id: link for link in item.speaker_links}
    item.speaker_links = [
        existing.get(sid) or AgendaItemSpeaker(speaker=speakers[sid]) for sid in ordered
    ]
    for position, link in enumerate(item.speaker_links):
        link.position = position
    if new:
        item.event = event
        db.session.add(item)
    db.session.flush()
    # The event's entry lists its agenda; a talk that moves (or is new) moves its own entry.
    _entries_changed(event, sequence=moved)
    log.info("%s saved agenda item %s of event %s", by.email, item.id, event.id)
    return item


def delete_agenda_item(item: AgendaItem, *, by: StaffUser) -> None:
    event = item.event
    item_id = item.id
    db.session.delete(item)
    db.session.flush()
    _entries_changed(event, sequence=True)
    log.info("%s deleted agenda item %s of event %s", by.email, item_id, event.id)


def move_agenda_item(event: Event, item: AgendaItem, direction: int, *, by: StaffUser) -> bool:
    """Swap an item with its neighbour (`direction` -1 earlier, +1 later), keeping the pair's slot.

    The two items trade places inside the time the pair already occupies: each keeps its own
    length and the gap between them stays, so the rest of the agenda does not move.
    """
    items = event.agenda_items
    index = items.index(item)
    other_index = index + direction
    if not 0 <= other_index < len(items):
        return False
    first, second = sorted((item, items[other_index]), key=items.index)
    gap = max(second.starts_at - first.ends_at, timedelta(0))
    block_start = first.starts_at
    second_length, first_length = second.ends_at - second.starts_at, first.ends_at - first.starts_at
    second.starts_at, second.ends_at = block_start, block_start + second_length
    first.starts_at = second.ends_at + gap
    first.ends_at = first.starts_at + first_length
    first.position, second.position = second.position, first.position
    if first.position == second.position:
        second.position, first.position = first.position, first.position + 1
    db.session.flush()
    _entries_changed(event, sequence=True)
    db.session.expire(event, ["agenda_items"])
    log.info("%s moved agenda item %s of event %s", by.email, item.id, event.id)
    return True


def overlapping_item_ids(items: list[AgendaItem]) -> set[int]:
    """Items that overlap another: allowed (parallel sessions happen) but shown with a warning."""
    ordered = sorted(items, key=lambda i: (i.starts_at, i.ends_at))
    overlapping: set[int] = set()
    latest_end: datetime | None = None
    latest_id = 0  # set with latest_end
    for item in ordered:
        if latest_end is not None and item.starts_at < latest_end:
            overlapping.update({item.id, latest_id})
        if latest_end is None or item.ends_at > latest_end:
            latest_end, latest_id = item.ends_at, item.id
    return overlapping


# --- speakers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerUse:
    speaker: Speaker
    talks: int


def speakers_with_use() -> list[SpeakerUse]:
    rows = db.session.execute(
        db.select(Speaker, db.func.count(AgendaItemSpeaker.id))
        .outerjoin(AgendaItemSpeaker, AgendaItemSpeaker.speaker_id == Speaker.id)
        .group_by(Speaker.id)
        .order_by(Speaker.name)
    ).all()
    return [SpeakerUse(speaker, talks) for speaker, talks in rows]


def save_speaker(speaker: Speaker | None, details: SpeakerDetails, *, by: StaffUser) -> Speaker:
    speaker = speaker or Speaker()
    shown = (speaker.name, speaker.organisation)
    for field in fields(SpeakerDetails):
        setattr(speaker, field.name, getattr(details, field.name))
    db.session.add(speaker)
    db.session.flush()
    if speaker.id is not None and shown != (speaker.name, speaker.organisation):
        # Calendar entries name speakers with their organisation: their events' feeds changed.
        on_agenda = (
            db.select(AgendaItem.event_id)
            .join(AgendaItemSpeaker, AgendaItemSpeaker.agenda_item_id == AgendaItem.id)
            .where(AgendaItemSpeaker.speaker_id == speaker.id)
        )
        db.session.execute(
            update(Event)
            .where(Event.id.in_(on_agenda))
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    log.info("%s saved speaker %s", by.email, speaker.id)
    return speaker


def delete_speaker(speaker: Speaker, *, by: StaffUser) -> None:
    in_use = db.session.scalar(
        db.select(db.func.count(AgendaItemSpeaker.id)).where(
            AgendaItemSpeaker.speaker_id == speaker.id
        )
    )
    if in_use:
        raise EventError(
            f"{speaker.name} speaks on {in_use} agenda item(s); remove them there first."
        )
    speaker_id = speaker.id
    db.session.delete(speaker)
    db.session.flush()
    log.info("%s deleted speaker %s", by.email, speaker_id)
