"""Businesses (organisations) and the people at them (contacts), with their consent to hear from us."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

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


class Organisation(db.Model):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # "Octree Ltd", "OCTREE LIMITED" and "octree" are one business: see members.services.
    name_normalised: Mapped[str] = mapped_column(String(200), unique=True)
    size_band: Mapped[SizeBand] = mapped_column(enum_type(SizeBand))
    sector: Mapped[str] = mapped_column(String(100), default="")
    town_or_postcode: Mapped[str] = mapped_column(String(100), default="")
    is_member: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Contact(db.Model):
    """A person, known by email address (unique, case-insensitive)."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased
    job_title: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()


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
    purpose: Mapped[str] = mapped_column(String(40), default="future_events")
    wording: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40), default="booking form")
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # asked for at
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    contact: Mapped[Contact] = relationship()

    @property
    def is_confirmed(self) -> bool:
        """Whether marketing may rely on it: confirmed by the person, and not withdrawn."""
        return self.confirmed_at is not None and self.withdrawn_at is None
