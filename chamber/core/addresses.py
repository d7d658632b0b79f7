"""Email addresses as the whole app compares them: trimmed and lower-cased, and the SHA-256 of
that form, which is what the suppression list keeps of an erased person (docs/privacy.md)."""

from __future__ import annotations

import hashlib


def normalise_address(address: str) -> str:
    """The form every table stores and compares: no surrounding space, lower case."""
    return address.strip().lower()


def address_hash(address: str) -> str:
    """The SHA-256 (hex) of the normalised address. Anyone who knows an address can compute it and
    find it on the suppression list; nobody can read the address back from it."""
    return hashlib.sha256(normalise_address(address).encode("utf-8")).hexdigest()
