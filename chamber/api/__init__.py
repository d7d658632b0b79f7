"""The read-only JSON API, and the schema.org JSON-LD on event pages."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The JSON API (JSON errors for anything under /api, routed or not) and the
    `event_jsonld_tag` template global."""
    from chamber.api import limit, views
    from chamber.api.jsonld import event_jsonld_tag
    from chamber.core import pagecache

    app.register_blueprint(views.bp)
    pagecache.public_pages(app, "api.events", "api.event")
    limit.init_app(app)  # counts every request under /api, before the page cache answers
    app.before_request(views.json_for_unrouted_api_paths)
    app.jinja_env.globals["event_jsonld_tag"] = event_jsonld_tag
