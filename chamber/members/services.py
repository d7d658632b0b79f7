"""Finding or creating businesses and contacts, so that one business or person is one row."""

from __future__ import annotations

import re
import unicodedata

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.members.models import Consent, Contact, Organisation, SizeBand

# Legal-form words that do not tell two businesses apart: "Octree Ltd" is "OCTREE LIMITED".
LEGAL_SUFFIXES = {
    "ltd", "limited", "plc", "llp", "lp", "inc", "incorporated", "co", "company", "corp",
    "corporation", "cic", "uk", "group",
}  # fmt: skip


def normalise_organisation_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold().replace("&", " and ")
    words = re.findall(r"[^\W_]+", text)
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)[:200] or text.strip()[:200]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_or_create_organisation(
    *,
    name: str,
    size_band: SizeBand,
    sector: str = "",
    town_or_postcode: str = "",
    is_member: bool = False,
) -> Organisation:
    """The business with this name (normalised), its details refreshed from what was typed."""
    key = normalise_organisation_name(name)
    organisation = db.session.scalar(
        db.select(Organisation).where(Organisation.name_normalised == key)
    )
    if organisation is None:
        organisation = Organisation(name=name.strip(), name_normalised=key)
        db.session.add(organisation)
    organisation.size_band = size_band
    organisation.sector = sector or organisation.sector or ""
    organisation.town_or_postcode = town_or_postcode or organisation.town_or_postcode or ""
    organisation.is_member = is_member or bool(organisation.is_member)
    db.session.flush()
    return organisation


def find_or_create_contact(
    *,
    email: str,
    name: str,
    organisation: Organisation | None = None,
    job_title: str = "",
    phone: str = "",
) -> Contact:
    """The person with this email (case-insensitive), with the latest name and details."""
    key = normalise_email(email)
    contact = db.session.scalar(db.select(Contact).where(Contact.email == key))
    if contact is None:
        contact = Contact(email=key)
        db.session.add(contact)
    contact.name = name.strip()
    contact.organisation = organisation or contact.organisation
    contact.job_title = job_title or contact.job_title or ""
    contact.phone = phone or contact.phone or ""
    db.session.flush()
    return contact


def record_consent(contact: Contact, wording: str, purpose: str = "future_events") -> Consent:
    consent = Consent(contact=contact, purpose=purpose, wording=wording, given_at=utcnow())
    db.session.add(consent)
    db.session.flush()
    return consent
