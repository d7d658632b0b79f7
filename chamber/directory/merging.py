"""Merging two organisations or two contacts that are the same (docs/directory.md, "Merging"): a
preview of what would move, then the merge in one transaction with both rows locked first,
recorded in a `MergeRecord`.

The members' rows (contacts, tags, consents, topic opt-outs) are moved by `members.directory`;
the rows of the layers above it (bookings, delegate places, and with them survey invitations)
are moved here, since members may not import them. `MOVED` names every foreign key to an
organisation or a contact and who moves it; tests/test_directory_merge.py fails on one it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, distinct, func, select, update
from sqlalchemy.orm import aliased

from chamber.auth.models import StaffUser
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members import directory
from chamber.members.directory import DirectoryRefused
from chamber.members.models import Contact, MergeKind, MergeRecord, Organisation
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.surveys.models import Invitation

# (table, column) of every foreign key to organisation.id or contact.id: where the merge moves it.
MOVED = {
    ("contact", "organisation_id"): "members.directory.absorb_organisation",
    ("organisation_tag", "organisation_id"): "members.directory.absorb_organisation, each tag once",
    ("consent", "contact_id"): "members.directory.absorb_contact",
    ("topic_opt_out", "contact_id"): "members.directory.absorb_contact, each topic once",
    ("subscription_request", "contact_id"): "members.directory.absorb_contact",
    ("marketing_token", "contact_id"): "members.directory.absorb_contact: forgotten (sent to an "
    "address that is not the kept record's)",
    ("booking", "organisation_id"): "merge_organisations",
    ("booking", "booker_id"): "merge_contacts",
    ("delegate", "contact_id"): "merge_contacts (survey invitations belong to the place)",
    ("campaign_recipient", "contact_id"): "merge_contacts, unless the kept contact received the "
    "same campaign (then the removed one's row keeps its message with no contact)",
}

FIELD_LABELS = {
    "sector": "sector", "town_or_postcode": "town", "postcode": "postcode", "website": "website",
    "legal_form": "legal form", "membership": "membership (member, tier and dates)",
    "notes": "notes (added after the kept record's own)", "job_title": "job title",
    "phone": "phone", "organisation_id": "organisation", "soft_opt_in_at": "soft opt-in",
}  # fmt: skip


@dataclass(frozen=True)
class MergePreview:
    """What merging `removed` into `kept` would do: rows that move, with their counts; fields of
    the kept record filled from the removed one; problems that stop it; warnings that do not."""

    kind: MergeKind
    kept: Organisation | Contact
    removed: Organisation | Contact
    moves: list[tuple[str, int]] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def can_merge(self) -> bool:
        return not self.problems


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _archived_problem(kept: Organisation | Contact) -> list[str]:
    if kept.archived_at is None:
        return []
    return [
        f"{kept.name} is archived: restore it before merging another record into it, or merge "
        "it into the other one instead."
    ]


# --- organisations --------------------------------------------------------------------------------


def preview_organisations(kept: Organisation, removed: Organisation) -> MergePreview:
    """What merging `removed` into `kept` would move, in three queries whatever the rows."""
    members = directory.organisation_merge_counts(kept, removed)
    bookings, places, invitations = db.session.execute(
        select(
            func.count(distinct(Booking.id)),
            func.count(distinct(Delegate.id)),
            func.count(distinct(Invitation.id)),
        )
        .select_from(Booking)
        .outerjoin(Delegate, Delegate.booking_id == Booking.id)
        .outerjoin(Invitation, Invitation.delegate_id == Delegate.id)
        .where(Booking.organisation_id == removed.id)
    ).one()
    moves = [
        ("Contacts", members["contacts"]),
        ("Bookings", int(bookings)),
        ("Delegate places (with their check-ins)", int(places)),
        ("Survey invitations (with whether they answered)", int(invitations)),
        ("Tags it does not have yet", members["tags"]),
    ]
    return MergePreview(
        kind=MergeKind.organisation,
        kept=kept,
        removed=removed,
        moves=moves,
        filled=[FIELD_LABELS[name] for name in directory.organisation_fields_filled(kept, removed)],
        problems=_archived_problem(kept),
        warnings=_over_business_limit(kept, removed),
    )


def _over_business_limit(kept: Organisation, removed: Organisation) -> list[str]:
    """Events where the two together hold more places than one business may book: a merge keeps
    every place (nobody loses theirs), so this is said, not refused."""
    active = Delegate.status != DelegateStatus.cancelled
    places = func.sum(case((active, 1), else_=0))
    rows = db.session.execute(
        select(Event.title, Event.business_limit, places)
        .select_from(Booking)
        .join(Delegate, Delegate.booking_id == Booking.id)
        .join(Event, Event.id == Booking.event_id)
        .where(Booking.organisation_id.in_([kept.id, removed.id]))
        .group_by(Event.id, Event.title, Event.business_limit)
        .having(
            and_(
                func.count(distinct(case((active, Booking.organisation_id)))) == 2,
                places > Event.business_limit,
            )
        )
        .order_by(Event.starts_at)
    )
    return [
        f"Together they hold {count} places at {title}, more than the {limit} one business may "
        "book. Everyone keeps their place; cancel one in the event's registrations if you must."
        for title, limit, count in rows
    ]


def merge_organisations(kept_id: int, removed_id: int, *, by: StaffUser) -> MergeRecord:
    """Merge one organisation into another, in the request's transaction: both rows locked first,
    the preview's rules checked again under the lock, every row that pointed at the removed one
    moved to the kept one, the removed row recorded and deleted."""
    kept, removed = _locked_pair(Organisation, kept_id, removed_id, "organisation")
    preview = preview_organisations(kept, removed)
    if preview.problems:
        raise DirectoryRefused(preview.problems[0])
    removed_snapshot = directory.snapshot(removed)
    moved = directory.absorb_organisation(kept, removed)
    moved["bookings"] = list(
        db.session.scalars(select(Booking.id).where(Booking.organisation_id == removed.id))
    )
    db.session.execute(
        update(Booking)
        .where(Booking.organisation_id == removed.id)
        .values(organisation_id=kept.id)
        .execution_options(synchronize_session=False)
    )
    return directory.record_merge(
        MergeKind.organisation, kept, removed, removed_snapshot, moved, by=by
    )


# --- contacts -------------------------------------------------------------------------------------


def preview_contacts(kept: Contact, removed: Contact) -> MergePreview:
    """What merging `removed` into `kept` would move, in three queries whatever the rows."""
    members = directory.contact_merge_counts(kept, removed)
    of_removed = Delegate.contact_id == removed.id
    booked, places, invitations = db.session.execute(
        select(
            select(func.count())
            .select_from(Booking)
            .where(Booking.booker_id == removed.id)
            .scalar_subquery(),
            select(func.count()).select_from(Delegate).where(of_removed).scalar_subquery(),
            select(func.count())
            .select_from(Invitation)
            .join(Delegate, Delegate.id == Invitation.delegate_id)
            .where(of_removed)
            .scalar_subquery(),
        )
    ).one()
    moves = [
        ("Bookings they made", int(booked or 0)),
        ("Delegate places (with their check-ins)", int(places or 0)),
        ("Survey invitations (with whether they answered)", int(invitations or 0)),
        ("Consent records", members["consents"]),
        ("Topics they opted out of", members["topic_opt_outs"]),
    ]
    return MergePreview(
        kind=MergeKind.contact,
        kept=kept,
        removed=removed,
        moves=moves,
        filled=[FIELD_LABELS[name] for name in directory.contact_fields_filled(kept, removed)],
        problems=_archived_problem(kept) + _places_at_one_event(kept, removed),
        warnings=[],
    )


def _places_at_one_event(kept: Contact, removed: Contact) -> list[str]:
    """One active registration per person per event (invariant 2): two records of one person
    who both hold a place at the same event cannot become one until a place is cancelled."""
    theirs = aliased(Delegate)
    rows = db.session.execute(
        select(Event.title)
        .select_from(Delegate)
        .join(theirs, theirs.event_id == Delegate.event_id)
        .join(Event, Event.id == Delegate.event_id)
        .where(
            Delegate.contact_id == kept.id,
            theirs.contact_id == removed.id,
            Delegate.status != DelegateStatus.cancelled,
            theirs.status != DelegateStatus.cancelled,
        )
        .distinct()
        .order_by(Event.title)
    )
    return [
        f"{kept.name} and {removed.name} both have a place at {title}, and one person may hold "
        "only one. Cancel one of the two places in the event's registrations, then merge."
        for (title,) in rows
    ]


def merge_contacts(kept_id: int, removed_id: int, *, by: StaffUser) -> MergeRecord:
    """Merge one contact into another: as `merge_organisations`, for a person. The places keep
    the name and address they were booked with (what was typed stays as typed)."""
    kept, removed = _locked_pair(Contact, kept_id, removed_id, "contact")
    preview = preview_contacts(kept, removed)
    if preview.problems:
        raise DirectoryRefused(preview.problems[0])
    removed_snapshot = directory.snapshot(removed)
    moved = directory.absorb_contact(kept, removed)
    moved["bookings"] = list(
        db.session.scalars(select(Booking.id).where(Booking.booker_id == removed.id))
    )
    moved["delegates"] = list(
        db.session.scalars(select(Delegate.id).where(Delegate.contact_id == removed.id))
    )
    moved["survey_invitations"] = list(
        db.session.scalars(
            select(Invitation.id)
            .join(Delegate, Delegate.id == Invitation.delegate_id)
            .where(Delegate.contact_id == removed.id)
        )
    )
    for column in (Booking.booker_id, Delegate.contact_id):
        db.session.execute(
            update(column.class_)
            .where(column == removed.id)
            .values({column.key: kept.id})
            .execution_options(synchronize_session=False)
        )
    # Campaigns sit a layer above the directory, so their table is reached by name.
    recipients = db.metadata.tables["campaign_recipient"]
    db.session.execute(
        update(recipients)
        .where(
            recipients.c.contact_id == removed.id,
            recipients.c.campaign_id.not_in(
                select(recipients.c.campaign_id).where(recipients.c.contact_id == kept.id)
            ),
        )
        .values(contact_id=kept.id)
    )
    return directory.record_merge(MergeKind.contact, kept, removed, removed_snapshot, moved, by=by)


# --- both -----------------------------------------------------------------------------------------


def _locked_pair(model: Any, kept_id: int, removed_id: int, what: str) -> tuple[Any, Any]:
    if kept_id == removed_id:
        raise DirectoryRefused(f"Choose another {what}: a record cannot be merged into itself.")
    rows = directory.locked(model, [kept_id, removed_id])
    kept, removed = rows.get(kept_id), rows.get(removed_id)
    if kept is None or removed is None:
        raise DirectoryRefused(
            f"One of the two is no longer in the directory: it was merged or removed meanwhile. "
            f"Find the {what} again and look at the preview before merging."
        )
    return kept, removed
