"""What the campaign pages read: the list, the audience before sending, progress while sending,
and the report after, each in a fixed number of queries however many recipients there are."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_
from sqlalchemy.orm import joinedload

from chamber.campaigns.models import Campaign, CampaignRecipient, LeftOut
from chamber.campaigns.sending import audience, left_out_reason, reason_case
from chamber.directory.signals import ReceivedCampaign
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage, Suppression
from chamber.members import marketing
from chamber.members.models import Contact, Organisation, SizeBand, TopicOptOut
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.resources.models import Resource, ResourceStatus


def campaigns_newest_first() -> Select[Any]:
    return db.select(Campaign).options(joinedload(Campaign.segment)).order_by(Campaign.id.desc())


def event_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        db.select(Event.id, Event.title, Event.starts_at).order_by(Event.starts_at.desc())
    )
    return [(event_id, f"{title} ({starts_at:%-d %b %Y})") for event_id, title, starts_at in rows]


def resource_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        db.select(Resource.id, Resource.title)
        .where(Resource.status == ResourceStatus.published)
        .order_by(func.lower(Resource.title))
    )
    return [(resource_id, title) for resource_id, title in rows]


@dataclass(frozen=True)
class Audience:
    """Who the campaign would go to if sent now: how many, and who is left out and why."""

    included: int
    left_out: dict[LeftOut, int]

    @property
    def left_out_total(self) -> int:
        return sum(self.left_out.values())


def audience_now(campaign: Campaign) -> Audience:
    """The segment resolved as it stands, with the marketing rules for the campaign's topic: one
    query."""
    reason = reason_case(campaign.topic).label("reason")
    rows = db.session.execute(
        db.select(reason, func.count()).where(Contact.id.in_(audience(campaign))).group_by(reason)
    ).all()
    included = 0
    left_out = dict.fromkeys(LeftOut, 0)
    for value, count in rows:
        why = left_out_reason(value)
        if why is None:
            included += count
        else:
            left_out[why] += count
    return Audience(included, left_out)


def preview_recipient(campaign: Campaign) -> Contact | None:
    """A real person the campaign would go to, for the preview: the first by id."""
    lawful = [basis.value for basis in marketing.LAWFUL]
    return db.session.scalars(
        db.select(Contact)
        .where(Contact.id.in_(audience(campaign)), marketing.basis_case(campaign.topic).in_(lawful))
        .order_by(Contact.id)
        .limit(1)
    ).first()


def left_out_people(campaign: Campaign, reason: LeftOut) -> Select[Any]:
    """Who is left out for `reason`: as recorded when it was sent, or, before, as it stands."""
    query = db.select(Contact).options(joinedload(Contact.organisation))
    if campaign.started_at is not None:
        recorded = db.select(CampaignRecipient.contact_id).where(
            CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.left_out == reason
        )
        query = query.where(Contact.id.in_(recorded))
    else:
        value = "suppressed" if reason is LeftOut.unsubscribed else reason.value
        query = query.where(
            Contact.id.in_(audience(campaign)), reason_case(campaign.topic) == value
        )
    return query.order_by(func.lower(Contact.name), Contact.id)


@dataclass
class Progress:
    """Where the campaign's mail has got to."""

    queued: int = 0
    left_out: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)  # left out, by `LeftOut` value

    @property
    def sent(self) -> int:
        return self.by_status[MessageStatus.sent.value]

    @property
    def failed(self) -> int:
        return self.by_status[MessageStatus.failed.value]

    @property
    def waiting(self) -> int:
        return self.queued - sum(
            self.by_status[status.value]
            for status in (
                MessageStatus.sent,
                MessageStatus.failed,
                MessageStatus.suppressed,
                MessageStatus.cancelled,
            )
        )

    @property
    def withheld(self) -> int:
        return self.by_status[MessageStatus.suppressed.value]

    @property
    def cancelled(self) -> int:
        return self.by_status[MessageStatus.cancelled.value]


def progress(campaign_id: int) -> Progress:
    """Queued, left out, and the queued messages by status: one query."""
    rows = db.session.execute(
        db.select(
            CampaignRecipient.left_out,
            OutboxMessage.status,
            func.count(CampaignRecipient.id),
        )
        .outerjoin(OutboxMessage, OutboxMessage.id == CampaignRecipient.outbox_message_id)
        .where(CampaignRecipient.campaign_id == campaign_id)
        .group_by(CampaignRecipient.left_out, OutboxMessage.status)
    ).all()
    result = Progress()
    for left_out, status, count in rows:
        if left_out is not None:
            result.left_out += count
            result.by_reason[LeftOut(left_out).value] += count
        elif status is not None:
            result.queued += count
            result.by_status[MessageStatus(status).value] += count
    return result


@dataclass
class Breakdown:
    """One way of dividing the people: each group's recipients, delivered, bookings, delegates."""

    title: str
    rows: dict[str, list[int]] = field(default_factory=dict)

    def add(self, group: str, column: int, count: int) -> None:
        self.rows.setdefault(group, [0, 0, 0, 0])[column] += count


@dataclass
class Report:
    progress: Progress
    unsubscribed_since: int
    bookings: int
    delegates: int
    breakdowns: list[Breakdown]


def _groups(is_member: bool | None, size_band: Any, sector: str | None) -> list[str]:
    member = (
        "Not in the directory" if is_member is None else ("Member" if is_member else "Not a member")
    )
    size = SizeBand(size_band).short_label if size_band else "Not known"
    return [member, size, sector or "Not known"]


def report(campaign: Campaign) -> Report:
    """The campaign's report in five queries, however many recipients and bookings."""
    counts = progress(campaign.id)
    since = campaign.started_at
    recipients = db.select(CampaignRecipient.contact_id).where(
        CampaignRecipient.campaign_id == campaign.id,
        CampaignRecipient.outbox_message_id.is_not(None),
    )
    unsubscribed = 0
    if since is not None:
        unsubscribed = (
            db.session.scalar(
                db.select(func.count(Contact.id)).where(
                    Contact.id.in_(recipients),
                    or_(
                        Contact.email_hash.in_(
                            db.select(Suppression.email_hash).where(Suppression.created_at >= since)
                        ),
                        Contact.id.in_(
                            db.select(TopicOptOut.contact_id).where(
                                TopicOptOut.topic == campaign.topic, TopicOptOut.created_at >= since
                            )
                        ),
                    ),
                )
            )
            or 0
        )
    breakdowns = [Breakdown("Membership"), Breakdown("Business size"), Breakdown("Sector")]
    sent_rows = db.session.execute(
        db.select(
            Organisation.is_member,
            Organisation.size_band,
            Organisation.sector,
            func.count(CampaignRecipient.id),
            func.count(OutboxMessage.sent_at),
        )
        .select_from(CampaignRecipient)
        .join(OutboxMessage, OutboxMessage.id == CampaignRecipient.outbox_message_id)
        .outerjoin(Contact, Contact.id == CampaignRecipient.contact_id)
        .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
        .where(CampaignRecipient.campaign_id == campaign.id)
        .group_by(Organisation.is_member, Organisation.size_band, Organisation.sector)
    ).all()
    for is_member, size_band, sector, queued, delivered in sent_rows:
        for breakdown, group in zip(breakdowns, _groups(is_member, size_band, sector), strict=True):
            breakdown.add(group, 0, queued)
            breakdown.add(group, 1, delivered)
    booking_rows = db.session.execute(
        db.select(
            Organisation.is_member,
            Organisation.size_band,
            Organisation.sector,
            func.count(func.distinct(Booking.id)),
            func.count(Delegate.id),
        )
        .select_from(Booking)
        .join(Organisation, Organisation.id == Booking.organisation_id)
        .outerjoin(
            Delegate,
            (Delegate.booking_id == Booking.id) & (Delegate.status != DelegateStatus.cancelled),
        )
        .where(Booking.campaign_id == campaign.id)
        .group_by(Organisation.is_member, Organisation.size_band, Organisation.sector)
    ).all()
    bookings = delegates = 0
    for is_member, size_band, sector, booked, people in booking_rows:
        bookings += booked
        delegates += people
        for breakdown, group in zip(breakdowns, _groups(is_member, size_band, sector), strict=True):
            breakdown.add(group, 2, booked)
            breakdown.add(group, 3, people)
    for breakdown in breakdowns:
        breakdown.rows = dict(sorted(breakdown.rows.items()))
    return Report(counts, unsubscribed, bookings, delegates, breakdowns)


# --- what the directory shows ----------------------------------------------------------------------

OUTCOMES = {
    MessageStatus.pending: "Queued",
    MessageStatus.sending: "Sending",
    MessageStatus.sent: "Sent",
    MessageStatus.failed: "Failed",
    MessageStatus.suppressed: "Withheld at send time (no lawful basis by then)",
    MessageStatus.cancelled: "Cancelled",
}


def received_by(contact_ids: list[int]) -> list[ReceivedCampaign]:
    """The campaigns these contacts were recipients of (sent, or left out and why), newest first,
    in one query: the directory's histories ask for them through its `campaigns_received`."""
    if not contact_ids:
        return []
    rows = db.session.execute(
        db.select(
            Campaign.id, Campaign.subject, Campaign.started_at, CampaignRecipient.contact_id,
            CampaignRecipient.left_out, OutboxMessage.status,
        )
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .outerjoin(OutboxMessage, OutboxMessage.id == CampaignRecipient.outbox_message_id)
        .where(CampaignRecipient.contact_id.in_(contact_ids))
        .order_by(Campaign.started_at.desc(), Campaign.id.desc(), CampaignRecipient.contact_id)
    )  # fmt: skip
    return [
        ReceivedCampaign(
            campaign_id=campaign_id, subject=subject, started_at=started_at,
            contact_id=contact_id, left_out=left_out is not None,
            outcome=f"Left out: {left_out.label}" if left_out is not None
            else OUTCOMES.get(status, "Queued") if status is not None else "Queued",
        )
        for campaign_id, subject, started_at, contact_id, left_out, status in rows
    ]  # fmt: skip


def received_by_for_app(_app: Any, *, contact_ids: list[int]) -> list[ReceivedCampaign]:
    return received_by(contact_ids)
