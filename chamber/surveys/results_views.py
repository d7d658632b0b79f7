"""Staff pages for a survey's results (organisers and admins): the figures, charts and breakdowns,
and the raw responses as CSV."""

from __future__ import annotations

import re

from flask import Response as HttpResponse
from flask import flash, redirect, render_template, request, url_for

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, staff_blueprint
from chamber.core.pagination import paginate
from chamber.extensions import db
from chamber.surveys import queries
from chamber.surveys.figures import BREAKDOWNS, FREE_TEXT_SHOWN, MIN_GROUP, OTHER_GROUP
from chamber.surveys.models import Question, QuestionKind, Survey
from chamber.surveys.results import survey_results, withheld
from chamber.surveys.results_export import responses_csv

bp = staff_blueprint("survey_results", __name__, roles=ORGANISERS, url_prefix="/staff/surveys")

MAX_ARG_SHOWN = 40  # characters of a bad query value repeated back in the notice
ID_PATTERN = re.compile(r"[0-9]{1,10}")  # ASCII digits only: int() refuses "²"


@bp.get("/<int:survey_id>/results")
def show(survey_id: int):
    survey = db.get_or_404(Survey, survey_id)
    notices = []
    breakdown = request.args.get("breakdown", "").strip()
    if breakdown and breakdown not in BREAKDOWNS:
        notices.append(
            f"There is no breakdown called “{breakdown[:MAX_ARG_SHOWN]}”, so none is shown. "
            "Choose one from the list below."
        )
        breakdown = ""
    focus = _question_or_none(survey, request.args.get("question", "").strip(), notices)
    results = survey_results(
        survey, breakdown=breakdown or None, question_ids={focus.id} if focus else None
    )
    texts = None
    if focus is not None and focus.kind is QuestionKind.free_text and not results.withheld:
        texts = paginate(queries.free_text_answers(survey, focus), per_page=FREE_TEXT_SHOWN)
    return render_template(
        "surveys/results.html",
        survey=survey,
        event=survey.event,
        results=results,
        breakdown=breakdown,
        breakdowns=BREAKDOWNS,
        focus=focus,
        texts=texts,
        notices=notices,
        min_group=MIN_GROUP,
        other_group=OTHER_GROUP,
        free_text_shown=FREE_TEXT_SHOWN,
    )


@bp.get("/<int:survey_id>/results.csv")
def export(survey_id: int):
    survey = db.get_or_404(Survey, survey_id)
    if withheld(survey):
        flash(
            f"This survey is anonymous and fewer than {MIN_GROUP} people have answered, so its "
            "responses cannot be downloaded yet.",
            "error",
        )
        return redirect(url_for(".show", survey_id=survey.id))
    slug = survey.event.slug if survey.event else f"survey-{survey.id}"
    record("exported", kind="survey", object_id=survey.id, detail="survey responses CSV")
    return HttpResponse(
        responses_csv(survey),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug}-survey-responses.csv"'},
    )


def _question_or_none(survey: Survey, value: str, notices: list[str]) -> Question | None:
    """The survey's question named by `?question=`, or None (with a notice for a bad value)."""
    if not value:
        return None
    wanted = int(value) if ID_PATTERN.fullmatch(value) else None
    found = next((q for q in survey.questions if q.id == wanted), None)
    if found is None:
        notices.append(
            f"This survey has no question “{value[:MAX_ARG_SHOWN]}”, so every question is shown."
        )
    return found
