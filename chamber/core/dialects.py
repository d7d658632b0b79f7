"""What differs between the two databases Chamber runs on (PostgreSQL in production, SQLite for the
demo and tests), asked in one place: which one the session's connection is, the INSERT
construct with `ON CONFLICT` that each dialect spells in its own module, and a long IN list."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, event, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PostgreSQLInsert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.engine import Engine

from chamber.core.text import fold
from chamber.extensions import db


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (otherwise it is SQLite)."""
    return bool(db.session.get_bind().dialect.name == "postgresql")


def insert_or_skip(table: Any) -> PostgreSQLInsert | SQLiteInsert:
    """`INSERT` into `table` for the session's database, with `.on_conflict_do_nothing()` and
    `.on_conflict_do_update()` (both dialects have them, each in its own module)."""
    if on_postgresql():
        return postgresql.insert(table)
    return sqlite.insert(table)


def one_of(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:values)`, one array parameter. The worker
    asks this of a batch's 250 ids or addresses several times a batch: as 250 parameters, the
    statement is rendered and parsed afresh each time (too long for the driver's cache), which
    cost three times the CPU of the query with one array."""
    if on_postgresql():
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def folded(column: Any) -> ColumnElement[str]:
    """`column` as a search compares it, without regard to case or accents, for a LIKE against a
    pattern folded by `core.text.fold`: on PostgreSQL `lower(unaccent(column))` (the `unaccent`
    extension, made by the migrations), on SQLite `chamber_fold(column)`, which runs `fold`
    itself (SQLite's own `lower` leaves every letter outside ASCII as it is)."""
    if on_postgresql():
        return func.lower(func.unaccent(column))
    return func.chamber_fold(column)


@event.listens_for(Engine, "connect")
def _fold_on_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Each SQLite connection gets `chamber_fold`, which `folded` calls."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("chamber_fold", 1, fold, deterministic=True)
