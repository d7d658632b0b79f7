"""Reads for the staff event pages: the events list by what is shown, and the speakers to choose
from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select

from chamber.events.models import Event, EventStatus, Speaker
from chamber.extensions import db


def events_shown(shown: str, now: datetime) -> Select[Any]:
    """A select to paginate: "upcoming" soonest first; "past", a status's name, or "all", the
    latest first."""
    query = db.select(Event)
    if shown == "upcoming":
        return query.where(Event.ends_at > now).order_by(Event.starts_at)
    if shown == "past":
        return query.where(Event.ends_at <= now).order_by(Event.starts_at.desc())
    if shown != "all":
        query = query.where(Event.status == EventStatus(shown))
    return query.order_by(Event.starts_at.desc())


def speaker_names() -> list[tuple[int, str, str]]:
    """(id, name, organisation) of every speaker, by name."""
    rows = db.session.execute(
        db.select(Speaker.id, Speaker.name, Speaker.organisation).order_by(Speaker.name)
    )
    return [(sid, name, org) for sid, name, org in rows]
