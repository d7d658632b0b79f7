"""Small text utilities shared by the domains: slugs and safe redirect targets."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slugify(text: str, max_length: int = 80) -> str:
    text = re.sub(r"['’]", "", text)  # "O'Brien's" reads as obriens, not o-brien-s
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "event"


def is_safe_redirect(target: str | None) -> bool:
    """True only for a path on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc
