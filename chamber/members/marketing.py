"""Whether the chamber may send a contact marketing on a topic, and the reason staff read: UK PECR
and GDPR as the ICO explains them (docs/marketing.md has the rules and the ICO's reasoning).

`status(facts, topic)` is the rule: a pure function of what we know about one person. `statuses`
reads those facts for a list of contacts in two queries, whatever its length; `basis_case(topic)`
is the same rule in SQL, for selects over the whole directory (`may_receive`, `counts_by_basis`).
Recording what a person chose (a booking's opt-out, a topic, unsubscribing) is here too.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, case, false, func, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from chamber.core.dialects import insert_or_skip, one_of
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.models import Suppression
from chamber.members.addresses import PERSONAL_DOMAINS, domain_of, is_personal_address
from chamber.members.models import (
    Consent,
    Contact,
    LegalForm,
    MarketingTopic,
    Organisation,
    TopicOptOut,
)


class Basis(enum.StrEnum):
    """A contact's marketing status for one topic: why they may, or may not, be sent it."""

    bounced = "bounced"  # a mail server refused the address for good (a hard bounce): never
    suppressed = "suppressed"  # on the suppression list (unsubscribed): never
    archived = "archived"  # staff archived the contact
    opted_out = "opted_out"  # asked not to hear about this topic, or withdrew consent for it
    consent = "consent"  # a confirmed consent for this topic, not withdrawn
    corporate = "corporate"  # at a corporate subscriber, at a business address
    soft_opt_in = "soft_opt_in"  # booked an event, offered an opt-out, did not take it
    no_basis = "no_basis"  # an individual subscriber (or unknown) with no consent or soft opt-in

    @property
    def may_send(self) -> bool:
        return self in LAWFUL

    @property
    def label(self) -> str:
        return {
            "bounced": "Email bounced",
            "suppressed": "Suppressed",
            "archived": "Archived",
            "opted_out": "Opted out",
            "consent": "Consent",
            "corporate": "Corporate subscriber",
            "soft_opt_in": "Soft opt-in",
            "no_basis": "No lawful basis",
        }[self.value]


LAWFUL = frozenset({Basis.consent, Basis.corporate, Basis.soft_opt_in})

# The soft opt-in covers marketing of our own services like the one booked (PECR regulation
# 22(3)(b)): our events, and the newsletter that announces them. A survey sells nothing, so it is
# not a "similar product or service"; surveys need consent, or a corporate subscriber.
SOFT_OPT_IN_TOPICS = frozenset({MarketingTopic.events, MarketingTopic.newsletter})

# A corporate subscriber's people at their business address; someone there who gives a personal
# mailbox (`addresses.PERSONAL_DOMAINS`) is an individual subscriber at that address (the ICO).
CORPORATE_FORMS = frozenset(form for form in LegalForm if form.is_corporate_subscriber)

SUPPRESSION_REASONS = {
    "unsubscribe": "Unsubscribed from all marketing",
    "bounce": "Hard bounce: the address does not take mail",
    "erased": "The person asked to be erased: the list keeps only a hash of the address",
}


# --- the rule ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRecord:
    """A consent as staff read it: what the person agreed to, where, and when."""

    wording: str
    source: str
    given_at: datetime
    confirmed_at: datetime


@dataclass(frozen=True)
class Facts:
    """What the rule needs to know about one contact, for one topic."""

    email: str
    legal_form: LegalForm | None = None  # None: not linked to any organisation
    archived_at: datetime | None = None
    suppressed_at: datetime | None = None
    suppression_reason: str = ""
    opted_out_at: datetime | None = None  # a TopicOptOut for the topic
    consent: ConsentRecord | None = None  # the latest confirmed consent not withdrawn
    withdrawn_at: datetime | None = None  # the latest withdrawal of a consent for the topic
    soft_opt_in_at: datetime | None = None
    # The address shown to be theirs (`Contact.address_confirmed_at`): the corporate and soft
    # opt-in bases need it. Consent has its own confirmation.
    address_confirmed: bool = True


@dataclass(frozen=True)
class MarketingStatus:
    basis: Basis
    reason: str  # a sentence staff read
    since: datetime | None = None  # when the fact that decided it was recorded, if we know
    consent: ConsentRecord | None = None

    @property
    def may_send(self) -> bool:
        return self.basis.may_send


def status(facts: Facts, topic: MarketingTopic) -> MarketingStatus:
    """Whether marketing on `topic` may go to this person, and why. The first rule that applies
    decides: what stops marketing first (suppression, archiving, the person's own opt-out), then
    the lawful bases from the strongest evidence (consent) to the weakest (the soft opt-in)."""
    if facts.suppressed_at is not None:
        reason = SUPPRESSION_REASONS.get(
            facts.suppression_reason, f"On the suppression list ({facts.suppression_reason})"
        )
        basis = Basis.bounced if facts.suppression_reason == "bounce" else Basis.suppressed
        return MarketingStatus(basis, reason, facts.suppressed_at)
    if facts.archived_at is not None:
        return MarketingStatus(Basis.archived, "Archived by staff", facts.archived_at)
    if facts.opted_out_at is not None:
        return MarketingStatus(
            Basis.opted_out, f"Asked not to hear about {topic_phrase(topic)}", facts.opted_out_at
        )
    if facts.consent is not None:
        consent = facts.consent
        reason = f"Consented on the {consent.source} to “{consent.wording}”"
        return MarketingStatus(Basis.consent, reason, consent.confirmed_at, consent)
    if facts.withdrawn_at is not None:
        return MarketingStatus(
            Basis.opted_out, f"Withdrew consent to {topic_phrase(topic)}", facts.withdrawn_at
        )
    corporate = facts.legal_form is not None and facts.legal_form.is_corporate_subscriber
    if not facts.address_confirmed and (corporate or facts.soft_opt_in_at is not None):
        return MarketingStatus(Basis.no_basis, UNCONFIRMED)
    if corporate and not is_personal_address(facts.email):
        assert facts.legal_form is not None
        return MarketingStatus(
            Basis.corporate,
            f"Works at a corporate subscriber ({facts.legal_form.label}) at a business address: "
            "business-to-business marketing, with an opt-out in every message",
        )
    if facts.soft_opt_in_at is not None and topic in SOFT_OPT_IN_TOPICS:
        return MarketingStatus(
            Basis.soft_opt_in,
            "Booked one of our events and did not take the opt-out offered (soft opt-in)",
            facts.soft_opt_in_at,
        )
    return MarketingStatus(Basis.no_basis, _why_no_basis(facts, topic, corporate))


UNCONFIRMED = (
    "Their address came from a public booking form and is not yet shown to be theirs (anyone "
    "may type an address there): no corporate or soft opt-in basis until they come to an event, "
    "act through a link we sent them, or confirm a subscription, or staff record them"
)


def _why_no_basis(facts: Facts, topic: MarketingTopic, corporate: bool) -> str:
    if corporate:
        who = f"A personal address ({domain_of(facts.email)}), so an individual subscriber,"
    elif facts.legal_form is None:
        who = "Not linked to a business, so treated as an individual subscriber,"
    elif facts.legal_form is LegalForm.unknown:
        who = "The business's legal form is not known, so treated as an individual subscriber,"
    else:
        who = f"An individual subscriber ({facts.legal_form.label.lower()})"
    if facts.soft_opt_in_at is not None:
        return (
            f"{who} whose soft opt-in covers events and the newsletter, not {topic_phrase(topic)}"
        )
    return f"{who} with no consent or soft opt-in"


def topic_phrase(topic: MarketingTopic) -> str:
    return {
        MarketingTopic.events: "events and seminars",
        MarketingTopic.newsletter: "the newsletter",
        MarketingTopic.surveys: "surveys",
    }[topic]


# --- the rule for a list of contacts -------------------------------------------------------------


def statuses(contact_ids: Iterable[int], topic: MarketingTopic) -> dict[int, MarketingStatus]:
    """Each contact's status for `topic`, in two queries however many there are (a page of the
    directory; for the whole directory use `may_receive` and `counts_by_basis`)."""
    return {
        contact_id: by_topic[topic]
        for contact_id, by_topic in statuses_by_topic(contact_ids, (topic,)).items()
    }


def statuses_by_topic(
    contact_ids: Iterable[int], topics: Iterable[MarketingTopic] = tuple(MarketingTopic)
) -> dict[int, dict[MarketingTopic, MarketingStatus]]:
    """Each contact's status for each of `topics` (every topic unless told), in two queries
    however many contacts and topics: the contact's row with its business, suppression and
    topic opt-outs, then their consents for those topics."""
    ids = sorted(set(contact_ids))
    wanted = tuple(dict.fromkeys(topics))
    if not ids or not wanted:
        return {}
    rows = db.session.execute(
        db.select(
            Contact.id,
            Contact.email,
            Contact.archived_at,
            Contact.soft_opt_in_at,
            Contact.address_confirmed_at,
            Organisation.legal_form,
            Suppression.created_at,
            Suppression.reason,
            TopicOptOut.topic,
            TopicOptOut.created_at,
        )
        .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
        .outerjoin(Suppression, Suppression.email_hash == Contact.email_hash)
        .outerjoin(
            TopicOptOut,
            (TopicOptOut.contact_id == Contact.id) & TopicOptOut.topic.in_(wanted),
        )
        .where(one_of(Contact.id, ids))
    ).all()
    current: dict[tuple[int, str], ConsentRecord] = {}
    withdrawn: dict[tuple[int, str], datetime] = {}
    consents = db.session.scalars(
        db.select(Consent)
        .where(
            one_of(Consent.contact_id, ids),
            Consent.purpose.in_([topic.value for topic in wanted]),
            Consent.confirmed_at.is_not(None) | Consent.withdrawn_at.is_not(None),
        )
        .order_by(Consent.id)
    )
    for consent in consents:
        key = (consent.contact_id, consent.purpose)
        if consent.withdrawn_at is not None:
            withdrawn[key] = max(consent.withdrawn_at, withdrawn.get(key, consent.withdrawn_at))
        elif consent.confirmed_at is not None:
            latest = current.get(key)
            if latest is None or consent.confirmed_at >= latest.confirmed_at:
                current[key] = ConsentRecord(
                    consent.wording, consent.source, consent.given_at, consent.confirmed_at
                )
    base: dict[int, Facts] = {}
    opted_out: dict[tuple[int, str], datetime] = {}
    for (
        contact_id,
        email,
        archived_at,
        soft_opt_in_at,
        address_confirmed_at,
        legal_form,
        suppressed_at,
        suppression_reason,
        opted_out_topic,
        opted_out_at,
    ) in rows:
        base[contact_id] = Facts(
            email=email,
            legal_form=legal_form,
            archived_at=archived_at,
            suppressed_at=suppressed_at,
            suppression_reason=suppression_reason or "",
            soft_opt_in_at=soft_opt_in_at,
            address_confirmed=address_confirmed_at is not None,
        )
        if opted_out_topic is not None:
            opted_out[(contact_id, MarketingTopic(opted_out_topic).value)] = opted_out_at
    return {
        contact_id: {
            topic: status(
                replace(
                    facts,
                    opted_out_at=opted_out.get((contact_id, topic.value)),
                    consent=current.get((contact_id, topic.value)),
                    withdrawn_at=withdrawn.get((contact_id, topic.value)),
                ),
                topic,
            )
            for topic in wanted
        }
        for contact_id, facts in base.items()
    }


def status_of(contact: Contact, topic: MarketingTopic) -> MarketingStatus:
    return statuses([contact.id], topic)[contact.id]


# --- the rule in SQL -----------------------------------------------------------------------------


class _EmailDomain(FunctionElement[str]):
    """`addresses.domain_of` in SQL: what follows the address's last @, lower-cased."""

    type = String()
    name = "email_domain"
    inherit_cache = True


@compiles(_EmailDomain)
def _email_domain_sqlite(element: _EmailDomain, compiler: Any, **kw: Any) -> str:
    # An address with one @ (nearly all): what follows it. Otherwise rtrim strips every character
    # that is not an @ from the end, leaving the text up to and including the last @, and
    # replacing that with nothing leaves the domain; that is twice as slow, so it is kept for the
    # rare address whose quoted local part holds an @ of its own.
    address = compiler.process(next(iter(element.clauses)), **kw)
    after_first = f"substr({address}, instr({address}, '@') + 1)"
    after_last = f"replace({address}, rtrim({address}, replace({address}, '@', '')), '')"
    return (
        f"lower(CASE WHEN instr({after_first}, '@') = 0 THEN {after_first} ELSE {after_last} END)"
    )


@compiles(_EmailDomain, "postgresql")
def _email_domain_postgresql(element: _EmailDomain, compiler: Any, **kw: Any) -> str:
    address = compiler.process(next(iter(element.clauses)), **kw)
    return f"lower(split_part({address}, '@', -1))"


def basis_case(topic: MarketingTopic) -> ColumnElement[str]:
    """`status(...).basis` as a SQL expression over `contact` (its value, e.g. "corporate"), in
    the same order of rules. Each fact is an uncorrelated `IN (SELECT ...)`, which both databases
    read once per query (PostgreSQL hashes it), not once per contact."""
    current = db.select(Consent.contact_id).where(
        Consent.purpose == topic.value,
        Consent.confirmed_at.is_not(None),
        Consent.withdrawn_at.is_(None),
    )
    withdrawn = db.select(Consent.contact_id).where(
        Consent.purpose == topic.value, Consent.withdrawn_at.is_not(None)
    )
    opted_out = db.select(TopicOptOut.contact_id).where(TopicOptOut.topic == topic)
    corporate_organisations = db.select(Organisation.id).where(
        Organisation.legal_form.in_(CORPORATE_FORMS)
    )
    soft_opt_in = Contact.soft_opt_in_at.is_not(None) if topic in SOFT_OPT_IN_TOPICS else false()
    confirmed = Contact.address_confirmed_at.is_not(None)
    return case(
        (
            Contact.email_hash.in_(
                db.select(Suppression.email_hash).where(Suppression.reason == "bounce")
            ),
            Basis.bounced.value,
        ),
        (Contact.email_hash.in_(db.select(Suppression.email_hash)), Basis.suppressed.value),
        (Contact.archived_at.is_not(None), Basis.archived.value),
        (Contact.id.in_(opted_out), Basis.opted_out.value),
        (Contact.id.in_(current), Basis.consent.value),
        (Contact.id.in_(withdrawn), Basis.opted_out.value),
        (
            confirmed
            & Contact.organisation_id.in_(corporate_organisations)
            & _EmailDomain(Contact.email).not_in(PERSONAL_DOMAINS),
            Basis.corporate.value,
        ),
        (confirmed & soft_opt_in, Basis.soft_opt_in.value),
        else_=Basis.no_basis.value,
    )


def may_receive(topic: MarketingTopic, among: Select[Any] | None = None) -> Select[Any]:
    """The ids of contacts who may be sent marketing on `topic` (of those `among` selects, a
    select of contact ids, if given): for segments and campaigns, in one statement."""
    statement = select(Contact.id).where(basis_case(topic).in_([basis.value for basis in LAWFUL]))
    if among is not None:
        statement = statement.where(Contact.id.in_(among))
    return statement


def counts_by_basis(topic: MarketingTopic, among: Select[Any] | None = None) -> dict[Basis, int]:
    """How many contacts (of those `among` selects) have each status for `topic`, in one query:
    who may be sent it, and who is left out and why."""
    basis = basis_case(topic).label("basis")
    statement = db.select(basis, func.count()).group_by(basis)
    if among is not None:
        statement = statement.where(Contact.id.in_(among))
    counts = dict.fromkeys(Basis, 0)
    counts.update({Basis(value): count for value, count in db.session.execute(statement)})
    return counts


# --- what people choose --------------------------------------------------------------------------


def record_booking_choice(
    contact: Contact, *, opted_out: bool, now: datetime | None = None
) -> None:
    """What the booker chose on the booking form, which offered them an opt-out of news of our
    future events. Not taken: the soft opt-in, from the first booking that offered it (a later one
    keeps that time). Taken: they opted out of events and the newsletter. Neither lifts anything
    the person or staff recorded before: an opt-out, a withdrawal, the suppression list."""
    now = now or utcnow()
    if opted_out:
        opt_out(contact, SOFT_OPT_IN_TOPICS, now=now)
        return
    if contact.soft_opt_in_at is not None:  # from an earlier booking, or given as it was made
        return
    given = db.session.execute(
        update(Contact)
        .where(Contact.id == contact.id, Contact.soft_opt_in_at.is_(None))
        .values(soft_opt_in_at=now)
        .returning(Contact.soft_opt_in_at)
        .execution_options(synchronize_session=False)
    ).scalar()
    if given is None:  # they had it already, from an earlier booking: that time stays
        db.session.refresh(contact, ["soft_opt_in_at"])
    else:
        set_committed_value(contact, "soft_opt_in_at", given)


def forget_unconfirmed_soft_opt_in(contact_id: int) -> None:
    """The soft opt-in of a booker whose address is not yet shown to be theirs ends (their whole
    booking cancelled through its link: perhaps someone else made it in their name)."""
    db.session.execute(
        update(Contact)
        .where(Contact.id == contact_id, Contact.address_confirmed_at.is_(None))
        .values(soft_opt_in_at=None)
        .execution_options(synchronize_session="fetch")
    )


def opt_out(
    contact: Contact, topics: Iterable[MarketingTopic], *, now: datetime | None = None
) -> None:
    """The person asked not to hear about `topics`: a TopicOptOut for each (an existing one keeps
    its time), and any consent they had for it withdrawn, with the time."""
    now = now or utcnow()
    topics = list(topics)
    if not topics:
        return
    db.session.execute(
        insert_or_skip(TopicOptOut)
        .values([{"contact_id": contact.id, "topic": topic, "created_at": now} for topic in topics])
        .on_conflict_do_nothing(index_elements=["contact_id", "topic"])
    )
    withdraw_consents(contact, topics, now=now)


def opt_in(contact: Contact, topics: Iterable[MarketingTopic]) -> None:
    """The person, through a link sent to their own address, wants `topics` again: their opt-outs
    of them end. It gives no consent by itself (a ticked box shown ticked is not consent)."""
    wanted = [topic for topic in topics]
    if wanted:
        db.session.execute(
            db.delete(TopicOptOut).where(
                TopicOptOut.contact_id == contact.id, TopicOptOut.topic.in_(wanted)
            )
        )
        db.session.flush()


def withdraw_consents(
    contact: Contact,
    topics: Iterable[MarketingTopic],
    *,
    now: datetime | None = None,
    by: str = "",
) -> int:
    """Every consent the person gave for `topics` (confirmed or still asked for) is withdrawn now
    (`by`: the staff member who recorded it, if not the person); how many were."""
    result = db.session.execute(
        update(Consent)
        .where(
            Consent.contact_id == contact.id,
            Consent.purpose.in_([topic.value for topic in topics]),
            Consent.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now or utcnow(), withdrawn_by=by)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def opted_out_topics(contact: Contact) -> set[MarketingTopic]:
    return set(
        db.session.scalars(db.select(TopicOptOut.topic).where(TopicOptOut.contact_id == contact.id))
    )
