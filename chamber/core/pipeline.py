"""Several statements in one round trip to PostgreSQL, on the session's own connection and in its
transaction: psycopg's pipeline mode, for the few places where a round trip costs others their
wait (a booking's statements under the event's seat lock, `registration.services.settle_seats`).

Each statement is a Core statement compiled once for its shape by SQLAlchemy for the driver, its
values converted by the columns' own types, its rows converted back the same way; PostgreSQL
runs them in order, each with a snapshot of its own (READ COMMITTED), so a statement sent after a
lock's UPDATE sees everything committed before the lock was granted. If one fails, the server
skips the rest, and the error is raised as SQLAlchemy's (`DBAPIError`), as `Session.execute`
would raise it; the transaction is then left for the request to roll back. SQLite has no such
mode: its callers run the same statements one by one through the session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import ClauseElement, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

from chamber.extensions import db


@dataclass(frozen=True)
class _Compiled:
    compiler: SQLCompiler
    to_driver: dict[str, Callable[[Any], Any] | None]  # each value's, by its name in the SQL
    from_driver: tuple[Callable[[Any], Any] | None, ...]  # each returned column's

    def rows(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        convert = self.from_driver
        if not any(convert):
            return [tuple(row) for row in rows]
        return [
            tuple(
                f(value) if f is not None else value for value, f in zip(row, convert, strict=True)
            )
            for row in rows
        ]


@dataclass(frozen=True)
class Prepared:
    """A statement as the driver takes it: its SQL, and the values given with the literals the
    statement itself holds, converted."""

    compiled: _Compiled
    values: dict[str, Any]

    @property
    def sql(self) -> str:
        return self.compiled.compiler.string


# Compiled statements by SQLAlchemy's cache key (the statement's shape, not its literal values),
# as `Connection.execute` keeps them; emptied when full.
_COMPILED: dict[Any, _Compiled] = {}
_COMPILED_KEPT = 200


def prepared(
    statement: ClauseElement, values: dict[str, Any], dialect: Dialect | None = None
) -> Prepared:
    """`statement` with `values` for the driver of `dialect` (the session's)."""
    dialect = dialect or db.session.get_bind().dialect
    cache_key = statement._generate_cache_key()
    key = (dialect.name, cache_key.key) if cache_key is not None else None
    made = _COMPILED.get(key) if key is not None else None
    if made is None:
        made = _compile(statement, dialect, cache_key)
        if key is not None:
            if len(_COMPILED) >= _COMPILED_KEPT:
                _COMPILED.clear()
            _COMPILED[key] = made
    given = made.compiler.construct_params(
        values, extracted_parameters=cache_key.bindparams if cache_key is not None else None
    )
    return Prepared(
        made,
        {
            name: convert(value) if (convert := made.to_driver.get(name)) else value
            for name, value in given.items()
        },
    )


def _compile(statement: ClauseElement, dialect: Dialect, cache_key: Any) -> _Compiled:
    # Compiled with its cache key, as SQLAlchemy compiles what it keeps, so that another
    # statement of the same shape can give its own literal values to it (`construct_params`).
    compiler = statement.compile(dialect=dialect, cache_key=cache_key)
    assert isinstance(compiler, SQLCompiler)
    if compiler.literal_execute_params or compiler.post_compile_params:
        raise ValueError("a pipelined statement takes no expanding (IN) parameter: use an array")
    if compiler.insert_prefetch or compiler.update_prefetch:  # SQLAlchemy makes them as it runs
        raise ValueError("a pipelined statement sets every column with a default made in Python")
    # Each value and column converted as SQLAlchemy converts them for this dialect (its own kind
    # of each type, `dialect_impl`), so the driver gets and gives what the ORM's statements do.
    return _Compiled(
        compiler,
        to_driver={
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for bind, name in compiler.bind_names.items()
        },
        from_driver=tuple(
            entry[3].dialect_impl(dialect).result_processor(dialect, None)
            for entry in compiler._result_columns
        ),
    )


def run(statements: Sequence[tuple[ClauseElement, dict[str, Any]]]) -> list[list[tuple[Any, ...]]]:
    """Run `statements` (each with its values) on the session's connection in one round trip,
    and return each one's rows, converted. PostgreSQL only.

    What the session holds unwritten is flushed first, as `Session.execute` would. Every
    statement is made ready before any is sent, so one refused here sends none. The database's
    error comes out as SQLAlchemy's (`sqlalchemy.exc.DBAPIError` and its kinds), the driver's
    error under it, and a connection the error broke is invalidated, never reused."""
    session = db.session()
    session.flush()
    connection = session.connection()
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    assert driver is not None and dialect.name == "postgresql"
    ready = [prepared(statement, values, dialect) for statement, values in statements]
    sent = []
    try:
        with driver.pipeline():
            for made in ready:
                cursor = driver.cursor()
                cursor.execute(made.sql, made.values)
                sent.append((cursor, made.compiled))
    except psycopg.Error as error:
        broken = driver.broken
        if broken:
            connection.invalidate(error)
        raise DBAPIError.instance(
            "\n".join(made.sql for made in ready),  # which one failed, the error itself says
            None,
            error,
            psycopg.Error,
            hide_parameters=True,  # they may hold what a person typed: never in a log
            connection_invalidated=broken,
            dialect=dialect,
        ) from error
    results = []
    for cursor, made_compiled in sent:
        rows = cursor.fetchall() if cursor.description is not None else []
        cursor.close()
        results.append(made_compiled.rows(rows))
    return results
