"""What an email address says about who holds it: a business's own domain, or a personal mailbox
at a provider anyone can sign up to (whose domain says nothing about the business)."""

from __future__ import annotations

# Mailbox providers anyone can sign up to. Two people at gmail.com are not colleagues; two at
# octree.co.uk are. Lower case, exact domains.
PERSONAL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "hotmail.com", "hotmail.co.uk", "outlook.com", "live.com",
    "live.co.uk", "msn.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "icloud.com", "me.com",
    "mac.com", "aol.com", "aol.co.uk", "btinternet.com", "btopenworld.com", "sky.com",
    "talktalk.net", "virginmedia.com", "ntlworld.com", "blueyonder.co.uk", "tiscali.co.uk",
    "plus.net", "protonmail.com", "proton.me", "pm.me", "gmx.com", "gmx.co.uk", "mail.com",
    "zoho.com", "fastmail.com", "hey.com", "tutanota.com", "yandex.com",
})  # fmt: skip


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def is_personal_address(email: str) -> bool:
    """Whether the address is a personal mailbox (its domain names no business)."""
    return domain_of(email) in PERSONAL_DOMAINS


def colleagues_pattern(email: str) -> tuple[str, bool]:
    """Who counts as this person's colleague by address: everyone at the same business domain
    (`("octree.example", False)`: match the domain), or, for a personal mailbox, only the
    address itself (`("zoe@gmail.com", True)`: match exactly)."""
    address = email.strip().lower()
    return (address, True) if is_personal_address(address) else (domain_of(address), False)
