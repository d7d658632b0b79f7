"""Retention (docs/privacy.md, "Retention"; invariant 14): what is due when, what anonymising
keeps, and that every count, chart and survey result reads the same before and after. The tests
travel in time by passing `now`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chamber.auth.audit import AuditEntry
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxAttachment, OutboxMessage
from chamber.members.models import Consent, Contact
from chamber.privacy import retention
from chamber.privacy.anonymise import ANONYMISED, is_placeholder
from chamber.privacy.models import RetentionRun
from chamber.registration import notifications
from chamber.registration.models import BookingToken, Delegate
from chamber.registration.services import BusinessDetails
from chamber.resources.models import LinkCheck, LinkState, Resource, ResourceStatus
from chamber.surveys.models import Answer, Question, QuestionKind
from chamber.worker import Worker
from tests.factories import at, make_booking
from tests.privacy_support import (
    DOMAIN,
    figures,
    rows_holding,
    seminar_with_survey,
    without_free_text,
)
from tests.support import render_waiting


def months_later(months: int, days: int = 0):
    return retention.months_before(utcnow(), -months) + timedelta(days=days)


def due(now) -> dict[str, int]:
    return {item.kind.key: item.count for item in retention.due_counts(now)}


def test_months_before_keeps_the_day_or_takes_the_months_last():
    from datetime import UTC, datetime

    assert retention.months_before(datetime(2027, 3, 31, 9, tzinfo=UTC), 1) == datetime(
        2027, 2, 28, 9, tzinfo=UTC
    )
    assert retention.months_before(datetime(2027, 1, 15, tzinfo=UTC), 24) == datetime(
        2025, 1, 15, tzinfo=UTC
    )
    assert retention.months_before(datetime(2027, 1, 15, tzinfo=UTC), -13) == datetime(
        2028, 2, 15, tzinfo=UTC
    )


def test_nothing_is_due_before_its_time_and_each_kind_at_its_own(app, make_event, make_item):
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=3)
    assert set(due(utcnow()).values()) == {0}
    a_month_on = due(months_later(1, days=1))
    assert a_month_on["needs"] == 3 and a_month_on["delegates"] == 0
    a_year_on = due(months_later(12, days=1))
    assert a_year_on["survey_text"] == 5 and a_year_on["delegates"] == 0
    assert due(months_later(24, days=-7))["delegates"] == 0
    two_years_on = due(months_later(24, days=1))
    assert two_years_on["delegates"] == 6
    assert two_years_on["bookers"] == 6  # each booked their own place, and nothing more
    assert due(utcnow() + timedelta(days=91))["outbox"] > 0


def test_anonymising_changes_no_count_chart_or_survey_result(app, make_event, make_item):
    """Invariant 14: the dashboard's figures, the tallies, the survey's results and every
    breakdown read the same after retention has anonymised everything it may."""
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=3)
    app.config["RETAIN_SURVEY_TEXT_MONTHS"] = 0  # the words too: the results compare whole
    later = months_later(25)
    before = figures(event, survey, later)

    report = retention.run_retention(later, trigger="command", batch=2)

    assert report.counts["delegates"] == 6 and report.counts["bookers"] == 6
    assert report.counts["needs"] == 0  # the delegates' own anonymising blanked them already
    assert "survey_text" not in report.counts
    assert figures(event, survey, later) == before
    for local in ("amara.okafor", "ben.hughes", "finn.oduya", "Amara Okafor", "Wheelchair"):
        assert rows_holding(local) == [], local
    delegates = db.session.scalars(db.select(Delegate).where(Delegate.event_id == event.id)).all()
    assert {d.name for d in delegates} == {ANONYMISED}
    assert all(is_placeholder(d.email_normalised) and d.anonymised_at for d in delegates)
    assert sum(d.checked_in_at is not None for d in delegates) == 5
    assert db.session.scalar(db.select(db.func.count()).select_from(BookingToken)) == 0
    contacts = db.session.scalars(db.select(Contact)).all()
    assert all(c.name == ANONYMISED and c.archived_at is not None for c in contacts)
    # Run again: nothing more to do, nothing changes.
    again = retention.run_retention(later, trigger="command")
    assert again.done == 0 and figures(event, survey, later) == before


def test_free_text_goes_by_its_own_setting_and_the_counts_stay(app, make_event, make_item):
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=3)
    later = months_later(12, days=1)
    before = figures(event, survey, later)

    report = retention.run_retention(later)

    assert report.counts == {"needs": 3, "survey_text": 5, "outbox": report.counts["outbox"]}
    texts = db.session.scalars(
        db.select(Answer.text)
        .join(Question, Question.id == Answer.question_id)
        .where(Question.kind == QuestionKind.free_text)
    ).all()
    assert texts and set(texts) == {""}
    after = figures(event, survey, later)
    assert without_free_text(after) == without_free_text(before)
    for question_before, question_after in zip(
        before["survey:None"]["questions"], after["survey:None"]["questions"], strict=True
    ):
        assert question_after["answered"] == question_before["answered"]
        if question_before["texts"]:
            assert question_after["texts"] == [] and question_after["texts_held"] == 0
        else:
            assert question_after == question_before
    # Names stay until their own time comes.
    assert (
        db.session.scalar(db.select(db.func.count()).where(Delegate.anonymised_at.is_not(None)))
        == 0
    )


def test_needs_go_after_a_month_and_nothing_else_does(app, make_event, make_item):
    event, survey, delegates = seminar_with_survey(make_event, make_item, days_ago=3)
    retention.run_retention(months_later(1, days=1))
    db.session.expire_all()
    assert {d.needs for d in db.session.scalars(db.select(Delegate))} == {""}
    assert {d.name for d in db.session.scalars(db.select(Delegate))} >= {"Amara Okafor"}


def test_email_bodies_and_addresses_go_after_ninety_days_but_not_unsent_ones(
    app, make_event, make_item
):
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=3)
    future = make_event(starts_at=at(30))
    place = make_booking(future, f"gail.moss@{DOMAIN}").confirmed[0]
    notifications.confirmation(future, place)  # with its calendar file
    db.session.commit()
    render_waiting()  # as the worker does when it claims it
    pending = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.status == MessageStatus.pending)
    ).all()
    assert pending
    assert db.session.scalar(db.select(db.func.count()).select_from(OutboxAttachment))

    retention.run_retention(utcnow() + timedelta(days=91))

    db.session.expire_all()
    sent = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.status == MessageStatus.sent)
    ).all()
    assert sent and all(m.text_body == m.html_body == "" for m in sent)
    assert all(is_placeholder(m.to_address) and m.subject for m in sent)
    still = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.status == MessageStatus.pending)
    ).all()
    assert {m.id for m in still} == {m.id for m in pending}
    assert all(m.text_body and m.to_normalised.endswith(DOMAIN) for m in still)
    remaining = db.session.scalars(db.select(OutboxAttachment.message_id)).all()
    assert set(remaining) <= {m.id for m in still}


def test_link_check_history_goes_after_its_days(app):
    resource = Resource(
        slug="ncsc", title="NCSC", url="https://x.test/", status=ResourceStatus.published
    )
    db.session.add(resource)
    db.session.flush()
    for days_ago in (400, 200, 10):
        db.session.add(
            LinkCheck(
                resource_id=resource.id,
                url="https://x.test/",
                state=LinkState.ok,
                checked_at=utcnow() - timedelta(days=days_ago),
            )
        )
    db.session.commit()
    report = retention.run_retention(utcnow())
    assert report.counts == {"link_checks": 2}
    assert len(db.session.scalars(db.select(LinkCheck)).all()) == 1


def test_the_audit_trail_goes_after_its_months_and_no_sooner(app):
    for months_ago in (30, 25, 2):
        db.session.add(
            AuditEntry(
                at=utcnow() - timedelta(days=31 * months_ago), user_email="ada@example.com",
                action="event_changed", object_kind="event", object_id="1",
            )
        )  # fmt: skip
    db.session.commit()
    assert retention.run_retention(utcnow()).counts == {"audit": 2}
    (kept,) = db.session.scalars(db.select(AuditEntry)).all()
    assert kept.at > utcnow() - timedelta(days=31 * 3)


def test_a_setting_of_zero_keeps_that_kind(app, make_event, make_item):
    seminar_with_survey(make_event, make_item, days_ago=3)
    app.config["RETAIN_DELEGATES_MONTHS"] = 0
    later = months_later(30)
    assert due(later)["delegates"] == 0 and due(later)["bookers"] == 0
    retention.run_retention(later)
    assert (
        db.session.scalar(db.select(db.func.count()).where(Delegate.anonymised_at.is_not(None)))
        == 0
    )


def test_people_held_for_more_than_bookings_keep_their_contact(app, make_event, make_item):
    """A contact with a consent (or a subscription, a role, a soft opt-in) is the directory's:
    only their places are anonymised; a booker whose other booking is recent keeps theirs too."""
    event, survey, delegates = seminar_with_survey(make_event, make_item, days_ago=3)
    consenting = db.session.get(Contact, delegates[0].contact_id)
    db.session.add(Consent(contact=consenting, wording="Yes please", source="staff"))
    db.session.commit()
    later = months_later(25)
    future = make_event(starts_at=later + timedelta(days=10))
    make_booking(future, f"ben.hughes@{DOMAIN}")

    retention.run_retention(later)

    db.session.expire_all()
    assert consenting.name == "Amara Okafor" and consenting.anonymised_at is None
    ben = db.session.scalar(db.select(Contact).where(Contact.email == f"ben.hughes@{DOMAIN}"))
    assert ben is not None and ben.anonymised_at is None
    chloe = db.session.get(Contact, delegates[2].contact_id)
    assert chloe.anonymised_at is not None
    assert (
        db.session.scalar(
            db.select(db.func.count()).where(
                Delegate.event_id == future.id, Delegate.anonymised_at.is_(None)
            )
        )
        == 1
    )


def test_an_anonymised_place_leaves_the_unique_index_free_for_the_same_person(
    app, make_event, make_item
):
    """Anonymised places each hold a made-up unique address: the one-active-registration index
    holds, and the same person can book the same (still open) event again."""
    event = make_event(starts_at=at(-800))
    first = make_booking(event, f"hal.ito@{DOMAIN}", f"ivy.lee@{DOMAIN}")
    assert len(first.confirmed) == 2
    retention.run_retention(utcnow())
    assert (
        db.session.scalar(db.select(db.func.count()).where(Delegate.anonymised_at.is_not(None)))
        == 2
    )
    again = make_booking(
        event,
        f"hal.ito@{DOMAIN}",
        business=BusinessDetails("Ito Ltd", first.booking.organisation.size_band),
    )
    assert again.confirmed and again.confirmed[0].name == "Hal Ito"


def test_anonymised_names_show_as_anonymised_on_the_registrations_page(
    app, make_event, make_item, organiser_client
):
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=3)
    retention.run_retention(months_later(25))
    page = organiser_client.get(f"/staff/events/{event.id}/registrations")
    assert page.status_code == 200
    assert b"(anonymised)" in page.data and b"Amara" not in page.data


# --- the schedule, the worker, the command, the page -------------------------------------------


def test_the_worker_runs_it_once_a_day(app, make_event, make_item):
    seminar_with_survey(make_event, make_item, days_ago=3)
    said: list[str] = []
    worker = Worker(app, worker_id="test", echo=said.append)
    first = months_later(25)
    worker.run_once(first)
    assert any(line.startswith("Retention: Anonymised") for line in said)
    assert any("rows anonymised" in line for line in said)  # its progress
    runs = db.session.scalars(db.select(RetentionRun)).all()
    assert len(runs) == 1 and runs[0].counts["delegates"] == 6 and runs[0].finished_at
    worker.run_once(first + timedelta(hours=23))
    assert len(db.session.scalars(db.select(RetentionRun)).all()) == 1
    with app.app_context():
        assert retention.next_run_at(first + timedelta(hours=23)) == first + timedelta(days=1)
    worker.run_once(first + timedelta(days=1))
    assert len(db.session.scalars(db.select(RetentionRun)).all()) == 2


def test_a_failed_run_records_why_and_is_tried_again_soon_not_a_day_later(
    app, admin_client, make_event, make_item, monkeypatch
):
    """A kind that fails (a statement time-out, say): the run is recorded as failed with the
    reason, shown on the page, and the worker tries again RETRY_AFTER later, not the next day;
    the schedule then counts from the run that went to the end."""
    import dataclasses

    seminar_with_survey(make_event, make_item, days_ago=3)
    said: list[str] = []
    worker = Worker(app, worker_id="test", echo=said.append)
    first = months_later(25)
    kind = retention.KINDS["delegates"]

    def timed_out(ids, now):
        raise RuntimeError("canceling statement due to statement timeout")

    monkeypatch.setitem(retention.KINDS, "delegates", dataclasses.replace(kind, apply=timed_out))
    worker.run_once(first)
    assert any("Retention: failed" in line and "15 minutes" in line for line in said)
    (failed,) = db.session.scalars(db.select(RetentionRun)).all()
    assert failed.finished_at and failed.error.startswith("failed: RuntimeError: canceling")
    page = admin_client.get("/staff/privacy/retention").text
    assert "failed: RuntimeError: canceling statement" in page and "still running" not in page
    monkeypatch.setitem(retention.KINDS, "delegates", kind)
    worker.run_once(first + timedelta(minutes=5))
    assert db.session.scalar(db.select(db.func.count(RetentionRun.id))) == 1  # resting
    again = first + timedelta(minutes=16)
    worker.run_once(again)
    runs = db.session.scalars(db.select(RetentionRun).order_by(RetentionRun.id)).all()
    assert len(runs) == 2 and runs[1].error == "" and runs[1].counts["delegates"] == 6
    with app.app_context():
        assert retention.next_run_at(again) == again + timedelta(days=1)


def test_a_run_whose_worker_died_is_taken_up_after_an_hour_not_beside_it(app):
    """A run never ended (its worker killed) may still be running in another worker for a while:
    no second run beside it; after ABANDONED_AFTER it is taken as dead and run again."""
    began = utcnow()
    db.session.add(RetentionRun(trigger="worker", started_at=began, counts={}))
    db.session.commit()
    assert not retention.is_due(began + timedelta(minutes=30))
    assert retention.run_retention(began + timedelta(minutes=30), only_if_due=True) is None
    assert retention.is_due(began + retention.ABANDONED_AFTER)
    assert retention.run_retention(began + timedelta(hours=2), only_if_due=True) is not None


def test_two_workers_at_once_make_one_run(app, make_event, make_item):
    """Workers started together after a deploy: the claim (an advisory lock on PostgreSQL, the
    one writer on SQLite) lets one of them run it."""
    import threading

    from chamber.core.dialects import on_postgresql

    if not on_postgresql():
        pytest.skip("two sessions writing at once: PostgreSQL")
    seminar_with_survey(make_event, make_item, days_ago=3)
    first = months_later(25)
    barrier, results, errors = threading.Barrier(2), [], []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait(5)
                results.append(retention.run_retention(first, only_if_due=True))
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and sorted(r is None for r in results) == [False, True]
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(RetentionRun.id))) == 1


def test_the_command_runs_it_with_progress_and_a_dry_run_changes_nothing(
    app, runner, make_event, make_item, monkeypatch
):
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=800)
    dry = runner.invoke(args=["privacy", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Delegates' personal details (24 months after their event): 6 due" in dry.output
    assert "(1 month after the event)" in dry.output and "1 months" not in dry.output
    assert "Dry run, nothing changed" in dry.output
    assert (
        db.session.scalar(db.select(db.func.count()).where(Delegate.anonymised_at.is_not(None)))
        == 0
    )
    assert retention.last_run() is None  # a dry run moves no schedule

    done = runner.invoke(args=["privacy", "run"])
    assert done.exit_code == 0, done.output
    assert "Anonymised" in done.output and "6 delegates' personal details" in done.output
    assert (
        db.session.scalar(db.select(db.func.count()).where(Delegate.anonymised_at.is_not(None)))
        == 6
    )


def test_the_retention_page_shows_settings_due_counts_and_the_next_run(
    app, admin_client, make_event, make_item
):
    seminar_with_survey(make_event, make_item, days_ago=800)
    page = admin_client.get("/staff/privacy/retention")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "CHAMBER_RETAIN_DELEGATES_MONTHS" in text and "24 months after their event" in text
    assert "1 month after the event" in text and "1 months" not in text  # the needs' default
    assert "due now" in text
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("client_name", ["organiser_client", "checkin_client"])
def test_only_admins_see_the_retention_page(app, request, client_name):
    client = request.getfixturevalue(client_name)
    assert client.get("/staff/privacy/retention").status_code == 403


def test_the_retention_page_needs_a_login(app, client):
    answer = client.get("/staff/privacy/retention")
    assert answer.status_code == 302 and "/staff/login" in answer.headers["Location"]


def test_the_page_costs_the_same_queries_however_much_is_due(app, admin_client, make_event):
    from tests.support import count_queries

    def queries() -> int:
        with count_queries() as seen:
            assert admin_client.get("/staff/privacy/retention").status_code == 200
        return len(seen)

    event = make_event(starts_at=at(-800))
    make_booking(event, f"a1@{DOMAIN}")
    few = queries()
    make_booking(event, *[f"b{n}@{DOMAIN}" for n in range(3)], business="Another Ltd")
    assert queries() == few


def test_the_results_say_when_what_people_wrote_is_no_longer_held(
    app, make_event, make_item, organiser_client
):
    """Retention blanks free-text answers and their count stays: the results page says how many
    answers' words are gone, not "No answers yet" or "the first 0 of 5"."""
    event, survey, _ = seminar_with_survey(make_event, make_item, days_ago=3)
    retention.run_retention(months_later(12, days=1))
    db.session.commit()
    question = db.session.scalar(
        db.select(Question).where(
            Question.survey_id == survey.id, Question.kind == QuestionKind.free_text
        )
    )
    for path in (
        f"/staff/surveys/{survey.id}/results",
        f"/staff/surveys/{survey.id}/results?question={question.id}",
    ):
        text = " ".join(organiser_client.get(path).text.split())
        assert "What 5 people wrote is no longer held" in text, path
        assert "No answers yet" not in text and "of 5 answers" not in text, path
