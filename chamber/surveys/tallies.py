"""The grouped counts a survey's results are made of. Each tally is one GROUP BY query over
`survey_answer` for every question whose kind asks for it (never one per response, nor one per
question), optionally grouped by a respondent column too, for a breakdown. A question kind
(`kinds`) then shapes its own counts into the figures the page shows."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Select, func
from sqlalchemy.orm import QueryableAttribute

from chamber.extensions import db
from chamber.surveys.figures import FREE_TEXT_SHOWN, TextAnswer
from chamber.surveys.models import Answer, Response, Survey


class Tally(enum.Enum):
    respondents = "respondents"  # COUNT(DISTINCT response_id) per question
    choices = "choices"  # COUNT(*) per question and option picked
    numbers = "numbers"  # COUNT(*) per question, agenda item and value
    texts = "texts"  # the first FREE_TEXT_SHOWN texts per question, in `text_order`


@dataclass
class Tallied:
    """One question's counts (for one group of respondents, in a breakdown)."""

    respondents: int = 0
    choices: dict[str, int] = field(default_factory=dict)
    numbers: dict[int | None, dict[int, int]] = field(default_factory=dict)  # item -> value -> n
    texts: list[TextAnswer] = field(default_factory=list)
    texts_held: int = 0  # the texts still held (retention blanks them; the answer still counts)

    def merged_numbers(self) -> dict[int, int]:
        """Counts per value over every agenda item (a rating or NPS question has just one)."""
        merged: dict[int, int] = defaultdict(int)
        for counts in self.numbers.values():
            for value, count in counts.items():
                merged[value] += count
        return dict(merged)


def text_order(survey: Survey) -> tuple[Any, ...]:
    """How free-text answers are listed: a named survey's newest first; an anonymous survey's by
    their text, so neither the order nor which answers are shown says who answered when."""
    if survey.anonymous:
        return (Answer.text, Answer.id)
    return (Response.submitted_at.desc(), Answer.id.desc())


Key = tuple[int, object]  # (question id, the label of the group; None without a breakdown)
Found = dict[Key, Tallied]
By = QueryableAttribute[Any] | None  # the Response column a breakdown groups by
Grouping = Callable[[object], object]  # a raw value of that column -> the group it is shown in


def tally(
    survey: Survey,
    wanted: Mapping[Tally, Sequence[int]],
    *,
    by: By = None,
    group: Grouping = lambda raw: None,
) -> Found:
    """Run each wanted tally once over its questions' ids. `by` is a Response column to group by
    as well, and `group` maps its raw values to the group they are shown in (several raw values
    may share a group: their counts add up)."""
    found: Found = defaultdict(Tallied)
    for which, ids in wanted.items():
        if ids:
            _QUERIES[which](survey, list(ids), by, group, found)
    return found


def _grouped(columns: list[Any], aggregate: Any, ids: list[int], by: By) -> Select[Any]:
    """SELECT question_id [, by], columns..., aggregate ... GROUP BY all but the aggregate."""
    keys = [Answer.question_id, *([by] if by is not None else []), *columns]
    query: Select[Any] = db.select(*keys, aggregate)
    query = query.where(Answer.question_id.in_(ids)).group_by(*keys)
    if by is not None:
        query = query.join(Response, Response.id == Answer.response_id)
    return query


def _split(row: Row[Any], by: By) -> tuple[int, object, tuple[Any, ...]]:
    """(question id, raw group value or None, the rest) of a grouped row."""
    if by is None:
        return row[0], None, tuple(row[1:])
    return row[0], row[1], tuple(row[2:])


def _respondents(survey: Survey, ids: list[int], by: By, group: Grouping, found: Found) -> None:
    query = _grouped([], func.count(func.distinct(Answer.response_id)), ids, by)
    for row in db.session.execute(query):
        question_id, raw, (count,) = _split(row, by)
        found[question_id, group(raw)].respondents += count


def _choices(survey: Survey, ids: list[int], by: By, group: Grouping, found: Found) -> None:
    query = _grouped([Answer.choice], func.count(), ids, by).where(Answer.choice.is_not(None))
    for row in db.session.execute(query):
        question_id, raw, (choice, count) = _split(row, by)
        choices = found[question_id, group(raw)].choices
        choices[choice] = choices.get(choice, 0) + count


def _numbers(survey: Survey, ids: list[int], by: By, group: Grouping, found: Found) -> None:
    query = _grouped([Answer.agenda_item_id, Answer.number], func.count(), ids, by).where(
        Answer.number.is_not(None)
    )
    for row in db.session.execute(query):
        question_id, raw, (item_id, number, count) = _split(row, by)
        counts = found[question_id, group(raw)].numbers.setdefault(item_id, {})
        counts[number] = counts.get(number, 0) + count


def _texts(survey: Survey, ids: list[int], by: By, group: Grouping, found: Found) -> None:
    """The first FREE_TEXT_SHOWN answers (in `text_order`) of every free-text question, and how
    many texts each still holds, in one query; an anonymous survey's without their dates. Never
    broken down."""
    ranked = (
        db.select(
            Answer.question_id,
            Answer.text,
            Response.submitted_at,
            func.row_number()
            .over(partition_by=Answer.question_id, order_by=text_order(survey))
            .label("rank"),
            func.count().over(partition_by=Answer.question_id).label("held"),
        )
        .join(Response, Response.id == Answer.response_id)
        .where(Answer.question_id.in_(ids))
        .where(Answer.text.is_not(None), Answer.text != "")
        .subquery()
    )
    rows = db.session.execute(
        db.select(ranked.c.question_id, ranked.c.text, ranked.c.submitted_at, ranked.c.held)
        .where(ranked.c.rank <= FREE_TEXT_SHOWN)
        .order_by(ranked.c.question_id, ranked.c.rank)
    )
    for question_id, text, submitted_at, held in rows:
        tallied = found[question_id, None]
        tallied.texts.append(TextAnswer(text, None if survey.anonymous else submitted_at))
        tallied.texts_held = held


_QUERIES: dict[Tally, Callable[[Survey, list[int], By, Grouping, Found], None]] = {
    Tally.respondents: _respondents,
    Tally.choices: _choices,
    Tally.numbers: _numbers,
    Tally.texts: _texts,
}
