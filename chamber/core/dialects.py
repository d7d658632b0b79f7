"""What differs between the two databases Chamber runs on (PostgreSQL in production, SQLite for the
demo and tests), asked in one place: which one the session's connection is, and the INSERT
construct with `ON CONFLICT` that each dialect spells in its own module."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PostgreSQLInsert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert

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
