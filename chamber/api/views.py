"""The read-only JSON API: published (and cancelled) events with their agendas. See docs/api.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, request

from chamber.api import queries
from chamber.core import transactions
from chamber.core.pagination import MAX_PAGE
from chamber.core.times import utcnow
from chamber.core.urls import external_url
from chamber.events.models import Event
from chamber.events.services import event_with_agenda
from chamber.extensions import csrf, limiter
from chamber.registration import seats
from chamber.registration.services import registration_problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
limiter.limit("120 per minute")(bp)

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50
CACHE_SECONDS = 60


# --- responses -----------------------------------------------------------------------------------


@bp.after_request
def _public_read_only(response):
    """Anyone may read this from a browser on any site: no credentials, GET only."""
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = "*"
    headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
    headers["Access-Control-Allow-Headers"] = "Accept, Content-Type"
    headers["Access-Control-Max-Age"] = "86400"
    headers["Access-Control-Expose-Headers"] = "Link"
    if request.method == "OPTIONS":  # a CORS preflight: nothing but the headers
        response.status_code = 204
        response.headers["Allow"] = "GET, HEAD, OPTIONS"
        response.set_data(b"")
        response.headers.pop("Content-Type", None)
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    else:
        headers.setdefault("Cache-Control", "no-store")
    return response


def _error(code: int, message: str):
    return {"error": message}, code


@bp.errorhandler(404)
def _not_found(_error_):
    return _error(404, "Not found.")


@bp.errorhandler(429)
def _too_many(_error_):
    return _error(429, "Too many requests: wait a minute and try again.")


@bp.errorhandler(500)
def _server_error(_error_):
    transactions.abandon()  # the request rolls back anyway; this page must not read a failed one
    return _error(500, "Something went wrong; it has been logged.")


# --- reading -------------------------------------------------------------------------------------


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """A query argument as a number within [low, high]; anything malformed means the default."""
    try:
        value = int(request.args.get(name, default))
    except (TypeError, ValueError):
        value = default
    return min(max(value, low), high)


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


@bp.get("/events")
def events():
    now = utcnow()
    past = request.args.get("when") == "past"
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
def event(slug: str):
    if "\x00" in slug:  # PostgreSQL refuses a NUL in a query (a 500)
        abort(404)
    found = event_with_agenda(slug)
    if found is None or found.is_draft:
        abort(404)
    return event_json(found, seats.confirmed_count(found.id), utcnow())


@bp.route("/<path:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(anything: str):
    """Anything else under /api/v1 is JSON, never the HTML error page: read-only, so 405 or 404."""
    if request.method != "GET":
        body, code = _error(405, "This API is read-only: use GET.")
        return body, code, {"Allow": "GET, OPTIONS"}
    return _error(404, "Not found.")
