"""The waiting list: every seat that appears goes to the first people waiting (invariant 3).

A seat appears when a place is cancelled (by the booker, by the delegate through their own link,
or by staff), when staff raise the event's capacity, or when a draft or cancelled event is
published again. Each way gives the free seats to the people waiting longest, in order, in the
same transaction and under the event's seat lock, and queues the email telling each of them; so
two cancellations at once never give one person two seats or overfill the event, and a booking
made right after finds the event as full as before (it joins the waiting list).

Cancelling also tells the people concerned, each once: every delegate whose place is cancelled,
and the booker. When the booker cancels, one confirmation to them covers the whole action (their
own place too, if they had one); when a delegate or staff cancel, the booker is told separately.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.registration import notifications, services
from chamber.registration.models import Delegate, DelegateStatus


class CancelledBy(enum.StrEnum):
    """Who cancelled a place: it decides who is told, and how."""

    booker = "booker"  # through the manage link
    delegate = "delegate"  # through their own place link
    staff = "staff"


@dataclass
class Cancellation:
    """What one cancelling action did: each place cancelled with its status before, and who got
    the seats."""

    cancelled: list[tuple[Delegate, DelegateStatus]] = field(default_factory=list)
    promoted: list[Delegate] = field(default_factory=list)


def fill_free_seats(event: Event, now: datetime | None = None) -> list[Delegate]:
    """Give every free seat to the people waiting longest, in order, and queue the email telling
    each of them. Call with the event's seats locked. Returns who got a seat."""
    promoted = services.promote_waiting(event, now)
    for person in promoted:
        notifications.place_available(event, person)
    return promoted


def cancel_places(
    event: Event, delegates: list[Delegate], *, by: CancelledBy, now: datetime | None = None
) -> Cancellation:
    """Cancel these places (already cancelled ones are left alone), give the seats to the people
    waiting, and queue every email the action owes, one per person. Begins with the seat lock
    (a no-op if the caller holds it already); flushes, never commits."""
    services.lock_event_seats(event)
    now = now or utcnow()
    done = Cancellation()
    for delegate in delegates:
        db.session.refresh(delegate)
        was = delegate.status
        if was == DelegateStatus.cancelled:
            continue
        done.promoted += services.cancel_delegate(event, delegate, now)
        done.cancelled.append((delegate, was))
    if not done.cancelled:
        return done
    for person in done.promoted:
        notifications.place_available(event, person)
    done.promoted += fill_free_seats(event, now)  # a no-op unless a seat was free already
    _tell(event, done, by)
    return done


def _tell(event: Event, done: Cancellation, by: CancelledBy) -> None:
    booking = done.cancelled[0][0].booking
    booker_email = booking.booker.email
    for delegate, was in done.cancelled:
        if by == CancelledBy.booker and delegate.email_normalised == booker_email:
            continue  # the booker's own confirmation below covers their place
        notifications.seat_cancelled(event, delegate, was)
        if by != CancelledBy.booker:
            notifications.place_cancelled_to_booker(
                event, delegate, had_seat=was == DelegateStatus.confirmed, by=by.value
            )
    if by == CancelledBy.booker:
        notifications.places_cancelled_by_booker(event, booking, done.cancelled)


# --- a change to the event itself (receivers of `events.signals`) -------------------------------


def seats_changed(
    _app: object, *, event: Event, changed: tuple[str, ...], before: dict[str, object]
) -> None:
    """Receives `events.signals.seats_changed`: a raised capacity's new seats go to the people
    waiting. (A raised per-business limit frees no seat, since the limit counts those waiting
    too; filling is then a no-op, kept so that no change of seats is ever left unchecked.)"""
    _fill_after_saving(event)


def calendar_changed(
    _app: object, *, event: Event, changed: tuple[str, ...], before: dict[str, object]
) -> None:
    """Receives `events.signals.calendar_changed`: an event published again (from draft or
    cancelled), or moved back into the future, gives its free seats to those waiting. Connected
    after the update emails, so a person promoted here gets the one email saying so."""
    _fill_after_saving(event)


def _fill_after_saving(event: Event) -> None:
    if not services.gives_seats(event):
        return
    services.lock_event_seats_after_saving(event)
    fill_free_seats(event)
