"""The staff home page: what each role can do, and the events coming up."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from chamber.auth.guard import EVERY_ROLE, staff_blueprint
from chamber.core.times import utcnow
from chamber.events import services as events

bp = staff_blueprint("staff", __name__, roles=EVERY_ROLE, url_prefix="/staff")


@bp.get("/")
def dashboard():
    upcoming = events.upcoming_for_staff() if current_user.is_organiser else []
    return render_template("staff/dashboard.html", upcoming=upcoming, now=utcnow())
