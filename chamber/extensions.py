"""The Flask extensions, created unbound here and bound to the app in `create_app`."""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
from collections.abc import Callable

import limits
from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from chamber.config import shared_memory_warning

log = logging.getLogger(__name__)

# Named constraints, so that Alembic can alter and drop them on every database (SQLite batch mode
# included) and so that the names in migrations are predictable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def client_address() -> str:
    """Who is asking, for rate limits: the address the connection came from (`remote_addr`, which
    ProxyFix sets from X-Forwarded-For only for the `CHAMBER_PROXY_COUNT` proxies we trust). An
    IPv6 client counts as its /64, the block one home or office is given, so that rotating through
    its own addresses does not reset the counts."""
    return address_key(request.remote_addr)


def address_key(remote_addr: str | None) -> str:
    """`client_address` of a connection from `remote_addr` (for a layer in front of Flask)."""
    address = remote_addr or ""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class ChamberLimiter(Limiter):
    """Flask-Limiter, plus what Chamber needs of it: a warning when the web processes each keep
    their own counters, a look at a counter without adding to it, and a count for a request that
    a limit let through unchecked (a limit that counts every failure but refuses only some)."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        app.after_request(self._count_later)
        warned = False

        @app.before_request
        def _warn_if_counters_are_not_shared() -> None:
            # The WSGI server says whether it runs several processes (gunicorn: more than one
            # worker); it only says so with a request, so the first request warns, once.
            nonlocal warned
            if warned:
                return
            warned = True
            processes = None if request.environ.get("wsgi.multiprocess") else 1
            warning = shared_memory_warning(app.config["RATELIMIT_STORAGE_URI"], processes)
            if warning:
                log.warning("%s", warning)

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        """Flask-Limiter runs this before every request, for the limits that apply to more than
        one view (default, application and blueprint limits), and each limited view's decorator
        runs it again for the view's own. Chamber sets only views' own limits (the API's is
        counted in front of Flask, `api.limit`), so before a request there is nothing to check:
        skipped, which was a seventh of a kept booking form's time. Were such a limit set, the
        check would run."""
        if in_middleware and not self.limits_every_request():
            return
        super()._check_request_limit(callable_name, in_middleware)

    def limits_every_request(self) -> bool:
        """Whether any limit is set beyond views' own: default, application, blueprint or meta
        limits, or the in-memory fallback (Flask-Limiter's own attributes, read as they are)."""
        manager = self.limit_manager
        return bool(
            manager.default_limits
            or manager.application_limits
            or any(manager._blueprint_limits.values())
            or getattr(self, "_meta_limits", None)
            or (getattr(self, "_in_memory_fallback_enabled", False) and self._in_memory_fallback)
        )

    def _identifiers(self, key: str, endpoint: str) -> list[str]:
        # The layout Flask-Limiter gives a route's `@limit(..., key_func=...)` counters.
        return [self._key_prefix, key, endpoint] if self._key_prefix else [key, endpoint]

    def has_counted(self, limit_value: str, key: str, endpoint: str) -> bool:
        """Whether the limit `limit_value` on `endpoint` has counted anything for `key` in its
        current window: the counters a `@limiter.limit(..., key_func=...)` keeps, read alone."""
        identifiers = self._identifiers(key, endpoint)
        return any(
            self.limiter.get_window_stats(item, *identifiers).remaining < item.amount
            for item in limits.parse_many(limit_value)
        )

    def count_after(
        self, limit_value: str, key: str, endpoint: str, when: Callable[[Response], bool]
    ) -> None:
        """Add this request to the limit's counter for `key` once its response is known, if
        `when(response)`: for a request the limit was told to let through (`exempt_when`)."""
        g.setdefault("_chamber_counts", {})[(limit_value, key, endpoint)] = when

    def _count_later(self, response: Response) -> Response:
        for (limit_value, key, endpoint), when in g.pop("_chamber_counts", {}).items():
            if not when(response):
                continue
            try:
                for item in limits.parse_many(limit_value):
                    self.limiter.hit(item, *self._identifiers(key, endpoint))
            except Exception:  # the store is down: as with every limit, let it pass and log it
                log.exception("Failed to count towards a rate limit")
        return response


limiter = ChamberLimiter(key_func=client_address, default_limits=[])


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, _record) -> None:
    """SQLite as a real application database: enforce foreign keys, let readers and a writer
    work at once (WAL), wait for a lock instead of failing, and sync at checkpoints, not per commit."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    for pragma in (
        "foreign_keys=ON",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=10000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
