"""Staff pages for campaigns (organisers and admins): the list, compose and edit, preview at
desktop and phone width, a test to oneself, the audience before sending, send now or at a local
time, pause, resume and cancel, progress while it sends, and the report after."""

from __future__ import annotations

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.campaigns import content, queries, services
from chamber.campaigns.forms import CampaignForm, ScheduleForm
from chamber.campaigns.models import Campaign, CampaignStatus, LeftOut
from chamber.core.errors import form_status, refusals_flashed, refusals_shown_on
from chamber.core.pagination import paginate
from chamber.core.times import utc_to_local
from chamber.directory import segments

bp = staff_blueprint("campaigns", __name__, roles=ORGANISERS, url_prefix="/staff/campaigns")
PER_PAGE = 50

# The email's HTML in a sandboxed frame of this site: no scripts, no requests, no forms.
EMAIL_PREVIEW_POLICY = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = services.find_campaign(campaign_id)
    if campaign is None:
        abort(404)
    return campaign


def _compose_form(**kwargs) -> CampaignForm:
    return CampaignForm(
        events=queries.event_choices(),
        resources=queries.resource_choices(),
        segments=[(segment.id, segment.name) for segment in segments.saved_segments()],
        **kwargs,
    )


@bp.get("/")
def index():
    page = paginate(queries.campaigns_newest_first(), per_page=PER_PAGE)
    return render_template("campaigns/index.html", page=page)


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = _compose_form()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            campaign = services.save_campaign(form.details(), by=acting_user())
            flash("Saved the draft. Check who it goes to, preview it, then send it.", "success")
            return redirect(url_for(".show", campaign_id=campaign.id))
    return render_template("campaigns/form.html", form=form, campaign=None), form_status(form)


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
def edit(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    if not campaign.status.editable:
        flash("A campaign that has started sending can no longer be changed.", "error")
        return redirect(url_for(".show", campaign_id=campaign.id))
    form = _compose_form(obj=campaign)
    if request.method == "GET":
        form.resource_ids.data = [chosen.resource_id for chosen in campaign.resources]
        form.topic.data = campaign.topic.value
    if form.validate_on_submit():
        with refusals_shown_on(form):
            services.save_campaign(form.details(), by=acting_user(), campaign=campaign)
            flash("Saved the campaign.", "success")
            return redirect(url_for(".show", campaign_id=campaign.id))
    page = render_template("campaigns/form.html", form=form, campaign=campaign)
    return page, form_status(form)


@bp.get("/<int:campaign_id>")
def show(campaign_id: int):
    """The campaign: before sending, who it would reach; after, its progress and report."""
    campaign = _campaign_or_404(campaign_id)
    started = campaign.started_at is not None
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        audience=None if started else queries.audience_now(campaign),
        report=queries.report(campaign) if started else None,
        scheduled_local=(
            utc_to_local(campaign.scheduled_for, campaign.scheduled_zone)
            if campaign.scheduled_for
            else None
        ),
        # Every time on the page in one zone: the one it was scheduled in, or the chamber's.
        zone=campaign.scheduled_zone or current_app.config["TIMEZONE"],
        reasons=list(LeftOut),
        statuses=CampaignStatus,
    )


@bp.get("/<int:campaign_id>/progress")
def progress(campaign_id: int):
    """The figures the page shows while it sends, for its small polling script."""
    campaign = _campaign_or_404(campaign_id)
    counts = queries.progress(campaign.id)
    return jsonify(
        status=campaign.status.value,
        queued=counts.queued,
        sent=counts.sent,
        failed=counts.failed,
        waiting=counts.waiting,
        left_out=counts.left_out,
        withheld=counts.withheld,
    )


@bp.get("/<int:campaign_id>/left-out/<reason>")
def left_out(campaign_id: int, reason: str):
    campaign = _campaign_or_404(campaign_id)
    if reason not in LeftOut.__members__:
        abort(404)
    why = LeftOut(reason)
    people = paginate(queries.left_out_people(campaign, why), per_page=PER_PAGE)
    return render_template("campaigns/left_out.html", campaign=campaign, reason=why, people=people)


@bp.get("/<int:campaign_id>/preview")
def preview(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    recipient = queries.preview_recipient(campaign)
    name = recipient.name if recipient else acting_user().name
    text = content.preview(campaign, name, recipient.id if recipient else None, "txt")
    return render_template(
        "campaigns/preview.html", campaign=campaign, recipient=recipient, name=name, text=text
    )


@bp.get("/<int:campaign_id>/preview/email.html")
def preview_html(campaign_id: int):
    """The email's HTML as the first recipient would get it, for the preview's frames."""
    campaign = _campaign_or_404(campaign_id)
    recipient = queries.preview_recipient(campaign)
    name = recipient.name if recipient else acting_user().name
    html = content.preview(campaign, name, recipient.id if recipient else None, "html")
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/<int:campaign_id>/test")
def send_test(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    user = acting_user()
    with refusals_flashed():
        services.send_test(campaign, to=user)
        flash(f"A test is on its way to {user.email}, marked [Test].", "success")
    return redirect(url_for(".show", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>/send")
def confirm_send(campaign_id: int):
    """Check before sending: how many it will go to, and who is left out and why."""
    campaign = _campaign_or_404(campaign_id)
    if not campaign.status.editable:
        return redirect(url_for(".show", campaign_id=campaign.id))
    return render_template(
        "campaigns/send.html", campaign=campaign, audience=queries.audience_now(campaign)
    )


@bp.post("/<int:campaign_id>/send")
def send(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    with refusals_flashed():
        services.send_now(campaign, by=acting_user())
        record("campaign_sent", kind="campaign", object_id=campaign.id, detail="sent now")
        flash("Sending: the worker is queueing it now. This page shows its progress.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/schedule", methods=["GET", "POST"])
def schedule(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    form = ScheduleForm()
    if form.validate_on_submit() and (when := form.when()) is not None:
        with refusals_shown_on(form):
            services.schedule(campaign, when, form.zone.data, by=acting_user())
            record("campaign_scheduled", kind="campaign", object_id=campaign.id,
                   detail=f"for {when:%Y-%m-%d %H:%M} UTC")  # fmt: skip
            flash("Scheduled. You can still change it, or send it now, until then.", "success")
            return redirect(url_for(".show", campaign_id=campaign.id))
    if not campaign.status.editable:
        return redirect(url_for(".show", campaign_id=campaign.id))
    page = render_template(
        "campaigns/schedule.html",
        campaign=campaign,
        form=form,
        audience=queries.audience_now(campaign),
    )
    return page, form_status(form)


@bp.get("/<int:campaign_id>/cancel")
def confirm_cancel(campaign_id: int):
    """Ask first: cancelling cannot be undone."""
    return render_template("campaigns/cancel.html", campaign=_campaign_or_404(campaign_id))


@bp.post("/<int:campaign_id>/cancel")
def cancel(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    with refusals_flashed():
        stopped = services.cancel(campaign)
        flash(f"Cancelled the campaign; {stopped} message(s) not yet sent were stopped.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/<any(pause, resume, unschedule):action>")
def act(campaign_id: int, action: str):
    campaign = _campaign_or_404(campaign_id)
    with refusals_flashed():
        if action == "pause":
            services.pause(campaign)
            flash("Paused: nothing more goes out until you resume it.", "success")
        elif action == "resume":
            services.resume(campaign)
            flash("Resumed: the rest goes out now.", "success")
        else:
            services.unschedule(campaign)
            flash("No longer scheduled: it is a draft again.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id))
