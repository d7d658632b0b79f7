"""The resource library: curated links and short guides written in the app, attached to events and
agenda items, with the health of every link as the checker last found it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.extensions import db


class ResourceKind(enum.StrEnum):
    link = "link"  # a page somewhere else, e.g. on ncsc.gov.uk
    guide = "guide"  # a short guide written here in Markdown

    @property
    def label(self) -> str:
        return {"link": "Link", "guide": "Guide"}[self.value]


class ResourceStatus(enum.StrEnum):
    draft = "draft"  # staff only
    published = "published"  # in the library and in packs
    retired = "retired"  # hidden from the library; its page says so (and names any successor)


class LinkState(enum.StrEnum):
    unchecked = "unchecked"
    ok = "ok"
    redirected = "redirected"  # answered, but only after one or more redirects
    broken = "broken"  # the server answered with an error (404, 410, 500...)
    unreachable = (
        "unreachable"  # no answer: DNS, refused, timeout, TLS, redirect loop, refused address
    )

    @property
    def needs_attention(self) -> bool:
        return self in (LinkState.redirected, LinkState.broken, LinkState.unreachable)


class Resource(db.Model):
    __tablename__ = "resource"
    __table_args__ = (
        CheckConstraint(
            "superseded_by_id IS NULL OR superseded_by_id <> id", name="not_own_successor"
        ),
        Index("ix_resource_status_category", "status", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[ResourceKind] = mapped_column(enum_type(ResourceKind), default=ResourceKind.link)
    status: Mapped[ResourceStatus] = mapped_column(
        enum_type(ResourceStatus), default=ResourceStatus.draft, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2000))  # links only; http or https
    publisher: Mapped[str] = mapped_column(String(120), default="", index=True)  # NCSC, GOV.UK...
    description: Mapped[str] = mapped_column(String(2000), default="")  # plain text
    body: Mapped[str] = mapped_column(
        Text, default=""
    )  # guides only: Markdown, sanitised on output
    category: Mapped[str] = mapped_column(String(80), default="", index=True)
    # Lower-case tags, comma-separated with a comma at each end (",phishing,passwords,") so that one
    # tag is found with LIKE '%,phishing,%' on every database.
    tags: Mapped[str] = mapped_column(String(500), default="")
    # Business sizes it is meant for: SizeBand values, comma-separated the same way; empty: all.
    audience: Mapped[str] = mapped_column(String(60), default="")
    # What staff now know about it, shown beside it (e.g. "CESG became part of the NCSC in 2016").
    staff_note: Mapped[str] = mapped_column(String(2000), default="")
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource.id", ondelete="SET NULL"), index=True
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # Link health, as the last check found it (history in LinkCheck).
    link_state: Mapped[LinkState] = mapped_column(
        enum_type(LinkState), default=LinkState.unchecked, index=True
    )
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column()
    final_url: Mapped[str | None] = mapped_column(String(2000))
    last_error: Mapped[str | None] = mapped_column(String(500))

    superseded_by: Mapped[Resource | None] = relationship(remote_side=[id])

    @property
    def is_link(self) -> bool:
        return self.kind == ResourceKind.link

    @property
    def is_guide(self) -> bool:
        return self.kind == ResourceKind.guide

    @property
    def is_published(self) -> bool:
        return self.status == ResourceStatus.published

    @property
    def is_retired(self) -> bool:
        return self.status == ResourceStatus.retired

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    @property
    def audience_list(self) -> list[str]:
        return [band for band in self.audience.split(",") if band]

    def __repr__(self) -> str:
        return f"<Resource {self.slug}>"


class LinkCheck(db.Model):
    """One check of one link: the short history staff see beside it."""

    __tablename__ = "link_check"
    __table_args__ = (Index("ix_link_check_resource_time", "resource_id", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resource.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("link_check_run.id", ondelete="SET NULL"), index=True
    )
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    url: Mapped[str] = mapped_column(String(2000))  # the URL as it was checked
    state: Mapped[LinkState] = mapped_column(enum_type(LinkState))
    status_code: Mapped[int | None] = mapped_column()
    final_url: Mapped[str | None] = mapped_column(String(2000))
    # Each hop as "301 https://...", one per line; permanent is true when every hop was 301 or 308.
    redirects: Mapped[str] = mapped_column(Text, default="")
    permanent_redirect: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(500))
    elapsed_ms: Mapped[int | None] = mapped_column()

    resource: Mapped[Resource] = relationship()


class LinkCheckRun(db.Model):
    """One pass over every published link, with its progress for the command line and the UI."""

    __tablename__ = "link_check_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(20), default="command")  # command, schedule, staff
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    total: Mapped[int] = mapped_column(default=0)
    checked: Mapped[int] = mapped_column(default=0)
    problems: Mapped[int] = mapped_column(default=0)
    # Every link failed for want of a network (no name resolved, no route): nothing was recorded.
    offline: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A worker holds a run by its lease; a run whose lease ran out was abandoned and may be redone.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LinkCheckSchedule(db.Model):
    """The one row of settings staff set for the worker's link checks."""

    __tablename__ = "link_check_schedule"
    __table_args__ = (CheckConstraint("interval_days >= 1", name="interval_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    interval_days: Mapped[int] = mapped_column(default=7)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class EventResource(db.Model):
    """A resource in an event's pack, in the order staff chose."""

    __tablename__ = "event_resource"
    __table_args__ = (UniqueConstraint("event_id", "resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resource.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)

    resource: Mapped[Resource] = relationship()


class AgendaItemResource(db.Model):
    """A resource attached to one talk, shown beside it, in the order staff chose."""

    __tablename__ = "agenda_item_resource"
    __table_args__ = (UniqueConstraint("agenda_item_id", "resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda_item_id: Mapped[int] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="CASCADE"), index=True
    )
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resource.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)

    resource: Mapped[Resource] = relationship()
