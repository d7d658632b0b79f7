"""Absolute links to Chamber's own pages, built by endpoint name at the public address.

Emails, calendar files and the API carry links that leave the site, so they are built from
`CHAMBER_BASE_URL` (scheme, host and any path prefix), never from the request's host, and they
work outside a request too: the worker mints links with no request at all. Building by name means
that renaming or removing a route raises `BuildError` (in a test) instead of mailing a dead link.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote, urlsplit

from flask import current_app
from werkzeug.routing import MapAdapter

# What Flask's `url_for` leaves unquoted in an anchor.
ANCHOR_SAFE = "%!#$&'()*+,/:;=?@"


def external_url(endpoint: str, /, *, _anchor: str | None = None, **values: Any) -> str:
    """`url_for(endpoint, **values, _external=True)` at the configured base URL.

    `endpoint` is the full name (`"events.show"`), since outside a request there is no blueprint
    to be relative to. Values the route does not take become the query string, in the order
    given. Raises `werkzeug.routing.BuildError` for an endpoint that does not exist or a value
    it needs that is missing.
    """
    adapter = _adapter()
    current_app.inject_url_defaults(endpoint, values)
    url = adapter.build(endpoint, values, force_external=True)
    if _anchor is not None:
        url = f"{url}#{quote(_anchor, safe=ANCHOR_SAFE)}"
    return url


def _adapter() -> MapAdapter:
    """The app's URL map bound to the base URL, kept on the app while the base URL stays the same
    (binding it cost as much as building the link; the worker builds two a campaign message)."""
    base_url = current_app.config["BASE_URL"]
    bound = current_app.extensions.get("chamber.url_adapter")
    if bound is None or bound[0] != base_url:
        base = urlsplit(base_url)
        adapter = current_app.url_map.bind(
            base.netloc, script_name=base.path or "/", url_scheme=base.scheme
        )
        bound = current_app.extensions["chamber.url_adapter"] = (base_url, adapter)
    return cast(MapAdapter, bound[1])
