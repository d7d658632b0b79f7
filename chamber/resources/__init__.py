"""The curated resource library and link health."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The public library and packs, the staff library and link health; an event's page lists
    its resources (a receiver of `events.signals.showing_event`); a copied event takes its
    resources along (`event_copied`)."""
    from chamber.core import pagecache
    from chamber.events import signals
    from chamber.resources import attachments, copies, health_views, manage, views

    app.register_blueprint(health_views.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
    pagecache.public_pages(
        app, "resources.index", "resources.show", "resources.pack", "resources.pack_download"
    )
    signals.showing_event.connect(attachments.resources_shown, sender=app)
    signals.event_copied.connect(copies.event_copied, sender=app)
