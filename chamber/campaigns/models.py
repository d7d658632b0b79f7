"""Campaigns: a composed message sent to a saved segment through the outbox, and who it went to
(or why each person the segment matched was left out) (docs/campaigns.md)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.auth.models import StaffUser
from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.directory.models import Segment
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members.models import MarketingTopic


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"  # waits for `scheduled_for`; the worker starts it
    sending = "sending"  # the worker is queueing it, or its messages are being delivered
    paused = "paused"  # nothing more queued; queued messages held back
    sent = "sent"  # every recipient queued and every message handled
    cancelled = "cancelled"  # stopped: messages not yet sent were cancelled

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def editable(self) -> bool:
        return self in (CampaignStatus.draft, CampaignStatus.scheduled)


class LeftOut(enum.StrEnum):
    """Why someone the segment matched was not sent the campaign, in the order the rules apply."""

    bounced = "bounced"  # on the suppression list after a hard bounce
    unsubscribed = "unsubscribed"  # on the suppression list: unsubscribed from everything
    archived = "archived"
    opted_out = "opted_out"  # asked not to hear about the campaign's topic
    no_basis = "no_basis"  # no consent, corporate subscriber status or soft opt-in

    @property
    def label(self) -> str:
        return {
            "bounced": "Hard bounce",
            "unsubscribed": "Unsubscribed or suppressed",
            "archived": "Archived",
            "opted_out": "Opted out of the topic",
            "no_basis": "No lawful basis",
        }[self.value]


class Campaign(db.Model):
    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_status_scheduled_for", "status", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(150))
    preview_text: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised when rendered
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("event.id", ondelete="SET NULL"), index=True
    )
    survey_url: Mapped[str] = mapped_column(String(500), default="")
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segment.id", ondelete="SET NULL"), index=True
    )
    topic: Mapped[MarketingTopic] = mapped_column(
        enum_type(MarketingTopic), default=MarketingTopic.events
    )
    status: Mapped[CampaignStatus] = mapped_column(
        enum_type(CampaignStatus), default=CampaignStatus.draft
    )
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_zone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    # The worker queues recipients in order of contact id; this is the last one handled.
    queued_through: Mapped[int] = mapped_column(default=0)
    queued_all_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    resources: Mapped[list[CampaignResource]] = relationship(
        cascade="all, delete-orphan", order_by="CampaignResource.position"
    )
    event: Mapped[Event | None] = relationship()
    segment: Mapped[Segment | None] = relationship()
    created_by: Mapped[StaffUser | None] = relationship(foreign_keys=[created_by_id])
    sent_by: Mapped[StaffUser | None] = relationship(foreign_keys=[sent_by_id])


class CampaignResource(db.Model):
    """A library resource listed in a campaign's email, in order."""

    __tablename__ = "campaign_resource"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resource.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(default=0)


class CampaignRecipient(db.Model):
    """One person the campaign's segment matched when it was sent: the message queued for them,
    or why they were left out. Unique per campaign and contact, so queueing twice adds nothing."""

    __tablename__ = "campaign_recipient"
    __table_args__ = (UniqueConstraint("campaign_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_message.id", ondelete="SET NULL"), index=True
    )
    left_out: Mapped[LeftOut | None] = mapped_column(enum_type(LeftOut))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
