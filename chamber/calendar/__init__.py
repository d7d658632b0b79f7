"""iCalendar builders (pure functions taking plain values) and .ics views."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The public .ics files and the calendar feed."""
    from chamber.calendar import views
    from chamber.core import pagecache

    app.register_blueprint(views.bp)
    pagecache.public_pages(
        app, "calendar.event_ics", "calendar.agenda_ics", "calendar.item_ics", "calendar.feed"
    )
