"""Staff pages for surveys (organisers and admins): list, create, settings, the question editor,
preview, scheduling, send now, and who was invited, reminded and answered."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.errors import form_status, on_field, refusals_flashed, refusals_shown_on
from chamber.core.pagination import paginate
from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.surveys import dispatch, queries, services, template
from chamber.surveys.figures import MIN_GROUP, too_few_to_show
from chamber.surveys.forms import NewSurveyForm, QuestionForm, SettingsForm
from chamber.surveys.models import (
    Question,
    QuestionKind,
    Recipients,
    Survey,
)
from chamber.surveys.views import survey_page_context

bp = staff_blueprint("manage_surveys", __name__, roles=ORGANISERS, url_prefix="/staff/surveys")

RECIPIENT_FILTERS = {"all", "answered", "waiting", "reminded"}
NO_RECIPIENTS = {
    Recipients.checked_in: "No one was checked in at this event, so there is no one to ask. "
    "To ask every confirmed delegate instead, change “Who is asked” in the settings.",
    Recipients.confirmed: "This event has no confirmed delegates, so there is no one to ask.",
}


def _survey_or_404(survey_id: int) -> Survey:
    return db.get_or_404(Survey, survey_id)


def results_url(survey: Survey) -> str:
    return url_for("survey_results.show", survey_id=survey.id)


@bp.get("/")
def index():
    page = paginate(queries.surveys_newest_event_first(), per_page=25)
    rows = list(page.items)
    counts = queries.invitation_and_response_counts([survey.id for survey in rows])
    without = queries.events_without_survey(ended_by=utcnow(), limit=10)
    return render_template(
        "surveys/manage/index.html",
        page=page,
        rows=rows,
        counts=counts,
        without=without,
        results_url=results_url,
        now=utcnow(),
    )


def _event_choices() -> list[SelectChoice]:
    events = queries.events_without_survey(limit=200)
    return [
        SelectChoice(event.id, f"{event.title} ({event.local_start:%-d %b %Y})") for event in events
    ]


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = NewSurveyForm()
    form.event_id.choices = _event_choices()
    if not form.is_submitted():
        wanted = request.args.get("event_id", type=int)
        if wanted in {choice.value for choice in form.event_id.choices}:
            form.event_id.data = wanted
    if form.validate_on_submit():
        event = db.session.get(Event, form.event_id.data)
        with refusals_shown_on(form, on_field("event_id")):
            survey = services.create_survey(
                event, from_template=form.start.data == "template", by=acting_user()
            )
            flash("Created the survey as a draft. Check its questions and settings.", "success")
            return redirect(url_for(".show", survey_id=survey.id))
    return render_template("surveys/manage/new.html", form=form), form_status(form)


def survey_url_for_event(event: Event) -> str:
    """Where an event's staff page links: its survey if it has one, else the form to create one."""
    survey_id = queries.survey_id_for_event(event.id)
    if survey_id is not None:
        return url_for("manage_surveys.show", survey_id=survey_id)
    return url_for("manage_surveys.create", event_id=event.id)


@bp.app_context_processor
def survey_helpers() -> dict:
    # A template helper, so the events package need not import surveys (a higher layer).
    return {"survey_url_for_event": survey_url_for_event}


@bp.get("/<int:survey_id>")
def show(survey_id: int):
    survey = _survey_or_404(survey_id)
    invited, answered = queries.invitation_and_response_counts([survey.id])[survey.id]
    locked = services.is_locked(survey)
    return render_template(
        "surveys/manage/show.html",
        survey=survey,
        event=survey.event,
        invited=invited,
        answered=answered,
        problem=services.schedule_problem(survey),
        recipients_now=None if services.is_locked(survey) else dispatch.recipient_count(survey),
        no_recipients=NO_RECIPIENTS[survey.recipients],
        locked=locked,
        material=None if locked else template.template_material(survey.event),
        reminder_at=dispatch.reminder_due_at(survey),
        default_send_at=services.default_send_at(survey.event),
        results_url=results_url(survey),
        kinds=list(QuestionKind),
        now=utcnow(),
    )


@bp.post("/<int:survey_id>/delete")
def delete(survey_id: int):
    survey = _survey_or_404(survey_id)
    event_id = survey.event_id
    with refusals_flashed():
        services.delete_survey(survey, by=acting_user())
        flash("Deleted the draft survey.", "success")
        return redirect(url_for("manage_events.show", event_id=event_id))
    return redirect(url_for(".show", survey_id=survey_id))


# --- settings ------------------------------------------------------------------------------------


@bp.route("/<int:survey_id>/settings", methods=["GET", "POST"])
def settings(survey_id: int):
    survey = _survey_or_404(survey_id)
    event = survey.event
    form = SettingsForm(obj=survey)
    if not form.is_submitted():
        form.recipients.data = survey.recipients.value
        for name in ("send_at", "closes_at"):
            moment = getattr(survey, name)
            form[name].data = event.local(moment).replace(tzinfo=None) if moment else None
    if form.validate_on_submit():
        try:
            chosen = form.settings(event.timezone)
        except ValidationError:
            chosen = None  # a skipped local time: the form shows it on its field
        if chosen is not None:
            with refusals_shown_on(form):
                services.update_settings(survey, chosen, by=acting_user())
                flash("Saved the survey's settings.", "success")
                return redirect(url_for(".show", survey_id=survey.id))
    return render_template(
        "surveys/manage/settings.html",
        form=form,
        survey=survey,
        event=event,
        locked=services.is_locked(survey),
        now=utcnow(),
    ), form_status(form)


# --- questions -----------------------------------------------------------------------------------


def _question_or_404(survey: Survey, question_id: int) -> Question:
    question = db.get_or_404(Question, question_id)
    if question.survey_id != survey.id:
        abort(404)
    return question


def _locked_redirect(survey: Survey):
    flash("This survey has been sent, so its questions can no longer change.", "error")
    return redirect(url_for(".show", survey_id=survey.id))


def _question_page(form: QuestionForm, survey: Survey, question: Question | None):
    return render_template(
        "surveys/manage/question.html",
        form=form,
        survey=survey,
        question=question,
        agenda_count=len(template.rated_agenda_items(survey.event_id)),
    ), form_status(form)


@bp.route("/<int:survey_id>/questions/new", methods=["GET", "POST"])
def add_question(survey_id: int):
    survey = _survey_or_404(survey_id)
    if services.is_locked(survey):
        return _locked_redirect(survey)
    form = QuestionForm()
    if not form.is_submitted():
        wanted = request.args.get("kind", "")
        form.kind.data = wanted if wanted in {k.value for k in QuestionKind} else "rating"
    if form.validate_on_submit():
        with refusals_shown_on(form, on_field("choices")):
            services.add_question(survey, form.details(), by=acting_user())
            flash("Added the question.", "success")
            return redirect(url_for(".show", survey_id=survey.id, _anchor="questions"))
    return _question_page(form, survey, None)


@bp.route("/<int:survey_id>/questions/<int:question_id>", methods=["GET", "POST"])
def edit_question(survey_id: int, question_id: int):
    survey = _survey_or_404(survey_id)
    question = _question_or_404(survey, question_id)
    if services.is_locked(survey):
        return _locked_redirect(survey)
    form = QuestionForm(obj=question)
    if not form.is_submitted():
        form.kind.data = question.kind.value
    if form.validate_on_submit():
        with refusals_shown_on(form, on_field("choices")):
            services.update_question(question, form.details(), by=acting_user())
            flash("Saved the question.", "success")
            return redirect(url_for(".show", survey_id=survey.id, _anchor="questions"))
    return _question_page(form, survey, question)


@bp.post("/<int:survey_id>/questions/<int:question_id>/delete")
def delete_question(survey_id: int, question_id: int):
    survey = _survey_or_404(survey_id)
    question = _question_or_404(survey, question_id)
    with refusals_flashed():
        services.delete_question(question, by=acting_user())
        flash("Deleted the question.", "success")
    return redirect(url_for(".show", survey_id=survey_id, _anchor="questions"))


@bp.post("/<int:survey_id>/questions/<int:question_id>/move/<any(up, down):direction>")
def move_question(survey_id: int, question_id: int, direction: str):
    survey = _survey_or_404(survey_id)
    question = _question_or_404(survey, question_id)
    with refusals_flashed():
        services.move_question(question, -1 if direction == "up" else 1, by=acting_user())
    return redirect(url_for(".show", survey_id=survey_id, _anchor=f"question-{question_id}"))


@bp.get("/<int:survey_id>/preview")
def preview(survey_id: int):
    survey = _survey_or_404(survey_id)
    return render_template(
        "surveys/respond.html", response=None, token="", **survey_page_context(survey, preview=True)
    )


# --- scheduling and sending ----------------------------------------------------------------------


@bp.post("/<int:survey_id>/<any(schedule, unschedule):action>")
def change_schedule(survey_id: int, action: str):
    survey = _survey_or_404(survey_id)
    with refusals_flashed():
        if action == "schedule":
            services.schedule(survey, by=acting_user())
        else:
            services.unschedule(survey, by=acting_user())
        if action == "schedule":
            when = survey.event.local(survey.send_at)
            flash(
                f"Scheduled: the survey goes out on {when:%A %-d %B %Y at %H:%M}"
                + (" (that time has passed, so at once)." if survey.send_at <= utcnow() else "."),
                "success",
            )
        else:
            flash("The survey is a draft again and will not be sent.", "success")
    return redirect(url_for(".show", survey_id=survey_id))


def _send_now_problem(survey: Survey, now) -> str | None:
    """Why "Send now" cannot be offered, in words for staff; None if it can."""
    if services.is_locked(survey):
        return "This survey has already been sent."
    if survey.event.ends_at > now:
        return "The event has not ended yet, so the survey cannot be sent."
    if dispatch.recipient_count(survey) == 0:
        return NO_RECIPIENTS[survey.recipients]
    return None


@bp.get("/<int:survey_id>/send-now")
def confirm_send_now(survey_id: int):
    """Who will be emailed, and the button: sending cannot be undone, so it is asked first."""
    survey = _survey_or_404(survey_id)
    if problem := _send_now_problem(survey, utcnow()):
        flash(problem, "error")
        return redirect(url_for(".show", survey_id=survey_id))
    emailed, unsubscribed = dispatch.recipients_to_email(survey)
    return render_template(
        "surveys/manage/send_now.html",
        survey=survey,
        event=survey.event,
        emailed=emailed,
        unsubscribed=unsubscribed,
    )


@bp.post("/<int:survey_id>/send-now")
def send_now(survey_id: int):
    survey = _survey_or_404(survey_id)
    now = utcnow()
    if problem := _send_now_problem(survey, now):
        flash(problem, "error")
        return redirect(url_for(".show", survey_id=survey_id))
    emailed, _ = dispatch.recipients_to_email(survey)
    if request.form.get("emailed") != str(emailed):
        # Not confirmed on the page that says how many people will be emailed (or the number
        # changed since it was shown): ask again, with the number as it is now.
        flash("Check who will be emailed, then confirm.", "info")
        return redirect(url_for(".confirm_send_now", survey_id=survey_id))
    with refusals_flashed():
        services.prepare_to_send_now(survey, now, by=acting_user())
        if dispatch.recipient_count(survey) == 0:
            raise services.SurveyError(NO_RECIPIENTS[survey.recipients])
        result = dispatch.send_survey(survey, now)
        if result is None:
            raise services.SurveyError("The survey is already being sent.")
        queued, skipped = result
        message = f"Sent: {queued} invitation(s) are on their way."
        if skipped:
            message += f" {skipped} recipient(s) had unsubscribed and were left out."
        flash(message, "success")
    return redirect(url_for(".show", survey_id=survey_id))


@bp.get("/<int:survey_id>/recipients")
def recipients(survey_id: int):
    survey = _survey_or_404(survey_id)
    shown = request.args.get("show", "all")
    if shown not in RECIPIENT_FILTERS:
        shown = "all"
    invited, reminded, answered = queries.invitation_totals(survey)
    # An anonymous survey does not say who answered until five have (docs/surveys.md).
    hide_who = too_few_to_show(survey.anonymous, answered)
    if hide_who and shown in ("answered", "waiting"):
        shown = "all"
    page = paginate(queries.invitations(survey, shown), per_page=50)
    return render_template(
        "surveys/manage/recipients.html",
        survey=survey,
        event=survey.event,
        page=page,
        rows=list(page.items),
        shown=shown,
        invited=invited,
        reminded=reminded,
        answered=answered,
        hide_who=hide_who,
        min_group=MIN_GROUP,
    )
