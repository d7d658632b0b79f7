"""Staff pages for the speaker directory, shared by every event's agenda."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.errors import form_status, refusals_flashed
from chamber.events import services
from chamber.events.forms import SpeakerForm
from chamber.events.models import Speaker
from chamber.extensions import db

bp = staff_blueprint("manage_speakers", __name__, roles=ORGANISERS, url_prefix="/staff/speakers")


@bp.get("/")
def index():
    return render_template("events/speakers/index.html", speakers=services.speakers_with_use())


def _save(speaker: Speaker | None):
    form = SpeakerForm(obj=speaker)
    if form.validate_on_submit():
        saved = services.save_speaker(speaker, form.details(), by=acting_user())
        flash(f"Saved {saved.name}.", "success")
        return redirect(url_for(".index"))
    return render_template("events/speakers/form.html", form=form, speaker=speaker), form_status(
        form
    )


@bp.route("/new", methods=["GET", "POST"])
def create():
    return _save(None)


@bp.route("/<int:speaker_id>", methods=["GET", "POST"])
def edit(speaker_id: int):
    return _save(db.get_or_404(Speaker, speaker_id))


@bp.post("/<int:speaker_id>/delete")
def delete(speaker_id: int):
    speaker = db.get_or_404(Speaker, speaker_id)
    with refusals_flashed():
        services.delete_speaker(speaker, by=acting_user())
        flash("Removed the speaker.", "success")
    return redirect(url_for(".index"))
