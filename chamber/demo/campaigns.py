"""Demo campaigns: the invitation that went to members about the upcoming seminar, with its report
(who it went to, who was left out and why, the bookings it brought), and a draft newsletter."""

from __future__ import annotations

from datetime import timedelta

from werkzeug.datastructures import MultiDict

from chamber.auth.models import StaffUser
from chamber.campaigns import services
from chamber.campaigns.models import Campaign, CampaignRecipient, CampaignStatus
from chamber.campaigns.sending import audience, queue_contacts, reason_case
from chamber.directory import segments
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.members.models import Contact, MarketingTopic, Organisation
from chamber.registration.models import Booking

INVITATION = "Cyber crime seminar: book your free places"
DRAFT = "Five cyber security habits for the new year"
MEMBERS = "Members"
INVITATION_BODY = """\
Cyber crime costs small businesses in Hertfordshire more every year, and most attacks start with
something simple: a guessed password, a convincing email, an update not installed.

Our free morning seminar brings together the **Eastern Region Cyber Crime Unit**, the **NCSC** and
local businesses who have been through an attack. You will leave with a plan:

- Audit what you have and who can reach it
- Plan what you would do on the day
- Execute the basics: updates, backups, two-step logins
- Monitor, and Repeat

Places are limited to three per business."""
DRAFT_BODY = """\
A short list to start the year well, from the speakers at our seminars:

1. Turn on two-step login for email and banking.
2. Check your backups by restoring one file.
3. Install updates within a fortnight.
4. Use a password manager.
5. Report suspicious emails to report@phishing.gov.uk."""


def load_campaigns(upcoming: Event | None, *, by: StaffUser) -> None:
    """The sent invitation and the draft, once each (found by subject)."""
    subjects = set(db.session.scalars(db.select(Campaign.subject)))
    members = _members_segment(by)
    if upcoming is not None and INVITATION not in subjects:
        _sent_invitation(upcoming, members, by)
    if DRAFT not in subjects:
        others = [s for s in segments.saved_segments() if s.name != MEMBERS]
        services.save_campaign(
            services.CampaignDetails(
                DRAFT,
                preview_text="Two-step logins, backups, updates and more",
                body=DRAFT_BODY,
                segment_id=(others[0] if others else members).id,
                topic=MarketingTopic.newsletter,
            ),
            by=by,
        )


def _members_segment(by: StaffUser):
    for segment in segments.saved_segments():
        if segment.name == MEMBERS:
            return segment
    filters = segments.SegmentFilters.from_args(MultiDict({"membership": "member"}))
    return segments.save_segment(MEMBERS, filters, by=by)


def _sent_invitation(event: Event, members, by: StaffUser) -> None:
    """Sent to members five weeks before the seminar, every message delivered (the demo sends
    nothing: its outbox records them as sent), and a share of members' bookings made from it."""
    campaign = services.save_campaign(
        services.CampaignDetails(
            INVITATION,
            preview_text="Free places for members and local businesses",
            body=INVITATION_BODY,
            event_id=event.id,
            segment_id=members.id,
        ),
        by=by,
    )
    sent_at = event.starts_at - timedelta(days=35)
    campaign.status, campaign.started_at, campaign.sent_by_id = (
        CampaignStatus.sending, sent_at, by.id,
    )  # fmt: skip
    rows = db.session.execute(
        db.select(Contact.id, Contact.email, Contact.name, reason_case(campaign.topic))
        .where(Contact.id.in_(audience(campaign)))
        .order_by(Contact.id)
    ).all()
    queue_contacts(campaign, rows)
    queued = db.select(CampaignRecipient.outbox_message_id).where(
        CampaignRecipient.campaign_id == campaign.id
    )
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.id.in_(queued))
        .values(status=MessageStatus.sent, sent_at=sent_at + timedelta(minutes=4), attempts=1)
        .execution_options(synchronize_session=False)
    )
    campaign.status, campaign.queued_all_at = CampaignStatus.sent, sent_at
    campaign.finished_at = sent_at + timedelta(minutes=5)
    # Members' bookings made after it went out: every other one came from its link.
    booked = db.session.scalars(
        db.select(Booking)
        .join(Organisation, Organisation.id == Booking.organisation_id)
        .where(
            Booking.event_id == event.id,
            Organisation.is_member.is_(True),
            Booking.created_at >= sent_at,
        )
        .order_by(Booking.id)
    ).all()
    for booking in booked[::2]:
        booking.campaign_id = campaign.id
    db.session.flush()
