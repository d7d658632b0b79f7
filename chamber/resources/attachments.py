"""Resources attached to events and to talks, in the order staff chose, and what an event's page
and pack show of them (a replaced resource as its successor)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from chamber.auth.models import StaffUser
from chamber.events.models import AgendaItem, Event, EventStatus
from chamber.extensions import db
from chamber.resources.models import (
    AgendaItemResource,
    EventResource,
    Resource,
    ResourceStatus,
)
from chamber.resources.services import ResourceError, load_chains, resolve

log = logging.getLogger(__name__)

Link = EventResource | AgendaItemResource  # a resource's place on an event or on a talk

# --- attaching -----------------------------------------------------------------------------------


def _event_links(event: Event) -> list[EventResource]:
    return list(
        db.session.scalars(
            db.select(EventResource)
            .where(EventResource.event_id == event.id)
            .order_by(EventResource.position, EventResource.id)
        )
    )


def _item_links(item: AgendaItem) -> list[AgendaItemResource]:
    return list(
        db.session.scalars(
            db.select(AgendaItemResource)
            .where(AgendaItemResource.agenda_item_id == item.id)
            .order_by(AgendaItemResource.position, AgendaItemResource.id)
        )
    )


def _add(links: Sequence[Link], link: Link, resource: Resource, where: str) -> None:
    """Add `link` after `links`. On a ResourceError the caller must roll back: a duplicate
    may only be found by the database, when the flush fails."""
    if resource.is_retired:
        raise ResourceError(f"“{resource.title}” is retired: restore it before adding it.")
    already = f"“{resource.title}” is already in {where}."
    if any(existing.resource_id == resource.id for existing in links):
        raise ResourceError(already)
    link.position = max((existing.position for existing in links), default=-1) + 1
    db.session.add(link)
    try:
        db.session.flush()
    except IntegrityError as error:
        # A double click: the other request added it after `links` was read. The event (or talk)
        # and the resource were just loaded, so the unique constraint is what refused the row.
        raise ResourceError(already) from error


def attach_to_event(event: Event, resource: Resource, *, by: StaffUser) -> EventResource:
    link = EventResource(event_id=event.id, resource_id=resource.id)
    _add(_event_links(event), link, resource, "this event's resources")
    log.info("%s attached resource %s to event %s", by.email, resource.id, event.id)
    return link


def attach_to_item(item: AgendaItem, resource: Resource, *, by: StaffUser) -> AgendaItemResource:
    link = AgendaItemResource(agenda_item_id=item.id, resource_id=resource.id)
    _add(_item_links(item), link, resource, f"the resources for “{item.title}”")
    log.info("%s attached resource %s to agenda item %s", by.email, resource.id, item.id)
    return link


def _remove(links: Sequence[Link], resource: Resource) -> bool:
    found = [link for link in links if link.resource_id == resource.id]
    for link in found:
        db.session.delete(link)
    db.session.flush()
    return bool(found)


def detach_from_event(event: Event, resource: Resource, *, by: StaffUser) -> bool:
    removed = _remove(_event_links(event), resource)
    if removed:
        log.info("%s removed resource %s from event %s", by.email, resource.id, event.id)
    return removed


def detach_from_item(item: AgendaItem, resource: Resource, *, by: StaffUser) -> bool:
    removed = _remove(_item_links(item), resource)
    if removed:
        log.info("%s removed resource %s from agenda item %s", by.email, resource.id, item.id)
    return removed


def _move(links: list[Link], resource: Resource, direction: int) -> bool:
    """Swap with the neighbour (-1 earlier, +1 later); positions are renumbered 0..n-1 first, so
    ties left by older data cannot stop a move."""
    index = next((i for i, link in enumerate(links) if link.resource_id == resource.id), None)
    if index is None or not 0 <= index + direction < len(links):
        return False
    links[index], links[index + direction] = links[index + direction], links[index]
    for position, link in enumerate(links):
        link.position = position
    db.session.flush()
    return True


def move_on_event(event: Event, resource: Resource, direction: int, *, by: StaffUser) -> bool:
    moved = _move(_event_links(event), resource, direction)
    if moved:
        log.info("%s moved resource %s on event %s", by.email, resource.id, event.id)
    return moved


def move_on_item(item: AgendaItem, resource: Resource, direction: int, *, by: StaffUser) -> bool:
    moved = _move(_item_links(item), resource, direction)
    if moved:
        log.info("%s moved resource %s on agenda item %s", by.email, resource.id, item.id)
    return moved


def is_on_event(event: Event, resource: Resource) -> bool:
    return any(link.resource_id == resource.id for link in _event_links(event))


def is_on_item(item: AgendaItem, resource: Resource) -> bool:
    return any(link.resource_id == resource.id for link in _item_links(item))


@dataclass(frozen=True)
class Use:
    event: Event
    item: AgendaItem | None  # None: attached to the whole event


def uses_of(resource: Resource) -> list[Use]:
    """Where a resource is attached, for its staff page (two queries)."""
    events = db.session.scalars(
        db.select(Event)
        .join(EventResource, EventResource.event_id == Event.id)
        .where(EventResource.resource_id == resource.id)
        .order_by(Event.starts_at.desc())
    )
    items = db.session.execute(
        db.select(AgendaItem, Event)
        .join(AgendaItemResource, AgendaItemResource.agenda_item_id == AgendaItem.id)
        .join(Event, Event.id == AgendaItem.event_id)
        .where(AgendaItemResource.resource_id == resource.id)
        .order_by(Event.starts_at.desc(), AgendaItem.starts_at)
    )
    return [Use(event, None) for event in events] + [Use(event, item) for item, event in items]


def shared_at(resource: Resource, limit: int = 10) -> list[Event]:
    """The public events it was shared at, newest first: attached to the whole event or beside
    one of its talks (one query)."""
    on_event = db.select(EventResource.event_id).where(EventResource.resource_id == resource.id)
    on_talks = (
        db.select(AgendaItem.event_id)
        .join(AgendaItemResource, AgendaItemResource.agenda_item_id == AgendaItem.id)
        .where(AgendaItemResource.resource_id == resource.id)
    )
    return list(
        db.session.scalars(
            db.select(Event)
            .where(
                db.or_(Event.id.in_(on_event), Event.id.in_(on_talks)),
                Event.status != EventStatus.draft,
            )
            .order_by(Event.starts_at.desc())
            .limit(limit)
        )
    )


# --- an event's resources, for its page and its pack ---------------------------------------------


@dataclass
class Shown:
    """A resource as the public sees it beside an event: the one to follow now, and the resources
    staff attached that it now stands in for. The public is never sent straight to an address
    that has been replaced; the old resources are named, with a link to their own pages."""

    resource: Resource  # what to follow: the attached resource, or its current successor
    replaces: list[Resource] = field(default_factory=list)  # attached ones it now stands in for

    @property
    def ended(self) -> bool:
        """Retired with nothing in its place: listed (past events only) as no longer available."""
        return self.resource.is_retired


@dataclass
class EventResources:
    event_wide: list[Shown] = field(default_factory=list)
    by_item: dict[int, list[Shown]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.event_wide or self.by_item)

    def for_item(self, item_id: int) -> list[Shown]:
        return self.by_item.get(item_id, [])

    @property
    def count(self) -> int:
        return len(self.event_wide) + sum(len(shown) for shown in self.by_item.values())


def _shown_list(attached: list[Resource], known: dict[int, Resource], *, past: bool) -> list[Shown]:
    """One entry per resource to follow, in the order staff chose: a replaced resource is shown as
    its successor (merged with the successor's own entry if it is there too); a retired one with
    nothing in its place is kept only in a past event's record."""
    entries: dict[int, Shown] = {}
    for resource in attached:
        successor = resolve(resource, known)
        if successor is None and resource.is_retired and not past:
            continue
        entry = entries.setdefault((successor or resource).id, Shown(successor or resource))
        if successor is not None:
            entry.replaces.append(resource)
    return list(entries.values())


def event_resources(event: Event, now: datetime | None = None) -> EventResources:
    """An event's resources as the public sees them, event-wide and per agenda item, each in the
    order staff chose and pointing to what does the job now: a fixed number of queries, however
    many there are. Drafts are never shown; retired ones only through a successor, or (with
    nothing in their place) in the record of an event that has taken place."""
    shown = (ResourceStatus.published, ResourceStatus.retired)
    event_rows = db.session.scalars(
        db.select(Resource)
        .join(EventResource, EventResource.resource_id == Resource.id)
        .where(EventResource.event_id == event.id, Resource.status.in_(shown))
        .order_by(EventResource.position, EventResource.id)
    ).all()
    item_rows = db.session.execute(
        db.select(AgendaItemResource.agenda_item_id, Resource)
        .join(Resource, Resource.id == AgendaItemResource.resource_id)
        .join(AgendaItem, AgendaItem.id == AgendaItemResource.agenda_item_id)
        .where(AgendaItem.event_id == event.id, Resource.status.in_(shown))
        .order_by(AgendaItemResource.agenda_item_id, AgendaItemResource.position,
                  AgendaItemResource.id)
    ).all()  # fmt: skip
    known = load_chains([*event_rows, *(resource for _item_id, resource in item_rows)])
    past = event.is_past(now)
    by_item: dict[int, list[Resource]] = {}
    for item_id, resource in item_rows:
        by_item.setdefault(item_id, []).append(resource)
    result = EventResources(event_wide=_shown_list(list(event_rows), known, past=past))
    for item_id, attached in by_item.items():
        if entries := _shown_list(attached, known, past=past):
            result.by_item[item_id] = entries
    return result


@dataclass(frozen=True)
class StaffAttachments:
    """An event's attachments as staff manage them: every status, in order (two queries)."""

    event_wide: list[Resource]
    by_item: dict[int, list[Resource]]


def resources_shown(_app: object, *, event: Event, now: datetime) -> dict[str, EventResources]:
    """Receives `events.signals.showing_event`: the event page lists the event's resources."""
    return {"resources": event_resources(event, now)}


def staff_attachments(event: Event) -> StaffAttachments:
    event_wide = db.session.scalars(
        db.select(Resource)
        .join(EventResource, EventResource.resource_id == Resource.id)
        .where(EventResource.event_id == event.id)
        .order_by(EventResource.position, EventResource.id)
    ).all()
    rows = db.session.execute(
        db.select(AgendaItemResource.agenda_item_id, Resource)
        .join(Resource, Resource.id == AgendaItemResource.resource_id)
        .join(AgendaItem, AgendaItem.id == AgendaItemResource.agenda_item_id)
        .where(AgendaItem.event_id == event.id)
        .order_by(AgendaItemResource.agenda_item_id, AgendaItemResource.position,
                  AgendaItemResource.id)
    ).all()  # fmt: skip
    by_item: dict[int, list[Resource]] = {}
    for item_id, resource in rows:
        by_item.setdefault(item_id, []).append(resource)
    return StaffAttachments(list(event_wide), by_item)


def has_published_resources(event_id: int) -> bool:
    """Whether the event's resource pack has anything published in it (one query)."""
    published = Resource.status == ResourceStatus.published
    event_wide = (
        db.select(EventResource.id)
        .join(Resource, Resource.id == EventResource.resource_id)
        .where(EventResource.event_id == event_id, published)
    )
    per_talk = (
        db.select(AgendaItemResource.id)
        .join(Resource, Resource.id == AgendaItemResource.resource_id)
        .join(AgendaItem, AgendaItem.id == AgendaItemResource.agenda_item_id)
        .where(AgendaItem.event_id == event_id, published)
    )
    return bool(db.session.scalar(db.select(db.or_(event_wide.exists(), per_talk.exists()))))
