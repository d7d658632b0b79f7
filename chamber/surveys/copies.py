"""A copied event gets a draft of its source's survey: the same questions and settings, its
sending times moved with the event; never the source's invitations or responses (a receiver of
`events.signals.event_copied`)."""

from __future__ import annotations

from chamber.events.models import AgendaItem, Event
from chamber.extensions import db
from chamber.surveys.models import Question, Survey, SurveyStatus
from chamber.surveys.services import default_closes_at, default_send_at, survey_for_event


def event_copied(_app: object, *, source: Event, copy: Event, items: dict[int, AgendaItem]) -> None:
    survey = survey_for_event(source.id)
    if survey is None:
        return
    moved = copy.ends_at - source.ends_at
    send_at = survey.send_at + moved if survey.send_at else default_send_at(copy)
    closes_at = survey.closes_at + moved if survey.closes_at else default_closes_at(send_at)
    default_title = f"Your feedback on {source.title}"[:200]
    title = (
        f"Your feedback on {copy.title}"[:200] if survey.title == default_title else survey.title
    )
    twin = Survey(
        event_id=copy.id,
        title=title,
        intro=survey.intro,
        status=SurveyStatus.draft,
        recipients=survey.recipients,
        send_at=send_at,
        reminder_enabled=survey.reminder_enabled,
        reminder_after_days=survey.reminder_after_days,
        closes_at=closes_at,
        anonymous=survey.anonymous,
    )
    twin.questions = [
        Question(
            position=question.position,
            kind=question.kind,
            text=question.text,
            help_text=question.help_text,
            required=question.required,
            choices=question.choices,
        )
        for question in survey.questions
    ]
    db.session.add(twin)
    db.session.flush()
