"""The Outbox page (admins): counts by status, search, failures with their errors, retry and cancel.

The list pages by key (`?before=`/`?after=` a message's id), so its last page costs what its first
does however many messages there are."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for

from chamber.auth.guard import acting_user, staff_blueprint
from chamber.auth.models import Role
from chamber.core.errors import refusals_flashed
from chamber.core.pagination import keyset_page
from chamber.extensions import db
from chamber.mail import queries, rendering, services
from chamber.mail.links import describe_links
from chamber.mail.models import MessageStatus, OutboxMessage

PER_PAGE = 50

bp = staff_blueprint("outbox", __name__, roles=[Role.admin], url_prefix="/staff/outbox")

# The stored HTML is shown in a sandboxed frame: no scripts, no requests, no forms.
EMAIL_PREVIEW_POLICY = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


@bp.get("/")
def index():
    status = request.args.get("status", "")
    # PostgreSQL cannot take a NUL in text (a 500), and no address holds one: drop it.
    search = request.args.get("q", "").replace("\x00", "").strip()[:254]
    if status not in MessageStatus.__members__:
        status = ""
    page = keyset_page(
        queries.outbox(MessageStatus(status) if status else None, search),
        OutboxMessage.id,
        per_page=PER_PAGE,
    )
    counts = services.status_counts()
    return render_template(
        "mail/outbox.html",
        page=page,
        counts=counts,
        total=sum(counts.values(), services.CappedCount(0)),
        status=status,
        search=search,
    )


@bp.get("/<int:message_id>")
def show(message_id: int):
    message = db.get_or_404(OutboxMessage, message_id)
    text_body, _html_body = rendering.bodies(message)
    return render_template(
        "mail/message.html",
        message=message,
        text_body=describe_links(text_body, message.link_nonce),
    )


@bp.get("/<int:message_id>/html")
def html_body(message_id: int):
    message = db.get_or_404(OutboxMessage, message_id)
    _text_body, html = rendering.bodies(message)
    response = Response(describe_links(html, message.link_nonce), mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/<int:message_id>/<any(retry, cancel):action>")
def act(message_id: int, action: str):
    message = db.get_or_404(OutboxMessage, message_id)
    with refusals_flashed():
        (services.retry if action == "retry" else services.cancel)(message, by=acting_user())
        flash(
            "The message will be sent again." if action == "retry" else "Cancelled the message.",
            "success",
        )
    return redirect(url_for(".show", message_id=message_id))
