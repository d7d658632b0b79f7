"""A copied event takes its resources along: the same resources in the same order on the copy
and on each copied talk (a receiver of `events.signals.event_copied`). Link health belongs to
the resource, so there is nothing of it to copy."""

from __future__ import annotations

from chamber.events.models import AgendaItem, Event
from chamber.extensions import db
from chamber.resources.models import AgendaItemResource, EventResource


def event_copied(_app: object, *, source: Event, copy: Event, items: dict[int, AgendaItem]) -> None:
    for attached in db.session.scalars(
        db.select(EventResource).where(EventResource.event_id == source.id)
    ):
        db.session.add(
            EventResource(
                event_id=copy.id, resource_id=attached.resource_id, position=attached.position
            )
        )
    if items:
        for attached_to_talk in db.session.scalars(
            db.select(AgendaItemResource).where(AgendaItemResource.agenda_item_id.in_(items))
        ):
            db.session.add(
                AgendaItemResource(
                    agenda_item_id=items[attached_to_talk.agenda_item_id].id,
                    resource_id=attached_to_talk.resource_id,
                    position=attached_to_talk.position,
                )
            )
    db.session.flush()
