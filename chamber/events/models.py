"""Events, speakers and agenda items. Times are aware UTC; each event names the zone it is shown in."""

from __future__ import annotations

import enum
from datetime import datetime, time

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.core.times import UTCDateTime, utc_to_local, utcnow
from chamber.core.types import enum_type
from chamber.events.places import address_lines, one_line
from chamber.extensions import db


class EventStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    cancelled = "cancelled"


class AgendaKind(enum.StrEnum):
    welcome = "welcome"
    talk = "talk"
    panel = "panel"
    break_ = "break"
    networking = "networking"
    close = "close"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Event(db.Model):
    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("business_limit >= 1", name="business_limit_positive"),
        CheckConstraint(
            "reminder_days_before >= 0 AND reminder_days_before <= 28",
            name="reminder_days_before_in_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    venue_name: Mapped[str] = mapped_column(String(200), default="")
    venue_address: Mapped[str] = mapped_column(String(500), default="")  # the street address
    venue_town: Mapped[str] = mapped_column(String(120), default="")
    venue_postcode: Mapped[str] = mapped_column(String(20), default="")
    venue_country: Mapped[str] = mapped_column(String(2), default="GB")  # ISO 3166-1 alpha-2
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The start a published event was announced with, while it is rescheduled (else None).
    previous_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(default=0)
    business_limit: Mapped[int] = mapped_column(default=3)
    registration_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    registration_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    host: Mapped[str] = mapped_column(String(200), default="")
    supporters: Mapped[str] = mapped_column(String(1000), default="")  # one per line
    # Joining details: what a delegate needs on the day (Markdown, sanitised when shown). Not
    # calendar fields: changing them raises no SEQUENCE and emails nobody.
    parking: Mapped[str] = mapped_column(Text, default="")
    access: Mapped[str] = mapped_column(Text, default="")  # step-free access, lifts, hearing loop
    what_to_bring: Mapped[str] = mapped_column(Text, default="")
    # The reminder to confirmed delegates: `reminder_days_before` days before the start, at
    # `reminder_time` on the clock of the event's zone (registration.reminders sends it).
    reminder_enabled: Mapped[bool] = mapped_column(default=True)
    reminder_days_before: Mapped[int] = mapped_column(default=2)
    reminder_time: Mapped[time] = mapped_column(Time(), default=time(9, 0))
    status: Mapped[EventStatus] = mapped_column(
        enum_type(EventStatus), default=EventStatus.draft, index=True
    )
    # Rises with every change of time, place or status (RFC 5545 SEQUENCE).
    sequence: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    agenda_items: Mapped[list[AgendaItem]] = relationship(
        back_populates="event",
        cascade="all, delete-orphan",
        order_by="(AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)",
    )

    @property
    def is_published(self) -> bool:
        return self.status == EventStatus.published

    @property
    def is_cancelled(self) -> bool:
        return self.status == EventStatus.cancelled

    @property
    def is_draft(self) -> bool:
        return self.status == EventStatus.draft

    def is_past(self, now: datetime | None = None) -> bool:
        return self.ends_at <= (now or utcnow())

    def local(self, moment: datetime) -> datetime:
        return utc_to_local(moment, self.timezone)

    @property
    def local_start(self) -> datetime:
        return self.local(self.starts_at)

    @property
    def local_end(self) -> datetime:
        return self.local(self.ends_at)

    @property
    def is_rescheduled(self) -> bool:
        return self.previous_starts_at is not None and self.previous_starts_at != self.starts_at

    @property
    def address_lines(self) -> list[str]:
        """The venue's postal address, a line each: street lines, town and postcode, and the
        country when it is not the chamber's own (the default)."""
        return address_lines(
            self.venue_address, self.venue_town, self.venue_postcode, self.venue_country
        )

    @property
    def location_text(self) -> str:
        """The venue's name and full address on one line, for calendars and emails."""
        return one_line(self.venue_name, self.address_lines)

    @property
    def has_joining_details(self) -> bool:
        return bool(self.parking or self.access or self.what_to_bring)

    @property
    def supporter_list(self) -> list[str]:
        return [line.strip() for line in self.supporters.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"<Event {self.slug}>"


class Speaker(db.Model):
    __tablename__ = "speaker"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    job_title: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    bio: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(254))  # private: never shown publicly
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def byline(self) -> str:
        return ", ".join(part for part in (self.job_title, self.organisation) if part)

    def __repr__(self) -> str:
        return f"<Speaker {self.name}>"


class AgendaItem(db.Model):
    __tablename__ = "agenda_item"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    position: Mapped[int] = mapped_column(default=0)  # breaks ties between items at the same time
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[AgendaKind] = mapped_column(enum_type(AgendaKind), default=AgendaKind.talk)

    event: Mapped[Event] = relationship(back_populates="agenda_items")
    speaker_links: Mapped[list[AgendaItemSpeaker]] = relationship(
        back_populates="agenda_item",
        cascade="all, delete-orphan",
        order_by="AgendaItemSpeaker.position",
    )

    @property
    def speakers(self) -> list[Speaker]:
        return [link.speaker for link in self.speaker_links]

    @property
    def local_start(self) -> datetime:
        return self.event.local(self.starts_at)

    @property
    def local_end(self) -> datetime:
        return self.event.local(self.ends_at)


class AgendaItemSpeaker(db.Model):
    """A speaker on an agenda item, in the order staff chose (two people may present one talk)."""

    __tablename__ = "agenda_item_speaker"
    __table_args__ = (UniqueConstraint("agenda_item_id", "speaker_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda_item_id: Mapped[int] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="CASCADE"), index=True
    )
    speaker_id: Mapped[int] = mapped_column(
        ForeignKey("speaker.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)

    agenda_item: Mapped[AgendaItem] = relationship(back_populates="speaker_links")
    speaker: Mapped[Speaker] = relationship()
