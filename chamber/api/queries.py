"""Reads for the JSON API: one page of public events with their agendas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import selectinload

from chamber.events.models import AgendaItem, AgendaItemSpeaker, Event, EventStatus
from chamber.extensions import db


def public_events_page(
    *, past: bool, now: datetime, page: int, per_page: int
) -> tuple[int, list[Event]]:
    """How many published or cancelled events are upcoming (or, with `past`, over), and one page
    of them with agendas and speakers loaded: soonest first, or for past events latest first."""
    visible = Event.status != EventStatus.draft
    if past:
        where = (visible, Event.ends_at <= now)
        order = (Event.starts_at.desc(), Event.id.desc())
    else:
        where = (visible, Event.ends_at > now)
        order = (Event.starts_at, Event.id)
    total = db.session.scalar(db.select(db.func.count(Event.id)).where(*where))
    rows = db.session.scalars(
        db.select(Event)
        .where(*where)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
        .options(
            selectinload(Event.agenda_items)
            .selectinload(AgendaItem.speaker_links)
            .selectinload(AgendaItemSpeaker.speaker)
        )
    )
    return total or 0, list(rows)
