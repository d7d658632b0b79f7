"""Builders the tests share: times, the staff password, and bookings made through the service."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from chamber.auth.models import Role, StaffUser
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration import services
from chamber.registration.services import BookingResult, BusinessDetails, DelegateDetails

PASSWORD = "a long test password"
FAST_SCRYPT = "scrypt:1024:8:1"  # the real algorithm at a test-friendly cost

OCTREE = BusinessDetails("Octree Ltd", SizeBand.small, "IT services", "Stevenage", is_member=True)

_numbers = itertools.count(1)


def acting_staff(email: str = "acting.organiser@example.com") -> StaffUser:
    """An organiser to pass as `by=` to a staff service, made (and flushed) on first use."""
    user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == email))
    if user is None:
        user = StaffUser(email=email, name="Acting Organiser", role=Role.organiser, active=True)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.flush()
    return user


def at(days: int = 14, hour: int = 8, minute: int = 0) -> datetime:
    """A UTC time `days` from today, at a given UTC hour."""
    day = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return day + timedelta(days=days)


def make_booking(
    event: Event,
    *people: DelegateDetails | str,
    business: BusinessDetails | str = OCTREE,
    size_band: SizeBand = SizeBand.small,
    booker: DelegateDetails | None = None,
    source: str = "staff",
    checked_in: bool = False,
    commit: bool = True,
    **options,
) -> BookingResult:
    """A booking made through `registration.services.book`, as staff make one by hand.

    `people` are `DelegateDetails` or bare email addresses (named after the address); with none,
    one delegate with a fresh address. The booker is `booker`, or else the first person. `business` is the details,
    or just a name (of a business of `size_band`). `checked_in` marks the confirmed delegates as
    arrived five minutes after the start. Commits unless `commit=False`; other keywords go to
    `services.book` (`source="web"` applies the public form's rules).
    """
    if not people:
        people = (f"delegate-{next(_numbers)}@example.com",)
    delegates = [
        p if isinstance(p, DelegateDetails) else DelegateDetails(_name_of(p), p) for p in people
    ]
    if isinstance(business, str):
        business = BusinessDetails(business, size_band)
    booker = booker or delegates[0]
    result = services.book(event, business, booker, delegates, source=source, **options)
    if checked_in:
        for delegate in result.confirmed:
            delegate.checked_in_at = event.starts_at + timedelta(minutes=5)
    if commit:
        db.session.commit()
    return result


def _name_of(email: str) -> str:
    return email.split("@")[0].replace(".", " ").replace("-", " ").title()
