"""One-click unsubscribe (RFC 8058): POST suppresses at once; GET only shows a button."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from chamber.extensions import csrf, limiter
from chamber.mail import services

bp = Blueprint("mail", __name__)


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    # Mail scanners follow links, so a GET never changes anything.
    address = services.unsubscribe_address(token)
    if address is None:
        abort(404)
    return render_template(
        "mail/unsubscribe.html", token=token, address=address, done=services.is_suppressed(address)
    )


@bp.post("/unsubscribe/<token>")
@csrf.exempt  # mail clients post with no cookies and no form token (RFC 8058)
@limiter.limit("30 per minute")
def unsubscribe(token: str):
    address = services.unsubscribe_address(token)
    if address is None:
        abort(404)
    services.suppress(address)
    return render_template("mail/unsubscribe.html", token=token, address=address, done=True), 200
