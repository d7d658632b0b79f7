"""The emails a booking owes, queued in the booking's own transaction."""

from __future__ import annotations

from flask import current_app

from chamber.calendar.entries import calendar_entry
from chamber.calendar.ics import entry_to_ical
from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail import links
from chamber.mail.services import Attachment, enqueue
from chamber.registration import services
from chamber.registration.models import Booking, Delegate


def _event_url(event: Event) -> str:
    return f"{current_app.config['BASE_URL']}/events/{event.slug}"


def _ics(event: Event) -> Attachment:
    content = entry_to_ical(calendar_entry(event), method="PUBLISH", stamp=utcnow())
    return Attachment("event.ics", "text/calendar; charset=utf-8; method=PUBLISH", content)


def _context(event: Event, **values) -> dict:
    return {"event": event, "event_url": _event_url(event), **values}


def booking_emails(event: Event, result: services.BookingResult) -> None:
    """Confirmation or waiting-list news for each delegate, and the manage link for the booker."""
    delegate_emails(event, result)
    booking = result.booking
    enqueue(
        key=f"booking:{booking.id}",
        to=booking.booker.email,
        to_name=booking.booker.name,
        subject=f"Your booking for {event.title}",
        template="registration/booking",
        context=_context(event, booking=booking, result=result),
    )


def delegate_emails(event: Event, result: services.BookingResult) -> None:
    """A confirmation for each newly confirmed delegate, waiting-list news for the others."""
    ics = _ics(event) if result.confirmed else None  # one file for every delegate in the booking
    for delegate in result.confirmed:
        confirmation(event, delegate, ics=ics)
    for delegate in result.waitlisted:
        enqueue(
            key=f"waitlisted:delegate:{delegate.id}",
            to=delegate.email_normalised,
            to_name=delegate.name,
            subject=f"You are on the waiting list: {event.title}",
            template="registration/waitlisted",
            context=_context(
                event, delegate=delegate, position=services.waitlist_position(delegate)
            ),
        )


def confirmation(
    event: Event, delegate: Delegate, *, key_suffix: str = "", ics: Attachment | None = None
) -> None:
    enqueue(
        key=f"confirmed:delegate:{delegate.id}{key_suffix}",
        to=delegate.email_normalised,
        to_name=delegate.name,
        subject=f"Your place at {event.title}",
        template="registration/confirmed",
        context=_context(event, delegate=delegate),
        attachments=[ics or _ics(event)],
    )


def place_available(event: Event, delegate: Delegate) -> None:
    enqueue(
        key=f"promoted:delegate:{delegate.id}:{delegate.status_changed_at:%Y%m%d%H%M%S%f}",
        to=delegate.email_normalised,
        to_name=delegate.name,
        subject=f"Good news: you now have a place at {event.title}",
        template="registration/promoted",
        context=_context(event, delegate=delegate),
        attachments=[_ics(event)],
    )


def manage_link_again(event: Event, booking: Booking, address: str) -> None:
    """A fresh manage link to someone who tried to book again (at most one an hour)."""
    enqueue(
        key=f"manage-again:{booking.id}:{address}:{utcnow():%Y%m%d%H}",
        to=address,
        subject=f"Your booking for {event.title}",
        template="registration/manage_again",
        context=_context(event, booking_id=booking.id),
    )


def _mint_manage_link(recipient: str, ref: str) -> str:
    booking = db.session.get(Booking, int(ref))
    token = services.new_manage_token(booking)
    return f"{current_app.config['BASE_URL']}/r/{token}"


links.register_link_minter("manage", _mint_manage_link)
