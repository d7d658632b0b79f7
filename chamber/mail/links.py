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

A link can also be sent as a picture: `{{ link_code('checkin', delegate.id) }}` in an `<img src>`
becomes `cid:<content id>`, and the worker draws the minted link as a QR code carried inside the
message (one link: the code and a written `link('checkin', ...)` in the same message hold the same
token). Only the message's own markers are drawn, so a code is never made from typed text.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy import insert

from chamber.extensions import db


class LinkRefused(Exception):
    """A minter was asked for a link its message's recipient does not own: the message is parked."""


# kind -> function(recipient address, ref) -> absolute URL (it may store rows, `store_row`; the
# caller commits).
# A minter checks that the recipient owns what `ref` names, and raises LinkRefused if not.
LinkMinter = Callable[[str, str], str]
_minters: dict[str, LinkMinter] = {}
# kind -> function(refs) that loads what those refs name in one query and returns it, so that a
# batch's minters find it in the session instead of asking once each (optional).
LinkPrefetcher = Callable[[set[str]], Sequence[object]]
_prefetchers: dict[str, LinkPrefetcher] = {}

_REF = re.compile(r"[A-Za-z0-9_-]{0,64}")
# The nonce of the message being rendered now; `link()` outside an email render is a bug.
_rendering: ContextVar[str | None] = ContextVar("chamber_link_nonce", default=None)


def register_link_minter(
    kind: str, minter: LinkMinter, *, prefetch: LinkPrefetcher | None = None
) -> None:
    _minters[kind] = minter
    if prefetch is not None:
        _prefetchers[kind] = prefetch


def prefetch(messages: list[tuple[list[str], str | None]]) -> list[object]:
    """Load, one query a kind, what the own markers of these messages (texts, nonce) name. The
    session keeps loaded rows only while someone holds them: hold the list while minting."""
    refs: dict[str, set[str]] = {}
    for texts, nonce in messages:
        for text in texts:
            if nonce and nonce in text:
                for match in _own_markers(text, nonce):
                    refs.setdefault(match.group(2), set()).add(match.group(3))
    loaded: list[object] = []
    for kind, wanted in refs.items():
        if kind in _prefetchers:
            loaded.extend(_prefetchers[kind](wanted))
    return loaded


# The rows minters have stored while a batch is minted (`storing_rows`), by model.
_stored: ContextVar[dict[type, list[dict[str, object]]] | None] = ContextVar(
    "chamber_link_rows", default=None
)


def store_row(model: type, **values: object) -> None:
    """Store a row a minted link needs (its token's hash), in the caller's transaction: at once,
    or, while a batch is minted (`storing_rows`), with the batch's other rows of its model in one
    INSERT. A plain Core row, not an ORM object: a campaign mints two links a message, and the
    ORM's unit of work cost more than the rest of the message's minting."""
    stored = _stored.get()
    if stored is None:
        db.session.execute(insert(model.__table__), [values])  # type: ignore[attr-defined]
    else:
        stored.setdefault(model, []).append(values)


@contextmanager
def storing_rows() -> Iterator[None]:
    """The rows minters store inside the block are written when it ends without an error, one
    INSERT a model (an executemany, one round trip on PostgreSQL); if it raises, none are."""
    stored: dict[type, list[dict[str, object]]] = {}
    reset = _stored.set(stored)
    try:
        yield
    finally:
        _stored.reset(reset)
    for model, rows in stored.items():
        db.session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]


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


def code_placeholder(kind: str, ref: str | int = "") -> Markup:
    """What a template writes in an `<img src>` for a link drawn as a QR code (the Jinja global
    `link_code`); the worker makes it `cid:` of a picture in the message."""
    return Markup(placeholder(kind, ref).replace("[[link:", "[[code:", 1))  # noqa: S704 - checked


def marker_for(nonce: str, kind: str, ref: str = "") -> str:
    """The marker `link(kind, ref)` would have written into the message with this nonce."""
    return f"[[link:{nonce}:{kind}:{ref}]]"


# Any marker; only those whose nonce is the message's own are acted on.
_MARKER = re.compile(r"\[\[link:([0-9a-f]{32}):([a-z_]+):([A-Za-z0-9_-]{0,64})\]\]")
_CODE = re.compile(r"\[\[code:([0-9a-f]{32}):([a-z_]+):([A-Za-z0-9_-]{0,64})\]\]")


def _own_markers(text: str, nonce: str) -> Iterator[re.Match[str]]:
    for pattern in (_MARKER, _CODE):
        yield from (match for match in pattern.finditer(text) if match.group(1) == nonce)


@dataclass(frozen=True)
class MintedCode:
    """A link to draw as a picture, and the Content-ID the message's HTML shows it by."""

    content_id: str
    url: str


def kinds_in(text: str, nonce: str) -> set[str]:
    return {match.group(2) for match in _own_markers(text, nonce)}


def has_links(texts: list[str], nonce: str | None) -> bool:
    return bool(nonce) and any(nonce in text and any(_own_markers(text, nonce)) for text in texts)


def mint_links(texts: list[str], recipient: str, nonce: str | None) -> list[str]:
    """Replace the message's own markers in `texts` with freshly minted links (one per distinct
    marker). Raises LinkRefused if a minter will not give the recipient what a marker names."""
    return mint_message(texts, recipient, nonce, domain="localhost")[0]


def mint_message(
    texts: list[str], recipient: str, nonce: str | None, *, domain: str
) -> tuple[list[str], list[MintedCode]]:
    """The texts with the message's own markers replaced by freshly minted links (one per kind
    and reference, shared by a written link and its code), and the codes to draw: each code marker
    becomes `cid:<kind>-code-<ref>@<domain>`. Raises LinkRefused as `mint_links` does."""
    if not nonce:
        return texts, []
    minted: dict[tuple[str, str], str] = {}
    codes: dict[str, MintedCode] = {}

    def mint(kind: str, ref: str) -> str:
        if (kind, ref) not in minted:
            minter = _minters.get(kind)
            if minter is None:
                raise LinkRefused(
                    f"the message asks for a kind of link that does not exist: {kind}"
                )
            minted[kind, ref] = minter(recipient, ref)
        return minted[kind, ref]

    def link(match: re.Match[str]) -> str:
        if match.group(1) != nonce:
            return match.group(0)  # text a person typed, or a marker of another message
        return mint(match.group(2), match.group(3))

    def code(match: re.Match[str]) -> str:
        if match.group(1) != nonce:
            return match.group(0)
        kind, ref = match.group(2), match.group(3)
        content_id = f"{kind.replace('_', '-')}-code-{ref or 'link'}@{domain}"
        codes[content_id] = MintedCode(content_id, mint(kind, ref))
        return f"cid:{content_id}"

    replaced = [_CODE.sub(code, text) if "[[code:" in text else text for text in (
        _MARKER.sub(link, text) if nonce in text else text for text in texts
    )]  # fmt: skip
    return replaced, list(codes.values())


def describe_links(text: str, nonce: str | None) -> str:
    """The text as staff see it in the outbox: the message's own markers named, never minted."""
    if not nonce:
        return text
    text = _CODE.sub(lambda m: f"[{m.group(2)} code]" if m.group(1) == nonce else m.group(0), text)
    return _MARKER.sub(
        lambda m: f"[{m.group(2)} link]" if m.group(1) == nonce else m.group(0), text
    )
