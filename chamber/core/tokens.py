"""Secrets for links (manage, survey, unsubscribe, check-in): 256 random bits, stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A URL-safe token of 32 random bytes: what goes in the link, never in the database."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 of a token: what the database keeps and looks up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
