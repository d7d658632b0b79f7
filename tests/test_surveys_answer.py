"""Answering `/s/<token>`: no login, every rule checked before anything is stored, one response
per invitation (editable until the survey closes), and a wrong token is a plain 404."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from chamber.core.times import utcnow
from chamber.events.models import AgendaItem
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.resources.models import AgendaItemResource, Resource, ResourceStatus
from chamber.surveys import dispatch, responses, services, template
from chamber.surveys.models import Answer, Invitation, QuestionKind, Response, Survey
from tests.factories import acting_staff
from tests.support import count_queries, csrf_token
from tests.surveys_support import (
    attach_pack,
    book,
    finished_seminar,
    invitation_of,
    sent_survey,
    token_for,
)


@pytest.fixture
def answering(app, make_event, make_item):
    """A sent template survey (with an agenda rating added) and one respondent's link."""
    event = finished_seminar(make_event, make_item)
    book(
        event,
        "ann@alpha.example",
        name="Ann",
        business="Alpha Ltd",
        size_band=SizeBand.medium,
        sector="Retail",
        member=True,
    )
    survey = services.create_survey(event, by=acting_staff())
    services.add_question(
        survey,
        services.QuestionDetails(QuestionKind.agenda_rating, "Rate each session"),
        by=acting_staff(),
    )
    services.prepare_to_send_now(survey, by=acting_staff())
    dispatch.send_survey(survey)
    db.session.commit()
    invitation = invitation_of(survey, "ann@alpha.example")
    return survey, invitation, token_for(invitation)


def names(survey: Survey) -> dict[str, str]:
    """Field names by question kind (and agenda items as agenda:<title>)."""
    fields = {}
    for question in db.session.get(Survey, survey.id).questions:
        fields[question.kind.value] = f"q{question.id}"
        if question.kind == QuestionKind.agenda_rating:
            for item in template.rated_agenda_items(survey.event_id):
                fields[f"agenda:{item.title}"] = f"q{question.id}-{item.id}"
    return fields


def full_answers(survey: Survey, **changes) -> dict:
    f = names(survey)
    data = {
        f["rating"]: "4",
        f["single_choice"]: "Phishing and passwords",
        f["nps"]: "10",
        f["yes_no"]: "Prefer not to say",
        f["multiple_choice"]: ["Cyber Essentials certification", "Staff awareness training"],
        f["free_text"]: "More on backups, please.",
        f["agenda:Phishing and passwords"]: "5",
        f["agenda:Ransomware: a case study"]: "3",
    }
    for kind, value in changes.items():
        data[f.get(kind, kind)] = value
    return {k: v for k, v in data.items() if v is not None}


def answer(client, token: str, data: dict):
    return client.post(
        f"/s/{token}", data={"csrf_token": csrf_token(client, f"/s/{token}"), **data}
    )


def stored() -> tuple[int, int]:
    return (
        db.session.scalar(db.select(db.func.count(Response.id))),
        db.session.scalar(db.select(db.func.count(Answer.id))),
    )


# --- answering -----------------------------------------------------------------------------------


def test_a_respondent_answers_every_kind_of_question_and_is_thanked(client, answering):
    survey, invitation, token = answering
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "same-origin"  # the token never leaves this site
    assert page.headers["Cache-Control"] == "no-store"
    assert "Coffee" not in page.text  # breaks are not rated

    response = answer(client, token, full_answers(survey))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/s/{token}/thanks"
    thanks = client.get(response.headers["Location"])
    assert "Thank you" in thanks.text
    assert f'href="/events/{survey.event.slug}/resources"' in thanks.text

    saved = db.session.scalars(db.select(Response)).one()
    assert (saved.size_band, saved.sector, saved.is_member) == (SizeBand.medium, "Retail", True)
    assert db.session.get(type(invitation), invitation.id).responded_at is not None
    rows = db.session.execute(
        db.select(Answer.number, Answer.choice, Answer.text, Answer.agenda_item_id)
    ).all()
    assert sorted((n, c, t, a is not None) for n, c, t, a in rows if n is not None) == [
        (3, None, None, True),
        (4, None, None, False),
        (5, None, None, True),
        (10, None, None, False),
    ]
    assert sorted(c for _, c, _, _ in rows if c) == [
        "Cyber Essentials certification",
        "Phishing and passwords",
        "Prefer not to say",
        "Staff awareness training",
    ]
    assert [t for _, _, t, _ in rows if t] == ["More on backups, please."]


def test_a_second_visit_shows_the_answers_and_saving_again_replaces_them(client, answering):
    survey, invitation, token = answering
    answer(client, token, full_answers(survey))
    first_saved = db.session.scalars(db.select(Response)).one().submitted_at

    again = client.get(f"/s/{token}")
    assert "You answered on" in again.text and "Save my changes" in again.text
    assert "More on backups, please." in again.text
    assert 'value="Prefer not to say" checked' in again.text

    reminder_token = token_for(invitation)  # the reminder's link: another token, same invitation
    changed = answer(client, reminder_token, full_answers(survey, free_text="", rating="2"))
    assert changed.status_code == 303
    responses = db.session.scalars(db.select(Response)).all()
    assert len(responses) == 1 and responses[0].submitted_at == first_saved
    assert db.session.scalars(db.select(Answer.text).where(Answer.text.is_not(None))).all() == []
    assert 2 in db.session.scalars(db.select(Answer.number)).all()


def test_markup_is_stored_as_text_and_shown_escaped(client, answering):
    survey, _, token = answering
    markup = '<script>alert("x")</script><b>bold</b>'
    answer(client, token, full_answers(survey, free_text=markup))
    assert db.session.scalars(db.select(Answer.text).where(Answer.text.is_not(None))).one() == (
        markup
    )
    page = client.get(f"/s/{token}")
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text


# --- refusals ------------------------------------------------------------------------------------


def test_missing_required_answers_come_back_with_messages_tied_to_their_fields(client, answering):
    survey, _, token = answering
    f = names(survey)
    response = answer(client, token, full_answers(survey, rating=None, nps=None))
    assert response.status_code == 400
    text = response.text
    assert "There is a problem" in text
    assert f'href="#{f["rating"]}"' in text and f'href="#{f["nps"]}"' in text
    assert "Select an answer to “Overall, how would you rate the seminar?”" in text
    assert f'aria-describedby="{f["rating"]}-hint {f["rating"]}-error"' in text
    assert f'id="{f["rating"]}-error"' in text
    assert "More on backups, please." in text  # what was typed is kept
    assert 'value="Prefer not to say" checked' in text
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("rating", "6", "Choose a number from 1 to 5"),
        ("rating", "0", "Choose a number from 1 to 5"),
        ("rating", "-1", "Choose a number from 1 to 5"),
        ("rating", "3.5", "Choose a number from 1 to 5"),
        ("rating", "٣", "Choose a number from 1 to 5"),  # an Arabic-Indic three
        ("nps", "11", "Choose a number from 0 to 10"),
        ("nps", "1" * 5000, "Choose a number from 0 to 10"),
        ("agenda:Phishing and passwords", "9", "Choose a number from 1 to 5"),
        ("single_choice", "Coffee", "Choose one of the options listed"),
        ("yes_no", "Maybe", "Choose one of the options listed"),
        ("multiple_choice", ["Staff awareness training", "Bitcoin"], "Choose only from"),
        ("free_text", "x" * 2001, "must be 2,000 characters or fewer (it has 2,001)"),
        ("free_text", "null\x00byte", "contains a character that is not allowed"),
        ("free_text", "escape\x1b[31m", "contains a character that is not allowed"),
    ],
)
def test_bad_answers_are_refused_with_a_reason_and_nothing_is_stored(
    client, answering, kind, value, message
):
    survey, invitation, token = answering
    response = answer(client, token, full_answers(survey, **{kind: value}))
    assert response.status_code == 400
    assert message in response.text
    assert stored() == (0, 0)
    assert db.session.get(type(invitation), invitation.id).responded_at is None


def test_exactly_two_thousand_characters_is_fine(client, answering):
    survey, _, token = answering
    assert answer(client, token, full_answers(survey, free_text="y" * 2000)).status_code == 303


def test_a_required_agenda_rating_needs_every_session(client, answering):
    survey, _, token = answering
    question = [q for q in survey.questions if q.kind == QuestionKind.agenda_rating][0]
    question.required = True
    db.session.commit()
    response = answer(
        client, token, full_answers(survey, **{"agenda:Ransomware: a case study": None})
    )
    assert response.status_code == 400
    assert "Rate “Ransomware: a case study” from 1 to 5." in response.text
    assert stored() == (0, 0)


def test_answers_to_another_surveys_questions_are_ignored(client, answering, make_event, make_item):
    survey, _, token = answering
    other_event = finished_seminar(make_event, make_item)
    book(other_event, "zed@zeta.example")
    other = sent_survey(other_event)
    other_rating = f"q{other.questions[0].id}"
    answer(client, token, {**full_answers(survey), other_rating: "1"})
    assert db.session.scalar(db.select(db.func.count(Response.id))) == 1
    assert db.session.scalars(db.select(Response.survey_id)).one() == survey.id
    assert 1 not in db.session.scalars(db.select(Answer.number)).all()


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(client, answering):
    survey, _, token = answering
    client.get(f"/s/{token}")
    response = client.post(f"/s/{token}", data=full_answers(survey))
    assert response.status_code == 400
    assert "The form could not be sent" in response.text
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-real-token-at-all-0000000000000000000",
        "a" * 43,
        "x" * 500,
        "%00",
        "ünïcödé",
        "..%2F..%2Fetc",
    ],
)
def test_a_forged_token_is_a_plain_404(client, answering, token):
    for path in (f"/s/{token}", f"/s/{token}/thanks"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Page not found" in response.text
    assert client.post(f"/s/{token}", data={}).status_code in (400, 404)
    assert stored() == (0, 0)


def test_a_tampered_token_is_a_plain_404(client, answering):
    _, _, token = answering
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(f"/s/{tampered}").status_code == 404
    assert client.get(f"/s/{token.upper()}").status_code == 404


def test_each_token_opens_only_its_own_survey(client, answering, make_event, make_item):
    survey, _, token = answering
    other_event = finished_seminar(make_event, make_item, title="Another seminar")
    zed = book(other_event, "zed@zeta.example")
    other = sent_survey(other_event)
    other_token = token_for(invitation_of(other, zed.email_normalised))
    assert other.title in client.get(f"/s/{other_token}").text
    assert other.title not in client.get(f"/s/{token}").text


@pytest.mark.parametrize(
    ("pack", "offered"),
    [
        ("none", False),
        ("draft only", False),
        ("retired only", False),
        ("event-wide", True),
        ("beside a talk", True),
    ],
)
def test_the_thanks_page_offers_the_resource_pack_only_when_it_has_something_published(
    client, make_event, make_item, pack, offered
):
    event = finished_seminar(make_event, make_item, pack=False)
    if pack in ("draft only", "retired only", "event-wide"):
        status = {
            "draft only": ResourceStatus.draft,
            "retired only": ResourceStatus.retired,
            "event-wide": ResourceStatus.published,
        }[pack]
        attach_pack(event, ["Small Business Guide"], status=status)
    elif pack == "beside a talk":
        talk = db.session.scalars(
            db.select(AgendaItem).where(AgendaItem.title == "Phishing and passwords")
        ).one()
        guide = Resource(slug="guide", title="Phishing guide", status=ResourceStatus.published)
        db.session.add(guide)
        db.session.flush()
        db.session.add(AgendaItemResource(agenda_item_id=talk.id, resource_id=guide.id))
        db.session.commit()
    book(event, "ann@alpha.example")
    survey = sent_survey(event)
    token = token_for(invitation_of(survey, "ann@alpha.example"))
    f = names(survey)
    answer(client, token, {f["rating"]: "4", f["nps"]: "9"})

    with count_queries() as statements:
        thanks = client.get(f"/s/{token}/thanks")
    assert "Thank you" in thanks.text
    assert ("Open the resource pack" in thanks.text) is offered
    assert (f'href="/events/{event.slug}/resources"' in thanks.text) is offered
    assert sum("resource" in statement for statement in statements) == 1


def test_the_thanks_page_before_answering_goes_back_to_the_survey(client, answering):
    _, _, token = answering
    response = client.get(f"/s/{token}/thanks")
    assert response.status_code == 302 and response.headers["Location"] == f"/s/{token}"


def test_a_closed_survey_says_so_and_takes_no_answers(client, answering):
    survey, _, token = answering
    form_token = csrf_token(client, f"/s/{token}")
    survey.closes_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and "This survey has closed" in page.text
    assert '<form class="survey-form"' not in page.text
    response = client.post(f"/s/{token}", data={"csrf_token": form_token, **full_answers(survey)})
    assert "This survey has closed" in response.text
    assert stored() == (0, 0)


def test_the_survey_page_works_for_anonymous_visitors_without_a_login(client, answering):
    survey, _, token = answering
    page = client.get(f"/s/{token}")
    assert "Log out" not in page.text
    assert page.text.count("<fieldset") >= 6
    assert '<meta name="robots" content="noindex">' in page.text


# --- two saves at once ---------------------------------------------------------------------------


def others_wait_for_a_lock(deadline: float = 10.0) -> bool:
    """Whether another PostgreSQL session is waiting for a row lock (polled, with a deadline)."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        with db.engine.connect() as connection:
            waiting = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            )
        if waiting:
            return True
        time.sleep(0.01)
    return False


def test_two_saves_of_one_response_at_once_leave_one_set_of_answers(app, answering):
    """The second save reads the answers the first left (after the first commits), never a stale
    set it would fail to delete, leaving both sets behind."""
    survey, invitation, _ = answering
    (question,) = [q for q in survey.questions if q.kind == QuestionKind.free_text]
    responses.save_response(invitation, [responses.AnswerValue(question.id, text="First")])
    db.session.commit()
    postgresql = db.engine.dialect.name == "postgresql"
    a_saved, b_read, a_committed = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        mine = db.session.get(Invitation, invitation.id)
        responses.save_response(mine, [responses.AnswerValue(question.id, text="From A")])
        a_saved.set()
        assert b_read.wait(30)
        if postgresql:  # B is now queued behind A's locks: let it go by committing
            assert others_wait_for_a_lock()
        db.session.commit()
        a_committed.set()

    def second() -> None:
        assert a_saved.wait(30)
        mine = db.session.get(Invitation, invitation.id)
        shown = responses.response_for(mine)  # as the page holds it while saving
        assert [a.text for a in shown.answers] == ["First"]  # A's answers are not committed yet
        b_read.set()
        if not postgresql:  # SQLite has one writer at a time: B writes once A has committed
            assert a_committed.wait(30)
        responses.save_response(mine, [responses.AnswerValue(question.id, text="From B")])
        db.session.commit()

    def run(work) -> None:
        with app.app_context():
            try:
                work()
            except BaseException as error:  # reported in the test's thread
                errors.append(error)
                for step in (a_saved, b_read, a_committed):  # let the other thread finish
                    step.set()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(work,)) for work in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    assert db.session.scalars(db.select(Answer.text).where(Answer.text.is_not(None))).all() == [
        "From B"
    ]
    assert stored() == (1, 1)
