"""Who commits: a request commits once, after its view; work outside a request uses `unit_of_work`.

A page request is one transaction. It is committed after a view that returned a response with a
status below 400 (a page or a redirect), before the response's body is produced, and rolled back
after one that returned 400 or more or raised. Views and services never commit or roll back.
Background work (the worker, `chamber` commands, the demo) marks each of its transactions with
`with unit_of_work(): ...`, which commits when the block ends and rolls back when it raises.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from flask import Flask, Response
from sqlalchemy import CursorResult, Executable, event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from chamber.extensions import db

_STATE = "chamber.transaction"  # in `Session.info`: what this transaction has done so far


class TransactionMisuse(RuntimeError):
    """A programming error: something that must begin a transaction was asked for too late."""


def init_app(app: Flask) -> None:
    """Commit or roll back each request. Call before any other `after_request` is registered, so
    that the commit comes after every other hook has had its say."""
    app.after_request(_end_request)
    app.teardown_request(_roll_back_after_error)


def _end_request(response: Response) -> Response:
    # Before the body: a streamed response or file is sent after its rows are committed. A commit
    # that fails (a conflict a view did not foresee) raises here, so the request is a 500 and
    # `_roll_back_after_error` ends the transaction. A request that never used the session (a
    # kept page answered from the cache) has nothing to end.
    if not db.session.registry.has():
        return response
    if response.status_code < 400:
        db.session.commit()
    else:
        db.session.rollback()
    return response


def _roll_back_after_error(error: BaseException | None) -> None:
    # A view or hook raised, or the commit itself failed: nothing of this request is kept.
    if error is not None:
        db.session.rollback()


def abandon() -> None:
    """Roll back now, for a 500 page that must still read (the staff user, say) after an error
    left the transaction unusable. The request rolls back anyway."""
    db.session.rollback()


@contextmanager
def unit_of_work() -> Iterator[None]:
    """One transaction of background work: committed when the block ends, rolled back if it
    raises (and the error raised again)."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


# --- what the transaction has done ---------------------------------------------------------------


def state() -> dict[str, Any]:
    """Notes that last as long as the current transaction (e.g. which seat locks it holds)."""
    noted: dict[str, Any] = db.session.info.setdefault(_STATE, {})
    return noted


def has_written() -> bool:
    """Whether this transaction has written a row, or holds changes it has not flushed yet."""
    return bool(state().get("wrote")) or _has_pending_changes(db.session())


def end_reads() -> None:
    """End a transaction that has only read, so that the next statement starts a fresh one whose
    first write is a lock (on SQLite a transaction that has read cannot always become a writer).
    Loaded objects are expired, so they are read again inside the new transaction.

    Raises TransactionMisuse if the transaction has written: ending it would lose the writes."""
    if has_written():
        raise TransactionMisuse(
            "this must be the transaction's first write, but the transaction has written already"
        )
    db.session.rollback()  # only reads to end; nothing is lost


def _has_pending_changes(session: Session) -> bool:
    return bool(
        session.new
        or session.deleted
        or any(session.is_modified(instance) for instance in session.dirty)
    )


def created_here(instance: object) -> bool:
    """Whether `instance` was inserted by this transaction, so no other transaction can see it."""
    return instance in state().get("created", ())


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: object) -> None:
    if _has_pending_changes(session):  # at this point the flushed changes are still listed
        noted = session.info.setdefault(_STATE, {})
        noted["wrote"] = True
        noted.setdefault("created", weakref.WeakSet()).update(session.new)


@event.listens_for(Session, "do_orm_execute")
def _note_statement(execute_state: ORMExecuteState) -> None:
    if execute_state.is_insert or execute_state.is_update or execute_state.is_delete:
        execute_state.session.info.setdefault(_STATE, {})["wrote"] = True


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction, not a savepoint
        session.info.pop(_STATE, None)


def rows_changed(statement: Executable) -> int:
    """Run an UPDATE or DELETE in the session and return how many rows it changed: how a
    conditional UPDATE tells the one request or worker that won a race from the others."""
    return int(cast("CursorResult[Any]", db.session.execute(statement)).rowcount or 0)
