"""Several statements in one round trip to PostgreSQL (`core.pipeline`): values and rows converted
by the columns' own types, each statement seeing what the one before it committed to, an error
stopping the rest, and no statement it cannot send whole."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from chamber.core import pipeline
from chamber.core.dialects import on_postgresql
from chamber.events.models import Event, EventStatus
from chamber.extensions import db


@pytest.fixture(autouse=True)
def _postgresql_only(app):
    if not on_postgresql():
        pytest.skip("pipeline mode is PostgreSQL's; SQLite's callers run the statements one by one")


def test_statements_run_in_order_with_their_values_and_rows_converted(make_event):
    event = make_event(title="Cyber <b>'; DROP TABLE event; --")
    later = event.starts_at + timedelta(hours=1)
    table = Event.__table__
    moved, read = pipeline.run(
        [
            (
                update(table)
                .where(table.c.id == bindparam("event_id"))
                .values(starts_at=bindparam("starts"), updated_at=table.c.updated_at)
                .returning(table.c.status),
                {"event_id": event.id, "starts": later},
            ),
            (
                select(table.c.title, table.c.starts_at).where(table.c.id == bindparam("event_id")),
                {"event_id": event.id},
            ),
        ]
    )
    assert moved == [(EventStatus.published,)]  # the enum, as the ORM would give it
    assert read == [("Cyber <b>'; DROP TABLE event; --", later)]  # after the UPDATE, tz-aware
    db.session.rollback()
    assert db.session.get(Event, event.id).starts_at == event.starts_at  # one transaction


def test_an_error_stops_the_statements_after_it_and_is_raised(make_event):
    event = make_event()
    table = Event.__table__
    with pytest.raises(IntegrityError) as refused:
        pipeline.run(
            [
                (
                    update(table)
                    .where(table.c.id == event.id)
                    .values(slug=bindparam("slug"), updated_at=table.c.updated_at),
                    {"slug": make_event().slug},
                ),
                (
                    update(table)
                    .where(table.c.id == event.id)
                    .values(title="never", updated_at=table.c.updated_at),
                    {},
                ),
            ]
        )
    assert isinstance(refused.value.orig, psycopg.errors.UniqueViolation)  # the driver's, under it
    db.session.rollback()
    assert db.session.get(Event, event.id).title != "never"


def test_a_statement_with_an_in_list_is_refused_before_anything_is_sent(make_event):
    """Every statement is made ready before the first is sent: the UPDATE before the refused one
    never runs."""
    event = make_event()
    table = Event.__table__
    renamed = (
        update(table)
        .where(table.c.id == event.id)
        .values(title="never", updated_at=table.c.updated_at)
    )
    with pytest.raises(ValueError, match="use an array"):
        pipeline.run(
            [
                (renamed, {}),
                (
                    select(Event.id).where(Event.id.in_(bindparam("ids", expanding=True))),
                    {"ids": [1]},
                ),
            ]
        )
    assert db.session.scalar(select(table.c.title).where(table.c.id == event.id)) == event.title


def test_what_the_session_holds_unwritten_goes_first(make_event):
    event = make_event()
    event.title = "Changed, not yet flushed"
    table = Event.__table__
    read = pipeline.run(
        [(select(table.c.title).where(table.c.id == bindparam("id")), {"id": event.id})]
    )
    assert read == [[("Changed, not yet flushed",)]]


def test_a_statement_whose_defaults_are_made_in_python_is_refused(make_event):
    """An UPDATE of the event that leaves out `updated_at` (its `onupdate` is made by SQLAlchemy
    as it runs a statement itself) would write NULL there."""
    table = Event.__table__
    with pytest.raises(ValueError, match="default made in Python"):
        pipeline.run([(update(table).where(table.c.id == 1).values(title="x"), {})])


def test_statements_of_one_shape_each_go_with_their_own_literal_values(make_event):
    """Statements are compiled once for their shape (SQLAlchemy's cache key), not once for each
    value: two built alike with different literals each run with their own."""
    first, second = make_event(), make_event()
    table = Event.__table__

    def title_of(event_id: int) -> str:
        statement = select(table.c.title).where(table.c.id == event_id)  # a literal, each time
        return pipeline.run([(statement, {})])[0][0][0]

    assert (title_of(first.id), title_of(second.id)) == (first.title, second.title)
    assert first.title != second.title
