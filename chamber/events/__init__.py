"""Events, their speaker agendas, and the speakers reused across them."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The public event pages and the staff pages for events and speakers. What events tell the
    domains above them goes through `events.signals`, which those domains connect to."""
    from chamber.core import pagecache
    from chamber.events import manage, speakers, views

    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(speakers.bp)
    pagecache.public_pages(app, "events.index", "events.past", "events.show")
