"""Objects for rows a transaction has just written with a Core INSERT: the ORM's own bulk INSERT
with RETURNING of whole objects costs several times the statement's CPU, which matters on the
paths that run most (a booking's places). The caller gives every column's value (what it sent,
and what the database made, from RETURNING); the object joins the session as though it had been
read, with nothing to flush."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Row, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, Session, SessionTransaction, make_transient_to_detached

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
    session = db.session()
    session.add(instance)
    # Rolled back, the row is gone, but the session would keep an object it thinks was read:
    # noted with the transaction that wrote it, to be let go with it (`_let_go`).
    session.info.setdefault(_WRITTEN, []).append(
        (session.get_nested_transaction() or session.get_transaction(), instance)
    )
    return instance


_WRITTEN = "chamber.written"  # in `Session.info`: (the transaction, the object) for each


@event.listens_for(Session, "after_soft_rollback")
def _let_go(session: Session, rolled_back: SessionTransaction) -> None:
    """The objects made for rows that `rolled_back` (or a savepoint inside it) wrote leave the
    session, as new objects would."""
    written = session.info.get(_WRITTEN)
    if not written:
        return
    kept = []
    for transaction, instance in written:
        if _within(transaction, rolled_back):
            if instance in session:
                session.expunge(instance)
        else:
            kept.append((transaction, instance))
    session.info[_WRITTEN] = kept


@event.listens_for(Session, "after_commit")
def _keep(session: Session) -> None:
    session.info.pop(_WRITTEN, None)  # committed: the rows are there for good


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def attribute_keys(model: type[Any]) -> dict[str, str]:
    """Each of `model`'s columns, by name, to the attribute that holds it."""
    return _keys_by_column(sa_inspect(model))


@functools.cache
def _keys_by_column(mapper: Mapper[Any]) -> dict[str, str]:
    return {column.name: mapper.get_property_by_column(column).key for column in mapper.columns}


def rows_as_read(model: type[Model], rows: Iterable[Row[Any]]) -> list[Model]:
    """`as_read` for each row an INSERT ... RETURNING gave back whole (every column)."""
    keys = attribute_keys(model)
    return [
        as_read(model, {keys[name]: value for name, value in row._mapping.items()}) for row in rows
    ]
