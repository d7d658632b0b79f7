"""Staff changes to the member directory (docs/directory.md): create, edit, archive and restore
organisations and contacts, and the members' half of merging two that are the same (the rows of
layers above, such as bookings, are moved by `directory.merging`). Functions flush and never
commit; the acting staff user is passed in as `by`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from chamber.auth.models import StaffUser
from chamber.core import transactions
from chamber.core.dialects import on_postgresql
from chamber.core.errors import Refusal
from chamber.core.forms import EMAIL_FORMAT, text_problem
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.members.marketing import withdraw_consents
from chamber.members.models import (
    Consent,
    Contact,
    ContactRole,
    LegalForm,
    MarketingToken,
    MarketingTopic,
    MergeKind,
    MergeRecord,
    Organisation,
    OrganisationTag,
    SizeBand,
    SubscriptionRequest,
    TopicOptOut,
)
from chamber.members.services import normalise_email, normalise_organisation_name

log = logging.getLogger(__name__)

TAG_MAX = 40  # the column's length
TAGS_MAX = 20
_POSTCODE = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,11}")
_WEBSITE = re.compile(r"(?:https?://)?[^\s/:@]+\.[^\s/:@]+(?::\d{1,5})?(?:/\S*)?", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

R = TypeVar("R", Organisation, Contact)


class DirectoryRefused(Refusal):
    """A change to the directory that would break one of its rules; the message says what to do."""


# --- what staff type ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationInput:
    name: str
    size_band: SizeBand
    legal_form: LegalForm = LegalForm.unknown
    sector: str = ""
    town_or_postcode: str = ""
    postcode: str = ""
    website: str = ""
    tags: str = ""  # a comma-separated list, as typed
    notes: str = ""
    is_member: bool = False
    membership_tier: str = ""
    member_since: date | None = None
    renews_on: date | None = None
    lapsed_on: date | None = None


@dataclass(frozen=True)
class ContactInput:
    name: str
    email: str
    job_title: str = ""
    phone: str = ""
    role: ContactRole = ContactRole.other
    organisation: str = ""  # the organisation's name, matched as names are; "" for none


ORGANISATION_LABELS = {
    "name": "Name", "sector": "Sector", "town_or_postcode": "Town", "postcode": "Postcode",
    "website": "Website", "notes": "Notes", "membership_tier": "Membership tier",
}  # fmt: skip
CONTACT_LABELS = {
    "name": "Full name", "email": "Email address", "job_title": "Job title", "phone": "Phone",
}  # fmt: skip


def parse_tags(text: str) -> list[str]:
    """Tags from a comma-separated list: trimmed, lower-cased, each once, in the order typed."""
    tags: list[str] = []
    for part in text.split(","):
        tag = " ".join(part.split()).lower()
        if not tag or tag in tags:
            continue
        if len(tag) > TAG_MAX:
            raise DirectoryRefused(
                f"Each tag must be {TAG_MAX} characters or fewer: “{tag[:TAG_MAX]}…” is "
                f"{len(tag)}.",
                field="tags",
            )
        tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise DirectoryRefused(
            f"An organisation can have at most {TAGS_MAX} tags; this list has {len(tags)}.",
            field="tags",
        )
    return tags


def _checked_text(model: type[Any], values: dict[str, Any], labels: dict[str, str]) -> None:
    """Refuse text the column cannot hold or no person types (the form says the same first; this
    guards every other caller, such as an import)."""
    for name, label in labels.items():
        text = values[name]
        limit = model.__table__.c[name].type.length
        if limit is not None and len(text) > limit:
            raise DirectoryRefused(f"{label} must be {limit} characters or fewer.", field=name)
        problem = text_problem(text, multiline=name == "notes")
        if problem:
            raise DirectoryRefused(f"{label} {problem}", field=name)


def _organisation_values(details: OrganisationInput) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": " ".join(details.name.split()),
        "size_band": details.size_band,
        "legal_form": details.legal_form,
        "sector": details.sector.strip(),
        "town_or_postcode": details.town_or_postcode.strip(),
        "postcode": " ".join(details.postcode.upper().split()),
        "website": details.website.strip(),
        "notes": details.notes.strip(),
        "is_member": details.is_member,
        "membership_tier": details.membership_tier.strip(),
        "member_since": details.member_since,
        "renews_on": details.renews_on,
        "lapsed_on": details.lapsed_on,
    }
    if not values["name"]:
        raise DirectoryRefused("Enter the organisation's name.", field="name")
    _checked_text(Organisation, values, ORGANISATION_LABELS)
    if values["postcode"] and not _POSTCODE.fullmatch(values["postcode"]):
        raise DirectoryRefused(
            "Postcode must be letters and numbers only, like SG1 1HS.", field="postcode"
        )
    if values["website"] and not _WEBSITE.fullmatch(values["website"]):
        raise DirectoryRefused(
            "Website must be a web address, like www.example.co.uk.", field="website"
        )
    since, renews, lapsed = details.member_since, details.renews_on, details.lapsed_on
    if details.is_member and lapsed:
        raise DirectoryRefused(
            "A current member has no lapsed date: clear “Lapsed on”, or untick “Member of the "
            "chamber” if their membership has lapsed.",
            field="lapsed_on",
        )
    if since and renews and renews < since:
        raise DirectoryRefused("“Renews on” must be after “Member since”.", field="renews_on")
    if since and lapsed and lapsed < since:
        raise DirectoryRefused("“Lapsed on” must be after “Member since”.", field="lapsed_on")
    return values


def _contact_values(details: ContactInput) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": " ".join(details.name.split()),
        "email": normalise_email(details.email),
        "job_title": details.job_title.strip(),
        "phone": details.phone.strip(),
        "role": details.role,
    }
    if not values["name"]:
        raise DirectoryRefused("Enter the person's full name.", field="name")
    if not _EMAIL.fullmatch(values["email"]):
        raise DirectoryRefused(EMAIL_FORMAT, field="email")
    _checked_text(Contact, values, CONTACT_LABELS)
    values["organisation_id"] = _organisation_named(details.organisation)
    return values


def _organisation_named(name: str) -> int | None:
    if not name.strip():
        return None
    found: Organisation | None = db.session.scalar(
        select(Organisation).where(
            Organisation.name_normalised == normalise_organisation_name(name)
        )
    )
    if found is None:
        raise DirectoryRefused(
            f"No organisation in the directory matches “{name.strip()[:200]}”. Check the "
            "spelling, or add the organisation first.",
            field="organisation",
        )
    if found.archived_at is not None:
        raise DirectoryRefused(
            f"{found.name} is archived: restore it first, or choose another organisation.",
            field="organisation",
        )
    return found.id


# --- locking --------------------------------------------------------------------------------------


def locked(model: type[R], ids: list[int]) -> dict[int, R]:
    """The rows with these ids, locked until the transaction ends and read again under the lock
    (those that no longer exist are missing), so an edit and a merge of the same row queue one
    behind the other and the second sees what the first committed. As a request's first write,
    the reads before it are ended first (`transactions.end_reads`; on SQLite a transaction that
    has read cannot always become a writer); in a transaction that has written, it already holds
    SQLite's write lock, and PostgreSQL locks the rows where it is.

    PostgreSQL locks the rows (SELECT ... FOR UPDATE, in id order, so two merges of the same pair
    named either way round cannot deadlock); SQLite, which has one writer at a time and ignores
    FOR UPDATE, is given a write that changes nothing, to take its lock now rather than fail to
    become a writer later."""
    wanted = sorted(set(ids))
    if not transactions.has_written():
        transactions.end_reads()
    if not on_postgresql():
        db.session.execute(
            update(model)
            .where(model.id.in_(wanted))
            .values(updated_at=model.updated_at)
            .execution_options(synchronize_session=False)
        )
    rows = db.session.scalars(
        select(model)
        .where(model.id.in_(wanted))
        .order_by(model.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.id: row for row in rows}


def _locked_one(model: type[R], row_id: int, what: str) -> R:
    found = locked(model, [row_id]).get(row_id)
    if found is None:
        raise DirectoryRefused(
            f"This {what} is no longer in the directory: it was merged into another or removed "
            "meanwhile. Find it again in the list."
        )
    return found


def _flush(clash: DirectoryRefused) -> None:
    """Flush, turning a uniqueness race the database caught (the same name or email saved by
    another request after we looked) into the refusal we would have given."""
    try:
        db.session.flush()
    except IntegrityError as error:
        raise clash from error


# --- organisations --------------------------------------------------------------------------------


def _name_clash(key: str, other: Organisation | None) -> DirectoryRefused:
    name = other.name if other else "Another organisation"
    return DirectoryRefused(
        f"{name} is already in the directory under a name that matches this one. Open it and "
        "change it there, or merge the two.",
        field="name",
    )


def _organisation_with_key(key: str, *, except_id: int | None = None) -> Organisation | None:
    query = select(Organisation).where(Organisation.name_normalised == key)
    if except_id is not None:
        query = query.where(Organisation.id != except_id)
    found: Organisation | None = db.session.scalar(query)
    return found


def _set_tags(organisation: Organisation, tags: list[str]) -> None:
    existing = {tag.tag: tag for tag in organisation.tags}  # kept rows stay: no delete-and-insert
    organisation.tags = [existing.get(tag) or OrganisationTag(tag=tag) for tag in tags]


def create_organisation(details: OrganisationInput, *, by: StaffUser) -> Organisation:
    values = _organisation_values(details)
    tags = parse_tags(details.tags)
    key = normalise_organisation_name(values["name"])
    if other := _organisation_with_key(key):
        raise _name_clash(key, other)
    organisation = Organisation(name_normalised=key, **values)
    _set_tags(organisation, tags)
    db.session.add(organisation)
    _flush(_name_clash(key, None))
    log.info("%s added organisation %s", by.email, organisation.id)
    return organisation


def edit_organisation(
    organisation_id: int, details: OrganisationInput, *, by: StaffUser
) -> Organisation:
    """Save what staff typed over the organisation (a staff-confirmed record)."""
    values = _organisation_values(details)
    tags = parse_tags(details.tags)
    organisation = _locked_one(Organisation, organisation_id, "organisation")
    key = normalise_organisation_name(values["name"])
    if other := _organisation_with_key(key, except_id=organisation.id):
        raise _name_clash(key, other)
    for name, value in values.items():
        setattr(organisation, name, value)
    organisation.name_normalised = key
    _set_tags(organisation, tags)
    _flush(_name_clash(key, None))
    log.info("%s edited organisation %s", by.email, organisation.id)
    return organisation


def archive_organisation(organisation_id: int, *, by: StaffUser) -> Organisation:
    organisation = _locked_one(Organisation, organisation_id, "organisation")
    if organisation.archived_at is not None:
        raise DirectoryRefused(f"{organisation.name} is already archived.")
    organisation.archived_at = utcnow()
    db.session.flush()
    log.info("%s archived organisation %s", by.email, organisation.id)
    return organisation


def restore_organisation(organisation_id: int, *, by: StaffUser) -> Organisation:
    organisation = _locked_one(Organisation, organisation_id, "organisation")
    if organisation.archived_at is None:
        raise DirectoryRefused(f"{organisation.name} is not archived.")
    organisation.archived_at = None
    db.session.flush()
    log.info("%s restored organisation %s", by.email, organisation.id)
    return organisation


# --- contacts -------------------------------------------------------------------------------------


def _email_clash(other: Contact | None) -> DirectoryRefused:
    who = f"{other.name} already has" if other else "Another contact already has"
    return DirectoryRefused(
        f"{who} this email address. Open their record to change it, or merge the two.",
        field="email",
    )


def contact_with_email(email: str | None, *, except_id: int | None = None) -> Contact | None:
    """The contact who holds `email` (typed in any case), other than `except_id`."""
    if not email or "\x00" in email:  # PostgreSQL takes no NUL in text; nobody's address has one
        return None
    query = select(Contact).where(Contact.email == normalise_email(email))
    if except_id is not None:
        query = query.where(Contact.id != except_id)
    found: Contact | None = db.session.scalar(query)
    return found


def create_contact(details: ContactInput, *, by: StaffUser) -> Contact:
    values = _contact_values(details)
    if other := contact_with_email(values["email"]):
        raise _email_clash(other)
    contact = Contact(**values)  # staff recorded it: confirmed as made
    db.session.add(contact)
    _flush(_email_clash(None))
    log.info("%s added contact %s", by.email, contact.id)
    return contact


def edit_contact(contact_id: int, details: ContactInput, *, by: StaffUser) -> Contact:
    """Save what staff typed over the contact (a staff-confirmed record)."""
    values = _contact_values(details)
    contact = _locked_one(Contact, contact_id, "contact")
    if other := contact_with_email(values["email"], except_id=contact.id):
        raise _email_clash(other)
    if values["email"] != contact.email:
        _revoke_links(contact.id)
        contact.address_confirmed_at = utcnow()  # the new address is the one staff recorded
    for name, value in values.items():
        setattr(contact, name, value)
    _flush(_email_clash(None))
    log.info("%s edited contact %s", by.email, contact.id)
    return contact


def _revoke_links(contact_id: int) -> list[int]:
    """Forget a contact's confirmation and preferences links, when the address they were sent to
    is no longer the contact's: a preferences link lets whoever holds it see the address and
    choose what is sent to it, and the old mailbox (a job left, say) may now be someone else's.
    The one-click unsubscribe in each email sent to the old address still works (it is the
    address's, `docs/mail.md`). Returns the ids of the links forgotten."""
    ids = _ids(select(MarketingToken.id).where(MarketingToken.contact_id == contact_id))
    if ids:
        db.session.execute(
            delete(MarketingToken)
            .where(MarketingToken.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return ids


def archive_contact(contact_id: int, *, by: StaffUser) -> Contact:
    contact = _locked_one(Contact, contact_id, "contact")
    if contact.archived_at is not None:
        raise DirectoryRefused(f"{contact.name} is already archived.")
    contact.archived_at = utcnow()
    db.session.flush()
    log.info("%s archived contact %s", by.email, contact.id)
    return contact


def restore_contact(contact_id: int, *, by: StaffUser) -> Contact:
    contact = _locked_one(Contact, contact_id, "contact")
    if contact.archived_at is None:
        raise DirectoryRefused(f"{contact.name} is not archived.")
    contact.archived_at = None
    db.session.flush()
    log.info("%s restored contact %s", by.email, contact.id)
    return contact


def lift_bounce(contact_id: int, *, by: StaffUser) -> Contact:
    """Staff lift a hard bounce after the person fixed their mailbox: their address leaves the
    suppression list, and marketing may reach it again on its lawful basis. Their own
    unsubscribe, if any, is never lifted here."""
    contact = _locked_one(Contact, contact_id, "contact")
    if not mail.lift_bounce(contact.email):
        raise DirectoryRefused(f"{contact.name}'s email has no bounce to lift.")
    db.session.flush()
    log.info("%s lifted the email bounce of contact %s", by.email, contact.id)
    return contact


# --- consent staff record -------------------------------------------------------------------------

CONSENT_WORDING_MAX = 1000
STAFF_NOTE = "staff note"


def _consent_topics(topics: list[MarketingTopic]) -> list[MarketingTopic]:
    chosen = list(dict.fromkeys(topics))
    if not chosen:
        raise DirectoryRefused("Choose at least one topic.", field="topics")
    return chosen


def record_consent(
    contact_id: int,
    topics: list[MarketingTopic],
    wording: str,
    *,
    by: StaffUser,
    now: datetime | None = None,
) -> list[Consent]:
    """Staff record, as a note, the consent the person gave them (on the phone, at an event, in
    a letter): one confirmed consent per topic, with the wording the person agreed to, source
    "staff note", the time and who recorded it. The person chose these topics, so their opt-outs
    of them end; an unsubscribe from everything or a bounce stays (the rule puts it first)."""
    chosen = _consent_topics(topics)
    wording = wording.strip()
    if not wording:
        raise DirectoryRefused(
            "Enter what the person agreed to, in the words they were given.", field="wording"
        )
    if len(wording) > CONSENT_WORDING_MAX:
        raise DirectoryRefused(
            f"The wording can be at most {CONSENT_WORDING_MAX:,} characters.", field="wording"
        )
    problem = text_problem(wording, multiline=True)
    if problem:
        raise DirectoryRefused(f"The wording {problem}", field="wording")
    contact = _locked_one(Contact, contact_id, "contact")
    now = now or utcnow()
    consents = [
        Consent(
            contact_id=contact.id, purpose=topic.value, wording=wording, source=STAFF_NOTE,
            given_at=now, confirmed_at=now, recorded_by=by.email,
        )
        for topic in chosen
    ]  # fmt: skip
    db.session.add_all(consents)
    db.session.execute(
        db.delete(TopicOptOut).where(
            TopicOptOut.contact_id == contact.id, TopicOptOut.topic.in_(chosen)
        )
    )
    db.session.flush()
    log.info("%s recorded consent for contact %s", by.email, contact.id)
    return consents


def record_withdrawal(
    contact_id: int, topics: list[MarketingTopic], *, by: StaffUser, now: datetime | None = None
) -> int:
    """Staff record that the person withdrew their consent to `topics`: each consent for them
    is withdrawn now, with who recorded it (how many were)."""
    chosen = _consent_topics(topics)
    contact = _locked_one(Contact, contact_id, "contact")
    withdrawn = withdraw_consents(contact, chosen, now=now or utcnow(), by=by.email)
    if not withdrawn:
        raise DirectoryRefused(
            f"{contact.name} has no consent to withdraw for those topics.", field="topics"
        )
    db.session.flush()
    log.info("%s recorded a withdrawal of consent for contact %s", by.email, contact.id)
    return withdrawn


# --- merging: the members' part -------------------------------------------------------------------

# Filled on the kept row from the removed one where the kept row has nothing: what staff
# confirmed on the kept row is never overwritten.
ORGANISATION_BLANKS = ("sector", "town_or_postcode", "postcode", "website")
MEMBERSHIP = ("is_member", "membership_tier", "member_since", "renews_on", "lapsed_on")
CONTACT_BLANKS = ("job_title", "phone", "organisation_id", "soft_opt_in_at")


def snapshot(row: Organisation | Contact) -> dict[str, Any]:
    """The row's columns as JSON values (dates as ISO text), with an organisation's tags."""

    def plain(value: object) -> object:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, SizeBand | LegalForm | ContactRole):
            return value.value
        return value

    values = {column.key: plain(getattr(row, column.key)) for column in row.__table__.columns}
    if isinstance(row, Organisation):
        values["tags"] = row.tag_names
    return values


def _has_membership(organisation: Organisation) -> bool:
    return bool(
        organisation.is_member
        or organisation.membership_tier
        or organisation.member_since
        or organisation.lapsed_on
    )


def organisation_fields_filled(kept: Organisation, removed: Organisation) -> list[str]:
    """The kept organisation's fields that the merge fills from the removed one (no query)."""
    filled = [
        name for name in ORGANISATION_BLANKS if not getattr(kept, name) and getattr(removed, name)
    ]
    if kept.legal_form == LegalForm.unknown and removed.legal_form != LegalForm.unknown:
        filled.append("legal_form")
    if not _has_membership(kept) and _has_membership(removed):
        filled.append("membership")
    if removed.notes.strip():
        filled.append("notes")
    return filled


def contact_fields_filled(kept: Contact, removed: Contact) -> list[str]:
    """The kept contact's fields that the merge fills from the removed one (no query). A soft
    opt-in comes across only from an address shown to be the person's: one typed on a public
    form, unconfirmed, gives the kept (confirmed) record no basis it did not have."""
    return [
        name
        for name in CONTACT_BLANKS
        if getattr(kept, name) in (None, "")
        and getattr(removed, name) not in (None, "")
        and (name != "soft_opt_in_at" or removed.address_confirmed_at is not None)
    ]


def _ids(query: Any) -> list[int]:
    return list(db.session.scalars(query))


def absorb_organisation(kept: Organisation, removed: Organisation) -> dict[str, Any]:
    """Move the removed organisation's contacts and tags to the kept one and fill its blanks;
    return what moved. The caller has locked both rows."""
    filled = organisation_fields_filled(kept, removed)
    contact_ids = _ids(select(Contact.id).where(Contact.organisation_id == removed.id))
    db.session.execute(
        update(Contact)
        .where(Contact.organisation_id == removed.id)
        .values(organisation_id=kept.id)
        .execution_options(synchronize_session=False)
    )
    new_tags = [tag for tag in removed.tag_names if tag not in kept.tag_names]
    _set_tags(kept, sorted({*kept.tag_names, *new_tags}))
    for name in filled:
        if name == "membership":
            for field in MEMBERSHIP:
                setattr(kept, field, getattr(removed, field))
        elif name == "notes":
            note = f"From {removed.name} (merged {utcnow():%Y-%m-%d}):\n{removed.notes.strip()}"
            kept.notes = f"{kept.notes.rstrip()}\n\n{note}" if kept.notes.strip() else note
        else:
            setattr(kept, name, getattr(removed, name))
    return {"contacts": contact_ids, "tags": new_tags, "filled": filled}


def absorb_contact(kept: Contact, removed: Contact) -> dict[str, Any]:
    """Move the removed contact's consents, subscription requests and topic opt-outs (each topic
    once: the person asked for less, never more) to the kept one, and fill its blanks; forget the
    removed contact's confirmation and preferences links, which were sent to an address that is
    not the kept record's (`_revoke_links`); return what moved and what was forgotten."""
    filled = contact_fields_filled(kept, removed)
    moved_ids = {"links_revoked": _revoke_links(removed.id)}
    for name, model in (
        ("consents", Consent),
        ("subscription_requests", SubscriptionRequest),
    ):
        moved_ids[name] = _ids(select(model.id).where(model.contact_id == removed.id))
        db.session.execute(
            update(model)
            .where(model.contact_id == removed.id)
            .values(contact_id=kept.id)
            .execution_options(synchronize_session=False)
        )
    kept_topics = set(
        db.session.scalars(select(TopicOptOut.topic).where(TopicOptOut.contact_id == kept.id))
    )
    removed_opt_outs = db.session.execute(
        select(TopicOptOut.topic, TopicOptOut.created_at).where(
            TopicOptOut.contact_id == removed.id
        )
    ).all()
    new_topics = [(topic, at) for topic, at in removed_opt_outs if topic not in kept_topics]
    if new_topics:
        db.session.execute(
            insert(TopicOptOut),
            [{"contact_id": kept.id, "topic": topic, "created_at": at} for topic, at in new_topics],
        )
    for name in filled:
        setattr(kept, name, getattr(removed, name))
    return {
        **moved_ids,
        "topic_opt_outs": [topic.value for topic, _ in new_topics],
        "filled": filled,
    }


def organisation_merge_counts(kept: Organisation, removed: Organisation) -> dict[str, int]:
    """How many of the members' rows a merge would move (one query)."""
    contacts = db.session.scalar(
        select(func.count()).select_from(Contact).where(Contact.organisation_id == removed.id)
    )
    tags = len(set(removed.tag_names) - set(kept.tag_names))
    return {"contacts": int(contacts or 0), "tags": tags}


def contact_merge_counts(kept: Contact, removed: Contact) -> dict[str, int]:
    """How many of the members' rows a merge would move (one query)."""
    consents, opt_outs = db.session.execute(
        select(
            select(func.count())
            .select_from(Consent)
            .where(Consent.contact_id == removed.id)
            .scalar_subquery(),
            select(func.count())
            .select_from(TopicOptOut)
            .where(
                TopicOptOut.contact_id == removed.id,
                TopicOptOut.topic.not_in(
                    select(TopicOptOut.topic).where(TopicOptOut.contact_id == kept.id)
                ),
            )
            .scalar_subquery(),
        )
    ).one()
    return {"consents": int(consents or 0), "topic_opt_outs": int(opt_outs or 0)}


def record_merge(
    kind: MergeKind,
    kept: Organisation | Contact,
    removed: Organisation | Contact,
    removed_snapshot: dict[str, Any],
    moved: dict[str, Any],
    *,
    by: StaffUser,
) -> MergeRecord:
    """Record the merge and delete the removed row (whose rows have all moved by now)."""
    record = MergeRecord(
        kind=kind,
        kept_id=kept.id,
        removed_id=removed.id,
        removed_snapshot=removed_snapshot,
        moved=moved,
        by_id=by.id,
        by_email=by.email,
    )
    db.session.add(record)
    db.session.delete(removed)
    db.session.flush()
    log.info("%s merged %s %s into %s", by.email, kind.value, removed.id, kept.id)
    return record
