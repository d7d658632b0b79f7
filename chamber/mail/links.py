"""Secret links in emails, minted when a message is sent rather than when it is queued.

A template writes `{{ link('manage', booking.id) }}` where a secret link belongs. While
`mail.services.enqueue` renders a message, that writes a marker carrying the message's own
nonce, a 128-bit random value made for that one message and stored beside it; the worker later
replaces only markers that carry the message's nonce. Text a person typed was written before the
nonce existed, so it cannot carry it: a look-alike marker in a name or a note stays plain text and
never reaches a minter. So no secret ever sits in the outbox, and a domain higher up
(registration's manage links, surveys) registers its own kind of link here, in its `init_app`.

Each minter also checks that the message's recipient owns what the marker names (the booker of
that booking, the invitation's own address...) and raises LinkRefused otherwise: the worker parks
such a message as failed instead of sending someone else's link.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from markupsafe import Markup


class LinkRefused(Exception):
    """A minter was asked for a link its message's recipient does not own: the message is parked."""


# kind -> function(recipient address, ref) -> absolute URL (it may add rows; the caller commits).
# A minter checks that the recipient owns what `ref` names, and raises LinkRefused if not.
LinkMinter = Callable[[str, str], str]
_minters: dict[str, LinkMinter] = {}

_REF = re.compile(r"[A-Za-z0-9_-]{0,64}")
# The nonce of the message being rendered now; `link()` outside an email render is a bug.
_rendering: ContextVar[str | None] = ContextVar("chamber_link_nonce", default=None)


def register_link_minter(kind: str, minter: LinkMinter) -> None:
    _minters[kind] = minter


def new_nonce() -> str:
    return secrets.token_hex(16)


@contextmanager
def rendering_message(nonce: str) -> Iterator[None]:
    """While a message is rendered, `link()` writes markers carrying its nonce."""
    reset = _rendering.set(nonce)
    try:
        yield
    finally:
        _rendering.reset(reset)


def placeholder(kind: str, ref: str | int = "") -> Markup:
    """What a template writes where a secret link belongs (the Jinja global `link`)."""
    nonce = _rendering.get()
    if nonce is None:
        raise RuntimeError("link() belongs in an email template rendered by mail.services.enqueue")
    if kind not in _minters:
        raise KeyError(f"no link minter registered for {kind!r}")
    ref = str(ref)
    if not _REF.fullmatch(ref):
        raise ValueError(f"a link's reference is an id, not {ref!r}")
    return Markup(f"[[link:{nonce}:{kind}:{ref}]]")  # noqa: S704 - nonce, kind and ref are checked


def marker_for(nonce: str, kind: str, ref: str = "") -> str:
    """The marker `link(kind, ref)` would have written into the message with this nonce."""
    return f"[[link:{nonce}:{kind}:{ref}]]"


# Any marker; only those whose nonce is the message's own are acted on.
_MARKER = re.compile(r"\[\[link:([0-9a-f]{32}):([a-z_]+):([A-Za-z0-9_-]{0,64})\]\]")


def _own_markers(text: str, nonce: str) -> Iterator[re.Match[str]]:
    return (match for match in _MARKER.finditer(text) if match.group(1) == nonce)


def kinds_in(text: str, nonce: str) -> set[str]:
    return {match.group(2) for match in _own_markers(text, nonce)}


def has_links(texts: list[str], nonce: str | None) -> bool:
    return bool(nonce) and any(nonce in text and any(_own_markers(text, nonce)) for text in texts)


def mint_links(texts: list[str], recipient: str, nonce: str | None) -> list[str]:
    """Replace the message's own markers in `texts` with freshly minted links (one per distinct
    marker). Raises LinkRefused if a minter will not give the recipient what a marker names."""
    if not nonce:
        return texts
    minted: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        whole, own, kind, ref = match.group(0), match.group(1), match.group(2), match.group(3)
        if own != nonce:
            return whole  # text a person typed, or a marker of another message: left as it is
        if whole not in minted:
            minter = _minters.get(kind)
            if minter is None:
                raise LinkRefused(
                    f"the message asks for a kind of link that does not exist: {kind}"
                )
            minted[whole] = minter(recipient, ref)
        return minted[whole]

    return [_MARKER.sub(replace, text) if nonce in text else text for text in texts]


def describe_links(text: str, nonce: str | None) -> str:
    """The text as staff see it in the outbox: the message's own markers named, never minted."""
    if not nonce:
        return text
    return _MARKER.sub(
        lambda m: f"[{m.group(2)} link]" if m.group(1) == nonce else m.group(0), text
    )
