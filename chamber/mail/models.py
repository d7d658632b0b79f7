"""The outbox: every email the system owes, written in the transaction that owes it."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, false, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from chamber.core.addresses import address_hash
from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.extensions import db


class MailKind(enum.StrEnum):
    transactional = "transactional"  # confirmations, updates: sent even to suppressed addresses
    marketing = "marketing"  # news of future events: never to a suppressed address
    survey = "survey"  # follow-up surveys: as marketing, never to a suppressed address

    @property
    def respects_suppression(self) -> bool:
        return self is not MailKind.transactional


class MessageStatus(enum.StrEnum):
    pending = "pending"  # waiting for its next attempt
    sending = "sending"  # claimed by a worker until its lease runs out
    sent = "sent"
    failed = "failed"  # parked after a permanent failure or too many attempts
    suppressed = "suppressed"  # not sent: the address unsubscribed from this kind of mail
    cancelled = "cancelled"  # not sent: staff cancelled it


# A held message (`services.hold_messages`: a campaign paused) stays pending, due at this time,
# which never comes; `services.release_messages` makes it due now again.
HELD_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
# How the reason of a message Chamber withdrew rather than sent begins (`rendering.NotSent`): no
# other reason begins so (delivery's own begin "Not sent: ", and stay when staff cancel).
WITHDRAWN = "Withdrawn: "


def _normalised_to_address(context: DefaultExecutionContext) -> str:
    return str(context.get_current_parameters()["to_address"]).strip().lower()


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (
        # The Outbox page of one status, newest first, and its count (benchmarks/scale.py).
        Index("ix_outbox_message_status_id", "status", "id"),
        # The Outbox's search: the messages to an address, or to addresses that start with a text.
        Index("ix_outbox_message_to_normalised_id", "to_normalised", "id"),
        # The staff home page: the failed mail to each upcoming event's delegates.
        Index("ix_outbox_message_status_to_normalised", "status", "to_normalised"),
        # The claim: the due messages of one stream (transactional first, then bulk), oldest first;
        # the health check's backlog, and what is due.
        Index("ix_outbox_message_stream_due", "status", "bulk", "next_attempt_at"),
        # The bulk rate limit: the bulk messages claimed in the last minute. Bulk rows only, so
        # claiming and sending transactional mail never writes to it.
        Index(
            "ix_outbox_message_bulk_claimed_at",
            "claimed_at",
            sqlite_where=text("bulk IS 1"),
            postgresql_where=text("bulk IS true"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Enqueueing the same key twice is a no-op: e.g. "confirmation:delegate:42".
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[MailKind] = mapped_column(enum_type(MailKind))
    # Bulk mail (a campaign) is claimed after every due transactional message, within
    # CHAMBER_BULK_PER_MINUTE; the rest is not bulk, whatever its kind.
    bulk: Mapped[bool] = mapped_column(default=False, server_default=false())
    status: Mapped[MessageStatus] = mapped_column(
        enum_type(MessageStatus), default=MessageStatus.pending
    )
    to_address: Mapped[str] = mapped_column(String(254))
    # The address as `services.normalise_address` leaves it (trimmed, lower case), filled on insert.
    # Compared in code-point order ("C" on PostgreSQL, SQLite's own), so that a range of it is the
    # addresses that start with a text, whatever the database's collation.
    to_normalised: Mapped[str] = mapped_column(
        String(254).with_variant(String(254, collation="C"), "postgresql"),
        default=_normalised_to_address,
    )
    to_name: Mapped[str] = mapped_column(String(200), default="")
    reply_to: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    # Empty until rendered: a message queued with `render_with` is rendered by the worker that
    # claims it (`mail.rendering`), which then writes its bodies and attachments here.
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # The registered renderer that writes this message when it is sent, and what it is about (a
    # JSON object of ids and plain values, never a body); both emptied once it is rendered.
    render_with: Mapped[str | None] = mapped_column(String(100))
    render_params: Mapped[str | None] = mapped_column(Text)
    # Fixed when enqueued, so every retry carries the same Message-ID and receivers can de-duplicate.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    # Only link markers that carry this value are minted (mail.links): none typed by a person can.
    link_nonce: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When a worker last claimed it (the bulk rate limit counts the last minute's).
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    attachments: Mapped[list[OutboxAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="OutboxAttachment.position"
    )

    @property
    def not_sent_reason(self) -> str | None:
        """Why a message Chamber withdrew rather than sent was not sent (`rendering.NotSent`:
        what it was about is gone, or its news was out of date), for the Outbox; None for the
        rest, a message staff cancelled among them (its last error stays an error)."""
        reason = self.last_error or ""
        if self.status == MessageStatus.cancelled and reason.startswith(WITHDRAWN):
            return reason
        return None

    @property
    def can_retry(self) -> bool:
        return self.status in (MessageStatus.failed, MessageStatus.cancelled)

    @property
    def can_cancel(self) -> bool:
        return self.status in (MessageStatus.pending, MessageStatus.failed) or self.is_stuck

    @property
    def is_held(self) -> bool:
        """Held back by `services.hold_messages` (a paused campaign) until released."""
        return self.status == MessageStatus.pending and self.next_attempt_at >= HELD_UNTIL

    @property
    def is_stuck(self) -> bool:
        """Claimed by a worker whose lease ran out: it died, and no worker has taken it since."""
        return (
            self.status == MessageStatus.sending
            and self.lease_until is not None
            and self.lease_until < utcnow()
        )


class OutboxAttachment(db.Model):
    __tablename__ = "outbox_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    filename: Mapped[str] = mapped_column(String(200))
    # The full type with parameters, e.g. "text/calendar; charset=utf-8; method=REQUEST".
    content_type: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary)

    message: Mapped[OutboxMessage] = relationship(back_populates="attachments")


def _hash_of_address(context: DefaultExecutionContext) -> str:
    return address_hash(str(context.get_current_parameters()["email"]))


class Suppression(db.Model):
    """An address that gets no more marketing or survey mail: it unsubscribed (reason
    "unsubscribe"), or a mail server refused it for good (reason "bounce", with the server's
    answer in `detail`), or the person was erased (reason "erased").

    Every check looks it up by `email_hash` (`core.addresses.address_hash`); an erased person's
    row keeps only the hash, its `email` and `detail` emptied (docs/privacy.md, "Erasure")."""

    __tablename__ = "suppression"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)  # lower-cased
    email_hash: Mapped[str] = mapped_column(String(64), unique=True, default=_hash_of_address)
    reason: Mapped[str] = mapped_column(String(40), default="unsubscribe")
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @validates("email")
    def _keep_email_hash(self, _key: str, email: str | None) -> str | None:
        if email is not None:
            self.email_hash = address_hash(email)
        return email


class UnsubscribeToken(db.Model):
    """The hash of an unsubscribe link's secret, minted when a message is sent."""

    __tablename__ = "unsubscribe_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
