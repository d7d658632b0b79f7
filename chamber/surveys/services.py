"""Building surveys: questions and their order, settings with sensible defaults, scheduling.
Functions flush and never commit; the seminar template is in `template`, sending in `dispatch`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError

from chamber.auth.models import StaffUser
from chamber.core.errors import Refusal
from chamber.core.times import NonexistentLocalTime, local_to_utc, utc_to_local, utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.surveys.models import (
    MAX_CHOICE_LENGTH,
    MAX_CHOICES,
    YES_NO_CHOICES,
    Question,
    QuestionDetails,
    QuestionKind,
    Recipients,
    Survey,
    SurveyStatus,
)
from chamber.surveys.template import template_questions

SEND_HOUR = 10  # the morning after the event, local time
CLOSE_AFTER_DAYS = 14
REMINDER_AFTER_DAYS = 4
CHOICE_KINDS = (QuestionKind.single_choice, QuestionKind.multiple_choice)


log = logging.getLogger(__name__)


class SurveyError(Refusal):
    """A change staff asked for that the rules refuse; the message says why."""


# --- reading -------------------------------------------------------------------------------------


def survey_for_event(event_id: int) -> Survey | None:
    survey: Survey | None = db.session.scalar(db.select(Survey).where(Survey.event_id == event_id))
    return survey


def is_locked(survey: Survey) -> bool:
    """Once invitations are out, the questions (and who is asked, and when) stay as they were."""
    return survey.status == SurveyStatus.sent


# --- defaults ------------------------------------------------------------------------------------


def default_send_at(event: Event) -> datetime:
    """10:00 in the event's zone on the morning after the day it ends, as UTC (DST-safe)."""
    return send_at_after(event.ends_at, event.timezone)


def send_at_after(ends_at: datetime, zone_name: str) -> datetime:
    """The default send time for an event ending at `ends_at` (UTC) in the zone `zone_name`."""
    next_day = utc_to_local(ends_at, zone_name).date() + timedelta(days=1)
    for hour in (SEND_HOUR, SEND_HOUR + 1):  # 10:00 is skipped only in the rarest zones
        try:
            return local_to_utc(datetime.combine(next_day, time(hour)), zone_name)
        except NonexistentLocalTime:
            continue
    return ends_at + timedelta(days=1)


def default_closes_at(send_at: datetime) -> datetime:
    return send_at + timedelta(days=CLOSE_AFTER_DAYS)


# --- creating ------------------------------------------------------------------------------------


def create_survey(event: Event, *, by: StaffUser, from_template: bool = True) -> Survey:
    """A draft survey for `event` with the default settings (anonymous results among them), and
    the template's questions if asked."""
    if survey_for_event(event.id) is not None:
        raise SurveyError("This event already has a survey.")
    send_at = default_send_at(event)
    survey = Survey(
        event_id=event.id,
        title=f"Your feedback on {event.title}"[:200],
        intro="It takes about two minutes, and your answers help us plan the next seminar.",
        status=SurveyStatus.draft,
        recipients=Recipients.checked_in,
        send_at=send_at,
        reminder_enabled=True,
        reminder_after_days=REMINDER_AFTER_DAYS,
        closes_at=default_closes_at(send_at),
        anonymous=True,  # staff may turn it off before sending; results then show names
    )
    db.session.add(survey)
    try:
        db.session.flush()
    except IntegrityError as error:  # another request made one after `survey_for_event` looked
        raise SurveyError("This event already has a survey.", field="event_id") from error
    if from_template:
        for details in template_questions(event):
            add_question(survey, details, by=by)
    log.info("%s made survey %s for event %s", by.email, survey.id, event.id)
    return survey


def delete_survey(survey: Survey, *, by: StaffUser) -> None:
    if survey.status != SurveyStatus.draft:
        raise SurveyError("Only a draft survey can be deleted; unschedule it first.")
    survey_id = survey.id
    db.session.delete(survey)
    db.session.flush()
    log.info("%s deleted survey %s", by.email, survey_id)


# --- questions -----------------------------------------------------------------------------------


def _clean_choices(details: QuestionDetails) -> str:
    if details.kind == QuestionKind.yes_no:
        return "\n".join(YES_NO_CHOICES)
    if details.kind not in CHOICE_KINDS:
        return ""
    options = [line.strip() for line in details.choices.splitlines() if line.strip()]
    if len(options) < 2:
        raise SurveyError("Give at least two options, one per line.")
    if len(options) > MAX_CHOICES:
        raise SurveyError(f"Give at most {MAX_CHOICES} options.")
    if any(len(option) > MAX_CHOICE_LENGTH for option in options):
        raise SurveyError(f"Each option must be {MAX_CHOICE_LENGTH} characters or fewer.")
    if len({option.casefold() for option in options}) != len(options):
        raise SurveyError("Each option must be different.")
    return "\n".join(options)


def _check_editable(survey: Survey) -> None:
    if is_locked(survey):
        raise SurveyError("This survey has been sent, so its questions can no longer change.")


def add_question(survey: Survey, details: QuestionDetails, *, by: StaffUser) -> Question:
    _check_editable(survey)
    last = db.session.scalar(
        db.select(db.func.max(Question.position)).where(Question.survey_id == survey.id)
    )
    question = Question(
        survey_id=survey.id,
        position=0 if last is None else last + 1,
        kind=details.kind,
        text=details.text.strip(),
        help_text=details.help_text.strip(),
        required=details.required,
        choices=_clean_choices(details),
    )
    db.session.add(question)
    db.session.flush()
    db.session.expire(survey, ["questions"])
    log.info("%s added question %s to survey %s", by.email, question.id, survey.id)
    return question


def update_question(question: Question, details: QuestionDetails, *, by: StaffUser) -> None:
    _check_editable(question.survey)
    question.choices = _clean_choices(details)
    question.kind = details.kind
    question.text = details.text.strip()
    question.help_text = details.help_text.strip()
    question.required = details.required
    db.session.flush()
    log.info("%s changed question %s", by.email, question.id)


def delete_question(question: Question, *, by: StaffUser) -> None:
    survey = question.survey
    _check_editable(survey)
    question_id = question.id
    db.session.delete(question)
    db.session.flush()
    db.session.expire(survey, ["questions"])
    _renumber(survey)
    db.session.flush()
    log.info("%s deleted question %s of survey %s", by.email, question_id, survey.id)


def _renumber(survey: Survey) -> list[Question]:
    questions = list(
        db.session.scalars(
            db.select(Question)
            .where(Question.survey_id == survey.id)
            .order_by(Question.position, Question.id)
        )
    )
    for position, question in enumerate(questions):
        question.position = position
    return questions


def move_question(question: Question, direction: int, *, by: StaffUser) -> bool:
    """Swap a question with its neighbour (-1 up, +1 down); False at either end."""
    survey = question.survey
    _check_editable(survey)
    questions = _renumber(survey)
    index = questions.index(question)
    other = index + direction
    if not 0 <= other < len(questions):
        return False
    questions[index].position, questions[other].position = other, index
    db.session.flush()
    db.session.expire(survey, ["questions"])
    log.info("%s moved question %s of survey %s", by.email, question.id, survey.id)
    return True


# --- settings and scheduling ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    title: str
    intro: str
    send_at: datetime | None
    recipients: Recipients
    reminder_enabled: bool
    reminder_after_days: int
    closes_at: datetime | None
    anonymous: bool


def _check_settings(survey: Survey, event: Event, settings: Settings) -> None:
    if not is_locked(survey) and settings.send_at is not None and settings.send_at < event.ends_at:
        raise SurveyError("The survey can only be sent after the event ends.")
    if settings.closes_at is not None and settings.send_at is not None:
        if settings.closes_at <= settings.send_at:
            raise SurveyError("The closing date must be after the survey is sent.")
        if settings.reminder_enabled and (
            settings.send_at + timedelta(days=settings.reminder_after_days) >= settings.closes_at
        ):
            raise SurveyError(
                "The reminder would go after the survey closes: send it sooner, or close later."
            )


def update_settings(survey: Survey, settings: Settings, *, by: StaffUser) -> None:
    """Save the settings. Once sent, when, to whom and anonymity are history and stay as they were."""
    if is_locked(survey):
        settings = replace(
            settings,
            send_at=survey.sent_at or survey.send_at,
            recipients=survey.recipients,
            anonymous=survey.anonymous,
        )
    _check_settings(survey, survey.event, settings)
    survey.title = settings.title.strip()
    survey.intro = settings.intro.strip()
    survey.send_at = settings.send_at
    survey.recipients = settings.recipients
    survey.reminder_enabled = settings.reminder_enabled
    survey.reminder_after_days = settings.reminder_after_days
    survey.closes_at = settings.closes_at
    survey.anonymous = settings.anonymous
    db.session.flush()
    log.info("%s changed the settings of survey %s", by.email, survey.id)


def schedule_problem(survey: Survey) -> str | None:
    """Why this survey cannot be scheduled (or sent now), in words for staff; None if it can."""
    return _sending_problem(survey, survey.send_at, survey.closes_at)


def _sending_problem(
    survey: Survey, send_at: datetime | None, closes_at: datetime | None
) -> str | None:
    if survey.status == SurveyStatus.sent:
        return "This survey has already been sent."
    if survey.event.is_cancelled:
        return "The event was cancelled, so there is no one to ask."
    if survey.event.is_draft:
        return "The event is not published, so there is no one to ask."
    if not survey.questions:
        return "Add at least one question first."
    if send_at is None:
        return "Set when to send it first."
    if closes_at is not None and closes_at <= send_at:
        return "The closing date must be after the survey is sent."
    return None


def schedule(survey: Survey, *, by: StaffUser) -> None:
    if problem := schedule_problem(survey):
        raise SurveyError(problem)
    survey.status = SurveyStatus.scheduled
    db.session.flush()
    log.info("%s scheduled survey %s", by.email, survey.id)


def unschedule(survey: Survey, *, by: StaffUser) -> None:
    if survey.status != SurveyStatus.scheduled:
        raise SurveyError("Only a scheduled survey can go back to draft.")
    survey.status = SurveyStatus.draft
    db.session.flush()
    log.info("%s unscheduled survey %s", by.email, survey.id)


def prepare_to_send_now(survey: Survey, now: datetime | None = None, *, by: StaffUser) -> None:
    """Make the survey due at once (dispatch sends it in the same transaction).

    One conditional UPDATE, so a worker that sent the survey since this request read it is never
    overruled (a plain flush of the loaded row would turn a sent survey back into a scheduled one).
    """
    now = now or utcnow()
    if survey.event.ends_at > now:
        raise SurveyError("The event has not ended yet, so the survey cannot be sent.")
    closes_at = survey.closes_at
    if closes_at is not None and closes_at <= now:
        closes_at = default_closes_at(now)
    if problem := _sending_problem(survey, now, closes_at):
        raise SurveyError(problem)
    made_due = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(Survey)
            .where(Survey.id == survey.id, Survey.status != SurveyStatus.sent)
            .values(send_at=now, closes_at=closes_at, status=SurveyStatus.scheduled)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(survey)
    if made_due.rowcount != 1:
        raise SurveyError(
            "This survey has just been sent (by the worker), so it was not sent again."
        )
    log.info("%s made survey %s due at once", by.email, survey.id)
