"""Reads for the directory's staff pages: the organisation and contact lists with their filters,
an organisation's and a contact's history with the chamber, and the CSV exports. Each page reads
in a fixed number of queries however many rows it shows (tests/test_directory.py counts them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal_column, or_, select
from sqlalchemy.orm import aliased, contains_eager, selectinload

from chamber.core.dialects import folded
from chamber.core.text import fold
from chamber.core.times import utc_to_local, utcnow
from chamber.directory.signals import ReceivedCampaign, campaigns_received
from chamber.events.models import Event
from chamber.events.signals import replies, this_app
from chamber.extensions import db
from chamber.mail.models import Suppression
from chamber.mail.services import BOUNCE
from chamber.members import marketing
from chamber.members.models import (
    Consent,
    Contact,
    ContactRole,
    LegalForm,
    MarketingTopic,
    MergeKind,
    MergeRecord,
    Organisation,
    OrganisationTag,
    SizeBand,
    TopicOptOut,
)
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.surveys.figures import too_few_to_show
from chamber.surveys.models import Invitation, Response, Survey

SEARCH_MAX = 200
ORGANISATION_SORTS = ("name", "town", "size", "updated")
CONTACT_SORTS = ("name", "organisation", "email", "updated")
ARCHIVED = ("", "archived", "all")  # "": only the current records


def clean_search(value: str, limit: int = SEARCH_MAX) -> str:
    # PostgreSQL cannot take a NUL in text, and nobody types one: drop it.
    return " ".join(value.replace("\x00", "").split())[:limit]


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).like(_like(text), escape="\\")


def _names(column: Any, text: str) -> ColumnElement[bool]:
    """A name (or a town) containing `text` without regard to case or accents: "Muller" finds
    "Müller" and "Cafe Bon" finds "Café Bon Appétit", as a spreadsheet or a keyboard without
    accents spells them (`core.dialects.folded`)."""
    return folded(column).like(_like(fold(text) or ""), escape="\\")


# --- filters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationFilters:
    """What the organisation list shows. Also the business filters of the contact list."""

    search: str = ""
    member: bool | None = None
    tier: str = ""
    size_band: SizeBand | None = None
    sector: str = ""
    legal_form: LegalForm | None = None
    tag: str = ""
    archived: str = ""
    sort: str = "name"

    SORTS = ORGANISATION_SORTS

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Any:
        """Read from a query string; an unknown value means no filter, never an error."""
        band, legal = args.get("band", ""), args.get("legal", "")
        archived, sort = args.get("archived", ""), args.get("sort", "name")
        return cls(
            search=clean_search(args.get("q", "")),
            member={"yes": True, "no": False}.get(args.get("member", "")),
            tier=clean_search(args.get("tier", ""), 60),
            size_band=SizeBand(band) if band in SizeBand.__members__ else None,
            sector=clean_search(args.get("sector", ""), 100),
            legal_form=LegalForm(legal) if legal in LegalForm.__members__ else None,
            tag=clean_search(args.get("tag", ""), 40).lower(),
            archived=archived if archived in ARCHIVED else "",
            sort=sort if sort in cls.SORTS else "name",
        )

    def as_args(self) -> dict[str, str]:
        """The filters as query-string values, for links that keep them (pages, sorting, CSV)."""
        values = {
            "q": self.search,
            "member": "" if self.member is None else ("yes" if self.member else "no"),
            "tier": self.tier,
            "band": self.size_band.value if self.size_band else "",
            "sector": self.sector,
            "legal": self.legal_form.value if self.legal_form else "",
            "tag": self.tag,
            "archived": self.archived,
            "sort": self.sort if self.sort != "name" else "",
        }
        return {key: value for key, value in values.items() if value}

    @property
    def active(self) -> bool:
        return bool(set(self.as_args()) - {"sort"})

    def business_conditions(self) -> list[ColumnElement[bool]]:
        """The conditions on the organisation that both lists share."""
        conditions: list[ColumnElement[bool]] = []
        if self.member is not None:
            conditions.append(Organisation.is_member.is_(self.member))
        if self.tier:
            conditions.append(func.lower(Organisation.membership_tier) == self.tier.lower())
        if self.size_band is not None:
            conditions.append(Organisation.size_band == self.size_band)
        if self.sector:
            conditions.append(func.lower(Organisation.sector) == self.sector.lower())
        if self.legal_form is not None:
            conditions.append(Organisation.legal_form == self.legal_form)
        if self.tag:
            conditions.append(
                exists().where(
                    OrganisationTag.organisation_id == Organisation.id,
                    OrganisationTag.tag == self.tag,
                )
            )
        return conditions


@dataclass(frozen=True)
class ContactFilters(OrganisationFilters):
    role: ContactRole | None = None
    bounced: bool = False  # only those whose email bounced

    SORTS = CONTACT_SORTS

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Any:
        role = args.get("role", "")
        return replace(
            super().from_args(args),
            role=ContactRole(role) if role in ContactRole.__members__ else None,
            bounced=args.get("email", "") == "bounced",
        )

    def as_args(self) -> dict[str, str]:
        values = super().as_args()
        if self.role is not None:
            values["role"] = self.role.value
        if self.bounced:
            values["email"] = "bounced"
        return values


def _bounced_addresses() -> Select[Any]:
    return select(Suppression.email_hash).where(Suppression.reason == BOUNCE)


# --- the lists ------------------------------------------------------------------------------------


def _archived_condition(model: Any, archived: str) -> list[ColumnElement[bool]]:
    if archived == "archived":
        return [model.archived_at.is_not(None)]
    if archived == "all":
        return []
    return [model.archived_at.is_(None)]


def organisations_query(filters: OrganisationFilters) -> Select[Any]:
    """Organisations, filtered and sorted, with their tags (a select to paginate or export)."""
    query = select(Organisation).where(
        *filters.business_conditions(), *_archived_condition(Organisation, filters.archived)
    )
    if filters.search:
        text = filters.search
        query = query.where(
            or_(
                _names(Organisation.name, text),
                _names(Organisation.town_or_postcode, text),
                _contains(Organisation.postcode, text),
                exists().where(
                    Contact.organisation_id == Organisation.id, _contains(Contact.email, text)
                ),
            )
        )
    order = {
        "name": (func.lower(Organisation.name),),
        "town": (func.lower(Organisation.town_or_postcode), func.lower(Organisation.name)),
        "size": (
            case(
                *((Organisation.size_band == band, n) for n, band in enumerate(SizeBand)),
                else_=len(SizeBand),
            ),
            func.lower(Organisation.name),
        ),
        "updated": (Organisation.updated_at.desc(),),
    }[filters.sort]
    return query.order_by(*order, Organisation.id)


def organisations_page_query(filters: OrganisationFilters) -> Select[Any]:
    """As `organisations_query`, with each organisation's tags loaded (one more query a page)."""
    return organisations_query(filters).options(selectinload(Organisation.tags))


def contacts_query(filters: ContactFilters) -> Select[Any]:
    """Contacts with their organisation, filtered and sorted (a select to paginate or export)."""
    query = (
        select(Contact)
        .outerjoin(Contact.organisation)
        .options(contains_eager(Contact.organisation))
        .where(*_archived_condition(Contact, filters.archived))
    )
    conditions = filters.business_conditions()
    if conditions:
        query = query.where(Contact.organisation_id.is_not(None), *conditions)
    if filters.role is not None:
        query = query.where(Contact.role == filters.role)
    if filters.bounced:
        query = query.where(Contact.email_hash.in_(_bounced_addresses()))
    if filters.search:
        text = filters.search
        query = query.where(
            or_(
                _names(Contact.name, text),
                _contains(Contact.email, text),
                _names(Contact.job_title, text),
                _names(Organisation.name, text),
                _names(Organisation.town_or_postcode, text),
                _contains(Organisation.postcode, text),
            )
        )
    order = {
        "name": (func.lower(Contact.name),),
        "organisation": (  # those with none last, on every database
            Contact.organisation_id.is_(None),
            func.lower(Organisation.name),
            func.lower(Contact.name),
        ),
        "email": (Contact.email,),
        "updated": (func.coalesce(Contact.updated_at, Contact.created_at).desc(),),
    }[filters.sort]
    return query.order_by(*order, Contact.id)


def contact_counts(organisation_ids: list[int]) -> dict[int, int]:
    """How many current contacts each organisation has, in one query."""
    if not organisation_ids:
        return {}
    rows = db.session.execute(
        select(Contact.organisation_id, func.count())
        .where(Contact.organisation_id.in_(organisation_ids), Contact.archived_at.is_(None))
        .group_by(Contact.organisation_id)
    )
    return {organisation_id: count for organisation_id, count in rows}


@dataclass(frozen=True)
class FilterChoices:
    tiers: list[str]
    sectors: list[str]
    tags: list[str]


def filter_choices() -> FilterChoices:
    """The values staff can pick in the filters: the tiers, sectors and tags in use (one query)."""
    kinds = (
        select(
            func.min(Organisation.membership_tier).label("value"),
            literal_column("'tier'").label("k"),
        )
        .where(Organisation.membership_tier != "")
        .group_by(func.lower(Organisation.membership_tier))
        .union_all(
            select(func.min(Organisation.sector), literal_column("'sector'"))
            .where(Organisation.sector != "")
            .group_by(func.lower(Organisation.sector)),
            select(OrganisationTag.tag, literal_column("'tag'")).group_by(OrganisationTag.tag),
        )
        .subquery()
    )
    found: dict[str, list[str]] = {"tier": [], "sector": [], "tag": []}
    for value, kind in db.session.execute(select(kinds.c.value, kinds.c.k)):
        found[kind].append(value)
    return FilterChoices(
        *(sorted(found[kind], key=str.lower) for kind in ("tier", "sector", "tag"))
    )


# --- an organisation's history --------------------------------------------------------------------


@dataclass(frozen=True)
class BookingLine:
    booking_id: int
    event_id: int
    event_title: str
    starts_local: datetime  # in the event's zone
    booked_at: datetime
    booker: str
    confirmed: int
    waitlisted: int
    cancelled: int
    checked_in: int
    no_shows: int  # confirmed, the event over, never checked in
    event_over: bool


@dataclass(frozen=True)
class SurveyLine:
    survey_id: int
    title: str
    event_title: str
    invited: int
    answered: int


@dataclass(frozen=True)
class OrganisationHistory:
    contacts: list[Contact]
    bookings: list[BookingLine]
    surveys: list[SurveyLine]
    merges: list[MergeRecord]
    totals: dict[str, int] = field(default_factory=dict)
    campaigns: list[CampaignLine] = field(default_factory=list)


@dataclass(frozen=True)
class CampaignLine:
    """A campaign the organisation's people were in: to how many it went, how many were left out."""

    campaign_id: int
    subject: str
    started_at: datetime | None
    sent_to: int
    left_out: int


def received_campaigns(contact_ids: list[int]) -> list[ReceivedCampaign]:
    """The campaigns these contacts received (or were left out of), newest first: asked of the
    campaigns layer above through `directory.signals.campaigns_received` (one query)."""
    if not contact_ids:
        return []
    found: list[ReceivedCampaign] = []
    for lines in replies(campaigns_received.send(this_app(), contact_ids=contact_ids)):
        found.extend(lines or [])
    return found


def _campaign_lines(received: list[ReceivedCampaign]) -> list[CampaignLine]:
    by_campaign: dict[int, list[ReceivedCampaign]] = {}
    for line in received:
        by_campaign.setdefault(line.campaign_id, []).append(line)
    return [
        CampaignLine(
            lines[0].campaign_id, lines[0].subject, lines[0].started_at,
            sent_to=sum(not line.left_out for line in lines),
            left_out=sum(line.left_out for line in lines),
        )
        for lines in by_campaign.values()
    ]  # fmt: skip


def _place_counts(now: datetime) -> tuple[ColumnElement[Any], ...]:
    def how_many(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    confirmed = Delegate.status == DelegateStatus.confirmed
    return (
        how_many(confirmed),
        how_many(Delegate.status == DelegateStatus.waitlisted),
        how_many(Delegate.status == DelegateStatus.cancelled),
        how_many(and_(confirmed, Delegate.checked_in_at.is_not(None))),
        how_many(and_(confirmed, Delegate.checked_in_at.is_(None), Event.ends_at < now)),
    )


def organisation_history(
    organisation: Organisation, now: datetime | None = None
) -> OrganisationHistory:
    """The organisation's contacts, bookings (with attendance and no-shows), the surveys its
    delegates were sent (how many answered: never who said what), the merges into it, and the
    campaigns its people were in (asked of the layer above): five queries, whatever the rows."""
    now = now or utcnow()
    contacts = list(
        db.session.scalars(
            select(Contact)
            .where(Contact.organisation_id == organisation.id)
            .order_by(Contact.archived_at.is_not(None), func.lower(Contact.name), Contact.id)
        )
    )
    booker = aliased(Contact)
    rows = db.session.execute(
        select(
            Booking.id, Event.id, Event.title, Event.starts_at, Event.timezone, Booking.created_at,
            booker.name, Event.ends_at, *_place_counts(now),
        )
        .select_from(Booking)
        .join(Event, Event.id == Booking.event_id)
        .join(booker, booker.id == Booking.booker_id)
        .outerjoin(Delegate, Delegate.booking_id == Booking.id)
        .where(Booking.organisation_id == organisation.id)
        .group_by(
            Booking.id, Event.id, Event.title, Event.starts_at, Event.timezone,
            Booking.created_at, booker.name, Event.ends_at,
        )
        .order_by(Event.starts_at.desc(), Booking.id.desc())
    )  # fmt: skip
    bookings = [
        BookingLine(
            booking_id, event_id, title, utc_to_local(starts, zone), booked, booked_by,
            *(int(n) for n in numbers), event_over=ends < now,
        )
        for booking_id, event_id, title, starts, zone, booked, booked_by, ends, *numbers in rows
    ]  # fmt: skip
    surveys = [
        SurveyLine(*row[:3], int(row[3]), int(row[4]))
        for row in db.session.execute(
            select(
                Survey.id,
                Survey.title,
                Event.title,
                func.count(Invitation.id),
                func.count(Invitation.responded_at),
            )
            .select_from(Invitation)
            .join(Delegate, Delegate.id == Invitation.delegate_id)
            .join(Booking, Booking.id == Delegate.booking_id)
            .join(Survey, Survey.id == Invitation.survey_id)
            .join(Event, Event.id == Survey.event_id)
            .where(Booking.organisation_id == organisation.id)
            .group_by(Survey.id, Survey.title, Event.title, Event.starts_at)
            .order_by(Event.starts_at.desc())
        )
    ]
    totals = {
        "bookings": len(bookings),
        "events": len({line.event_id for line in bookings}),
        "places": sum(line.confirmed for line in bookings),
        "attended": sum(line.checked_in for line in bookings),
        "no_shows": sum(line.no_shows for line in bookings),
        "surveys_answered": sum(line.answered for line in surveys),
    }
    campaigns = _campaign_lines(received_campaigns([contact.id for contact in contacts]))
    totals["campaigns"] = len(campaigns)
    return OrganisationHistory(
        contacts=contacts,
        bookings=bookings,
        surveys=surveys,
        merges=merges_into(MergeKind.organisation, organisation.id),
        totals=totals,
        campaigns=campaigns,
    )


def merges_into(kind: MergeKind, kept_id: int) -> list[MergeRecord]:
    """The merges that ended in this row, newest first (one query)."""
    return list(
        db.session.scalars(
            select(MergeRecord)
            .where(MergeRecord.kind == kind, MergeRecord.kept_id == kept_id)
            .order_by(MergeRecord.merged_at.desc(), MergeRecord.id.desc())
        )
    )


# --- a contact's history --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceLine:
    event_id: int
    event_title: str
    starts_local: datetime  # in the event's zone
    status: DelegateStatus
    checked_in_at: datetime | None
    no_show: bool
    invited_to_survey: bool
    answered: bool
    answered_at: datetime | None  # only for a named survey: an anonymous one never says when
    # An anonymous survey with fewer than five answers does not say who answered (docs/surveys.md).
    answer_withheld: bool = False


@dataclass(frozen=True)
class ContactHistory:
    places: list[PlaceLine]
    bookings_made: int
    consents: list[Consent]
    opted_out_of: list[str]
    merges: list[MergeRecord]
    # Whether marketing on each topic may go to them now, and the reason (members.marketing).
    marketing: dict[MarketingTopic, marketing.MarketingStatus] = field(default_factory=dict)
    campaigns: list[ReceivedCampaign] = field(default_factory=list)


@dataclass(frozen=True)
class BounceLine:
    """A hard bounce as staff read it: when, and the server's answer, shortened."""

    at: datetime
    answer: str


BOUNCE_ANSWER_MAX = 120


def bounce_of(contact: Contact) -> BounceLine | None:
    """The contact's email bounce, if a mail server refused their address for good."""
    row = db.session.execute(
        select(Suppression.created_at, Suppression.detail).where(
            Suppression.email_hash == contact.email_hash, Suppression.reason == BOUNCE
        )
    ).first()
    if row is None:
        return None
    answer = " ".join((row.detail or "no answer recorded").split())
    if len(answer) > BOUNCE_ANSWER_MAX:
        answer = answer[: BOUNCE_ANSWER_MAX - 1].rstrip() + "…"
    return BounceLine(row.created_at, answer)


def contact_history(contact: Contact, now: datetime | None = None) -> ContactHistory:
    """The contact's places at events (attended, no-show, survey answered), the bookings they
    made, their consents and topic opt-outs, the merges into them, and their marketing status
    for each topic with its reason: seven queries."""
    now = now or utcnow()
    rows = db.session.execute(
        select(
            Event.id, Event.title, Event.starts_at, Event.timezone, Event.ends_at, Delegate.status,
            Delegate.checked_in_at, Invitation.id, Invitation.responded_at, Survey.anonymous,
            select(func.count(Response.id)).where(Response.survey_id == Survey.id)
            .correlate(Survey).scalar_subquery(),
        )
        .select_from(Delegate)
        .join(Event, Event.id == Delegate.event_id)
        .outerjoin(Invitation, Invitation.delegate_id == Delegate.id)
        .outerjoin(Survey, Survey.id == Invitation.survey_id)
        .where(Delegate.contact_id == contact.id)
        .order_by(Event.starts_at.desc(), Delegate.id.desc())
    )  # fmt: skip
    places = [
        PlaceLine(
            event_id=event_id, event_title=title, starts_local=utc_to_local(starts, zone), status=status,
            checked_in_at=checked_in,
            no_show=status == DelegateStatus.confirmed and checked_in is None and ends < now,
            invited_to_survey=invitation_id is not None,
            answered=responded is not None and not too_few_to_show(bool(anonymous), responses),
            answered_at=None if anonymous else responded,
            answer_withheld=invitation_id is not None and too_few_to_show(bool(anonymous), responses),
        )
        for (
            event_id, title, starts, zone, ends, status, checked_in, invitation_id, responded,
            anonymous, responses,
        ) in rows
    ]  # fmt: skip
    bookings_made = db.session.scalar(
        select(func.count()).select_from(Booking).where(Booking.booker_id == contact.id)
    )
    consents = list(
        db.session.scalars(
            select(Consent).where(Consent.contact_id == contact.id).order_by(Consent.given_at)
        )
    )
    opted_out = [
        topic.label
        for topic in db.session.scalars(
            select(TopicOptOut.topic)
            .where(TopicOptOut.contact_id == contact.id)
            .order_by(TopicOptOut.topic)
        )
    ]
    return ContactHistory(
        places=places,
        bookings_made=int(bookings_made or 0),
        consents=consents,
        opted_out_of=opted_out,
        merges=merges_into(MergeKind.contact, contact.id),
        marketing=marketing.statuses_by_topic([contact.id]).get(contact.id, {}),
        campaigns=received_campaigns([contact.id]),
    )


# --- finding one ----------------------------------------------------------------------------------


def organisation_or_none(organisation_id: int) -> Organisation | None:
    found: Organisation | None = db.session.get(Organisation, organisation_id)
    return found


def contact_or_none(contact_id: int) -> Contact | None:
    found: Contact | None = db.session.scalar(
        select(Contact)
        .outerjoin(Contact.organisation)
        .options(contains_eager(Contact.organisation))
        .where(Contact.id == contact_id)
    )
    return found


def merged_into(kind: MergeKind, record_id: int) -> int | None:
    """The record a merged-away one lives on in (following later merges of that one too), or None
    if `record_id` was never merged away."""
    seen: set[int] = set()
    while record_id not in seen and len(seen) < 20:
        seen.add(record_id)
        kept = db.session.scalar(
            select(MergeRecord.kept_id)
            .where(MergeRecord.kind == kind, MergeRecord.removed_id == record_id)
            .order_by(MergeRecord.id.desc())
            .limit(1)
        )
        if kept is None:
            break
        record_id = kept
    return record_id if len(seen) > 1 else None


def merge_candidates(model: Any, kept_id: int, search: str, limit: int = 20) -> list[Any]:
    """Records that might be the same as the kept one, for the merge page: matching `search` in
    the name without regard to accents (or in a contact's email), the kept one left out (one
    query)."""
    if not search:
        return []
    matches = [_names(model.name, search)]
    if model is Contact:
        matches.append(_contains(Contact.email, search))
    return list(
        db.session.scalars(
            select(model)
            .where(model.id != kept_id, or_(*matches))
            .order_by(func.lower(model.name), model.id)
            .limit(limit)
        )
    )


# --- CSV ------------------------------------------------------------------------------------------


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


ORGANISATION_HEADER = (
    "Name", "Legal form", "Size band", "Sector", "Town", "Postcode", "Website", "Chamber member",
    "Membership tier", "Member since", "Renews on", "Lapsed on", "Tags", "Contacts", "Archived",
    "Notes",
)  # fmt: skip


def organisation_rows(filters: OrganisationFilters) -> list[tuple[object, ...]]:
    """Every organisation the filters match, for the CSV file: three queries whatever the size."""
    query = organisations_query(filters)
    organisations = list(db.session.scalars(query))
    counts = contact_counts_for(query)
    tags = tags_for(query)
    return [
        (
            o.name, o.legal_form.label, o.size_band.label, o.sector, o.town_or_postcode,
            o.postcode, o.website, "Yes" if o.is_member else "No", o.membership_tier,
            _day(o.member_since), _day(o.renews_on), _day(o.lapsed_on), ", ".join(tags.get(o.id, [])),
            counts.get(o.id, 0), "Yes" if o.archived_at else "No", o.notes,
        )
        for o in organisations
    ]  # fmt: skip


def contact_counts_for(query: Select[Any]) -> dict[int, int]:
    """How many current contacts each organisation `query` selects has, in one query."""
    chosen = query.with_only_columns(Organisation.id).order_by(None).subquery()
    rows = db.session.execute(
        select(Contact.organisation_id, func.count())
        .where(Contact.organisation_id.in_(select(chosen.c.id)), Contact.archived_at.is_(None))
        .group_by(Contact.organisation_id)
    )
    return {organisation_id: count for organisation_id, count in rows}


def tags_for(query: Select[Any]) -> dict[int, list[str]]:
    """The tags of each organisation `query` selects, in one query."""
    chosen = query.with_only_columns(Organisation.id).order_by(None).subquery()
    tags: dict[int, list[str]] = {}
    for organisation_id, tag in db.session.execute(
        select(OrganisationTag.organisation_id, OrganisationTag.tag)
        .where(OrganisationTag.organisation_id.in_(select(chosen.c.id)))
        .order_by(OrganisationTag.organisation_id, OrganisationTag.tag)
    ):
        tags.setdefault(organisation_id, []).append(tag)
    return tags


CONTACT_HEADER = (
    "Name", "Email", "Job title", "Phone", "Role", "Organisation", "Chamber member", "Size band",
    "Sector", "Town", "Postcode", "Archived",
)  # fmt: skip


def contact_rows(filters: ContactFilters) -> list[tuple[object, ...]]:
    """Every contact the filters match, for the CSV file: one query whatever the size."""
    rows: list[tuple[object, ...]] = []
    for c in db.session.scalars(contacts_query(filters)):
        o = c.organisation
        rows.append((
            c.name, c.email, c.job_title, c.phone, c.role.label, o.name if o else "",
            ("Yes" if o.is_member else "No") if o else "", o.size_band.label if o else "",
            o.sector if o else "", o.town_or_postcode if o else "", o.postcode if o else "",
            "Yes" if c.archived_at else "No",
        ))  # fmt: skip
    return rows
