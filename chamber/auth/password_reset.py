"""Forgot your password: a link by email that sets a new one. Operations flush and never commit.

Asking answers the same whether or not the address is a staff account's, so the page tells a
stranger nothing about who works at the chamber. For an active account, a `PasswordReset` row
is made and `signals.password_reset_requested` sent: mail queues the email (`mail.staff_mail`).
The link's token is minted when the email is sent (`mail.links`: no secret ever sits in the
outbox), 256 random bits of which only the SHA-256 is kept. The link works once, for
RESET_LIFETIME from the request, for that account only; using it sets the password, spends
every other reset link of the account, and ends all its sessions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chamber.auth import audit, services, signals
from chamber.auth.models import PasswordReset, StaffUser
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.transactions import rows_changed
from chamber.extensions import db

RESET_LIFETIME = timedelta(hours=1)
GONE = "expired"  # the token of a link minted for a request that can no longer be used
_MAX_TOKEN_LENGTH = 64


def request_reset(email: str, now: datetime | None = None) -> None:
    """Email a reset link if `email` is an active staff account's; otherwise do nothing (the page
    says the same either way). Flushes."""
    now = now or utcnow()
    user = services.find_by_email(email)
    if user is None or not user.active:
        return
    reset = PasswordReset(user_id=user.id, created_at=now, expires_at=now + RESET_LIFETIME)
    db.session.add(reset)
    db.session.flush()
    signals.password_reset_requested.send(signals.this_app(), reset=reset)  # mail queues it
    audit.record("password_reset_requested", kind="staff_user", object_id=user.id, by=user)


def lifetime_minutes() -> int:
    return int(RESET_LIFETIME.total_seconds() // 60)


def usable(reset_id: int) -> PasswordReset | None:
    """Request `reset_id` if its link may still be minted: not used, not out of time."""
    reset = db.session.get(PasswordReset, reset_id)
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        return None
    return reset


def new_link_token(reset: PasswordReset) -> str:
    """A fresh token for the request's link; only its hash is kept (replacing any earlier). Flushes."""
    token = new_token()
    reset.token_hash = hash_token(token)
    db.session.flush()
    return token


def reset_for(token: str, now: datetime | None = None) -> PasswordReset | None:
    """The live request a link's token belongs to, or None (wrong, tampered, used, expired, or
    its account deactivated): the page answers a plain 404."""
    if not token or len(token) > _MAX_TOKEN_LENGTH or token == GONE:
        return None
    reset: PasswordReset | None = db.session.scalar(
        db.select(PasswordReset).where(PasswordReset.token_hash == hash_token(token))
    )
    if (
        reset is None
        or reset.used_at is not None
        or reset.expires_at <= (now or utcnow())
        or not reset.user.active
    ):
        return None
    return reset


def complete(reset: PasswordReset, password: str, now: datetime | None = None) -> StaffUser:
    """Set the account's new password through `reset`, spend every reset link of the account and
    end all its sessions. Raises StaffError for a weak password; two requests racing with one link:
    the conditional UPDATE lets one through. Flushes."""
    now = now or utcnow()
    user = reset.user
    spent = rows_changed(
        db.update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    if spent != 1:
        raise services.StaffError("That link has been used already. Ask for a new one.")
    services.set_password(user, password)  # ends every session and spends every other link
    audit.record("password_reset", kind="staff_user", object_id=user.id, by=user)
    db.session.flush()
    return user
