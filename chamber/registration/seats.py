"""How many seats are taken: the one place that says which delegates hold a seat and counts them.
Lower layers (events, calendar) cannot import this; their callers pass the count in. Pages that
break an event's delegates down further (the door's counts, the registrations page's tallies, the
staff home) count seats with `holds_a_seat()` inside their own aggregate query."""

from __future__ import annotations

import functools

from sqlalchemy import ColumnElement, Select, bindparam

from chamber.extensions import db
from chamber.registration.models import Delegate, DelegateStatus


def holds_a_seat() -> ColumnElement[bool]:
    """The rule, as SQL: a confirmed delegate holds a seat; one waiting or cancelled does not."""
    return Delegate.status == DelegateStatus.confirmed


def confirmed_count(event_id: int) -> int:
    """Confirmed delegates at one event: the seats taken."""
    count: int = db.session.scalar(confirmed_at_one(), {"event_id": event_id})
    return count


@functools.cache
def confirmed_at_one() -> Select[tuple[int]]:
    """`confirmed_count`'s statement, for the event given as the parameter `event_id`: made once
    (every booking asks it, and `services.settle_seats` asks it again under the seat lock)."""
    statement: Select[tuple[int]] = db.select(db.func.count(Delegate.id)).where(
        Delegate.event_id == bindparam("event_id"), holds_a_seat()
    )
    return statement


def confirmed_counts(event_ids: list[int]) -> dict[int, int]:
    """Confirmed delegates per event, in one query for any number of events (events with none are
    left out)."""
    if not event_ids:
        return {}
    rows = db.session.execute(
        db.select(Delegate.event_id, db.func.count(Delegate.id))
        .where(Delegate.event_id.in_(event_ids), holds_a_seat())
        .group_by(Delegate.event_id)
    ).all()
    return {event_id: count for event_id, count in rows}
