"""Secret links in emails, minted when a message is sent rather than when it is queued.

A queued body holds a placeholder such as `[[link:unsubscribe]]`; the worker replaces it with a
fresh link whose token is stored only as a hash. So no secret ever sits in the outbox, and a
domain higher up (registration's manage links, surveys) registers its own kind of link here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup

PLACEHOLDER = re.compile(r"\[\[link:([a-z_]+)(?::([A-Za-z0-9_-]{1,64}))?\]\]")

class LinkRefused(Exception):
    """A minter was asked for a link its message's recipient does not own: the message is parked."""


# kind -> function(recipient address, ref) -> absolute URL (it may add rows; the caller commits).
# A minter checks that the recipient owns what `ref` names, and raises LinkRefused if not.
LinkMinter = Callable[[str, str], str]
_minters: dict[str, LinkMinter] = {}


def register_link_minter(kind: str, minter: LinkMinter) -> None:
    _minters[kind] = minter


def placeholder(kind: str, ref: str | int = "") -> Markup:
    """What a template writes where a secret link belongs."""
    if kind not in _minters:
        raise KeyError(f"no link minter registered for {kind!r}")
    return Markup(f"[[link:{kind}:{ref}]]" if ref != "" else f"[[link:{kind}]]")  # noqa: S704 - fixed pattern


def kinds_in(text: str) -> set[str]:
    return {match.group(1) for match in PLACEHOLDER.finditer(text)}


def mint_links(texts: list[str], recipient: str) -> list[str]:
    """Replace every placeholder in `texts` with a freshly minted link (one per distinct placeholder)."""
    minted: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole not in minted:
            minted[whole] = _minters[match.group(1)](recipient, match.group(2) or "")
        return minted[whole]

    return [PLACEHOLDER.sub(replace, text) for text in texts]


def describe_links(text: str) -> str:
    """The text as staff see it in the outbox: placeholders named, never minted."""
    return PLACEHOLDER.sub(lambda m: f"[{m.group(1)} link]", text)
