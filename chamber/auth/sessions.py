"""Staff sessions held on the server: logging out, a new password or deactivation ends them.

The signed Flask cookie carries only an opaque random token (Flask-Login's user id); the database
keeps its SHA-256 in a `StaffSession` row. A session lasts at most ABSOLUTE_LIFETIME from login
and ends after IDLE_LIFETIME without a request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Flask, has_request_context, request, session
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from chamber.auth.audit import one_line
from chamber.auth.models import StaffSession, StaffUser
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.transactions import rows_changed, unit_of_work
from chamber.extensions import db, login_manager

# A working day: a volunteer logged in at the door in the morning is still in after the evening
# event, and nobody stays logged in overnight.
ABSOLUTE_LIFETIME = timedelta(hours=12)
# A laptop left open and unattended stops being a way in.
IDLE_LIFETIME = timedelta(hours=2)
# `last_seen_at` is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=5)
# `secrets.token_urlsafe(32)` is 43 characters; anything much longer is not ours.
_MAX_TOKEN_LENGTH = 64
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

log = logging.getLogger(__name__)


def start(user: StaffUser) -> str:
    """A new session for `user`; returns the raw token (kept only in the cookie). Flushes.

    Also drops sessions that have run out, so the table holds only live ones."""
    now = utcnow()
    db.session.execute(
        db.delete(StaffSession).where(
            (StaffSession.created_at < now - ABSOLUTE_LIFETIME)
            | (StaffSession.last_seen_at < now - IDLE_LIFETIME)
        )
    )
    token = new_token()
    db.session.add(
        StaffSession(
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            last_seen_at=now,
            ip_address=(request.remote_addr or "")[:45] if has_request_context() else "",
            user_agent=one_line(request.headers.get("User-Agent", ""), 200)
            if has_request_context()
            else "",
        )
    )
    db.session.flush()
    user.session_token = token
    return token


def user_for(token: object) -> StaffUser | None:
    """The active user whose live session has this token, or None for anything else."""
    if not _well_formed(token):
        return None
    found = db.session.execute(
        db.select(StaffSession, StaffUser)
        .join(StaffUser, StaffSession.user_id == StaffUser.id)
        .where(StaffSession.token_hash == hash_token(token))
    ).first()
    if found is None:
        return None
    staff_session, user = found
    now = utcnow()
    if (
        not user.active
        or staff_session.created_at <= now - ABSOLUTE_LIFETIME
        or staff_session.last_seen_at <= now - IDLE_LIFETIME
    ):
        return None
    if staff_session.last_seen_at <= now - TOUCH_EVERY:
        staff_session.last_seen_at = now
    user.session_token = token
    return user


def end(token: object) -> None:
    """End the session with this token (logging out). Flushes."""
    if _well_formed(token):
        db.session.execute(
            db.delete(StaffSession).where(StaffSession.token_hash == hash_token(token))
        )
        db.session.flush()


def end_all(user: StaffUser, *, keep: str | None = None) -> None:
    """End every session of `user`, except the one with token `keep` if given. Flushes."""
    statement = db.delete(StaffSession).where(StaffSession.user_id == user.id)
    if keep is not None and _well_formed(keep):
        statement = statement.where(StaffSession.token_hash != hash_token(keep))
    db.session.execute(statement)
    db.session.flush()


def live_sessions(user: StaffUser, now: datetime | None = None) -> list[StaffSession]:
    """`user`'s sessions that have not run out, the most recently used first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            db.select(StaffSession)
            .where(
                StaffSession.user_id == user.id,
                StaffSession.created_at > now - ABSOLUTE_LIFETIME,
                StaffSession.last_seen_at > now - IDLE_LIFETIME,
            )
            .order_by(StaffSession.last_seen_at.desc(), StaffSession.id.desc())
        )
    )


def is_current(staff_session: StaffSession, user: StaffUser) -> bool:
    """Whether `staff_session` is the one `user` was loaded for in this request."""
    token = user.session_token
    return bool(token) and staff_session.token_hash == hash_token(token)


def end_own(user: StaffUser, session_id: int) -> bool:
    """End `user`'s own session `session_id`; False if they have none with that id (another
    person's session is as unknown as a missing one). Flushes."""
    ended = rows_changed(
        db.delete(StaffSession).where(
            StaffSession.id == session_id, StaffSession.user_id == user.id
        )
    )
    db.session.flush()
    return ended == 1


def _well_formed(token: object) -> bool:
    return (
        isinstance(token, str)
        and 0 < len(token) <= _MAX_TOKEN_LENGTH
        and all(ch in _TOKEN_ALPHABET for ch in token)
    )


def init_app(app: Flask) -> None:
    """Bind the loader, and load the user at the start of each request that has a session."""
    # Flask-Login's own "strong" protection hashes X-Forwarded-For even when no proxy is trusted,
    # so a forged header defeats it, and tying a session to an address would log a volunteer out
    # when their phone moves from the venue's wifi to mobile data. The server-side session, which
    # can be ended and runs out, is the protection instead.
    login_manager.session_protection = None
    login_manager.user_loader(user_for)
    app.before_request(_load_staff_user)


def _load_staff_user() -> None:
    """Load the user before the view runs, and commit the `last_seen_at` touch on its own.

    Doing it here, before any view has written, keeps the touch out of the view's transaction (and
    the lock a write takes on SQLite out of a request that would otherwise only read)."""
    if "_user_id" not in session or request.endpoint == "static":
        return
    if not current_user.is_authenticated:
        session.pop("_user_id")  # ended, run out or forged: stop looking it up
        return
    if db.session.dirty:
        try:
            with unit_of_work():  # the touch the loader made, committed before the view begins
                pass
        except SQLAlchemyError:  # a busy database must not turn a page into an error
            log.warning("could not record a staff session's last request", exc_info=True)
