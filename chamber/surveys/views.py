"""The public survey page `/s/<token>`: no login, one response per invitation, editable until the
survey closes. A wrong or tampered token is a plain 404."""

from __future__ import annotations

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from chamber.core import transactions
from chamber.resources.attachments import has_published_resources
from chamber.surveys import dispatch, responses
from chamber.surveys.models import Invitation, QuestionKind, Survey
from chamber.surveys.template import rated_agenda_items

bp = Blueprint("surveys", __name__)


def _invitation_or_404(token: str) -> Invitation:
    invitation = dispatch.invitation_for_token(token)
    if invitation is None:
        abort(404)
    return invitation


def _private(body, status: int = 200):
    """A page reached through a secret link: never cached, and the link never sent to another site
    as a Referer. `same-origin`, not `no-referrer`: with `no-referrer` the browser posts the form
    with `Origin: null`, which the CSRF check (`core.origin`) must refuse."""
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def resource_pack_path(slug: str) -> str:
    return f"/events/{slug}/resources"


def agenda_items_for(survey: Survey) -> list:
    if any(q.kind == QuestionKind.agenda_rating for q in survey.questions):
        return rated_agenda_items(survey.event_id)
    return []


def survey_page_context(survey: Survey, *, entered=None, errors=None, preview=False) -> dict:
    """What the survey page needs; the staff preview renders the same page with these values."""
    return {
        "survey": survey,
        "event": survey.event,
        "questions": survey.questions,
        "agenda_items": agenda_items_for(survey),
        "entered": entered or {},
        "errors": errors or {},
        "beside": {},
        "preview": preview,
        "max_text": responses.MAX_TEXT,
    }


@bp.route("/s/<token>", methods=["GET", "POST"])
def respond(token: str):
    invitation = _invitation_or_404(token)
    survey = invitation.survey
    if survey.is_closed():
        return _private(render_template("surveys/closed.html", survey=survey, event=survey.event))
    response = responses.response_for(invitation)
    context = survey_page_context(survey)
    status = 200
    if request.method == "POST":
        read = responses.read_answers(context["questions"], context["agenda_items"], request.form)
        if read.ok:
            try:
                responses.save_response(invitation, read.values)
            except IntegrityError:  # the same link sent twice at once: the first one counts
                transactions.abandon()
            return redirect(url_for(".thanks", token=token), 303)
        context.update(entered=read.entered, errors=read.errors, beside=read.beside)
        status = 400
    else:
        context["entered"] = responses.answers_as_entered(response, context["questions"])
    return _private(
        render_template("surveys/respond.html", response=response, token=token, **context),
        status,
    )


@bp.get("/s/<token>/thanks")
def thanks(token: str):
    invitation = _invitation_or_404(token)
    if invitation.responded_at is None:
        return redirect(url_for(".respond", token=token))
    survey = invitation.survey
    return _private(
        render_template(
            "surveys/thanks.html",
            survey=survey,
            event=survey.event,
            token=token,
            resources_path=(
                resource_pack_path(survey.event.slug)
                if has_published_resources(survey.event_id)
                else None
            ),
        )
    )
