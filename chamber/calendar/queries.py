"""Reads for the calendar feed: which events it holds and their versions (for the ETag), and the
plain rows it is built from, three queries whatever the number of events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row

from chamber.events.models import AgendaItem, AgendaItemSpeaker, Event, EventStatus, Speaker
from chamber.extensions import db

FEED_HISTORY = timedelta(days=90)  # past events stay in the feed this long


class FeedRows(NamedTuple):
    events: list[Row[Any]]
    items: list[Row[Any]]
    speakers: list[Row[Any]]


def _in_feed(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Event.status != EventStatus.draft, Event.ends_at > now - FEED_HISTORY


def feed_versions(now: datetime) -> list[Row[Any]]:
    """(id, sequence, updated_at) of every event in the feed, by id."""
    return list(
        db.session.execute(
            db.select(Event.id, Event.sequence, Event.updated_at)
            .where(*_in_feed(now))
            .order_by(Event.id)
        ).all()
    )


def feed_rows(now: datetime) -> FeedRows:
    """The feed's events, agenda items and speakers as plain rows, in feed order."""
    # Plain rows: as ORM objects, a thousand events with their agendas cost more to load than the
    # file costs to build.
    in_feed = _in_feed(now)
    events = db.session.execute(
        db.select(
            Event.id, Event.slug, Event.title, Event.summary, Event.venue_name,
            Event.venue_address, Event.venue_town, Event.venue_postcode, Event.venue_country,
            Event.timezone, Event.starts_at, Event.ends_at, Event.status,
            Event.sequence, Event.created_at, Event.updated_at,
        )
        .where(*in_feed)
        .order_by(Event.starts_at, Event.id)
    ).all()  # fmt: skip
    items = db.session.execute(
        db.select(
            AgendaItem.event_id, AgendaItem.id, AgendaItem.starts_at, AgendaItem.ends_at,
            AgendaItem.title,
        )
        .join(Event, Event.id == AgendaItem.event_id)
        .where(*in_feed)
        .order_by(AgendaItem.event_id, AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)
    ).all()  # fmt: skip
    speakers = db.session.execute(
        db.select(AgendaItemSpeaker.agenda_item_id, Speaker.name, Speaker.organisation)
        .join(Speaker, Speaker.id == AgendaItemSpeaker.speaker_id)
        .join(AgendaItem, AgendaItem.id == AgendaItemSpeaker.agenda_item_id)
        .join(Event, Event.id == AgendaItem.event_id)
        .where(*in_feed)
        .order_by(
            AgendaItemSpeaker.agenda_item_id, AgendaItemSpeaker.position, AgendaItemSpeaker.id
        )
    ).all()
    return FeedRows(list(events), list(items), list(speakers))
