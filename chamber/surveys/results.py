"""Survey results: counts, percentages, means, NPS and responses over time, aggregated in SQL.

Every figure comes from GROUP BY queries over the answers (one per kind of figure, never one per
response), so a survey with 10,000 responses costs the same number of queries as one with ten.
Python only shapes the grouped rows for the page: it never sees an individual response here.
Breakdowns by the respondent's business are in `breakdowns`, the figures' shapes in `figures`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Integer, cast, func

from chamber.core.times import utc_to_local
from chamber.events.models import AgendaItem
from chamber.extensions import db
from chamber.surveys.breakdowns import breakdown_groups, fill_breakdown
from chamber.surveys.figures import (
    BREAKDOWNS,
    CHOICE_KINDS,
    COUNTED_KINDS,
    FREE_TEXT_SHOWN,
    NPS_VALUES,
    NUMBER_KINDS,
    RATING_VALUES,
    AgendaItemResult,
    DayCount,
    Distribution,
    QuestionResult,
    SurveyResults,
    TextAnswer,
    shares_of,
)
from chamber.surveys.models import (
    RATED_AGENDA_KINDS,
    Answer,
    Invitation,
    QuestionKind,
    Response,
    Survey,
)

QUARTER_HOUR = 900  # seconds; every time zone's offset from UTC is a multiple of it

# --- building the results ------------------------------------------------------------------------


def survey_results(
    survey: Survey, *, breakdown: str | None = None, question_ids: set[int] | None = None
) -> SurveyResults:
    """Everything the results page shows; `breakdown` is a key of BREAKDOWNS, `question_ids`
    limits the questions shown (and broken down)."""
    questions = [q for q in survey.questions if question_ids is None or q.id in question_ids]
    invited, reminded, responded = response_counts(survey)
    results = [
        QuestionResult(question=q, number=survey.questions.index(q) + 1, answered=0)
        for q in questions
    ]
    by_id = {r.question.id: r for r in results}
    ids = list(by_id)
    if ids:
        _fill_answered(by_id, [r for r in results if r.kind in COUNTED_KINDS])
        _fill_choices(by_id, [r for r in results if r.kind in CHOICE_KINDS])
        _fill_numbers(survey, by_id, [r for r in results if r.kind in NUMBER_KINDS])
        _fill_texts(survey, by_id, [r for r in results if r.kind is QuestionKind.free_text])
    shown = None
    if breakdown in BREAKDOWNS:
        shown = breakdown_groups(survey, breakdown)
        breakable = [r for r in results if r.can_break_down]
        if breakable and not shown.hidden:
            fill_breakdown(shown, breakable)
    return SurveyResults(
        survey=survey,
        invited=invited,
        reminded=reminded,
        responded=responded,
        days=responses_per_day(survey),
        questions=results,
        breakdown=shown,
    )


def response_counts(survey: Survey) -> tuple[int, int, int]:
    """(invited, reminded, responded) in one query."""
    responded = (
        db.select(func.count(Response.id)).where(Response.survey_id == survey.id).scalar_subquery()
    )
    row = db.session.execute(
        db.select(
            func.count(Invitation.id),
            func.count(Invitation.reminded_at),
            responded,
        ).where(Invitation.survey_id == survey.id)
    ).one()
    return row[0], row[1], row[2]


def responses_per_day(survey: Survey) -> list[DayCount]:
    """Responses per calendar day in the event's zone, every day from the first to the last.

    SQL counts responses per quarter of an hour in UTC (a bucket never straddles a local
    midnight, since zone offsets are whole quarter hours); Python moves each bucket to its local
    day. The rows grow with the days the survey was open, never with the responses.
    """
    bucket = _quarter_hour_bucket(Response.submitted_at)
    rows = db.session.execute(
        db.select(bucket.label("bucket"), func.count(Response.id))
        .where(Response.survey_id == survey.id)
        .group_by("bucket")
    ).all()
    zone_name = survey.event.timezone if survey.event else "UTC"
    per_day: dict[date, int] = defaultdict(int)
    for value, count in rows:
        moment = datetime.fromtimestamp(int(value) * QUARTER_HOUR, UTC)
        per_day[utc_to_local(moment, zone_name).date()] += count
    if not per_day:
        return []
    first, last = min(per_day), max(per_day)
    span = (last - first).days
    days = [first + timedelta(days=n) for n in range(span + 1)] if span <= 62 else sorted(per_day)
    busiest = max(per_day.values())
    return [DayCount(day, per_day.get(day, 0), busiest) for day in days]


def _quarter_hour_bucket(column):
    """The number of whole quarter hours since 1970 (UTC) of a stored (naive UTC) time."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / QUARTER_HOUR), Integer)
    return cast(func.strftime("%s", column), Integer) // QUARTER_HOUR  # integer division


def _fill_answered(by_id: dict[int, QuestionResult], results: list[QuestionResult]) -> None:
    """Respondents who answered, for the kinds whose answers are not one row per respondent
    (the others add up their counts)."""
    if not results:
        return
    rows = db.session.execute(
        db.select(Answer.question_id, func.count(func.distinct(Answer.response_id)))
        .where(Answer.question_id.in_([r.question.id for r in results]))
        .group_by(Answer.question_id)
    )
    for question_id, count in rows:
        by_id[question_id].answered = count


def _fill_choices(by_id: dict[int, QuestionResult], results: list[QuestionResult]) -> None:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if results:
        rows = db.session.execute(
            db.select(Answer.question_id, Answer.choice, func.count())
            .where(Answer.question_id.in_([r.question.id for r in results]))
            .where(Answer.choice.is_not(None))
            .group_by(Answer.question_id, Answer.choice)
        )
        for question_id, choice, count in rows:
            counts[question_id][choice] = count
    for result in results:
        found = counts[result.question.id]
        if result.kind is not QuestionKind.multiple_choice:  # one row per respondent
            result.answered = sum(found.values())
        result.shares = shares_of(result.question.choice_list, found, result.answered)


def _fill_numbers(
    survey: Survey, by_id: dict[int, QuestionResult], results: list[QuestionResult]
) -> None:
    if not results:
        return
    rows = db.session.execute(
        db.select(Answer.question_id, Answer.agenda_item_id, Answer.number, func.count())
        .where(Answer.question_id.in_([r.question.id for r in results]))
        .where(Answer.number.is_not(None))
        .group_by(Answer.question_id, Answer.agenda_item_id, Answer.number)
    ).all()
    per_item: dict[int, dict[int | None, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for question_id, item_id, number, count in rows:
        per_item[question_id][item_id][number] = count
    agenda = (
        _agenda_items(survey) if any(r.kind is QuestionKind.agenda_rating for r in results) else []
    )
    for result in results:
        found = per_item[result.question.id]
        if result.kind is QuestionKind.agenda_rating:
            result.items = _agenda_results(agenda, found)
            continue
        values = NPS_VALUES if result.kind is QuestionKind.nps else RATING_VALUES
        merged: dict[int, int] = defaultdict(int)
        for counts in found.values():
            for value, count in counts.items():
                merged[value] += count
        result.distribution = Distribution(values, dict(merged))
        result.shares = result.distribution.shares
        result.answered = result.distribution.answered


def _agenda_items(survey: Survey) -> list[AgendaItem]:
    return list(
        db.session.scalars(
            db.select(AgendaItem)
            .where(AgendaItem.event_id == survey.event_id)
            .order_by(AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)
        )
    )


def _agenda_results(
    agenda: list[AgendaItem], found: dict[int | None, dict[int, int]]
) -> list[AgendaItemResult]:
    """The talks and panels of the event, and any other item someone rated."""
    results = []
    for item in agenda:
        if item.kind in RATED_AGENDA_KINDS or item.id in found:
            distribution = Distribution(RATING_VALUES, dict(found.get(item.id, {})))
            results.append(AgendaItemResult(item.title, item.starts_at, distribution))
    known = {item.id for item in agenda}
    for item_id, counts in found.items():
        if item_id not in known:  # an item since deleted from the agenda
            results.append(
                AgendaItemResult(
                    "(removed from the agenda)", None, Distribution(RATING_VALUES, counts)
                )
            )
    return results


def text_order(survey: Survey) -> tuple:
    """How free-text answers are listed: a named survey's newest first; an anonymous survey's by
    their text, so neither the order nor which answers are shown says who answered when."""
    if survey.anonymous:
        return (Answer.text, Answer.id)
    return (Response.submitted_at.desc(), Answer.id.desc())


def _fill_texts(
    survey: Survey, by_id: dict[int, QuestionResult], results: list[QuestionResult]
) -> None:
    """The first FREE_TEXT_SHOWN answers (in `text_order`) of every free-text question, in one
    query; an anonymous survey's without their dates."""
    if not results:
        return
    ranked = (
        db.select(
            Answer.question_id,
            Answer.text,
            Response.submitted_at,
            func.row_number()
            .over(partition_by=Answer.question_id, order_by=text_order(survey))
            .label("rank"),
        )
        .join(Response, Response.id == Answer.response_id)
        .where(Answer.question_id.in_([r.question.id for r in results]))
        .where(Answer.text.is_not(None), Answer.text != "")
        .subquery()
    )
    rows = db.session.execute(
        db.select(ranked.c.question_id, ranked.c.text, ranked.c.submitted_at)
        .where(ranked.c.rank <= FREE_TEXT_SHOWN)
        .order_by(ranked.c.question_id, ranked.c.rank)
    )
    for question_id, text, submitted_at in rows:
        by_id[question_id].texts.append(
            TextAnswer(text, None if survey.anonymous else submitted_at)
        )
