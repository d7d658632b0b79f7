"""Survey results: exact figures for hand-built responses, breakdowns and the anonymity rule,
responses per local day, the CSV export, a flat query count, and who may see them."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from chamber.events.models import AgendaKind
from chamber.extensions import db
from chamber.members.models import Contact, Organisation, SizeBand
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.surveys import results as survey_results
from chamber.surveys.figures import NetPromoter
from chamber.surveys.models import (
    Answer,
    Invitation,
    Question,
    QuestionKind,
    Response,
    Survey,
    SurveyStatus,
)
from tests.support import count_queries

SENT = datetime(2026, 6, 11, 9, 0, tzinfo=UTC)
_numbers = itertools.count(1)


# --- building surveys and responses directly (the answering pages are another module's) -----------


def make_survey(event, *, anonymous: bool = False, questions: list[tuple] = ()) -> Survey:
    survey = Survey(
        event=event,
        title="How was the seminar?",
        status=SurveyStatus.sent,
        sent_at=SENT,
        anonymous=anonymous,
    )
    for position, (kind, text, *choices) in enumerate(questions):
        survey.questions.append(
            Question(
                kind=kind,
                text=text,
                position=position,
                choices="\n".join(choices[0]) if choices else "",
            )
        )
    db.session.add(survey)
    db.session.commit()
    return survey


def invite(survey: Survey, *, name: str | None = None, band=SizeBand.small, sector="Technology",
           member=False, reminded: bool = False) -> Invitation:  # fmt: skip
    n = next(_numbers)
    organisation = Organisation(
        name=f"Business {n}",
        name_normalised=f"business {n}",
        size_band=band,
        sector=sector,
        is_member=member,
    )
    email = f"person{n}@example.com"
    contact = Contact(organisation=organisation, name=name or f"Person {n}", email=email)
    booking = Booking(event_id=survey.event_id, organisation=organisation, booker=contact)
    delegate = Delegate(
        booking=booking,
        event_id=survey.event_id,
        contact=contact,
        name=contact.name,
        email_normalised=email,
        status=DelegateStatus.confirmed,
    )
    invitation = Invitation(
        survey=survey,
        delegate=delegate,
        email=email,
        invited_at=SENT,
        reminded_at=SENT + timedelta(days=4) if reminded else None,
    )
    db.session.add_all([organisation, contact, booking, delegate, invitation])
    return invitation


def respond(survey: Survey, answers: dict[Question, object], *, at: datetime | None = None,
            band=SizeBand.small, sector="Technology", member=False, name=None) -> Response:  # fmt: skip
    """One respondent: rating/NPS an int, choices a str (or a list for multiple choice), free
    text a str, agenda ratings a {item_id: int}."""
    invitation = invite(survey, name=name, band=band, sector=sector, member=member)
    moment = at or SENT + timedelta(hours=2)
    invitation.responded_at = moment
    db.session.flush()  # the invitation's id
    response = Response(
        survey_id=survey.id,
        invitation_id=invitation.id,
        submitted_at=moment,
        size_band=band,
        sector=sector,
        is_member=member,
    )
    db.session.add(response)
    for question, value in answers.items():
        if value is None:
            continue
        if question.kind is QuestionKind.agenda_rating:
            for item_id, number in value.items():
                response.answers.append(
                    Answer(question_id=question.id, agenda_item_id=item_id, number=number)
                )
        elif question.kind in (QuestionKind.rating, QuestionKind.nps):
            response.answers.append(Answer(question_id=question.id, number=value))
        elif question.kind is QuestionKind.free_text:
            response.answers.append(Answer(question_id=question.id, text=value))
        else:
            for choice in value if isinstance(value, list) else [value]:
                response.answers.append(Answer(question_id=question.id, choice=choice))
    return response


SESSIONS = ["What one tweet gives away", "Malware from websites you trust", "Cyber insurance"]
RESOURCES = ["Cyber Essentials", "Small Business Guide", "Action Fraud"]


def seminar_survey(event, **kwargs) -> tuple[Survey, dict[str, Question]]:
    survey = make_survey(
        event,
        questions=[
            (QuestionKind.rating, "Overall, how would you rate the seminar?"),
            (QuestionKind.single_choice, "Which session was most useful?", SESSIONS),
            (QuestionKind.nps, "How likely are you to recommend it?"),
            (QuestionKind.yes_no, "Did your business have a cyber breach in the last 12 months?"),
            (QuestionKind.multiple_choice, "Which resources will you use?", RESOURCES),
            (QuestionKind.free_text, "What should we cover next time?"),
        ],
        **kwargs,
    )
    names = ["rating", "session", "nps", "breach", "resources", "next"]
    return survey, dict(zip(names, survey.questions, strict=True))


def shares(result) -> dict[str, tuple[int, int]]:
    return {share.label: (share.count, share.percent) for share in result.shares}


def page_text(response) -> str:
    """The page's text without tags, with runs of white space made single spaces."""
    text = re.sub(r"<[^>]+>", " ", response.text)
    return " ".join(text.replace("&#39;", "'").replace("&amp;", "&").split())


# --- the figures ---------------------------------------------------------------------------------


NPS_SCORES = [10, 10, 9, 9, 9, 8, 7, 7, 6, 0]  # 5 promoters, 3 passives, 2 detractors: NPS 30
RATINGS = [5, 5, 4, 4, 4, 3, 5, 4, None, 2]  # one skipped: mean of nine is 36 / 9 = 4.0
PICKED = [SESSIONS[0]] * 6 + [SESSIONS[1]] * 4  # nobody picked the third session
BREACHES = ["Yes"] * 6 + ["No"] * 3 + ["Prefer not to say"]
USING = [[RESOURCES[0], RESOURCES[1]]] * 4 + [[RESOURCES[0]]] * 3 + [[]] * 3


def ten_responses(survey, q) -> None:
    for n in range(10):
        respond(
            survey,
            {
                q["rating"]: RATINGS[n],
                q["session"]: PICKED[n],
                q["nps"]: NPS_SCORES[n],
                q["breach"]: BREACHES[n],
                q["resources"]: USING[n] or None,
                q["next"]: f"More on phishing, please ({n})" if n < 3 else None,
            },
        )
    for n in range(6):  # six invited who never answered, four of them reminded
        invite(survey, reminded=n < 4)
    db.session.commit()


def test_counts_percentages_mean_and_net_promoter_score_are_exact(app, make_event):
    survey, q = seminar_survey(make_event())
    ten_responses(survey, q)

    results = survey_results.survey_results(survey)

    assert (results.invited, results.responded, results.reminded) == (16, 10, 4)
    assert results.response_rate == 63  # 62.5% rounds half up
    rating, session, nps, breach, resources, following = results.questions
    assert rating.answered == 9 and rating.mean == pytest.approx(4.0)
    assert shares(rating) == {"1": (0, 0), "2": (1, 11), "3": (1, 11), "4": (4, 44), "5": (3, 33)}
    assert shares(session) == {SESSIONS[0]: (6, 60), SESSIONS[1]: (4, 40), SESSIONS[2]: (0, 0)}
    score = nps.nps
    assert (score.promoters, score.passives, score.detractors, score.score) == (5, 3, 2, 30)
    assert [s.count for s in nps.shares] == [1, 0, 0, 0, 0, 0, 1, 2, 1, 3, 2]  # 0 to 10
    assert shares(breach) == {"Yes": (6, 60), "No": (3, 30), "Prefer not to say": (1, 10)}
    # Multiple choice: percentages of the seven who answered; they add up to more than 100.
    assert resources.answered == 7
    assert shares(resources) == {
        RESOURCES[0]: (7, 100),
        RESOURCES[1]: (4, 57),
        RESOURCES[2]: (0, 0),
    }
    assert following.answered == 3
    assert sorted(a.text for a in following.texts) == [
        f"More on phishing, please ({n})" for n in range(3)
    ]


@pytest.mark.parametrize(
    ("promoters", "passives", "detractors", "label"),
    [(5, 3, 2, "+30"), (1, 2, 1, "0"), (1, 6, 2, "−11"), (1, 0, 7, "−75"), (0, 0, 0, "–")],
)
def test_the_net_promoter_score_is_quoted_as_a_signed_whole_number(
    promoters, passives, detractors, label
):
    assert NetPromoter(promoters, passives, detractors).label == label


def test_the_results_page_writes_the_numbers_on_the_bars(app, organiser_client, make_event):
    survey, q = seminar_survey(make_event())
    ten_responses(survey, q)

    response = organiser_client.get(f"/staff/surveys/{survey.id}/results")

    assert response.status_code == 200
    text = page_text(response)
    assert "Invited 16 Responded 10 Response rate 63% Reminded 4" in text
    assert "4.0 mean rating out of 5" in text
    assert "+30 Net Promoter Score: 5 promoters, 3 passives, 2 detractors" in text
    assert "Yes 6 (60%)" in text and "Prefer not to say 1 (10%)" in text
    assert f"{SESSIONS[2]} 0 (0%)" in text  # every option, including those nobody picked
    assert "More on phishing, please (2)" in text
    assert 'class="bar-fill w-60"' in response.text
    assert "style=" not in response.text  # the CSP forbids inline styles
    assert "Responses over time" in text


def test_a_survey_without_responses_shows_zeros_not_errors(organiser_client, make_event):
    survey, _ = seminar_survey(make_event())
    response = organiser_client.get(f"/staff/surveys/{survey.id}/results")
    assert response.status_code == 200
    text = page_text(response)
    assert "Invited 0 Responded 0 Response rate – Reminded 0" in text
    assert "No answers yet." in text


def test_agenda_items_are_rated_one_by_one(app, make_event, make_item):
    event = make_event()
    talk = make_item(event, minutes_in=0, title="What one tweet gives away")
    make_item(event, minutes_in=30, title="Coffee", kind=AgendaKind.break_)
    panel = make_item(event, minutes_in=60, title="Panel", kind=AgendaKind.panel)
    survey = make_survey(event, questions=[(QuestionKind.agenda_rating, "Rate each talk")])
    (question,) = survey.questions
    for talk_score, panel_score in [(5, 3), (4, None), (3, 2)]:
        ratings = {talk.id: talk_score} | ({panel.id: panel_score} if panel_score else {})
        respond(survey, {question: ratings})
    db.session.commit()

    (result,) = survey_results.survey_results(survey).questions

    rows = {
        item.title: (item.distribution.answered, item.distribution.mean) for item in result.items
    }
    assert rows == {"What one tweet gives away": (3, 4.0), "Panel": (2, 2.5)}  # no coffee break


# --- breakdowns ----------------------------------------------------------------------------------


def breach_survey(event, *, anonymous=False):
    survey = make_survey(
        event,
        anonymous=anonymous,
        questions=[
            (QuestionKind.yes_no, "Breach in the last 12 months?"),
            (QuestionKind.rating, "Overall rating"),
            (QuestionKind.nps, "Recommend?"),
        ],
    )
    return survey, survey.questions


def test_breakdown_by_smes_and_large_businesses_gives_the_headline_in_one_click(
    app, organiser_client, make_event
):
    survey, (breach, rating, nps) = breach_survey(make_event())
    people = (
        [(SizeBand.micro, "Yes")] * 2 + [(SizeBand.micro, "No")]
        + [(SizeBand.small, "Yes")] * 3 + [(SizeBand.medium, "Yes"), (SizeBand.medium, "No")]
        + [(SizeBand.large, "Yes")] * 3 + [(SizeBand.large, "Prefer not to say")]
    )  # fmt: skip
    for n, (band, said) in enumerate(people):
        respond(survey, {breach: said, rating: 3 + n % 3, nps: 10 - n}, band=band)
    db.session.commit()

    results = survey_results.survey_results(survey, breakdown="sme")
    rows = {row.label: shares(row) for row in results.questions[0].breakdown}
    assert rows == {
        "SMEs (under 250 employees)": {"Yes": (6, 75), "No": (2, 25), "Prefer not to say": (0, 0)},
        "Large businesses (250+)": {"Yes": (3, 75), "No": (0, 0), "Prefer not to say": (1, 25)},
    }
    by_size = survey_results.survey_results(survey, breakdown="size").questions[0].breakdown
    assert [(row.label, row.respondents, shares(row)["Yes"]) for row in by_size] == [
        ("Micro", 3, (2, 67)),
        ("Small", 3, (3, 100)),
        ("Medium", 2, (1, 50)),
        ("Large", 4, (3, 75)),
    ]
    # Ratings break down to a mean per group, NPS to a score per group.
    sme_rating, large_rating = results.questions[1].breakdown
    assert sme_rating.mean == pytest.approx((3 + 4 + 5 + 3 + 4 + 5 + 3 + 4) / 8)
    sme_nps, large_nps = results.questions[2].breakdown
    assert (large_nps.nps.promoters, large_nps.nps.detractors, large_nps.nps.score) == (0, 4, -100)
    # SMEs scored 10 down to 3: two promoters, two passives, four detractors.
    assert sme_nps.nps.score == pytest.approx((2 - 4) * 100 / 8)

    page = organiser_client.get(f"/staff/surveys/{survey.id}/results?breakdown=sme")
    text = page_text(page)
    assert "Breakdown: SMEs and large businesses" in text
    assert "SMEs (under 250 employees) 8 75% 6 of 8" in text
    assert "Large businesses (250+) 4 75% 3 of 4" in text
    assert 'aria-current="page">SMEs and large businesses' in page.text


def test_breakdown_by_sector_and_by_membership(app, make_event):
    survey, (breach, _, _) = breach_survey(make_event())
    for sector, member, said in [
        ("Legal", True, "Yes"), ("Legal", True, "No"), ("Health", False, "Yes"),
        ("", None, "No"), ("Legal", False, "Yes"),
    ]:  # fmt: skip
        respond(survey, {breach: said}, sector=sector, member=member)
    db.session.commit()

    sectors = survey_results.survey_results(survey, breakdown="sector").questions[0].breakdown
    assert [(row.label, shares(row)["Yes"]) for row in sectors] == [
        ("Legal", (2, 67)),
        ("Health", (1, 100)),
        ("Sector not given", (0, 0)),
    ]
    members = survey_results.survey_results(survey, breakdown="member").questions[0].breakdown
    assert [(row.label, row.answered, shares(row)["Yes"]) for row in members] == [
        ("Chamber members", 2, (1, 50)),
        ("Not members", 2, (2, 100)),
        ("Membership not known", 1, (0, 0)),
    ]


def test_anonymous_surveys_fold_groups_under_five_into_other(app, organiser_client, make_event):
    survey, (breach, _, _) = breach_survey(make_event(), anonymous=True)
    groups = [(SizeBand.micro, 6), (SizeBand.small, 5), (SizeBand.medium, 2), (SizeBand.large, 1)]
    for band, count in groups:
        for _ in range(count):
            respond(survey, {breach: "Yes"}, band=band)
    db.session.commit()

    shown = survey_results.survey_results(survey, breakdown="size")
    # Medium (2) and large (1) make an "Other" of 3, still under five, so the smallest group
    # left (small, 5) joins it: no group under five can be worked out from the totals.
    assert [(g.label, g.respondents) for g in shown.breakdown.groups] == [
        ("Micro", 6),
        ("Other (fewer than 5)", 8),
    ]
    assert [(row.label, row.answered) for row in shown.questions[0].breakdown] == [
        ("Micro", 6),
        ("Other (fewer than 5)", 8),
    ]
    text = page_text(organiser_client.get(f"/staff/surveys/{survey.id}/results?breakdown=size"))
    assert "3 groups with fewer than 5 respondents are counted together" in text
    assert "Medium" not in text.split("Breakdown: Business size")[-1]

    # The same respondents in a named survey show every group.
    survey.anonymous = False
    db.session.commit()
    named = survey_results.survey_results(survey, breakdown="size")
    assert [g.respondents for g in named.breakdown.groups] == [6, 5, 2, 1]


def test_an_anonymous_survey_with_fewer_than_five_answers_shows_no_breakdown(
    app, organiser_client, make_event
):
    survey, (breach, _, _) = breach_survey(make_event(), anonymous=True)
    for band in (SizeBand.micro, SizeBand.micro, SizeBand.large, SizeBand.large):
        respond(survey, {breach: "Yes"}, band=band)
    db.session.commit()

    results = survey_results.survey_results(survey, breakdown="sme")
    # Counts only with fewer than five (tests/test_survey_small_numbers.py has the whole rule).
    assert results.withheld and results.breakdown is None
    assert results.questions[0].breakdown is None
    text = page_text(organiser_client.get(f"/staff/surveys/{survey.id}/results?breakdown=sme"))
    assert "Only counts for now." in text and "4 people have answered" in text
    assert "Large businesses" not in text


# --- over time -----------------------------------------------------------------------------------


def test_responses_per_day_follow_the_events_zone_across_midnight(app, make_event):
    event = make_event(timezone="Europe/London")
    survey, (breach, _, _) = breach_survey(event)
    for moment in [
        datetime(2026, 6, 11, 22, 59, tzinfo=UTC),  # 23:59 BST on the 11th
        datetime(2026, 6, 11, 23, 0, tzinfo=UTC),  # 00:00 BST on the 12th
        datetime(2026, 6, 12, 22, 45, tzinfo=UTC),  # 23:45 BST on the 12th
        datetime(2026, 6, 14, 8, 0, tzinfo=UTC),  # nothing on the 13th
    ]:
        respond(survey, {breach: "No"}, at=moment)
    db.session.commit()

    days = survey_results.survey_results(survey).days
    assert [(f"{d.day:%d}", d.count, d.bar) for d in days] == [
        ("11", 1, 50),
        ("12", 2, 100),
        ("13", 0, 0),
        ("14", 1, 50),
    ]

    event.timezone = "Asia/Kolkata"  # UTC+05:30: half-hour offsets land on the right day too
    db.session.commit()
    days = survey_results.survey_results(survey).days
    assert [(f"{d.day:%d}", d.count) for d in days] == [("12", 2), ("13", 1), ("14", 1)]


def test_responses_are_counted_per_quarter_hour_in_sql_not_one_row_each(app, make_event):
    survey, (breach, _, _) = breach_survey(make_event())
    for minute in (0, 3, 7, 14):  # four answers in one quarter of an hour
        respond(survey, {breach: "No"}, at=datetime(2026, 6, 12, 9, minute, 30, tzinfo=UTC))
    db.session.commit()
    bucket = survey_results._quarter_hour_bucket(Response.submitted_at).label("bucket")
    rows = db.session.execute(
        db.select(bucket, db.func.count()).where(Response.survey_id == survey.id).group_by(bucket)
    ).all()
    assert [(int(value) * 900, count) for value, count in rows] == [
        (int(datetime(2026, 6, 12, 9, 0, tzinfo=UTC).timestamp()), 4)
    ]


# --- CSV -----------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_csv_has_a_row_per_response_and_a_column_per_question(
    app, organiser_client, make_event, make_item
):
    event = make_event()
    talk = make_item(event, minutes_in=0, title="Malware")
    panel = make_item(event, minutes_in=60, title="Insurance", kind=AgendaKind.panel)
    survey = make_survey(
        event,
        questions=[
            (QuestionKind.multiple_choice, "Which resources?", RESOURCES),
            (QuestionKind.agenda_rating, "Rate each talk"),
            (QuestionKind.free_text, "Anything else?"),
            (QuestionKind.nps, "Recommend?"),
        ],
    )
    using, talks, other, nps = survey.questions
    respond(
        survey,
        {using: [RESOURCES[2], RESOURCES[0]], talks: {talk.id: 5, panel.id: 3}, other: "Great",
         nps: 9},
        name="Amelia Patel", band=SizeBand.large, sector="Finance", member=True,
        at=datetime(2026, 6, 11, 23, 30, tzinfo=UTC),
    )  # fmt: skip
    respond(
        survey,
        {other: '=HYPERLINK("http://evil.example","click")', nps: 3},
        name="Bo",
        at=datetime(2026, 6, 12, 8, 0, tzinfo=UTC),
    )
    db.session.commit()

    rows = read_csv(organiser_client.get(f"/staff/surveys/{survey.id}/results.csv"))

    assert rows[0] == [
        "Submitted", "Name", "Email", "Business size", "Sector", "Chamber member",
        "Q1 Which resources?", "Q2 Rate each talk: Malware", "Q2 Rate each talk: Insurance",
        "Q3 Anything else?", "Q4 Recommend?",
    ]  # fmt: skip
    first, second = rows[1:]
    assert first[0] == "2026-06-12 00:30"  # in the event's zone (BST)
    assert first[1] == "Amelia Patel" and first[2].endswith("@example.com")
    assert first[3:] == [
        "Large", "Finance", "Member", "Cyber Essentials; Action Fraud", "5", "3", "Great", "9",
    ]  # fmt: skip
    assert second[9] == '\'=HYPERLINK("http://evil.example","click")'  # not a formula
    assert second[6:9] == ["", "", ""]


def test_anonymous_csv_has_no_names_times_or_rare_groups(app, organiser_client, make_event):
    survey, (breach, rating, _) = breach_survey(make_event(), anonymous=True)
    for n in range(6):
        respond(survey, {breach: "Yes", rating: 5 - n % 2}, name=f"Secret {n}", sector="Legal")
    respond(survey, {breach: "No", rating: 1}, name="Only Charity", sector="Charity")
    db.session.commit()

    response = organiser_client.get(f"/staff/surveys/{survey.id}/results.csv")
    rows = read_csv(response)

    assert rows[0] == [
        "Business size", "Sector", "Chamber member",
        "Q1 Breach in the last 12 months?", "Q2 Overall rating", "Q3 Recommend?",
    ]  # fmt: skip
    assert "Secret" not in response.text and "@example.com" not in response.text
    assert sorted(row[1] for row in rows[1:]) == ["Legal"] * 6 + ["Other (fewer than 5)"]
    assert rows[1:] == sorted(rows[1:])  # an order that says nothing about who answered first


# --- cost ----------------------------------------------------------------------------------------


def add_responses(survey, q, count: int) -> None:
    bands = list(SizeBand)
    for n in range(count):
        respond(
            survey,
            {
                q["rating"]: 1 + n % 5,
                q["session"]: SESSIONS[n % 3],
                q["nps"]: n % 11,
                q["breach"]: BREACHES[n % 10],
                q["resources"]: RESOURCES[: 1 + n % 3],
                q["next"]: f"Answer {n}",
            },
            band=bands[n % 4],
            sector=["Legal", "Health", "Retail"][n % 3],
            member=n % 2 == 0,
            at=SENT + timedelta(hours=n),
        )
    db.session.commit()


@pytest.mark.parametrize("breakdown", ["", "sme", "sector"])
def test_the_number_of_queries_does_not_grow_with_the_responses(
    app, organiser_client, make_event, breakdown
):
    survey, q = seminar_survey(make_event())
    path = f"/staff/surveys/{survey.id}/results?breakdown={breakdown}"
    add_responses(survey, q, 10)
    organiser_client.get(path)  # warm: the first request loads things once
    with count_queries() as with_ten:
        assert organiser_client.get(path).status_code == 200
    add_responses(survey, q, 90)
    with count_queries() as with_a_hundred:
        page = organiser_client.get(path)
    assert page.status_code == 200
    assert "Invited 100 Responded 100" in page_text(page)
    assert len(with_a_hundred) == len(with_ten) <= 20, with_a_hundred


def test_the_csv_costs_a_fixed_number_of_queries(app, organiser_client, make_event):
    survey, q = seminar_survey(make_event())
    path = f"/staff/surveys/{survey.id}/results.csv"
    add_responses(survey, q, 10)
    organiser_client.get(path)
    with count_queries() as with_ten:
        organiser_client.get(path)
    add_responses(survey, q, 40)
    with count_queries() as with_fifty:
        rows = read_csv(organiser_client.get(path))
    assert len(rows) == 51
    assert len(with_fifty) == len(with_ten)


# --- free text -----------------------------------------------------------------------------------


def test_free_text_is_capped_on_the_overview_and_paginated_for_one_question(
    app, organiser_client, make_event
):
    survey = make_survey(make_event(), questions=[(QuestionKind.free_text, "Next time?")])
    (question,) = survey.questions
    for n in range(55):
        respond(survey, {question: f"Idea number {n:02d}"}, at=SENT + timedelta(minutes=n))
    respond(survey, {question: "<script>alert(1)</script>"}, at=SENT - timedelta(days=1))
    db.session.commit()

    overview = organiser_client.get(f"/staff/surveys/{survey.id}/results")
    text = page_text(overview)
    assert "The latest 50 of 56 answers." in text
    assert "Idea number 54" in text and "Idea number 05" in text
    assert "Idea number 04" not in text

    first = organiser_client.get(f"/staff/surveys/{survey.id}/results?question={question.id}")
    assert "56 answers, newest first." in page_text(first)
    assert "Page 1 of 2" in first.text
    second = organiser_client.get(
        f"/staff/surveys/{survey.id}/results?question={question.id}&page=2"
    )
    assert "Idea number 04" in second.text and "Idea number 05" not in second.text
    assert "<script>alert(1)</script>" not in second.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in second.text


def free_text_items(page) -> list[str]:
    """The answers listed on a results page, each with whatever is shown beside it."""
    (listing,) = re.findall(r'<ul class="free-text">(.*?)</ul>', page.text, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in listing.split("<li>")[1:]]


def test_an_anonymous_surveys_free_text_is_listed_by_text_without_dates(
    app, organiser_client, make_event
):
    survey = make_survey(
        make_event(), anonymous=True, questions=[(QuestionKind.free_text, "Next time?")]
    )
    (question,) = survey.questions
    ideas = [
        "Passwords",
        "Backups",
        "Zero trust",
        "Insurance",
        "Phishing",
    ]  # in the order they came
    for n, idea in enumerate(ideas):
        respond(survey, {question: idea}, at=SENT + timedelta(days=n, hours=n))
    db.session.commit()

    overview = organiser_client.get(f"/staff/surveys/{survey.id}/results")
    one = organiser_client.get(f"/staff/surveys/{survey.id}/results?question={question.id}")
    assert free_text_items(overview) == sorted(ideas)  # no dates beside them
    assert free_text_items(one) == sorted(ideas)
    assert "5 answers, in alphabetical order, without dates" in page_text(one)
    texts = survey_results.survey_results(survey).questions[0].texts
    assert [(t.text, t.submitted_at) for t in texts] == [(idea, None) for idea in sorted(ideas)]

    survey.anonymous = False  # a named survey: newest first, with the date
    db.session.commit()
    named = free_text_items(organiser_client.get(f"/staff/surveys/{survey.id}/results"))
    assert named[0].startswith("Phishing") and named[0] != "Phishing"
    assert [item.split()[0] for item in named] == [
        "Phishing",
        "Insurance",
        "Zero",
        "Backups",
        "Passwords",
    ]


# --- bad input and access ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "notice"),
    [
        ("breakdown=colour", "There is no breakdown called “colour”, so none is shown."),
        ("breakdown=%3Cscript%3E", "There is no breakdown called “&lt;script&gt;”"),
        ("question=abc", "This survey has no question “abc”, so every question is shown."),
        ("question=99999999999999999999", "This survey has no question"),
        ("question=-1", "This survey has no question “-1”"),
        ("question=%C2%B2", "This survey has no question “²”"),
        ("question=" + "9" * 5000, "This survey has no question"),
    ],
)
def test_bad_query_arguments_are_ignored_with_a_notice(organiser_client, make_event, query, notice):
    survey, _ = seminar_survey(make_event())
    response = organiser_client.get(f"/staff/surveys/{survey.id}/results?{query}")
    assert response.status_code == 200
    assert notice in response.text
    assert "<script>" not in response.text.split("<main")[1]
    assert "Which session was most useful?" in response.text  # every question still shown


def test_another_surveys_question_is_not_shown(organiser_client, make_event):
    survey, _ = seminar_survey(make_event())
    other, other_questions = seminar_survey(make_event())
    response = organiser_client.get(
        f"/staff/surveys/{survey.id}/results?question={other_questions['rating'].id}&breakdown=sme"
    )
    assert response.status_code == 200
    assert "This survey has no question" in response.text
    assert "Only this question" in response.text


def test_one_question_can_be_shown_alone_with_its_breakdown(organiser_client, make_event):
    survey, q = seminar_survey(make_event())
    add_responses(survey, q, 12)
    response = organiser_client.get(
        f"/staff/surveys/{survey.id}/results?question={q['breach'].id}&breakdown=member"
    )
    text = page_text(response)
    assert "Did your business have a cyber breach" in text
    assert "Which session was most useful?" not in text
    assert "Breakdown: Chamber membership" in text and "Chamber members 6 " in text


@pytest.mark.parametrize("suffix", ["results", "results.csv"])
def test_an_unknown_survey_is_a_404(organiser_client, suffix):
    assert organiser_client.get(f"/staff/surveys/4242/{suffix}").status_code == 404
    assert organiser_client.get(f"/staff/surveys/99999999999/{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["results", "results.csv"])
def test_results_are_for_organisers_only(client, checkin_client, admin_client, make_event, suffix):
    survey, _ = seminar_survey(make_event())
    path = f"/staff/surveys/{survey.id}/{suffix}"
    anonymous = client.get(path)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/staff/login?next=")
    assert checkin_client.get(path).status_code == 403
    assert admin_client.get(path).status_code == 200
