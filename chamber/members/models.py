"""The member directory: businesses (organisations) and the people at them (contacts), their
membership, and what we may send them (consent, topics, the soft opt-in): docs/directory.md."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, func
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from chamber.core.addresses import address_hash
from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.extensions import db


class SizeBand(enum.StrEnum):
    """The UK's SME bands by number of employees."""

    micro = "micro"
    small = "small"
    medium = "medium"
    large = "large"

    @property
    def label(self) -> str:
        return {
            "micro": "Micro (1 to 9 employees)",
            "small": "Small (10 to 49 employees)",
            "medium": "Medium (50 to 249 employees)",
            "large": "Large (250 or more employees)",
        }[self.value]

    @property
    def short_label(self) -> str:
        return {"micro": "Micro", "small": "Small", "medium": "Medium", "large": "Large"}[
            self.value
        ]

    @property
    def is_sme(self) -> bool:
        return self is not SizeBand.large


class LegalForm(enum.StrEnum):
    """What kind of subscriber a business is under PECR, which decides whether business-to-business
    marketing needs consent (docs/directory.md, "Lawful to email")."""

    unknown = "unknown"
    limited_company = "limited_company"
    llp = "llp"
    public_body = "public_body"
    other_corporate = "other_corporate"
    sole_trader = "sole_trader"
    partnership = "partnership"

    @property
    def label(self) -> str:
        return {
            "unknown": "Not known",
            "limited_company": "Limited company (Ltd, plc, CIC)",
            "llp": "Limited liability partnership (LLP)",
            "public_body": "Public body (council, school, NHS)",
            "other_corporate": "Other corporate body (charitable company, CIO, Scottish partnership)",
            "sole_trader": "Sole trader",
            "partnership": "Partnership (England, Wales, Northern Ireland)",
        }[self.value]

    @property
    def is_corporate_subscriber(self) -> bool:
        """A corporate subscriber may be sent business-to-business marketing with an opt-out; an
        individual one (or one we know nothing about) only with consent or a soft opt-in."""
        return self in (
            LegalForm.limited_company,
            LegalForm.llp,
            LegalForm.public_body,
            LegalForm.other_corporate,
        )


class Organisation(db.Model):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # "Octree Ltd", "OCTREE LIMITED" and "octree" are one business: see members.services.
    name_normalised: Mapped[str] = mapped_column(String(200), unique=True)
    size_band: Mapped[SizeBand] = mapped_column(enum_type(SizeBand))
    legal_form: Mapped[LegalForm] = mapped_column(
        enum_type(LegalForm), default=LegalForm.unknown, server_default=LegalForm.unknown.value
    )
    sector: Mapped[str] = mapped_column(String(100), default="")
    # The town (the public booking form asks for "town or postcode"; the directory keeps both).
    town_or_postcode: Mapped[str] = mapped_column(String(100), default="")
    postcode: Mapped[str] = mapped_column(String(12), default="", server_default="")
    website: Mapped[str] = mapped_column(String(300), default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Membership of the chamber: a member now, or not; a lapsed member has `lapsed_on` and is not.
    is_member: Mapped[bool] = mapped_column(default=False)
    membership_tier: Mapped[str] = mapped_column(String(60), default="", server_default="")
    member_since: Mapped[date | None] = mapped_column(Date())
    renews_on: Mapped[date | None] = mapped_column(Date())
    lapsed_on: Mapped[date | None] = mapped_column(Date())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    tags: Mapped[list[OrganisationTag]] = relationship(
        back_populates="organisation",
        cascade="all, delete-orphan",
        order_by="OrganisationTag.tag",
    )

    @property
    def tag_names(self) -> list[str]:
        return [tag.tag for tag in self.tags]


# A business's name found anywhere in it (`lower(name) LIKE '%term%'`, the registrations list and
# the door's search) without reading every business: a trigram index, on PostgreSQL only
# (pg_trgm; SQLite has no such index, and its planner reaches the businesses through an event's
# bookings instead).
Index(
    "ix_organisation_name_trigram",
    func.lower(Organisation.name).label("name_lower"),
    postgresql_using="gin",
    postgresql_ops={"name_lower": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")


class OrganisationTag(db.Model):
    """A staff label on a business ("board", "sponsor 2027"): lower-cased, so one spelling each."""

    __tablename__ = "organisation_tag"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)

    organisation: Mapped[Organisation] = relationship(back_populates="tags")


class ContactRole(enum.StrEnum):
    main = "main"
    billing = "billing"
    other = "other"

    @property
    def label(self) -> str:
        return {"main": "Main contact", "billing": "Billing", "other": "Other"}[self.value]


class MarketingTopic(enum.StrEnum):
    """What marketing is about; a person may want some and not others (the preferences page)."""

    events = "events"
    newsletter = "newsletter"
    surveys = "surveys"

    @property
    def label(self) -> str:
        return {
            "events": "Events and seminars",
            "newsletter": "The chamber's newsletter",
            "surveys": "Surveys about business needs",
        }[self.value]


def _email_hash_of_row(context: DefaultExecutionContext) -> str:
    return address_hash(str(context.get_current_parameters()["email"]))


class Contact(db.Model):
    """A person, known by email address (unique, case-insensitive)."""

    __tablename__ = "contact"
    __table_args__ = (Index("ix_contact_name", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased
    # `core.addresses.address_hash(email)`, kept by the model alone: filled on every insert (ORM or
    # not) and on every change of `email` through the ORM. The marketing rules and segments find
    # suppressed contacts by it in SQL, also those the list holds only as a hash (docs/privacy.md).
    email_hash: Mapped[str] = mapped_column(String(64), index=True, default=_email_hash_of_row)
    job_title: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    role: Mapped[ContactRole] = mapped_column(
        enum_type(ContactRole), default=ContactRole.other, server_default=ContactRole.other.value
    )
    # When they booked one of our events on a form that offered them an opt-out of news of future
    # events and did not take it: the soft opt-in (docs/directory.md).
    soft_opt_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the address was shown to be theirs: staff or an import recorded them (the default, as
    # they are made), they confirmed a subscription, came to an event, or acted through a link
    # sent to it. An address typed on a public form is made without it (`find_or_create_contact`,
    # `confirmed=False`): until then it is no corporate subscriber's and has no soft opt-in
    # (`marketing.status`, docs/marketing.md).
    address_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)
    # When retention or erasure took their name and contact details (privacy.anonymise).
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation | None] = relationship()

    @validates("email")
    def _keep_email_hash(self, _key: str, email: str) -> str:
        self.email_hash = address_hash(email)
        return email


class TopicOptOut(db.Model):
    """A topic a person asked not to hear about (the preferences page): marketing on that topic
    leaves them out, whatever else would allow it."""

    __tablename__ = "topic_opt_out"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[MarketingTopic] = mapped_column(enum_type(MarketingTopic), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Consent(db.Model):
    """Consent to hear about future events: when, where, and the exact wording the person saw.

    A tick on a public form is only a request (`confirmed_at` empty): anyone can type anyone's
    address, so it is not proof. Marketing may rely only on a consent that is confirmed (the
    person answered an email sent to that address) and not withdrawn: see `is_confirmed`.
    """

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(40), default=MarketingTopic.events.value)  # a topic
    wording: Mapped[str] = mapped_column(Text)
    # "booking form", "subscribe form", "preferences page", "import" (wording: the basis the
    # import stated), "staff note" (staff recorded what the person told them).
    source: Mapped[str] = mapped_column(String(40), default="booking form")
    # The subscribe form's request it was asked for in: its confirmation link confirms them all.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscription_request.id", ondelete="SET NULL"), index=True
    )
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # asked for at
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The privacy notice's version the person was shown when they gave it (None: not given on a
    # public page, or given before notices were versioned).
    privacy_notice_version: Mapped[int | None]
    # Who recorded it or its withdrawal, when staff did (an import, a staff note): their email,
    # kept as it was even once their account is gone. Empty when the person did it themselves.
    recorded_by: Mapped[str] = mapped_column(String(254), default="", server_default="")
    withdrawn_by: Mapped[str] = mapped_column(String(254), default="", server_default="")

    contact: Mapped[Contact] = relationship()

    @property
    def is_confirmed(self) -> bool:
        """Whether marketing may rely on it: confirmed by the person, and not withdrawn."""
        return self.confirmed_at is not None and self.withdrawn_at is None


class SubscriptionRequest(db.Model):
    """One sending of the public subscribe form: the consents it asked for (one per topic) wait
    for the person to confirm them through the link emailed to the address (double opt-in)."""

    __tablename__ = "subscription_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), index=True
    )
    # As typed, for staff: a public form never links a person to a business (docs/marketing.md).
    organisation_as_typed: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    privacy_notice_version: Mapped[int | None]  # the notice's version the form linked

    contact: Mapped[Contact] = relationship()


class LinkPurpose(enum.StrEnum):
    confirm = "confirm"  # confirms a subscription request
    preferences = "preferences"  # a person's choice of topics, or unsubscribing from all


class MarketingToken(db.Model):
    """The hash of a confirmation or preferences link's secret, minted when its email is sent."""

    __tablename__ = "marketing_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[LinkPurpose] = mapped_column(enum_type(LinkPurpose))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscription_request.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    contact: Mapped[Contact] = relationship()
    request: Mapped[SubscriptionRequest | None] = relationship()


class MergeKind(enum.StrEnum):
    organisation = "organisation"
    contact = "contact"


class MergeRecord(db.Model):
    """Two organisations or two contacts that staff found to be the same, merged into one: which
    was kept, the removed row as it was (its snapshot), what moved to the kept one, by whom, when.

    The ids are not foreign keys: the removed row is gone, and the kept one may later be merged
    or erased in its turn, while the record of what was done stays."""

    __tablename__ = "merge_record"
    __table_args__ = (Index("ix_merge_record_kind_kept_id", "kind", "kept_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MergeKind] = mapped_column(enum_type(MergeKind))
    kept_id: Mapped[int]
    removed_id: Mapped[int]
    removed_snapshot: Mapped[dict] = mapped_column(JSON)
    # What moved to the kept row: a list of ids per kind of row, and the fields filled from it.
    moved: Mapped[dict] = mapped_column(JSON)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    by_email: Mapped[str] = mapped_column(String(254))  # who, even once their account is gone
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
