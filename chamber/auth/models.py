"""Staff accounts. Businesses and attendees never log in; only chamber staff do."""

from __future__ import annotations

import enum
import hmac
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
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

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session: it changes with the password, so setting a
        new password logs the account out everywhere else."""
        return f"{self.id}:{self.password_hash[-16:]}"

    @classmethod
    def from_session_id(cls, session_id: str) -> StaffUser | None:
        user_id, _, fingerprint = session_id.partition(":")
        if not user_id.isdigit() or len(user_id) > 10:
            return None
        user = db.session.get(cls, int(user_id))
        if user is None or not hmac.compare_digest(user.password_hash[-16:], fingerprint):
            return None
        return user

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
