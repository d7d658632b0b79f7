"""Absolute links to Chamber's own pages, built by endpoint name at the public address.

Emails, calendar files and the API carry links that leave the site, so they are built from
`CHAMBER_BASE_URL` (scheme, host and any path prefix), never from the request's host, and they
work outside a request too: the worker mints links with no request at all. Building by name means
that renaming or removing a route raises `BuildError` (in a test) instead of mailing a dead link.
"""

from __future__ import annotations

import re
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
    url = _from_shape(endpoint, values)
    if url is None:
        current_app.inject_url_defaults(endpoint, values)
        url = _adapter().build(endpoint, values, force_external=True)
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


# A value that reads the same wherever a URL holds it (a token, a slug, a number): in the path or
# the query string, quoting leaves it as it is.
_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_SLOT = "chamberslot{}x"
_SLOTS = re.compile(r"chamberslot(\d+)x")


def _from_shape(endpoint: str, values: dict[str, Any]) -> str | None:
    """The link from its shape: the URL this endpoint builds with a slot for each value, built
    once and kept on the app, with the values put in their slots. Only for plain values
    (`_PLAIN`) of an endpoint whose every value is taken as given (no URL defaults and slots the
    route accepts); anything else is None and built in full. The worker mints two links a
    campaign message, and building each cost as much as writing the message's headers."""
    if any(current_app.url_default_functions.values()) or not all(
        isinstance(value, str) and _PLAIN.fullmatch(value) for value in values.values()
    ):
        return None
    key = (current_app.config["BASE_URL"], endpoint, tuple(values))
    shapes: dict[tuple[object, ...], str | None] = current_app.extensions.setdefault(
        "chamber.url_shapes", {}
    )
    if key not in shapes:
        slots = {name: _SLOT.format(number) for number, name in enumerate(values)}
        try:
            shape: str | None = _adapter().build(endpoint, dict(slots), force_external=True)
        except Exception:  # noqa: BLE001 - a slot the route refuses: built in full each time
            shape = None
        if shape is not None and not all(shape.count(slot) == 1 for slot in slots.values()):
            shape = None
        shapes[key] = shape
    shape = shapes[key]
    if shape is None:
        return None
    filled = list(values.values())  # in one pass: a value that reads like a slot stays as it is
    return _SLOTS.sub(lambda slot: filled[int(slot.group(1))], shape)


# --- which web addresses are links at all ---------------------------------------------------------

WEB_SCHEMES = ("http", "https")


def url_fault(url: str) -> str | None:
    """What is wrong with `url` as a link: "hidden" (spaces or control characters), "malformed",
    "scheme" (not http or https), "host" (none), "credentials" (a user name or password); or None.
    The library's forms and the checker each put it in their own words."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "hidden"
    try:
        parts = urlsplit(url)
        parts.hostname, parts.port  # noqa: B018 - both raise ValueError when malformed
    except ValueError:
        return "malformed"
    if parts.scheme.lower() not in WEB_SCHEMES:
        return "scheme"
    if not parts.hostname:
        return "host"
    if parts.username is not None or parts.password is not None:
        return "credentials"
    return None
