"""Site-wide routes that belong to no domain: the health check."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from chamber.extensions import db, limiter

bp = Blueprint("core", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz() -> tuple[dict[str, str], int]:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:  # a 503: the request rolls back
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}, 200


@bp.get("/theme.css")
@limiter.exempt
def theme_css() -> Response:
    """The chamber's configured colour, as CSS (a stylesheet, since the CSP forbids inline styles)."""
    colour = current_app.config["BRAND_COLOUR"]
    response = Response(f":root {{ --brand: {colour}; }}\n", mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
