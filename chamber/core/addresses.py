"""Email addresses as the whole app compares them: trimmed and lower-cased, and the SHA-256 of
that form, which is what the suppression list keeps of an erased person (docs/privacy.md)."""

from __future__ import annotations

import hashlib
import re

# The common form of an address: dot-separated words of letters, digits, "_", "+" and "-" before
# the @, and a domain of letters, digits and hyphens in dot-separated labels. Such an address is
# written as it is, in a header or an SMTP command: no parser would change it.
_PLAIN = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def is_plain_address(address: str) -> bool:
    """Whether the address has the common form above (the mail code then skips the `email`
    package's parser, which costs a campaign's worker more than anything else it does a message;
    any other address still goes through it)."""
    return _PLAIN.fullmatch(address) is not None


def normalise_address(address: str) -> str:
    """The form every table stores and compares: no surrounding space, lower case."""
    return address.strip().lower()


def address_hash(address: str) -> str:
    """The SHA-256 (hex) of the normalised address. Anyone who knows an address can compute it and
    find it on the suppression list; nobody can read the address back from it."""
    return hashlib.sha256(normalise_address(address).encode("utf-8")).hexdigest()
