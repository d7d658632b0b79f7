"""Survey results: counts, percentages, means, NPS and responses over time, aggregated in SQL.

Every figure comes from GROUP BY queries over the answers (`tallies`: one per kind of count, never
one per response), so a survey with 10,000 responses costs the same number of queries as one with
ten. Each question's kind (`kinds`) says which counts it needs and shapes them for the page: Python
never sees an individual response here. Breakdowns by the respondent's business are in
`breakdowns`, the figures' shapes in `figures`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from functools import cache

from sqlalchemy import Integer, cast, func

from chamber.core.dialects import on_postgresql
from chamber.core.times import utc_to_local
from chamber.events.models import AgendaItem
from chamber.extensions import db
from chamber.surveys.breakdowns import breakdown_groups, fill_breakdown
from chamber.surveys.figures import (
    BREAKDOWNS,
    DayCount,
    QuestionResult,
    SurveyResults,
    too_few_to_show,
)
from chamber.surveys.kinds import kind_of
from chamber.surveys.models import Invitation, Response, Survey
from chamber.surveys.tallies import Tally, tally
from chamber.surveys.tallies import text_order as text_order  # the free-text page orders by it

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
    if too_few_to_show(survey.anonymous, responded):
        # Counts only: no figure, free text, breakdown or day of answering (docs/survey-results.md).
        return SurveyResults(
            survey=survey,
            invited=invited,
            reminded=reminded,
            responded=responded,
            days=[],
            questions=results,
            withheld=True,
        )
    if results:
        _fill_figures(survey, results)
    shown = None
    if breakdown in BREAKDOWNS:
        shown = breakdown_groups(survey, breakdown)
        breakable = [r for r in results if kind_of(r.question).breakable]
        if breakable and not shown.hidden:
            fill_breakdown(survey, shown, breakable)
    return SurveyResults(
        survey=survey,
        invited=invited,
        reminded=reminded,
        responded=responded,
        days=responses_per_day(survey),
        questions=results,
        breakdown=shown,
    )


def withheld(survey: Survey) -> bool:
    """Whether the survey shows counts only for now (`figures.too_few_to_show`): one query."""
    if not survey.anonymous:
        return False
    responded = db.session.scalar(
        db.select(func.count(Response.id)).where(Response.survey_id == survey.id)
    )
    return too_few_to_show(survey.anonymous, responded or 0)


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
    if on_postgresql():
        return cast(func.floor(func.extract("epoch", column) / QUARTER_HOUR), Integer)
    return cast(func.strftime("%s", column), Integer) // QUARTER_HOUR  # integer division


def _fill_figures(survey: Survey, results: list[QuestionResult]) -> None:
    """Each question's figure, shaped by its kind from the tallies: one grouped query per tally
    for all the questions that need it, and the agenda only if a question rates its items."""
    wanted: dict[Tally, list[int]] = defaultdict(list)
    for result in results:
        for which in kind_of(result.question).tallies:
            wanted[which].append(result.question.id)
    found = tally(survey, wanted)
    agenda = cache(lambda: _agenda_items(survey))
    for result in results:
        kind_of(result.question).figure(result, found[result.question.id, None], agenda)


def _agenda_items(survey: Survey) -> list[AgendaItem]:
    return list(
        db.session.scalars(
            db.select(AgendaItem)
            .where(AgendaItem.event_id == survey.event_id)
            .order_by(AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)
        )
    )
