"""Checking delegates in at the door: finding them, the counts in the room, and the QR code's secret.

The QR code in a confirmation email opens `/staff/checkin/scan/<token>`. The token is minted when
the email is sent (a `checkin` link, see chamber.mail.links) and only its hash is kept on the
delegate; minting again replaces it, so the newest email's code is the one that works.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, literal, union_all, update

from chamber.auth import audit
from chamber.auth.models import Role, StaffUser
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.urls import external_url
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.members import services as members
from chamber.members.models import Organisation, SizeBand
from chamber.registration import link_owners, services, staff
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.registration.seats import holds_a_seat

log = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 100
MAX_TERMS = 5


class CheckInRefused(Refusal):
    """This delegate cannot be checked in; the message says why, for the person at the door."""


@dataclass(frozen=True)
class DoorCounts:
    checked_in: int
    confirmed: int
    businesses: int  # distinct businesses with someone checked in


@dataclass(frozen=True)
class DoorRow:
    """One delegate as the door list shows them."""

    delegate: Delegate
    business: str
    checked_in_by: str | None


# --- the events at the door ----------------------------------------------------------------------


def door_events(now: datetime | None = None) -> tuple[list[Event], list[Event]]:
    """Published events taking place today (in each event's own zone) and those still to come."""
    now = now or utcnow()
    candidates = db.session.scalars(
        db.select(Event)
        .where(Event.status == EventStatus.published, Event.ends_at > now - timedelta(days=1))
        .order_by(Event.starts_at, Event.id)
        .limit(50)
    ).all()
    today = [event for event in candidates if happening_today(event, now)]
    upcoming = [event for event in candidates if event not in today and event.starts_at > now]
    return today, upcoming


def happening_today(event: Event, now: datetime | None = None) -> bool:
    """Whether today, in the event's own zone, is one of its days."""
    local_today = event.local(now or utcnow()).date()
    return event.local_start.date() <= local_today <= event.local_end.date()


# --- who may use the door for what ---------------------------------------------------------------
# A door volunteer (the checkin role) works only the events on today: published, and today in the
# event's own zone is one of its days. Drafts, past and future events, and attendance history are
# for organisers and admins, who may use the door for any event.


def sees_every_event(user: StaffUser) -> bool:
    return user.role != Role.checkin


def door_refusal(user: StaffUser, event: Event, now: datetime | None = None) -> str | None:
    """Why this user may not use the door for this event, in words for them; None if they may."""
    if sees_every_event(user):
        return None
    if event.status != EventStatus.published:
        return "This event is not open for check-in."
    if happening_today(event, now):
        return None
    if event.starts_at > (now or utcnow()):
        return "Check-in for this event opens on the day it takes place."
    return "This event has taken place, so its check-in is closed. An organiser can see who came."


def undo_refusal(
    user: StaffUser, event: Event, delegate: Delegate, now: datetime | None = None
) -> str | None:
    """A door volunteer may take back only a check-in made today (in the event's zone)."""
    if sees_every_event(user) or delegate.checked_in_at is None:
        return None
    if event.local(delegate.checked_in_at).date() == event.local(now or utcnow()).date():
        return None
    return f"{delegate.name} was checked in on an earlier day; only an organiser can undo that."


# --- reading -------------------------------------------------------------------------------------


def door_counts(event_id: int) -> DoorCounts:
    """People checked in, people confirmed and businesses in the room, in one query: the people
    from the delegate's own rows; the businesses from the bookings of those checked in only."""
    seated = (Delegate.event_id == event_id, holds_a_seat())
    in_the_room = db.select(Delegate.booking_id).where(*seated, Delegate.checked_in_at.is_not(None))
    businesses = (
        db.select(db.func.count(db.distinct(Booking.organisation_id)))
        .where(Booking.event_id == event_id, Booking.id.in_(in_the_room))
        .scalar_subquery()
    )
    row = db.session.execute(
        db.select(
            db.func.count(Delegate.checked_in_at), db.func.count(Delegate.id), businesses
        ).where(*seated)
    ).one()
    return DoorCounts(checked_in=row[0], confirmed=row[1], businesses=row[2])


def clean_query(query: str | None) -> str:
    """The search as typed, made safe to run: no NUL (PostgreSQL refuses it), not too long."""
    return " ".join((query or "").replace("\x00", "").split())[:MAX_QUERY_LENGTH]


# The door lists the confirmed first, then those waiting, then the cancelled, each by name.
DOOR_ORDER = (DelegateStatus.confirmed, DelegateStatus.waitlisted, DelegateStatus.cancelled)


def find_delegates(event_id: int, query: str, limit: int = 50) -> tuple[list[DoorRow], int]:
    """Delegates whose name, email or business contains every word of `query` (any case; % and _
    match themselves). Confirmed first, then by name. Returns up to `limit` rows and the total.

    Two queries whatever the event's size: the total, and the rows. The rows are the first
    `limit` of each status by name, read in that order from `ix_delegate_event_id_status_name`
    (without a search, `limit` index entries each), and only the `limit` shown are joined to their
    business and to who checked them in."""
    conditions = [Delegate.event_id == event_id]
    for term in clean_query(query).split()[:MAX_TERMS]:
        conditions.append(staff.text_matches(event_id, term))
    total = db.session.scalar(db.select(db.func.count(Delegate.id)).where(*conditions))
    name = db.func.lower(Delegate.name)
    firsts = [
        db.select(Delegate.id.label("id"), literal(rank).label("rank"), name.label("sort_name"))
        .where(*conditions, Delegate.status == status)
        .order_by(name, Delegate.id)
        .limit(limit)
        .subquery()  # SQLite takes ORDER BY and LIMIT in a subquery, not in a UNION's arm
        for rank, status in enumerate(DOOR_ORDER)
    ]
    shown = union_all(*(db.select(first) for first in firsts)).subquery()
    rows = db.session.execute(
        db.select(Delegate, Organisation.name, StaffUser.name)
        .join(shown, shown.c.id == Delegate.id)
        .join(Booking, Booking.id == Delegate.booking_id)
        .join(Organisation, Organisation.id == Booking.organisation_id)
        .outerjoin(StaffUser, StaffUser.id == Delegate.checked_in_by_id)
        .order_by(shown.c.rank, shown.c.sort_name, Delegate.id)
        .limit(limit)
    ).all()
    return [DoorRow(delegate, business, by) for delegate, business, by in rows], total


def delegate_for_checkin_token(token: str) -> Delegate | None:
    if not token or len(token) > 100:
        return None
    delegate: Delegate | None = db.session.scalar(
        db.select(Delegate).where(Delegate.checkin_token_hash == hash_token(token))
    )
    return delegate


def business_name(delegate: Delegate) -> str:
    name: str = db.session.scalar(
        db.select(Organisation.name)
        .join(Booking, Booking.organisation_id == Organisation.id)
        .where(Booking.id == delegate.booking_id)
    )
    return name


def refusal(delegate: Delegate) -> str | None:
    """Why this delegate cannot be checked in, in words for the door; None if they can."""
    if delegate.status == DelegateStatus.waitlisted:
        return (
            f"{delegate.name} is on the waiting list, not confirmed, so cannot be checked in. "
            "Ask an organiser whether a place is free."
        )
    if delegate.status == DelegateStatus.cancelled:
        return f"{delegate.name}'s place was cancelled, so they cannot be checked in."
    return None


# --- changing ------------------------------------------------------------------------------------


def check_in(delegate: Delegate, *, by: StaffUser, now: datetime | None = None) -> bool:
    """Mark a confirmed delegate as arrived. False if they already were (two volunteers tapping
    at once both succeed, and the first time is kept). Raises CheckInRefused if not confirmed.
    Flushes, never commits."""
    now = now or utcnow()
    result = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(Delegate)
            .where(
                Delegate.id == delegate.id,
                Delegate.status == DelegateStatus.confirmed,
                Delegate.checked_in_at.is_(None),
            )
            .values(checked_in_at=now, checked_in_by_id=by.id)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(delegate)
    if result.rowcount:
        if delegate.contact_id is not None:  # they came: the address they booked with is theirs
            # (at the check-in's own time, so that undoing it can take this back: `undo_check_in`)
            members.confirm_addresses([delegate.contact_id], now)
        return True
    if problem := refusal(delegate):
        raise CheckInRefused(problem)
    return False


def undo_check_in(delegate: Delegate, *, by: StaffUser) -> bool:
    """Take back a check-in made by mistake (recorded in the audit trail, with who). False if they
    were not checked in. An address the check-in confirmed (the person, as it seemed, came) is
    unconfirmed again: it was someone else at the door."""
    checked_in_at = delegate.checked_in_at
    result = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(Delegate)
            .where(Delegate.id == delegate.id, Delegate.checked_in_at.is_not(None))
            .values(checked_in_at=None, checked_in_by_id=None)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(delegate)
    if not result.rowcount:
        return False
    if delegate.contact_id is not None and checked_in_at is not None:
        members.unconfirm_address(delegate.contact_id, checked_in_at)
    audit.record("check_in_undone", kind="delegate", object_id=delegate.id,
                 detail=f"event {delegate.event_id}", by=by)  # fmt: skip
    return True


# --- the QR code's secret ------------------------------------------------------------------------


def scan_url(token: str) -> str:
    return external_url("checkin.scan", token=token)


def new_checkin_token(delegate: Delegate) -> str:
    """A fresh secret for `delegate`'s QR code; only its hash is stored, replacing any earlier one."""
    token = new_token()
    delegate.checkin_token_hash = hash_token(token)
    db.session.flush()
    return token


def _mint_checkin_link(recipient: str, ref: str) -> str:
    """The QR code's link for delegate `ref`, only if the message goes to that delegate."""
    delegate = link_owners.delegate_for(recipient, ref, "check-in")
    return scan_url(new_checkin_token(delegate) if delegate is not None else "gone")


# --- walk-ins ------------------------------------------------------------------------------------


class EventFull(CheckInRefused):
    """No seat is free, so a walk-in cannot be admitted."""


def walk_in(
    event: Event,
    *,
    name: str,
    email: str,
    business: str,
    size_band: SizeBand | None,
    by: StaffUser,
) -> Delegate:
    """Book someone who turned up without a place and check them in, in one transaction: through
    the staff booking (its seat lock, capacity and per-business limit, and the confirmation email
    with their own link). A walk-in takes a free seat or nothing: with none free they are not
    added (invariant 1: confirmed delegates never exceed capacity; a seat that frees goes to the
    waiting list first, invariant 3). Raises CheckInRefused (EventFull), BookingRefused or
    AlreadyRegistered; the caller's request undoes what was done. Flushes, never commits."""
    known = members.find_organisation(business)
    band = known.size_band if known is not None else size_band
    if band is None:
        raise CheckInRefused(
            "We have not met this business before: choose how many people it employs.",
            field="size_band",
        )
    person = services.DelegateDetails(name=name, email=email)
    details = services.BusinessDetails(business, band)
    # The door adds a place; it never changes the directory's record of someone we know or of
    # their business (a door volunteer may not, and what is typed in a queue is not checked).
    result = staff.book_by_hand(event, details, person, [person], by=by, update_records=False)
    if not result.confirmed:
        raise EventFull(
            f"The event is full ({event.capacity} of {event.capacity} places taken), so "
            f"{name} was not added. An organiser can raise the capacity, or cancel the place of "
            "someone who has not come (the first person waiting then takes that seat)."
        )
    delegate = result.confirmed[0]
    check_in(delegate, by=by)
    log.info("%s added walk-in delegate %s at event %s", by.email, delegate.id, event.id)
    return delegate


# --- the printed sheets ----------------------------------------------------------------------------


def printable_delegates(event_id: int) -> list[DoorRow]:
    """Every confirmed delegate with their business, by name: the badges and the sign-in sheet
    (one query)."""
    rows = db.session.execute(
        db.select(Delegate, Organisation.name)
        .join(Booking, Booking.id == Delegate.booking_id)
        .join(Organisation, Organisation.id == Booking.organisation_id)
        .where(Delegate.event_id == event_id, Delegate.status == DelegateStatus.confirmed)
        .order_by(db.func.lower(Delegate.name), Delegate.id)
    ).all()
    return [DoorRow(delegate, business, None) for delegate, business in rows]
