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

    user: Mapped[StaffUser] = relationship()

    def __repr__(self) -> str:
        return f"<StaffSession {self.id} of user {self.user_id}>"
