"""Building a survey: the seminar template filled from the agenda and resource pack, the question
editor, the defaults (10:00 local the morning after, DST included), preview and staff access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chamber.core.times import utcnow
from chamber.events.models import AgendaKind, EventStatus
from chamber.extensions import db
from chamber.resources.models import AgendaItemResource, EventResource, Resource, ResourceStatus
from chamber.surveys import services
from chamber.surveys.models import Question, QuestionKind, Recipients, Survey, SurveyStatus
from tests.factories import acting_staff, at
from tests.support import count_queries, csrf_token, post_form
from tests.surveys_support import attach_pack, finished_seminar


def kinds(survey: Survey) -> list[str]:
    db.session.expire_all()
    return [q.kind.value for q in db.session.get(Survey, survey.id).questions]


def texts(survey: Survey) -> list[str]:
    db.session.expire_all()
    return [q.text for q in db.session.get(Survey, survey.id).questions]


# --- the template --------------------------------------------------------------------------------


def test_the_seminar_template_asks_six_questions_with_sessions_from_the_agenda(
    app, make_event, make_item, make_speaker
):
    event = make_event()
    make_item(event, minutes_in=0, title="Welcome", kind=AgendaKind.welcome)
    make_item(event, minutes_in=30, title="Phishing", speakers=[make_speaker("Tony Richardson")])
    make_item(event, minutes_in=60, title="Coffee", kind=AgendaKind.break_)
    make_item(event, minutes_in=90, title="Ask the experts", kind=AgendaKind.panel)
    attach_pack(event, ["Small Business Guide"])

    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()

    assert kinds(survey) == [
        "rating", "single_choice", "nps", "yes_no", "multiple_choice", "free_text",
    ]  # fmt: skip
    questions = survey.questions
    assert questions[0].required and questions[2].required
    assert questions[1].choice_list == ["Phishing (Tony Richardson)", "Ask the experts"]
    assert "cyber breach or attack in the last 12 months" in questions[3].text
    assert questions[3].choice_list == ["Yes", "No", "Prefer not to say"]
    assert questions[4].choice_list == ["Small Business Guide", "None of these"]
    assert questions[5].text == "What should we cover next time?"
    assert survey.status == SurveyStatus.draft and survey.recipients == Recipients.checked_in
    assert survey.anonymous  # staff may make it named before sending


def test_the_breach_hint_promises_nothing_the_settings_can_take_back(app, make_event):
    survey = services.create_survey(make_event(), by=acting_staff())
    (breach,) = [q for q in survey.questions if q.kind == QuestionKind.yes_no]
    assert "totals" not in breach.help_text and "never" not in breach.help_text
    assert "Prefer not to say" in breach.help_text


def test_with_one_talk_the_template_asks_to_rate_it(app, make_event, make_item):
    event = make_event()
    make_item(event, minutes_in=30, title="Phishing")
    survey = services.create_survey(event, by=acting_staff())
    assert kinds(survey)[1] == "agenda_rating"


def test_without_talks_or_resources_the_template_leaves_those_questions_out_and_says_why(
    organiser_client, make_event, make_item
):
    event = make_event()
    make_item(event, minutes_in=0, title="Welcome", kind=AgendaKind.welcome)
    attach_pack(event, ["A draft guide"], status=ResourceStatus.draft)  # not in the pack
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    assert kinds(survey) == ["rating", "nps", "yes_no", "free_text"]

    page = organiser_client.get(f"/staff/surveys/{survey.id}").text
    assert "Left out of the seminar template, and why" in page
    assert "the agenda has no talks or panels yet" in page
    assert "no published resources are attached to this event" in page
    assert "DEFAULT" not in page and "Action Fraud" not in page

    make_item(event, minutes_in=30, title="Phishing")
    attach_pack(event, ["Small Business Guide"])
    page = organiser_client.get(f"/staff/surveys/{survey.id}").text
    assert "Left out of the seminar template" not in page


def test_a_rate_each_item_question_on_an_agenda_without_talks_is_flagged_and_not_shown(
    organiser_client, make_event
):
    survey = services.create_survey(make_event(), from_template=False, by=acting_staff())
    services.add_question(
        survey,
        services.QuestionDetails(QuestionKind.agenda_rating, "How useful was each talk?"),
        by=acting_staff(),
    )
    services.add_question(
        survey, services.QuestionDetails(QuestionKind.rating, "Overall?"), by=acting_staff()
    )
    db.session.commit()
    page = organiser_client.get(f"/staff/surveys/{survey.id}").text
    assert "Respondents will not see this question" in page
    preview = organiser_client.get(f"/staff/surveys/{survey.id}/preview").text
    survey_form = preview.split('class="survey-form"')[1].split("</form>")[0]
    assert "How useful was each talk?" not in survey_form
    assert "Overall?" in survey_form
    assert "no talks to rate" not in preview


def test_the_resource_question_lists_the_events_pack_in_order(app, make_event, make_item):
    event = make_event()
    for position, (title, status) in enumerate(
        [
            ("Small Business Guide", ResourceStatus.published),
            ("Draft thing", ResourceStatus.draft),
            ("Cyber Essentials", ResourceStatus.published),
        ]
    ):
        resource = Resource(slug=f"r{position}", title=title, status=status, url="https://x.test/")
        db.session.add(resource)
        db.session.flush()
        db.session.add(EventResource(event_id=event.id, resource_id=resource.id, position=position))
    talk = make_item(event, minutes_in=30, title="Phishing")
    beside = Resource(slug="beside", title="Phishing guide", status=ResourceStatus.published)
    db.session.add(beside)
    db.session.flush()
    db.session.add(AgendaItemResource(agenda_item_id=talk.id, resource_id=beside.id))
    db.session.commit()
    survey = services.create_survey(event, by=acting_staff())
    (resources,) = [q for q in survey.questions if q.kind == QuestionKind.multiple_choice]
    assert resources.choice_list == [
        "Small Business Guide", "Cyber Essentials", "Phishing guide", "None of these",
    ]  # fmt: skip


def test_a_yes_no_question_offers_its_three_answers_whatever_its_choices_column_holds(
    organiser_client, make_event
):
    survey = services.create_survey(make_event(), from_template=False, by=acting_staff())
    db.session.add(Question(survey_id=survey.id, kind=QuestionKind.yes_no, text="Breach?"))
    db.session.commit()
    (question,) = db.session.get(Survey, survey.id).questions
    assert question.choices == ""  # as the first demo stored it
    assert question.choice_list == ["Yes", "No", "Prefer not to say"]
    for path in (f"/staff/surveys/{survey.id}", f"/staff/surveys/{survey.id}/preview"):
        page = organiser_client.get(path).text
        for option in ("Yes", "No", "Prefer not to say"):
            assert f">{option}<" in page, (path, option)
    preview = organiser_client.get(f"/staff/surveys/{survey.id}/preview").text
    assert preview.count('type="radio"') == 3


def test_a_blank_survey_has_no_questions_and_one_event_has_one_survey(app, make_event):
    event = make_event()
    survey = services.create_survey(event, from_template=False, by=acting_staff())
    assert survey.questions == []
    with pytest.raises(services.SurveyError, match="already has a survey"):
        services.create_survey(event, by=acting_staff())


# --- defaults ------------------------------------------------------------------------------------


def test_it_is_sent_at_ten_the_next_morning_local_and_closes_two_weeks_later(app, make_event):
    # 14:00 to 18:00 in London during summer time (UTC+1)
    event = make_event(starts_at=datetime(2026, 6, 11, 13, 0, tzinfo=UTC))
    survey = services.create_survey(event, by=acting_staff())
    assert survey.send_at == datetime(2026, 6, 12, 9, 0, tzinfo=UTC)  # 10:00 BST
    assert event.local(survey.send_at).hour == 10
    assert survey.closes_at == survey.send_at + timedelta(days=14)
    assert survey.reminder_enabled and survey.reminder_after_days == 4


@pytest.mark.parametrize(
    ("ends_utc", "expected_utc"),
    [
        # ends on the Saturday before the clocks go forward (29 March 2026): Sunday 10:00 is BST
        (datetime(2026, 3, 28, 17, 0, tzinfo=UTC), datetime(2026, 3, 29, 9, 0, tzinfo=UTC)),
        # ends on the day the clocks go back (25 October 2026): Monday 10:00 is GMT
        (datetime(2026, 10, 25, 17, 0, tzinfo=UTC), datetime(2026, 10, 26, 10, 0, tzinfo=UTC)),
        # ends the evening before the clocks go back: Sunday 10:00 is already GMT
        (datetime(2026, 10, 24, 20, 0, tzinfo=UTC), datetime(2026, 10, 25, 10, 0, tzinfo=UTC)),
    ],
)
def test_the_send_time_is_ten_local_across_a_clock_change(app, make_event, ends_utc, expected_utc):
    event = make_event(starts_at=ends_utc - timedelta(hours=3), ends_at=ends_utc)
    assert services.default_send_at(event) == expected_utc


def test_the_send_time_follows_the_events_own_zone(app, make_event):
    event = make_event(
        starts_at=datetime(2026, 1, 15, 14, 0, tzinfo=UTC), timezone="America/New_York"
    )  # ends 18:00 UTC, 13:00 in New York
    assert services.default_send_at(event) == datetime(2026, 1, 16, 15, 0, tzinfo=UTC)


# --- the question editor (services) --------------------------------------------------------------


def test_questions_are_added_at_the_end_moved_and_deleted_in_order(app, make_event):
    survey = services.create_survey(make_event(), from_template=False, by=acting_staff())
    for text in ("First", "Second", "Third"):
        services.add_question(
            survey, services.QuestionDetails(QuestionKind.free_text, text), by=acting_staff()
        )
    third = survey.questions[2]
    assert services.move_question(third, -1, by=acting_staff())
    assert texts(survey) == ["First", "Third", "Second"]
    first = db.session.get(Survey, survey.id).questions[0]
    assert not services.move_question(first, -1, by=acting_staff())  # already at the top
    services.delete_question(first, by=acting_staff())
    assert texts(survey) == ["Third", "Second"]
    assert [q.position for q in db.session.get(Survey, survey.id).questions] == [0, 1]


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ("Only one", "at least two options"),
        ("Same\nsame", "must be different"),
        ("A\n" + "x" * 301, "300 characters"),
    ],
)
def test_choice_questions_need_sensible_options(app, make_event, choices, message):
    survey = services.create_survey(make_event(), from_template=False, by=acting_staff())
    with pytest.raises(services.SurveyError, match=message):
        services.add_question(
            survey,
            services.QuestionDetails(QuestionKind.single_choice, "Pick", choices=choices),
            by=acting_staff(),
        )


def test_a_sent_survey_keeps_its_questions(app, make_event):
    survey = services.create_survey(make_event(), by=acting_staff())
    survey.status = SurveyStatus.sent
    with pytest.raises(services.SurveyError, match="can no longer change"):
        services.add_question(
            survey, services.QuestionDetails(QuestionKind.free_text, "Late"), by=acting_staff()
        )
    with pytest.raises(services.SurveyError):
        services.move_question(survey.questions[1], -1, by=acting_staff())


# --- staff pages ---------------------------------------------------------------------------------


def test_an_organiser_creates_a_survey_from_the_events_page(organiser_client, make_event):
    event = make_event(starts_at=at(-3))
    page = organiser_client.get(f"/staff/events/{event.id}")
    assert f'href="/staff/surveys/new?event_id={event.id}"' in page.text
    form = organiser_client.get(f"/staff/surveys/new?event_id={event.id}")
    assert f'<option selected value="{event.id}">' in form.text

    response = post_form(
        organiser_client, "/staff/surveys/new", {"event_id": event.id, "start": "template"}
    )
    survey = services.survey_for_event(event.id)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/surveys/{survey.id}"
    shown = organiser_client.get(f"/staff/surveys/{survey.id}")
    assert "Did your business have a cyber breach" in shown.text
    event_page = organiser_client.get(f"/staff/events/{event.id}")
    assert f'href="/staff/surveys/{survey.id}">Follow-up survey' in event_page.text
    assert "Surveys" in organiser_client.get("/staff/surveys/").text


def test_the_question_editor_adds_edits_moves_and_deletes(organiser_client, make_event):
    survey = services.create_survey(make_event(), from_template=False, by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"

    refused = post_form(
        organiser_client,
        f"{base}/questions/new",
        {"kind": "single_choice", "text": "Which?", "choices": "Only one"},
    )
    assert refused.status_code == 400
    assert "Give at least two options" in refused.text
    assert db.session.scalars(db.select(Question)).all() == []

    for text, kind, choices in [
        ("How was it?", "rating", ""),
        ("Which talk?", "single_choice", "Phishing\r\nRansomware\r\n\r\n"),
    ]:
        added = post_form(
            organiser_client,
            f"{base}/questions/new",
            {"kind": kind, "text": text, "choices": choices, "required": "y"},
        )
        assert added.status_code == 302, added.text
    first, second = db.session.get(Survey, survey.id).questions
    assert second.choice_list == ["Phishing", "Ransomware"]

    edited = post_form(
        organiser_client,
        f"{base}/questions/{first.id}",
        {"kind": "nps", "text": "Would you recommend us?", "help_text": "0 to 10"},
    )
    assert edited.status_code == 302
    moved = organiser_client.post(
        f"{base}/questions/{second.id}/move/up",
        data={"csrf_token": csrf_token(organiser_client, base)},
    )
    assert moved.status_code == 302
    assert texts(survey) == ["Which talk?", "Would you recommend us?"]
    assert kinds(survey) == ["single_choice", "nps"]
    deleted = organiser_client.post(
        f"{base}/questions/{second.id}/delete",
        data={"csrf_token": csrf_token(organiser_client, base)},
    )
    assert deleted.status_code == 302
    assert texts(survey) == ["Would you recommend us?"]


def test_a_question_of_another_survey_is_not_found(organiser_client, make_event):
    one = services.create_survey(make_event(), by=acting_staff())
    other = services.create_survey(make_event(), by=acting_staff())
    db.session.commit()
    path = f"/staff/surveys/{one.id}/questions/{other.questions[0].id}"
    assert organiser_client.get(path).status_code == 404


def test_settings_are_typed_in_the_events_zone_and_checked(organiser_client, make_event):
    event = make_event(starts_at=datetime(2026, 6, 11, 13, 0, tzinfo=UTC))
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    path = f"/staff/surveys/{survey.id}/settings"
    page = organiser_client.get(path)
    assert 'value="2026-06-12T10:00"' in page.text  # the default, in London time

    data = {
        "title": "Tell us",
        "intro": "Two minutes.",
        "send_at": "2026-06-13T09:30",
        "recipients": "confirmed",
        "reminder_enabled": "y",
        "reminder_after_days": "3",
        "closes_at": "2026-06-30T17:00",
        "anonymous": "y",
    }
    saved = post_form(organiser_client, path, data)
    assert saved.status_code == 302, saved.text
    db.session.expire_all()
    survey = db.session.get(Survey, survey.id)
    assert survey.send_at == datetime(2026, 6, 13, 8, 30, tzinfo=UTC)
    assert survey.recipients == Recipients.confirmed and survey.anonymous
    assert survey.reminder_after_days == 3

    too_early = post_form(organiser_client, path, {**data, "send_at": "2026-06-11T15:00"})
    assert too_early.status_code == 400
    assert "only be sent after the event ends" in too_early.text
    late_reminder = post_form(
        organiser_client,
        path,
        {**data, "closes_at": "2026-06-15T09:00", "reminder_after_days": "5"},
    )
    assert late_reminder.status_code == 400
    assert "reminder would go after the survey closes" in late_reminder.text
    assert "error-summary" in late_reminder.text
    db.session.expire_all()
    assert db.session.get(Survey, survey.id).send_at == datetime(2026, 6, 13, 8, 30, tzinfo=UTC)


def test_scheduling_needs_questions_and_can_be_undone(organiser_client, make_event):
    survey = services.create_survey(make_event(), from_template=False, by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    token = csrf_token(organiser_client, base)
    organiser_client.post(f"{base}/schedule", data={"csrf_token": token})
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft
    assert "Add at least one question first" in organiser_client.get(base).text

    services.add_question(
        db.session.get(Survey, survey.id),
        services.QuestionDetails(QuestionKind.rating, "Overall?"),
        by=acting_staff(),
    )
    db.session.commit()
    organiser_client.post(f"{base}/schedule", data={"csrf_token": token})
    assert db.session.get(Survey, survey.id).status == SurveyStatus.scheduled
    organiser_client.post(f"{base}/unschedule", data={"csrf_token": token})
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft


def test_send_now_is_refused_before_the_event_ends(organiser_client, make_event):
    survey = services.create_survey(make_event(), by=acting_staff())  # a future event
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    response = organiser_client.post(
        f"{base}/send-now", data={"csrf_token": csrf_token(organiser_client, base)}
    )
    assert response.status_code == 302
    assert "has not ended yet" in organiser_client.get(base).text
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft


def test_preview_shows_the_respondents_page_with_a_banner_and_no_way_to_send(
    organiser_client, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    survey = services.create_survey(event, by=acting_staff())
    services.add_question(
        survey,
        services.QuestionDetails(QuestionKind.agenda_rating, "Rate each session"),
        by=acting_staff(),
    )
    db.session.commit()
    page = organiser_client.get(f"/staff/surveys/{survey.id}/preview")
    assert page.status_code == 200
    assert "<strong>Preview.</strong>" in page.text
    survey_form = page.text.split('class="survey-form"')[1].split("</form>")[0]
    assert 'type="submit"' not in survey_form and "csrf_token" not in survey_form
    assert '<form class="survey-form" novalidate aria-label' in page.text  # no method: no POST
    for text in ("Overall, how would you rate the seminar?", "Phishing and passwords",
                 "Ransomware: a case study", "Prefer not to say", "What should we cover"):  # fmt: skip
        assert text in page.text
    assert "Coffee" not in page.text  # breaks are not rated
    assert page.text.count('type="radio"') == 5 + 2 + 11 + 3 + 2 * 5


def test_a_draft_survey_can_be_deleted_but_not_a_sent_one(organiser_client, make_event):
    event = make_event()
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    response = organiser_client.post(
        f"{base}/delete", data={"csrf_token": csrf_token(organiser_client, base)}
    )
    assert response.headers["Location"] == f"/staff/events/{event.id}"
    assert db.session.scalars(db.select(Survey)).all() == []


def test_staff_survey_pages_refuse_anonymous_visitors_and_door_volunteers(
    app, client, checkin_client, make_event
):
    survey = services.create_survey(
        make_event(starts_at=at(-2), status=EventStatus.published), by=acting_staff()
    )
    db.session.commit()
    paths = [
        "/staff/surveys/",
        "/staff/surveys/new",
        f"/staff/surveys/{survey.id}",
        f"/staff/surveys/{survey.id}/settings",
        f"/staff/surveys/{survey.id}/preview",
        f"/staff/surveys/{survey.id}/recipients",
        f"/staff/surveys/{survey.id}/questions/{survey.questions[0].id}",
    ]
    for path in paths:
        anonymous = client.get(path)
        assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]
        assert checkin_client.get(path).status_code == 403
    token = csrf_token(checkin_client, "/staff/")
    for action in ("send-now", "schedule", "delete"):
        assert (
            checkin_client.post(
                f"/staff/surveys/{survey.id}/{action}", data={"csrf_token": token}
            ).status_code
            == 403
        )
    db.session.expire_all()
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft
    assert 'href="/staff/surveys/"' not in checkin_client.get("/staff/").text


def test_the_survey_list_counts_without_a_query_per_row(organiser_client, make_event):
    for n in range(12):
        services.create_survey(make_event(starts_at=at(-n - 2)), by=acting_staff())
    db.session.commit()
    organiser_client.get("/staff/surveys/")  # warm up
    with count_queries() as statements:
        page = organiser_client.get("/staff/surveys/")
    assert page.status_code == 200
    assert page.text.count("/recipients") == 0  # nothing sent yet
    assert len(statements) < 15, statements


def test_the_default_send_time_is_never_before_the_event_ends(app, make_event):
    event = make_event(starts_at=utcnow() - timedelta(hours=2))
    assert services.default_send_at(event) > event.ends_at


@pytest.mark.parametrize(
    ("page", "data"),
    [
        ("new", {"event_id": "abc", "start": "template"}),
        ("new", {"event_id": "999999", "start": "nonsense"}),
        ("settings", {"title": "", "send_at": "yesterday", "recipients": "everyone"}),
        ("settings", {"title": "T", "send_at": "2026-03-29T01:30", "recipients": "checked_in"}),
        ("settings", {"title": "x\x00", "send_at": "2999-01-01T10:00", "recipients": "confirmed",
                      "reminder_after_days": "-4", "closes_at": "99999-01-01T00:00"}),
        ("question", {"kind": "essay", "text": ""}),
        ("question", {"kind": "multiple_choice", "text": "Q" * 301, "choices": "a\na"}),
    ],
)  # fmt: skip
def test_strange_staff_input_comes_back_with_reasons_never_a_500(
    organiser_client, make_event, page, data
):
    survey = services.create_survey(make_event(starts_at=at(-60)), by=acting_staff())
    db.session.commit()
    before = (texts(survey), db.session.get(Survey, survey.id).send_at)
    path = {
        "new": "/staff/surveys/new",
        "settings": f"/staff/surveys/{survey.id}/settings",
        "question": f"/staff/surveys/{survey.id}/questions/new",
    }[page]
    response = post_form(organiser_client, path, data)
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert (texts(survey), db.session.get(Survey, survey.id).send_at) == before
    assert db.session.scalar(db.select(db.func.count(Survey.id))) == 1


# --- what staff are told -------------------------------------------------------------------------


def test_staff_are_told_what_anonymous_means_and_when_names_are_visible(
    organiser_client, make_event
):
    survey = services.create_survey(make_event(starts_at=at(-3)), by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    shown = organiser_client.get(base).text
    assert "<strong>Anonymous:</strong> no names or email addresses" in shown
    settings = organiser_client.get(f"{base}/settings").text
    assert "No names or email addresses in the results or the CSV download" in settings
    assert "only show groups of 5 or more" in settings
    assert 'aria-describedby="anonymous-hint"' in settings

    survey.anonymous = False
    db.session.commit()
    shown = organiser_client.get(base).text
    assert "<strong>Named:</strong> staff see each respondent" in shown
    assert "name and email beside their answers" in shown
    preview = organiser_client.get(f"{base}/preview").text
    assert "Your answers are not anonymous" in preview


def test_a_survey_for_an_event_still_to_come_says_when_send_now_becomes_available(
    organiser_client, make_event
):
    event = make_event(starts_at=datetime(2027, 1, 7, 8, 0, tzinfo=UTC))  # 08:00 to 12:00 GMT
    survey = services.create_survey(event, by=acting_staff())
    services.schedule(survey, by=acting_staff())
    db.session.commit()
    shown = organiser_client.get(f"/staff/surveys/{survey.id}").text
    assert ">Send now</a>" not in shown
    assert (
        "Send now becomes available once the event has ended "
        "(on Thursday 7 January 2027 at 12:00)." in shown
    )
    settings = organiser_client.get(f"/staff/surveys/{survey.id}/settings").text
    assert "ends Thursday 7 January 2027 at 12:00" in settings
    assert "ended Thursday" not in settings


def test_a_survey_for_an_event_that_has_ended_offers_send_now_in_the_past_tense(
    organiser_client, make_event, make_item
):
    event = finished_seminar(make_event, make_item)
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    shown = organiser_client.get(f"/staff/surveys/{survey.id}").text
    assert ">Send now</a>" in shown and "becomes available" not in shown
    settings = organiser_client.get(f"/staff/surveys/{survey.id}/settings").text
    assert f"{event.title}, ended " in settings


def test_the_survey_list_scrolls_inside_a_region_that_takes_keyboard_focus(
    organiser_client, make_event
):
    services.create_survey(make_event(starts_at=at(-3)), by=acting_staff())
    db.session.commit()
    page = organiser_client.get("/staff/surveys/").text
    assert '<div class="table-wrap" tabindex="0" role="region" aria-label="Surveys table">' in page
