"""The read-only JSON API: published (and cancelled) events with their agendas, and the OpenAPI
document that describes it. Every answer under /api is JSON, errors included. See docs/api.md."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from chamber.api import limit, queries
from chamber.core import transactions
from chamber.core.pagination import MAX_PAGE
from chamber.core.times import utcnow
from chamber.core.urls import external_url
from chamber.events.models import Event
from chamber.events.services import event_with_agenda
from chamber.extensions import csrf
from chamber.registration import seats
from chamber.registration.services import registration_problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50
CACHE_SECONDS = 60
WHEN = ("upcoming", "past")

# The `code` of an error body, by status; docs/api.md lists them.
ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    429: "too_many_requests",
    500: "server_error",
}
ERROR_MESSAGES = {
    404: "Not found.",
    405: "This API is read-only: use GET.",
    429: "Too many requests: wait a minute and try again.",
    500: "Something went wrong; it has been logged.",
}


# --- responses -----------------------------------------------------------------------------------


def _cors(response: Response) -> None:
    """Anyone may read this from a browser on any site: no credentials, GET only."""
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = "*"
    headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
    headers["Access-Control-Allow-Headers"] = "Accept, Content-Type"
    headers["Access-Control-Max-Age"] = "86400"


@bp.before_request
def _within_the_limit() -> None:
    """The rate limit is counted in front of Flask (`api.limit`); over it, the JSON 429."""
    over = limit.refused()
    if over is not None:
        raise over


@bp.after_request
def _public_read_only(response: Response) -> Response:
    _cors(response)
    if request.method == "OPTIONS" and response.status_code < 400:  # a CORS preflight
        response.status_code = 204
        response.headers["Allow"] = "GET, HEAD, OPTIONS"
        response.set_data(b"")
        response.headers.pop("Content-Type", None)
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    else:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_response(
    status: int, message: str | None = None, *, field: str | None = None
) -> Response:
    """The one shape of every error the API answers (the `Error` schema of the OpenAPI
    document): `{"error": {"code": ..., "message": ..., "field": ...}}`."""
    body = {
        "error": {
            "code": ERROR_CODES.get(status, "bad_request" if status < 500 else "server_error"),
            "message": message or ERROR_MESSAGES.get(status, "The request could not be answered."),
            "field": field,
        }
    }
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    _cors(response)
    return response


class BadQuery(HTTPException):
    """A query parameter the API cannot use: a 400 that names the parameter."""

    code = 400

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    message = error.description if isinstance(error, BadQuery) else None
    if status == 429 and error.description:
        message = f"Too many requests ({error.description}): wait a minute and try again."
    response = error_response(status, message, field=getattr(error, "field", None))
    for name, value in error.get_headers():  # Allow on a 405, Retry-After on a 429
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _server_error(_error: Exception) -> Response:
    transactions.abandon()  # the request rolls back anyway; this answer must not read a failed one
    return error_response(500)


# Flask prefers the app's handler for a status code to a blueprint's for a class, so each status
# the app has an HTML page for gets one here too, and HTTPException catches any other.
for _status in (400, 403, 404, 405, 413, 429):
    bp.register_error_handler(_status, _http_error)
bp.register_error_handler(HTTPException, _http_error)
bp.register_error_handler(InternalServerError, _server_error)


def json_for_unrouted_api_paths() -> Response | None:
    """A `before_request` hook for the whole app: a request under /api that the URL map could not
    route (an unknown address, a method other than GET) is answered in JSON here, since no
    blueprint's error handler sees a routing error. The rest of the site keeps its HTML pages."""
    error = request.routing_exception
    if not isinstance(error, HTTPException) or (error.code or 0) < 400:
        return None  # routed, or a redirect (a trailing slash)
    if request.path != "/api" and not request.path.startswith("/api/"):
        return None
    over = limit.refused()
    if over is not None:  # over the limit, an unknown address is refused as a known one is
        return _http_error(over)
    return _http_error(error)


# --- reading -------------------------------------------------------------------------------------


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """A query parameter as a whole number within [low, high]; anything else is a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    message = f"{name} must be a whole number from {low} to {high}."
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)):
        raise BadQuery(name, message)
    value = int(raw)
    if not low <= value <= high:
        raise BadQuery(name, message)
    return value


def _when_arg() -> str:
    when = request.args.get("when", "upcoming")
    if when not in WHEN:
        raise BadQuery("when", "when must be upcoming or past.")
    return when


# --- shaping -------------------------------------------------------------------------------------


def _iso(event: Event, moment: datetime | None) -> str | None:
    return event.local(moment).isoformat() if moment else None


def event_json(event: Event, confirmed: int, now: datetime) -> dict[str, Any]:
    """One event as the API shows it. Only public fields: never a speaker's email."""
    problem = registration_problem(event, now)
    booking_open = problem is None
    seats = max(0, event.capacity - confirmed) if booking_open else None
    html = external_url("events.show", slug=event.slug)
    register = external_url("registration.register", slug=event.slug)
    return {
        "slug": event.slug,
        "title": event.title,
        "summary": event.summary,
        "status": "cancelled" if event.is_cancelled else "scheduled",
        "start": _iso(event, event.starts_at),
        "end": _iso(event, event.ends_at),
        "timezone": event.timezone,
        "venue": {"name": event.venue_name, "address": event.venue_address},
        "host": event.host or current_app.config["CHAMBER_NAME"],
        "supporters": event.supporter_list,
        "capacity": event.capacity,
        "seats_left": seats,
        "registration": {
            "open": booking_open,
            "opens_at": _iso(event, event.registration_opens_at),
            "closes_at": _iso(event, event.registration_closes_at),
            "url": register,
        },
        "links": {
            "html": html,
            "ics": external_url("calendar.event_ics", slug=event.slug),
            "register": register,
        },
        "agenda": [
            {
                "start": _iso(event, item.starts_at),
                "end": _iso(event, item.ends_at),
                "title": item.title,
                "kind": item.kind.value,
                "description": item.description,
                "speakers": [
                    {
                        "name": speaker.name,
                        "job_title": speaker.job_title,
                        "organisation": speaker.organisation,
                    }
                    for speaker in item.speakers
                ],
            }
            for item in event.agenda_items
        ],
    }


# --- endpoints -----------------------------------------------------------------------------------


@cache
def _openapi_document() -> bytes:
    """chamber/api/openapi.json, read from the installed package (it is in the wheel)."""
    return files("chamber.api").joinpath("openapi.json").read_bytes()


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(_openapi_document(), mimetype="application/json")


@bp.get("/events")
def events() -> dict[str, Any]:
    now = utcnow()
    past = _when_arg() == "past"
    page = _int_arg("page", 1, 1, MAX_PAGE)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)

    total, rows = queries.public_events_page(past=past, now=now, page=page, per_page=per_page)
    counts = seats.confirmed_counts([event.id for event in rows])

    def link(number: int) -> str:
        when = {"when": "past"} if past else {}
        return external_url("api.events", page=number, per_page=per_page, **when)

    last_page = max(1, -(-total // per_page))
    return {
        "events": [event_json(event, counts.get(event.id, 0), now) for event in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
        "links": {
            "self": link(page),
            "next": link(page + 1) if page < last_page else None,
            "prev": link(min(page - 1, last_page)) if page > 1 else None,
        },
    }


@bp.get("/events/<slug>")
def event(slug: str) -> dict[str, Any]:
    if "\x00" in slug:  # PostgreSQL refuses a NUL in a query (a 500)
        abort(404)
    found = event_with_agenda(slug)
    if found is None or found.is_draft:
        abort(404)
    return event_json(found, seats.confirmed_count(found.id), utcnow())
