"""Messages staff write to an event's delegates: confirmed, waiting, checked in or no-shows.

A service message about the person's own booking (transactional: no marketing consent needed). A
message is a draft until sent; sending claims the draft with one conditional UPDATE, so a double
submit (or two staff at once) queues it once, and each delegate's copy has the outbox key
`event-message:<message>:<delegate>`. The body is Markdown staff typed: rendered and sanitised,
never a template, and link markers in it stay text (`mail.links`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import selectinload

from chamber.auth.models import StaffUser
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.core.urls import external_url
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.links import describe_links
from chamber.registration.models import (
    Booking,
    Delegate,
    DelegateStatus,
    EventMessage,
    EventMessageStatus,
    MessageAudience,
)
from chamber.registration.notifications import own_link

log = logging.getLogger(__name__)

TEMPLATE = "registration/event_message"


class MessageRefused(Refusal):
    """A message that cannot be sent as it stands; the message says why."""


@dataclass(frozen=True)
class MessageDraft:
    audience: MessageAudience
    subject: str
    body: str


def _audience_filter(audience: MessageAudience) -> list[Any]:
    """Who `audience` is; never a place anonymised (by retention or an erasure), which has only a
    made-up address."""
    held = Delegate.anonymised_at.is_(None)
    if audience == MessageAudience.waitlisted:
        return [Delegate.status == DelegateStatus.waitlisted, held]
    confirmed = Delegate.status == DelegateStatus.confirmed
    if audience == MessageAudience.checked_in:
        return [confirmed, held, Delegate.checked_in_at.is_not(None)]
    if audience == MessageAudience.no_show:
        return [confirmed, held, Delegate.checked_in_at.is_(None)]
    return [confirmed, held]


def recipients(event_id: int, audience: MessageAudience) -> list[Delegate]:
    return list(
        db.session.scalars(
            db.select(Delegate)
            .where(Delegate.event_id == event_id, *_audience_filter(audience))
            .order_by(Delegate.id)
            .options(selectinload(Delegate.booking).selectinload(Booking.booker))
        )
    )


def audience_count(event_id: int, audience: MessageAudience) -> int:
    return int(
        db.session.scalar(
            db.select(db.func.count(Delegate.id)).where(
                Delegate.event_id == event_id, *_audience_filter(audience)
            )
        )
        or 0
    )


def audience_counts(event_id: int) -> dict[MessageAudience, int]:
    """How many each audience reaches now, in one query."""
    counted = [
        db.func.count(Delegate.id).filter(*_audience_filter(audience))
        for audience in MessageAudience
    ]
    numbers = db.session.execute(db.select(*counted).where(Delegate.event_id == event_id)).one()
    return dict(zip(MessageAudience, numbers, strict=True))


def first_recipient(event_id: int, audience: MessageAudience) -> Delegate | None:
    first: Delegate | None = db.session.scalar(
        db.select(Delegate)
        .where(Delegate.event_id == event_id, *_audience_filter(audience))
        .order_by(Delegate.id)
        .limit(1)
    )
    return first


def messages_for(event_id: int) -> list[EventMessage]:
    """The event's messages, newest first (drafts among them)."""
    return list(
        db.session.scalars(
            db.select(EventMessage)
            .where(EventMessage.event_id == event_id)
            .order_by(EventMessage.created_at.desc(), EventMessage.id.desc())
        )
    )


def message_in_event(event: Event, message_id: int) -> EventMessage | None:
    message = db.session.get(EventMessage, message_id)
    if message is None or message.event_id != event.id:
        return None  # another event's message is not found through this event
    return message


def save_draft(
    event: Event, message: EventMessage | None, draft: MessageDraft, *, by: StaffUser
) -> EventMessage:
    if message is not None and message.is_sent:
        raise MessageRefused("This message has been sent: it can no longer change.")
    if message is None:
        message = EventMessage(event_id=event.id, written_by_email=by.email)
        db.session.add(message)
    message.audience = draft.audience
    message.subject = draft.subject
    message.body = draft.body
    db.session.flush()
    return message


def discard_draft(message: EventMessage) -> None:
    if message.is_sent:
        raise MessageRefused("This message has been sent: it stays on the event's record.")
    db.session.delete(message)
    db.session.flush()


def _context(
    event: Event, message: EventMessage, delegate: Delegate | None, test: bool
) -> dict[str, Any]:
    return {
        "event": event,
        "message": message,
        "delegate": delegate,
        "own_link": own_link(delegate) if delegate is not None else None,
        "test": test,
        "event_url": external_url("events.show", slug=event.slug),
    }


def _enqueue(
    event: Event,
    message: EventMessage,
    *,
    key: str,
    to: str,
    to_name: str,
    subject: str,
    delegate: Delegate | None,
    test: bool = False,
) -> bool:
    return mail.enqueue(
        key=key,
        to=to,
        to_name=to_name,
        subject=subject,
        template=TEMPLATE,
        context=_context(event, message, delegate, test),
    )


@dataclass(frozen=True)
class Preview:
    """A message as one recipient will see it, its private links named, not minted."""

    recipient: Delegate | None
    subject: str
    text: str
    html: str


def preview(event: Event, message: EventMessage) -> Preview:
    """The message as its audience's first recipient will get it (their name, their link by
    name); rendered, never queued."""
    delegate = first_recipient(event.id, message.audience)
    with mail.composed_only() as held:
        _enqueue(
            event,
            message,
            key="preview",
            to=delegate.email_normalised if delegate else "preview@example.invalid",
            to_name=delegate.name if delegate else "",
            subject=message.subject,
            delegate=delegate,
        )
    row = held[0].row
    nonce = row["link_nonce"]
    return Preview(
        delegate,
        row["subject"],
        describe_links(row["text_body"], nonce),
        describe_links(row["html_body"], nonce),
    )


def send_test(event: Event, message: EventMessage, *, to: StaffUser) -> None:
    """Email the message to the staff user asking, as its first recipient would see it but with
    no private link (a link belongs to its own recipient)."""
    delegate = first_recipient(event.id, message.audience)
    _enqueue(
        event,
        message,
        key=f"event-message-test:{message.id}:{to.id}:{utcnow():%Y%m%d%H%M%S%f}",
        to=to.email,
        to_name=to.name,
        subject=f"[Test] {message.subject}",
        delegate=delegate,
        test=True,
    )


def send(event: Event, message: EventMessage, *, expected: int, by: StaffUser) -> int:
    """Send the draft to its audience as it is now: one email per delegate. `expected` is the
    count staff confirmed; if the audience changed since, nothing is sent and MessageRefused
    says so. Claims the draft with one conditional UPDATE: a second submit finds it sent and
    queues nothing. Flushes, never commits. Returns how many were queued."""
    people = recipients(event.id, message.audience)
    if not people:
        raise MessageRefused("No one is in this audience now, so there is no one to send it to.")
    if len(people) != expected:
        raise MessageRefused(
            f"The audience changed while you were checking: it is now {len(people)} "
            f"(you confirmed {expected}). Check it again and send.",
            field="expected",
        )
    now = utcnow()
    claimed = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(EventMessage)
            .where(EventMessage.id == message.id, EventMessage.status == EventMessageStatus.draft)
            .values(
                status=EventMessageStatus.sent,
                sent_at=now,
                sent_by_id=by.id,
                sent_by_email=by.email,
                recipients=len(people),
            )
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(message)
    if not claimed.rowcount:
        raise MessageRefused("This message has already been sent.")
    queued = 0
    for delegate in people:
        queued += _enqueue(
            event,
            message,
            key=f"event-message:{message.id}:{delegate.id}",
            to=delegate.email_normalised,
            to_name=delegate.name,
            subject=message.subject,
            delegate=delegate,
        )
    log.info("%s sent message %s of event %s to %s", by.email, message.id, event.id, queued)
    return queued
