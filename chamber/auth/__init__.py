"""Staff users, their roles, logging in, and the guard every staff page stands behind."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Logging in and out, and the staff accounts page."""
    from chamber.auth import manage, views

    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
