"""Shared pieces for the privacy tests: a finished seminar with delegates, a survey answered by
them, and every figure the pages show about it, captured so that "before" and "after" compare."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, Text, inspect

from chamber.core.times import utcnow
from chamber.dashboard.queries import event_figures
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.members.models import SizeBand
from chamber.registration.models import Delegate, DelegateStatus
from chamber.surveys import responses
from chamber.surveys.figures import BREAKDOWNS
from chamber.surveys.models import Invitation, QuestionKind, Survey
from chamber.surveys.results import survey_results
from tests.surveys_support import book, finished_seminar, sent_survey

# (local part, size band, sector, member, came, needs)
PEOPLE = [
    ("amara.okafor", SizeBand.micro, "Retail", False, True, "Wheelchair access"),
    ("ben.hughes", SizeBand.small, "IT", True, True, ""),
    ("chloe.nash", SizeBand.small, "IT", True, True, "Vegetarian"),
    ("dev.patel", SizeBand.medium, "Manufacturing", False, True, ""),
    ("ella.frost", SizeBand.large, "Finance", True, True, "Hearing loop"),
    ("finn.oduya", SizeBand.micro, "Retail", False, False, ""),
]
DOMAIN = "firm.example"


def seminar_with_survey(make_event, make_item, *, days_ago: int = 3, anonymous: bool = True):
    """A seminar that ended `days_ago` days ago, six delegates (five came), a survey sent to
    those who came and answered by all of them (every kind of question, free text too), and the
    emails all sent."""
    event = finished_seminar(make_event, make_item, days_ago=days_ago, pack=False)
    delegates = []
    for n, (local, band, sector, member, came, _needs) in enumerate(PEOPLE):
        delegate = book(
            event,
            f"{local}@{DOMAIN}",
            business=f"{sector} business {n}",
            name=local.replace(".", " ").title(),
            size_band=band,
            sector=sector,
            member=member,
            checked_in=came,
        )
        delegates.append(delegate)
    for delegate, person in zip(delegates, PEOPLE, strict=True):
        delegate.needs = person[-1]
    db.session.commit()
    survey = sent_survey(event, anonymous=anonymous)
    for invitation in db.session.scalars(
        db.select(Invitation).where(Invitation.survey_id == survey.id).order_by(Invitation.id)
    ):
        responses.save_response(invitation, answers_for(survey, invitation.email))
    mark_all_sent()
    db.session.commit()
    return event, survey, delegates


def answers_for(survey: Survey, email: str) -> list[responses.AnswerValue]:
    values = []
    seed = len(email)
    for question in survey.questions:
        choices = question.choice_list
        if question.kind == QuestionKind.rating:
            values.append(responses.AnswerValue(question.id, number=1 + seed % 5))
        elif question.kind == QuestionKind.nps:
            values.append(responses.AnswerValue(question.id, number=seed % 11))
        elif question.kind in (QuestionKind.single_choice, QuestionKind.yes_no) and choices:
            values.append(responses.AnswerValue(question.id, choice=choices[seed % len(choices)]))
        elif question.kind == QuestionKind.multiple_choice and choices:
            for choice in choices[: 1 + seed % 2]:
                values.append(responses.AnswerValue(question.id, choice=choice))
        elif question.kind == QuestionKind.free_text:
            values.append(
                responses.AnswerValue(question.id, text=f"We had a phishing scare ({seed})")
            )
    return values


def mark_all_sent() -> None:
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.status == MessageStatus.pending)
        .values(status=MessageStatus.sent, sent_at=utcnow())
    )


def _plain(value: Any) -> Any:
    """Dataclasses as dicts and rows as (table, id): comparable however often they are loaded."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, db.Model):
        return (type(value).__name__, inspect(value).identity)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum | str | int | float | bool | date | datetime) or value is None:
        return value
    return repr(value)


def figures(event: Event, survey: Survey, now: datetime) -> dict[str, Any]:
    """Every figure staff see about the event and its survey: the dashboard's, the tallies of
    places by status and attendance, and the survey's results with each breakdown."""
    db.session.expire_all()
    dashboard = event_figures([db.session.get(Event, event.id)], now)[0]
    shown = {
        name: getattr(dashboard, name)
        for name in ("confirmed", "waiting", "checked_in", "businesses", "member_businesses")
    }
    shown["by_day"] = list(dashboard.by_day)
    tallies = db.session.execute(
        db.select(Delegate.status, Delegate.checked_in_at.is_not(None), db.func.count())
        .where(Delegate.event_id == event.id)
        .group_by(Delegate.status, Delegate.checked_in_at.is_not(None))
    ).all()
    shown["tallies"] = sorted((str(s), bool(c), n) for s, c, n in tallies)
    survey = db.session.get(Survey, survey.id)
    for breakdown in (None, *BREAKDOWNS):
        results = survey_results(survey, breakdown=breakdown)
        shown[f"survey:{breakdown}"] = _plain(
            {
                "invited": results.invited,
                "reminded": results.reminded,
                "responded": results.responded,
                "days": results.days,
                "questions": [
                    {k: v for k, v in dataclasses.asdict(q).items() if k != "question"}
                    | {"question": q.question.id}
                    for q in results.questions
                ],
                "breakdown": results.breakdown,
            }
        )
    return shown


def without_free_text(shown: dict[str, Any]) -> dict[str, Any]:
    """The figures with the free-text answers' words left out, and how many are still held (the
    count of those who answered stays)."""
    copy = dict(shown)
    for key, value in shown.items():
        if key.startswith("survey:"):
            questions = [q | {"texts": None, "texts_held": None} for q in value["questions"]]
            copy[key] = value | {"questions": questions}
    return copy


def rows_holding(text: str) -> list[tuple[str, str, int]]:
    """Every (table, column, rows) whose text (or JSON, or bytes) holds `text`, case-insensitive:
    every table of the schema, every column that can hold it."""
    found = []
    needle = text.lower()
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            kind = column.type
            if isinstance(kind, String | Text) or kind.__class__.__name__ in ("JSON", "Enum"):
                expression = db.func.lower(db.cast(column, String))
            elif kind.__class__.__name__ == "LargeBinary":
                rows = db.session.execute(db.select(column).where(column.is_not(None))).scalars()
                hits = sum(1 for value in rows if needle.encode() in bytes(value).lower())
                if hits:
                    found.append((table.name, column.name, hits))
                continue
            else:
                continue
            hits = db.session.scalar(
                db.select(db.func.count())
                .select_from(table)
                .where(expression.contains(needle, autoescape=True))
            )
            if hits:
                found.append((table.name, column.name, hits))
    return found


def delegate_count(event: Event, status: DelegateStatus) -> int:
    return db.session.scalar(
        db.select(db.func.count())
        .select_from(Delegate)
        .where(Delegate.event_id == event.id, Delegate.status == status)
    )
