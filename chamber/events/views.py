"""Public pages: upcoming events, past events and each event's page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from chamber.core.pagination import paginate
from chamber.core.times import utcnow
from chamber.events import services, signals

bp = Blueprint("events", __name__)
UPCOMING_PER_PAGE = 12  # the home page's events a page: its cost does not grow with the calendar


@bp.get("/")
def index():
    now = utcnow()
    page = paginate(services.upcoming_published(now), per_page=UPCOMING_PER_PAGE)
    return render_template("events/index.html", page=page, now=now)


@bp.get("/events/past")
def past():
    page = paginate(services.past_published(), per_page=20)
    return render_template("events/past.html", page=page)


@bp.get("/events/<slug>")
def show(slug: str):
    if "\x00" in slug:  # no slug holds one, and PostgreSQL refuses it in a query (a 500)
        abort(404)
    event = services.event_with_agenda(slug)
    staff_preview = current_user.is_authenticated and current_user.is_organiser
    if event is None or (event.is_draft and not staff_preview):
        abort(404)
    speakers = list(dict.fromkeys(s for item in event.agenda_items for s in item.speakers))
    now = utcnow()
    sent = signals.showing_event.send(signals.this_app(), event=event, now=now)
    shown_too: dict[str, Any] = {}  # what higher domains add (resources: the event's resources)
    for extra in signals.replies(sent):
        shown_too.update(extra)
    return render_template(
        "events/show.html",
        event=event,
        speakers=speakers,
        now=now,
        staff_preview=staff_preview,
        print_view=request.args.get("print") == "1",
        campaign=campaign_reference(request.args.get("campaign")),
        **shown_too,
    )


def campaign_reference(value: str | None) -> str | None:
    """The campaign whose email linked to the page (`?campaign=<id>`), passed on to the booking
    form's link so that a booking records it: digits only, anything else dropped (the booking
    form checks that it is a campaign that was sent)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 9:
        return value
    return None
