"""Anonymous surveys stay anonymous with small numbers (docs/survey-results.md, "Small anonymous
surveys"): with fewer than five responses an anonymous survey shows counts only (no answers, free
text, breakdowns or days), its CSV has no rows, and neither its recipients page, a contact's page
nor a person's data says who answered. At five, everything shows. Named surveys are not touched."""

from __future__ import annotations

import csv
import io
import re

import pytest

from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.surveys import results as survey_results
from chamber.surveys.models import Invitation, QuestionKind
from chamber.surveys.results_export import responses_csv
from tests.support import post_form
from tests.test_survey_results import make_survey, page_text, respond

FREE_TEXT = "Our payroll was hacked by a former employee"


def small_survey(make_event, responses: int, *, anonymous: bool = True):
    survey = make_survey(
        make_event(),
        anonymous=anonymous,
        questions=[
            (QuestionKind.single_choice, "Has your business had a breach?", ["Yes", "No"]),
            (QuestionKind.rating, "How was the seminar?"),
            (QuestionKind.free_text, "Anything else?"),
        ],
    )
    breach, rating, text = survey.questions
    for n in range(responses):
        band = SizeBand.large if n == 0 else SizeBand.micro
        respond(survey, {breach: "Yes" if n == 0 else "No", rating: 5 - n % 5,
                         text: FREE_TEXT if n == 0 else f"Idea {n}"}, band=band)  # fmt: skip
    db.session.commit()
    return survey


def results_page(client, survey, **query) -> str:
    response = client.get(f"/staff/surveys/{survey.id}/results", query_string=query)
    assert response.status_code == 200
    return response.text


def test_four_responses_show_counts_only_and_say_the_rule(organiser_client, make_event):
    survey = small_survey(make_event, 4)
    html = results_page(organiser_client, survey)
    text = page_text(organiser_client.get(f"/staff/surveys/{survey.id}/results"))
    assert re.search(r"<dt>Responded</dt><dd>4</dd>", html)
    assert "Only counts for now." in text and "4 people have answered" in text
    assert "Everything appears once 5 people have answered" in text
    assert FREE_TEXT not in html and "Idea 1" not in html  # no free text
    assert "Responses over time" not in text  # a day could be matched to a person
    assert "mean rating" not in text and "%)" not in text  # no figures
    assert "Download responses (CSV)" not in text
    assert "Break the answers down by" not in text
    for question in survey.questions:  # every question still listed, with the reason
        assert question.text in text
    assert text.count("Its answers are shown once 5 people have answered the survey.") == 3


@pytest.mark.parametrize("breakdown", ["size", "sme", "sector", "member"])
def test_four_responses_show_no_breakdown_even_when_asked(organiser_client, make_event, breakdown):
    survey = small_survey(make_event, 4)
    results = survey_results.survey_results(survey, breakdown=breakdown)
    assert results.withheld and results.breakdown is None
    assert all(q.breakdown is None for q in results.questions)
    text = page_text(organiser_client.get(
        f"/staff/surveys/{survey.id}/results", query_string={"breakdown": breakdown}
    ))  # fmt: skip
    assert "Large" not in text and "Micro" not in text


def test_four_responses_show_no_free_text_even_for_one_question(organiser_client, make_event):
    survey = small_survey(make_event, 4)
    question = survey.questions[-1]
    html = results_page(organiser_client, survey, question=question.id)
    assert FREE_TEXT not in html and "Idea" not in html


def test_five_responses_show_everything(organiser_client, make_event):
    survey = small_survey(make_event, 5)
    html = results_page(organiser_client, survey)
    text = page_text(organiser_client.get(f"/staff/surveys/{survey.id}/results"))
    assert "Only counts for now." not in text
    assert FREE_TEXT in html and "Download responses (CSV)" in text
    assert "1 (20%)" in text and "3.0 mean rating" in text  # the questions' figures
    assert not survey_results.survey_results(survey).withheld
    breakdown = survey_results.survey_results(survey, breakdown="size").breakdown
    assert breakdown is not None and not breakdown.hidden


def test_a_named_survey_with_one_response_shows_its_answers(organiser_client, make_event):
    survey = small_survey(make_event, 1, anonymous=False)
    html = results_page(organiser_client, survey)
    assert FREE_TEXT in html and "Only counts for now." not in html


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_the_csv_is_consistent_with_the_rule(organiser_client, make_event):
    four = small_survey(make_event, 4)
    response = organiser_client.get(f"/staff/surveys/{four.id}/results.csv")
    assert response.status_code == 302  # back to the results, with the reason
    assert response.headers["Location"].endswith(f"/staff/surveys/{four.id}/results")
    page = organiser_client.get(response.headers["Location"]).text
    assert "cannot be downloaded yet" in page
    rows = list(csv.reader(io.StringIO(responses_csv(four).decode("utf-8-sig"))))
    assert len(rows) == 1 and "Business size" in rows[0]  # the headings, no answers

    five = small_survey(make_event, 5)
    rows = read_csv(organiser_client.get(f"/staff/surveys/{five.id}/results.csv"))
    assert len(rows) == 6 and any(FREE_TEXT in cell for row in rows for cell in row)


# --- who answered ---------------------------------------------------------------------------------


def recipients(client, survey, show: str = "all") -> str:
    response = client.get(f"/staff/surveys/{survey.id}/recipients", query_string={"show": show})
    assert response.status_code == 200
    return response.text


def test_the_recipients_page_says_who_answered_only_from_five(organiser_client, make_event):
    four = small_survey(make_event, 4)
    for show in ("all", "answered", "waiting"):
        page = recipients(organiser_client, four, show)
        assert "does not say who answered until 5 people have" in page
        assert ">yes</td>" not in page and "not yet" not in page
        assert '<th scope="col">Answered</th>' not in page
        assert "show=answered" not in page and "show=waiting" not in page
        assert page.count("<tr>") == 1 + 4  # everyone is listed, "answered" or not
    assert re.search(r"<strong>4</strong> answered", page)  # the count is fine

    five = small_survey(make_event, 5)
    page = recipients(organiser_client, five, "answered")
    assert "does not say who answered" not in page and page.count(">yes</td>") == 5


def test_a_persons_data_does_not_say_whether_they_answered_a_small_anonymous_survey(
    admin_client, make_event
):
    survey = small_survey(make_event, 4)
    email = db.session.scalars(
        db.select(Invitation.email).where(Invitation.survey_id == survey.id)
    ).first()
    page = post_form(admin_client, "/staff/privacy/people", {"email": email}).text
    assert "fewer than 5 responses" in page
    assert FREE_TEXT not in page  # answers to an anonymous survey are never linked to anyone
