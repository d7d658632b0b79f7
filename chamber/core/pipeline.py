"""Several statements in one round trip to PostgreSQL, on the session's own connection and in its
transaction: psycopg's pipeline mode, for the few places where a round trip costs others their
wait (a booking's statements under the event's seat lock, `registration.services.settle_seats`).

Each statement is a Core statement compiled once by SQLAlchemy for the driver, its values
converted by the columns' own types, its rows converted back the same way; PostgreSQL runs them
in order, each with a snapshot of its own (READ COMMITTED), so a statement sent after a lock's
UPDATE sees everything committed before the lock was granted. If one fails, the server skips the
rest, and the error is raised here; the transaction is then left for the request to roll back.
SQLite has no such mode: its callers run the same statements one by one through the session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ClauseElement, Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from chamber.extensions import db


@dataclass(frozen=True)
class _Compiled:
    compiler: SQLCompiler
    to_driver: dict[str, Callable[[Any], Any] | None]  # each value's, by its name in the SQL
    from_driver: tuple[Callable[[Any], Any] | None, ...]  # each returned column's

    def values(self, given: dict[str, Any]) -> dict[str, Any]:
        values = self.compiler.construct_params(given)
        return {
            name: convert(value) if (convert := self.to_driver.get(name)) else value
            for name, value in values.items()
        }

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


_COMPILED: dict[tuple[int, str], tuple[ClauseElement, _Compiled]] = {}


def compiled(statement: ClauseElement, dialect: Dialect | None = None) -> _Compiled:
    """`statement` compiled for the driver of `dialect` (the session's), kept for as long as the
    statement is (the statements given are made once, with `functools.cache`)."""
    dialect = dialect or db.session.get_bind().dialect
    key = (id(statement), dialect.name)
    kept = _COMPILED.get(key)
    if kept is not None and kept[0] is statement:
        return kept[1]
    compiler = statement.compile(dialect=dialect)
    assert isinstance(compiler, SQLCompiler)
    if compiler.literal_execute_params or compiler.post_compile_params:
        raise ValueError("a pipelined statement takes no expanding (IN) parameter: use an array")
    if (
        compiler.insert_prefetch or compiler.update_prefetch
    ):  # computed only when SQLAlchemy runs it
        raise ValueError("a pipelined statement sets every column with a default made in Python")
    made = _Compiled(
        compiler,
        to_driver={
            name: bind.type.bind_processor(dialect) for bind, name in compiler.bind_names.items()
        },
        from_driver=tuple(
            entry[3].result_processor(dialect, None) for entry in compiler._result_columns
        ),
    )
    _COMPILED[key] = (statement, made)
    return made


def run(statements: Sequence[tuple[ClauseElement, dict[str, Any]]]) -> list[list[tuple[Any, ...]]]:
    """Run `statements` (each with its values) on the session's connection in one round trip, and
    return each one's rows, converted. PostgreSQL only."""
    connection = db.session.connection()
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    assert driver is not None and dialect.name == "postgresql"
    sent = []
    with driver.pipeline():
        for statement, values in statements:
            prepared = compiled(statement, dialect)
            cursor = driver.cursor()
            cursor.execute(prepared.compiler.string, prepared.values(values))
            sent.append((cursor, prepared))
    results = []
    for cursor, prepared in sent:
        rows = cursor.fetchall() if cursor.description is not None else []
        cursor.close()
        results.append(prepared.rows(rows))
    return results
