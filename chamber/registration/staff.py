"""What staff do with an event's registrations: count them, find delegates, promote, cancel,
resend a confirmation, book by hand and export. Functions flush and never commit; the acting
staff user is passed in as `by`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from chamber.auth.models import StaffUser
from chamber.core.dialects import folded
from chamber.core.errors import Refusal
from chamber.core.text import fold
from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members.models import Organisation, SizeBand
from chamber.registration import notifications, seats, services, waitlist
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.registration.seats import holds_a_seat

log = logging.getLogger(__name__)

SEARCH_MAX = 200
SORTS = ("name", "business", "booked", "status")


class StaffActionRefused(Refusal):
    """The action cannot be done to this delegate now; the message says why, for staff."""


# --- counting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Delegates by status, and the businesses behind them, for one event or one group in it."""

    confirmed: int = 0
    waitlisted: int = 0
    cancelled: int = 0
    checked_in: int = 0
    businesses: int = 0  # with a confirmed or waiting delegate
    businesses_attended: int = 0  # with a delegate checked in


@dataclass(frozen=True)
class RegistrationCounts:
    total: Tally
    by_size_band: dict[SizeBand, Tally] = field(default_factory=dict)
    by_membership: dict[bool, Tally] = field(default_factory=dict)  # True: Chamber members


def _tallies(event_id: int, *group: Any) -> dict[Any, Tally]:
    """One aggregate query: a Tally per value of the `group` columns (of the business), keyed by a
    tuple of their values (or {None: total} without them).

    The event's delegates are summed per booking first, on the delegate's own rows; only those
    sums (one row a booking, about half as many as delegates) are joined to the booking and its
    business (benchmarks/scale.py: half the time of joining every delegate)."""
    active = Delegate.status != DelegateStatus.cancelled
    attended = and_(active, Delegate.checked_in_at.is_not(None))

    def how_many(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((condition, 1), else_=0))

    per_booking = (
        select(
            Delegate.booking_id.label("booking_id"),
            how_many(holds_a_seat()).label("seated"),
            how_many(Delegate.status == DelegateStatus.waitlisted).label("waiting"),
            how_many(Delegate.status == DelegateStatus.cancelled).label("cancelled"),
            how_many(attended).label("attended"),
            how_many(active).label("active"),
        )
        .where(Delegate.event_id == event_id)
        .group_by(Delegate.booking_id)
        .subquery()
    )
    business = Booking.organisation_id
    query = (
        db.select(
            *group,
            func.coalesce(func.sum(per_booking.c.seated), 0),
            func.coalesce(func.sum(per_booking.c.waiting), 0),
            func.coalesce(func.sum(per_booking.c.cancelled), 0),
            func.coalesce(func.sum(per_booking.c.attended), 0),
            func.count(distinct(case((per_booking.c.active > 0, business)))),
            func.count(distinct(case((per_booking.c.attended > 0, business)))),
        )
        .select_from(per_booking)
        .join(Booking, Booking.id == per_booking.c.booking_id)
        # The booking's event too, though it is the delegate's: it lets PostgreSQL read only this
        # event's bookings (by index) rather than all of them.
        .where(Booking.event_id == event_id)
    )
    if group:
        query = query.join(Organisation, Organisation.id == Booking.organisation_id).group_by(
            *group
        )
    tallies: dict[Any, Tally] = {}
    for row in db.session.execute(query):
        key, numbers = (tuple(row[: len(group)]), row[len(group) :]) if group else (None, row)
        tallies[key] = Tally(*(int(n or 0) for n in numbers))
    return tallies


def event_totals(event_id: int) -> Tally:
    return _tallies(event_id).get(None, Tally())


def registration_counts(event_id: int) -> RegistrationCounts:
    """The numbers at the top of the registrations page, in one GROUP BY query whatever the size.

    Each business has one size band and is a member or not, so it sits in exactly one (band,
    member) cell: the distinct businesses of the cells add up, as the delegates do, to the totals
    by band, by membership and overall."""
    cells = _tallies(event_id, Organisation.size_band, Organisation.is_member)
    bands = {band: _sum(t for (b, _), t in cells.items() if b == band) for band in SizeBand}
    members = {flag: _sum(t for (_, m), t in cells.items() if m == flag) for flag in (True, False)}
    return RegistrationCounts(total=_sum(cells.values()), by_size_band=bands, by_membership=members)


def _sum(tallies: Iterable[Tally]) -> Tally:
    return Tally(*(sum(numbers) for numbers in zip(*(astuple(t) for t in tallies), strict=True)))


# --- finding delegates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DelegateFilters:
    search: str = ""
    status: DelegateStatus | None = None
    size_band: SizeBand | None = None
    member: bool | None = None
    sort: str = "name"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> DelegateFilters:
        """Read from a query string; an unknown value means no filter, never an error."""
        # PostgreSQL cannot take a NUL in text, and nobody types one: drop it.
        search = " ".join(args.get("q", "").replace("\x00", "").split())[:SEARCH_MAX]
        asked = args.get("status", "")
        band = args.get("band", "")
        member = args.get("member", "")
        status = DelegateStatus(asked) if asked in DelegateStatus.__members__ else None
        default_sort = cls.default_sort_for(status)
        sort = args.get("sort", default_sort)
        return cls(
            search=search,
            status=status,
            size_band=SizeBand(band) if band in SizeBand.__members__ else None,
            member={"yes": True, "no": False}.get(member),
            sort=sort if sort in SORTS else default_sort,
        )

    @staticmethod
    def default_sort_for(status: DelegateStatus | None) -> str:
        # The waiting list on its own reads best in its own order.
        return "status" if status == DelegateStatus.waitlisted else "name"

    def as_args(self) -> dict[str, str]:
        """The filters as query-string values, for links that keep them (pages, sorting)."""
        values = {
            "q": self.search,
            "status": self.status.value if self.status else "",
            "band": self.size_band.value if self.size_band else "",
            "member": "" if self.member is None else ("yes" if self.member else "no"),
            "sort": self.sort if self.sort != self.default_sort_for(self.status) else "",
        }
        return {key: value for key, value in values.items() if value}

    @property
    def active(self) -> bool:
        return any((self.search, self.status, self.size_band, self.member is not None))


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_matches(event_id: int, text: str) -> ColumnElement[bool]:
    """The event's delegates whose name, email or business contains `text`, in any case (% and _
    match themselves), and for the name without regard to accents ("olcer" finds "Ölçer", as a
    volunteer types on a phone): a condition on the delegate's own row, so a list filters, sorts
    and pages its delegates before it joins anything.

    The name is `folded` (`lower(unaccent(name))` on PostgreSQL) against the folded text. The
    business is `lower(column) LIKE lower(text)`, as SQLAlchemy writes ILIKE on SQLite (on
    PostgreSQL ILIKE costs twice as much a row, benchmarks/scale.py, 5,000 delegates), a look-up
    of the event's bookings whose business matches (through the trigram index of `lower(name)`),
    rather than a join of every delegate to its business. The email is stored in lower case."""
    pattern = func.lower(_like_pattern(text))
    by_name = _like_pattern(fold(text) or "")
    businesses = (
        select(Booking.id)
        .join(Organisation, Organisation.id == Booking.organisation_id)
        .where(
            Booking.event_id == event_id, func.lower(Organisation.name).like(pattern, escape="\\")
        )
    )
    return or_(
        folded(Delegate.name).like(by_name, escape="\\"),
        Delegate.email_normalised.like(pattern, escape="\\"),
        Delegate.booking_id.in_(businesses),
    )


STATUS_ORDER = case(
    (Delegate.status == DelegateStatus.confirmed, 0),
    (Delegate.status == DelegateStatus.waitlisted, 1),
    else_=2,
)


def delegates_query(event_id: int, filters: DelegateFilters | None = None) -> Select[Any]:
    """The event's delegates, filtered and sorted, with their booking and business loaded.

    Every filter is a condition on the delegate's own row (the business's size and membership
    through a look-up of the event's bookings), so a page of the list is found, by name through
    `ix_delegate_event_id_name` or `ix_delegate_event_id_status_name`, before anything is joined:
    the page's bookings and businesses are loaded afterwards in one more query. Only the order by
    business joins every delegate to it (benchmarks/scale.py)."""
    filters = filters or DelegateFilters()
    query = (
        select(Delegate)
        .where(Delegate.event_id == event_id)
        .options(selectinload(Delegate.booking).joinedload(Booking.organisation, innerjoin=True))
    )
    if filters.search:
        query = query.where(text_matches(event_id, filters.search))
    if filters.status is not None:
        query = query.where(Delegate.status == filters.status)
    if filters.size_band is not None or filters.member is not None:
        businesses = (
            select(Booking.id)
            .join(Organisation, Organisation.id == Booking.organisation_id)
            .where(Booking.event_id == event_id)
        )
        if filters.size_band is not None:
            businesses = businesses.where(Organisation.size_band == filters.size_band)
        if filters.member is not None:
            businesses = businesses.where(Organisation.is_member.is_(filters.member))
        query = query.where(Delegate.booking_id.in_(businesses))
    name = func.lower(Delegate.name)
    if filters.sort == "business":
        booking, business = aliased(Booking), aliased(Organisation)
        query = query.join(  # the booking's event too: this event's bookings, by index
            booking, and_(booking.id == Delegate.booking_id, booking.event_id == event_id)
        ).join(business, business.id == booking.organisation_id)
        order: tuple[Any, ...] = (func.lower(business.name), name)
    else:
        order = {
            "name": (name,),
            "booked": (Delegate.created_at,),
            # Confirmed, then the waiting list in its order, then cancelled.
            "status": (STATUS_ORDER, Delegate.status_changed_at),
        }[filters.sort]
    return query.order_by(*order, Delegate.id)


def waitlist_positions(event_id: int, delegate_ids: list[int] | None = None) -> dict[int, int]:
    """Waiting-list places (1 is next in line) in one query, for some delegates or all of them.

    The same order as services.waitlist_position: by when they joined the list, then by id.
    """
    ranked = (
        db.select(
            Delegate.id.label("delegate_id"),
            func.row_number()
            .over(order_by=(Delegate.status_changed_at, Delegate.id))
            .label("position"),
        )
        .where(Delegate.event_id == event_id, Delegate.status == DelegateStatus.waitlisted)
        .subquery()
    )
    query = db.select(ranked.c.delegate_id, ranked.c.position)
    if delegate_ids is not None:
        if not delegate_ids:
            return {}
        query = query.where(ranked.c.delegate_id.in_(delegate_ids))
    return {delegate_id: position for delegate_id, position in db.session.execute(query)}


def delegate_in_event(event: Event, delegate_id: int) -> Delegate | None:
    """The delegate, if they belong to this event (another event's delegate is not found)."""
    found: Delegate | None = db.session.scalar(
        db.select(Delegate).where(Delegate.id == delegate_id, Delegate.event_id == event.id)
    )
    return found


def first_waiting(event_id: int) -> Delegate | None:
    found: Delegate | None = db.session.scalar(
        db.select(Delegate)
        .where(Delegate.event_id == event_id, Delegate.status == DelegateStatus.waitlisted)
        .order_by(Delegate.status_changed_at, Delegate.id)
        .limit(1)
    )
    return found


# --- changing seats (each starts with the seat lock) ---------------------------------------------


OVER_NO_BOOKINGS = "The event is over, so it takes no more bookings."


def may_change(event: Event, delegate: Delegate, now: datetime | None = None) -> str | None:
    """Why staff may not promote, cancel or email the place (None: they may). An event that is
    over keeps its places as they were (its attendance is a record), and an anonymised place
    (retention or an erasure) has nobody to email, only a made-up address."""
    if delegate.anonymised_at is not None:
        return (
            "This place's details were anonymised (by retention or an erasure), so there is "
            "nobody to email and it stays as it is."
        )
    if event.is_past(now):
        return (
            "The event is over, so its places stay as they were: they are the record of who "
            "was booked and who came."
        )
    return None


def _refuse_unless_changeable(event: Event, delegate: Delegate, now: datetime | None) -> None:
    if (reason := may_change(event, delegate, now)) is not None:
        raise StaffActionRefused(reason)


def promote(
    event: Event, delegate: Delegate, *, by: StaffUser, now: datetime | None = None
) -> None:
    """Give a waiting delegate a seat, if one is free, and tell them by email.

    Staff may choose anyone on the list, not only the first; they may not go over capacity (to
    let someone in anyway, raise the event's capacity first).
    """
    services.lock_event_seats(event)
    db.session.refresh(delegate)
    _refuse_unless_changeable(event, delegate, now)
    if delegate.status != DelegateStatus.waitlisted:
        raise StaffActionRefused(
            f"{delegate.name} is not on the waiting list (their place is {delegate.status.value})."
        )
    confirmed = seats.confirmed_count(event.id)
    if confirmed >= event.capacity:
        raise StaffActionRefused(
            f"No seat is free: {confirmed} of {event.capacity} places are taken, so "
            f"{delegate.name} stays on the waiting list. To let them in anyway, raise the "
            "event's capacity (Edit details), then promote them."
        )
    delegate.status = DelegateStatus.confirmed
    delegate.status_changed_at = now or utcnow()
    db.session.flush()
    notifications.place_available(event, delegate)
    log.info("%s promoted delegate %s at event %s", by.email, delegate.id, event.id)


def cancel(
    event: Event, delegate: Delegate, *, by: StaffUser, now: datetime | None = None
) -> list[Delegate]:
    """Cancel a delegate's place; a freed seat goes to the first person waiting, who is emailed.
    The delegate is emailed the cancellation, and the booker (if someone else) is told.

    Returns who was promoted."""
    services.lock_event_seats(event)
    db.session.refresh(delegate)
    _refuse_unless_changeable(event, delegate, now)
    if delegate.status == DelegateStatus.cancelled:
        raise StaffActionRefused(f"{delegate.name}'s place was already cancelled.")
    promoted = waitlist.cancel_places(
        event, [delegate], by=waitlist.CancelledBy.staff, now=now
    ).promoted
    log.info("%s cancelled delegate %s at event %s", by.email, delegate.id, event.id)
    return promoted


def resend_confirmation(event: Event, delegate: Delegate, *, by: StaffUser) -> None:
    """A fresh copy of the confirmation email (a new message, not a retry of the old one)."""
    _refuse_unless_changeable(event, delegate, None)
    if delegate.status != DelegateStatus.confirmed:
        raise StaffActionRefused(
            f"{delegate.name} has no confirmed place, so there is no confirmation to send."
        )
    notifications.confirmation(
        event, delegate, key_suffix=f":resent:{utcnow():%Y%m%d%H%M%S}:{secrets.token_hex(4)}"
    )
    db.session.flush()
    log.info("%s resent the confirmation to delegate %s", by.email, delegate.id)


def book_by_hand(
    event: Event,
    business: services.BusinessDetails,
    booker: services.DelegateDetails,
    delegates: list[services.DelegateDetails],
    *,
    by: StaffUser,
    update_records: bool = True,
) -> services.BookingResult:
    """A booking taken by staff (by phone, say): the registration window does not apply, the
    capacity and per-business limits do, and everyone gets the same emails as booking online.
    What staff type updates the directory's records of the business and the people, unless
    `update_records` is False.

    Raises services.BookingRefused or services.AlreadyRegistered, as services.book does.
    """
    if event.is_cancelled:
        raise services.BookingRefused("This event has been cancelled, so it takes no bookings.")
    if event.is_past():
        raise services.BookingRefused(OVER_NO_BOOKINGS)
    result = services.book(
        event,
        business,
        booker,
        delegates,
        source="staff",
        privacy_acknowledged=False,
        update_records=update_records,
    )
    notifications.booking_emails(event, result)
    db.session.flush()
    log.info("%s booked %s delegates by hand at event %s", by.email, len(delegates), event.id)
    return result


# --- export ---------------------------------------------------------------------------------------


def export_header(event: Event) -> tuple[str, ...]:
    return (
        "Name", "Email", "Job title", "Phone", "Access or dietary needs", "Business", "Size band",
        "Sector", "Town or postcode", "Chamber member", "Status", "Waiting list position",
        f"Booked at ({event.timezone})", f"Checked in at ({event.timezone})",
    )  # fmt: skip


def export_rows(event: Event) -> list[tuple[object, ...]]:
    """Every delegate of the event, for the CSV file: times in the event's own zone."""

    def local(moment: datetime | None) -> str:
        return f"{event.local(moment):%Y-%m-%d %H:%M}" if moment else ""

    positions = waitlist_positions(event.id)
    rows: list[tuple[object, ...]] = []
    for d in db.session.scalars(delegates_query(event.id, DelegateFilters(sort="status"))):
        business = d.booking.organisation
        rows.append((
            d.name, d.email_normalised, d.job_title, d.phone, d.needs, business.name,
            business.size_band.label, business.sector, business.town_or_postcode,
            "Yes" if business.is_member else "No", d.status.value.capitalize(),
            positions.get(d.id, ""), local(d.created_at), local(d.checked_in_at),
        ))  # fmt: skip
    return rows
