"""The staff home page: what each role can do; for organisers, each upcoming event's figures, what
needs attention and a chart of its bookings, and a notice when the worker has stopped or mail is
piling up."""

from __future__ import annotations

from flask import current_app, render_template
from flask_login import current_user

from chamber.auth.guard import EVERY_ROLE, staff_blueprint
from chamber.core import heartbeat
from chamber.core.times import utcnow
from chamber.dashboard.chart import bookings_chart
from chamber.dashboard.queries import event_figures
from chamber.events import services as events

bp = staff_blueprint("staff", __name__, roles=EVERY_ROLE, url_prefix="/staff")


@bp.get("/")
def dashboard():
    now = utcnow()
    figures = []
    problems: list[str] = []
    if current_user.is_organiser:
        figures = event_figures(events.upcoming_for_staff(now), now)
        problems = heartbeat.report(current_app._get_current_object(), now).problems
    return render_template(
        "staff/dashboard.html",
        figures=figures,
        charts={item.event.id: bookings_chart(item.by_day) for item in figures},
        now=now,
        health_problems=problems,
    )
