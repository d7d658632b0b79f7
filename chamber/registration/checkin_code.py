"""The check-in QR code as a picture: public, because an email client fetches it without logging in.

The confirmation email asks for `/qr/checkin.png?link=<scan link>`, where the scan link is the
`checkin` link minted when the email is sent; so the picture and the written link carry one token.
The code drawn is always our own scan URL for a token we know; anything else is a plain 404.
"""

from __future__ import annotations

import io

import segno
from flask import Blueprint, Response, abort, request

from chamber.core.urls import external_url
from chamber.registration import checkin_services

bp = Blueprint("checkin_code", __name__)

SCAN_PATH = "/staff/checkin/scan/"


def qr_png(url: str) -> bytes:
    """A QR code for `url`: medium error correction, 8 pixels a module, the standard quiet zone."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


@bp.app_template_global("checkin_code_url")
def checkin_code_url(link: str) -> str:
    """The picture's address for a check-in link. In an email, `link` is still the marker the
    worker replaces at send time, so it goes into the query as it is: percent-encoding would hide
    it from the worker (and the minted link needs none: `:` and `/` are allowed in a query)."""
    return f"{external_url('checkin_code.checkin_code')}?link={link}"


@bp.get("/qr/checkin.png")
def checkin_code():
    link = request.args.get("link", "")
    token = link.rpartition(SCAN_PATH)[2] if SCAN_PATH in link else ""
    if checkin_services.delegate_for_checkin_token(token) is None:
        abort(404)
    response = Response(qr_png(checkin_services.scan_url(token)), mimetype="image/png")
    response.cache_control.private = True
    response.cache_control.max_age = 86400
    response.headers["X-Robots-Tag"] = "noindex"
    return response
