"""A person's data: every row held about the person with one email address, read in a fixed
number of queries however much they have (docs/privacy.md, "A person's data").

Each kind of row is a `Kind` with plain values (text, numbers, times), so the staff page, the
JSON files of the export and its HTML page show the same thing. Rows about other people are
never included: for a place someone else booked, the booking's business, not its booker.
Answers to an anonymous survey are not linked to anyone, and are not read here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from chamber.campaigns.models import Campaign, CampaignRecipient
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import OutboxMessage
from chamber.members.models import (
    Consent,
    Contact,
    MergeKind,
    MergeRecord,
    Organisation,
    SubscriptionRequest,
    TopicOptOut,
)
from chamber.members.services import normalise_email
from chamber.registration.models import Booking, Delegate
from chamber.surveys.figures import MIN_GROUP, too_few_to_show
from chamber.surveys.models import Answer, Invitation, Question, Response, Survey

WITHHELD = f"not shown: this anonymous survey has fewer than {MIN_GROUP} responses"


@dataclass
class Kind:
    """One kind of row held about the person: its file name in the export, its heading, a line
    saying what it is, and its rows (each a dict of plain values, in column order)."""

    name: str
    title: str
    about: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []


@dataclass
class PersonData:
    email: str
    kinds: list[Kind]

    @property
    def found_anything(self) -> bool:
        return any(kind.rows for kind in self.kinds)

    @property
    def row_count(self) -> int:
        return sum(len(kind.rows) for kind in self.kinds)


def person_data(email: str) -> PersonData:
    """Everything held about the person at `email` (normalised), in 13 queries whatever they have."""
    address = normalise_email(email)
    contact_ids = select(Contact.id).where(Contact.email == address).scalar_subquery()
    delegate_ids = select(Delegate.id).where(
        or_(Delegate.email_normalised == address, Delegate.contact_id.in_(contact_ids))
    )
    invitation_ids = select(Invitation.id).where(
        or_(func.lower(Invitation.email) == address, Invitation.delegate_id.in_(delegate_ids))
    )
    kinds = [
        _contacts(address),
        _organisations(contact_ids, delegate_ids),
        _bookings(contact_ids),
        _places(delegate_ids),
        _consents(contact_ids),
        _subscriptions(contact_ids),
        _topic_opt_outs(contact_ids),
        _suppression(address),
        _emails(address),
        _invitations(invitation_ids),
        _named_survey_answers(invitation_ids),
        _campaigns(contact_ids),
        _merged(contact_ids),
    ]
    return PersonData(email=address, kinds=kinds)


def _contacts(address: str) -> Kind:
    kind = Kind("contacts", "Contact details", "The person in the directory, by this address.")
    for contact in db.session.scalars(select(Contact).where(Contact.email == address)):
        kind.rows.append({
            "id": contact.id, "name": contact.name, "email": contact.email,
            "job_title": contact.job_title, "phone": contact.phone, "role": contact.role.value,
            "organisation_id": contact.organisation_id, "soft_opt_in_at": contact.soft_opt_in_at,
            "address_confirmed_at": contact.address_confirmed_at,
            "archived_at": contact.archived_at, "created_at": contact.created_at,
            "updated_at": contact.updated_at,
        })  # fmt: skip
    return kind


def _organisations(contact_ids: Any, delegate_ids: Any) -> Kind:
    kind = Kind(
        "organisations",
        "Organisations",
        "Their business in the directory, and the businesses of the bookings they made or hold a "
        "place in.",
    )
    ids = (
        select(Contact.organisation_id).where(Contact.id.in_(contact_ids))
        .union(
            select(Booking.organisation_id).where(Booking.booker_id.in_(contact_ids)),
            select(Booking.organisation_id)
            .join(Delegate, Delegate.booking_id == Booking.id)
            .where(Delegate.id.in_(delegate_ids)),
        )
    )  # fmt: skip
    query = select(Organisation).where(Organisation.id.in_(ids)).order_by(Organisation.id)
    # Not the staff notes: they are about the business, and may name other people.
    for organisation in db.session.scalars(query):
        kind.rows.append({
            "id": organisation.id, "name": organisation.name,
            "size_band": organisation.size_band.value, "legal_form": organisation.legal_form.value,
            "sector": organisation.sector, "town_or_postcode": organisation.town_or_postcode,
            "postcode": organisation.postcode, "website": organisation.website,
            "is_member": organisation.is_member, "membership_tier": organisation.membership_tier,
        })  # fmt: skip
    return kind


def _bookings(contact_ids: Any) -> Kind:
    kind = Kind("bookings", "Bookings they made", "Bookings with this person as the booker.")
    query = (
        select(Booking, Event.title, Event.starts_at)
        .join(Event, Event.id == Booking.event_id)
        .where(Booking.booker_id.in_(contact_ids))
        .order_by(Booking.created_at, Booking.id)
    )
    for booking, title, starts_at in db.session.execute(query):
        kind.rows.append({
            "id": booking.id, "event": title, "event_starts_at": starts_at,
            "source": booking.source, "business_as_typed": booking.business_as_typed,
            "privacy_acknowledged_at": booking.privacy_acknowledged_at,
            "privacy_notice_version": booking.privacy_notice_version,
            "campaign_id": booking.campaign_id, "created_at": booking.created_at,
        })  # fmt: skip
    return kind


def _places(delegate_ids: Any) -> Kind:
    kind = Kind(
        "places",
        "Delegate places",
        "Their places at events, whoever booked them (another booker's name is not shown).",
    )
    query = (
        select(Delegate, Event.title, Event.starts_at)
        .join(Event, Event.id == Delegate.event_id)
        .where(Delegate.id.in_(delegate_ids))
        .order_by(Delegate.created_at, Delegate.id)
    )
    for place, title, starts_at in db.session.execute(query):
        kind.rows.append({
            "id": place.id, "event": title, "event_starts_at": starts_at,
            "booking_id": place.booking_id, "name": place.name, "email": place.email_normalised,
            "job_title": place.job_title, "phone": place.phone, "needs": place.needs,
            "status": place.status.value, "checked_in_at": place.checked_in_at,
            "created_at": place.created_at,
        })  # fmt: skip
    return kind


def _consents(contact_ids: Any) -> Kind:
    kind = Kind("consents", "Consents", "Consent to marketing: the wording they saw, when, where.")
    query = select(Consent).where(Consent.contact_id.in_(contact_ids)).order_by(Consent.id)
    for consent in db.session.scalars(query):
        kind.rows.append({
            "id": consent.id, "purpose": consent.purpose, "wording": consent.wording,
            "source": consent.source, "given_at": consent.given_at,
            "confirmed_at": consent.confirmed_at, "withdrawn_at": consent.withdrawn_at,
            "privacy_notice_version": consent.privacy_notice_version,
        })  # fmt: skip
    return kind


def _subscriptions(contact_ids: Any) -> Kind:
    kind = Kind("subscriptions", "Subscriptions", "Each time they used the subscribe form.")
    query = (
        select(SubscriptionRequest)
        .where(SubscriptionRequest.contact_id.in_(contact_ids))
        .order_by(SubscriptionRequest.id)
    )
    for request in db.session.scalars(query):
        kind.rows.append({
            "id": request.id, "organisation_as_typed": request.organisation_as_typed,
            "created_at": request.created_at, "confirmed_at": request.confirmed_at,
            "privacy_notice_version": request.privacy_notice_version,
        })  # fmt: skip
    return kind


def _topic_opt_outs(contact_ids: Any) -> Kind:
    kind = Kind("topic_preferences", "Topics opted out of", "Topics they asked not to hear about.")
    query = (
        select(TopicOptOut)
        .where(TopicOptOut.contact_id.in_(contact_ids))
        .order_by(TopicOptOut.topic)
    )
    for opt_out in db.session.scalars(query):
        kind.rows.append({"topic": opt_out.topic.value, "since": opt_out.created_at})
    return kind


def _suppression(address: str) -> Kind:
    kind = Kind(
        "suppression",
        "Suppression list",
        "Whether no marketing or survey email may go to the address, and why.",
    )
    reasons = mail.suppression_reasons([address])
    if reasons:
        kind.rows.append({"suppressed": True, "reason": reasons.get(address, "")})
    return kind


def _emails(address: str) -> Kind:
    kind = Kind(
        "emails",
        "Emails sent to them",
        "Every message in the outbox to this address (the text of each is not repeated here).",
    )
    query = (
        select(
            OutboxMessage.id, OutboxMessage.subject, OutboxMessage.kind, OutboxMessage.status,
            OutboxMessage.created_at, OutboxMessage.sent_at,
        )
        .where(OutboxMessage.to_normalised == address)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )  # fmt: skip
    for message_id, subject, mail_kind, status, created_at, sent_at in db.session.execute(query):
        kind.rows.append({
            "id": message_id, "subject": subject, "kind": mail_kind.value,
            "status": status.value, "queued_at": created_at, "sent_at": sent_at,
        })  # fmt: skip
    return kind


def _invitations(invitation_ids: Any) -> Kind:
    kind = Kind(
        "survey_invitations",
        "Survey invitations",
        "Surveys they were sent. Answers to an anonymous survey are not linked to anyone, so they "
        f"are not here; whether they answered one is shown only once it has {MIN_GROUP} responses.",
    )
    responses = (
        select(func.count(Response.id))
        .where(Response.survey_id == Invitation.survey_id)
        .correlate(Invitation)
        .scalar_subquery()
    )
    query = (
        select(Invitation, Survey.title, Survey.anonymous, Event.title, responses)
        .join(Survey, Survey.id == Invitation.survey_id)
        .join(Event, Event.id == Survey.event_id)
        .where(Invitation.id.in_(invitation_ids))
        .order_by(Invitation.invited_at, Invitation.id)
    )
    for invitation, survey, anonymous, event, responded in db.session.execute(query):
        if too_few_to_show(anonymous, responded):
            answered: Any = WITHHELD
        else:
            answered = invitation.responded_at is not None
        kind.rows.append({
            "id": invitation.id, "survey": survey, "event": event, "anonymous": anonymous,
            "email": invitation.email, "invited_at": invitation.invited_at,
            "reminded_at": invitation.reminded_at, "answered": answered,
            # An anonymous survey never says when: a time could be matched to an answer.
            "answered_at": None if anonymous else invitation.responded_at,
        })  # fmt: skip
    return kind


def _named_survey_answers(invitation_ids: Any) -> Kind:
    kind = Kind(
        "survey_answers",
        "Answers to named surveys",
        "Their answers to surveys that were not anonymous (staff see these with their name).",
    )
    query = (
        select(Survey.title, Question.position, Question.text, Answer)
        .join(Response, Response.id == Answer.response_id)
        .join(Survey, Survey.id == Response.survey_id)
        .join(Question, Question.id == Answer.question_id)
        .where(Response.invitation_id.in_(invitation_ids), Survey.anonymous.is_(False))
        .order_by(Survey.id, Question.position, Answer.id)
    )
    for survey, _position, question, answer in db.session.execute(query):
        value = answer.number if answer.number is not None else answer.choice
        kind.rows.append({
            "survey": survey, "question": question, "agenda_item_id": answer.agenda_item_id,
            "answer": answer.text if value is None else value,
        })  # fmt: skip
    return kind


def _campaigns(contact_ids: Any) -> Kind:
    kind = Kind(
        "campaign_recipients",
        "Campaigns",
        "Email campaigns whose audience included them: sent, or why they were left out.",
    )
    query = (
        select(CampaignRecipient, Campaign.subject)
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(CampaignRecipient.contact_id.in_(contact_ids))
        .order_by(CampaignRecipient.created_at, CampaignRecipient.id)
    )
    for recipient, subject in db.session.execute(query):
        kind.rows.append({
            "campaign_id": recipient.campaign_id, "subject": subject,
            "left_out": recipient.left_out.value if recipient.left_out else None,
            "outbox_message_id": recipient.outbox_message_id, "at": recipient.created_at,
        })  # fmt: skip
    return kind


def _merged(contact_ids: Any) -> Kind:
    kind = Kind(
        "merged_records",
        "Records merged into theirs",
        "Duplicate contacts staff found to be this person, as they were before the merge.",
    )
    query = (
        select(MergeRecord)
        .where(MergeRecord.kind == MergeKind.contact, MergeRecord.kept_id.in_(contact_ids))
        .order_by(MergeRecord.id)
    )
    for record in db.session.scalars(query):
        kind.rows.append({
            "removed_id": record.removed_id, "removed_record": record.removed_snapshot,
            "merged_at": record.merged_at, "by": record.by_email,
        })  # fmt: skip
    return kind


def plain(value: Any) -> Any:
    """A value as JSON holds it: times in ISO 8601 (UTC)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value
