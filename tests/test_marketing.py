"""Lawful to email (invariant 13's rule): every PECR case as a table over the pure rule; the batch
and SQL forms agreeing with it on a mixed population, in a fixed number of queries; and the
booking form's soft opt-in (the booker only, never the delegates, never overwriting a choice)."""

from __future__ import annotations

import html
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import Suppression
from chamber.members import marketing
from chamber.members.marketing import (
    UNCONFIRMED,
    Basis,
    ConsentRecord,
    Facts,
    MarketingStatus,
    counts_by_basis,
    may_receive,
    status,
    statuses,
)
from chamber.members.models import (
    Consent,
    Contact,
    LegalForm,
    MarketingTopic,
    Organisation,
    SizeBand,
    TopicOptOut,
)
from chamber.registration.models import Delegate
from tests.factories import make_booking
from tests.support import count_queries, post_form
from tests.test_registration import manage_token, register

EVENTS, NEWSLETTER, SURVEYS = MarketingTopic
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LTD, SOLE = LegalForm.limited_company, LegalForm.sole_trader
WORK, GMAIL = "ann@octree.example", "ann.smith@gmail.com"
AGREED = ConsentRecord("Email me news of events.", "subscribe form", T0, T0 + timedelta(hours=1))

# (what we know, topic, basis): each PECR rule, and what comes first when several apply.
CASES = [
    # Corporate subscribers (companies, LLPs, public bodies) at a business address: B2B allowed.
    (Facts(WORK, legal_form=LTD), EVENTS, Basis.corporate),
    (Facts(WORK, legal_form=LegalForm.llp), SURVEYS, Basis.corporate),
    (Facts(WORK, legal_form=LegalForm.public_body), NEWSLETTER, Basis.corporate),
    (Facts(WORK, legal_form=LegalForm.other_corporate), EVENTS, Basis.corporate),
    (Facts("ANN@Octree.Example", legal_form=LTD), EVENTS, Basis.corporate),
    # ... but someone there writing from a personal mailbox is an individual subscriber.
    (Facts(GMAIL, legal_form=LTD), EVENTS, Basis.no_basis),
    (Facts("ann@HOTMAIL.co.uk", legal_form=LTD), EVENTS, Basis.no_basis),
    (Facts("ann@btinternet.com", legal_form=LegalForm.llp), SURVEYS, Basis.no_basis),
    (Facts("ann@mail.gmail.com.example", legal_form=LTD), EVENTS, Basis.corporate),
    # Individual subscribers (sole traders, partnerships), unknown forms, no business: no basis...
    (Facts(WORK, legal_form=SOLE), EVENTS, Basis.no_basis),
    (Facts(WORK, legal_form=LegalForm.partnership), NEWSLETTER, Basis.no_basis),
    (Facts(WORK, legal_form=LegalForm.unknown), EVENTS, Basis.no_basis),
    (Facts(WORK), EVENTS, Basis.no_basis),
    # ... unless they consented (confirmed, not withdrawn) to that topic ...
    (Facts(WORK, legal_form=SOLE, consent=AGREED), EVENTS, Basis.consent),
    (Facts(GMAIL, consent=AGREED), SURVEYS, Basis.consent),
    # ... or booked an event, were offered an opt-out and did not take it (soft opt-in), which
    # covers our events and newsletter, not surveys.
    (Facts(GMAIL, soft_opt_in_at=T0), EVENTS, Basis.soft_opt_in),
    (Facts(WORK, legal_form=SOLE, soft_opt_in_at=T0), NEWSLETTER, Basis.soft_opt_in),
    (Facts(GMAIL, soft_opt_in_at=T0), SURVEYS, Basis.no_basis),
    (Facts(WORK, legal_form=LegalForm.unknown, soft_opt_in_at=T0), SURVEYS, Basis.no_basis),
    # Consent is the strongest evidence, so it is the reason shown when several bases apply.
    (Facts(WORK, legal_form=LTD, consent=AGREED, soft_opt_in_at=T0), EVENTS, Basis.consent),
    (Facts(WORK, legal_form=LTD, soft_opt_in_at=T0), EVENTS, Basis.corporate),
    # Withdrawn consent is an opt-out of that topic, even at a corporate subscriber (GDPR: an
    # objection to direct marketing is absolute) and over a soft opt-in.
    (Facts(WORK, legal_form=LTD, withdrawn_at=T0), EVENTS, Basis.opted_out),
    (Facts(GMAIL, soft_opt_in_at=T0, withdrawn_at=T0), NEWSLETTER, Basis.opted_out),
    # A consent given again after a withdrawal counts.
    (Facts(GMAIL, consent=AGREED, withdrawn_at=T0), EVENTS, Basis.consent),
    # A topic opt-out beats every basis, consent included.
    (Facts(WORK, legal_form=LTD, opted_out_at=T0), EVENTS, Basis.opted_out),
    (Facts(GMAIL, consent=AGREED, opted_out_at=T0), EVENTS, Basis.opted_out),
    (Facts(GMAIL, soft_opt_in_at=T0, opted_out_at=T0), EVENTS, Basis.opted_out),
    # Archived contacts are never sent marketing.
    (Facts(WORK, legal_form=LTD, archived_at=T0), EVENTS, Basis.archived),
    (Facts(GMAIL, consent=AGREED, archived_at=T0, opted_out_at=T0), EVENTS, Basis.archived),
    # The suppression list (unsubscribed, hard bounce) beats everything.
    (Facts(WORK, legal_form=LTD, suppressed_at=T0, suppression_reason="unsubscribe"), EVENTS,
     Basis.suppressed),
    (Facts(GMAIL, consent=AGREED, suppressed_at=T0, suppression_reason="bounce"), SURVEYS,
     Basis.bounced),
    (Facts(WORK, legal_form=LTD, archived_at=T0, suppressed_at=T0, suppression_reason="bounce"),
     EVENTS, Basis.bounced),
    (Facts(WORK, legal_form=LTD, archived_at=T0, opted_out_at=T0, suppressed_at=T0), EVENTS,
     Basis.suppressed),
]  # fmt: skip


@pytest.mark.parametrize(("facts", "topic", "expected"), CASES)
def test_the_pecr_rules_as_a_table_of_cases(facts, topic, expected):
    found = status(facts, topic)
    assert found.basis is expected
    assert found.may_send is (expected in {Basis.consent, Basis.corporate, Basis.soft_opt_in})
    assert found.reason and "{" not in found.reason


def test_each_reason_says_why_in_words_staff_read():
    said = {
        (facts, topic): status(facts, topic)
        for facts, topic in [
            (Facts(WORK, legal_form=LTD), EVENTS),
            (Facts(GMAIL, legal_form=LTD), EVENTS),
            (Facts(WORK, legal_form=SOLE), EVENTS),
            (Facts(GMAIL, soft_opt_in_at=T0), SURVEYS),
            (Facts(GMAIL, consent=AGREED), EVENTS),
            (Facts(GMAIL, suppressed_at=T0, suppression_reason="unsubscribe"), EVENTS),
            (Facts(GMAIL, opted_out_at=T0), NEWSLETTER),
        ]
    }
    reasons = [found.reason for found in said.values()]
    assert "Limited company" in reasons[0] and "opt-out in every message" in reasons[0]
    assert "personal address (gmail.com)" in reasons[1].lower()
    assert "individual subscriber (sole trader)" in reasons[2].lower()
    assert "not surveys" in reasons[3]
    assert "subscribe form" in reasons[4] and AGREED.wording in reasons[4]
    assert list(said.values())[4].consent == AGREED
    assert list(said.values())[4].since == AGREED.confirmed_at
    assert reasons[5] == "Unsubscribed from all marketing"
    assert list(said.values())[5].since == T0
    assert reasons[6] == "Asked not to hear about the newsletter"


# --- the batch and SQL forms agree with the rule ------------------------------------------------

FORMS = [None, LTD, LegalForm.public_body, SOLE, LegalForm.unknown]
ADDRESSES = ["work", "gmail"]


def population() -> dict[int, Facts]:
    """Every combination that matters, written to the database; what the rule should be told of
    each contact, from how it was made (not read back through the code under test)."""
    organisations = {
        form: Organisation(
            name=f"Org {form}", name_normalised=f"org {form}", size_band=SizeBand.small,
            legal_form=form,
        )
        for form in FORMS if form is not None
    }  # fmt: skip
    db.session.add_all(organisations.values())
    db.session.flush()
    made: dict[int, Facts] = {}
    combinations = itertools.product(
        FORMS,
        ADDRESSES,
        [False, True],  # soft opt-in
        ["none", "confirmed", "pending", "withdrawn", "other topic", "again"],  # events consents
        ["none", "opt-out", "archived", "suppressed", "bounced"],
    )
    for n, (form, address, soft, consent, blocked) in enumerate(combinations):
        email = f"p{n}@{'gmail.com' if address == 'gmail' else 'firm.example'}"
        contact = Contact(
            name=f"Person {n}",
            email=email,
            organisation_id=organisations[form].id if form else None,
            soft_opt_in_at=T0 + timedelta(minutes=n) if soft else None,
            archived_at=T0 if blocked == "archived" else None,
        )
        db.session.add(contact)
        db.session.flush()
        current = withdrawn = None
        if consent in ("confirmed", "withdrawn", "again"):
            given = Consent(
                contact_id=contact.id, purpose="events", wording=f"words {n}", source="staff",
                given_at=T0, confirmed_at=T0 + timedelta(hours=1),
                withdrawn_at=T0 + timedelta(hours=2) if consent != "confirmed" else None,
            )  # fmt: skip
            db.session.add(given)
            if consent == "confirmed":
                current = ConsentRecord(given.wording, "staff", T0, T0 + timedelta(hours=1))
            else:
                withdrawn = T0 + timedelta(hours=2)
        if consent == "again":  # withdrawn once, then given again
            db.session.add(
                Consent(
                    contact_id=contact.id, purpose="events", wording="again", source="staff",
                    given_at=T0, confirmed_at=T0 + timedelta(hours=3),
                )
            )  # fmt: skip
            current = ConsentRecord("again", "staff", T0, T0 + timedelta(hours=3))
        if consent == "pending":  # asked for, never confirmed: not consent
            db.session.add(Consent(contact_id=contact.id, purpose="events", wording="p"))
        if consent == "other topic":
            db.session.add(
                Consent(contact_id=contact.id, purpose="surveys", wording="s", confirmed_at=T0)
            )
        if blocked == "opt-out":
            db.session.add(TopicOptOut(contact_id=contact.id, topic=EVENTS, created_at=T0))
        if blocked == "suppressed":
            db.session.add(Suppression(email=email, reason="unsubscribe", created_at=T0))
        if blocked == "bounced":
            db.session.add(Suppression(email=email, reason="bounce", created_at=T0))
        made[contact.id] = Facts(
            email=email,
            legal_form=form,
            archived_at=T0 if blocked == "archived" else None,
            suppressed_at=T0 if blocked in ("suppressed", "bounced") else None,
            suppression_reason={"suppressed": "unsubscribe", "bounced": "bounce"}.get(blocked, ""),
            opted_out_at=T0 if blocked == "opt-out" else None,
            consent=current,
            withdrawn_at=withdrawn,
            soft_opt_in_at=T0 + timedelta(minutes=n) if soft else None,
        )
    # Addresses typed on a public form and not yet shown to be the person's: no corporate or soft
    # opt-in basis; a consent they confirmed (by email) still counts.
    for n, (form, address, soft, consented) in enumerate(
        itertools.product(FORMS, ADDRESSES, [False, True], [False, True]), start=len(made)
    ):
        email = f"p{n}@{'gmail.com' if address == 'gmail' else 'firm.example'}"
        contact = Contact(
            name=f"Person {n}", email=email,
            organisation_id=organisations[form].id if form else None,
            soft_opt_in_at=T0 if soft else None,
        )  # fmt: skip
        db.session.add(contact)
        db.session.flush()
        contact.address_confirmed_at = None  # as a public form makes it (the default is set)
        db.session.flush()
        current = None
        if consented:
            db.session.add(
                Consent(
                    contact_id=contact.id, purpose="events", wording=f"words {n}",
                    source="staff", given_at=T0, confirmed_at=T0,
                )
            )  # fmt: skip
            current = ConsentRecord(f"words {n}", "staff", T0, T0)
        made[contact.id] = Facts(
            email=email, legal_form=form, consent=current,
            soft_opt_in_at=T0 if soft else None, address_confirmed=False,
        )  # fmt: skip
    db.session.commit()
    return made


def test_the_batch_and_sql_forms_agree_with_the_rule_on_a_mixed_population(app):
    made = population()
    assert len(made) == 600 + 2 * len(FORMS) * len(ADDRESSES) * 2
    topic = EVENTS
    expected = {contact_id: status(facts, topic) for contact_id, facts in made.items()}
    assert statuses(made, topic) == expected
    lawful = {cid for cid, found in expected.items() if found.may_send}
    assert set(db.session.scalars(may_receive(topic))) == lawful
    counted = counts_by_basis(topic)
    assert counted == {
        basis: sum(found.basis is basis for found in expected.values()) for basis in Basis
    }
    assert all(counted[basis] for basis in Basis)  # the population reaches every rule
    # For another topic the events consents and opt-outs count for nothing.
    for other in (NEWSLETTER, SURVEYS):
        found = statuses(made, other)
        by_sql = counts_by_basis(other)
        assert by_sql == {b: sum(s.basis is b for s in found.values()) for b in Basis}
        assert set(db.session.scalars(may_receive(other))) == {
            cid for cid, s in found.items() if s.may_send
        }


def test_a_segment_narrows_the_select_and_the_counts(app):
    made = population()
    among = db.select(Contact.id).where(Contact.email.like("%@gmail.com"))
    gmail = {cid for cid, facts in made.items() if facts.email.endswith("@gmail.com")}
    expected = {cid: status(made[cid], EVENTS) for cid in gmail}
    assert set(db.session.scalars(may_receive(EVENTS, among))) == {
        cid for cid, found in expected.items() if found.may_send
    }
    counted = counts_by_basis(EVENTS, among)
    assert sum(counted.values()) == len(gmail) and counted[Basis.corporate] == 0


def test_the_batch_form_runs_two_queries_however_many_contacts(app):
    made = population()
    ids = sorted(made)
    with count_queries() as few:
        statuses(ids[:3], EVENTS)
    with count_queries() as many:
        statuses(ids, EVENTS)
    assert len(few) == len(many) == 2
    with count_queries() as counting:
        counts_by_basis(SURVEYS)
        list(db.session.scalars(may_receive(SURVEYS)))
    assert len(counting) == 2
    assert statuses([], EVENTS) == {}


def test_the_sql_form_reads_the_address_after_its_last_at_sign(app):
    organisation = Organisation(
        name="Octree", name_normalised="octree", size_band=SizeBand.small, legal_form=LTD
    )
    db.session.add(organisation)
    db.session.flush()
    emails = [
        "a@GMAIL.com", '"a@b"@gmail.com', "a@gmail.com.example", "no-at-sign", "a@pm.me",
        '"x@gmail.com"@octree.example',
    ]  # fmt: skip
    contacts = [Contact(name="x", email=email, organisation_id=organisation.id) for email in emails]
    db.session.add_all(contacts)
    db.session.commit()
    expected = {c.id: status(Facts(c.email, legal_form=LTD), EVENTS).basis for c in contacts}
    assert [expected[c.id] for c in contacts] == [
        Basis.no_basis, Basis.no_basis, Basis.corporate, Basis.corporate, Basis.no_basis,
        Basis.corporate,
    ]  # fmt: skip
    assert set(db.session.scalars(may_receive(EVENTS))) == {
        cid for cid, basis in expected.items() if basis is Basis.corporate
    }


# --- what people choose, recorded with its time -------------------------------------------------


def contact(email: str = "ann@octree.example") -> Contact:
    found = db.session.scalars(db.select(Contact).where(Contact.email == email)).one()
    return found


def test_opting_out_of_a_topic_withdraws_its_consent_with_the_time(app):
    ann = Contact(name="Ann", email="ann@octree.example")
    db.session.add(ann)
    db.session.flush()
    db.session.add(Consent(contact_id=ann.id, purpose="events", wording="w", confirmed_at=T0))
    db.session.commit()
    assert marketing.status_of(ann, EVENTS).basis is Basis.consent
    marketing.opt_out(ann, [EVENTS])
    marketing.opt_out(ann, [EVENTS])  # again: the first time stays
    db.session.commit()
    consent = db.session.scalars(db.select(Consent)).one()
    opted = db.session.scalars(db.select(TopicOptOut)).one()
    assert consent.withdrawn_at is not None and opted.created_at is not None
    assert marketing.status_of(ann, EVENTS).basis is Basis.opted_out
    marketing.opt_in(ann, [EVENTS])  # wanting it again gives no consent by itself
    db.session.commit()
    assert marketing.status_of(ann, EVENTS).basis is Basis.opted_out  # the withdrawal stands
    assert marketing.status_of(ann, NEWSLETTER).basis is Basis.no_basis


# --- the booking form's soft opt-in -------------------------------------------------------------


def test_a_booker_who_does_not_tick_the_opt_out_gets_the_soft_opt_in_and_delegates_never(
    client, make_event, smtp_server
):
    """The soft opt-in is recorded with the booking, and counts once the address is shown to be
    the booker's (here: they change a delegate's details through their manage link)."""
    event = make_event()
    form = html.unescape(client.get(f"/events/{event.slug}/register").text)
    assert "Don't send me news of future events" in form and 'name="consent"' not in form
    # A business whose name says no legal form (not known: no corporate basis to come first).
    assert register(client, event, business_name="Octree Trading").status_code == 302
    tony, zoe = contact("tony@octree.example"), contact("zoe@octree.example")
    assert tony.soft_opt_in_at is not None and zoe.soft_opt_in_at is None
    assert marketing.status_of(tony, EVENTS) == MarketingStatus(Basis.no_basis, UNCONFIRMED)
    token = manage_token(smtp_server)
    zoe_place = db.session.scalars(db.select(Delegate).where(Delegate.contact_id == zoe.id)).one()
    edited = post_form(
        client, f"/r/{token}/delegates/{zoe_place.id}", {"name": "Zoë O'Brien", "needs": "Ramp"}
    )
    assert edited.status_code == 302
    assert marketing.status_of(tony, EVENTS).basis is Basis.soft_opt_in
    assert marketing.status_of(tony, SURVEYS).basis is Basis.no_basis
    assert marketing.status_of(zoe, EVENTS).basis is Basis.no_basis
    first = tony.soft_opt_in_at
    # A later booking keeps the first time.
    again = register(client, make_event(), **{"delegates-0-email": "ed@octree.example"})
    assert again.status_code == 302
    assert contact("tony@octree.example").soft_opt_in_at == first


def test_a_stranger_booking_in_someone_elses_name_makes_nobody_marketable(
    client, make_event, smtp_server
):
    """Anyone may type any address on the public form, at any business's name: neither the
    booker's soft opt-in nor the corporate subscriber's basis counts until the address is shown
    to be theirs, in every form of the rule (one contact, the batch, the SQL a segment uses). A
    booker who calls the booking off first keeps no soft opt-in; coming to the event confirms."""
    from chamber.registration import checkin_services
    from tests.factories import acting_staff

    octree = Organisation(
        name="Octree Ltd", name_normalised="octree", size_band=SizeBand.small, legal_form=LTD
    )
    db.session.add(octree)
    db.session.commit()
    event = make_event()
    victims = ("vic@soletrader.example", "dee@partnership.example")
    booked = register(client, event, booker_email=victims[0], **{"delegates-0-email": victims[1]})
    assert booked.status_code == 302
    vic, dee = (contact(address) for address in victims)
    assert vic.organisation_id == dee.organisation_id == octree.id
    for topic in (EVENTS, NEWSLETTER, SURVEYS):
        found = marketing.statuses([vic.id, dee.id], topic)
        assert {s.basis for s in found.values()} == {Basis.no_basis}
        assert not set(db.session.scalars(may_receive(topic))) & {vic.id, dee.id}
    assert "not yet shown to be theirs" in marketing.status_of(dee, EVENTS).reason
    token = manage_token(smtp_server, booker=victims[0])
    assert post_form(client, f"/r/{token}/cancel", {}).status_code == 302
    assert contact(victims[0]).soft_opt_in_at is None
    assert marketing.status_of(contact(victims[0]), EVENTS).basis is Basis.no_basis

    other = make_event()
    register(
        client, other, booker_email="someone@else.example", **{"delegates-0-email": victims[1]}
    )
    place = db.session.scalars(
        db.select(Delegate).where(Delegate.contact_id == dee.id, Delegate.event_id == other.id)
    ).one()
    checkin_services.check_in(place, by=acting_staff())
    db.session.commit()
    assert marketing.status_of(contact(victims[1]), EVENTS).basis is Basis.corporate
    assert dee.id in set(db.session.scalars(may_receive(EVENTS)))


def test_staff_and_the_directory_record_addresses_as_confirmed(app, make_event):
    """A booking staff type, or a contact staff add, is the chamber's own record."""
    event = make_event()
    make_booking(event, "kim@octree.example", business="Octree Ltd")
    kim = contact("kim@octree.example")
    assert kim.address_confirmed_at is not None
    assert marketing.status_of(kim, EVENTS).reason != UNCONFIRMED


def test_a_booker_who_ticks_the_opt_out_gets_no_soft_opt_in_and_is_opted_out(client, make_event):
    assert register(client, make_event(), no_marketing="y").status_code == 302
    tony = contact("tony@octree.example")
    assert tony.soft_opt_in_at is None
    assert {o.topic for o in db.session.scalars(db.select(TopicOptOut))} == {EVENTS, NEWSLETTER}
    assert marketing.status_of(tony, EVENTS).basis is Basis.opted_out
    assert not db.session.scalars(db.select(Consent)).all()


def test_a_booking_never_lifts_an_opt_out_a_suppression_or_a_withdrawal(client, make_event):
    ann = Contact(name="Tony", email="tony@octree.example")
    db.session.add(ann)
    db.session.flush()
    db.session.add(TopicOptOut(contact_id=ann.id, topic=EVENTS, created_at=T0))
    db.session.add(Consent(contact_id=ann.id, purpose="newsletter", wording="w",
                           confirmed_at=T0, withdrawn_at=T0))  # fmt: skip
    mail.suppress("tony@octree.example")
    db.session.commit()
    assert register(client, make_event()).status_code == 302  # the opt-out not ticked
    tony = contact("tony@octree.example")
    assert mail.is_suppressed("tony@octree.example")
    assert db.session.scalars(db.select(TopicOptOut.topic)).all() == [EVENTS]
    assert db.session.scalars(db.select(Consent.withdrawn_at)).one() is not None
    assert marketing.status_of(tony, EVENTS).basis is Basis.suppressed
    mail.lift_unsubscribe("tony@octree.example")  # were they to subscribe again themselves
    db.session.commit()
    assert marketing.status_of(tony, EVENTS).basis is Basis.opted_out
    assert marketing.status_of(tony, NEWSLETTER).basis is Basis.opted_out  # withdrawn


def test_a_staff_booking_offers_no_opt_out_so_records_no_soft_opt_in(app, make_event):
    make_booking(make_event(), "staff.booked@octree.example")
    assert contact("staff.booked@octree.example").soft_opt_in_at is None


def test_a_business_a_booking_makes_takes_the_legal_form_its_name_says(client, make_event):
    assert register(client, make_event()).status_code == 302  # "Octree Ltd"
    made = db.session.scalars(db.select(Organisation)).one()
    assert made.legal_form is LegalForm.limited_company


def test_confirmations_a_mistake_made_are_taken_back_and_never_carried_by_a_merge(
    client, make_event, smtp_server
):
    """A check-in undone (someone else was at the door) unconfirms the address it confirmed; a
    merge brings no soft opt-in from an unconfirmed record into a confirmed one; a booker who
    cancels every place one by one keeps no unconfirmed soft opt-in, as one who cancels the
    whole booking at once."""
    from chamber.directory import merging
    from chamber.registration import checkin_services
    from tests.factories import acting_staff

    event = make_event()
    assert register(client, event, business_name="Octree Trading").status_code == 302
    zoe = contact("zoe@octree.example")
    place = db.session.scalars(db.select(Delegate).where(Delegate.contact_id == zoe.id)).one()
    staff = acting_staff()
    checkin_services.check_in(place, by=staff)
    db.session.commit()
    assert contact("zoe@octree.example").address_confirmed_at is not None
    checkin_services.undo_check_in(place, by=staff)
    db.session.commit()
    assert contact("zoe@octree.example").address_confirmed_at is None

    kept = make_booking(make_event(), "kim@octree.example", business="Octree Trading")
    kim = contact("kim@octree.example")  # staff-booked: confirmed, no soft opt-in
    tony = contact("tony@octree.example")  # the public booker: unconfirmed, with one
    assert (
        kept and kim.address_confirmed_at and tony.soft_opt_in_at and not tony.address_confirmed_at
    )
    merging.merge_contacts(kim.id, tony.id, by=staff)
    db.session.commit()
    assert contact("kim@octree.example").soft_opt_in_at is None

    other = make_event()
    booked = register(
        client, other, booker_email="sam@octree.example", business_name="Octree Trading",
        **{"delegates-0-email": "sam@octree.example", "delegates-0-name": "Sam Hill"},
    )  # fmt: skip
    assert booked.status_code == 302 and contact("sam@octree.example").soft_opt_in_at
    token = manage_token(smtp_server, booker="sam@octree.example")
    sams = db.session.scalars(
        db.select(Delegate).where(
            Delegate.event_id == other.id, Delegate.email_normalised == "sam@octree.example"
        )
    ).one()
    assert post_form(client, f"/r/{token}/cancel/{sams.id}", {}).status_code == 302
    assert contact("sam@octree.example").soft_opt_in_at is None
