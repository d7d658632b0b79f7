"""The demo's follow-up survey as a newcomer meets it: every question offers its answers, and the
results keep the privacy its breach question implies (anonymous: no names, no group under five),
while the SME and large-business breakdown still gives the article's 74% and 93%."""

from __future__ import annotations

import re

import pytest

from chamber.demo import load_demo
from chamber.extensions import db
from chamber.registration.models import Delegate
from chamber.surveys import results as survey_results
from chamber.surveys.figures import MIN_GROUP, OTHER_GROUP
from chamber.surveys.models import QuestionKind, Response, Survey
from tests.test_survey_results import page_text, read_csv

# Each test loads the whole demo (seconds).
pytestmark = pytest.mark.slow


def demo_survey(app) -> Survey:
    load_demo(app)
    db.session.commit()
    return db.session.scalars(db.select(Survey)).one()


def test_the_demo_breach_question_offers_yes_no_and_prefer_not_to_say(app, organiser_client):
    survey = demo_survey(app)
    (breach,) = [q for q in survey.questions if q.kind == QuestionKind.yes_no]
    assert breach.choices.splitlines() == ["Yes", "No", "Prefer not to say"]
    assert "never for one business" not in breach.help_text

    preview = organiser_client.get(f"/staff/surveys/{survey.id}/preview").text
    block = preview.split(breach.text)[1].split("</fieldset>")[0]
    assert re.findall(r'type="radio"[^>]*value="([^"]+)"', block) == [
        "Yes", "No", "Prefer not to say",
    ]  # fmt: skip
    shown = organiser_client.get(f"/staff/surveys/{survey.id}").text
    listed = shown.split(breach.text)[1].split("</li>\n")[0]
    assert all(f"<li>{option}</li>" in listed for option in ("Yes", "No", "Prefer not to say"))


def test_the_demo_survey_is_anonymous_and_still_gives_the_articles_figures(app, organiser_client):
    survey = demo_survey(app)
    assert survey.anonymous
    shown = page_text(organiser_client.get(f"/staff/surveys/{survey.id}"))
    assert "Anonymous: no names or email addresses in the results or the CSV" in shown

    sme = page_text(organiser_client.get(f"/staff/surveys/{survey.id}/results?breakdown=sme"))
    assert re.search(r"SMEs \(under 250 employees\) 27 74%", sme)
    assert re.search(r"Large businesses \(250\+\) 14 93%", sme)


def test_no_demo_breakdown_shows_a_group_of_fewer_than_five(app, organiser_client):
    survey = demo_survey(app)
    for dimension in ("size", "sme", "sector", "member"):
        results = survey_results.survey_results(survey, breakdown=dimension)
        sizes = [(group.label, group.respondents) for group in results.breakdown.groups]
        assert all(count >= MIN_GROUP for _, count in sizes), (dimension, sizes)
    sector = page_text(organiser_client.get(f"/staff/surveys/{survey.id}/results?breakdown=sector"))
    assert f"counted together as “{OTHER_GROUP}”" in sector


def test_the_demo_csv_has_no_names_or_emails(app, organiser_client):
    survey = demo_survey(app)
    rows = read_csv(organiser_client.get(f"/staff/surveys/{survey.id}/results.csv"))
    assert rows[0][:3] == ["Business size", "Sector", "Chamber member"]
    assert "Name" not in rows[0] and "Email" not in rows[0]
    respondents = db.session.scalar(db.select(db.func.count(Response.id)))
    assert len(rows) == respondents + 1
    text = "\n".join(",".join(row) for row in rows)
    for name, email in db.session.execute(db.select(Delegate.name, Delegate.email_normalised)):
        assert name not in text and email not in text
    breach = rows[0].index(next(h for h in rows[0] if "cyber breach" in h))
    assert {row[breach] for row in rows[1:]} <= {"Yes", "No", "Prefer not to say", ""}
