"""What a campaign's email holds: its text, and the blocks filled from the product (an event card,
resources from the library, a survey link), as plain values the email templates show. Read once
per chunk of recipients, not once per person."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from flask import current_app, render_template

from chamber.campaigns.models import Campaign
from chamber.core.markdown import render_markdown
from chamber.core.times import format_date, format_time, utcnow
from chamber.core.urls import external_url
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail import links
from chamber.mail.models import MailKind
from chamber.registration import seats
from chamber.resources.models import Resource, ResourceStatus


@dataclass(frozen=True)
class EventCard:
    title: str
    when: str  # date and time in the event's own zone
    venue: str
    places_left: int
    event_url: str
    book_url: str
    calendar_url: str


@dataclass(frozen=True)
class ResourceLine:
    title: str
    publisher: str
    url: str


def event_card(campaign: Campaign, event: Event | None) -> EventCard | None:
    """The event block: only for a published event, its links carrying the campaign reference so
    that a booking made from them records where it came from."""
    if event is None or event.status is not EventStatus.published:
        return None
    start, end = event.local_start, event.local_end
    return EventCard(
        title=event.title,
        when=f"{format_date(start)}, {format_time(start)} to {format_time(end)} ({start.tzname()})",
        venue=event.location_text,
        places_left=max(0, event.capacity - seats.confirmed_count(event.id)),
        event_url=external_url("events.show", slug=event.slug, campaign=campaign.id),
        book_url=external_url("registration.register", slug=event.slug, campaign=campaign.id),
        calendar_url=external_url("calendar.event_ics", slug=event.slug),
    )


def resource_lines(campaign: Campaign) -> list[ResourceLine]:
    """The campaign's resources that are published, in order, linked to their library page."""
    ids = [chosen.resource_id for chosen in campaign.resources]
    if not ids:
        return []
    found = {
        resource.id: resource
        for resource in db.session.scalars(
            db.select(Resource).where(
                Resource.id.in_(ids), Resource.status == ResourceStatus.published
            )
        )
    }
    return [
        ResourceLine(
            found[i].title, found[i].publisher, external_url("resources.show", slug=found[i].slug)
        )
        for i in ids
        if i in found
    ]


def sender_name() -> str:
    name, _address = parseaddr(current_app.config["MAIL_FROM"])
    return name or current_app.config["CHAMBER_NAME"]


def shared_context(campaign: Campaign) -> dict[str, Any]:
    """What every recipient's copy shares, read once: the rendered body and the blocks."""
    event = db.session.get(Event, campaign.event_id) if campaign.event_id else None
    return {
        "campaign_subject": campaign.subject,
        "preview_text": campaign.preview_text,
        "body_html": render_markdown(campaign.body),
        "body_text": campaign.body,
        "card": event_card(campaign, event),
        "resources": resource_lines(campaign),
        "survey_url": campaign.survey_url,
        "sender": sender_name(),
        "topic": campaign.topic,
        "unsubscribe_reason": "You get these emails because you may hear from us about "
        f"{campaign.topic.label.lower()}.",
        "sent_on": format_date(utcnow()),
    }


def recipient_context(shared: dict[str, Any], name: str, contact_id: int | None) -> dict[str, Any]:
    """One recipient's copy: their name, and (for a contact) their own preferences link."""
    return {**shared, "recipient_name": name, "preferences_for": contact_id}


def preview(campaign: Campaign, name: str, contact_id: int | None, template: str) -> str:
    """The email as `name` would get it (`template` "html" or "txt"), its secret links named
    rather than minted, as the Outbox shows a queued message."""
    context = recipient_context(shared_context(campaign), name, contact_id)
    nonce = links.new_nonce()
    with links.rendering_message(nonce):
        body = render_template(
            f"emails/campaigns/campaign.{template}",
            kind=MailKind.marketing,
            to_name=name,
            **context,
        )
    return links.describe_links(body, nonce)
