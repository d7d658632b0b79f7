"""Booking seats: the capacity rule, the per-business limit, the waiting list, cancellations.

Seats are decided under the event's seat lock: on PostgreSQL the event's row, on SQLite the
database's write lock. Only then are seats counted, so two bookings at once can never both take
the last seat (invariant 1), and every seat that appears goes to the first people waiting in the
same transaction (invariant 3, see `registration.waitlist`). A booking writes its rows first and
takes the lock last, for the decision only (`settle_seats`); every other change of seats takes it
as the transaction's first write (`seats_locked`), and asked for later it refuses
(`TransactionMisuse`), except for a change staff make to the event itself
(`lock_event_seats_after_saving`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    UpdateBase,
    all_,
    bindparam,
    insert,
    literal,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm.attributes import set_committed_value

from chamber.core import pagecache, pipeline, transactions
from chamber.core.dialects import insert_or_skip, on_postgresql, one_of
from chamber.core.errors import Refusal
from chamber.core.notice import notice_version_as_written
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.written import as_read, attribute_keys
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.members import addresses, marketing
from chamber.members import services as members
from chamber.members.models import Contact, Organisation, SizeBand
from chamber.registration import seats
from chamber.registration.models import Booking, BookingToken, Delegate, DelegateStatus


class BookingRefused(Refusal):
    """The booking cannot be taken at all; the message says why."""


class AlreadyRegistered(Refusal):
    """Some of these people already hold a place (or a place on the waiting list) at this event."""

    def __init__(self, emails: list[str]):
        super().__init__("Already registered: " + ", ".join(emails))
        self.emails = emails


@dataclass(frozen=True)
class DelegateDetails:
    name: str
    email: str
    job_title: str = ""
    phone: str = ""
    needs: str = ""


@dataclass(frozen=True)
class DelegateEdit:
    """A change to a delegate's details; the person (their email) stays the same."""

    name: str
    job_title: str
    phone: str
    needs: str


@dataclass(frozen=True)
class BusinessDetails:
    name: str
    size_band: SizeBand
    sector: str = ""
    town_or_postcode: str = ""
    is_member: bool = False


@dataclass
class BookingResult:
    booking: Booking | None  # None when everyone named already had a place
    confirmed: list[Delegate] = field(default_factory=list)
    waitlisted: list[Delegate] = field(default_factory=list)
    # People named who already hold a place at this event, from any booking: their existing
    # places, untouched (invariant 2). Only a public booking sets people aside; staff are refused.
    set_aside: list[Delegate] = field(default_factory=list)
    # Until `settle_seats`: the places written with the seats they would get as things stood,
    # and what the decision under the seat lock checks again. None once settled.
    unsettled: Unsettled | None = None
    # Each waiting place's number in the queue (1 for the first), as `settle_seats` decided it;
    # before that, what the emails show in its stead (`notifications.settle_and_tell`).
    positions: dict[int, int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unsettled:
    event: Event
    named: int  # everyone the booking named, set aside or not: they all count against the limit
    public: bool  # a public booking: the event must still be taking bookings when seats are given
    now: datetime
    seen: datetime  # the event's `updated_at` as the places were written: what the emails show


# --- reading -------------------------------------------------------------------------------------


def seats_left(event: Event) -> int:
    return max(0, event.capacity - seats.confirmed_count(event.id))


def registration_problem(event: Event, now: datetime | None = None) -> str | None:
    """Why this event cannot take bookings now, in words for the public; None if it can."""
    now = now or utcnow()
    if event.status == EventStatus.draft:
        return "This event is not open for booking."
    if event.status == EventStatus.cancelled:
        return "This event has been cancelled, so it is not taking bookings."
    if event.starts_at <= now:
        return "This event has already started, so booking has closed."
    if event.registration_opens_at and now < event.registration_opens_at:
        opens = event.local(event.registration_opens_at)
        return f"Booking opens on {opens:%A %-d %B %Y} at {opens:%H:%M}."
    if event.registration_closes_at and now >= event.registration_closes_at:
        return "Booking for this event has closed."
    return None


def booking_window(event: Event) -> tuple[datetime | None, datetime]:
    """When a published event takes bookings (`registration_problem` says None): from the first
    time (None: already) until, not including, the second."""
    closes = event.starts_at
    if event.registration_closes_at is not None:
        closes = min(closes, event.registration_closes_at)
    return event.registration_opens_at, closes


def active_delegates_for_business(
    event_id: int, organisation_id: int, colleagues_of: str | None = None
) -> int:
    """The active places a business holds at the event, as the per-business limit counts them.

    For a public booking (`colleagues_of`: the booker's address) only the bookings made by the
    booker's colleagues count: the same business email domain, or for a personal mailbox the
    same address. A stranger typing another business's name therefore neither learns how many
    places it holds nor uses them up. Staff (`None`) count every booking under the name."""
    statement, values = _business_places(event_id, organisation_id, colleagues_of)
    count: int = db.session.scalar(statement, values)
    return count


def _business_places(
    event_id: int, organisation_id: int, colleagues_of: str | None
) -> tuple[Select[tuple[int]], dict[str, Any]]:
    """The query `active_delegates_for_business` runs (the count, as a statement) and its values:
    `event_id`, `organisation_id` and, for a public booking, `colleagues` (an address, or a LIKE
    pattern for everyone at a domain)."""
    values: dict[str, Any] = {"event_id": event_id, "organisation_id": organisation_id}
    if colleagues_of is None:
        return _business_places_statement("everyone"), values
    key, exact = addresses.colleagues_pattern(colleagues_of)
    values["colleagues"] = key if exact else "%@" + _like_escaped(key)
    return _business_places_statement("address" if exact else "domain"), values


def _like_escaped(text: str) -> str:
    """`text` matched as it is by LIKE ... ESCAPE '/'."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@functools.cache
def _business_places_statement(colleagues: str) -> Select[tuple[int]]:
    """`_business_places`'s statement for `colleagues` ("everyone", "address" or "domain"), made
    once: its values are parameters."""
    query: Select[tuple[int]] = (
        db.select(db.func.count(Delegate.id))
        .join(Booking, Booking.id == Delegate.booking_id)
        .where(
            Delegate.event_id == bindparam("event_id"),
            Booking.organisation_id == bindparam("organisation_id"),
            Delegate.status != DelegateStatus.cancelled,
        )
    )
    if colleagues == "everyone":
        return query
    booker = query.join(Contact, Contact.id == Booking.booker_id)
    if colleagues == "address":
        return booker.where(Contact.email == bindparam("colleagues"))
    return booker.where(Contact.email.like(bindparam("colleagues"), escape="/"))


def active_places(event_id: int, emails: list[str]) -> list[Delegate]:
    """The active (confirmed or waiting) places these addresses hold at the event."""
    return list(
        db.session.scalars(
            db.select(Delegate)
            .where(
                Delegate.event_id == event_id,
                Delegate.email_normalised.in_(emails),
                Delegate.status != DelegateStatus.cancelled,
            )
            .order_by(Delegate.id)
        )
    )


def registered_emails(event_id: int, emails: list[str]) -> list[str]:
    return [delegate.email_normalised for delegate in active_places(event_id, emails)]


def holds_places(booking_id: int) -> bool:
    """Whether the booking still holds any place, confirmed or waiting."""
    held = db.select(Delegate.id).where(
        Delegate.booking_id == booking_id, Delegate.status != DelegateStatus.cancelled
    )
    return db.session.scalar(held.limit(1)) is not None


def booking_for_token(token: str) -> Booking | None:
    if not token or len(token) > 100:
        return None
    booking: Booking | None = db.session.scalar(
        db.select(Booking).join(BookingToken).where(BookingToken.token_hash == hash_token(token))
    )
    return booking


# --- changing seats ------------------------------------------------------------------------------


@contextmanager
def seats_locked(event: Event) -> Iterator[Event]:
    """Hold the event's seats for the rest of the transaction: `with seats_locked(event): ...`.

    The lock must be the transaction's first write, so the block begins a fresh transaction: the
    reads before it are ended (on SQLite a transaction that has read cannot always become a
    writer) and every object loaded before is read again under the lock. Raises
    `transactions.TransactionMisuse` if the transaction has written already. The request (or the
    job's `unit_of_work`) commits, after the block; the lock lasts until then."""
    lock_event_seats(event)
    yield event


def lock_event_seats(event: Event) -> None:
    """Serialise seat changes for one event; see `seats_locked`. Taking it again is a no-op."""
    held = transactions.state().setdefault("seat_locks", set())
    if event.id in held:
        return
    if transactions.created_here(event):  # nobody else can see its seats yet (the demo's editions)
        held.add(event.id)
        return
    event_id = event.id
    transactions.end_reads()
    db.session.execute(
        update(Event)
        .where(Event.id == event_id)
        .values(updated_at=Event.updated_at)  # a write that changes nothing, for its lock
        .execution_options(synchronize_session=False)
    )
    transactions.state().setdefault("seat_locks", set()).add(event_id)


def lock_event_seats_after_saving(event: Event) -> None:
    """The seat lock for a change staff made to the event itself (its capacity, its status, its
    dates), in a transaction that has already written the event's row.

    That write took the same lock as `lock_event_seats` (PostgreSQL: the event's row; SQLite: the
    database), and everything read after it is current, so seats may be counted now. The no-op
    UPDATE is repeated in case the transaction's first write was another row. Without any write
    yet, this is `lock_event_seats`."""
    held = transactions.state().setdefault("seat_locks", set())
    if event.id in held:
        return
    if not transactions.has_written():
        lock_event_seats(event)
        return
    db.session.execute(
        update(Event)
        .where(Event.id == event.id)
        .values(updated_at=Event.updated_at)
        .execution_options(synchronize_session=False)
    )
    held.add(event.id)


def _sent_campaign(campaign_id: int | None) -> Any:
    """The campaign a booking came from (`campaign_id`, from its email's link), as a subquery the
    INSERT reads: NULL unless it is a campaign that has started sending, so a made-up or draft
    reference records nothing and is never an error. The table is a layer above: read by name."""
    if campaign_id is None:
        return None
    campaign = db.metadata.tables["campaign"]
    return (
        db.select(campaign.c.id)
        .where(campaign.c.id == campaign_id, campaign.c.started_at.is_not(None))
        .scalar_subquery()
    )


def book(
    event: Event,
    business: BusinessDetails,
    booker: DelegateDetails,
    delegates: list[DelegateDetails],
    *,
    source: str = "web",
    privacy_acknowledged: bool = True,
    marketing_opt_out: bool | None = None,
    set_aside_duplicates: bool = False,
    settle: bool = True,
    now: datetime | None = None,
    campaign_id: int | None = None,
    update_records: bool | None = None,
) -> BookingResult:
    """Book `delegates` for a business: seats while they last, then the waiting list, in order.

    Someone who already holds a place raises AlreadyRegistered, or with `set_aside_duplicates`
    (the public form, which must not tell a stranger who is coming) is left out of this booking
    and listed in `result.set_aside`; if nobody is left, no booking is made. Raises
    BookingRefused (closed, limit). Flushes, never commits; the caller commits once.

    The booking and its places are written first, each place with the seat it would get as
    things stand; then `settle_seats` takes the seat lock and decides (invariant 1). With
    `settle=False` the caller settles, after rendering the emails the booking owes
    (`notifications.settle_and_tell`), so that the lock is held for the decision only.

    `marketing_opt_out` is the booker's answer to the form's opt-out of news of future events (None:
    the form offered none, as staff bookings): only the booker's own contact gets the soft opt-in
    (docs/marketing.md), never the delegates they named.

    What a public booking says about an existing business or person is kept on the booking and
    its delegates, never written over the CRM's records; staff bookings update them, unless
    `update_records` is False (a walk-in typed at the door, `checkin_services.walk_in`).
    """
    _lock_first_where_writers_queue(event)
    now = now or utcnow()
    public = source == "web"
    if public and (problem := registration_problem(event, now)):
        raise BookingRefused(problem)
    named = len(delegates)
    people = _new_people(event, delegates, set_aside_duplicates)
    # Everyone named counts against the limit, set aside or not, so that whether the limit is
    # reached never depends on whether someone named already had a place.
    # Staff see every booking, so theirs count the whole business; the public form's count only
    # the booker's colleagues' (see `active_delegates_for_business`).
    colleagues_of = booker.email if public else None
    known = members.find_organisation(business.name)
    _check_business_limit(event, known, colleagues_of, named)
    if not people.details:
        return BookingResult(None, set_aside=people.held)
    staff_confirmed = source == "staff" if update_records is None else update_records
    organisation = members.find_or_create_organisation(
        name=business.name,
        size_band=business.size_band,
        sector=business.sector,
        town_or_postcode=business.town_or_postcode,
        is_member=business.is_member,
        update_existing=staff_confirmed,
        found=known,
    )
    # The booker and the people to seat, in one INSERT (a new booker who keeps the events offer
    # gets the soft opt-in with their row, docs/marketing.md).
    contacts = members.find_or_create_contacts(
        [
            members.PersonTyped(
                booker.email,
                booker.name,
                booker.job_title,
                booker.phone,
                soft_opt_in_at=now if marketing_opt_out is False else None,
            ),
            *_typed(people.details),
        ],
        organisation=organisation,
        update_existing=staff_confirmed,
        confirmed=not public,  # staff typed them, or the person stands at the door
    )
    booker_contact = contacts[members.normalise_email(booker.email)]
    if marketing_opt_out is not None:  # the form offered the booker an opt-out (docs/marketing.md)
        marketing.record_booking_choice(booker_contact, opted_out=marketing_opt_out, now=now)
    booking = _insert_booking(
        {
            "event_id": event.id,
            "organisation_id": organisation.id,
            "booker_id": booker_contact.id,
            "source": source,
            "business_as_typed": {
                "name": business.name,
                "size_band": SizeBand(business.size_band).value,
                "sector": business.sector,
                "town_or_postcode": business.town_or_postcode,
                "is_member": business.is_member,
            },
            "privacy_acknowledged_at": now if privacy_acknowledged else None,
            "created_at": now,
        },
        # The notice's version the public form linked (staff bookings: the booker saw none).
        notice_version=notice_version_as_written() if public else None,
        campaign=_sent_campaign(campaign_id),
    )
    for name, value in (("organisation", organisation), ("booker", booker_contact)):
        set_committed_value(booking, name, value)
    set_committed_value(booking, "delegates", [])  # a new booking has none: adding reads nothing
    result = BookingResult(booking, set_aside=people.held)
    _place(event, booking, people, result, now, set_aside_duplicates, contacts, staff_confirmed)
    if not result.confirmed and not result.waitlisted:  # all booked meanwhile: see `_place`
        db.session.delete(booking)
        db.session.flush()
        return BookingResult(None, set_aside=result.set_aside)
    result.unsettled = Unsettled(event, named, public, now, event.updated_at)
    if settle:
        settle_seats(result)
    return result


def _insert_booking(values: dict[str, Any], notice_version: Any, campaign: Any) -> Booking:
    """A new booking's row with `values`, the notice's version and the campaign each read by the
    INSERT itself (a subquery, or None), as an object (`core.written`: a Core INSERT costs a
    fraction of the unit of work's)."""
    table = Booking.__table__
    inserted = db.session.execute(
        insert(table)
        .values(**values, privacy_notice_version=notice_version, campaign_id=campaign)
        .returning(table.c.id, table.c.privacy_notice_version, table.c.campaign_id)
    ).one()
    return as_read(
        Booking,
        {
            **values,
            "id": inserted[0],
            "privacy_notice_version": inserted[1],
            "campaign_id": inserted[2],
        },
    )


def add_delegates(
    event: Event,
    booking: Booking,
    delegates: list[DelegateDetails],
    *,
    set_aside_duplicates: bool = False,
    settle: bool = True,
    now: datetime | None = None,
) -> BookingResult:
    """More delegates on an existing booking, within the same limits as a new booking (and, like
    `book`, settled under the seat lock by `settle_seats`, here or by the caller), added through
    the booking's private link: what is typed stays on the places, never changing the directory's
    record of someone we know, whoever made the booking."""
    _lock_first_where_writers_queue(event)
    now = now or utcnow()
    if problem := registration_problem(event, now):
        raise BookingRefused(problem)
    named = len(delegates)
    people = _new_people(event, delegates, set_aside_duplicates)
    _check_business_limit(event, booking.organisation, booking.booker.email, named)
    result = BookingResult(booking, set_aside=people.held)
    if people.details:
        _place(event, booking, people, result, now, set_aside_duplicates)  # never updates
        result.unsettled = Unsettled(event, named, True, now, event.updated_at)
        if settle:
            settle_seats(result)
    return result


def settle_seats(
    result: BookingResult, also: Callable[[BookingResult], UpdateBase | None] | None = None
) -> bool:
    """Decide the seats of a booking's new places under the event's seat lock (invariant 1), and
    return whether what was made before the lock is out of date: a place's seat changed from the
    one it was written with, or staff changed the event meanwhile.

    `also` is for a caller whose transaction writes nothing public after this (the booking
    forms, `notifications.settle_and_tell`): if nothing is out of date, the statement it makes of
    the decided result (the emails' waiting places filled in) is sent with this decision's own
    writes and the public version's rise, in one round trip (`pagecache.last_writes`). Without
    it the decision's writes go through the session and the version rises at the commit, as it
    must for a caller that goes on (staff bookings, the door, the demo): taking the version's row
    early would hold up every public change until its commit.

    On PostgreSQL the lock (the event's row) is taken here, after the booking was written, and
    held to the commit: for this decision and the inserts of the emails already rendered, not for
    the whole booking. Under it the event is read again (a public booking needs it still open),
    the per-business limit is counted again, and the seats other bookings have taken are counted;
    the new places get what is left, in order, and the rest wait. A person booked twice at once
    cannot get past the partial unique index (invariant 2): see `_place`. On SQLite, where
    writers queue for the database anyway, the lock was taken first (`book`) and the places were
    written with the right seats already."""
    pending = result.unsettled
    if pending is None:
        return False
    result.unsettled = None
    event, now = pending.event, pending.now
    ours = sorted(result.confirmed + result.waitlisted, key=lambda delegate: delegate.id)
    if not ours:  # everyone named was set aside as booked meanwhile: no seat to decide
        return False
    # Our places are counted already; what else was named still counts (see `book`). Every round
    # trip from here to the commit is one that the event's other bookings wait for: the limit
    # and the seats taken are counted in one statement, on PostgreSQL sent with the lock's.
    assert result.booking is not None
    booking = result.booking
    colleagues_of = booking.booker.email if pending.public else None
    limit_count, values = _business_places(event.id, booking.organisation_id, colleagues_of)
    ids = [delegate.id for delegate in ours]
    values["ours"] = ids
    if _lock_is_to_take_after_writing(event):  # PostgreSQL: the lock and the counts together
        counted = _lock_and_count(event, _settling_counts(limit_count, array=True), values)
    else:
        _lock_and_read_again(event)
        counted = db.session.execute(_settling_counts(limit_count, array=False), values).one()
    business_places, confirmed, waiting_ahead, latest = counted
    # The waiting list's order is the order of these decisions: ours are decided now, or, if
    # another web process whose clock runs ahead of ours decided a place that waits, just after
    # it, so that every place counted waits ahead of ours (`waitlist_position`).
    decided_at = utcnow()
    if latest is not None and latest >= decided_at:
        decided_at = latest + timedelta(microseconds=1)
    if pending.public and (problem := registration_problem(event, now)):
        raise BookingRefused(problem)
    if business_places + pending.named - len(ours) > event.business_limit:
        raise BookingRefused(business_limit_message(event))
    taken_by_others = confirmed - len(result.confirmed)
    free = event.capacity - taken_by_others
    decided: list[tuple[Delegate, DelegateStatus]] = []
    result.confirmed, result.waitlisted, result.positions = [], [], {}
    for delegate in ours:
        status = DelegateStatus.confirmed if free > 0 else DelegateStatus.waitlisted
        free -= status == DelegateStatus.confirmed
        decided.append((delegate, status))
        if status == DelegateStatus.confirmed:
            result.confirmed.append(delegate)
        else:
            result.waitlisted.append(delegate)
            result.positions[delegate.id] = waiting_ahead + len(result.waitlisted)
    # A place that waits joins the list now (its order is the order of the decisions); a seat
    # given as it was written keeps the time it was written, a moment ago. If staff changed the
    # event since the places were written, what was made of it before the lock (the emails) is
    # out of date: the caller makes it again, as for a seat that came out other than written.
    out_of_date = event.updated_at != pending.seen or any(
        delegate.status != status for delegate, status in decided
    )
    if out_of_date or also is None:
        for delegate, status in decided:
            if delegate.status != status or status == DelegateStatus.waitlisted:
                delegate.status, delegate.status_changed_at = status, decided_at
        db.session.flush()
        return out_of_date
    # Every seat as it was written, and the caller's last writes (`also`) to come: the waiting
    # places' time, those writes and the public version go in one round trip, and the commit
    # follows.
    writes = [extra] if (extra := also(result)) is not None else []
    waiting = [delegate.id for delegate in result.waitlisted]
    if waiting:
        table = Delegate.__table__
        writes.insert(
            0, update(table).where(one_of(table.c.id, waiting)).values(status_changed_at=decided_at)
        )
    pagecache.last_writes(writes)
    for delegate in result.waitlisted:
        set_committed_value(delegate, "status_changed_at", decided_at)
    return False


def _lock_is_to_take_after_writing(event: Event) -> bool:
    """Whether `settle_seats` takes the seat lock itself, in a transaction that has written the
    booking already: always on PostgreSQL (on SQLite, `book` took it first)."""
    held = transactions.state().setdefault("seat_locks", set())
    return event.id not in held and transactions.has_written() and on_postgresql()


def _lock_and_count(event: Event, counts: Select[Any], values: dict[str, Any]) -> tuple[Any, ...]:
    """`settle_seats`'s lock and `counts` on PostgreSQL, in one round trip (`core.pipeline`): the
    lock's UPDATE returns the event as it is now, which replaces what we had, and the counts,
    sent with it, run once it is granted (each statement has a snapshot of its own)."""
    locked, counted = pipeline.run(
        [(_seat_lock_returning(), {"event_id": event.id}), (counts, values)]
    )
    if not locked:
        raise BookingRefused("This event is not open for booking.")  # deleted meanwhile
    keys = attribute_keys(Event)
    for column, value in zip(Event.__table__.c, locked[0], strict=True):
        set_committed_value(event, keys[column.name], value)
    transactions.state().setdefault("seat_locks", set()).add(event.id)
    return counted[0]


@functools.cache
def _seat_lock_returning() -> UpdateBase:
    """`lock_event_seats`'s UPDATE, returning the event's row (every column, in the table's order)."""
    table = Event.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("event_id"))
        .values(updated_at=table.c.updated_at)  # a write that changes nothing, for its lock
        .returning(*table.c)
    )


@functools.cache
def _settling_counts(limit_count: Select[tuple[int]], *, array: bool) -> Select[Any]:
    """What `settle_seats` counts under the lock, in one statement made once for each kind of
    `limit_count` (`_business_places`): the business's places, the seats taken, and the places
    waiting but the booking's own (`ours`: with `array`, one array parameter, which
    `core.pipeline` needs; else an IN list), with the latest time one of them joined the list.
    Counted under the seat lock, every one of them was decided before ours."""
    ours = bindparam("ours", type_=postgresql.ARRAY(Integer)) if array else None
    waiting = (
        db.select(
            db.func.count(Delegate.id).label("waiting"),
            db.func.max(Delegate.status_changed_at).label("latest"),
        )
        .where(
            Delegate.event_id == bindparam("event_id"),
            Delegate.status == DelegateStatus.waitlisted,
            Delegate.id != all_(ours)
            if ours is not None
            else Delegate.id.not_in(bindparam("ours", expanding=True)),
        )
        .subquery()
    )
    taken = seats.confirmed_at_one().scalar_subquery()
    counts: Select[Any] = db.select(
        limit_count.scalar_subquery(), taken, waiting.c.waiting, waiting.c.latest
    )
    return counts


def _lock_and_read_again(event: Event) -> None:
    """`lock_event_seats_after_saving`, then the event as it is now (the lock is held, so nobody
    changes it until the commit)."""
    lock_event_seats_after_saving(event)
    db.session.refresh(event)


def update_delegate(delegate: Delegate, edit: DelegateEdit, *, by_the_person: bool = False) -> None:
    """Change a delegate's details or needs; the person (their email) stays the same.

    The contact record changes only when the person themselves made the change (through the link
    sent to their own address): a booker's edit is about someone else, so it stays on the place.
    """
    delegate.name, delegate.job_title, delegate.phone, delegate.needs = (
        edit.name.strip(),
        edit.job_title,
        edit.phone,
        edit.needs,
    )
    if by_the_person:
        members.confirm_addresses([delegate.contact_id])  # through the link sent to them
        delegate.contact.name = delegate.name
        delegate.contact.job_title = edit.job_title or delegate.contact.job_title
        delegate.contact.phone = edit.phone or delegate.contact.phone
    db.session.flush()


@dataclass
class NewPeople:
    """Who a booking will seat (`_new_people`): their details and normalised addresses, the
    places already held by the rest, and the seats the event's bookings held when asked."""

    details: list[DelegateDetails]
    emails: list[str]
    held: list[Delegate]
    seats_taken: int


def _new_people(
    event: Event, delegates: list[DelegateDetails], set_aside_duplicates: bool
) -> NewPeople:
    """The people to seat, and what stands in their way. The places these addresses hold and the
    seats taken are one statement: every booking asks both before it writes its places."""
    if not delegates:
        raise BookingRefused("Add at least one delegate.")
    emails = [members.normalise_email(d.email) for d in delegates]
    if len(set(emails)) != len(emails):
        raise BookingRefused("Each delegate needs their own email address.")
    rows = db.session.execute(_held_and_taken(), {"event_id": event.id, "emails": emails}).all()
    held = [row[1] for row in rows if row[1] is not None]
    if held and not set_aside_duplicates:
        raise AlreadyRegistered([place.email_normalised for place in held])
    taken = {place.email_normalised for place in held}
    fresh = [(d, e) for d, e in zip(delegates, emails, strict=True) if e not in taken]
    return NewPeople([d for d, _ in fresh], [e for _, e in fresh], held, int(rows[0][0]))


@functools.cache
def _held_and_taken() -> Select[int, Delegate]:
    """`_new_people`'s statement, made once: the seats taken at the event `event_id`, beside each
    active place held by one of `emails` (one row with no place when none is held: the places
    are joined to a row of their own)."""
    one = db.select(literal(1).label("one")).subquery()
    statement: Select[int, Delegate] = (
        db.select(seats.confirmed_at_one().scalar_subquery(), Delegate)
        .select_from(one)
        .outerjoin(
            Delegate,
            (Delegate.event_id == bindparam("event_id"))
            & Delegate.email_normalised.in_(bindparam("emails", expanding=True))
            & (Delegate.status != DelegateStatus.cancelled),
        )
        .order_by(Delegate.id)
    )
    return statement


def business_limit_message(event: Event) -> str:
    """The per-business limit, in words that say nothing about anyone's bookings."""
    places = "place" if event.business_limit == 1 else "places"
    return (
        f"Each business may book up to {event.business_limit} {places} for this event. "
        "If your business has booked already, whoever made that booking can change it with "
        "the private link we emailed them."
    )


def _check_business_limit(
    event: Event, organisation: Organisation | None, colleagues_of: str | None, adding: int
) -> None:
    # The count may include colleagues' bookings, so the message never says how many places are
    # held (or by whom): only the limit itself.
    already = (
        active_delegates_for_business(event.id, organisation.id, colleagues_of)
        if organisation
        else 0
    )
    if already + adding > event.business_limit:
        raise BookingRefused(business_limit_message(event))


def _lock_first_where_writers_queue(event: Event) -> None:
    """SQLite lets one transaction write at a time, so a booking there takes the seat lock (the
    database's write lock) before anything else, and its places are written with their final
    seats. PostgreSQL locks only the event's row, and only for the decision (`settle_seats`)."""
    if not on_postgresql():
        lock_event_seats(event)


def _place(
    event: Event,
    booking: Booking,
    people: NewPeople,
    result: BookingResult,
    now: datetime,
    set_aside_duplicates: bool,
    contacts: dict[str, Contact] | None = None,
    update_existing: bool = False,
    attempt: int = 1,
) -> None:
    """Write the new places, each with the seat it would get as things stand (seats while they
    last, then the waiting list, in the order given); `settle_seats` makes it so. `contacts` are
    the people's records by address, if the caller has them (`book`); else they are made here,
    changing the records of people we know only with `update_existing` (staff typing by hand,
    never a booking's private link, whoever's booking it is).

    The places go in with one INSERT ... ON CONFLICT DO NOTHING. Someone booked by another
    booking at the same moment is stopped by the partial unique index (invariant 2): the insert
    waits for that booking's commit and leaves their row out; they are then set aside (or
    refused, as `_new_people` decides), and whoever turns out not to be booked after all (that
    booking was rolled back, or cancelled) is placed again."""
    free = event.capacity - people.seats_taken
    if contacts is None or any(email not in contacts for email in people.emails):
        contacts = members.find_or_create_contacts(
            _typed(people.details),
            organisation=booking.organisation,
            update_existing=update_existing,
            confirmed=update_existing,  # staff's; a booker names others at addresses they chose
        )
    db.session.flush()  # the booking, for its id
    rows: list[dict[str, Any]] = []
    for details, email in zip(people.details, people.emails, strict=True):
        contact = contacts[email]
        status = DelegateStatus.confirmed if free > 0 else DelegateStatus.waitlisted
        free -= status == DelegateStatus.confirmed
        rows.append(
            {
                "booking_id": booking.id,
                "event_id": event.id,
                "contact_id": contact.id,
                "name": details.name.strip(),
                "email_normalised": email,
                "job_title": details.job_title,
                "phone": details.phone,
                "needs": details.needs,
                "status": status,
                "status_changed_at": now,
                "created_at": now,
            }
        )
    sent = {row["email_normalised"]: row for row in rows}
    written = {
        email: as_read(Delegate, {**sent[email], **_NOT_YET, "id": id})
        for id, email in db.session.execute(_places_insert(), rows)
    }
    places = [written[email] for email in people.emails if email in written]
    for place in places:
        set_committed_value(place, "contact", contacts[place.email_normalised])
    if "delegates" not in sa_inspect(booking).unloaded:  # else it is read with them when asked
        set_committed_value(booking, "delegates", [*booking.delegates, *places])
    for place in places:
        (
            result.confirmed if place.status == DelegateStatus.confirmed else result.waitlisted
        ).append(place)
    missed = [row for row in rows if row["email_normalised"] not in written]
    if missed and attempt >= PLACE_ATTEMPTS:  # held, let go and held again, again and again
        raise BookingRefused(
            "So many people are booking this event at once that we could not "
            "take your booking. Please try again in a moment."
        )
    if missed:  # booked by someone else meanwhile: see the docstring
        retry = [
            DelegateDetails(
                r["name"], r["email_normalised"], r["job_title"], r["phone"], r["needs"]
            )
            for r in missed
        ]
        again = _new_people(event, retry, set_aside_duplicates)
        result.set_aside.extend(again.held)
        if again.details:
            _place(
                event,
                booking,
                again,
                result,
                now,
                set_aside_duplicates,
                contacts,
                update_existing,
                attempt + 1,
            )


PLACE_ATTEMPTS = 3  # `_place`'s writes of a booking's places, at most


def _typed(people: list[DelegateDetails]) -> list[members.PersonTyped]:
    return [members.PersonTyped(p.email, p.name, p.job_title, p.phone) for p in people]


# `_place`'s INSERT for each kind of database (True: PostgreSQL), made once and kept.
_PLACES_INSERTS: dict[bool, Any] = {}


def _places_insert() -> Any:
    """The new places' ids and addresses come back from it (a Core INSERT: `_place` makes the
    objects, `core.written`); a person's place that conflicts with one already held is left out."""
    kind = on_postgresql()
    if kind not in _PLACES_INSERTS:
        table = Delegate.__table__
        _PLACES_INSERTS[kind] = (
            insert_or_skip(table)
            .on_conflict_do_nothing(  # only a person's active place (invariant 2): see `_place`
                index_elements=["event_id", "email_normalised"],
                index_where=text("status != 'cancelled'"),
            )
            .returning(table.c.id, table.c.email_normalised)
        )
    return _PLACES_INSERTS[kind]


# What a new place has not had yet, as `_place` writes it.
_NOT_YET = {
    "checked_in_at": None,
    "checked_in_by_id": None,
    "checkin_token_hash": None,
    "anonymised_at": None,
}


def new_manage_token(booking: Booking) -> str:
    """A fresh manage link secret for `booking`; only its hash is stored."""
    token = new_token()
    db.session.add(BookingToken(booking_id=booking.id, token_hash=hash_token(token)))
    db.session.flush()
    return token


def waitlist_position(delegate: Delegate) -> int:
    """1 for the first person waiting."""
    ahead: int = db.session.scalar(
        db.select(db.func.count(Delegate.id)).where(
            Delegate.event_id == delegate.event_id,
            Delegate.status == DelegateStatus.waitlisted,
            (Delegate.status_changed_at < delegate.status_changed_at)
            | (
                (Delegate.status_changed_at == delegate.status_changed_at)
                & (Delegate.id < delegate.id)
            ),
        )
    )
    return 1 + ahead


def gives_seats(event: Event, now: datetime | None = None) -> bool:
    """Whether a seat that appears goes to the waiting list now: the event is published and has
    not ended. A draft or cancelled event keeps its list until it is published again; after the
    event nobody is told that a place has come free."""
    return event.is_published and not event.is_past(now)


def promote_waiting(event: Event, now: datetime | None = None) -> list[Delegate]:
    """Give free seats to the people waiting longest, in order; returns them (the caller emails
    them: `registration.waitlist.fill_free_seats`). Call with the event's seats locked."""
    if not gives_seats(event, now):
        return []
    free = event.capacity - seats.confirmed_count(event.id)
    if free <= 0:
        return []
    waiting = db.session.scalars(
        db.select(Delegate)
        .where(Delegate.event_id == event.id, Delegate.status == DelegateStatus.waitlisted)
        .order_by(Delegate.status_changed_at, Delegate.id)
        .limit(free)
    ).all()
    for delegate in waiting:
        delegate.status = DelegateStatus.confirmed
        delegate.status_changed_at = now or utcnow()
    db.session.flush()
    return list(waiting)


def cancel_delegate(
    event: Event, delegate: Delegate, now: datetime | None = None
) -> list[Delegate]:
    """Cancel one delegate; their seat goes to whoever waited longest. Returns who was promoted."""
    lock_event_seats(event)
    db.session.refresh(delegate)
    if delegate.status == DelegateStatus.cancelled:
        return []
    was_confirmed = delegate.status == DelegateStatus.confirmed
    delegate.status = DelegateStatus.cancelled
    delegate.status_changed_at = now or utcnow()
    db.session.flush()
    return promote_waiting(event, now) if was_confirmed else []
