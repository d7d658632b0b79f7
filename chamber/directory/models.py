"""Saved segments: a named set of directory filters, resolved whenever it is used."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from chamber.core.times import UTCDateTime, utcnow
from chamber.extensions import db


class Segment(db.Model):
    """Who a campaign goes to, as filters (`directory.segments.SegmentFilters`), never as a list
    of people: the members are whoever matches when it is used, less anyone who may not receive
    marketing then."""

    __tablename__ = "segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
