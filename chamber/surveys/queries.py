"""Reads for the survey staff pages: the survey list, the events still without a survey, who was
invited, and the free-text answers. Lists come back as selects for `core.pagination.paginate`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import contains_eager

from chamber.events.models import Event
from chamber.extensions import db
from chamber.registration.models import Delegate
from chamber.surveys.models import Answer, Invitation, Question, Response, Survey
from chamber.surveys.tallies import text_order


def surveys_newest_event_first() -> Select[Any]:
    """Every survey with its event loaded, the latest event first (a select to paginate)."""
    return (
        db.select(Survey)
        .join(Event, Event.id == Survey.event_id)
        .options(contains_eager(Survey.event))
        .order_by(Event.starts_at.desc(), Survey.id.desc())
    )


def invitation_and_response_counts(survey_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Invitations and responses per survey, in two grouped queries."""
    if not survey_ids:
        return {}
    invited = dict(
        db.session.execute(
            db.select(Invitation.survey_id, db.func.count(Invitation.id))
            .where(Invitation.survey_id.in_(survey_ids))
            .group_by(Invitation.survey_id)
        ).all()
    )
    answered = dict(
        db.session.execute(
            db.select(Response.survey_id, db.func.count(Response.id))
            .where(Response.survey_id.in_(survey_ids))
            .group_by(Response.survey_id)
        ).all()
    )
    return {sid: (invited.get(sid, 0), answered.get(sid, 0)) for sid in survey_ids}


def events_without_survey(*, ended_by: datetime | None = None, limit: int) -> list[Event]:
    """Events that have no survey yet, the latest first; only those ended by `ended_by` if given."""
    query = (
        db.select(Event)
        .outerjoin(Survey, Survey.event_id == Event.id)
        .where(Survey.id.is_(None))
        .order_by(Event.starts_at.desc())
        .limit(limit)
    )
    if ended_by is not None:
        query = query.where(Event.ends_at <= ended_by)
    return list(db.session.scalars(query))


def survey_id_for_event(event_id: int) -> int | None:
    return db.session.scalar(db.select(Survey.id).where(Survey.event_id == event_id))


def invitations(survey: Survey, shown: str) -> Select[Any]:
    """The survey's invitations with their delegates, by name (a select to paginate); `shown` is
    "all", "answered", "waiting" or "reminded"."""
    query = (
        db.select(Invitation)
        .join(Delegate, Delegate.id == Invitation.delegate_id)
        .options(contains_eager(Invitation.delegate))
        .where(Invitation.survey_id == survey.id)
        .order_by(Delegate.name, Invitation.id)
    )
    if shown == "answered":
        query = query.where(Invitation.responded_at.is_not(None))
    elif shown == "waiting":
        query = query.where(Invitation.responded_at.is_(None))
    elif shown == "reminded":
        query = query.where(Invitation.reminded_at.is_not(None))
    return query


def invitation_totals(survey: Survey) -> tuple[int, int, int]:
    """How many were invited, reminded and answered, in one query."""
    invited, reminded, answered = db.session.execute(
        db.select(
            db.func.count(Invitation.id),
            db.func.count(Invitation.reminded_at),
            db.func.count(Invitation.responded_at),
        ).where(Invitation.survey_id == survey.id)
    ).one()
    return invited, reminded, answered


def free_text_answers(survey: Survey, question: Question) -> Select[Any]:
    """Every answer to one free-text question (newest first, or by text when anonymous), as a
    select to paginate."""
    return (
        db.select(Answer)
        .join(Response, Response.id == Answer.response_id)
        .options(contains_eager(Answer.response))
        .where(Answer.question_id == question.id)
        .where(Answer.text.is_not(None), Answer.text != "")
        .order_by(*text_order(survey))
    )
