"""The check-in QR code as a picture: public, because an email client fetches it without logging in.

Confirmation emails now carry the code inside the message (see docs/mail.md); this address stays
for the emails sent before, which ask for `/qr/checkin.png?link=<scan link>`. The code drawn is
always our own scan URL for a token we know; anything else is a plain 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from chamber.mail.mime import qr_png
from chamber.registration import checkin_services

bp = Blueprint("checkin_code", __name__)

SCAN_PATH = "/staff/checkin/scan/"


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
