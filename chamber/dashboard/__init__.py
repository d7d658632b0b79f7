"""The staff home page (each upcoming event's figures, what needs attention, the worker's and
the outbox's health) and the outbox's part of `/healthz`."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from chamber.core.heartbeat import health_reported
    from chamber.dashboard import queries, views

    app.register_blueprint(views.bp)
    health_reported.connect(queries.mail_health, sender=app)
