"""Segments: filters over the directory that combine (each filter narrows), resolved in SQL when
used, so a saved segment is always today's people. Who may not receive marketing is never in a
segment; `counts` says how many were left out and why (docs/directory.md, "Segments")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from chamber.auth.models import StaffUser
from chamber.core.dialects import on_postgresql
from chamber.core.errors import Refusal
from chamber.core.forms import text_problem
from chamber.core.times import utcnow
from chamber.directory.models import Segment
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members import marketing
from chamber.members.models import (
    Contact,
    MarketingTopic,
    Organisation,
    OrganisationTag,
    SizeBand,
)
from chamber.registration.models import Delegate, DelegateStatus
from chamber.surveys.models import Invitation

MEMBERSHIP = {"member": "Members", "not_member": "Not members", "lapsed": "Lapsed members"}
# The marketing statuses a segment can be narrowed to: the lawful bases, strongest first.
STATUSES = (marketing.Basis.consent, marketing.Basis.corporate, marketing.Basis.soft_opt_in)
HISTORY = {
    "booked": "Booked",
    "attended": "Attended",
    "no_show": "Booked a place but did not come",
}
NAME_MAX = 120
TEXT_MAX = 60  # one tier, sector, place or tag
LIST_MAX = 30  # values of one filter
# A postcode area ("SG") or district ("SG1", "EC1A"): matched as the start of the postcode.
POSTCODE_PART = re.compile(r"^[A-Z]{1,2}(?:[0-9][0-9A-Z]?)?$")


class SegmentRefused(Refusal):
    """A segment that cannot be saved as asked (its message says why)."""


class _Args(Protocol):
    def get(self, key: str, default: Any = ...) -> Any: ...
    def getlist(self, key: str) -> list[str]: ...


def _clean(values: list[str]) -> tuple[str, ...]:
    """Typed values, trimmed, without control characters or duplicates, at most LIST_MAX."""
    kept: list[str] = []
    for value in values:
        value = " ".join(str(value).replace("\x00", "").split())[:TEXT_MAX]
        if value and text_problem(value, multiline=False) is None and value not in kept:
            kept.append(value)
    return tuple(kept[:LIST_MAX])


def _split(text: str) -> list[str]:
    return re.split(r"[,;\n]", text or "")


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SegmentFilters:
    """What a segment asks for. Every filter narrows; empty means "anyone". Read from a query
    string or a saved segment, where an unknown value means no filter, never an error."""

    topic: MarketingTopic = MarketingTopic.events
    # Only people whose lawful basis for the topic is one of these (consent, corporate
    # subscriber, soft opt-in); empty: any lawful basis. Who has none is left out either way.
    statuses: tuple[marketing.Basis, ...] = ()
    membership: str = ""
    tiers: tuple[str, ...] = ()
    size_bands: tuple[SizeBand, ...] = ()
    sectors: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    history: str = ""
    events: tuple[int, ...] = ()
    never_attended: bool = False
    answered_survey: bool = False
    joined_from: date | None = None
    joined_to: date | None = None
    renews_from: date | None = None
    renews_to: date | None = None

    @classmethod
    def from_args(cls, args: _Args) -> SegmentFilters:
        topic = args.get("topic", "")
        wanted = set(args.getlist("status"))
        membership = args.get("membership", "")
        history = args.get("history", "")
        events = []
        for value in args.getlist("event")[:LIST_MAX]:
            if str(value).isdigit() and len(str(value)) < 10:
                events.append(int(value))
        dates = {name: _date(args.get(name, "")) for name in (
            "joined_from", "joined_to", "renews_from", "renews_to")}  # fmt: skip
        return cls(
            topic=MarketingTopic(topic) if topic in MarketingTopic.__members__ else
            MarketingTopic.events,
            statuses=tuple(basis for basis in STATUSES if basis.value in wanted),
            membership=membership if membership in MEMBERSHIP else "",
            tiers=_clean(_split(args.get("tiers", ""))),
            size_bands=tuple(SizeBand(band) for band in args.getlist("size_band")
                             if band in SizeBand.__members__),
            sectors=_clean(_split(args.get("sectors", ""))),
            places=_clean(_split(args.get("places", ""))),
            tags=tuple(tag.lower() for tag in _clean(_split(args.get("tags", "")))),
            history=history if history in HISTORY else "",
            events=tuple(dict.fromkeys(events)),
            never_attended=args.get("never_attended") == "yes",
            answered_survey=args.get("answered_survey") == "yes",
            **dates,
        )  # fmt: skip

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> SegmentFilters:
        args = _JsonArgs(saved if isinstance(saved, dict) else {})
        return cls.from_args(args)

    def as_args(self) -> dict[str, Any]:
        """The filters as query-string values (lists for repeated keys), for links and saving."""
        values: dict[str, Any] = {
            "topic": self.topic.value if self.topic is not MarketingTopic.events else "",
            "status": [basis.value for basis in self.statuses],
            "membership": self.membership,
            "tiers": ", ".join(self.tiers),
            "size_band": [band.value for band in self.size_bands],
            "sectors": ", ".join(self.sectors),
            "places": ", ".join(self.places),
            "tags": ", ".join(self.tags),
            "history": self.history,
            "event": [str(event) for event in self.events],
            "never_attended": "yes" if self.never_attended else "",
            "answered_survey": "yes" if self.answered_survey else "",
        }
        for name in ("joined_from", "joined_to", "renews_from", "renews_to"):
            when = getattr(self, name)
            values[name] = when.isoformat() if when else ""
        return {key: value for key, value in values.items() if value}

    def to_json(self) -> dict[str, Any]:
        return self.as_args()

    def describe(self, event_titles: dict[int, str]) -> list[str]:
        """The filters in words, for the page and the saved list."""
        words = []
        if self.membership:
            words.append(MEMBERSHIP[self.membership])
        if self.tiers:
            words.append("Tier: " + ", ".join(self.tiers))
        if self.size_bands:
            words.append("Size: " + ", ".join(band.short_label for band in self.size_bands))
        for label, values in (("Sector", self.sectors), ("Town or postcode", self.places),
                              ("Tags", self.tags)):  # fmt: skip
            if values:
                words.append(f"{label}: " + ", ".join(values))
        if self.history:
            which = ", ".join(event_titles.get(e, f"event {e}") for e in self.events)
            words.append(f"{HISTORY[self.history]}: " + (which or "any event"))
        if self.never_attended:
            words.append("Never attended an event")
        if self.answered_survey:
            words.append("Answered a survey")
        for label, start, end in (("Joined", self.joined_from, self.joined_to),
                                  ("Renews", self.renews_from, self.renews_to)):  # fmt: skip
            if start or end:
                words.append(f"{label} {_range_words(start, end)}")
        words.append(f"Topic: {self.topic.label}")
        if self.statuses:
            words.append("Marketing status: " + ", ".join(basis.label for basis in self.statuses))
        return words

    def status_condition(self) -> ColumnElement[bool] | None:
        """The marketing status filter: those with a lawful basis not chosen are not matched;
        those with none still are, so that they are counted as left out, and why."""
        if not self.statuses or set(self.statuses) == set(STATUSES):
            return None
        unchosen = [basis.value for basis in STATUSES if basis not in self.statuses]
        return marketing.basis_case(self.topic).not_in(unchosen)


def _range_words(start: date | None, end: date | None) -> str:
    if start and end:
        return f"between {start:%-d %b %Y} and {end:%-d %b %Y}"
    return f"on or after {start:%-d %b %Y}" if start else f"on or before {end:%-d %b %Y}"


class _JsonArgs:
    """A saved segment's filters read like a query string."""

    def __init__(self, saved: dict[str, Any]):
        self.saved = saved

    def get(self, key: str, default: Any = "") -> Any:
        value = self.saved.get(key, default)
        return value if isinstance(value, str) else default

    def getlist(self, key: str) -> list[str]:
        value = self.saved.get(key, [])
        return [str(item) for item in value] if isinstance(value, list) else []


# --- the query -----------------------------------------------------------------------------------


def _place(place: str) -> ColumnElement[bool]:
    """A town (its whole name, any case) or the start of a postcode ("SG1" is SG1 1AA, not SG12)."""
    upper = place.upper()
    town = func.lower(Organisation.town_or_postcode) == place.lower()
    if not POSTCODE_PART.match(upper):
        return town
    postcode = func.upper(Organisation.postcode)
    if upper[-1].isdigit() or len(upper) > 2 and not upper.isalpha():
        district = or_(postcode == upper, postcode.startswith(f"{upper} ", autoescape=True))
        return or_(town, district)
    # An area is letters: SG is SG1..SG19, never S with G after it, nor SGX.
    area = or_(*(postcode.startswith(f"{upper}{digit}", autoescape=True) for digit in "0123456789"))
    return or_(town, area)


def _places_of(filters: SegmentFilters) -> Select[Any]:
    """The ids of the contacts with a place (not cancelled) of the kind the history filter asks
    for, at the chosen events: an uncorrelated select, read once per query (a semi-join), not a
    subquery run for each contact."""
    places = select(Delegate.contact_id).where(Delegate.status != DelegateStatus.cancelled)
    if filters.events:
        places = places.where(Delegate.event_id.in_(filters.events))
    if filters.history == "booked":
        return places
    if filters.history == "attended":
        return places.where(Delegate.checked_in_at.is_not(None))
    return places.join(Event, Event.id == Delegate.event_id).where(  # a no-show
        Delegate.status == DelegateStatus.confirmed,
        Delegate.checked_in_at.is_(None),
        Event.ends_at < utcnow(),
    )


def matching(filters: SegmentFilters, *, status: bool = True) -> Select[Any]:
    """The ids of the contacts the filters describe (not yet less those marketing may not reach);
    without the marketing status filter if not `status` (the tally applies it to its counts)."""
    query = (
        select(Contact.id)
        .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
        # An archived contact is left out by the marketing rules (and counted as such); a contact
        # at an archived organisation is not in the directory's view at all.
        .where(or_(Organisation.id.is_(None), Organisation.archived_at.is_(None)))
    )
    conditions: list[ColumnElement[bool]] = []
    if filters.membership == "member":
        conditions.append(Organisation.is_member.is_(True))
    elif filters.membership == "not_member":
        conditions.append(or_(Organisation.id.is_(None), Organisation.is_member.is_(False)))
    elif filters.membership == "lapsed":
        conditions.append(
            and_(Organisation.is_member.is_(False), Organisation.lapsed_on.is_not(None))
        )
    if filters.tiers:
        conditions.append(
            func.lower(Organisation.membership_tier).in_([tier.lower() for tier in filters.tiers])
        )
    if filters.size_bands:
        conditions.append(Organisation.size_band.in_(filters.size_bands))
    if filters.sectors:
        conditions.append(
            func.lower(Organisation.sector).in_([sector.lower() for sector in filters.sectors])
        )
    if filters.places:
        conditions.append(or_(*(_place(place) for place in filters.places)))
    if filters.tags:
        conditions.append(
            exists(
                select(OrganisationTag.tag).where(
                    OrganisationTag.organisation_id == Organisation.id,
                    OrganisationTag.tag.in_(filters.tags),
                )
            )
        )
    if filters.history:
        conditions.append(Contact.id.in_(_places_of(filters)))
    if filters.never_attended:  # NOT EXISTS: an anti-join, however many have attended
        places = select(Delegate.id).where(
            Delegate.contact_id == Contact.id, Delegate.status != DelegateStatus.cancelled
        )
        conditions.append(~exists(places.where(Delegate.checked_in_at.is_not(None))))
    if filters.answered_survey:
        conditions.append(
            Contact.id.in_(
                select(Delegate.contact_id)
                .join(Invitation, Invitation.delegate_id == Delegate.id)
                .where(Invitation.responded_at.is_not(None))
            )
        )
    for column, start, end in ((Organisation.member_since, filters.joined_from, filters.joined_to),
                               (Organisation.renews_on, filters.renews_from, filters.renews_to)):  # fmt: skip
        if start and end and start > end:
            conditions.append(false())
        if start:
            conditions.append(column >= start)
        if end:
            conditions.append(column <= end)
    condition = filters.status_condition() if status else None
    if condition is not None:
        conditions.append(condition)
    return query.where(*conditions)


# --- saving --------------------------------------------------------------------------------------


def save_segment(
    name: str, filters: SegmentFilters, *, by: StaffUser, segment: Segment | None = None
) -> Segment:
    """Save the filters under a name (a new segment, or `segment` changed). Flushes."""
    name = " ".join(name.split())
    if not name:
        raise SegmentRefused("Enter a name for the segment.", field="name")
    if len(name) > NAME_MAX:
        raise SegmentRefused(f"The name can be at most {NAME_MAX} characters.", field="name")
    if segment is None:
        segment = Segment(created_by_id=by.id)
        db.session.add(segment)
    segment.name, segment.filters = name, filters.to_json()
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise SegmentRefused(
            "A segment with that name exists already: choose another name.", field="name"
        ) from None
    return segment


def delete_segment(segment: Segment) -> None:
    db.session.delete(segment)
    db.session.flush()


def saved_segments() -> list[Segment]:
    return list(db.session.scalars(select(Segment).order_by(func.lower(Segment.name))))


def find_segment(segment_id: int) -> Segment | None:
    return db.session.get(Segment, segment_id)


def event_choices() -> list[tuple[int, str]]:
    """Every event, newest first, for the "booked or attended" filter."""
    rows = db.session.execute(
        select(Event.id, Event.title, Event.starts_at).order_by(Event.starts_at.desc())
    )
    return [(event_id, f"{title} ({starts_at:%-d %b %Y})") for event_id, title, starts_at in rows]


# --- who is in it, and who is left out -----------------------------------------------------------

# Why someone the filters match is not in the segment, in the order the rules are applied.
LEFT_OUT_REASONS = {
    basis.value: basis.label for basis in marketing.Basis if basis not in marketing.LAWFUL
}
EXPORT_HEADER = (
    "Name", "Email", "Job title", "Phone", "Role", "Organisation", "Member", "Tier", "Size band",
    "Sector", "Town", "Postcode", "Marketing basis",
)  # fmt: skip


@dataclass(frozen=True)
class Tally:
    """How many the filters match: those in the segment (`included`), and those left out, by
    reason (a `marketing.Basis` value that may not be sent the topic)."""

    included: int
    left_out: dict[str, int]

    @property
    def left_out_total(self) -> int:
        return sum(self.left_out.values())


def tally(filters: SegmentFilters) -> Tally:
    """The segment's counts, in one query: the marketing rule's status counted over the filters'
    own select (not over `contact.id IN (the filters' select)`, which SQLite would build as an
    index of every contact matched, then probe once per contact), the rule worked out once a
    contact."""
    each = matching(filters, status=False).with_only_columns(
        marketing.basis_case(filters.topic).label("basis")
    )
    if not on_postgresql():
        # SQLite folds a plain subquery into the query around it, and grouped by the rule, it
        # then works the rule out twice a contact (to group, and to show). A LIMIT keeps the
        # subquery whole (SQLite's query flattener leaves alone one with a LIMIT under a GROUP BY):
        # over 100,000 contacts, 176 ms became 145.
        each = each.limit(-1)
    rows = each.subquery()
    counts = dict.fromkeys(marketing.Basis, 0)
    counts.update(
        (marketing.Basis(value), count)
        for value, count in db.session.execute(
            select(rows.c.basis, func.count()).group_by(rows.c.basis)
        )
    )
    # The marketing status filter, applied to the counts: the rule is read once a contact.
    chosen = set(filters.statuses or STATUSES)
    included = sum(count for basis, count in counts.items() if basis in chosen)
    left_out = {
        basis.value: count for basis, count in counts.items() if basis not in marketing.LAWFUL
    }
    return Tally(included, left_out)


def _people(filters: SegmentFilters, wanted: ColumnElement[bool]) -> Select[Any]:
    return (
        select(Contact)
        .options(joinedload(Contact.organisation))
        .where(Contact.id.in_(matching(filters)), wanted)
        .order_by(func.lower(Contact.name), Contact.id)
    )


def people_query(filters: SegmentFilters) -> Select[Any]:
    """Who is in the segment, by name (contacts, with their organisation loaded)."""
    lawful = [basis.value for basis in marketing.LAWFUL]
    return _people(filters, marketing.basis_case(filters.topic).in_(lawful))


def left_out_query(filters: SegmentFilters, reason: str) -> Select[Any]:
    """Who the filters match but is left out for `reason` (a `LEFT_OUT_REASONS` key)."""
    return _people(filters, marketing.basis_case(filters.topic) == reason)


def bases(filters: SegmentFilters, contacts: list[Contact]) -> dict[int, marketing.Basis]:
    """Why each of these contacts may (or may not) be sent the segment's topic, in one query."""
    if not contacts:
        return {}
    rows = db.session.execute(
        select(Contact.id, marketing.basis_case(filters.topic)).where(
            Contact.id.in_([contact.id for contact in contacts])
        )
    )
    return {contact_id: marketing.Basis(basis) for contact_id, basis in rows}


def export_rows(filters: SegmentFilters) -> Iterator[tuple[object, ...]]:
    """The segment's people as CSV rows, read in pages so memory stays flat."""
    lawful = [basis.value for basis in marketing.LAWFUL]
    basis = marketing.basis_case(filters.topic)
    statement = (
        select(Contact, Organisation, basis)
        .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
        .where(Contact.id.in_(matching(filters)), basis.in_(lawful))
        .order_by(func.lower(Contact.name), Contact.id)
        .execution_options(yield_per=1000)
    )
    for contact, organisation, reason in db.session.execute(statement):
        yield (
            contact.name, contact.email, contact.job_title, contact.phone, contact.role.label,
            organisation.name if organisation else "",
            ("yes" if organisation.is_member else "no") if organisation else "",
            organisation.membership_tier if organisation else "",
            organisation.size_band.short_label if organisation else "",
            organisation.sector if organisation else "",
            organisation.town_or_postcode if organisation else "",
            organisation.postcode if organisation else "",
            marketing.Basis(reason).label,
        )  # fmt: skip
