"""Sending a campaign, in the worker: start the scheduled ones that are due, resolve each sending
campaign's segment in chunks of contacts (in order of id, from where the last chunk stopped),
queue one outbox message per recipient and record who was left out and why, then mark it sent
when every message has been handled. And, as each batch of mail is about to go, withhold the
messages whose recipient may no longer be sent the campaign's topic (invariant 13).

Each chunk is one transaction that holds the campaign's row (`FOR UPDATE` on PostgreSQL) and
moves its cursor on with a conditional UPDATE. Outbox keys (`campaign:<id>:contact:<id>`) and
the recipient rows' unique (campaign, contact) make a chunk done twice (two workers, a worker
killed half-way, a retried job) queue nobody twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, update

from chamber.campaigns import content
from chamber.campaigns.models import Campaign, CampaignRecipient, CampaignStatus, LeftOut
from chamber.campaigns.services import pending_messages
from chamber.core.dialects import insert_or_skip, one_of
from chamber.core.times import utcnow
from chamber.core.transactions import unit_of_work
from chamber.directory.models import Segment
from chamber.directory.segments import SegmentFilters, matching
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import MailKind, OutboxMessage, Suppression
from chamber.mail.signals import HOLD, SendTimeMessage
from chamber.members import marketing
from chamber.members.models import Contact, MarketingTopic

CHUNK = 500


def reason_case(topic: MarketingTopic) -> ColumnElement[str]:
    """Why a contact may or may not be sent marketing on `topic`, as campaigns report it: the
    marketing rule's basis, with a hard bounce told apart from an unsubscribe."""
    bounced = Contact.email_hash.in_(
        db.select(Suppression.email_hash).where(Suppression.reason == "bounce")
    )
    return case((bounced, LeftOut.bounced.value), else_=marketing.basis_case(topic))


def left_out_reason(value: str) -> LeftOut | None:
    """None for a lawful basis (the contact is sent it); otherwise why they are left out."""
    if value in {basis.value for basis in marketing.LAWFUL}:
        return None
    if value == marketing.Basis.suppressed.value:
        return LeftOut.unsubscribed
    return LeftOut(value)


def audience(campaign: Campaign) -> Any:
    """The ids of the contacts the campaign's segment matches now (before the marketing rules)."""
    segment = db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    if segment is None:
        return db.select(Contact.id).where(db.false())
    return matching(SegmentFilters.from_json(segment.filters))


@dataclass
class SendReport:
    started: int = 0
    queued: int = 0
    left_out: int = 0
    finished: int = 0


def start_due(now: datetime | None = None) -> int:
    """Scheduled campaigns whose time has come start sending (each one conditional UPDATE)."""
    now = now or utcnow()
    with unit_of_work():
        due = db.session.scalars(
            db.select(Campaign.id).where(
                Campaign.status == CampaignStatus.scheduled, Campaign.scheduled_for <= now
            )
        ).all()
        started = 0
        for campaign_id in due:
            started += db.session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.scheduled)
                .values(status=CampaignStatus.sending, started_at=now, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
    return started


def queue_chunk(campaign_id: int, *, size: int = CHUNK) -> tuple[int, int] | None:
    """Queue the next `size` contacts of a sending campaign's segment. Returns (queued, left out),
    or None when there is nothing to do (not sending, or every contact handled)."""
    with unit_of_work():
        campaign = db.session.scalars(
            db.select(Campaign)
            .where(Campaign.id == campaign_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if (
            campaign is None
            or campaign.status is not CampaignStatus.sending
            or campaign.queued_all_at is not None
        ):
            return None
        cursor = campaign.queued_through
        rows = db.session.execute(
            db.select(Contact.id, Contact.email, Contact.name, reason_case(campaign.topic))
            .where(Contact.id.in_(audience(campaign)), Contact.id > cursor)
            .order_by(Contact.id)
            .limit(size)
        ).all()
        values = {"updated_at": utcnow()}
        if len(rows) < size:
            values["queued_all_at"] = utcnow()
        if rows:
            values["queued_through"] = rows[-1][0]
        moved = db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.queued_through == cursor)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not moved:  # another worker took this chunk: its rows are the same ones
            db.session.rollback()
            return 0, 0
        return queue_contacts(campaign, rows)


def queue_contacts(campaign: Campaign, rows: Sequence[Any]) -> tuple[int, int]:
    """Queue the campaign to these contacts (rows of id, email, name, `reason_case` value) and
    record each as a recipient or left out. Flushes, never commits: `queue_chunk` calls it in its
    transaction. Returns (queued, left out)."""
    shared = content.shared_context(campaign)
    keys: dict[str, int] = {}
    recipients: list[dict[str, Any]] = []
    with mail.composed_only() as composed:  # rendered one by one, written in one INSERT
        for contact_id, email, name, reason in rows:
            left_out = left_out_reason(reason)
            if left_out is None:
                key = f"campaign:{campaign.id}:contact:{contact_id}"
                keys[key] = contact_id
                mail.enqueue(
                    key=key,
                    to=email,
                    to_name=name,
                    subject=campaign.subject,
                    template="campaigns/campaign",
                    context=content.recipient_context(shared, name, contact_id),
                    kind=MailKind.marketing,
                    bulk=True,
                )
            recipients.append(
                {
                    "campaign_id": campaign.id,
                    "contact_id": contact_id,
                    "left_out": left_out,
                    "created_at": utcnow(),
                }
            )
    mail.queue_composed(composed)
    message_ids = (
        dict(
            db.session.execute(
                db.select(OutboxMessage.key, OutboxMessage.id).where(
                    OutboxMessage.key.in_(list(keys))
                )
            ).all()
        )
        if keys
        else {}
    )
    by_contact = {keys[key]: message_id for key, message_id in message_ids.items()}
    for recipient in recipients:
        recipient["outbox_message_id"] = by_contact.get(recipient["contact_id"])
    if recipients:
        db.session.execute(
            insert_or_skip(CampaignRecipient)
            .values(recipients)
            .on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
        )
    return len(keys), len(recipients) - len(keys)


def finish_if_done(campaign_id: int, now: datetime | None = None) -> bool:
    """A sending campaign whose recipients are all queued and whose messages have all been
    handled (sent, failed, withheld) is sent."""
    with unit_of_work():
        campaign = db.session.get(Campaign, campaign_id)
        if (
            campaign is None
            or campaign.status is not CampaignStatus.sending
            or campaign.queued_all_at is None
            or pending_messages(campaign_id)
        ):
            return False
        now = now or utcnow()
        return bool(
            db.session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.sending)
                .values(status=CampaignStatus.sent, finished_at=now, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
        )


def send_due(
    now: datetime | None = None,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, int, int], None] = lambda campaign_id, queued, left: None,
) -> SendReport:
    """The worker's round: start what is due, queue every sending campaign to its end (chunk by
    chunk, stopping between chunks if asked), and mark sent those whose mail has all gone."""
    report = SendReport(started=start_due(now))
    with unit_of_work():
        sending = db.session.scalars(
            db.select(Campaign.id).where(Campaign.status == CampaignStatus.sending)
        ).all()
    for campaign_id in sending:
        while not should_stop():
            done = queue_chunk(campaign_id)
            if done is None:
                break
            report.queued += done[0]
            report.left_out += done[1]
            on_progress(campaign_id, report.queued, report.left_out)
        report.finished += finish_if_done(campaign_id, now)
    return report


# --- at send time --------------------------------------------------------------------------------


def withhold_unlawful_for_app(_app: Any, *, messages: list[SendTimeMessage]) -> dict[int, str]:
    """The `mail.signals.before_sending` receiver: only campaign messages are looked at."""
    return withhold_unlawful([m for m in messages if m.key.startswith("campaign:")])


def withhold_unlawful(messages: list[SendTimeMessage]) -> dict[int, str]:
    """For the mail layer's `before_sending` signal: of a batch about to be sent, the campaign
    messages whose contact may no longer be sent the campaign's topic (they unsubscribed, opted
    out or withdrew consent after it was queued), with the reason. Three queries a batch, each
    reading only the batch's own rows (`marketing.statuses_by_topic`, the rule's batch form):
    the rule's SQL form reads the whole suppression list and every business once a query, which
    a campaign to a large directory would pay once a batch."""
    ids = [message.id for message in messages]
    if not ids:
        return {}
    rows = db.session.execute(
        db.select(
            CampaignRecipient.outbox_message_id,
            CampaignRecipient.contact_id,
            Campaign.topic,
            Campaign.status,
        )
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(one_of(CampaignRecipient.outbox_message_id, ids))
    ).all()
    statuses = marketing.statuses_by_topic(
        [contact_id for _, contact_id, _, _ in rows if contact_id is not None],
        {topic for _, contact_id, topic, _ in rows if contact_id is not None},
    )
    withheld: dict[int, str] = {}
    for message_id, contact_id, topic, campaign_status in rows:
        status = statuses.get(contact_id, {}).get(topic) if contact_id is not None else None
        # A message a worker had claimed when staff paused or cancelled the campaign, and then
        # handed back unsent (it stopped): paused, it is held back again; cancelled, withheld.
        if campaign_status == CampaignStatus.paused:
            withheld[message_id] = HOLD
        elif campaign_status == CampaignStatus.cancelled:
            withheld[message_id] = "Not sent: the campaign was cancelled"
        elif status is None:  # erased since it was queued: nobody to send it to
            withheld[message_id] = "Not sent: the contact was erased"
        elif not status.may_send:
            withheld[message_id] = (
                f"Not sent: no longer may receive this campaign ({status.basis.label})"
            )
    return withheld
