"""Staff users, their roles, logging in, and the guard every staff page stands behind."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Signing in and out (with password reset and two-factor codes), one's own account and
    sessions, the staff accounts page and the audit trail's page."""
    from chamber.auth import account_views, audit_views, manage, views

    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(account_views.bp)
    app.register_blueprint(audit_views.bp)
