"""Merging two organisations or two contacts that are the same: the preview, everything moving in
one transaction, the record of it, the merges refused (and why), and merges racing edits and
each other in threads, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import sqlalchemy as sa

from chamber.core.times import utcnow
from chamber.directory import merging
from chamber.extensions import db
from chamber.members import directory
from chamber.members.models import (
    Consent,
    Contact,
    LegalForm,
    LinkPurpose,
    MarketingToken,
    MarketingTopic,
    MergeKind,
    MergeRecord,
    Organisation,
    SubscriptionRequest,
    TopicOptOut,
)
from chamber.registration import services as registration
from chamber.registration.models import Booking, Delegate
from chamber.registration.services import DelegateDetails
from chamber.surveys import services as surveys
from chamber.surveys.models import Invitation
from tests.factories import acting_staff, at, make_booking
from tests.support import count_queries, post_form
from tests.test_access import committed_rows
from tests.test_directory import BASE, add_contact, add_organisation, page_text

# --- every row that points at a record moves -----------------------------------------------------


def test_the_merge_knows_every_foreign_key_to_an_organisation_or_a_contact(app):
    """A table added later with a foreign key to one of them fails here until the merge moves it
    (or says why it need not): otherwise a merge would orphan its rows or fail on the delete."""
    pointing = {
        (table.name, fk.parent.name)
        for table in db.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name in ("organisation", "contact")
    }
    assert pointing == set(merging.MOVED)


def invite(event, delegate: Delegate, *, answered: bool) -> Invitation:
    survey = surveys.survey_for_event(event.id) or surveys.create_survey(event, by=acting_staff())
    survey.anonymous = False  # a named survey: the contact's page may say they answered
    invitation = Invitation(
        survey_id=survey.id,
        delegate_id=delegate.id,
        email=delegate.email_normalised,
        responded_at=utcnow() if answered else None,
    )
    db.session.add(invitation)
    db.session.commit()
    return invitation


def two_octrees(make_event):
    """The same business twice: "Octree Ltd" (staff's record) and "Octree Services" (made by a
    booking), each with a contact and bookings."""
    kept = add_organisation(
        "Octree Ltd", sector="", website="", legal_form=LegalForm.unknown, tags=["board"],
        notes="Staff notes.",
    )  # fmt: skip
    removed = add_organisation(
        "Octree Services", sector="IT", website="octree.example", town_or_postcode="Stevenage",
        legal_form=LegalForm.limited_company, is_member=True, membership_tier="Patron",
        member_since=date(2020, 1, 1), tags=["board", "sponsor"], notes="From the old CRM.",
    )  # fmt: skip
    add_contact("tony@octree.example", "Tony Richardson", kept)
    past = make_event(starts_at=at(-20, 9), title="Cyber seminar 2025")
    booked = make_booking(
        past, "ana@octree.example", "ben@octree.example", business="Octree Services",
        checked_in=True,
    )  # fmt: skip
    invite(past, booked.confirmed[0], answered=True)
    make_booking(
        make_event(title="Cyber seminar 2027"), "cat@octree.example", business="Octree Ltd"
    )
    return kept, removed


def test_merging_organisations_moves_everything_keeps_staffs_values_and_records_it(
    organiser_client, make_event
):
    kept, removed = two_octrees(make_event)
    removed_id = removed.id
    removed_contacts = {
        c.id
        for c in db.session.scalars(db.select(Contact).where(Contact.organisation_id == removed_id))
    }
    removed_bookings = set(
        db.session.scalars(db.select(Booking.id).where(Booking.organisation_id == removed_id))
    )
    path = f"{BASE}/organisations/{kept.id}/merge"

    preview = organiser_client.get(path, query_string={"removed": removed_id})
    text = page_text(preview)
    assert "Merging Octree Services into Octree Ltd" in text
    assert "Contacts 2 Bookings 1 Delegate places (with their check-ins) 2" in text
    assert "Survey invitations (with whether they answered) 1" in text
    assert "Tags it does not have yet 1" in text
    assert "Octree Ltd has no sector, town, website, legal form, membership" in text

    response = post_form(
        organiser_client, path, {"removed": removed_id}, token_from=f"{path}?removed={removed_id}"
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{BASE}/organisations/{kept.id}"

    db.session.expire_all()
    assert db.session.get(Organisation, removed_id) is None
    kept = db.session.get(Organisation, kept.id)
    assert kept.name == "Octree Ltd"  # the kept record's own values stay
    assert (kept.sector, kept.website, kept.town_or_postcode) == (
        "IT",
        "octree.example",
        "Stevenage",
    )
    assert kept.legal_form == LegalForm.limited_company
    assert (kept.is_member, kept.membership_tier, kept.member_since) == (
        True,
        "Patron",
        date(2020, 1, 1),
    )
    assert kept.tag_names == ["board", "sponsor"]
    assert kept.notes.startswith("Staff notes.\n\nFrom Octree Services (merged ")
    assert kept.notes.endswith("From the old CRM.")
    assert {c.organisation_id for c in db.session.scalars(db.select(Contact))} == {kept.id}
    assert set(db.session.scalars(db.select(Booking.organisation_id))) == {kept.id}

    record = db.session.scalar(db.select(MergeRecord))
    assert (record.kind, record.kept_id, record.removed_id) == (
        MergeKind.organisation,
        kept.id,
        removed_id,
    )
    assert record.removed_snapshot["name"] == "Octree Services"
    assert record.removed_snapshot["tags"] == ["board", "sponsor"]
    assert set(record.moved["contacts"]) == removed_contacts
    assert set(record.moved["bookings"]) == removed_bookings
    assert record.moved["tags"] == ["sponsor"]
    assert record.by_email == "org@example.com"

    history = page_text(organiser_client.get(f"{BASE}/organisations/{kept.id}"))
    assert "2 events booked 3 places confirmed 2 attended" in history
    assert "Octree Services (record" in history and "by org@example.com" in history


def test_a_preview_changes_nothing_and_costs_a_fixed_number_of_queries(
    organiser_client, make_event
):
    kept, removed = two_octrees(make_event)
    path = f"{BASE}/organisations/{kept.id}/merge?removed={removed.id}&q=octree"
    before = committed_rows()
    organiser_client.get(path)
    with count_queries() as few:
        assert organiser_client.get(path).status_code == 200
    for n in range(5):
        make_booking(
            make_event(starts_at=at(-n - 30, 9)),
            f"more{n}@octree.example",
            business="Octree Services",
        )
    after_bookings = committed_rows()
    with count_queries() as many:
        organiser_client.get(path)
    assert len(many) == len(few)
    assert committed_rows() == after_bookings != before


def test_the_merge_page_finds_candidates_by_name_and_leaves_the_record_itself_out(
    organiser_client, make_event
):
    kept, removed = two_octrees(make_event)
    response = organiser_client.get(
        f"{BASE}/organisations/{kept.id}/merge", query_string={"q": "OCTREE"}
    )
    assert "Octree Services" in response.text
    assert f"removed={kept.id}" not in response.text


def test_merging_contacts_moves_places_bookings_consents_and_opt_outs_each_once(
    organiser_client, make_event
):
    octree = add_organisation("Octree Ltd")
    kept = add_contact("tony@octree.example", "Tony Richardson", octree, job_title="")
    removed = add_contact(
        "t.richardson@gmail.example", "Tony R", None, job_title="Director", phone="0123"
    )
    past, upcoming = make_event(starts_at=at(-20, 9)), make_event()
    gone = make_booking(
        past, DelegateDetails("Tony R", "t.richardson@gmail.example"), checked_in=True
    )
    invite(past, gone.confirmed[0], answered=True)
    make_booking(upcoming, DelegateDetails("Tony Richardson", "tony@octree.example"))
    request = SubscriptionRequest(contact_id=removed.id)
    db.session.add(request)
    db.session.flush()
    db.session.add_all([
        Consent(contact_id=removed.id, wording="Yes please", source="subscribe form",
                request_id=request.id),
        MarketingToken(contact_id=removed.id, token_hash="f" * 64, purpose=LinkPurpose.preferences),
        TopicOptOut(contact_id=removed.id, topic=MarketingTopic.newsletter),
        TopicOptOut(contact_id=removed.id, topic=MarketingTopic.surveys),
        TopicOptOut(contact_id=kept.id, topic=MarketingTopic.surveys),
    ])  # fmt: skip
    db.session.commit()
    removed_id = removed.id
    path = f"{BASE}/contacts/{kept.id}/merge"
    text = page_text(organiser_client.get(path, query_string={"removed": removed_id}))
    assert "Bookings they made 1 Delegate places (with their check-ins) 1" in text
    assert "Consent records 1 Topics they opted out of 1" in text
    assert "Tony Richardson has no job title, phone" in text
    # Each named with their address (two people may share a name), and the address that goes.
    assert (
        "Merge Tony R (t.richardson@gmail.example) into Tony Richardson (tony@octree.example)"
        in text
    )
    assert "The address t.richardson@gmail.example is not kept" in text

    response = post_form(organiser_client, path, {"removed": removed_id}, token_from=path)
    assert response.status_code == 302

    db.session.expire_all()
    assert db.session.get(Contact, removed_id) is None
    kept = db.session.get(Contact, kept.id)
    assert (kept.name, kept.email, kept.job_title, kept.phone) == (
        "Tony Richardson",
        "tony@octree.example",
        "Director",
        "0123",
    )
    assert kept.organisation_id == octree.id
    assert set(db.session.scalars(db.select(Delegate.contact_id))) == {kept.id}
    assert set(db.session.scalars(db.select(Booking.booker_id))) == {kept.id}
    assert db.session.scalar(db.select(Consent.contact_id)) == kept.id
    assert db.session.scalar(db.select(Consent.request_id)) is not None  # still its request's
    assert db.session.scalar(db.select(SubscriptionRequest.contact_id)) == kept.id
    # A preferences link sent to the removed record's address (not the kept one's) is forgotten:
    # it would show the kept address and choose what is sent to it.
    assert db.session.scalar(db.select(db.func.count(MarketingToken.id))) == 0
    assert sorted(
        db.session.scalars(db.select(TopicOptOut.topic).where(TopicOptOut.contact_id == kept.id))
    ) == [MarketingTopic.newsletter, MarketingTopic.surveys]
    # The place keeps the address it was booked with: what was typed stays as typed.
    assert (
        db.session.scalar(db.select(Delegate.email_normalised).where(Delegate.event_id == past.id))
        == "t.richardson@gmail.example"
    )
    record = db.session.scalar(db.select(MergeRecord))
    assert record.kind == MergeKind.contact
    assert record.removed_snapshot["email"] == "t.richardson@gmail.example"
    assert len(record.moved["delegates"]) == 1 and len(record.moved["survey_invitations"]) == 1
    assert record.moved["topic_opt_outs"] == ["newsletter"]

    page = page_text(organiser_client.get(f"{BASE}/contacts/{kept.id}"))
    assert "Answered" in page and "Tony R (t.richardson@gmail.example)" in page


# --- refused -------------------------------------------------------------------------------------


def test_two_records_of_one_person_with_places_at_one_event_are_not_merged(
    organiser_client, make_event
):
    event = make_event(title="Cyber seminar 2027")
    kept = add_contact("tony@octree.example", "Tony Richardson")
    removed = add_contact("tony.r@octree.example", "Tony R")
    make_booking(event, DelegateDetails("Tony Richardson", "tony@octree.example"))
    make_booking(event, DelegateDetails("Tony R", "tony.r@octree.example"), business="Other Ltd")
    path = f"{BASE}/contacts/{kept.id}/merge"
    preview = organiser_client.get(path, query_string={"removed": removed.id})
    assert "both have a place at Cyber seminar 2027" in page_text(preview)
    assert "Cancel one of the two places" in page_text(preview)
    assert 'name="removed"' not in preview.text  # no button to press
    before = committed_rows()
    forced = post_form(organiser_client, path, {"removed": removed.id}, token_from=path)
    assert forced.status_code == 400
    assert "both have a place at Cyber seminar 2027" in page_text(forced)
    assert committed_rows() == before

    # Once one place is cancelled, the two can become one.
    place = db.session.scalar(
        db.select(Delegate).where(Delegate.email_normalised == "tony.r@octree.example")
    )
    registration.cancel_delegate(event, place)
    db.session.commit()
    assert (
        post_form(organiser_client, path, {"removed": removed.id}, token_from=path).status_code
        == 302
    )


@pytest.mark.parametrize("kind", ["organisation", "contact"])
def test_a_record_is_not_merged_into_itself_an_archived_one_or_one_that_is_gone(
    organiser_client, kind
):
    if kind == "organisation":
        one, other = (
            add_organisation("One Ltd"),
            add_organisation("Other Ltd", archived_at=utcnow()),
        )
    else:
        one, other = (
            add_contact("one@example.com"),
            add_contact("other@example.com", archived_at=utcnow()),
        )
    before = committed_rows()

    def merge(kept, removed_id):
        path = f"{BASE}/{kind}s/{kept.id}/merge"
        return post_form(organiser_client, path, {"removed": removed_id}, token_from=path)

    itself = merge(one, one.id)
    assert itself.status_code == 400
    assert "cannot be merged into itself" in page_text(itself) or "is this one" in page_text(itself)
    into_archived = merge(other, one.id)
    assert into_archived.status_code == 400
    assert "is archived: restore it before merging" in page_text(into_archived)
    gone = merge(one, 987654)
    assert gone.status_code == 400
    assert "no longer in the directory" in page_text(gone)
    for bad in ("", "abc", "-1", "9" * 40, "<b>", "²", "٣", "1\x00"):
        assert merge(one, bad).status_code == 400
        preview = organiser_client.get(
            f"{BASE}/{kind}s/{one.id}/merge", query_string={"removed": bad}
        )
        assert preview.status_code == 200
    assert committed_rows() == before
    # The other way round is allowed: an archived duplicate merged into the current record.
    assert merge(one, other.id).status_code == 302


def test_a_merge_that_puts_a_business_over_its_limit_says_so_and_keeps_every_place(
    organiser_client, make_event
):
    event = make_event(business_limit=2, title="Small room")
    make_booking(event, "a@octree.example", "b@octree.example", business="Octree Ltd")
    make_booking(event, "c@octree.example", business="Octree Services")
    kept, removed = (
        db.session.scalar(db.select(Organisation).where(Organisation.name == name))
        for name in ("Octree Ltd", "Octree Services")
    )
    path = f"{BASE}/organisations/{kept.id}/merge"
    text = page_text(organiser_client.get(path, query_string={"removed": removed.id}))
    assert (
        "Together they hold 3 places at Small room, more than the 2 one business may book" in text
    )
    assert (
        post_form(organiser_client, path, {"removed": removed.id}, token_from=path).status_code
        == 302
    )
    assert db.session.scalar(db.select(sa.func.count()).select_from(Delegate)) == 3


# --- races ---------------------------------------------------------------------------------------


def run_at_once(app, *jobs):
    """Each job in its own thread and app context (its own session), started together; returns
    what each did: "ok", or the refusal's message. Anything else is an error that fails the test."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(n, job):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                job()
                db.session.commit()
                outcomes[n] = "ok"
            except directory.DirectoryRefused as refusal:
                db.session.rollback()
                outcomes[n] = refusal.message
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return outcomes


def staff_id() -> int:
    by = acting_staff()
    db.session.commit()
    return by.id


def test_two_merges_of_one_pair_either_way_round_and_an_edit_end_consistent(app, make_event):
    kept, removed = two_octrees(make_event)
    kept_id, removed_id, by_id = kept.id, removed.id, staff_id()
    from chamber.auth.models import StaffUser

    def by():
        return db.session.get(StaffUser, by_id)

    details = directory.OrganisationInput(
        name="Octree Services", size_band=kept.size_band, sector="Edited"
    )
    outcomes = run_at_once(
        app,
        lambda: merging.merge_organisations(kept_id, removed_id, by=by()),
        lambda: merging.merge_organisations(removed_id, kept_id, by=by()),
        lambda: directory.edit_organisation(removed_id, details, by=by()),
    )
    assert outcomes[:2].count("ok") == 1, outcomes
    assert all(o == "ok" or "no longer in the directory" in o for o in outcomes), outcomes
    db.session.expire_all()
    survivors = list(db.session.scalars(db.select(Organisation)))
    assert len(survivors) == 1
    (survivor,) = survivors
    records = list(db.session.scalars(db.select(MergeRecord)))
    assert len(records) == 1 and records[0].kept_id == survivor.id
    assert set(db.session.scalars(db.select(Booking.organisation_id))) == {survivor.id}
    assert {c.organisation_id for c in db.session.scalars(db.select(Contact))} == {survivor.id}


def waiting_on_a_lock() -> int:
    """How many other sessions of this database wait for a row lock (PostgreSQL)."""
    with db.engine.connect() as conn:
        return conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )


def until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def postgresql_only(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks one can watch another session wait on: PostgreSQL")


@pytest.mark.parametrize("first", ["merge", "edit"])
def test_an_edit_and_a_merge_of_one_contact_queue_on_its_row_lock(app, postgresql_only, first):
    """Whichever takes the row first, the other waits for it and then sees what it committed: an
    edit after the merge is refused (the record is gone), a merge after the edit keeps the edit
    in its snapshot. Nothing is lost and nothing fails with a 500."""
    kept = add_contact("tony@octree.example", "Tony Richardson")
    removed = add_contact("t.r@example.com", "Tony R")
    kept_id, removed_id, by_id = kept.id, removed.id, staff_id()
    from chamber.auth.models import StaffUser

    holding, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []

    def merge():
        merging.merge_contacts(kept_id, removed_id, by=db.session.get(StaffUser, by_id))

    def edit():
        directory.edit_contact(
            removed_id,
            directory.ContactInput(name="Tony R", email="t.r@example.com", job_title="Edited"),
            by=db.session.get(StaffUser, by_id),
        )

    def run(name, job, hold):
        with app.app_context():
            try:
                job()
                if hold:
                    holding.set()
                    assert release.wait(timeout=30)
                db.session.commit()
                outcomes[name] = "ok"
            except directory.DirectoryRefused as refusal:
                db.session.rollback()
                outcomes[name] = refusal.message
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    jobs = {"merge": merge, "edit": edit}
    second = "edit" if first == "merge" else "merge"
    one = threading.Thread(target=run, args=(first, jobs[first], True))
    one.start()
    assert holding.wait(timeout=30)
    two = threading.Thread(target=run, args=(second, jobs[second], False))
    two.start()
    until(lambda: waiting_on_a_lock() >= 1)  # the second waits for the first's lock
    release.set()
    one.join(timeout=30)
    two.join(timeout=30)
    assert errors == []
    db.session.expire_all()
    assert db.session.get(Contact, removed_id) is None
    record = db.session.scalar(db.select(MergeRecord))
    if first == "merge":
        assert outcomes["merge"] == "ok"
        assert "no longer in the directory" in outcomes["edit"]
        assert record.removed_snapshot["job_title"] == ""
    else:
        assert outcomes == {"edit": "ok", "merge": "ok"}
        assert record.removed_snapshot["job_title"] == "Edited"
        assert db.session.get(Contact, kept_id).job_title == "Edited"  # filled from the removed


def test_a_merged_away_records_old_address_leads_to_the_one_it_lives_on_in(
    organiser_client, make_event
):
    """A bookmark or an audit entry names the removed record's id: its page says it was merged
    and shows the record it went into (through later merges too); an id never used is a 404."""
    first, second, third = (add_contact(f"p{n}@octree.example", f"Pat {n}") for n in range(3))
    ids = [c.id for c in (first, second, third)]
    for kept, removed in ((ids[1], ids[0]), (ids[2], ids[1])):
        path = f"{BASE}/contacts/{kept}/merge"
        assert (
            post_form(organiser_client, path, {"removed": removed}, token_from=path).status_code
            == 302
        )
    answer = organiser_client.get(f"{BASE}/contacts/{ids[0]}")
    assert answer.status_code == 302 and answer.headers["Location"] == f"{BASE}/contacts/{ids[2]}"
    shown = organiser_client.get(answer.headers["Location"]).text
    assert "That contact was merged into this one" in shown and "Pat 2" in shown
    assert organiser_client.get(f"{BASE}/contacts/999999").status_code == 404
    assert organiser_client.get(f"{BASE}/organisations/999999").status_code == 404
