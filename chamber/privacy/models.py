"""What privacy keeps of its own: the privacy notice, every save a new version, kept, so that
what each person was shown can be read again (`booking`, `consent` and `subscription_request`
record its number); and the record of each retention run (when, what it anonymised)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
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


class RetentionRun(db.Model):
    """One run of retention (privacy.retention): by the worker once a day, or by
    `chamber privacy run`. A dry run is recorded too, but only a real one moves the schedule."""

    __tablename__ = "retention_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(20), default="worker")  # worker or command
    dry_run: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How many rows of each kind it anonymised (or, for a dry run, would have): {kind key: n}.
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
