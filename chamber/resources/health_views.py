"""Staff pages for link health: the links that need attention, accepting a permanent redirect's
new address, the schedule, "Check now" (which only queues a run for the worker) and progress."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from wtforms import BooleanField
from wtforms.validators import InputRequired

from chamber.auth.guard import ORGANISERS, staff_blueprint
from chamber.core.errors import refusals_flashed
from chamber.core.forms import ChamberForm, WholeNumberField
from chamber.core.times import utc_to_local
from chamber.extensions import db
from chamber.resources import health
from chamber.resources.models import LinkCheckSchedule, LinkState, Resource

bp = staff_blueprint(
    "link_health", __name__, roles=ORGANISERS, url_prefix="/staff/resources/health"
)


class ScheduleForm(ChamberForm):
    enabled = BooleanField("Check every published link automatically")
    interval_days = WholeNumberField(
        "Days between checks",
        minimum=1,
        maximum=90,
        validators=[InputRequired("Enter the number of days between checks, from 1 to 90.")],
        description="From 1 to 90. The worker runs the check; a week suits most libraries.",
    )


def _schedule_form(schedule: LinkCheckSchedule) -> ScheduleForm:
    return ScheduleForm(
        formdata=None, enabled=schedule.enabled, interval_days=schedule.interval_days
    )


def _page(form: ScheduleForm | None = None, status: int = 200):
    schedule = health.current_schedule()
    attention = health.needing_attention()
    zone = current_app.config["TIMEZONE"]
    run = health.unfinished_run() or health.latest_run()
    counts = health.state_counts()
    return render_template(
        "resources/health.html",
        schedule=schedule,
        form=form or _schedule_form(schedule),
        counts=counts,
        checked=sum(counts.values()) - counts[LinkState.unchecked],
        unchecked=health.unchecked_links() if counts[LinkState.unchecked] else [],
        attention=attention,
        histories=health.histories([resource.id for resource in attention]),
        run=run,
        running=run is not None and run.finished_at is None,
        local=lambda moment: utc_to_local(moment, zone) if moment else None,
        zone=zone,
    ), status


@bp.get("/")
def index():
    return _page()


@bp.post("/schedule")
def schedule():
    form = ScheduleForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    health.save_schedule(enabled=form.enabled.data, interval_days=form.interval_days.data)
    flash(
        f"Links will be checked every {form.interval_days.data} day(s)."
        if form.enabled.data
        else "Automatic checks are off. “Check now” still works.",
        "success",
    )
    return redirect(url_for(".index"))


@bp.post("/check")
def check_now():
    form = ChamberForm()
    if not form.validate_on_submit():
        return _page(status=400)
    with refusals_flashed():
        health.queue_check(trigger="staff")
        flash("The check is queued; the worker will start it within a few seconds.", "success")
    return redirect(url_for(".index"))


@bp.post("/<int:resource_id>/accept")
def accept(resource_id: int):
    resource = db.get_or_404(Resource, resource_id)
    form = ChamberForm()
    if not form.validate_on_submit():
        return _page(status=400)
    old = resource.url
    with refusals_flashed():
        health.accept_redirect(resource)
        flash(f"“{resource.title}” now links to {resource.url} (was {old}).", "success")
    if request.args.get("back") == "resource":  # the button on the resource's own page
        return redirect(url_for("manage_resources.show", resource_id=resource_id))
    return redirect(url_for(".index"))
