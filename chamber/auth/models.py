"""Staff accounts. Businesses and attendees never log in; only chamber staff do."""

from __future__ import annotations

import enum
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.extensions import db


class Role(enum.StrEnum):
    admin = "admin"  # everything, including staff accounts
    organiser = "organiser"  # events, speakers, registrations, resources, surveys
    checkin = "checkin"  # the door: check-in only

    @property
    def label(self) -> str:
        return {"admin": "Admin", "organiser": "Organiser", "checkin": "Check-in"}[self.value]


class StaffUser(UserMixin, db.Model):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_type(Role))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Two-factor sign-in (auth.two_factor): the authenticator app's shared secret (base32), set
    # when the person confirmed a code from their app; shown once at enrolment, never again and
    # never logged. `totp_last_step` is the time step of the last code accepted, so a code cannot
    # be used twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(db.BigInteger)

    # The raw token of the session this user was loaded for (or has just logged in with); set by
    # `auth.sessions`, never stored. Not a mapped column.
    session_token = None

    def get_id(self) -> str:
        """What Flask-Login keeps in the signed cookie: the opaque token of a `StaffSession` row,
        so that the session can be ended on the server and the cookie says nothing about the user."""
        if not self.session_token:
            raise RuntimeError("start a StaffSession before logging the user in")
        return self.session_token

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(
            password, method=current_app.config["PASSWORD_HASH_METHOD"]
        )

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def has_two_factor(self) -> bool:
        return self.totp_secret is not None and self.totp_enabled_at is not None

    def can(self, *roles: Role) -> bool:
        return self.role in roles

    @property
    def is_organiser(self) -> bool:
        return self.role in (Role.admin, Role.organiser)

    def __repr__(self) -> str:
        return f"<StaffUser {self.email} {self.role}>"


class StaffSession(db.Model):
    """One logged-in browser. The cookie holds the token; this row holds only its SHA-256, so a
    copy of the database cannot be used to log in. Deleting the row ends the session."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Where the session began, shown on the person's own sessions page: the address as the app
    # sees it (behind CHAMBER_PROXY_COUNT trusted proxies) and the browser's user agent, trimmed.
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")

    user: Mapped[StaffUser] = relationship()

    def __repr__(self) -> str:
        return f"<StaffSession {self.id} of user {self.user_id}>"


class PasswordReset(db.Model):
    """A "forgot your password" request. Its link's token is minted when the email is sent (so no
    secret sits in the outbox) and only its SHA-256 is kept; it works once, for RESET_LIFETIME
    after the request, and only for this user."""

    __tablename__ = "password_reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[StaffUser] = relationship()


class RecoveryCode(db.Model):
    """One of the ten single-use codes that stand in for the authenticator app; only its SHA-256
    is kept (each code carries 50 random bits, beyond guessing under the code step's limits)."""

    __tablename__ = "staff_recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffPolicy(db.Model):
    """Sign-in rules an admin sets in the app (`/staff/users/security`): one row, id 1."""

    __tablename__ = "staff_policy"
    __table_args__ = (db.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    require_two_factor: Mapped[bool] = mapped_column(default=False)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
