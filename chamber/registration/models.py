"""Bookings: a business books one or more delegates for an event; each delegate is confirmed,
waitlisted or cancelled, and may be checked in. The booker manages it through a private link."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.extensions import db
from chamber.members.models import Contact, Organisation


class DelegateStatus(enum.StrEnum):
    confirmed = "confirmed"
    waitlisted = "waitlisted"
    cancelled = "cancelled"


class Booking(db.Model):
    __tablename__ = "booking"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    booker_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    source: Mapped[str] = mapped_column(String(20), default="web")  # web or staff
    # What the booking said about the business, as typed ("this booking said X"): a public
    # booking never writes it over the organisation's record (docs/registration.md).
    business_as_typed: Mapped[dict] = mapped_column(JSON, default=dict)
    privacy_acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The privacy notice's version the booker was shown (0: the built-in text; None: a staff
    # booking, or one made before notices were versioned).
    privacy_notice_version: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The campaign whose email brought the booking (a layer above: declared by name).
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="SET NULL"), index=True
    )

    organisation: Mapped[Organisation] = relationship()
    booker: Mapped[Contact] = relationship()
    delegates: Mapped[list[Delegate]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="Delegate.id"
    )
    event = relationship("Event")


class BookingToken(db.Model):
    """The hash of a manage link's secret; a booking may have several (each email mints one)."""

    __tablename__ = "booking_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DelegateToken(db.Model):
    """The hash of a delegate's own place link: their place only (see, change, cancel, calendar).

    Each email to a delegate who is not the booker mints one; none is ever stored in clear."""

    __tablename__ = "delegate_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    delegate_id: Mapped[int] = mapped_column(
        ForeignKey("delegate.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delegate(db.Model):
    __tablename__ = "delegate"
    __table_args__ = (
        # One active registration per person per event (invariant 2).
        Index(
            "uq_delegate_event_id_email_active",
            "event_id",
            "email_normalised",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        # The registrations list by name, a page at a time (`staff.delegates_query`).
        Index("ix_delegate_event_id_name", "event_id", text("lower(name)"), "id"),
        # One status's delegates by name: the door's list, the printed sheets, the registrations
        # list of one status; its (event_id, status) prefix serves the counts by status.
        Index("ix_delegate_event_id_status_name", "event_id", "status", text("lower(name)"), "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    email_normalised: Mapped[str] = mapped_column(String(254))
    job_title: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    needs: Mapped[str] = mapped_column(Text, default="")  # access or dietary needs
    status: Mapped[DelegateStatus] = mapped_column(enum_type(DelegateStatus))
    # The waiting list is in the order people joined it.
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_in_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    # The QR code's secret, as a hash (the code itself is minted into the confirmation email).
    checkin_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # When retention or erasure took their name and contact details (privacy.anonymise); their
    # status and attendance stay, for the event's counts.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    booking: Mapped[Booking] = relationship(back_populates="delegates")
    contact: Mapped[Contact] = relationship()


class DelegateReminder(db.Model):
    """A reminder queued for one confirmed delegate before their event: at most one each (the
    unique delegate is the claim two workers race for; the outbox key `reminder:<event>:<delegate>`
    is the second guard)."""

    __tablename__ = "delegate_reminder"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    delegate_id: Mapped[int] = mapped_column(
        ForeignKey("delegate.id", ondelete="CASCADE"), unique=True
    )
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MessageAudience(enum.StrEnum):
    """Who a message to an event's delegates goes to."""

    confirmed = "confirmed"
    waitlisted = "waitlisted"
    checked_in = "checked_in"
    no_show = "no_show"

    @property
    def label(self) -> str:
        return {
            "confirmed": "Confirmed delegates",
            "waitlisted": "People on the waiting list",
            "checked_in": "Delegates who were checked in",
            "no_show": "Confirmed delegates who were not checked in (no-shows)",
        }[self.value]


class EventMessageStatus(enum.StrEnum):
    draft = "draft"
    sent = "sent"


class EventMessage(db.Model):
    """A message staff wrote to one audience of an event's delegates: a draft until sent, then a
    record of what went to how many, by whom and when (one outbox message per delegate)."""

    __tablename__ = "event_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    audience: Mapped[MessageAudience] = mapped_column(enum_type(MessageAudience))
    subject: Mapped[str] = mapped_column(String(150))
    body: Mapped[str] = mapped_column(Text)  # Markdown, sanitised when rendered
    status: Mapped[EventMessageStatus] = mapped_column(
        enum_type(EventMessageStatus), default=EventMessageStatus.draft
    )
    recipients: Mapped[int] = mapped_column(default=0)  # how many it was queued for
    written_by_email: Mapped[str] = mapped_column(String(254))
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    sent_by_email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_sent(self) -> bool:
        return self.status == EventMessageStatus.sent
