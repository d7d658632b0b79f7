"""Sending surveys: the worker sends each due survey once (even two workers at once), one
invitation per recipient through the outbox with its own link, then one reminder to those who have
not answered. Time travels through the worker's `now`."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, OutboxMessage
from chamber.mail.services import suppress
from chamber.registration.models import DelegateStatus
from chamber.surveys import dispatch, services
from chamber.surveys.models import (
    Invitation,
    Recipients,
    Response,
    Survey,
    SurveyStatus,
    SurveyToken,
)
from chamber.worker import Worker
from tests.factories import acting_staff
from tests.support import count_queries, csrf_token
from tests.surveys_support import LINK, book, finished_seminar, invitation_of, sent_survey


def outbox_keys(prefix: str = "survey-") -> list[str]:
    return sorted(
        db.session.scalars(
            db.select(OutboxMessage.key).where(OutboxMessage.key.startswith(prefix))
        ).all()
    )


def scheduled_survey(event, **settings) -> Survey:
    survey = services.create_survey(event, by=acting_staff())
    for name, value in settings.items():
        setattr(survey, name, value)
    services.schedule(survey, by=acting_staff())
    db.session.commit()
    return survey


def body(message) -> str:
    return message.get_body(("plain",)).get_content()


# --- the whole flow ------------------------------------------------------------------------------


def test_the_whole_flow_with_time_travel(app, client, make_event, make_item, smtp_server):
    event = finished_seminar(make_event, make_item, days_ago=0)
    book(event, "ann@alpha.example", name="Ann Answer")
    book(event, "bob@beta.example", name="Bob Busy")
    book(event, "cat@gamma.example", name="Cat Stayed Home", checked_in=False)
    book(event, "gone@delta.example", name="Gone Away")
    suppress("gone@delta.example")
    db.session.commit()
    survey = scheduled_survey(event)
    lines: list[str] = []
    worker = Worker(app, worker_id="w1", echo=lines.append)

    worker.run_once(now=survey.send_at - timedelta(minutes=1))  # not yet due
    assert outbox_keys() == [] and smtp_server.messages == []

    worker.run_once(now=survey.send_at + timedelta(minutes=1))
    db.session.expire_all()
    invitations = db.session.scalars(db.select(Invitation).order_by(Invitation.email)).all()
    assert [i.email for i in invitations] == ["ann@alpha.example", "bob@beta.example"]
    assert outbox_keys() == sorted(f"survey-invite:{i.id}" for i in invitations)
    assert any("2 invitation(s)" in line for line in lines)
    by_address = {m["To"].split("<")[-1].rstrip(">"): m for m in smtp_server.messages}
    assert set(by_address) == {"ann@alpha.example", "bob@beta.example"}
    ann_mail = by_address["ann@alpha.example"]
    assert ann_mail["Subject"] == survey.title
    assert ann_mail["List-Unsubscribe"].startswith("<http")  # survey mail can be refused
    assert "Dear Ann Answer" in body(ann_mail)
    ann_token = LINK.search(body(ann_mail)).group(1)
    assert ann_token not in db.session.scalars(db.select(SurveyToken.token_hash)).all()
    assert db.session.get(Survey, survey.id).status == SurveyStatus.sent

    page = client.get(f"/s/{ann_token}")
    assert page.status_code == 200 and "Overall, how would you rate the seminar?" in page.text
    questions = db.session.get(Survey, survey.id).questions
    answered = client.post(
        f"/s/{ann_token}",
        data={
            "csrf_token": csrf_token(client, f"/s/{ann_token}"),
            f"q{questions[0].id}": "5",
            f"q{questions[2].id}": "9",
        },
    )
    assert answered.status_code == 303
    assert "Thank you" in client.get(answered.headers["Location"]).text

    smtp_server.handler.received.clear()
    worker.run_once(now=survey.send_at + timedelta(days=3, hours=23))  # reminder not yet due
    assert outbox_keys("survey-reminder") == []
    worker.run_once(now=survey.send_at + timedelta(days=4, minutes=1))
    bob = invitation_of(survey, "bob@beta.example")
    assert outbox_keys("survey-reminder") == [f"survey-reminder:{bob.id}"]
    assert [m["To"] for m in smtp_server.messages] == ["Bob Busy <bob@beta.example>"]
    reminder = smtp_server.messages[0]
    assert reminder["Subject"].startswith("Reminder:")
    bob_token = LINK.search(body(reminder)).group(1)
    assert client.get(f"/s/{bob_token}").status_code == 200
    db.session.expire_all()
    assert bob.reminded_at is not None
    assert invitation_of(survey, "ann@alpha.example").reminded_at is None

    worker.run_once(now=survey.send_at + timedelta(days=6))  # nothing more, ever
    assert len(smtp_server.messages) == 1
    assert len(outbox_keys()) == 3


def test_recipients_can_be_every_confirmed_delegate_but_never_cancelled_ones(
    app, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    book(event, "in@a.example")
    book(event, "out@b.example", checked_in=False)
    cancelled = book(event, "cancelled@c.example")
    cancelled.status = DelegateStatus.cancelled
    db.session.commit()
    survey = sent_survey(event, recipients=Recipients.confirmed)
    emails = db.session.scalars(
        db.select(Invitation.email).where(Invitation.survey_id == survey.id)
    ).all()
    assert sorted(emails) == ["in@a.example", "out@b.example"]


def test_an_anonymised_place_is_never_invited(app, make_event, make_item):
    """Erased (or past its retention), a place has only a made-up address: nobody to ask."""
    event = finished_seminar(make_event, make_item)
    book(event, "in@a.example")
    erased = book(event, "erased@b.example")
    erased.anonymised_at = utcnow()
    erased.email_normalised = "delegate-1@anonymised.invalid"
    db.session.commit()
    survey = sent_survey(event, recipients=Recipients.confirmed)
    emails = db.session.scalars(
        db.select(Invitation.email).where(Invitation.survey_id == survey.id)
    ).all()
    assert emails == ["in@a.example"]


def test_a_draft_survey_is_never_sent(app, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example")
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    report = dispatch.send_due(survey.send_at + timedelta(days=30))
    assert report.invitations == 0 and outbox_keys() == []


def test_sending_again_queues_nothing_new(app, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example")
    survey = sent_survey(event)
    assert dispatch.send_survey(survey) is None  # already sent: not ours to send
    survey.status = SurveyStatus.scheduled  # even if the status were lost
    db.session.commit()
    dispatch.send_due(utcnow())
    assert len(outbox_keys("survey-invite")) == 1
    assert db.session.scalar(db.select(db.func.count(Invitation.id))) == 1


def test_no_reminder_when_turned_off_or_after_closing(app, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example")
    survey = sent_survey(event, reminder_enabled=False)
    assert dispatch.send_due(utcnow() + timedelta(days=5)).reminders == 0
    survey.reminder_enabled = True
    survey.closes_at = utcnow() + timedelta(days=2)
    db.session.commit()
    assert dispatch.send_due(utcnow() + timedelta(days=5)).reminders == 0
    assert outbox_keys("survey-reminder") == []


def test_the_command_sends_due_surveys(app, runner, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example")
    book(event, "b@b.example")
    survey = services.create_survey(event, by=acting_staff())
    survey.send_at = utcnow() - timedelta(minutes=1)
    services.schedule(survey, by=acting_staff())
    db.session.commit()
    result = runner.invoke(args=["surveys", "send-due"])
    assert result.exit_code == 0, result.output
    assert "Queued 2 invitation(s) for 1 survey(s)" in result.output
    assert len(outbox_keys("survey-invite")) == 2


def test_survey_mail_goes_through_the_outbox_as_survey_mail_with_a_placeholder(
    app, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example")
    sent_survey(event)
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert message.kind == MailKind.survey
    nonce = message.link_nonce
    assert re.search(rf"\[\[link:{nonce}:survey:\d+\]\]", message.text_body)  # no secret in it
    assert f"[[link:{nonce}:unsubscribe:]]" in message.html_body


# --- two workers at once -------------------------------------------------------------------------


def run_together(app, work, count: int = 2) -> list:
    barrier = threading.Barrier(count)
    results: list = []
    errors: list = []

    def run(name: str) -> None:
        with app.app_context():
            barrier.wait(timeout=30)
            try:
                results.append(work(name))
            except Exception as error:  # reported below, in the test's thread
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_two_workers_at_once_send_each_invitation_and_reminder_exactly_once(
    app, make_event, make_item, smtp_server
):
    event = finished_seminar(make_event, make_item, capacity=100)
    people = 30
    for n in range(people):
        book(event, f"person{n}@example.com", name=f"Person {n}")
    survey = scheduled_survey(event)
    send_at = survey.send_at

    reports = run_together(app, lambda name: dispatch.send_due(send_at, name))
    assert sorted(r.invitations for r in reports) == [0, people]
    assert sum(r.surveys for r in reports) == 1
    assert len(outbox_keys("survey-invite")) == people
    assert db.session.scalar(db.select(db.func.count(Invitation.id))) == people

    run_together(app, lambda name: deliver_due(name, batch_size=7))
    ids = smtp_server.message_ids()
    assert len(ids) == people and len(set(ids)) == people
    tokens = {LINK.search(body(m)).group(1) for m in smtp_server.messages}
    assert len(tokens) == people  # one private link each

    later = send_at + timedelta(days=5)
    reports = run_together(app, lambda name: dispatch.send_due(later, name))
    assert sorted(r.reminders for r in reports) == [0, people]
    assert len(outbox_keys("survey-reminder")) == people


# --- staff: send now, recipients -----------------------------------------------------------------


def test_send_now_sends_at_once_and_only_once(organiser_client, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example", name="Ann")
    book(event, "b@b.example", name="Bob")
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    token = csrf_token(organiser_client, f"{base}/send-now")
    response = organiser_client.post(f"{base}/send-now", data={"csrf_token": token, "emailed": "2"})
    assert response.status_code == 302
    page = organiser_client.get(base)
    assert "Sent: 2 invitation(s) are on their way." in page.text
    assert len(outbox_keys("survey-invite")) == 2
    again = organiser_client.post(f"{base}/send-now", data={"csrf_token": token, "emailed": "2"})
    assert again.status_code == 302
    assert "already been sent" in organiser_client.get(base).text
    assert len(outbox_keys("survey-invite")) == 2


def test_the_recipients_page_shows_invited_reminded_answered_without_a_query_per_row(
    organiser_client, make_event, make_item
):
    event = finished_seminar(make_event, make_item, capacity=100)
    for n in range(3):
        book(event, f"p{n}@example.com", name=f"Person {n}")
    survey = sent_survey(event, anonymous=False)  # named: who answered is shown at once
    first = invitation_of(survey, "p0@example.com")
    first.responded_at = utcnow()
    db.session.add(Response(survey_id=survey.id, invitation_id=first.id))
    db.session.commit()
    path = f"/staff/surveys/{survey.id}/recipients"
    with count_queries() as few:
        page = organiser_client.get(path)
    assert page.status_code == 200
    assert "Person 0" in page.text and "p2@example.com" in page.text
    assert re.search(r"<strong>3</strong> invited", page.text)
    assert re.search(r"<strong>1</strong> answered", page.text)
    answered = organiser_client.get(path, query_string={"show": "answered"})
    assert "Person 0" in answered.text and "Person 1" not in answered.text

    more = [book(event, f"p{n}@example.com", name=f"Person {n}") for n in range(3, 40)]
    db.session.execute(
        db.insert(Invitation),
        [{"survey_id": survey.id, "delegate_id": d.id, "email": d.email_normalised} for d in more],
    )
    db.session.commit()
    with count_queries() as many:
        page = organiser_client.get(path)
    assert page.status_code == 200 and page.text.count("<tr>") == 41
    assert len(many) == len(few)


@pytest.mark.parametrize("show", ["nonsense", "<script>", ""])
def test_a_strange_filter_on_the_recipients_page_is_not_an_error(
    organiser_client, make_event, make_item, show
):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example")
    survey = sent_survey(event)
    page = organiser_client.get(
        f"/staff/surveys/{survey.id}/recipients", query_string={"show": show, "page": "x"}
    )
    assert page.status_code == 200 and "<script>" not in page.text


def test_with_no_one_checked_in_nothing_is_sent_and_staff_are_told_why(
    organiser_client, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    book(event, "a@a.example", checked_in=False)
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    assert "No one was checked in at this event" in organiser_client.get(base).text
    organiser_client.post(
        f"{base}/send-now", data={"csrf_token": csrf_token(organiser_client, base)}
    )
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft
    assert outbox_keys() == []

    survey = db.session.get(Survey, survey.id)
    services.schedule(survey, by=acting_staff())
    db.session.commit()
    assert dispatch.send_due(utcnow() + timedelta(days=2)).surveys == 0
    assert db.session.get(Survey, survey.id).status == SurveyStatus.scheduled  # still due
    db.session.get(Survey, survey.id).recipients = Recipients.confirmed
    db.session.commit()
    assert dispatch.send_due(utcnow() + timedelta(days=2)).invitations == 1


def test_send_now_never_turns_a_survey_the_worker_just_sent_back_into_a_scheduled_one(
    app, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_survey(event)
    read = db.session.get(Survey, survey.id)
    assert read.status == SurveyStatus.scheduled  # as the staff request read it

    def worker(_name):  # meanwhile the worker sends it, in its own session
        return dispatch.send_due(survey.send_at + timedelta(minutes=1)).surveys

    assert run_together(app, worker, count=1) == [1]
    with pytest.raises(services.SurveyError, match="has just been sent"):
        services.prepare_to_send_now(read, by=acting_staff())
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Survey, survey.id)
    assert stored.status == SurveyStatus.sent
    assert stored.sent_at == survey.send_at + timedelta(minutes=1)
    assert len(outbox_keys("survey-invite")) == 1


def test_the_recipients_page_of_an_anonymous_survey_says_who_answered_but_not_when(
    organiser_client, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    for name in ("Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus"):
        book(event, f"{name.lower()}@example.com", name=name)
    survey = sent_survey(event)  # anonymous, as new surveys are
    # Five answers: from five, an anonymous survey's recipients page says who answered.
    answered_at = {"ann@example.com": utcnow() + timedelta(hours=3, minutes=17),
                   "cat@example.com": utcnow() + timedelta(hours=1, minutes=41),
                   "dan@example.com": utcnow() + timedelta(hours=2, minutes=3),
                   "eve@example.com": utcnow() + timedelta(hours=4, minutes=29),
                   "fay@example.com": utcnow() + timedelta(hours=5, minutes=53)}  # fmt: skip
    for email, moment in answered_at.items():
        invitation_of(survey, email).responded_at = moment
    db.session.commit()
    path = f"/staff/surveys/{survey.id}/recipients"

    for show in ("all", "answered"):
        page = organiser_client.get(path, query_string={"show": show})
        rows = re.findall(r"<tr>\s*<td[^>]*>([^<]+)</td>.*?</tr>", page.text, re.S)
        everyone = ["Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus"]
        answered = ["Ann", "Cat", "Dan", "Eve", "Fay"]
        assert rows == (everyone if show == "all" else answered)  # by name
        for moment in answered_at.values():
            assert f"{event.local(moment):%H:%M}" not in page.text
        assert page.text.count(">yes</td>") == 5

    survey.anonymous = False  # a named survey may show when
    db.session.commit()
    page = organiser_client.get(path)
    for moment in answered_at.values():
        assert f"{event.local(moment):%-d %b %H:%M}" in page.text
