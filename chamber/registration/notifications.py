"""The emails a booking owes, queued in the booking's own transaction.

Those to a delegate about their place and the booker's booking email are queued to be rendered
by the worker when it sends them (`mail.rendering`, registered here as "registration"): a
booking queues rows that say what each email is about and renders nothing while the visitor
waits. An email that tells of a change of the event is rendered as it is queued (`_to_delegate`,
`when_sent=False`), so that it carries that change's words and SEQUENCE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import UpdateBase
from sqlalchemy.orm import selectinload

from chamber.calendar.entries import delegate_entry
from chamber.calendar.ics import entry_to_ical, ics_filename
from chamber.core.dialects import one_of
from chamber.core.times import utcnow
from chamber.core.urls import external_url
from chamber.events.changes import describe_changes
from chamber.events.models import AgendaItem, AgendaItemSpeaker, Event
from chamber.extensions import db
from chamber.mail import links
from chamber.mail import services as mail
from chamber.mail.models import WITHDRAWN
from chamber.mail.rendering import NotSent, ToRender
from chamber.mail.services import Attachment, enqueue, normalise_address
from chamber.registration import seats, services
from chamber.registration.models import Booking, Delegate, DelegateStatus

# What a change to each calendar field is called in the update email.
CHANGE_NAMES = {
    "starts_at": "time", "ends_at": "time", "timezone": "time",
    "venue_name": "venue", "venue_address": "venue", "venue_town": "venue",
    "venue_postcode": "venue", "venue_country": "venue", "status": "status",
}  # fmt: skip


def _event_url(event: Event) -> str:
    return external_url("events.show", slug=event.slug)


def invite(event: Event, delegate: Delegate, method: str = "REQUEST") -> Attachment:
    """The delegate's calendar entry (the event's UID, them as attendee) as an iTIP message.

    REQUEST adds or updates the entry in their calendar, CANCEL removes it: see docs/calendar.md.
    """
    entry = delegate_entry(event, delegate.name, delegate.email_normalised)
    content = entry_to_ical(entry, method=method, stamp=utcnow())
    content_type = f"text/calendar; charset=utf-8; method={method}"
    return Attachment(ics_filename(event.title), content_type, content)


def own_link(delegate: Delegate) -> tuple[str, int]:
    """The link an email to this delegate carries: the whole booking's (`manage`) for the
    booker, their own place's (`place`) for anyone else, so a colleague never sees the others."""
    if delegate.email_normalised == delegate.booking.booker.email:
        return "manage", delegate.booking_id
    return "place", delegate.id


def _context(event: Event, **values: Any) -> dict[str, Any]:
    pack_url = external_url("resources.pack", slug=event.slug)
    return {"event": event, "event_url": _event_url(event), "pack_url": pack_url, **values}


# The templates under `emails/registration/` that `render` may be asked for: those this module
# queues to be rendered when sent, so that nothing stored in a row can name another template.
TEMPLATES_WHEN_SENT = frozenset(
    {"booking", "confirmed", "waitlisted", "promoted", "seat_cancelled", "manage_again"}
)
RENDERER = "registration"
# The place each of these emails tells its delegate they have. One whose place has moved on by the
# time it is due to go (a confirmation for a place cancelled meanwhile, waiting-list news for a
# place given a seat) is not sent: every move of a place queues the email that tells of it, after
# this one, and that email says what is true. (An event cancelled meanwhile is not such a move:
# it may be published again, and its own emails tell only the delegates it names.)
TELLS_PLACE = {
    "confirmed": DelegateStatus.confirmed,
    "promoted": DelegateStatus.confirmed,
    "waitlisted": DelegateStatus.waitlisted,
}
PLACE_NOW = {
    DelegateStatus.confirmed: "confirmed",
    DelegateStatus.waitlisted: "on the waiting list",
    DelegateStatus.cancelled: "cancelled",
}
INVITE_METHODS = ("REQUEST", "CANCEL")
BOOKING_LISTS = ("confirmed", "waitlisted", "set_aside")


def _to_delegate(
    delegate: Delegate,
    *,
    key: str,
    subject: str,
    template: str,
    invite_method: str | None = None,
    when_sent: bool = True,
    **context: Any,
) -> None:
    """Queue one email to a delegate about their event, from
    `chamber/templates/emails/registration/<template>`, with their calendar entry as an iTIP
    message of `invite_method` if given. `context` holds plain values (JSON), the template's
    besides the event, the delegate and their own link.

    It is rendered when it is sent (`render`), from the rows as they are then, unless
    `when_sent` is False: an email that tells of one change of the event is rendered now, so
    that its words and its calendar file's SEQUENCE are those of that change, whatever changes
    after it (invariant 6)."""
    params = {
        "template": template, "delegate": delegate.id, "invite": invite_method,
        "context": context,
    }  # fmt: skip
    if not when_sent:
        now = _about_delegate(params, delegate)
        enqueue(
            key=key, to=delegate.email_normalised, to_name=delegate.name, subject=subject,
            template=now.template, context=now.context, attachments=now.attachments,
        )  # fmt: skip
        return
    mail.enqueue_later(
        key=key,
        to=delegate.email_normalised,
        to_name=delegate.name,
        subject=subject,
        render_with=RENDERER,
        params=params,
    )


def render(messages: Sequence[dict[str, Any]]) -> list[ToRender | NotSent | None]:
    """The renderer of the emails queued by `_to_delegate` and `booking_emails` (registered as
    `RENDERER`): what each of these messages is, from the rows as they are now. The delegates,
    bookings and events of them all, with the events' agendas, are read in a fixed number of
    queries however many messages and events. None for one whose delegate or booking is gone;
    `NotSent` for news of a place that is out of date (`TELLS_PLACE`)."""
    delegate_ids: set[int] = set()
    booking_ids: set[int] = set()
    for params in messages:
        if params.get("template") not in TEMPLATES_WHEN_SENT:
            raise ValueError(f"not a template of a registration email: {params.get('template')!r}")
        if "booking" in params:
            booking_ids.add(_id(params["booking"]))
            for name in BOOKING_LISTS:
                delegate_ids.update(_id(i) for i in params.get(name, ()))
        else:
            delegate_ids.add(_id(params["delegate"]))
    delegates = _by_id(
        Delegate, delegate_ids, selectinload(Delegate.booking).selectinload(Booking.booker)
    )
    bookings = _by_id(
        Booking, booking_ids, selectinload(Booking.booker), selectinload(Booking.organisation)
    )
    events = {d.event_id for d in delegates.values()} | {b.event_id for b in bookings.values()}
    # Held while rendering: the session keeps loaded rows only while someone holds them.
    loaded = _by_id(
        Event,
        events,
        selectinload(Event.agenda_items)
        .selectinload(AgendaItem.speaker_links)
        .joinedload(AgendaItemSpeaker.speaker),
    )
    rendered = [_to_render(params, delegates, bookings) for params in messages]
    del loaded
    return rendered


def _id(value: Any) -> int:
    """An id as `render_params` holds it: an integer, nothing else (not a float, a text or a
    bool, which `int()` would take)."""
    if type(value) is not int:
        raise ValueError(f"not an id: {value!r}"[:100])
    return value


Row = TypeVar("Row", Delegate, Booking, Event)


def _by_id(model: type[Row], ids: set[int], *options: Any) -> dict[int, Row]:
    """The rows of `model` with these ids, by id, in one query (none for no ids)."""
    if not ids:
        return {}
    rows = db.session.scalars(
        db.select(model).where(one_of(model.id, sorted(ids))).options(*options)
    )
    return {row.id: row for row in rows}


def _to_render(
    params: dict[str, Any], delegates: dict[int, Delegate], bookings: dict[int, Booking]
) -> ToRender | NotSent | None:
    if "booking" in params:
        booking = bookings.get(_id(params["booking"]))
        if booking is None:
            return None
        lists = {
            name: [delegates[i] for i in map(_id, params.get(name, ())) if i in delegates]
            for name in BOOKING_LISTS
        }
        event = db.session.get_one(Event, booking.event_id)
        context = _context(event, booking=booking, result=SimpleNamespace(**lists))
        return ToRender("registration/booking", context)
    delegate = delegates.get(_id(params["delegate"]))
    if delegate is None:
        return None
    about = _about_delegate(params, delegate)  # a forged row fails here, whatever the place's state
    return _out_of_date(params["template"], delegate) or about


def _out_of_date(template: str, delegate: Delegate) -> NotSent | None:
    """Why news of a delegate's place is not to be sent now (`TELLS_PLACE`), or None."""
    told = TELLS_PLACE.get(template)
    if told is None:
        return None
    if delegate.status != told:
        return NotSent(
            f"{WITHDRAWN}out of date when it was due to go. The place is now "
            f"{PLACE_NOW[delegate.status]}, and the email about that change tells the delegate."
        )
    return None


def _about_delegate(params: dict[str, Any], delegate: Delegate) -> ToRender:
    """An email to a delegate about their place (`_to_delegate`'s params)."""
    template = f"registration/{params['template']}"
    event = db.session.get_one(Event, delegate.event_id)
    method = params.get("invite")
    if method is not None and method not in INVITE_METHODS:
        raise ValueError(f"not a calendar method: {method!r}"[:100])
    extra = params.get("context") or {}
    if not isinstance(extra, dict):
        raise ValueError("the template's values are not a JSON object")
    return ToRender(
        template,
        _context(event, **extra, delegate=delegate, own_link=own_link(delegate)),
        (invite(event, delegate, method),) if method else (),
    )


def booking_emails(event: Event, result: services.BookingResult) -> None:
    """Confirmation or waiting-list news for each delegate, and the manage link for the booker.

    Each person set aside (they already had a place) is told so, with their own link; if
    nobody was booked, there is no booking for the booker to manage and no email to the booker.
    """
    delegate_emails(event, result)
    booking = result.booking
    if booking is None:
        return
    mail.enqueue_later(
        key=f"booking:{booking.id}",
        to=booking.booker.email,
        to_name=booking.booker.name,
        subject=f"Your booking for {event.title}",
        render_with=RENDERER,
        params={
            "template": "booking",
            "booking": booking.id,
            **{name: [d.id for d in getattr(result, name)] for name in BOOKING_LISTS},
        },
    )


def settle_and_tell(
    event: Event,
    result: services.BookingResult,
    tell: Callable[[Event, services.BookingResult], None],
) -> None:
    """Decide a booking's seats (`services.settle_seats`) with its emails (`tell`: `booking_emails`
    or `delegate_emails`) queued before, so that the seat lock is held for the decision, not for
    inserting them. A place in the waiting list, which only the lock can say, is queued as a
    placeholder in what the email is about and filled in with the decision's own writes. If a
    seat came out other than it was written, the queued emails are withdrawn and queued again
    under the lock. With nothing to decide (everyone named already had a place), the emails are
    simply queued."""
    if result.unsettled is None:
        tell(event, result)
        return
    marks = {delegate.id: mail.placeholder("waiting-list-place") for delegate in result.waitlisted}
    result.positions = dict(marks)
    with mail.composed_only() as emails:
        tell(event, result)
    queued = list(mail.queued(emails).values())

    def fill_in(settled: services.BookingResult) -> UpdateBase | None:
        if not marks or not queued:
            return None
        return mail.filling_in(
            queued, {mark: str(settled.positions[id]) for id, mark in marks.items()}
        )

    if services.settle_seats(result, also=fill_in):  # sets the real places in `result.positions`
        mail.withdraw(queued)
        with mail.composed_only() as emails:
            tell(event, result)
        mail.queue_composed(emails)


def delegate_emails(event: Event, result: services.BookingResult) -> None:
    """A confirmation for each newly confirmed delegate, waiting-list news for the others."""
    for delegate in result.confirmed:
        confirmation(event, delegate)
    for place in result.set_aside:
        already_booked(event, place)
    for delegate in result.waitlisted:
        _to_delegate(
            delegate,
            key=f"waitlisted:delegate:{delegate.id}",
            subject=f"You are on the waiting list: {event.title}",
            template="waitlisted",
            position=result.positions.get(delegate.id) or services.waitlist_position(delegate),
        )


def confirmation(event: Event, delegate: Delegate, *, key_suffix: str = "") -> None:
    _to_delegate(
        delegate,
        key=f"confirmed:delegate:{delegate.id}{key_suffix}",
        subject=f"Your place at {event.title}",
        template="confirmed",
        invite_method="REQUEST",
    )


def place_available(event: Event, delegate: Delegate) -> None:
    _to_delegate(
        delegate,
        key=f"promoted:delegate:{delegate.id}:{delegate.status_changed_at:%Y%m%d%H%M%S%f}",
        subject=f"Good news: you now have a place at {event.title}",
        template="promoted",
        invite_method="REQUEST",
    )


def seat_cancelled(event: Event, delegate: Delegate, was: DelegateStatus) -> None:
    """Tell a delegate their place (or waiting-list place) is cancelled; a confirmed delegate's
    calendar entry is withdrawn with a CANCEL for its UID."""
    if was == DelegateStatus.cancelled:
        return
    had_seat = was == DelegateStatus.confirmed
    _to_delegate(
        delegate,
        key=f"seat-cancelled:delegate:{delegate.id}",
        subject=f"Cancelled: your place at {event.title}",
        template="seat_cancelled",
        invite_method="CANCEL" if had_seat else None,
        had_seat=had_seat,
    )


def _delegates(event: Event, *statuses: DelegateStatus) -> list[Delegate]:
    """The event's delegates of `statuses`, with their bookings' bookers (each email's own link
    asks who booked), in a fixed number of queries."""
    return list(
        db.session.scalars(
            db.select(Delegate)
            .where(Delegate.event_id == event.id, Delegate.status.in_(statuses))
            .order_by(Delegate.id)
            .options(selectinload(Delegate.booking).selectinload(Booking.booker))
        )
    )


def event_changed(
    _app: object, *, event: Event, changed: tuple[str, ...], before: dict[str, object]
) -> None:
    """Receives `events.signals.calendar_changed`: one email per confirmed delegate for each
    change of time, place or status (one SEQUENCE).

    A published event's delegates get the updated entry (REQUEST); a cancelled event's get a
    CANCEL, and those waiting are told too. A draft has no audience.
    """
    if event.is_draft:
        return
    what = sorted({CHANGE_NAMES[field] for field in changed})
    if event.is_cancelled:
        subject, template, method = f"Cancelled: {event.title}", "event_cancelled", "CANCEL"
    else:
        subject, template, method = f"Changed: {event.title}", "event_updated", "REQUEST"
    changes = describe_changes(event, before)  # in words, old and new, in the event's zone
    told = _delegates(
        event,
        DelegateStatus.confirmed,
        # Those waiting had no calendar entry, but should know the event is off.
        *((DelegateStatus.waitlisted,) if event.is_cancelled else ()),
    )
    # Written now, queued together: one INSERT for the messages and one for their calendar files
    # (a chunk at a time), however many delegates are told.
    with mail.composed_only() as emails:
        for delegate in told:
            waiting = delegate.status == DelegateStatus.waitlisted
            _to_delegate(
                delegate,
                key=f"event-update:{event.id}:{event.sequence}:delegate:{delegate.id}",
                subject=subject,
                template=template,
                invite_method=None if waiting else method,
                when_sent=False,  # this change's words and SEQUENCE, whatever comes after it
                changed=what,
                changes=changes,
                waiting=waiting,
            )
    mail.queue_composed(emails)


def confirmed_count(_app: object, *, event: Event) -> int:
    """Receives `events.signals.calendar_audience`: delegates a change of time or place would
    email, the confirmed ones."""
    return seats.confirmed_count(event.id)


def already_booked(event: Event, place: Delegate) -> None:
    """Someone named this person in a booking, but they already hold `place`: tell them, with
    their own link (the booking's if they booked it), at most once an hour. Whoever typed the
    address is told only that we emailed it."""
    _to_delegate(
        place,
        key=f"already-booked:delegate:{place.id}:{utcnow():%Y%m%d%H}",
        subject=f"Your place at {event.title}",
        template="manage_again",
    )


def place_cancelled_to_booker(
    event: Event, delegate: Delegate, *, had_seat: bool, by: str = "delegate"
) -> None:
    """Tell the booker that a place on their booking was cancelled, by the delegate themselves
    (`by="delegate"`) or by staff (`by="staff"`). Not if the place was the booker's own: the
    cancellation they get already says so."""
    booking = delegate.booking
    if delegate.email_normalised == booking.booker.email:
        return
    enqueue(
        key=f"place-cancelled:booker:delegate:{delegate.id}:"
        f"{delegate.status_changed_at:%Y%m%d%H%M%S%f}",
        to=booking.booker.email,
        to_name=booking.booker.name,
        subject=f"A place on your booking was cancelled: {event.title}",
        template="registration/place_cancelled",
        context=_context(event, booking=booking, delegate=delegate, had_seat=had_seat, by=by),
    )


def places_cancelled_by_booker(
    event: Event, booking: Booking, cancelled: list[tuple[Delegate, DelegateStatus]]
) -> None:
    """The booker's one confirmation of what they cancelled through the manage link: every place,
    theirs included (with a calendar CANCEL for their own entry if they had a seat)."""
    booker = booking.booker
    own = next(
        (
            (delegate, was)
            for delegate, was in cancelled
            if delegate.email_normalised == booker.email
        ),
        None,
    )
    attachments = []
    if own is not None and own[1] == DelegateStatus.confirmed:
        attachments.append(invite(event, own[0], "CANCEL"))
    stamp = max(delegate.status_changed_at for delegate, _was in cancelled)
    enqueue(
        key=f"places-cancelled:booking:{booking.id}:{stamp:%Y%m%d%H%M%S%f}",
        to=booker.email,
        to_name=booker.name,
        subject=f"Cancelled: your place at {event.title}"
        if [own] == cancelled
        else f"Cancelled: places on your booking for {event.title}",
        template="registration/places_cancelled",
        context=_context(
            event,
            booking=booking,
            cancelled=[(delegate, was == DelegateStatus.confirmed) for delegate, was in cancelled],
            own_seat_cancelled=bool(attachments),
            everything=all(d.status == DelegateStatus.cancelled for d in booking.delegates),
        ),
        attachments=attachments,
    )


def manage_url(token: str) -> str:
    return external_url("registration.manage", token=token)


def _mint_manage_link(recipient: str, ref: str) -> str:
    """A manage link for booking `ref`, only if the message goes to that booking's booker."""
    if not ref.isdigit():
        raise links.LinkRefused(f"a manage link needs a booking's number, not {ref[:20]!r}")
    booking = db.session.get(Booking, int(ref))
    if booking is None:  # erased since the email was queued: a link that leads nowhere
        return manage_url("gone")
    if normalise_address(recipient) != normalise_address(booking.booker.email):
        raise links.LinkRefused(f"booking {ref}'s manage link is not for this recipient")
    token = services.new_manage_token(booking)
    return manage_url(token)
