"""A survey follows its event: never sent for a cancelled event or before the event has ended, back
to draft when the event is cancelled, and moved to the morning after the new end when the event is
postponed (or brought forward). Time travels through the worker's `now`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from chamber.core.times import utcnow
from chamber.events import services as events
from chamber.events.models import EventStatus
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.registration import checkin_services
from chamber.surveys import dispatch, services
from chamber.surveys.models import Recipients, Survey, SurveyStatus
from tests.factories import acting_staff
from tests.surveys_support import book, finished_seminar


def survey_keys() -> list[str]:
    return list(
        db.session.scalars(
            db.select(OutboxMessage.key).where(OutboxMessage.key.startswith("survey-"))
        )
    )


def coming_seminar(make_event, make_item, days_ahead: int = 3):
    """A published seminar `days_ahead` days from now, with a talk on its agenda."""
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=days_ahead)
    event = make_event(starts_at=starts)
    make_item(event, minutes_in=30, title="Phishing and passwords")
    return event


def scheduled_for(event, **settings) -> Survey:
    survey = services.create_survey(event, by=acting_staff())
    for name, value in settings.items():
        setattr(survey, name, value)
    services.schedule(survey, by=acting_staff())
    db.session.commit()
    return survey


def postpone(event, days: int) -> None:
    events.save_event(
        event,
        replace(
            events.EventDetails.of(event),
            starts_at=event.starts_at + timedelta(days=days),
            ends_at=event.ends_at + timedelta(days=days),
        ),
        by=acting_staff(),
    )
    db.session.commit()


def fresh(survey: Survey) -> Survey:
    db.session.expire_all()
    return db.session.get(Survey, survey.id)


# --- cancelled -----------------------------------------------------------------------------------


def test_a_cancelled_events_survey_goes_back_to_draft_and_is_never_sent(app, make_event, make_item):
    event = coming_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_for(event, recipients=Recipients.confirmed)
    send_at = survey.send_at

    events.set_status(event, EventStatus.cancelled, by=acting_staff())
    db.session.commit()

    assert fresh(survey).status == SurveyStatus.draft
    report = dispatch.send_due(send_at + timedelta(hours=1))
    assert report.surveys == 0 and survey_keys() == []


def test_the_claim_refuses_a_cancelled_events_survey_even_if_it_is_still_scheduled(
    app, make_event, make_item
):
    """A survey scheduled before the listener existed (or by a direct edit) is still safe."""
    event = finished_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_for(event)
    event.status = EventStatus.cancelled  # no calendar listener runs for a direct edit
    db.session.commit()

    assert dispatch.send_due(survey.send_at + timedelta(hours=1)).surveys == 0
    assert dispatch.send_survey(fresh(survey), survey.send_at + timedelta(hours=1)) is None
    assert fresh(survey).status == SurveyStatus.scheduled and survey_keys() == []


def test_a_survey_of_an_unpublished_event_is_not_sent(app, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_for(event)
    events.set_status(event, EventStatus.draft, by=acting_staff())
    db.session.commit()
    assert dispatch.send_due(survey.send_at + timedelta(hours=1)).surveys == 0
    assert survey_keys() == []


# --- postponed -----------------------------------------------------------------------------------


def test_a_postponed_events_survey_moves_to_the_morning_after_the_new_end(
    app, organiser_client, make_event, make_item
):
    event = coming_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_for(event, recipients=Recipients.confirmed)
    old_send_at = survey.send_at

    postpone(event, 28)

    survey = fresh(survey)
    assert survey.status == SurveyStatus.scheduled
    assert survey.send_at == services.default_send_at(event) > event.ends_at
    assert event.local(survey.send_at).hour == services.SEND_HOUR
    assert event.local(survey.send_at).date() == event.local_end.date() + timedelta(days=1)
    assert survey.closes_at == services.default_closes_at(survey.send_at)
    assert dispatch.send_due(old_send_at + timedelta(hours=1)).surveys == 0
    assert survey_keys() == []
    page = organiser_client.get(f"/staff/surveys/{survey.id}")
    when = event.local(survey.send_at)
    assert f"goes out on {when:%A %-d %B %Y}" in page.text
    assert "the morning after the event ends" in page.text

    assert dispatch.send_due(survey.send_at + timedelta(minutes=1)).surveys == 1


def test_a_send_time_staff_chose_after_the_new_end_is_kept(app, make_event, make_item):
    event = coming_seminar(make_event, make_item)
    survey = services.create_survey(event, by=acting_staff())
    chosen = event.ends_at + timedelta(days=10)
    survey.send_at, survey.closes_at = chosen, chosen + timedelta(days=20)
    db.session.commit()

    postpone(event, 2)

    survey = fresh(survey)
    assert (survey.send_at, survey.closes_at) == (chosen, chosen + timedelta(days=20))
    assert survey.status == SurveyStatus.draft


def test_an_event_brought_forward_brings_a_default_send_time_with_it(app, make_event, make_item):
    event = coming_seminar(make_event, make_item, days_ahead=10)
    survey = scheduled_for(event)
    postpone(event, -7)
    survey = fresh(survey)
    assert survey.send_at == services.default_send_at(event)
    assert survey.closes_at == services.default_closes_at(survey.send_at)


def test_a_check_in_during_a_postponed_event_does_not_send_the_survey_before_it_ends(
    app, make_event, make_item, organiser
):
    event = coming_seminar(make_event, make_item)
    delegate = book(event, "ann@alpha.example", checked_in=False)
    survey = scheduled_for(event)  # asks those checked in: nobody yet
    old_send_at = survey.send_at

    postpone(event, 28)
    assert dispatch.send_due(old_send_at + timedelta(hours=1)).surveys == 0  # no one to ask

    during = event.starts_at + timedelta(minutes=10)
    checkin_services.check_in(delegate, by=organiser, now=during)
    db.session.commit()
    assert dispatch.send_due(during + timedelta(minutes=1)).surveys == 0
    assert fresh(survey).status == SurveyStatus.scheduled and survey_keys() == []

    assert dispatch.send_due(fresh(survey).send_at + timedelta(minutes=1)).surveys == 1
    assert len(survey_keys()) == 1


def test_the_claim_waits_for_the_end_of_an_event_moved_behind_the_surveys_back(
    app, make_event, make_item
):
    """Even with a send time before the end (a direct edit; no listener ran), nothing goes out
    until the event has ended."""
    event = coming_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_for(event, recipients=Recipients.confirmed)
    db.session.execute(
        db.update(Survey).where(Survey.id == survey.id).values(send_at=event.starts_at)
    )
    db.session.commit()
    assert dispatch.send_due(event.starts_at + timedelta(minutes=5)).surveys == 0
    assert dispatch.send_due(event.ends_at + timedelta(minutes=5)).surveys == 1


def test_a_sent_survey_stays_as_it_was_when_the_event_changes(app, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "ann@alpha.example")
    survey = scheduled_for(event)
    assert dispatch.send_due(survey.send_at + timedelta(minutes=1)).surveys == 1
    sent = fresh(survey)
    send_at, closes_at = sent.send_at, sent.closes_at
    moved = replace(events.EventDetails.of(event), venue_name="The Town Hall")
    events.save_event(event, moved, by=acting_staff())
    db.session.commit()
    sent = fresh(survey)
    assert (sent.status, sent.send_at, sent.closes_at) == (SurveyStatus.sent, send_at, closes_at)
