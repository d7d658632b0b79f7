"""The staff home page: what each role can do, the events coming up, and a notice when the worker
has stopped or mail is piling up."""

from __future__ import annotations

from flask import current_app, render_template
from flask_login import current_user

from chamber.auth.guard import EVERY_ROLE, staff_blueprint
from chamber.core import heartbeat
from chamber.core.times import utcnow
from chamber.events import services as events

bp = staff_blueprint("staff", __name__, roles=EVERY_ROLE, url_prefix="/staff")


@bp.get("/")
def dashboard():
    now = utcnow()
    upcoming = events.upcoming_for_staff(now) if current_user.is_organiser else []
    health = heartbeat.report(current_app._get_current_object(), now)
    return render_template(
        "staff/dashboard.html", upcoming=upcoming, now=now, health_problems=health.problems
    )
