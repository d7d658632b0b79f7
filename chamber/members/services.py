"""Finding or creating businesses and contacts, so that one business or person is one row."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from chamber.core.dialects import insert_or_skip, on_postgresql
from chamber.core.text import fold
from chamber.core.times import utcnow
from chamber.core.written import rows_as_read
from chamber.extensions import db
from chamber.members.models import (
    Consent,
    Contact,
    LegalForm,
    MarketingTopic,
    Organisation,
    SizeBand,
)

M = TypeVar("M", Organisation, Contact)

# Legal-form words that do not tell two businesses apart: "Octree Ltd" is "OCTREE LIMITED".
LEGAL_SUFFIXES = {
    "ltd", "limited", "plc", "llp", "lp", "inc", "incorporated", "co", "company", "corp",
    "corporation", "cic", "uk", "group",
}  # fmt: skip


def normalise_organisation_name(name: str) -> str:
    """The key that tells businesses apart: case, accents, punctuation, a leading "The" and the
    legal form's words at the end do not ("Café Bon Appétit Ltd" is "CAFE BON APPETIT LIMITED",
    as a spreadsheet exported without accents spells it). Companies House's own "same as" rule
    reads names so, so no two registered businesses share a key."""
    text = fold(unicodedata.normalize("NFKC", name).casefold()) or ""
    text = text.replace("&", " and ")
    words = re.findall(r"[^\W_]+", text)
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)[:200] or text.strip()[:200]


# The endings the Companies Act requires of a company's or LLP's name, and allows no one else
# (a business that is not one may not end its name so): the name says the legal form.
_LEGAL_FORM_ENDINGS = {
    ("ltd",): LegalForm.limited_company, ("limited",): LegalForm.limited_company,
    ("plc",): LegalForm.limited_company, ("cic",): LegalForm.limited_company,
    ("cyf",): LegalForm.limited_company, ("cyfyngedig",): LegalForm.limited_company,
    ("ccc",): LegalForm.limited_company, ("llp",): LegalForm.llp,
    ("limited", "liability", "partnership"): LegalForm.llp,
}  # fmt: skip


def legal_form_from_name(name: str) -> LegalForm | None:
    """The legal form a business's name says ("Octree Ltd": a limited company; "Hart & Co LLP":
    an LLP), or None when it says none (its form is then not known)."""
    words = tuple(re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", name).casefold()))
    for length in (3, 1):
        if len(words) > length and (form := _LEGAL_FORM_ENDINGS.get(words[-length:])):
            return form
    return None


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Unread:
    """Not looked up yet (where None would mean "looked up, and there is none")."""


UNREAD = Unread()


def find_organisation(name: str) -> Organisation | None:
    """The business with this name (normalised), if we know it."""
    key = normalise_organisation_name(name)
    found: Organisation | None = db.session.scalar(
        db.select(Organisation).where(Organisation.name_normalised == key)
    )
    return found


def find_or_create_organisation(
    *,
    name: str,
    size_band: SizeBand,
    sector: str = "",
    town_or_postcode: str = "",
    is_member: bool = False,
    update_existing: bool = False,
    found: Organisation | None | Unread = UNREAD,
) -> Organisation:
    """The business with this name (normalised), or a new one made from what was typed.

    What a public form says about an existing business is not confirmed by anyone, so it changes
    nothing here (the booking keeps what was typed); only staff pass `update_existing`. A caller
    that has just looked the name up (`find_organisation`, in this transaction) passes what it
    found as `found`, so it is not read twice.
    """
    key = normalise_organisation_name(name)
    organisation = (
        db.session.scalar(db.select(Organisation).where(Organisation.name_normalised == key))
        if isinstance(found, Unread)
        else found
    )
    if organisation is None:
        organisation = _insert_unless_there(
            Organisation,
            Organisation.name_normalised,
            name=name.strip(),
            name_normalised=key,
            size_band=size_band,
            sector=sector,
            town_or_postcode=town_or_postcode,
            is_member=is_member,
            legal_form=legal_form_from_name(name) or LegalForm.unknown,
        )
    if update_existing:
        organisation.size_band = size_band
        organisation.sector = sector or organisation.sector or ""
        organisation.town_or_postcode = town_or_postcode or organisation.town_or_postcode or ""
        organisation.is_member = is_member or bool(organisation.is_member)
    db.session.flush()
    return organisation


# `_insert_unless_there`'s statements, made once for each database kind, table, key and set of
# columns, and kept: the values go as parameters, so no statement is built or coerced per row.
_INSERTS: dict[tuple[bool, str, str, tuple[str, ...]], Any] = {}


def _insert_statement(model: type[Any], key: str, columns: tuple[str, ...]) -> Any:
    """A Core INSERT (the ORM's own, returning objects, costs several times its CPU): the new
    row comes back whole, defaults and all, in the same round trip, and `core.written` makes the
    object."""
    kept = (on_postgresql(), model.__tablename__, key, columns)
    if kept not in _INSERTS:
        table = model.__table__
        _INSERTS[kept] = (
            insert_or_skip(table)  # a statement for the session's database
            .on_conflict_do_nothing(index_elements=[key])
            .returning(*table.c)
        )
    return _INSERTS[kept]


def _insert_unless_there(model: type[M], key: InstrumentedAttribute[str], **values: object) -> M:
    """The row with `values`, inserted, or the one already there with the same unique key (or
    inserted by another transaction meanwhile): INSERT ... ON CONFLICT DO NOTHING waits for that
    transaction and then leaves its row, where a plain INSERT would fail the whole request. Races
    between bookings (two at once naming the same new business or person) end here, not in an
    error. A new row comes back from the INSERT itself; one already there costs a SELECT."""
    statement = _insert_statement(model, key.key, tuple(values))
    row = db.session.execute(statement, values).first()
    found: M | None = rows_as_read(model, [row])[0] if row is not None else None
    if found is None:
        found = db.session.scalar(db.select(model).where(key == values[key.key]))
    assert found is not None
    return found


def find_or_create_contact(
    *,
    email: str,
    name: str,
    organisation: Organisation | None = None,
    job_title: str = "",
    phone: str = "",
    update_existing: bool = False,
    soft_opt_in_at: datetime | None = None,
    confirmed: bool = False,
) -> Contact:
    """The person with this email (case-insensitive), or a new one made from what was typed.

    An existing contact is changed only when `update_existing` is passed: by staff, or by the
    person themselves through a link sent to their address. Anonymous input never overwrites.
    `soft_opt_in_at` is given to a new contact only (a booker who took the soft opt-in, so that
    `marketing.record_booking_choice` has nothing left to write); someone we know keeps theirs.
    `confirmed`: staff typed the address, or the person stands before them
    (`Contact.address_confirmed_at`); a public form's is not.
    """
    key = normalise_email(email)
    now = utcnow()
    db.session.flush()  # the organisation, for its id
    # Most people booking are new: the INSERT comes first, and someone we know costs a SELECT
    # after it, not every new person a SELECT before (`_insert_unless_there`).
    contact = _insert_unless_there(
        Contact,
        Contact.email,
        email=key,
        name=name.strip(),
        organisation_id=organisation.id if organisation else None,
        job_title=job_title,
        phone=phone,
        address_confirmed_at=now if confirmed else None,
        **({"soft_opt_in_at": soft_opt_in_at} if soft_opt_in_at else {}),
    )
    if confirmed:
        confirm_addresses([contact.id], now)
    if update_existing:
        _update_contact(contact, name, organisation, job_title, phone)
        db.session.flush()
    return contact


@dataclass(frozen=True)
class PersonTyped:
    """A person as a form gave them: for `find_or_create_contacts`."""

    email: str
    name: str
    job_title: str = ""
    phone: str = ""
    soft_opt_in_at: datetime | None = None  # for a new contact only (`find_or_create_contact`)


def find_or_create_contacts(
    people: list[PersonTyped],
    *,
    organisation: Organisation | None = None,
    update_existing: bool = False,
    confirmed: bool = False,
) -> dict[str, Contact]:
    """`find_or_create_contact` for several people at once (a booking's booker and delegates), by
    normalised address: the new ones in one INSERT ... ON CONFLICT DO NOTHING, and those we knew
    (or another transaction added meanwhile) in one SELECT after it. A person named twice is
    written as first named (a booker who is also a delegate: as the booker, with their soft
    opt-in); with `update_existing` every entry is applied in turn, as one call each would;
    `confirmed` as for `find_or_create_contact`."""
    db.session.flush()  # the organisation, for its id
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for person in people:
        key = normalise_email(person.email)
        rows.setdefault(
            key,
            {
                "email": key,
                "name": person.name.strip(),
                "organisation_id": organisation.id if organisation else None,
                "job_title": person.job_title,
                "phone": person.phone,
                "soft_opt_in_at": person.soft_opt_in_at,
                "address_confirmed_at": now if confirmed else None,
            },
        )
    # In the order of the addresses, whatever the order named: two bookings naming the same new
    # people at once then take their rows in the same order, and one waits for the other rather
    # than each holding one the other needs (a deadlock).
    rows = dict(sorted(rows.items()))
    columns = (
        "email", "name", "organisation_id", "job_title", "phone", "soft_opt_in_at",
        "address_confirmed_at",
    )  # fmt: skip
    statement = _insert_statement(Contact, "email", columns)
    # Every row with every column, None as NULL, so that all go in one statement.
    written = rows_as_read(Contact, db.session.execute(statement, list(rows.values())))
    found = {c.email: c for c in written}
    if known := [key for key in rows if key not in found]:
        found.update(
            (c.email, c)
            for c in db.session.scalars(db.select(Contact).where(Contact.email.in_(known)))
        )
    if confirmed and known:
        confirm_addresses((found[key].id for key in known), now)
    if update_existing:
        for person in people:
            _update_contact(
                found[normalise_email(person.email)],
                person.name,
                organisation,
                person.job_title,
                person.phone,
            )
        db.session.flush()
    return found


def confirm_addresses(contact_ids: Iterable[int], now: datetime | None = None) -> None:
    """Record that these contacts' addresses are shown to be theirs (`Contact.address_confirmed_at`,
    the first time only): staff or an import recorded them, they came to an event, confirmed a
    subscription or acted through a link sent to the address."""
    ids = sorted(set(contact_ids))
    if not ids:
        return
    db.session.execute(
        update(Contact)
        .where(Contact.id.in_(ids), Contact.address_confirmed_at.is_(None))
        .values(address_confirmed_at=now or utcnow())
        .execution_options(synchronize_session="fetch")
    )


def unconfirm_address(contact_id: int, confirmed_at: datetime) -> None:
    """Take back the confirmation given at `confirmed_at` (a check-in undone: it was someone else
    at the door); one given at another time, by something else, stays."""
    db.session.execute(
        update(Contact)
        .where(Contact.id == contact_id, Contact.address_confirmed_at == confirmed_at)
        .values(address_confirmed_at=None)
        .execution_options(synchronize_session="fetch")
    )


def _update_contact(
    contact: Contact, name: str, organisation: Organisation | None, job_title: str, phone: str
) -> None:
    """What staff (or the person, through their own link) typed, over what we had."""
    contact.name = name.strip()
    contact.organisation = organisation or contact.organisation
    contact.job_title = job_title or contact.job_title or ""
    contact.phone = phone or contact.phone or ""


def request_consent(
    contact: Contact, wording: str, *, source: str, purpose: str = MarketingTopic.events.value
) -> Consent:
    """A request for marketing, as ticked on a form: unconfirmed, so no marketing may use it.

    Anyone can type anyone's address into a form, so a tick is not proof; the person confirms by
    answering an email to that address (double opt-in, still to come), which sets `confirmed_at`.
    """
    consent = Consent(
        contact=contact, purpose=purpose, wording=wording, source=source, given_at=utcnow()
    )
    db.session.add(consent)
    db.session.flush()
    return consent


def has_confirmed_consent(contact: Contact, purpose: str = MarketingTopic.events.value) -> bool:
    """Whether the person has confirmed (and not withdrawn) consent for `purpose`."""
    return (
        db.session.scalar(
            db.select(Consent.id)
            .where(
                Consent.contact_id == contact.id,
                Consent.purpose == purpose,
                Consent.confirmed_at.is_not(None),
                Consent.withdrawn_at.is_(None),
            )
            .limit(1)
        )
        is not None
    )
