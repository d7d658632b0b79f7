"""Answering a survey: read the posted answers against the questions (every rule checked before
anything is stored), then save them as the invitation's one response, editable until closing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from werkzeug.datastructures import MultiDict

from chamber.core.times import utcnow
from chamber.events.models import AgendaItem
from chamber.extensions import db
from chamber.members.models import Organisation
from chamber.registration.models import Booking, Delegate
from chamber.surveys.models import Answer, Invitation, Question, QuestionKind, Response

MAX_TEXT = 2000
SCALES = {
    QuestionKind.rating: (1, 5),
    QuestionKind.nps: (0, 10),
    QuestionKind.agenda_rating: (1, 5),
}
SINGLE_CHOICE_KINDS = (QuestionKind.single_choice, QuestionKind.yes_no)


def field_name(question: Question, item: AgendaItem | None = None) -> str:
    return f"q{question.id}" if item is None else f"q{question.id}-{item.id}"


@dataclass(frozen=True)
class AnswerValue:
    question_id: int
    number: int | None = None
    choice: str | None = None
    text: str | None = None
    agenda_item_id: int | None = None


@dataclass
class ReadAnswers:
    values: list[AnswerValue] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message for the summary
    beside: dict[str, str] = field(default_factory=dict)  # field name -> shorter, beside the field
    entered: dict[str, list[str]] = field(default_factory=dict)  # what to show again

    @property
    def ok(self) -> bool:
        return not self.errors


def _has_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 and ch not in "\t\r\n" or ord(ch) == 127 for ch in value)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _read_number(raw: str, low: int, high: int) -> int | None:
    raw = raw.strip()
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 3:
        return None
    number = int(raw)
    return number if low <= number <= high else None


def read_answers(
    questions: Sequence[Question],
    agenda_items: Sequence[AgendaItem],
    form: MultiDict | Mapping[str, str],
) -> ReadAnswers:
    """Check every answer; collect a message per field in error. Stores nothing."""
    if not isinstance(form, MultiDict):
        form = MultiDict(form)
    result = ReadAnswers()

    def error(name: str, message: str, beside: str) -> None:
        """`message` for the summary (it names the question), `beside` for beside the field."""
        if name not in result.errors:
            result.errors[name] = message
            result.beside[name] = beside

    for question in questions:
        name = field_name(question)
        label = f"“{_short(question.text)}”"
        if question.kind in (QuestionKind.rating, QuestionKind.nps):
            raw = form.get(name, "")
            result.entered[name] = [raw]
            if raw.strip() == "":
                if question.required:
                    error(name, f"Select an answer to {label}.", "Select an answer.")
                continue
            low, high = SCALES[question.kind]
            number = _read_number(raw, low, high)
            if number is None:
                error(
                    name,
                    f"Choose a number from {low} to {high} for {label}.",
                    f"Choose a number from {low} to {high}.",
                )
                continue
            result.values.append(AnswerValue(question.id, number=number))
        elif question.kind == QuestionKind.agenda_rating:
            low, high = SCALES[question.kind]
            for item in agenda_items:
                item_name = field_name(question, item)
                raw = form.get(item_name, "")
                result.entered[item_name] = [raw]
                if raw.strip() == "":
                    if question.required:
                        error(
                            item_name,
                            f"Rate “{_short(item.title)}” from {low} to {high}.",
                            f"Rate this session from {low} to {high}.",
                        )
                    continue
                number = _read_number(raw, low, high)
                if number is None:
                    error(
                        item_name,
                        f"Choose a number from {low} to {high} for “{_short(item.title)}”.",
                        f"Choose a number from {low} to {high}.",
                    )
                    continue
                result.values.append(
                    AnswerValue(question.id, number=number, agenda_item_id=item.id)
                )
        elif question.kind in SINGLE_CHOICE_KINDS:
            raw = form.get(name, "")
            result.entered[name] = [raw]
            if raw == "":
                if question.required:
                    error(name, f"Select an answer to {label}.", "Select an answer.")
                continue
            if raw not in question.choice_list:
                error(
                    name,
                    f"Choose one of the options listed for {label}.",
                    "Choose one of the options listed.",
                )
                continue
            result.values.append(AnswerValue(question.id, choice=raw))
        elif question.kind == QuestionKind.multiple_choice:
            picked = list(dict.fromkeys(form.getlist(name)))
            result.entered[name] = picked
            if not picked:
                if question.required:
                    error(
                        name,
                        f"Select at least one answer to {label}.",
                        "Select at least one answer.",
                    )
                continue
            options = question.choice_list
            if any(choice not in options for choice in picked):
                error(
                    name,
                    f"Choose only from the options listed for {label}.",
                    "Choose only from the options listed.",
                )
                continue
            result.values.extend(
                AnswerValue(question.id, choice=choice)
                for choice in sorted(picked, key=options.index)
            )
        elif question.kind == QuestionKind.free_text:
            raw = form.get(name, "")
            text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
            result.entered[name] = [raw]
            if _has_control_characters(text):
                error(
                    name,
                    f"Your answer to {label} contains a character that is not allowed.",
                    "Your answer contains a character that is not allowed.",
                )
                continue
            if len(text) > MAX_TEXT:
                error(
                    name,
                    f"Your answer to {label} must be {MAX_TEXT:,} characters or fewer "
                    f"(it has {len(text):,}).",
                    f"Your answer must be {MAX_TEXT:,} characters or fewer (it has {len(text):,}).",
                )
                continue
            if not text:
                if question.required:
                    error(name, f"Enter an answer to {label}.", "Enter an answer.")
                continue
            result.values.append(AnswerValue(question.id, text=text))
    return result


def answers_as_entered(response: Response | None, questions: Sequence[Question]) -> dict:
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
    return db.session.scalar(db.select(Response).where(Response.invitation_id == invitation.id))


def _snapshot(invitation: Invitation) -> tuple:
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
