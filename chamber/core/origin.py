"""The same-origin half of the CSRF defence: a form post must say, through the browser's `Origin`
header (or, without one, its `Referer`), that it was sent from a page of this site.

Flask-WTF checks the form token; this replaces its HTTPS-only Referer check
(`WTF_CSRF_SSL_STRICT`, off in `config.defaults`), which refused every post that came without a
Referer: from a page that sends none (`Referrer-Policy: no-referrer`), or from a browser or
privacy tool that strips it. Every current browser sends `Origin` on a POST, and a page cannot
stop it being sent, so it is the better witness:

- `Origin` present: it must be this site's, else the post is refused. `Origin: null` (sent by
  sandboxed frames and by pages with `no-referrer`, which is why pages reached by a secret link use
  `Referrer-Policy: same-origin`) is refused too.
- no `Origin` but a `Referer`: the Referer's origin must be this site's.
- neither: not a browser, so not a cross-site forgery; the form token alone decides.

"This site" is the request's own scheme and host (as the `CHAMBER_PROXY_COUNT` trusted proxies
report them, `X-Forwarded-Proto` and `-Host`) or the origin of `CHAMBER_BASE_URL`.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app, g, request
from flask_wtf.csrf import CSRFError

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) address, lower-cased and without a default port;
    None for anything else (`null`, `about:blank`, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def site_origins() -> set[str]:
    """The origins a form of this site is posted from."""
    own = origin_of(f"{request.scheme}://{request.host}")
    configured = origin_of(current_app.config["BASE_URL"])
    return {origin for origin in (own, configured) if origin}


def check_same_origin() -> None:
    """A `before_request` hook, registered after Flask-WTF's: it checks exactly the requests whose
    form token Flask-WTF has just accepted (`g.csrf_valid`), so `@csrf.exempt` views (one-click
    unsubscribe, the API) and safe methods are left alone."""
    if not g.get("csrf_valid"):
        return
    origin = request.headers.get("Origin")
    if origin is not None:
        witness, sent = "Origin", origin
    elif request.referrer:
        witness, sent = "Referer", request.referrer
    else:
        return
    if origin_of(sent) not in site_origins():
        logger.info("Refused a form post with %s %r", witness, sent[:200])
        raise CSRFError(f"The {witness} header does not name this site.")
