"""Email: the transactional outbox, message building, delivery backends and the suppression list."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Unsubscribing and the staff outbox; the `link` and `link_code` template globals and the unsubscribe link."""
    from chamber.auth import signals as auth_signals
    from chamber.mail import links, manage, services, staff_mail, views

    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
    app.jinja_env.globals["link"] = links.placeholder
    app.jinja_env.globals["link_code"] = links.code_placeholder
    links.register_link_minter("unsubscribe", services._mint_unsubscribe_link)
    links.register_link_minter("password_reset", staff_mail._mint_reset_link)
    auth_signals.password_reset_requested.connect(staff_mail.send_reset_link, sender=app)
