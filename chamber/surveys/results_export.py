"""A survey's raw responses as CSV: one row per response, one column per question (one per agenda
item for "rate each agenda item"), with the respondent's business size, sector and membership.

Named surveys add the delegate's name and email and the time of the answer. Anonymous surveys
leave all three out, list the rows in an order that says nothing about who answered first, and
show a size band, sector or membership shared by fewer than five respondents as "Other", as the
results page does; with fewer than five responses in all, they have no rows yet.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

from sqlalchemy import func

from chamber.core.csvexport import csv_bytes
from chamber.core.times import utc_to_local
from chamber.events.models import AgendaItem
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration.models import Delegate
from chamber.surveys.figures import MIN_GROUP, OTHER_GROUP
from chamber.surveys.kinds import Column, kind_of
from chamber.surveys.models import (
    RATED_AGENDA_KINDS,
    Answer,
    Invitation,
    Question,
    Response,
    Survey,
)
from chamber.surveys.results import withheld


def _columns(survey: Survey) -> list[Column]:
    """Every answer column, in question order, as each question's kind lays them out; the
    agenda's rateable items are read (once) only if a question rates them."""
    rated_items = cache(lambda: _rated_items(survey))
    return [
        column
        for number, question in enumerate(survey.questions, start=1)
        for column in kind_of(question).columns(question, number, rated_items)
    ]


def _rated_items(survey: Survey) -> list[tuple[int, str]]:
    """The event's rateable items, and any other item someone rated."""
    rated = (
        db.select(Answer.agenda_item_id)
        .join(Question, Question.id == Answer.question_id)
        .where(Question.survey_id == survey.id, Answer.agenda_item_id.is_not(None))
    )
    rows = db.session.execute(
        db.select(AgendaItem.id, AgendaItem.title)
        .where(AgendaItem.event_id == survey.event_id)
        .where(AgendaItem.kind.in_(RATED_AGENDA_KINDS) | AgendaItem.id.in_(rated))
        .order_by(AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)
    )
    return [(item_id, title) for item_id, title in rows]


def _rare_values(survey: Survey) -> dict[str, set[object]]:
    """Per respondent column, the values fewer than MIN_GROUP respondents share."""
    rare: dict[str, set[object]] = {}
    for name, column in (
        ("size_band", Response.size_band),
        ("sector", Response.sector),
        ("is_member", Response.is_member),
    ):
        rows = db.session.execute(
            db.select(column, func.count(Response.id))
            .where(Response.survey_id == survey.id)
            .group_by(column)
        )
        rare[name] = {value for value, count in rows if count < MIN_GROUP}
    return rare


def _member_text(value: bool | None) -> str:
    return {True: "Member", False: "Not a member"}.get(value, "")


def responses_csv(survey: Survey) -> bytes:
    """The whole file. Two queries (responses, answers), whatever the number of responses. An
    anonymous survey with fewer than five responses gives its headings and no rows, as its
    results page shows no answers (`results.withheld`)."""
    columns = _columns(survey)
    if withheld(survey):
        headings = ["Business size", "Sector", "Chamber member"]
        return csv_bytes(headings + [column.heading for column in columns], [])
    position = {(c.question_id, c.agenda_item_id): n for n, c in enumerate(columns)}
    kinds = {q.id: kind_of(q) for q in survey.questions}
    cells: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    answers = db.session.execute(
        db.select(
            Answer.response_id,
            Answer.question_id,
            Answer.agenda_item_id,
            Answer.number,
            Answer.choice,
            Answer.text,
        )
        .join(Response, Response.id == Answer.response_id)
        .where(Response.survey_id == survey.id)
        .order_by(Answer.response_id, Answer.id)
    )
    for response_id, question_id, item_id, number, choice, text in answers:
        kind = kinds.get(question_id)
        column = position.get((question_id, kind.column_item(item_id))) if kind else None
        if column is None:
            continue
        value = number if number is not None else choice if choice is not None else text
        cells[response_id][column].append(value)

    def answer_cells(response_id: int) -> list[object]:
        found = cells.get(response_id, {})
        return [column.write(found.get(n, [])) for n, column in enumerate(columns)]

    respondents = db.session.execute(
        db.select(
            Response.id,
            Response.submitted_at,
            Response.size_band,
            Response.sector,
            Response.is_member,
            Delegate.name,
            Invitation.email,
        )
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Delegate, Delegate.id == Invitation.delegate_id)
        .where(Response.survey_id == survey.id)
        .order_by(Response.submitted_at, Response.id)
    )
    questions = [column.heading for column in columns]
    business = ["Business size", "Sector", "Chamber member"]
    if survey.anonymous:
        rare = _rare_values(survey)
        rows = []
        for response_id, _, band, sector, member, _, _ in respondents:
            rows.append(
                [
                    OTHER_GROUP if band in rare["size_band"] else _band_text(band),
                    OTHER_GROUP if sector in rare["sector"] else sector,
                    OTHER_GROUP if member in rare["is_member"] else _member_text(member),
                    *answer_cells(response_id),
                ]
            )
        rows.sort(key=lambda row: [str(cell) for cell in row])  # order reveals nothing
        return csv_bytes(business + questions, rows)
    zone = survey.event.timezone if survey.event else "UTC"
    header = ["Submitted", "Name", "Email", *business, *questions]
    rows = (
        [
            f"{utc_to_local(submitted, zone):%Y-%m-%d %H:%M}",
            name,
            email,
            _band_text(band),
            sector,
            _member_text(member),
            *answer_cells(response_id),
        ]
        for response_id, submitted, band, sector, member, name, email in respondents
    )
    return csv_bytes(header, rows)


def _band_text(band: SizeBand | None) -> str:
    return band.short_label if band else ""
