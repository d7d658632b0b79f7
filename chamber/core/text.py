"""Small text utilities shared by the domains: slugs, safe redirect targets, and text folded for
searching without regard to case or accents."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slugify(text: str, max_length: int = 80) -> str:
    text = re.sub(r"['’]", "", text)  # "O'Brien's" reads as obriens, not o-brien-s
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:  # cut at a word's end, unless that would lose half of it
        cut = slug[: max_length + 1]
        end = cut.rfind("-")
        slug = cut[:end] if end >= max_length // 2 else slug[:max_length]
    return slug.rstrip("-") or "event"


# Letters that carry no accent to strip but are searched for as plain Latin ones, as PostgreSQL's
# `unaccent` reads them.
_PLAIN_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
    }  # fmt: skip
)


def fold(text: str | None) -> str | None:
    """`text` as a search compares it: case folded and without accents, so that "olcer" finds
    "Ölçer" and "Ozturk" finds "Öztürk". SQLite runs it as the SQL function `chamber_fold`
    (registered by `core.dialects`); PostgreSQL folds with `lower(unaccent(...))`
    (`core.dialects.folded`), and `lower`, not `casefold`, keeps what both read alike (a Greek
    final sigma stays one)."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(
        _PLAIN_LETTERS
    )


def is_safe_redirect(target: str | None) -> bool:
    """True only for a path on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """ "1 contact", "2 contacts", "0 places": a count with its noun agreeing."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
