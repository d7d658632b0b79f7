"""Composing a campaign and moving it through its life: draft, scheduled, sending, paused, sent or
cancelled. Every change of status is one conditional UPDATE, so a worker that starts a campaign
at the moment staff pause or cancel it either wins or finds it changed. Nothing here commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, select, update

from chamber.auth.models import StaffUser
from chamber.campaigns import content
from chamber.campaigns.models import Campaign, CampaignRecipient, CampaignResource, CampaignStatus
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.core.urls import url_fault
from chamber.directory.models import Segment
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage
from chamber.members.models import MarketingTopic
from chamber.resources.models import Resource

SUBJECT_MAX = 150
PREVIEW_MAX = 200
BODY_MAX = 20_000
SURVEY_URL_MAX = 500
RESOURCES_MAX = 10


class CampaignRefused(Refusal):
    """A campaign that cannot be saved, sent or changed as asked (the message says why)."""


@dataclass(frozen=True)
class CampaignDetails:
    subject: str
    preview_text: str = ""
    body: str = ""
    event_id: int | None = None
    resource_ids: tuple[int, ...] = ()
    survey_url: str = ""
    segment_id: int | None = None
    topic: MarketingTopic = MarketingTopic.events


def _check(details: CampaignDetails) -> None:
    if not details.subject.strip():
        raise CampaignRefused("Enter a subject.", field="subject")
    if len(details.subject) > SUBJECT_MAX:
        raise CampaignRefused(
            f"The subject can be at most {SUBJECT_MAX} characters.", field="subject"
        )
    if details.survey_url and url_fault(details.survey_url):
        raise CampaignRefused(
            "The survey link must be a web address starting https://", field="survey_url"
        )
    if details.event_id is not None and db.session.get(Event, details.event_id) is None:
        raise CampaignRefused("Choose an event from the list.", field="event_id")
    if details.segment_id is not None and db.session.get(Segment, details.segment_id) is None:
        raise CampaignRefused("Choose a segment from the list.", field="segment_id")
    if len(details.resource_ids) > RESOURCES_MAX:
        raise CampaignRefused(f"Choose at most {RESOURCES_MAX} resources.", field="resource_ids")
    if details.resource_ids:
        found = db.session.scalars(
            db.select(Resource.id).where(Resource.id.in_(details.resource_ids))
        ).all()
        if len(found) != len(set(details.resource_ids)):
            raise CampaignRefused("Choose resources from the list.", field="resource_ids")


def save_campaign(
    details: CampaignDetails, *, by: StaffUser, campaign: Campaign | None = None
) -> Campaign:
    """A new draft, or `campaign` changed (only while it is a draft or scheduled). Flushes."""
    _check(details)
    if campaign is None:
        campaign = Campaign(created_by_id=by.id, status=CampaignStatus.draft)
        db.session.add(campaign)
    elif not campaign.status.editable:
        raise CampaignRefused("A campaign that has started sending can no longer be changed.")
    campaign.subject = " ".join(details.subject.split())
    campaign.preview_text = " ".join(details.preview_text.split())
    campaign.body = details.body
    campaign.event_id = details.event_id
    campaign.survey_url = details.survey_url
    campaign.segment_id = details.segment_id
    campaign.topic = details.topic
    campaign.resources = [
        CampaignResource(resource_id=resource_id, position=n)
        for n, resource_id in enumerate(dict.fromkeys(details.resource_ids))
    ]
    db.session.flush()
    return campaign


def _change_status(
    campaign: Campaign, allowed: tuple[CampaignStatus, ...], refusal: str, **values: Any
) -> None:
    """Move the campaign on if its status (read in the database, not the object) is one of
    `allowed`; otherwise refuse with `refusal`."""
    result = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status.in_(allowed))
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(campaign)
    if not result.rowcount:
        raise CampaignRefused(refusal)


def _ready(campaign: Campaign) -> None:
    if campaign.segment_id is None:
        raise CampaignRefused("Choose who it goes to (a segment) before sending.")


def send_now(campaign: Campaign, *, by: StaffUser, now: datetime | None = None) -> None:
    """Start sending: the worker resolves the segment and queues each recipient."""
    _ready(campaign)
    now = now or utcnow()
    _change_status(
        campaign,
        (CampaignStatus.draft, CampaignStatus.scheduled),
        "Only a draft or scheduled campaign can be sent.",
        status=CampaignStatus.sending,
        sent_by_id=by.id,
        started_at=now,
        scheduled_for=None,
    )


def start_scheduled_now(campaign: Campaign, *, now: datetime | None = None) -> None:
    """A scheduled campaign starts sending now rather than at its time (`chamber campaigns
    send`): sent by whoever scheduled it. A conditional UPDATE, so a worker starting it at the
    same moment starts it once."""
    _ready(campaign)
    now = now or utcnow()
    _change_status(
        campaign,
        (CampaignStatus.scheduled,),
        f"Campaign {campaign.id} is {campaign.status.label.lower()}, not scheduled: only a "
        "scheduled campaign can be started from the command line (send a draft from its page).",
        status=CampaignStatus.sending,
        started_at=now,
        scheduled_for=None,
    )


def schedule(
    campaign: Campaign,
    when: datetime,
    zone_name: str,
    *,
    by: StaffUser,
    now: datetime | None = None,
) -> None:
    """Send at `when` (UTC; typed in `zone_name`, kept to show it back)."""
    _ready(campaign)
    if when <= (now or utcnow()):
        raise CampaignRefused("Choose a time in the future.", field="send_at")
    _change_status(
        campaign,
        (CampaignStatus.draft, CampaignStatus.scheduled),
        "Only a draft campaign can be scheduled.",
        status=CampaignStatus.scheduled,
        scheduled_for=when,
        scheduled_zone=zone_name,
        sent_by_id=by.id,
    )


def unschedule(campaign: Campaign) -> None:
    _change_status(
        campaign,
        (CampaignStatus.scheduled,),
        "Only a scheduled campaign can go back to draft.",
        status=CampaignStatus.draft,
        scheduled_for=None,
    )


def messages_of(campaign_id: int) -> Select[Any]:
    """The ids of the outbox messages queued for the campaign's recipients."""
    return select(CampaignRecipient.outbox_message_id).where(
        CampaignRecipient.campaign_id == campaign_id,
        CampaignRecipient.outbox_message_id.is_not(None),
    )


def pause(campaign: Campaign) -> None:
    """No more recipients are queued, and their messages not yet sent wait."""
    _change_status(
        campaign,
        (CampaignStatus.sending,),
        "Only a campaign that is sending can be paused.",
        status=CampaignStatus.paused,
    )
    mail.hold_messages(messages_of(campaign.id))


def resume(campaign: Campaign) -> None:
    _change_status(
        campaign,
        (CampaignStatus.paused,),
        "Only a paused campaign can be resumed.",
        status=CampaignStatus.sending,
    )
    mail.release_messages(messages_of(campaign.id))


def cancel(campaign: Campaign, *, now: datetime | None = None) -> int:
    """Stop it for good: nothing more is queued, and the messages not yet sent are cancelled
    (those already sent stay sent). Returns how many messages were cancelled."""
    _change_status(
        campaign,
        (
            CampaignStatus.draft,
            CampaignStatus.scheduled,
            CampaignStatus.sending,
            CampaignStatus.paused,
        ),
        "This campaign has finished: there is nothing left to cancel.",
        status=CampaignStatus.cancelled,
        finished_at=now or utcnow(),
    )
    return mail.cancel_messages(messages_of(campaign.id))


def send_test(campaign: Campaign, *, to: StaffUser) -> None:
    """The campaign as a recipient sees it, to the staff user's own address, marked [Test]. It
    carries no preferences link (staff are not contacts) and is recorded on no report."""
    shared = content.shared_context(campaign)
    mail.enqueue(
        key=f"campaign:{campaign.id}:test:{secrets.token_hex(8)}",
        to=to.email,
        to_name=to.name,
        subject=f"[Test] {campaign.subject}",
        template="campaigns/campaign",
        context=content.recipient_context(shared, to.name, None),
        kind=MailKind.marketing,
    )


def pending_messages(campaign_id: int) -> int:
    """How many of the campaign's messages have not been sent, failed or been stopped yet."""
    return (
        db.session.scalar(
            db.select(db.func.count(OutboxMessage.id)).where(
                OutboxMessage.id.in_(messages_of(campaign_id)),
                OutboxMessage.status.in_([MessageStatus.pending, MessageStatus.sending]),
            )
        )
        or 0
    )


def find_campaign(campaign_id: int) -> Campaign | None:
    return db.session.get(Campaign, campaign_id)
