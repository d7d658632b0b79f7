"""Reads for the staff pages that put resources on events: the events to choose from and how many
resources each already has."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from chamber.events.models import AgendaItem, Event
from chamber.extensions import db
from chamber.resources.models import AgendaItemResource, EventResource


def events_newest_first() -> Select[Any]:
    """Every event, the latest first (a select to paginate)."""
    return db.select(Event).order_by(Event.starts_at.desc())


def resource_counts(event_ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Per event: resources on the event itself, and resources on its talks; two grouped queries."""
    on_event = dict(
        db.session.execute(
            db.select(EventResource.event_id, db.func.count(EventResource.id))
            .where(EventResource.event_id.in_(event_ids))
            .group_by(EventResource.event_id)
        ).all()
    )
    on_items = dict(
        db.session.execute(
            db.select(AgendaItem.event_id, db.func.count(AgendaItemResource.id))
            .join(AgendaItemResource, AgendaItemResource.agenda_item_id == AgendaItem.id)
            .where(AgendaItem.event_id.in_(event_ids))
            .group_by(AgendaItem.event_id)
        ).all()
    )
    return on_event, on_items


def event_with_items(event_id: int) -> Event | None:
    """The event with its agenda items loaded, or None."""
    return db.session.scalar(
        db.select(Event).where(Event.id == event_id).options(selectinload(Event.agenda_items))
    )
