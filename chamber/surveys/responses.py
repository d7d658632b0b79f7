"""Answering a survey: read the posted answers against the questions (every rule checked before
anything is stored), then save them as the invitation's one response, editable until closing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from chamber.core.times import utcnow
from chamber.events.models import AgendaItem
from chamber.extensions import db
from chamber.members.models import Organisation
from chamber.registration.models import Booking, Delegate
from chamber.surveys.kinds import MAX_TEXT, AnswerValue, field_name, kind_of
from chamber.surveys.models import Answer, Invitation, Question, Response

# MAX_TEXT and AnswerValue are the kinds', kept here for the pages and tests that read them here.
__all__ = [
    "MAX_TEXT",
    "AnswerValue",
    "ReadAnswers",
    "answers_as_entered",
    "field_name",
    "read_answers",
    "response_for",
    "save_response",
]


@dataclass
class ReadAnswers:
    values: list[AnswerValue] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message for the summary
    beside: dict[str, str] = field(default_factory=dict)  # field name -> shorter, beside the field
    entered: dict[str, list[str]] = field(default_factory=dict)  # what to show again

    @property
    def ok(self) -> bool:
        return not self.errors


def read_answers(
    questions: Sequence[Question],
    agenda_items: Sequence[AgendaItem],
    form: MultiDict[str, str] | Mapping[str, str],
) -> ReadAnswers:
    """Check every answer, each by its question's kind; collect a message per field in error.
    Stores nothing."""
    if not isinstance(form, MultiDict):
        form = MultiDict(form)
    result = ReadAnswers()
    for question in questions:
        for reading in kind_of(question).read(question, form, agenda_items):
            result.entered[reading.name] = reading.entered
            if reading.refusal is not None:
                result.errors.setdefault(reading.name, reading.refusal.summary)
                result.beside.setdefault(reading.name, reading.refusal.beside)
            else:
                result.values.extend(reading.values)
    return result


def answers_as_entered(
    response: Response | None, questions: Sequence[Question]
) -> dict[str, list[str]]:
    """A saved response as the form's field values, to show it again for editing."""
    if response is None:
        return {}
    kinds = {q.id: q for q in questions}
    entered: dict[str, list[str]] = {}
    for answer in response.answers:
        question = kinds.get(answer.question_id)
        if question is None:
            continue
        name = f"q{question.id}" + (f"-{answer.agenda_item_id}" if answer.agenda_item_id else "")
        if answer.number is not None:
            entered[name] = [str(answer.number)]
        elif answer.choice is not None:
            entered.setdefault(name, []).append(answer.choice)
        elif answer.text is not None:
            entered[name] = [answer.text]
    return entered


def response_for(invitation: Invitation) -> Response | None:
    found: Response | None = db.session.scalar(
        db.select(Response).where(Response.invitation_id == invitation.id)
    )
    return found


def _snapshot(invitation: Invitation) -> tuple[Any, ...]:
    row = db.session.execute(
        db.select(Organisation.size_band, Organisation.sector, Organisation.is_member)
        .join(Booking, Booking.organisation_id == Organisation.id)
        .join(Delegate, Delegate.booking_id == Booking.id)
        .where(Delegate.id == invitation.delegate_id)
    ).first()
    return tuple(row) if row else (None, "", None)


def save_response(
    invitation: Invitation, values: Sequence[AnswerValue], now: datetime | None = None
) -> Response:
    """Store the answers as the invitation's response, replacing any earlier answers; flushes.

    The invitation's row is locked first (SELECT ... FOR UPDATE on PostgreSQL), so two saves of
    one response at once take turns: the second reads the answers the first left, and replaces
    them, instead of deleting answers already gone and leaving both sets behind.
    """
    now = now or utcnow()
    db.session.execute(
        db.select(Invitation)
        .where(Invitation.id == invitation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    response = response_for(invitation)
    if response is not None:
        db.session.expire(response)  # what this session read before the lock may be stale
    if response is None:
        size_band, sector, is_member = _snapshot(invitation)
        response = Response(
            survey_id=invitation.survey_id,
            invitation_id=invitation.id,
            submitted_at=now,
            updated_at=now,
            size_band=size_band,
            sector=sector or "",
            is_member=is_member,
        )
        db.session.add(response)
    else:
        response.updated_at = now
        response.answers.clear()
    response.answers.extend(
        Answer(
            question_id=value.question_id,
            agenda_item_id=value.agenda_item_id,
            number=value.number,
            choice=value.choice,
            text=value.text,
        )
        for value in values
    )
    if invitation.responded_at is None:
        invitation.responded_at = now
    db.session.flush()
    return response
