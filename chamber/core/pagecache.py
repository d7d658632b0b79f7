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

import contextlib
import functools
import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from cachelib import BaseCache, NullCache, RedisCache, SimpleCache
from flask import Flask, Response, current_app, g, request, session
from sqlalchemy import (
    Engine,
    Integer,
    Update,
    UpdateBase,
    bindparam,
    create_engine,
    event,
    update,
)
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date, parse_cookie, parse_date, parse_etags, quote_etag

from chamber.core.times import UTCDateTime, utcnow
from chamber.extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")

# Tables whose rows no public page shows: changing them leaves every public page as it was. Any
# other table's change raises the version (a new table is public until it is listed here).
PRIVATE_TABLES = frozenset(
    {
        "staff_user",
        "staff_session",
        "staff_recovery_code",
        "staff_policy",
        "password_reset",
        "audit_entry",
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
        "organisation",
        "contact",
        "organisation_tag",
        "campaign",
        "campaign_resource",
        "campaign_recipient",
        "topic_opt_out",
        "subscription_request",
        "marketing_token",
        "segment",
        "import_job",
        "import_job_row",
        "import_job_key",
        "merge_record",
        "delegate_reminder",
        "event_message",
        "link_check_run",
        "link_check_schedule",
        "public_version",
        "worker_heartbeat",
        "retention_run",
    }
)
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
    versions: VersionReader


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = PageCache(
        store=_store(app.config),
        seconds=int(app.config["CACHE_SECONDS"]),
        proxy_seconds=int(app.config["PROXY_CACHE_SECONDS"]),
        endpoints=set(),
        versions=VersionReader(app),
    )
    app.wsgi_app = PageCacheMiddleware(app, app.wsgi_app)  # type: ignore[method-assign]
    app.after_request(_keep_in_cache)


def public_pages(app: Flask, *endpoints: str) -> None:
    """Mark endpoints as public pages: the same for every visitor without a session, answered
    from the cache before Flask. A page under a rate limit is counted in front of this cache's
    middleware (as the API's are, `api.limit`)."""
    cache: PageCache = app.extensions[_EXTENSION]
    cache.endpoints.update(endpoints)


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


READ_VERSION = "SELECT number, changed_at FROM public_version WHERE id = 1"
# The same on PostgreSQL for `VersionReader`, the time as whole microseconds since 1970 (the column
# holds UTC without a zone, which `extract` reads as UTC).
READ_VERSION_LIBPQ = (
    b"SELECT number, (extract(epoch FROM changed_at) * 1000000)::int8"
    b" FROM public_version WHERE id = 1"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PREPARED = b"chamber_read_version"
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
_COMMAND_OK = psycopg.pq.ExecStatus.COMMAND_OK
_SQLSTATE = psycopg.pq.DiagnosticField.SQLSTATE
_CONNECTION_OK = psycopg.pq.ConnStatus.OK


def current_version() -> tuple[int, datetime | None]:
    """The public version and when it last rose (one primary-key read)."""
    return _version_from(db.session.connection().exec_driver_sql(READ_VERSION).first())


def _version_from(row: Any) -> tuple[int, datetime | None]:
    """Plain SQL, not an ORM statement: the middleware reads this on every public request."""
    if row is None:
        return 0, None
    number, changed_at = row
    if isinstance(changed_at, str):  # SQLite hands back the stored text
        changed_at = datetime.fromisoformat(changed_at)
    if changed_at is not None and changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    return int(number), changed_at


IDLE_CONNECTIONS = 8  # connections of ended threads kept for new ones; more are closed


class VersionReader:
    """Reads the public version for the middleware, in one round trip to the database.

    Through the app's engine the read cost more than everything else a 304 does: the pool pings
    each connection it hands out (`pool_pre_ping`) and each use is a transaction rolled back
    afterwards (on PostgreSQL four more round trips), and SQLAlchemy's execution path costs twice
    the driver's own work. So this reader has an engine of its own on the same database, in
    autocommit, and each thread keeps one connection of it for its reads (taken out of the
    engine's pool: checking a connection out and in again for each read cost a sixth of a 304),
    and sends its one statement straight to the driver. A connection found dead (the server
    restarted) is thrown away and the read tried once more on a new one. The engine is made at
    the first read (after gunicorn has forked); it and every thread's connection are closed when
    the app's own engine is disposed. A thread that ends leaves its connection to the next new
    thread (up to `IDLE_CONNECTIONS` wait; more are closed), so a server that starts a thread a
    request (the demo's, `flask run`) holds no more connections than it runs threads at once."""

    def __init__(self, app: Flask):
        self.app = app
        self._engine: Engine | None = None
        self._making = threading.Lock()
        # .held: (process id, generation, the pool's detached proxy, its DBAPI connection)
        self._local = threading.local()
        self._open: list[Any] = []  # every thread's (detached proxy), to close on disposal
        self._generation = 0  # rises when they are closed: a thread's own is then stale
        self._idle: list[Any] = []  # connections of threads that ended, for the next threads

    def read(self) -> tuple[int, datetime | None]:
        engine = self._engine or self._make_engine()
        try:
            return _version_from(self._query(engine))
        except engine.dialect.loaded_dbapi.Error as error:
            if not getattr(error, "_chamber_disconnected", False):
                raise
            return _version_from(self._query(engine))  # on a new connection: once more

    def _query(self, engine: Engine) -> Any:
        if engine.pool.__class__.__name__ in ("StaticPool", "SingletonThreadPool"):
            return self._query_pooled(engine)  # a database in memory: the pool's one connection
        connection = self._connection(engine)
        if engine.dialect.name == "postgresql":
            return self._query_libpq(connection)
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(READ_VERSION)
            return cursor.fetchone()
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, connection, cursor):
                error._chamber_disconnected = True  # type: ignore[attr-defined]
                self._drop()
            raise
        finally:
            if cursor is not None:
                with contextlib.suppress(engine.dialect.loaded_dbapi.Error):
                    cursor.close()  # (a cursor of a connection just dropped may refuse)

    def _query_libpq(self, connection: Any) -> Any:
        """On PostgreSQL, straight through libpq (psycopg's `pq`, which lets other threads run
        while it waits): a cursor's execute and fetch cost two to three times the CPU of the
        whole read here. The time comes as microseconds since 1970, so no text of the server's
        date style is parsed."""
        pgconn = connection.pgconn
        if getattr(self._local, "prepared_on", None) is not pgconn:
            # Prepared once a connection, as psycopg's cursor would after a few reads: the server
            # then neither parses nor plans it again (half of its work for the read). A
            # connection a thread that ended left (`_thread_ended`) has it already.
            prepared = pgconn.prepare(_PREPARED, READ_VERSION_LIBPQ)
            if prepared.status != _COMMAND_OK and prepared.error_field(_SQLSTATE) != b"42P05":
                raise self._failed(pgconn)
            self._local.prepared_on = pgconn
        result = pgconn.exec_prepared(_PREPARED, None)
        if result.status != _TUPLES_OK and pgconn.status == _CONNECTION_OK:
            # The statement failed, not the connection: the server no longer has it (DEALLOCATE,
            # a pooler in between) or its plan no longer fits (the table was altered). Made
            # afresh, once; a DEALLOCATE of one that is gone is no matter.
            pgconn.exec_(b"DEALLOCATE " + _PREPARED)
            if pgconn.prepare(_PREPARED, READ_VERSION_LIBPQ).status == _COMMAND_OK:
                result = pgconn.exec_prepared(_PREPARED, None)
        if result.status != _TUPLES_OK:
            raise self._failed(pgconn)
        if result.ntuples == 0:
            return None
        number, micro = result.get_value(0, 0), result.get_value(0, 1)
        changed_at = None if micro is None else _EPOCH + timedelta(microseconds=int(micro))
        return int(number), changed_at

    def _failed(self, pgconn: Any) -> Exception:
        """The error of a read through libpq that failed; a connection found dead is dropped
        (`read` tries once more on a new one)."""
        message = pgconn.get_error_message() or "the public version could not be read"
        error = psycopg.OperationalError(message)
        if pgconn.status != _CONNECTION_OK:
            error._chamber_disconnected = True  # type: ignore[attr-defined]
            self._drop()
        return error

    def _connection(self, engine: Engine) -> Any:
        held = getattr(self._local, "held", None)
        if held is not None and held[:2] == (os.getpid(), self._generation):
            return held[3]
        with self._making:
            generation = self._generation
            proxied = self._idle.pop() if self._idle else None
        if proxied is None:
            proxied = engine.raw_connection()
            proxied.detach()  # this thread's from now on: closing it closes the connection itself
            with self._making:
                self._open.append(proxied)
        self._local.held = (os.getpid(), generation, proxied, proxied.dbapi_connection)
        # When the thread ends (a server that starts one a request), its connection waits for the
        # next thread rather than staying open for one that is gone.
        weakref.finalize(
            threading.current_thread(), VersionReader._thread_ended, weakref.ref(self), proxied,
            generation,
        )  # fmt: skip
        return proxied.dbapi_connection

    @staticmethod
    def _thread_ended(reader_ref: Any, proxied: Any, generation: int) -> None:
        reader: VersionReader | None = reader_ref()
        if reader is None:
            VersionReader._close(proxied)
            return
        with reader._making:
            keep = (
                generation == reader._generation
                and proxied in reader._open
                and len(reader._idle) < IDLE_CONNECTIONS
            )
            if keep:
                reader._idle.append(proxied)
            elif proxied in reader._open:
                reader._open.remove(proxied)
        if not keep:
            VersionReader._close(proxied)

    def _drop(self) -> None:
        """Close this thread's connection (found dead); its next read opens another."""
        held, self._local.held = getattr(self._local, "held", None), None
        if held is None:
            return
        with self._making:
            if held[2] in self._open:
                self._open.remove(held[2])
        self._close(held[2])

    @staticmethod
    def _close(proxied: Any) -> None:
        with contextlib.suppress(Exception):  # closing what may already be gone
            proxied.close()

    @staticmethod
    def _query_pooled(engine: Engine) -> Any:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(READ_VERSION)
            row = cursor.fetchone()
            cursor.close()
            return row
        finally:
            connection.close()

    def _close_all(self) -> None:
        with self._making:
            connections, self._open, self._idle = self._open, [], []
            self._generation += 1
        for proxied in connections:
            self._close(proxied)

    def _make_engine(self) -> Engine:
        with self._making:
            if self._engine is not None:
                return self._engine
            with self.app.app_context():
                main: Engine = db.engine
            url = main.url
            if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
                self._engine = main  # a database in memory is the app's engine's alone
                return main
            options = dict(self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
            options.update(
                pool_pre_ping=False, isolation_level="AUTOCOMMIT", pool_reset_on_return=None
            )
            engine = create_engine(url, **options)

            def disposed(_main: Engine) -> None:
                self._close_all()
                engine.dispose()

            event.listen(main, "engine_disposed", disposed)
            self._engine = engine
            return engine


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
    if session.in_nested_transaction():
        # A savepoint released (SQLAlchemy sends `before_commit` for those too): the number is
        # raised once, at the real commit. Raising it here would lock its row early, before
        # locks the transaction takes later, and two bookings could then wait on each other.
        return
    session.flush()  # `before_commit` comes before the commit's own flush: see what it will write
    if not session.info.pop(_CHANGED, False):
        return
    result = session.execute(_raise_it(), {"version_changed_at": utcnow()})
    if not getattr(result, "rowcount", 1):  # a database the migration has not seeded
        session.add(PublicVersion(id=1, number=1, changed_at=utcnow()))
        session.flush()
    session.info.pop(_CHANGED, None)  # the UPDATE itself is not a public change


@functools.cache
def _raise_it() -> Update:
    """The version's rise, made once (a Core statement on the table: made anew and run through the
    ORM, it cost a booking about a millisecond of CPU at its commit); the time it changed is the
    parameter `version_changed_at`."""
    version = PublicVersion.__table__
    return (
        update(version)
        .where(version.c.id == 1)
        .values(number=version.c.number + 1, changed_at=bindparam("version_changed_at"))
    )


def last_writes(statements: list[UpdateBase]) -> None:
    """Run a transaction's last writes before its commit, and raise the public version with them
    if the transaction changed a public row: on PostgreSQL in one statement (each write a
    data-modifying CTE of the version's UPDATE), so one round trip, not one per write and
    another for the version at the commit. For writes made while a lock others queue for is
    held (a booking's seat decision, `registration.services.settle_seats`): the commit is then
    the only round trip left under it.

    The statements are Core statements on tables (`Model.__table__`), each changing rows only by
    itself (a CTE does not see another's changes), no two setting a column of the same name (a
    value's parameter is named after its column). A statement on a table with an `onupdate`
    column runs on its own first: SQLAlchemy computes those values only for a statement it runs
    itself. On SQLite they all run one after the other, and the version rises at the commit as
    usual."""
    session = db.session()
    session.flush()  # what the unit of work holds goes first, as it would at the commit
    together = [s for s in statements if not _has_onupdate(s)]
    alone = [s for s in statements if _has_onupdate(s)]
    if (
        session.get_bind().dialect.name != "postgresql"
        or session.in_nested_transaction()  # the version rises at the real commit only
        or not session.info.get(_CHANGED)
    ):
        together, alone = [], statements
    for statement in alone:
        session.execute(statement)
    if not together:
        return
    raise_it = _raise_it()
    for n, statement in enumerate(together):
        raise_it = raise_it.add_cte(statement.cte(f"last_write_{n}"))
    result = session.execute(raise_it, {"version_changed_at": utcnow()})
    if getattr(result, "rowcount", 0) == 1:  # else the commit raises it (or seeds the row)
        session.info.pop(_CHANGED, None)


def _has_onupdate(statement: UpdateBase) -> bool:
    table = getattr(statement, "table", None)
    return any(column.onupdate is not None for column in getattr(table, "columns", ()))


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)


# --- requests ------------------------------------------------------------------------------------
# A hit or a 304 is answered by `PageCacheMiddleware`, in front of Flask: no request context, no
# session, no rate limit, one read of the version. A miss goes on to Flask with the version read
# before rendering (so a page is never kept under a version newer than the rows it was made from),
# and `_keep_in_cache`, the last of the app's after-request hooks but the commit, keeps it with
# every header the hooks gave it.

_ENVIRON = "chamber.pagecache"  # in the WSGI environ: (key, tag, Last-Modified) for a miss
# Set in the WSGI environ by a layer in front (a rate limit that refused the request): Flask must
# answer, never the cache.
FLASK_ANSWERS = "chamber.pagecache.flask_answers"
_NOT_KEPT = frozenset({"set-cookie", "content-length", "date", "etag", "last-modified"})


@dataclass(frozen=True)
class Address:
    """What the middleware learnt of a request it may answer: the page's cache key, its ETag (and
    the header's value, quoted), and its Last-Modified."""

    key: str
    tag: str
    modified: datetime
    endpoint: str
    quoted_tag: str


class PageCacheMiddleware:
    """Answers anonymous GETs of public pages from the cache, before Flask sees them."""

    def __init__(self, app: Flask, wsgi_app: Any):
        self.app, self.wsgi_app = app, wsgi_app
        self.session_cookie = str(app.config["SESSION_COOKIE_NAME"])
        # The public endpoint each path was last matched to (None: not a public page), so that a
        # path asked for again (a popular event, a 304) skips URL matching, a quarter of what a
        # 304 cost. The URL map is fixed once the app is made. Bounded: emptied when full.
        self.matched: dict[str, str | None] = {}
        # The headers of a 304 for each kept page's key, made once rather than on every request
        # (the kept page's read from the store, the headers copied and filtered, the dates: half
        # of what a 304 cost besides reading the version). Keyed by what they depend on (the key
        # names the version and the window of time), so never out of date; bounded as `matched`.
        self.not_modified: dict[str, list[tuple[str, str]]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        address = self._address(environ)
        if address is None:
            return self.wsgi_app(environ, start_response)
        environ[_ENVIRON] = address
        cache: PageCache = self.app.extensions[_EXTENSION]
        answer = _answer(environ, address, cache, self.not_modified)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _address(self, environ: dict[str, Any]) -> Address | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get(FLASK_ANSWERS):
            return None
        if "HTTP_COOKIE" in environ and self.session_cookie in parse_cookie(environ):
            return None
        endpoint = self._endpoint(environ)
        if endpoint is None:
            return None
        cache: PageCache = self.app.extensions[_EXTENSION]
        try:
            version, changed_at = cache.versions.read()
        except Exception:  # noqa: BLE001 - no cache without the version: Flask renders the page
            log.warning("The public version could not be read", exc_info=True)
            return None
        path = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        key, tag, modified = _key_tag_and_date(path, version, changed_at, cache.seconds)
        return Address(key, tag, modified, endpoint, quote_etag(tag))

    def _endpoint(self, environ: dict[str, Any]) -> str | None:
        """The public endpoint this GET or HEAD asks for, or None (not a public page, or not
        routed: a redirect, a 404 or a 405, which Flask answers)."""
        path = environ.get("PATH_INFO", "")
        known = self.matched.get(path, _UNKNOWN)  # one lookup: another thread may empty it
        if known is not _UNKNOWN:
            return known  # type: ignore[return-value]
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            endpoint = None
        cache: PageCache = self.app.extensions[_EXTENSION]
        found = str(endpoint) if endpoint in cache.endpoints else None
        _remember(self.matched, path, found)
        return found


MATCHED_PATHS = 4096  # paths whose endpoint, and kept pages whose 304, the middleware keeps
_UNKNOWN = object()
K = TypeVar("K")


def _remember(memo: dict[K, T], key: K, value: T) -> None:
    """Keep `value` in one of the middleware's memos, emptied when it holds `MATCHED_PATHS`."""
    if len(memo) >= MATCHED_PATHS:
        memo.clear()
    memo[key] = value


def _answer(
    environ: dict[str, Any],
    address: Address,
    cache: PageCache,
    not_modified: dict[str, list[tuple[str, str]]],
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """A 304, or the kept page, or None for Flask to render it. A client that sends back this
    page's own ETag, as a browser does, gets the 304 the page's first one had (`not_modified`,
    by key), without the page being read from the store."""
    if environ.get("HTTP_IF_NONE_MATCH") == address.quoted_tag:
        known = not_modified.get(address.key)
        if known is not None:
            return "304 Not Modified", list(known), b""
    kept = _read(cache, address.key)
    headers = _fresh_headers(kept[1] if kept else None, address, cache)
    if _unchanged(environ, address, kept=kept is not None):
        answer = _without_body(headers)
        if kept is not None:  # the kept page's own headers (a 304 of a page not kept has none)
            _remember(not_modified, address.key, answer)
        return "304 Not Modified", list(answer), b""
    if kept is None:
        return None
    body = kept[0]
    headers.append(("Content-Length", str(len(body))))
    return "200 OK", headers, b"" if environ.get("REQUEST_METHOD") == "HEAD" else body


def _read(cache: PageCache, key: str) -> tuple[bytes, list[tuple[str, str]]] | None:
    try:
        kept: tuple[bytes, list[tuple[str, str]]] | None = cache.store.get(key)
    except Exception:  # noqa: BLE001 - a cache that fails costs speed, never the page
        log.warning("The page cache could not be read", exc_info=True)
        return None
    return kept


# --- pages kept without their form token -------------------------------------------------------

# Stands for the visitor's form token in a kept page; each request puts its own token in its place.
# A page's text cannot forge it to any effect: the token it would become is the visitor's own.
TOKEN_SLOT = "chamber-form-token-slot-9f2c71"  # noqa: S105 - a placeholder, not a secret


def may_keep_page() -> bool:
    """Whether this request's page may come from `kept_page`: an anonymous GET with no message
    waiting to be shown (staff, signed in by Flask-Login's `_user_id`, see their own name and
    links; a flash is for one visitor)."""
    return (
        request.method in ("GET", "HEAD")
        and "_user_id" not in session
        and not session.get("_flashes")
    )


def kept_page(name: str, parts: tuple[object, ...], render: Callable[[], T]) -> T:
    """A page that holds a form, the same for every anonymous visitor but for the form token:
    rendered once per public version and time window (as kept public pages are, see the module's
    docstring) with `TOKEN_SLOT` as its token, and kept. The caller puts this visitor's token in
    the slot (`with_token`). Only for pages that show nothing personal. `render` may return the
    page with what else the caller needs to know about it (see `kept`)."""
    cache = _cache()
    version, _changed_at = current_version()  # in the request's transaction, as the page's reads
    key = _kept_key(name, parts, version, cache)
    try:
        found = cache.store.get(key)
    except Exception:  # noqa: BLE001 - a cache that fails costs speed, never the page
        log.warning("The page cache could not read %s", name, exc_info=True)
        found = None
    if found is not None:
        return found  # type: ignore[no-any-return]
    page = render()
    try:
        cache.store.set(key, page, timeout=cache.seconds)
    except Exception:  # noqa: BLE001
        log.warning("The page cache could not keep %s", name, exc_info=True)
    return page


def kept(name: str, parts: tuple[object, ...]) -> Any | None:
    """What `kept_page` has kept for `name` and `parts` at the public version now, or None: for a
    view that answers from it without opening a transaction, as the middleware does (the version
    is read through the middleware's own reader: one statement, no pool checkout, no commit)."""
    cache = _cache()
    try:
        version, _changed_at = cache.versions.read()
        return cache.store.get(_kept_key(name, parts, version, cache))
    except Exception:  # noqa: BLE001 - without the cache the view reads and renders the page
        log.warning("The page cache could not read %s", name, exc_info=True)
        return None


def _kept_key(name: str, parts: tuple[object, ...], version: int, cache: PageCache) -> str:
    window = int(utcnow().timestamp()) // max(1, cache.seconds)
    digest = hashlib.sha256(repr((name, parts)).encode()).hexdigest()[:24]
    return f"form-{version}-{window}-{digest}"


def with_token(page: str, token: str) -> str:
    return page.replace(TOKEN_SLOT, token)


def _key_tag_and_date(
    path: str, version: int, changed_at: datetime | None, seconds: int
) -> tuple[str, str, datetime]:
    """The cache key and ETag of this address at this version in this window of time, and the
    page's Last-Modified: when the version rose or the window began, whichever is later."""
    seconds = max(1, seconds)
    window = int(utcnow().timestamp()) // seconds
    began = datetime.fromtimestamp(window * seconds, UTC)
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    name = f"{version}-{window}-{digest}"
    return name, name, max(changed_at, began) if changed_at else began


def _unchanged(environ: dict[str, Any], address: Address, *, kept: bool) -> bool:
    """Whether the client's copy still holds. Only a page known to exist as a 200 can be "not
    modified": by its own ETag (which only a 200 gave out), or, by `*` or a date, when it is kept
    (an address the view would refuse, a 400 or a 404, is never answered 304)."""
    if environ.get("HTTP_IF_NONE_MATCH"):
        tags = parse_etags(environ["HTTP_IF_NONE_MATCH"])
        return address.tag in tags.as_set(include_weak=True) or (kept and tags.star_tag)
    since = parse_date(environ.get("HTTP_IF_MODIFIED_SINCE"))
    return kept and since is not None and address.modified.replace(microsecond=0) <= since


def _fresh_headers(
    kept: list[tuple[str, str]] | None, address: Address, cache: PageCache
) -> list[tuple[str, str]]:
    headers = list(kept) if kept else [("Cache-Control", _cache_control(cache))]
    headers.append(("ETag", address.quoted_tag))
    headers.append(("Last-Modified", http_date(address.modified)))
    return headers


def _without_body(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-disposition")]


def _cache_control(cache: PageCache) -> str:
    """Browsers ask again each time (a 304 is cheap); a proxy or CDN may hold the page briefly."""
    return f"public, max-age=0, must-revalidate, s-maxage={cache.proxy_seconds}"


def _keep_in_cache(response: Response) -> Response:
    address: Address | None = request.environ.get(_ENVIRON)
    if address is None or response.status_code != 200:
        return response
    cache = _cache()
    response.set_etag(address.tag)
    response.last_modified = address.modified
    response.headers.setdefault("Cache-Control", _cache_control(cache))
    if "Set-Cookie" in response.headers or g.get("csrf_token") or response.is_streamed:
        return response  # personal: made for this visitor alone
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_KEPT]
    try:
        cache.store.set(address.key, (response.get_data(), headers), timeout=cache.seconds)
    except Exception:  # noqa: BLE001 - a cache that fails costs speed, never the page
        log.warning("The page cache could not keep %s", request.path, exc_info=True)
    return response
