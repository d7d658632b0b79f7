"""The API's rate limit, counted in front of Flask.

Every request under /api counts against `CHAMBER_API_LIMIT_PER_ADDRESS`, kept answers and 304s
included, so it is counted before anything answers it: by `ApiLimit`, a WSGI middleware that sits
in front of the page cache's (`core.pagecache`), which can then answer a kept API page without
Flask at all. The counting is the `limits` library's, through Flask-Limiter's own strategy and
store (`CHAMBER_RATELIMIT_STORAGE_URL`: memory, or Redis shared by every process), under the same
key prefix; the address is the client's as every other limit sees it
(`extensions.address_key`, after ProxyFix). A request over the limit goes on to Flask, which
answers the API's JSON 429 with Retry-After (`refused`); every answer carries the
`X-RateLimit-*` headers. If the store does not answer, the request passes, and that is logged,
as for every other limit.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import limits
from flask import Flask, request
from werkzeug.exceptions import TooManyRequests

from chamber.core import pagecache
from chamber.extensions import address_key, limiter

log = logging.getLogger(__name__)

PREFIX = "/api/"
_VERDICT = "chamber.api.limit"  # in the WSGI environ: this request's `Verdict`
_SCOPE = "api"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    described: str  # the limit that decides, as `limits` writes it: "120 per 1 minute"
    limit: int
    remaining: int
    reset_at: float  # when the window ends, in seconds since the epoch

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(self.reset_at))),
        ]

    def retry_after(self) -> int:
        return max(1, int(self.reset_at - time.time()))


class ApiLimit:
    """Counts each request under /api against the API's limit before the page cache or Flask
    answers it, and adds the `X-RateLimit-*` headers to the answer."""

    def __init__(self, app: Flask, wsgi_app: Any):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not (path.startswith(PREFIX) or path == PREFIX[:-1]):
            return self.wsgi_app(environ, start_response)
        verdict = self._count(environ)
        if verdict is None:
            return self.wsgi_app(environ, start_response)
        environ[_VERDICT] = verdict
        if not verdict.allowed:
            environ[pagecache.FLASK_ANSWERS] = True  # the 429, never a kept page
        extra = verdict.headers()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *extra], exc_info)

        return self.wsgi_app(environ, start)

    def _count(self, environ: dict[str, Any]) -> Verdict | None:
        config = self.app.config
        if not (limiter.enabled and config.get("RATELIMIT_ENABLED", True)):
            return None
        strategy = limiter.limiter
        identifiers = [
            str(config["RATELIMIT_KEY_PREFIX"]),
            address_key(environ.get("REMOTE_ADDR")),
            _SCOPE,
        ]
        try:
            items = _parsed(str(config["API_LIMIT_PER_ADDRESS"]))
            allowed = all([strategy.hit(item, *identifiers) for item in items])  # each counts
            tightest = min(
                ((item, strategy.get_window_stats(item, *identifiers)) for item in items),
                key=lambda pair: pair[1].remaining,
            )
        except Exception:  # noqa: BLE001 - a store that fails lets the request pass, logged
            log.exception("The API's rate limit could not be counted")
            return None
        item, stats = tightest
        return Verdict(allowed, str(item), item.amount, max(0, stats.remaining), stats.reset_time)


def refused() -> TooManyRequests | None:
    """The 429 to raise if this request is over the API's limit (counted in front of Flask),
    with its Retry-After; else None."""
    verdict: Verdict | None = request.environ.get(_VERDICT)
    if verdict is None or verdict.allowed:
        return None
    return TooManyRequests(verdict.described, retry_after=verdict.retry_after())


@lru_cache(maxsize=16)
def _parsed(value: str) -> list[limits.RateLimitItem]:
    return limits.parse_many(value)


def init_app(app: Flask) -> None:
    """In front of the page cache's middleware (installed by `core`, earlier)."""
    app.wsgi_app = ApiLimit(app, app.wsgi_app)  # type: ignore[method-assign]
