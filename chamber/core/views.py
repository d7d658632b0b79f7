"""Site-wide routes that belong to no domain: the health check."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from chamber.core import heartbeat
from chamber.extensions import db, limiter

bp = Blueprint("core", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz() -> tuple[dict[str, Any], int]:
    """503 when the database does not answer (the load balancer takes this process out); else 200,
    with "status": "degraded" and the problems listed when the worker has not run lately or mail
    is piling up, for a monitor to alert on (docs/deployment.md)."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:  # a 503: the request rolls back
        return {"status": "unavailable", "database": "unreachable"}, 503
    try:
        report = heartbeat.report(current_app._get_current_object())  # type: ignore[attr-defined]
    except SQLAlchemyError:  # answered SELECT 1 but not a table: not migrated, or going away
        return {"status": "unavailable", "database": "unusable"}, 503
    return report.as_json(), 200


@bp.get("/theme.css")
@limiter.exempt
def theme_css() -> Response:
    """The chamber's configured colour, as CSS (a stylesheet, since the CSP forbids inline styles)."""
    colour = current_app.config["BRAND_COLOUR"]
    response = Response(f":root {{ --brand: {colour}; }}\n", mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
