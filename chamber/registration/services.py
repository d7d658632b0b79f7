"""Booking seats: the capacity rule, the per-business limit, the waiting list, cancellations.

Every change to an event's seats starts by locking the event (`lock_event_seats`): on PostgreSQL
the event's row, on SQLite the database's write lock. Only then are seats counted, so two
bookings at once can never both take the last seat (invariant 1), and a cancelled seat goes to
the first person waiting in the same transaction (invariant 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update

from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.members import services as members
from chamber.members.models import SizeBand
from chamber.registration.models import Booking, BookingToken, Delegate, DelegateStatus


class BookingRefused(ValueError):
    """The booking cannot be taken at all; the message says why."""


class AlreadyRegistered(ValueError):
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
class BusinessDetails:
    name: str
    size_band: SizeBand
    sector: str = ""
    town_or_postcode: str = ""
    is_member: bool = False


@dataclass
class BookingResult:
    booking: Booking
    confirmed: list[Delegate] = field(default_factory=list)
    waitlisted: list[Delegate] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------------


def confirmed_count(event_id: int) -> int:
    return db.session.scalar(
        db.select(db.func.count(Delegate.id)).where(
            Delegate.event_id == event_id, Delegate.status == DelegateStatus.confirmed
        )
    )


def seats_left(event: Event) -> int:
    return max(0, event.capacity - confirmed_count(event.id))


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


def active_delegates_for_business(event_id: int, organisation_id: int) -> int:
    return db.session.scalar(
        db.select(db.func.count(Delegate.id))
        .join(Booking, Booking.id == Delegate.booking_id)
        .where(
            Delegate.event_id == event_id,
            Booking.organisation_id == organisation_id,
            Delegate.status != DelegateStatus.cancelled,
        )
    )


def registered_emails(event_id: int, emails: list[str]) -> list[str]:
    return list(
        db.session.scalars(
            db.select(Delegate.email_normalised).where(
                Delegate.event_id == event_id,
                Delegate.email_normalised.in_(emails),
                Delegate.status != DelegateStatus.cancelled,
            )
        )
    )


def booking_for_token(token: str) -> Booking | None:
    if not token or len(token) > 100:
        return None
    return db.session.scalar(
        db.select(Booking).join(BookingToken).where(BookingToken.token_hash == hash_token(token))
    )


# --- changing seats ------------------------------------------------------------------------------


def lock_event_seats(event: Event) -> None:
    """Serialise seat changes for one event. Must be the transaction's first write."""
    db.session.execute(
        update(Event)
        .where(Event.id == event.id)
        .values(updated_at=Event.updated_at)  # a write that changes nothing, for its lock
        .execution_options(synchronize_session=False)
    )


def book(
    event: Event,
    business: BusinessDetails,
    booker: DelegateDetails,
    delegates: list[DelegateDetails],
    *,
    source: str = "web",
    privacy_acknowledged: bool = True,
    consent_wording: str | None = None,
    now: datetime | None = None,
) -> BookingResult:
    """Book `delegates` for a business: seats while they last, then the waiting list, in order.

    Raises BookingRefused (closed, limit) or AlreadyRegistered (someone already holds a place).
    Flushes, never commits; the caller commits once.
    """
    lock_event_seats(event)
    now = now or utcnow()
    if source == "web" and (problem := registration_problem(event, now)):
        raise BookingRefused(problem)
    emails = _check_new_people(event, delegates)
    organisation = members.find_or_create_organisation(
        name=business.name,
        size_band=business.size_band,
        sector=business.sector,
        town_or_postcode=business.town_or_postcode,
        is_member=business.is_member,
    )
    _check_business_limit(event, organisation, len(delegates))
    booker_contact = members.find_or_create_contact(
        email=booker.email,
        name=booker.name,
        organisation=organisation,
        job_title=booker.job_title,
        phone=booker.phone,
    )
    if consent_wording:
        members.record_consent(booker_contact, consent_wording)
    booking = Booking(
        event_id=event.id,
        organisation=organisation,
        booker=booker_contact,
        source=source,
        privacy_acknowledged_at=now if privacy_acknowledged else None,
        created_at=now,
    )
    db.session.add(booking)
    result = BookingResult(booking)
    _seat(event, booking, delegates, emails, result, now)
    return result


def add_delegates(
    event: Event, booking: Booking, delegates: list[DelegateDetails], now: datetime | None = None
) -> BookingResult:
    """More delegates on an existing booking, within the same limits as a new booking."""
    lock_event_seats(event)
    now = now or utcnow()
    if problem := registration_problem(event, now):
        raise BookingRefused(problem)
    emails = _check_new_people(event, delegates)
    _check_business_limit(event, booking.organisation, len(delegates))
    result = BookingResult(booking)
    _seat(event, booking, delegates, emails, result, now)
    return result


def update_delegate(
    delegate: Delegate, *, name: str, job_title: str, phone: str, needs: str
) -> None:
    """Change a delegate's details or needs; the person (their email) stays the same."""
    delegate.name, delegate.job_title, delegate.phone, delegate.needs = (
        name.strip(),
        job_title,
        phone,
        needs,
    )
    delegate.contact.name = delegate.name
    db.session.flush()


def _check_new_people(event: Event, delegates: list[DelegateDetails]) -> list[str]:
    if not delegates:
        raise BookingRefused("Add at least one delegate.")
    emails = [members.normalise_email(d.email) for d in delegates]
    if len(set(emails)) != len(emails):
        raise BookingRefused("Each delegate needs their own email address.")
    taken = registered_emails(event.id, emails)
    if taken:
        raise AlreadyRegistered(taken)
    return emails


def _check_business_limit(event: Event, organisation, adding: int) -> None:
    already = active_delegates_for_business(event.id, organisation.id)
    if already + adding > event.business_limit:
        left = max(0, event.business_limit - already)
        raise BookingRefused(
            f"Each business can book up to {event.business_limit} delegates for this event"
            + (
                f"; {organisation.name} already has {already}, so you can add {left} more."
                if already
                else "."
            )
        )


def _seat(
    event: Event,
    booking: Booking,
    delegates: list[DelegateDetails],
    emails: list[str],
    result: BookingResult,
    now: datetime,
) -> None:
    """Seats while they last, then the waiting list, in the order given. Seats must be locked."""
    free = event.capacity - confirmed_count(event.id)
    for details, email in zip(delegates, emails, strict=True):
        contact = members.find_or_create_contact(
            email=email,
            name=details.name,
            organisation=booking.organisation,
            job_title=details.job_title,
            phone=details.phone,
        )
        status = DelegateStatus.confirmed if free > 0 else DelegateStatus.waitlisted
        free -= status == DelegateStatus.confirmed
        delegate = Delegate(
            booking=booking,
            event_id=event.id,
            contact=contact,
            name=details.name.strip(),
            email_normalised=email,
            job_title=details.job_title,
            phone=details.phone,
            needs=details.needs,
            status=status,
            status_changed_at=now,
            created_at=now,
        )
        db.session.add(delegate)
        (result.confirmed if status == DelegateStatus.confirmed else result.waitlisted).append(
            delegate
        )
    db.session.flush()


def new_manage_token(booking: Booking) -> str:
    """A fresh manage link secret for `booking`; only its hash is stored."""
    token = new_token()
    db.session.add(BookingToken(booking_id=booking.id, token_hash=hash_token(token)))
    db.session.flush()
    return token


def waitlist_position(delegate: Delegate) -> int:
    """1 for the first person waiting."""
    return 1 + db.session.scalar(
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


def promote_waiting(event: Event, now: datetime | None = None) -> list[Delegate]:
    """Give free seats to the people waiting longest. Call with the event's seats locked."""
    free = event.capacity - confirmed_count(event.id)
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
