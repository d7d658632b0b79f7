"""Chamber: business seminars for a Chamber of Commerce. `create_app` wires the parts together."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix

from chamber import config as configuration
from chamber.core import transactions
from chamber.extensions import csrf, db, limiter, login_manager, migrate

PACKAGE_DIR = Path(__file__).resolve().parent


CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])  # fmt: skip


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    overrides = dict(overrides or {})
    environment = configuration.from_environment()
    instance_path = overrides.get("INSTANCE_PATH") or environment.get("INSTANCE_PATH")
    app = Flask(
        __name__,
        template_folder="templates",
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
    )
    settings = {
        **configuration.defaults(),
        **configuration.from_instance_file(Path(app.instance_path)),
        **environment,
        **overrides,
    }
    configuration.finalise(
        settings,
        Path(app.instance_path),
        testing=bool(settings.get("TESTING")),
        demo=bool(settings.get("DEMO")),
    )
    app.config.update(settings)
    configuration.make_private_folder(Path(app.instance_path))  # 0700: its files are private
    configuration.make_private_database(  # 0600, and so its -wal and -shm
        app.config["SQLALCHEMY_DATABASE_URI"], Path(app.instance_path)
    )

    _init_extensions(app)
    from chamber.core.origin import check_same_origin

    app.before_request(check_same_origin)  # after Flask-WTF's token check, whose verdict it reads
    _init_domains(app)
    _register_error_pages(app)
    app.after_request(_security_headers)

    from chamber.cli import register_commands

    register_commands(app)
    if app.config["PROXY_COUNT"]:
        # Outermost, so that every layer in front of Flask (the API's rate limit, the page cache)
        # sees the client's address, scheme and host as Flask does.
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    return app


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    transactions.init_app(app)  # first, so that its commit runs after every other after_request
    migrate.init_app(app, db, directory=str(PACKAGE_DIR / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    login_manager.login_message_category = "info"
    from chamber.auth import sessions as staff_sessions

    staff_sessions.init_app(app)  # server-side sessions: the loader and session protection

    # Import every model so that metadata (and so Alembic) sees the whole schema.
    import chamber.models  # noqa: F401


def _init_domains(app: Flask) -> None:
    """Each domain wires itself (blueprints, template helpers, link minters, signal receivers),
    in layer order: a domain's receivers connect to signals of the layers below it."""
    from chamber import (
        api,
        auth,
        calendar,
        campaigns,
        core,
        dashboard,
        directory,
        events,
        mail,
        members,
        privacy,
        registration,
        resources,
        surveys,
    )

    core.init_app(app)  # first: the id converter must be in place before any rule is added
    auth.init_app(app)
    mail.init_app(app)
    members.init_app(app)  # after mail: it registers kinds of email link
    events.init_app(app)
    resources.init_app(app)
    calendar.init_app(app)
    registration.init_app(app)
    surveys.init_app(app)
    directory.init_app(app)
    campaigns.init_app(app)
    privacy.init_app(app)
    api.init_app(app)
    dashboard.init_app(app)


def _try_again_in() -> str:
    """A rate limit's refusal in words: when to try again (Flask-Limiter's own text is "10 per
    1 hour")."""
    current = limiter.current_limit
    wait = current.reset_at - time.time() if current is not None else 60
    minutes = max(1, round(wait / 60))
    return (
        f"This was tried too many times from your connection. Try again in {minutes} "
        f"minute{'' if minutes == 1 else 's'}: what you entered was not sent."
    )


def _register_error_pages(app: Flask) -> None:
    messages = {
        400: (
            "Something in the request was not right",
            "Go back, check what you entered and try again.",
        ),
        403: ("You cannot see this page", "Your account does not have access to it."),
        404: ("Page not found", "Check the address, or start from the home page."),
        405: ("That cannot be done here", "Go back and use the buttons on the page."),
        413: ("That was too much to send", "Send less at once and try again."),
        429: ("Too many attempts", "Wait a few minutes and try again."),
        500: ("Sorry, something went wrong", "It has been logged. Try again in a moment."),
    }

    def render_error(error):
        code = getattr(error, "code", 500) or 500
        title, advice = messages.get(code, messages[500])
        if code == 429 and isinstance(error, RateLimitExceeded) and not error.limit.error_message:
            advice = _try_again_in()
        elif code == 429 and getattr(error, "description", None):
            advice = error.description
        if code == 500:
            transactions.abandon()  # the page may read (the staff user) after a failed statement
        return render_template("errors/error.html", code=code, title=title, advice=advice), code

    for code in messages:
        app.register_error_handler(code, render_error)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        advice = "The form had expired or did not come from this site. Go back, reload the page and try again."
        return render_template(
            "errors/error.html", code=400, title="The form could not be sent", advice=advice
        ), 400


# Pages that show someone's personal data (or carry a private link's token in their address):
# the staff area; a booking's manage link and its sub-pages; a delegate's own place link; the
# booking form and its "done" page (names and emails typed in); survey answers; unsubscribing;
# the check-in QR code; the subscribe form, its pages and the preferences page. No browser or proxy
# may keep a copy, e.g. on a shared computer.
PRIVATE_PAGES = re.compile(
    r"^/(?:staff(?:/|$)|r/|places/|s/|unsubscribe/|qr/|events/[^/]+/register(?:/|$)"
    r"|subscribe(?:/|$)|preferences/)"
)
HSTS = "max-age=31536000; includeSubDomains"  # a year: browsers never try plain http again


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


def _security_headers(response):
    headers = response.headers
    present = {name.lower() for name, _value in headers.items()}  # one pass, not one a header
    wanted = list(SECURITY_HEADERS)
    if current_app.config["BASE_URL"].startswith("https://"):
        wanted.append(("Strict-Transport-Security", HSTS))
    for name, value in wanted:
        if name.lower() not in present:  # a view's own (a page's Referrer-Policy) stays
            headers.add(name, value)
    if PRIVATE_PAGES.match(request.path):
        headers["Cache-Control"] = "no-store"  # over anything a view set
    return response
