"""Public pages served from a cache of rendered bytes, and answered with 304 when unchanged.

What a public page shows depends on rows staff and bookings change. Rather than track which page
shows which row, every transaction that changes a row anyone might see in public (anything but the
tables in `PRIVATE_TABLES`) raises one number, `public_version.number`, in the same transaction.
A cached page is keyed by that number, so a change is on the next request: a cache entry is
never wrong, only unused. Reading the number is the one query a cache hit or a 304 costs.

Only these requests use the cache: GET or HEAD of an endpoint a domain marked public
(`public_pages(app, ...)`), sent without the session cookie (staff, and anyone with a message
waiting, have one and always get a fresh page). Only these answers are kept: 200, with no cookie
set and no form token made while rendering. Time moves pages on too (an event starts, booking
closes) without any row changing, so the key and the ETag also name the current window of
`CACHE_SECONDS`: what time changes shows within that many seconds.

The store is cachelib's: in the process by default (each web process keeps its own copy, and the
shared number keeps every copy right), or Redis with `CHAMBER_CACHE_URL=redis://...`, shared by
every process and host.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachelib import BaseCache, NullCache, RedisCache, SimpleCache
from flask import Flask, Response, current_app, g, request
from sqlalchemy import Integer, event, update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from chamber.core.times import UTCDateTime, utcnow
from chamber.extensions import db

log = logging.getLogger(__name__)

# Tables whose rows no public page shows: changing them leaves every public page as it was. Any
# other table's change raises the version (a new table is public until it is listed here).
PRIVATE_TABLES = frozenset(
    {
        "staff_user",
        "staff_session",
        "outbox_message",
        "outbox_attachment",
        "suppression",
        "unsubscribe_token",
        "booking_token",
        "delegate_token",
        "survey_invitation",
        "survey_token",
        "survey_response",
        "survey_answer",
        "consent",
        "link_check_run",
        "link_check_schedule",
        "public_version",
    }
)
# What a cached answer keeps besides its body; the rest (security headers, CORS) is added anew by
# the app's after-request hooks on every answer.
KEPT_HEADERS = ("Content-Type", "Content-Disposition", "Link", "Cache-Control")
_CHANGED = "chamber.public_changed"  # in `Session.info`: this transaction changed a public row
_EXTENSION = "chamber.pagecache"


class PublicVersion(db.Model):  # type: ignore[name-defined,misc]  # Flask-SQLAlchemy's dynamic base
    """One row: a number that rises with every committed change to what public pages show."""

    __tablename__ = "public_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


@dataclass
class PageCache:
    store: BaseCache
    seconds: int
    proxy_seconds: int
    endpoints: set[str]


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = PageCache(
        store=_store(app.config),
        seconds=int(app.config["CACHE_SECONDS"]),
        proxy_seconds=int(app.config["PROXY_CACHE_SECONDS"]),
        endpoints=set(),
    )
    app.before_request(_answer_from_cache)
    app.after_request(_keep_in_cache)


def public_pages(app: Flask, *endpoints: str) -> None:
    """Mark endpoints as public pages: the same for every visitor without a session."""
    app.extensions[_EXTENSION].endpoints.update(endpoints)


def _store(config: dict[str, Any]) -> BaseCache:
    url = str(config["CACHE_URL"])
    scheme = url.partition("://")[0]
    if scheme == "none":
        return NullCache()
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        return RedisCache(host=client, key_prefix="chamber-page:")
    return SimpleCache(threshold=int(config["CACHE_ENTRIES"]))


def _cache() -> PageCache:
    cache: PageCache = current_app.extensions[_EXTENSION]
    return cache


# --- the version -------------------------------------------------------------------------------


def current_version() -> tuple[int, datetime | None]:
    """The public version and when it last rose (one primary-key read)."""
    row = db.session.execute(
        db.select(PublicVersion.number, PublicVersion.changed_at).where(PublicVersion.id == 1)
    ).first()
    return (row.number, row.changed_at) if row else (0, None)


def _touches_public(tables: Iterable[str]) -> bool:
    return any(name not in PRIVATE_TABLES for name in tables)


@event.listens_for(Session, "before_flush")
def _note_changes(session: Session, _context: object, _instances: object) -> None:
    if session.info.get(_CHANGED):
        return
    changed = [
        *session.new,
        *session.deleted,
        *(o for o in session.dirty if session.is_modified(o)),
    ]
    if _touches_public(getattr(o, "__tablename__", "") for o in changed):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_statements(state: ORMExecuteState) -> None:
    """INSERT, UPDATE and DELETE statements run without the unit of work (race-safe conditional
    updates, bulk inserts)."""
    if state.session.info.get(_CHANGED) or not (
        state.is_update or state.is_delete or state.is_insert
    ):
        return
    table = getattr(state.statement, "table", None)
    if _touches_public([getattr(table, "name", "")]):
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _raise_version(session: Session) -> None:
    session.flush()  # `before_commit` comes before the commit's own flush: see what it will write
    if not session.info.pop(_CHANGED, False):
        return
    result = session.execute(
        update(PublicVersion)
        .where(PublicVersion.id == 1)
        .values(number=PublicVersion.number + 1, changed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 1):  # a database the migration has not seeded
        session.add(PublicVersion(id=1, number=1, changed_at=utcnow()))
        session.flush()
    session.info.pop(_CHANGED, None)  # the UPDATE itself is not a public change


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)


# --- requests ------------------------------------------------------------------------------------


def _cacheable() -> bool:
    return (
        request.method in ("GET", "HEAD")
        and request.endpoint in _cache().endpoints
        and current_app.config["SESSION_COOKIE_NAME"] not in request.cookies
    )


def _key_tag_and_date(version: int, changed_at: datetime | None) -> tuple[str, str, datetime]:
    """The cache key and ETag of this address at this version in this window of time, and the
    page's Last-Modified: when the version rose or the window began, whichever is later."""
    seconds = max(1, _cache().seconds)
    window = int(utcnow().timestamp()) // seconds
    began = datetime.fromtimestamp(window * seconds, UTC)
    address = f"{request.host}{request.full_path}"
    digest = hashlib.sha256(address.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    name = f"{version}-{window}-{digest}"
    return name, name, max(changed_at, began) if changed_at else began


def _unchanged(tag: str, modified: datetime) -> bool:
    if request.if_none_match:
        return request.if_none_match.contains_weak(tag)
    since = request.if_modified_since
    return since is not None and modified.replace(microsecond=0) <= since


def _answer_from_cache() -> Response | None:
    if not _cacheable():
        return None
    key, tag, modified = _key_tag_and_date(*current_version())
    g.pagecache = (key, tag, modified)
    if _unchanged(tag, modified):
        return _conditional(Response(status=304), tag, modified)
    try:
        kept = _cache().store.get(key)
    except Exception:  # noqa: BLE001 - a cache that fails costs speed, never the page
        log.warning("The page cache could not be read", exc_info=True)
        kept = None
    if kept is None:
        return None
    body, headers = kept
    g.pagecache_hit = True
    return _conditional(Response(body, headers=headers), tag, modified)


def _conditional(response: Response, tag: str, modified: datetime) -> Response:
    response.set_etag(tag)
    response.last_modified = modified
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = _cache_control()
    return response


def _cache_control() -> str:
    """Browsers ask again each time (a 304 is cheap); a proxy or CDN may hold the page briefly."""
    return f"public, max-age=0, must-revalidate, s-maxage={_cache().proxy_seconds}"


def _keep_in_cache(response: Response) -> Response:
    noted = g.pop("pagecache", None)
    if noted is None or g.pop("pagecache_hit", False) or response.status_code != 200:
        return response
    key, tag, modified = noted
    response = _conditional(response, tag, modified)
    if "Set-Cookie" in response.headers or g.get("csrf_token") or response.is_streamed:
        return response  # personal: made for this visitor alone
    headers = [(name, response.headers[name]) for name in KEPT_HEADERS if name in response.headers]
    try:
        _cache().store.set(key, (response.get_data(), headers), timeout=_cache().seconds)
    except Exception:  # noqa: BLE001 - a cache that fails costs speed, never the page
        log.warning("The page cache could not keep %s", request.path, exc_info=True)
    return response
