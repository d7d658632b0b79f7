"""The public subscribe form's double opt-in, and the preferences page every marketing email links
to (docs/marketing.md).

Anyone can type anyone's address into a form, so a subscription is only a request until the
person answers the confirmation email sent to that address. Nothing else is sent to the address
before they do, and the email holds no text the form's sender typed: a stranger cannot use the
form to put words into someone else's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import load_only

from chamber.core.dialects import one_of
from chamber.core.notice import current_notice_version
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.urls import external_url
from chamber.extensions import db
from chamber.mail import links
from chamber.mail import services as mail
from chamber.mail.models import MailKind
from chamber.members import marketing
from chamber.members import services as members
from chamber.members.models import (
    Consent,
    Contact,
    LinkPurpose,
    MarketingToken,
    MarketingTopic,
    SubscriptionRequest,
)

# How long a confirmation link works: long enough for a slow inbox, short enough that an old email
# found later does not sign someone up.
CONFIRM_DAYS = 7
SOURCE = "subscribe form"
GONE = "gone"  # the token in a link minted for a request or contact erased since: a plain 404
# What the form shows above the topics; each consent stores it with its topic, word for word.
ASKED = "Email me news from the Chamber about:"
PREFERENCES_ASKED = "Send me emails about:"  # the preferences page's question


def consent_wording(topic: MarketingTopic) -> str:
    return f"{ASKED} {topic.label}. I can unsubscribe at any time."


@dataclass(frozen=True)
class SubscribeDetails:
    name: str
    email: str
    organisation: str
    topics: list[MarketingTopic]


def subscribe(details: SubscribeDetails, *, now: datetime | None = None) -> SubscriptionRequest:
    """Record a request for `topics` (one unconfirmed consent each) and queue the confirmation
    email. The same whether or not the address is known; a contact that exists is left as it was
    (anonymous input never overwrites). At most one confirmation an hour goes to an address."""
    now = now or utcnow()
    contact = members.find_or_create_contact(email=details.email, name=details.name)
    seen = current_notice_version()  # the privacy notice's version the form linked
    request = SubscriptionRequest(
        contact=contact,
        organisation_as_typed=details.organisation,
        created_at=now,
        privacy_notice_version=seen,
    )
    db.session.add(request)
    db.session.flush()
    db.session.add_all(
        Consent(
            contact_id=contact.id,
            purpose=topic.value,
            wording=consent_wording(topic),
            source=SOURCE,
            given_at=now,
            request_id=request.id,
            privacy_notice_version=seen,
        )
        for topic in dict.fromkeys(details.topics)
    )
    db.session.flush()
    mail.enqueue(
        key=f"subscribe:confirm:{contact.id}:{now:%Y%m%d%H}",
        to=contact.email,
        subject="Confirm that you want our emails",
        template="members/confirm_subscription",
        context={
            "subscription": request,
            "topics": requested_topics(request),
            "confirm_days": CONFIRM_DAYS,
        },
        kind=MailKind.transactional,
    )
    return request


def requested_topics(request: SubscriptionRequest) -> list[MarketingTopic]:
    purposes = set(
        db.session.scalars(db.select(Consent.purpose).where(Consent.request_id == request.id))
    )
    return [topic for topic in MarketingTopic if topic.value in purposes]


def confirm(request: SubscriptionRequest, *, now: datetime | None = None) -> None:
    """The person answered the email sent to their address: the request's consents are confirmed,
    their opt-outs of those topics end, and so does an unsubscribe of their own (not a bounce).
    They are sent a welcome with their preferences link. Confirming again changes nothing."""
    now = now or utcnow()
    if request.confirmed_at is not None:
        return
    request.confirmed_at = now
    db.session.execute(
        db.update(Consent)
        .where(
            Consent.request_id == request.id,
            Consent.confirmed_at.is_(None),
            Consent.withdrawn_at.is_(None),
        )
        .values(confirmed_at=now)
        .execution_options(synchronize_session="fetch")
    )
    topics = requested_topics(request)
    contact = request.contact
    members.confirm_addresses([contact.id], now)  # they answered an email sent there
    marketing.opt_in(contact, topics)
    mail.lift_unsubscribe(contact.email)
    mail.enqueue(
        key=f"subscribe:welcome:{request.id}",
        to=contact.email,
        subject="You are subscribed",
        template="members/subscribed",
        context={
            "topics": topics,
            "preferences_for": contact.id,  # the layout's footer links the preferences page
            "events_url": external_url("events.index"),
            "unsubscribe_reason": "You get these emails because you subscribed on our website.",
        },
        kind=MailKind.marketing,
    )
    db.session.flush()


def save_preferences(contact: Contact, wanted: list[MarketingTopic]) -> None:
    """The person's choice of topics on their preferences page, taking effect at once.

    The page shows ticked the topics they may be sent now. A topic left unticked is opted out of
    (consents for it withdrawn); choosing any topic ends an unsubscribe of their own. A box the
    person ticked that was shown unticked is their consent, given through a link sent to their own
    address, so it is recorded as confirmed (source "preferences page"); a box shown ticked and
    left so gives nothing new (a ticked box shown ticked is not consent)."""
    now = utcnow()
    if wanted:
        mail.lift_unsubscribe(contact.email)
    marketing.opt_out(contact, [t for t in MarketingTopic if t not in wanted], now=now)
    marketing.opt_in(contact, wanted)
    for topic in wanted:
        if not marketing.status_of(contact, topic).may_send:
            db.session.add(
                Consent(
                    contact_id=contact.id,
                    purpose=topic.value,
                    wording=f"{PREFERENCES_ASKED} {topic.label}",
                    source="preferences page",
                    given_at=now,
                    confirmed_at=now,
                    privacy_notice_version=current_notice_version(),
                )
            )
    # They acted through a link sent to the address (after the consents above, which are read
    # against what the page showed).
    members.confirm_addresses([contact.id], now)
    db.session.flush()


def shown_ticked(contact: Contact) -> list[MarketingTopic]:
    """The topics the preferences page shows ticked: those the person may be sent now."""
    return [topic for topic in MarketingTopic if marketing.status_of(contact, topic).may_send]


def unsubscribe_from_all(contact: Contact) -> None:
    """No more marketing of any kind: the address goes on the suppression list, and every consent
    the person gave is withdrawn, with the time."""
    mail.suppress(contact.email)
    marketing.withdraw_consents(contact, list(MarketingTopic))
    db.session.flush()


# --- links ---------------------------------------------------------------------------------------


def request_for_confirmation(
    token: str, *, now: datetime | None = None
) -> SubscriptionRequest | None:
    """The request a confirmation link was minted for, or None for a wrong, tampered or expired
    link (the page answers 404)."""
    found = _token(token, LinkPurpose.confirm)
    if found is None or found.request is None:
        return None
    if found.created_at < (now or utcnow()) - timedelta(days=CONFIRM_DAYS):
        return None
    return found.request


def contact_for_preferences(token: str) -> Contact | None:
    """The contact a preferences link was minted for, or None for a wrong or tampered one. It
    never expires: an opt-out must work from any email, however old."""
    found = _token(token, LinkPurpose.preferences)
    return found.contact if found is not None else None


def _token(token: str, purpose: LinkPurpose) -> MarketingToken | None:
    if not token or len(token) > 100:
        return None
    found: MarketingToken | None = db.session.scalar(
        db.select(MarketingToken).where(
            MarketingToken.token_hash == hash_token(token), MarketingToken.purpose == purpose
        )
    )
    return found


def _mint(purpose: LinkPurpose, contact: Contact, request: SubscriptionRequest | None) -> str:
    token = new_token()
    links.store_row(
        MarketingToken,
        token_hash=hash_token(token),
        purpose=purpose,
        contact_id=contact.id,
        request_id=request.id if request is not None else None,
    )
    return token


def _mint_confirm_link(recipient: str, ref: str) -> str:
    """A confirmation link for request `ref`, only if the message goes to its contact's address."""
    if not ref.isdigit():
        raise links.LinkRefused(f"a confirmation link needs a request's number, not {ref[:20]!r}")
    request = db.session.get(SubscriptionRequest, int(ref))
    if request is None:  # erased since the email was queued: a link that leads nowhere
        return external_url("members.confirm_page", token=GONE)
    if mail.normalise_address(recipient) != mail.normalise_address(request.contact.email):
        raise links.LinkRefused(f"request {ref}'s confirmation link is not for this recipient")
    return external_url(
        "members.confirm_page", token=_mint(LinkPurpose.confirm, request.contact, request)
    )


def _load_contacts(refs: set[str]) -> list[Contact]:
    """The contacts a batch's preferences links name, in one query (`links.prefetch`)."""
    ids = [int(ref) for ref in refs if ref.isdigit()]
    if not ids:
        return []
    # Only what the minter reads: the whole row of 250 contacts cost a batch as much as its links.
    return list(
        db.session.scalars(
            db.select(Contact)
            .options(load_only(Contact.id, Contact.email))
            .where(one_of(Contact.id, ids))
        )
    )


def _mint_preferences_link(recipient: str, ref: str) -> str:
    """A preferences link for contact `ref`, only if the message goes to that contact's address."""
    if not ref.isdigit():
        raise links.LinkRefused(f"a preferences link needs a contact's number, not {ref[:20]!r}")
    contact = db.session.get(Contact, int(ref))
    if contact is None:
        return external_url("members.preferences", token=GONE)
    if mail.normalise_address(recipient) != mail.normalise_address(contact.email):
        raise links.LinkRefused(f"contact {ref}'s preferences link is not for this recipient")
    return external_url("members.preferences", token=_mint(LinkPurpose.preferences, contact, None))
