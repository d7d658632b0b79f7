"""Objects for rows a transaction has just written with a Core INSERT: the ORM's own bulk INSERT
with RETURNING of whole objects costs several times the statement's CPU, which matters on the
paths that run most (a booking's places). The caller gives every column's value (what it sent,
and what the database made, from RETURNING); the object joins the session as though it had been
read, with nothing to flush."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Row
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, make_transient_to_detached

from chamber.extensions import db

Model = TypeVar("Model")


@functools.cache
def _column_keys(mapper: Mapper[Any]) -> frozenset[str]:
    return frozenset(column.key for column in mapper.column_attrs)


def as_read(model: type[Model], values: dict[str, Any]) -> Model:
    """An instance of `model` for a row just written with `values` (every column, the primary
    key included), persistent in the session as if loaded. Raises ValueError if a column is
    missing: it would be read again, a statement each, the first time it is asked for."""
    missing = _column_keys(sa_inspect(model)) - values.keys()
    if missing:
        raise ValueError(f"{model.__name__} written without {', '.join(sorted(missing))}")
    instance = model(**values)
    make_transient_to_detached(instance)
    db.session.add(instance)
    return instance


@functools.cache
def _keys_by_column(mapper: Mapper[Any]) -> dict[str, str]:
    return {column.name: mapper.get_property_by_column(column).key for column in mapper.columns}


def rows_as_read(model: type[Model], rows: Iterable[Row[Any]]) -> list[Model]:
    """`as_read` for each row an INSERT ... RETURNING gave back whole (every column)."""
    keys = _keys_by_column(sa_inspect(model))
    return [
        as_read(model, {keys[name]: value for name, value in row._mapping.items()}) for row in rows
    ]
