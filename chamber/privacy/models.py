"""What privacy keeps of its own: the record of each retention run (when, what it anonymised)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chamber.core.times import UTCDateTime, utcnow
from chamber.extensions import db


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
