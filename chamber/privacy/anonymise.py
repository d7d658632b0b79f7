"""What "anonymise" means for each kind of personal data (docs/privacy.md, "Retention").

Each function takes the ids of the rows to anonymise, changes them in bulk (a few statements
however many rows), flushes and never commits; running it again on the same rows changes nothing.
What reports need stays: a delegate's status, attendance, booking and business; a booking's
business as typed; a survey response's size band, sector and member flag and every answer that
is not free text. So every count, chart and survey result reads the same before and after.

An anonymised row keeps its unique keys unique: a delegate's or contact's address becomes
`<kind>-<id>@anonymised.invalid` (the `.invalid` top-level domain can never receive mail), so the
one-active-registration-per-email index and the contacts' unique address hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, literal, update

from chamber.core.addresses import address_hash
from chamber.extensions import db
from chamber.mail.models import (
    MessageStatus,
    OutboxAttachment,
    OutboxMessage,
    UnsubscribeToken,
)
from chamber.members.models import Contact, MarketingToken
from chamber.registration.models import BookingToken, Delegate, DelegateToken
from chamber.surveys.models import Answer, Invitation

ANONYMISED = "(anonymised)"  # what pages show instead of a name
ANONYMISED_DOMAIN = "anonymised.invalid"

# Messages a worker may still send keep their address and body until they are done.
FINISHED = (
    MessageStatus.sent,
    MessageStatus.failed,
    MessageStatus.suppressed,
    MessageStatus.cancelled,
)


def placeholder_address(kind: str, row_id: int) -> str:
    """The address an anonymised row holds instead of a person's: unique, and undeliverable."""
    return f"{kind}-{row_id}@{ANONYMISED_DOMAIN}"


def is_placeholder(address: str) -> bool:
    return address.endswith("@" + ANONYMISED_DOMAIN)


def _placeholder_sql(kind: str, id_column: Any) -> Any:
    """`placeholder_address` in SQL, one statement for every row (SQLite and PostgreSQL)."""
    return literal(f"{kind}-") + cast(id_column, String) + literal(f"@{ANONYMISED_DOMAIN}")


def _rows(statement: Any) -> int:
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def anonymise_delegates(ids: Sequence[int], now: datetime) -> int:
    """Delegates lose name, address, phone, job title and needs, their place links and QR code;
    their survey invitations lose the address. Status, check-in and booking stay."""
    if not ids:
        return 0
    ids = list(ids)
    changed = _rows(
        update(Delegate)
        .where(Delegate.id.in_(ids), Delegate.anonymised_at.is_(None))
        .values(
            name=ANONYMISED,
            email_normalised=_placeholder_sql("delegate", Delegate.id),
            job_title="",
            phone="",
            needs="",
            checkin_token_hash=None,
            anonymised_at=now,
        )
    )
    _rows(delete(DelegateToken).where(DelegateToken.delegate_id.in_(ids)))
    _rows(
        update(Invitation)
        .where(Invitation.delegate_id.in_(ids))
        .values(email=_placeholder_sql("delegate", Invitation.delegate_id))
    )
    # The manage links of bookings whose every delegate is anonymised open nothing personal now.
    bookings = db.select(Delegate.booking_id).where(Delegate.id.in_(ids))
    still_named = db.select(Delegate.booking_id).where(
        Delegate.booking_id.in_(bookings), Delegate.anonymised_at.is_(None)
    )
    _rows(
        delete(BookingToken).where(
            BookingToken.booking_id.in_(bookings), BookingToken.booking_id.not_in(still_named)
        )
    )
    db.session.flush()
    return changed


def anonymise_contacts(ids: Sequence[int], now: datetime) -> int:
    """Contacts lose name, address (and with it the address's hash), phone and job title, and are
    archived, so that no marketing can choose them. Their organisation, bookings and the
    history that counts stay."""
    rows = db.session.execute(
        db.select(Contact.id, Contact.archived_at).where(
            Contact.id.in_(list(ids)), Contact.anonymised_at.is_(None)
        )
    ).all()
    if not rows:
        return 0
    ids = [contact_id for contact_id, _archived in rows]
    # Links minted for their address (unsubscribe, confirmation, preferences) go with it.
    _rows(
        delete(UnsubscribeToken).where(
            UnsubscribeToken.email.in_(db.select(Contact.email).where(Contact.id.in_(ids)))
        )
    )
    _rows(delete(MarketingToken).where(MarketingToken.contact_id.in_(ids)))
    values = []
    for contact_id, archived_at in rows:
        address = placeholder_address("contact", contact_id)
        values.append(
            {
                "id": contact_id,
                "name": ANONYMISED,
                "email": address,
                "email_hash": address_hash(address),  # as Contact keeps it (members.models)
                "job_title": "",
                "phone": "",
                "soft_opt_in_at": None,
                "address_confirmed_at": None,
                "archived_at": archived_at or now,
                "anonymised_at": now,
                "updated_at": now,
            }
        )
    db.session.execute(update(Contact), values)
    # The session's copies are stale after a bulk update by primary key.
    for contact_id, _archived in rows:
        contact = db.session.identity_map.get((Contact, (contact_id,), None))
        if contact is not None:
            db.session.expire(contact)
    db.session.flush()
    return len(rows)


def blank_needs(ids: Sequence[int]) -> int:
    """Access and dietary needs are blanked; nothing else of the delegate changes."""
    if not ids:
        return 0
    changed = _rows(
        update(Delegate).where(Delegate.id.in_(list(ids)), Delegate.needs != "").values(needs="")
    )
    db.session.flush()
    return changed


def blank_free_text(ids: Sequence[int]) -> int:
    """Free-text answers are emptied; the answer row stays, so "how many answered" is unchanged."""
    if not ids:
        return 0
    changed = _rows(
        update(Answer).where(Answer.id.in_(list(ids)), Answer.text != "").values(text="")
    )
    db.session.flush()
    return changed


def clear_messages(ids: Sequence[int]) -> int:
    """Finished outbox messages lose their bodies (or what one never rendered was about),
    attachments, recipient and error text. Their kind, status, subject, key and times stay: the
    Outbox's counts and campaign reports."""
    if not ids:
        return 0
    ids = list(ids)
    changed = _rows(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.status.in_(FINISHED))
        .values(
            to_address=_placeholder_sql("message", OutboxMessage.id),
            to_normalised=_placeholder_sql("message", OutboxMessage.id),
            to_name="",
            reply_to=None,
            text_body="",
            html_body="",
            render_with=None,
            render_params=None,
            last_error=None,
        )
    )
    finished = db.select(OutboxMessage.id).where(
        OutboxMessage.id.in_(ids), OutboxMessage.status.in_(FINISHED)
    )
    _rows(delete(OutboxAttachment).where(OutboxAttachment.message_id.in_(finished)))
    db.session.flush()
    return changed
