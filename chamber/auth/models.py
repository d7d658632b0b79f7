"""Staff accounts. Businesses and attendees never log in; only chamber staff do."""

from __future__ import annotations

import enum
from datetime import datetime

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

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")

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
