"""Erasing one person (docs/privacy.md, "Erasure"): the preview, the one step that does it all,
the waiting list, the outbox, the suppression list that keeps only a hash, the figures that stay,
and bad input and forged requests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chamber.auth.audit import AuditEntry
from chamber.core.addresses import address_hash
from chamber.core.times import utcnow
from chamber.events.models import Speaker
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import MessageStatus, OutboxMessage, Suppression
from chamber.members import import_jobs, subscriptions
from chamber.members.import_models import ImportJob, ImportStatus
from chamber.members.marketing import Basis, counts_by_basis, status_of
from chamber.members.models import (
    Consent,
    Contact,
    MarketingTopic,
    MergeKind,
    MergeRecord,
    SubscriptionRequest,
)
from chamber.privacy import erasure
from chamber.registration import notifications
from chamber.registration.models import Delegate, DelegateStatus
from chamber.registration.services import DelegateDetails
from chamber.surveys.models import Answer, Response
from tests.factories import acting_staff, at, make_booking
from tests.privacy_support import DOMAIN, figures, rows_holding, seminar_with_survey
from tests.support import csrf_token, post_form

PERSON = f"amara.okafor@{DOMAIN}"
LOCAL = "amara.okafor"


def full_event_with_person_and_waiting(make_event):
    """A future event of one seat: the person holds it, Gail waits. Emails queued for both."""
    event = make_event(starts_at=at(20), capacity=1, business_limit=5)
    held = make_booking(event, PERSON, business="Okafor Retail").confirmed[0]
    waiting = make_booking(event, f"gail.moss@{DOMAIN}", business="Moss Ltd").waitlisted[0]
    notifications.confirmation(event, held)
    db.session.commit()
    return event, held, waiting


def a_person_everywhere(app, runner, make_event, make_item, tmp_path, *, anonymous=True):
    """The person in every place an address can sit: a past seminar (attended, survey answered),
    a seat at a full event with someone waiting, a subscription, an unsubscribe link, a bounce
    whose server answer quotes them, an import, a merge, a speaker's private email."""
    seminar, survey, _delegates = seminar_with_survey(
        make_event, make_item, days_ago=3, anonymous=anonymous
    )
    event, held, waiting = full_event_with_person_and_waiting(make_event)
    subscriptions.subscribe(
        subscriptions.SubscribeDetails(
            "Amara Okafor", PERSON, "Okafor Retail", [MarketingTopic.events]
        )
    )
    mail.suppress(PERSON, mail.BOUNCE, detail=f"550 5.1.1 <{PERSON}>: mailbox unavailable")
    db.session.add(
        MergeRecord(
            kind=MergeKind.contact,
            kept_id=1,
            removed_id=999,
            removed_snapshot={"email": PERSON.upper(), "name": "Amara Okafor"},
            moved={},
            by_email="admin@example.com",
        )
    )
    db.session.add(Speaker(name="Tony Richardson", email=PERSON))
    db.session.commit()
    csv = tmp_path / "members.csv"
    csv.write_text(f"Organisation,Email,Name\nOkafor Retail,{PERSON},Amara Okafor\n")
    imported = runner.invoke(args=["members", "import", str(csv), "--size-band", "micro"])
    assert imported.exit_code == 0, imported.output
    assert rows_holding(LOCAL)  # the person is everywhere to begin with
    return seminar, survey, event, held, waiting


def test_the_preview_says_what_will_happen_and_changes_nothing(
    app, runner, make_event, make_item, tmp_path
):
    a_person_everywhere(app, runner, make_event, make_item, tmp_path)
    held_before = rows_holding(LOCAL)

    preview = erasure.erasure_preview(f"  {PERSON.upper()} ")

    assert preview.email == PERSON and preview.contact_name == "Amara Okafor"
    assert [p.status for p in preview.places_to_cancel] == [DelegateStatus.confirmed]
    assert preview.past_places == 1
    assert preview.consents == 1 and preview.subscriptions == 1
    assert preview.emails_to_cancel >= 2  # the confirmation and the subscription's
    assert preview.already_suppressed and not preview.staff_account
    assert rows_holding(LOCAL) == held_before


def test_erasing_frees_the_seat_cancels_mail_and_leaves_only_the_hash(
    app, runner, admin_client, make_event, make_item, tmp_path
):
    seminar, survey, event, held, waiting = a_person_everywhere(
        app, runner, make_event, make_item, tmp_path, anonymous=False
    )
    later = utcnow()
    before = figures(seminar, survey, later)
    responses_before = db.session.scalar(db.select(db.func.count()).select_from(Response))

    preview = post_form(admin_client, "/staff/privacy/erase", {"email": PERSON})
    assert preview.status_code == 200
    assert "Erase this person" in preview.text and "Gail" not in preview.text
    done = post_form(
        admin_client,
        "/staff/privacy/erase/confirm",
        {"email": PERSON},
        token_from="/staff/privacy/erase",
    )
    assert done.status_code == 302
    assert LOCAL not in done.headers["Location"]

    # The seat went to the person waiting, who is told.
    db.session.expire_all()
    assert db.session.get(Delegate, waiting.id).status == DelegateStatus.confirmed
    assert db.session.get(Delegate, held.id).status == DelegateStatus.cancelled
    told = db.session.scalars(
        db.select(OutboxMessage).where(
            OutboxMessage.to_normalised == f"gail.moss@{DOMAIN}",
            OutboxMessage.status == MessageStatus.pending,
        )
    ).all()
    assert told
    # Nothing is left to send to the person.
    assert not db.session.scalars(
        db.select(OutboxMessage).where(
            OutboxMessage.status == MessageStatus.pending,
            OutboxMessage.to_normalised.not_like("gail.moss%"),
        )
    ).all()
    # No trace of the address, or of the part before the @, in any column of any table.
    assert rows_holding(PERSON) == []
    assert rows_holding(LOCAL) == []
    row = db.session.scalar(
        db.select(Suppression).where(Suppression.email_hash == address_hash(PERSON))
    )
    assert row is not None and row.email is None and row.detail is None and row.reason == "erased"
    assert rows_holding(address_hash(PERSON)) == [("suppression", "email_hash", 1)]
    # Consents and subscriptions are gone; the past seminar's figures are the same.
    assert db.session.scalar(db.select(db.func.count()).select_from(Consent)) == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(SubscriptionRequest)) == 0
    assert figures(seminar, survey, later) == before
    assert db.session.scalar(db.select(db.func.count()).select_from(Response)) == responses_before
    # The audit trail says who erased someone and what it did, and never whose address it was.
    (entry,) = db.session.scalars(
        db.select(AuditEntry).where(AuditEntry.action == "person_erased")
    ).all()
    assert entry.user_email == "admin@example.com" and "1 places cancelled" in entry.detail


def test_the_address_typed_again_is_found_suppressed(app, runner, make_event, make_item, tmp_path):
    """Re-subscribing, re-importing or booking again makes a new contact; the hash finds it on
    the suppression list, for the marketing rule, the segments' counts and the send-time check."""
    event, _held, _waiting = full_event_with_person_and_waiting(make_event)
    by = acting_staff()
    db.session.commit()
    erasure.erase_person(PERSON, by=by)
    db.session.commit()
    assert mail.is_suppressed(PERSON) and mail.suppressed_among([PERSON.upper()]) == {PERSON}

    csv = tmp_path / "again.csv"
    csv.write_text(f"Organisation,Email,Name\nOkafor Retail,{PERSON},Amara Okafor\n")
    imported = runner.invoke(args=["members", "import", str(csv), "--size-band", "micro"])
    assert imported.exit_code == 0, imported.output
    contact = db.session.scalar(db.select(Contact).where(Contact.email == PERSON))
    assert contact is not None and contact.email_hash == address_hash(PERSON)
    assert status_of(contact, MarketingTopic.events).basis == Basis.suppressed
    among = db.select(Contact.id).where(Contact.id == contact.id)
    counts = counts_by_basis(MarketingTopic.events, among)
    assert counts[Basis.suppressed] == 1 and sum(counts.values()) == 1

    subscriptions.subscribe(
        subscriptions.SubscribeDetails("Amara", PERSON, "", [MarketingTopic.newsletter])
    )
    db.session.commit()
    assert status_of(contact, MarketingTopic.newsletter).basis == Basis.suppressed
    # A new suppression of the same address keeps it hash-only.
    mail.suppress(PERSON)
    db.session.commit()
    assert (
        db.session.scalar(
            db.select(Suppression.email).where(Suppression.email_hash == address_hash(PERSON))
        )
        is None
    )


def test_answers_to_an_anonymous_survey_stay_as_they_were_and_unlinked(app, make_event, make_item):
    seminar, survey, delegates = seminar_with_survey(make_event, make_item, anonymous=True)
    answers_before = sorted(
        db.session.execute(
            db.select(
                Answer.response_id, Answer.question_id, Answer.number, Answer.choice, Answer.text
            )
        ).all()
    )
    erasure.erase_person(PERSON, by=acting_staff())
    db.session.commit()
    answers_after = sorted(
        db.session.execute(
            db.select(
                Answer.response_id, Answer.question_id, Answer.number, Answer.choice, Answer.text
            )
        ).all()
    )
    assert answers_after == answers_before
    assert rows_holding(LOCAL) == []


def test_two_places_at_two_full_events_are_freed_in_one_transaction(app, make_event):
    first, _held, waiting_first = full_event_with_person_and_waiting(make_event)
    second = make_event(starts_at=at(40), capacity=1, business_limit=5)
    make_booking(second, PERSON, business="Okafor Retail")
    waiting_second = make_booking(second, f"hugo.ray@{DOMAIN}", business="Ray Ltd").waitlisted[0]
    by = acting_staff()
    db.session.commit()

    report = erasure.erase_person(PERSON, by=by)
    db.session.commit()

    assert report.places_cancelled == 2 and report.promoted == 2
    for waiting in (waiting_first, waiting_second):
        assert db.session.get(Delegate, waiting.id).status == DelegateStatus.confirmed


def test_an_unknown_address_is_only_suppressed_as_a_hash(app, admin_client):
    preview = post_form(admin_client, "/staff/privacy/erase", {"email": "nobody@nowhere.example"})
    assert preview.status_code == 200 and "We hold nothing under this address" in preview.text
    done = post_form(
        admin_client,
        "/staff/privacy/erase/confirm",
        {"email": "nobody@nowhere.example"},
        token_from="/staff/privacy/erase",
    )
    assert done.status_code == 302
    assert mail.is_suppressed("nobody@nowhere.example")
    assert rows_holding("nobody@nowhere") == []


def test_a_staff_address_is_warned_about_and_the_account_left(app, admin_client, organiser):
    preview = post_form(admin_client, "/staff/privacy/erase", {"email": organiser.email})
    assert "A staff account uses this address" in preview.text


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the email address of the person to erase."),
        ("   ", "Enter the email address of the person to erase."),
        ("a" * 250 + "@x.example", "254 characters or fewer"),
        ("amara@firm.example\r\nBcc: all@firm.example", "must be on one line"),
        ("amara\x00@firm.example", "contains a character that is not allowed"),
        ("amara okafor@firm.example", "no spaces"),
        ("no-at-sign", "Enter a whole email address"),
        ("delegate-5@anonymised.invalid", "made up"),
    ],
)
def test_bad_addresses_come_back_with_the_reason(app, admin_client, typed, message):
    answer = post_form(admin_client, "/staff/privacy/erase", {"email": typed})
    assert answer.status_code == 400
    assert message in answer.text
    assert 'class="error-summary"' in answer.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Suppression)) == 0


@pytest.mark.parametrize(
    "typed",
    ["<script>alert(1)</script>@x.example", "{{7*7}}@x.example", "zoë@bücher.example"],
)
def test_hostile_or_unusual_text_is_shown_as_text(app, admin_client, typed):
    answer = post_form(admin_client, "/staff/privacy/erase", {"email": typed})
    assert answer.status_code == 200
    assert "<script>alert" not in answer.text and "49@" not in answer.text
    assert typed.lower().replace("<", "&lt;").replace(">", "&gt;") in answer.text


def test_a_bad_confirmation_changes_nothing(app, admin_client, make_event):
    full_event_with_person_and_waiting(make_event)
    answer = post_form(
        admin_client,
        "/staff/privacy/erase/confirm",
        {"email": "x\r\n"},
        token_from="/staff/privacy/erase",
    )
    assert answer.status_code == 400
    missing = post_form(
        admin_client, "/staff/privacy/erase/confirm", {}, token_from="/staff/privacy/erase"
    )
    assert missing.status_code == 400 and "start again" in missing.text
    assert (
        db.session.scalar(db.select(db.func.count()).where(Delegate.anonymised_at.is_not(None)))
        == 0
    )


# --- forged requests -------------------------------------------------------------------------------


def test_without_the_form_token_nothing_is_erased(app, admin_client, make_event):
    event, held, _waiting = full_event_with_person_and_waiting(make_event)
    for path in ("/staff/privacy/erase", "/staff/privacy/erase/confirm"):
        answer = admin_client.post(path, data={"email": PERSON})
        assert answer.status_code == 400
    answer = admin_client.post(
        "/staff/privacy/erase/confirm", data={"email": PERSON, "csrf_token": "forged"}
    )
    assert answer.status_code == 400
    assert db.session.get(Delegate, held.id).status == DelegateStatus.confirmed
    assert not mail.is_suppressed(PERSON)


@pytest.mark.parametrize("client_name", ["organiser_client", "checkin_client"])
def test_only_admins_may_erase(app, request, client_name, make_event):
    event, held, _waiting = full_event_with_person_and_waiting(make_event)
    client = request.getfixturevalue(client_name)
    assert client.get("/staff/privacy/erase").status_code == 403
    token = csrf_token(client, "/staff/")
    for path in ("/staff/privacy/erase", "/staff/privacy/erase/confirm"):
        answer = client.post(path, data={"email": PERSON, "csrf_token": token})
        assert answer.status_code == 403
    assert db.session.get(Delegate, held.id).status == DelegateStatus.confirmed


def test_erasing_needs_a_login_and_keeps_the_address_out_of_the_url(app, client, admin_client):
    answer = client.post("/staff/privacy/erase", data={"email": PERSON})
    assert answer.status_code in (302, 400)
    page = admin_client.get("/staff/privacy/erase")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'method="post"' in page.text
    preview = post_form(admin_client, "/staff/privacy/erase", {"email": PERSON})
    assert 'action="/staff/privacy/erase/confirm"' in preview.text
    assert admin_client.get("/staff/privacy/erase/confirm").status_code == 405


def test_a_delegate_erased_after_the_event_keeps_the_attendance(app, make_event):
    past = make_event(starts_at=utcnow() - timedelta(days=10))
    place = make_booking(past, PERSON, checked_in=True).confirmed[0]
    by = acting_staff()
    db.session.commit()
    erasure.erase_person(PERSON, by=by)
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get(Delegate, place.id)
    assert kept.status == DelegateStatus.confirmed and kept.checked_in_at is not None
    assert kept.name == "(anonymised)"


def test_the_booker_of_the_erased_person_is_told_without_their_name(app, make_event):
    event = make_event(starts_at=at(20), capacity=5, business_limit=5)
    booker = DelegateDetails("Rita Booker", f"rita.booker@{DOMAIN}")
    person = DelegateDetails("Amara Okafor", PERSON)
    make_booking(event, booker, person, business="Okafor Retail")
    by = acting_staff()
    db.session.commit()

    erasure.erase_person(PERSON, by=by)
    db.session.commit()

    told = db.session.scalars(
        db.select(OutboxMessage).where(
            OutboxMessage.to_normalised == f"rita.booker@{DOMAIN}",
            OutboxMessage.status == MessageStatus.pending,
        )
    ).all()
    assert told and all("Amara" not in m.text_body + m.html_body for m in told)
    assert rows_holding(LOCAL) == [] and rows_holding("Okafor@") == []


def test_pages_that_show_an_erased_person_say_anonymised(
    app, make_event, make_item, organiser_client
):
    seminar, survey, delegates = seminar_with_survey(make_event, make_item, anonymous=False)
    contact_id = delegates[0].contact_id
    by = acting_staff()
    db.session.commit()
    erasure.erase_person(PERSON, by=by)
    db.session.commit()
    for path in (
        f"/staff/directory/contacts/{contact_id}",
        f"/staff/events/{seminar.id}/registrations",
        "/staff/directory/contacts?archived=archived",  # an erased contact is archived
    ):
        page = organiser_client.get(path)
        assert page.status_code == 200, path
        assert "(anonymised)" in page.text and LOCAL not in page.text, path


@pytest.mark.parametrize("status", [ImportStatus.mapping, ImportStatus.queued])
def test_an_import_not_yet_run_that_holds_the_person_is_stopped_and_its_file_deleted(app, status):
    """Left at choosing its columns (or waiting for the worker), an uploaded file holding the
    person would make them again when it ran: erasing cancels it and deletes its file, and leaves
    a file without them as it was."""
    held = f"Organisation,Email,Name\nOkafor Retail,{PERSON.upper()},Amara Okafor\n".encode()
    other = b"Organisation,Email,Name\nMoss Ltd,gail@moss.example,Gail Moss\n"
    jobs = [import_jobs.create_job("members.csv", content) for content in (held, other)]
    for job in jobs:
        job.status = status
    db.session.commit()
    ids = [job.id for job in jobs]
    erasure.erase_person(PERSON, by=acting_staff())
    db.session.commit()
    stopped, untouched = (db.session.get(ImportJob, i) for i in ids)
    assert (stopped.status, stopped.content, stopped.size) == (ImportStatus.cancelled, b"", 0)
    assert stopped.finished_at is not None and "erased" in stopped.error
    assert (untouched.status, untouched.content) == (status, other)
    assert not rows_holding(LOCAL)


def test_an_import_running_with_the_person_in_it_stops_the_erasure_with_the_reason(app, make_event):
    """Its chunks may be writing the person as the erasure runs: nothing is erased, and the page
    says which import to cancel (or let finish) first."""
    event, held, _waiting = full_event_with_person_and_waiting(make_event)
    job = import_jobs.create_job("members.csv", f"Email,Name\n{PERSON},Amara\n".encode())
    job.status = ImportStatus.running
    by = acting_staff()
    db.session.commit()
    with pytest.raises(erasure.ErasureRefused, match=f"Import {job.id} holds this address"):
        erasure.erase_person(PERSON, by=by)
    db.session.rollback()
    assert db.session.get(Delegate, held.id).status == DelegateStatus.confirmed
    assert db.session.get(ImportJob, job.id).content  # nothing half done


def test_a_utf16_file_holding_the_person_is_found_and_stopped(app):
    """Excel's "Unicode text" is UTF-16: the address is other bytes there, and still found."""
    held = f"Organisation\tEmail\tName\nOkafor Retail\t{PERSON}\tAmara Okafor\n"
    job = import_jobs.create_job("members.txt", held.encode("utf-16"))
    job.status = ImportStatus.queued
    by = acting_staff()
    db.session.commit()
    erasure.erase_person(PERSON, by=by)
    db.session.commit()
    stopped = db.session.get(ImportJob, job.id)
    assert (stopped.status, stopped.content) == (ImportStatus.cancelled, b"")


def test_a_dry_run_done_loses_its_file_and_cannot_then_be_imported(app):
    """Its report stays, with why its file is gone; "Import these rows" is refused, never an
    import of nothing that says it is done."""
    held = f"Organisation,Email,Name\nOkafor Retail,{PERSON},Amara Okafor\n".encode()
    job = import_jobs.create_job("members.csv", held)
    job.status, job.dry_run, job.mapping = (
        ImportStatus.done,
        True,
        ["organisation", "email", "name"],
    )
    by = acting_staff()
    db.session.commit()
    erasure.erase_person(PERSON, by=by)
    db.session.commit()
    job = db.session.get(ImportJob, job.id)
    assert (job.status, job.size) == (ImportStatus.done, 0) and "erased" in job.error
    with pytest.raises(import_jobs.ImportRefused, match="This file was deleted"):
        import_jobs.start(job, dry_run=False)


def test_a_running_import_whose_worker_is_gone_is_stopped_not_waited_for(app):
    """A job left running by a worker that died (its lease ran out) would refuse every erasure
    until a worker took it up again: it is stopped and its file deleted instead."""
    held = f"Organisation,Email,Name\nOkafor Retail,{PERSON},Amara Okafor\n".encode()
    job = import_jobs.create_job("members.csv", held)
    job.status, job.claimed_by = ImportStatus.running, "worker-that-died"
    job.lease_until = utcnow() - timedelta(minutes=5)
    by = acting_staff()
    db.session.commit()
    erasure.erase_person(PERSON, by=by)
    db.session.commit()
    job = db.session.get(ImportJob, job.id)
    assert (job.status, job.content, job.claimed_by) == (ImportStatus.cancelled, b"", None)


def test_the_preview_names_the_import_files_and_warns_of_one_running(app, admin_client):
    """Before the admin confirms, the preview counts the uploaded files holding the address and
    says which running import would refuse the erasure, with a link to cancel it; one whose worker
    is gone is only counted (the erasure stops it), and a file without the address is not."""
    running, dead, other = (
        import_jobs.create_job("members.csv", content)
        for content in (
            f"Email,Name\n{PERSON},Amara\n".encode(),
            f"Email,Name\n{PERSON.upper()},Amara\n".encode(),
            b"Email,Name\ngail@moss.example,Gail\n",
        )
    )
    running.status, running.lease_until = ImportStatus.running, utcnow() + timedelta(minutes=5)
    dead.status, dead.lease_until = ImportStatus.running, utcnow() - timedelta(minutes=5)
    other.status = ImportStatus.running
    db.session.commit()
    preview = erasure.erasure_preview(PERSON)
    assert (preview.import_files, preview.imports_running) == (2, [running.id])
    page = post_form(admin_client, "/staff/privacy/erase", {"email": PERSON})
    assert "2 uploaded import file(s)" in page.text
    assert f"Import {running.id} holds this address and is running now" in page.text
    assert f'href="/staff/directory/imports/{running.id}"' in page.text
    assert f"Import {dead.id} " not in page.text and f"Import {other.id} " not in page.text
    assert db.session.get(ImportJob, running.id).content  # the preview changes nothing
