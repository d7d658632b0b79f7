"""The privacy notice: every save is a new version, kept, so that what each person was shown
can be read again (`booking`, `consent` and `subscription_request` record its number)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.auth.models import StaffUser
from chamber.core.times import UTCDateTime, utcnow
from chamber.extensions import db


class PrivacyNotice(db.Model):
    """One version of the public privacy notice (Markdown, sanitised when shown). Version 0 is
    never stored: it is the built-in text shown until an admin first saves one."""

    __tablename__ = "privacy_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    body: Mapped[str] = mapped_column(Text)
    # What changed, in the admin's words, for the history (optional).
    summary: Mapped[str] = mapped_column(String(200), default="")
    # The public page shows this table, so it holds no one's address: the staff user by id only.
    saved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    saved_by: Mapped[StaffUser | None] = relationship()
