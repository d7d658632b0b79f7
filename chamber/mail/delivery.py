"""Delivering the outbox: claim due messages, send them over one connection, record each outcome.

Claiming is one UPDATE that stamps a batch with this worker's claim id and a lease; on PostgreSQL
the rows are picked with FOR UPDATE SKIP LOCKED, so several workers never take the same message.
A worker that dies leaves its claimed messages to be picked up again when the lease runs out.
A message's links are committed before it is sent, and a message the server accepted is recorded
as sent before the next one can leave, so a crash re-sends at most one message (the last that went
out), and every copy's links work. Any error in one message parks that message as failed, with its
reason, and the worker goes on with the rest.

Over SMTP, sending a message is mostly waiting for the server's replies, so the worker does its
own work while the server reads, on one thread (`Courier`): the record of the message sent before
is committed before this one's content can leave (on PostgreSQL that record leaves as soon as the
message before was accepted, and its answer is read while the server reads this one's DATA
command; elsewhere it is written at once), and the next message is prepared (its links minted and
committed, its bytes built) while the server reads this one's content.
"""

from __future__ import annotations

import logging
import random
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import partial
from typing import Any, Generic, TypeVar

import psycopg
from flask import Config, current_app
from psycopg import pq
from sqlalchemy import ColumnElement, bindparam, or_, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from chamber.core.dialects import on_postgresql, one_of
from chamber.core.times import utcnow
from chamber.core.transactions import end_reads, rows_changed, unit_of_work
from chamber.extensions import db
from chamber.mail import links, rendering, services, signals
from chamber.mail.backends import (
    Backend,
    Bounce,
    PermanentFailure,
    ServerUnavailable,
    TemporaryFailure,
    backend_for,
)
from chamber.mail.mime import InlineImage, Outgoing, OutgoingAttachment, build_email, qr_png
from chamber.mail.models import (
    HELD_UNTIL,
    MailKind,
    MessageStatus,
    OutboxAttachment,
    OutboxMessage,
)

T = TypeVar("T")
_random = random.Random()  # the jitter of retries


class Unsendable(Exception):
    """This message cannot be sent as it is: parked, the rest go on."""


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)
    server_unavailable: str = ""  # why the mail server took nothing (`ServerUnavailable`)

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed + self.suppressed

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.suppressed += other.suppressed
        self.errors.extend(other.errors)
        self.server_unavailable = other.server_unavailable or self.server_unavailable


def backoff(
    attempts: int, *, base: float, cap: float, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with jitter: about base, 2x, 4x ... up to cap, each scaled by 0.5-1.5."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * (rng or _random).uniform(0.5, 1.5))


def due_filter(now: datetime) -> ColumnElement[bool]:
    return or_(
        (OutboxMessage.status == MessageStatus.pending) & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.status == MessageStatus.sending) & (OutboxMessage.lease_until < now),
    )


# Messages a claim takes. Each batch pays for its claim, its send-time checks and the one commit of
# its links: at 100 that cost a campaign a fifth of its delivery rate. A transactional message
# queued meanwhile waits for the batch in hand (250 take a local relay about a third of a second).
BATCH_SIZE = 250

# The key of the PostgreSQL advisory lock that bulk claims take in turn, so that two workers
# never both count the same minute's quota as free ("chamb" in ASCII).
BULK_CLAIM_LOCK = 0x6368616D62


def claim_batch(
    worker_id: str, limit: int, now: datetime | None = None, *, bulk: bool = True
) -> str | None:
    """Claim up to `limit` due messages for this worker; returns the claim id, or None if none.
    With `bulk` False, only messages that are not bulk.

    Every due message that is not bulk comes first, whatever is queued before it; bulk messages
    (campaigns) fill the rest of the batch, up to what CHAMBER_BULK_PER_MINUTE leaves of the
    last minute's quota. Each stream is taken messages stuck with a dead worker first, then the
    waiting ones oldest first, each one UPDATE through `ix_outbox_message_stream_due`, so a
    claim never reads past the messages it takes (a campaign of 20,000 costs a confirmation
    queued behind it nothing). All of it is one transaction: on SQLite its first UPDATE takes the
    database's write lock, and on PostgreSQL the bulk part takes an advisory lock, so two
    workers take bulk mail in turn and the quota holds across them."""
    now = now or utcnow()
    claim = f"{worker_id}:{uuid.uuid4().hex[:12]}"[:64]
    lease = now + timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    taken = 0

    def take(bulk: bool, status: MessageStatus, wanted: int) -> int:
        if wanted <= 0:
            return 0
        if status is MessageStatus.sending:  # claimed by a worker whose lease ran out
            due = OutboxMessage.lease_until < now
        else:
            due = OutboxMessage.next_attempt_at <= now
        ids = (
            db.select(OutboxMessage.id)
            .where(OutboxMessage.status == status, OutboxMessage.bulk == bulk, due)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(wanted)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return rows_changed(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(
                status=MessageStatus.sending, claimed_by=claim, lease_until=lease, claimed_at=now
            )
            .execution_options(synchronize_session=False)
        )

    with unit_of_work():
        for status in (MessageStatus.sending, MessageStatus.pending):
            taken += take(False, status, limit - taken)
        if bulk and taken < limit:
            room = min(limit - taken, bulk_quota(now))
            for status in (MessageStatus.sending, MessageStatus.pending):
                got = take(True, status, room)
                taken, room = taken + got, room - got
    return claim if taken else None


def bulk_quota(now: datetime) -> int:
    """How many bulk messages may be claimed now: CHAMBER_BULK_PER_MINUTE less those claimed in
    the last 60 seconds or still on their way, counted in the database so that every worker
    shares one quota (a very large number when there is no limit). Called inside the claim's
    transaction: on PostgreSQL it first takes the advisory lock that bulk claims take in turn,
    held until the claim commits."""
    per_minute = int(current_app.config["BULK_PER_MINUTE"])
    if per_minute <= 0:
        return 2**31
    if on_postgresql():
        db.session.execute(db.select(db.func.pg_advisory_xact_lock(BULK_CLAIM_LOCK)))
    recent = (
        db.select(OutboxMessage.id)
        .where(OutboxMessage.bulk.is_(True), OutboxMessage.claimed_at > now - timedelta(minutes=1))
        .union(
            db.select(OutboxMessage.id).where(
                OutboxMessage.status == MessageStatus.sending, OutboxMessage.bulk.is_(True)
            )
        )
        .subquery()
    )
    used = db.session.scalar(db.select(db.func.count()).select_from(recent)) or 0
    return max(0, per_minute - used)


_outbox = OutboxMessage.__table__
# The hot path, built once: a Core statement with bound values, not an ORM update per message.
_MARK_SENT = (
    update(_outbox)
    .where(_outbox.c.id == bindparam("message"), _outbox.c.claimed_by == bindparam("claim"))
    .values(
        status=MessageStatus.sent,
        attempts=bindparam("tries"),
        sent_at=bindparam("at"),
        last_error=None,
        claimed_by=None,
        lease_until=None,
    )
)


class SentLedger:
    """Records each sent message as sent, committed at once, on a database connection of its own
    in autocommit mode. This is the hot path, so it goes straight to the driver: `_MARK_SENT` is
    compiled once for the database, each value is converted by its column's own type (as
    SQLAlchemy would), and one cursor executes it, one round trip per message (SQLAlchemy's
    execution of it cost as much again as the driver's). On PostgreSQL this connection commits
    without waiting for the WAL flush: a worker that dies loses nothing by it; a crash of the
    database server itself may lose the records of its last fraction of a second (up to three
    `wal_writer_delay`s, 0.6 s by default), and those messages are sent once more.

    A record can also be split in two (`start`, then `finish`). On PostgreSQL the UPDATE leaves
    at once, and its answer is read later, so the courier sends the next message's envelope
    while the database works (`Courier`); the statement runs and commits on its own on the
    server whether or not its answer is ever read. Elsewhere `start` writes it at once."""

    def __init__(self, claim: str):
        self.claim = claim
        self._open()

    def _open(self) -> None:
        self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.postgresql = self.connection.dialect.name == "postgresql"
        if self.postgresql:
            self.connection.execute(text("SET synchronous_commit TO OFF"))
        dialect = self.connection.dialect
        self.statement = _MARK_SENT.compile(dialect=dialect)
        convert = {
            name: bind.type.bind_processor(dialect)
            for bind, name in self.statement.bind_names.items()
        }
        # Every value but the message, its tries and the time is the same for the whole claim:
        # converted once. The three are converted by their columns' own processors each time.
        self.constants = self.statement.construct_params(
            {"message": 0, "claim": self.claim, "tries": 0, "at": None}
        )
        for name, value in self.constants.items():
            processor = convert.get(name)
            if processor is not None:
                self.constants[name] = processor(value)
        self.varying = {name: convert.get(name) for name in ("message", "tries", "at")}
        self.positions = self.statement.positiontup  # the driver's placeholders are ? (SQLite)
        driver = self.connection.connection.driver_connection
        assert driver is not None  # a live connection from the pool
        self.cursor = driver.cursor()
        self.overlapped: _OverlappedRecord | _RecordAtOnce = (
            _OverlappedRecord(self.connection, driver)
            if self.postgresql
            else _RecordAtOnce(self._execute)
        )

    def __enter__(self) -> SentLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.overlapped.close()
            self.cursor.close()
            if self.postgresql:  # the connection goes back to the pool as it came
                self.connection.execute(text("RESET synchronous_commit"))
        except Exception:  # noqa: BLE001 - every message was dealt with; only the tidying failed
            current_app.logger.warning(
                "The sent-mail ledger's connection is dropped", exc_info=True
            )
            with suppress(Exception):  # never back to the pool in a state nobody expects
                self.connection.invalidate()
        finally:
            self.connection.close()

    def _values(self, message: Outgoing, attempts: int) -> dict[str, Any]:
        values = dict(self.constants)
        for name, value in (("message", message.id), ("tries", attempts), ("at", utcnow())):
            convert = self.varying[name]
            values[name] = convert(value) if convert is not None else value
        return values

    def record(self, message: Outgoing, attempts: int) -> None:
        """Record a message as sent, and wait until it is committed."""
        with self._reopened_if_left_busy():
            self._execute(self._values(message, attempts))

    def _execute(self, values: dict[str, Any]) -> None:
        positions = self.positions
        self.cursor.execute(
            self.statement.string, [values[name] for name in positions] if positions else values
        )

    def start(self, message: Outgoing, attempts: int) -> None:
        """Begin recording a message as sent, without waiting for it; `finish` waits."""
        with self._reopened_if_left_busy():
            self.overlapped.start(self._values(message, attempts))

    def finish(self) -> None:
        """Wait for the record `start` began; raises if the database refused it, or if its answer
        could not be read."""
        with self._reopened_if_left_busy():
            self.overlapped.finish()

    @contextmanager
    def _reopened_if_left_busy(self) -> Iterator[None]:
        """On an error that leaves a statement's answer unread, or the connection lost (the
        database restarted while the ledger waited between messages, say), the ledger takes a new
        connection, so that the message is recorded again the ordinary way and the ones after it
        too; the old one is never reused. If no new connection can be had, the error that caused
        it is raised: the courier then sends no more (`LedgerLost`)."""
        try:
            yield
        except Exception:
            if self.overlapped.pending or self._lost():
                with suppress(Exception):
                    self.connection.invalidate()
                    self.connection.close()
                with suppress(Exception):
                    self._open()
            raise

    def _lost(self) -> bool:
        """Whether the ledger's connection to the database is gone."""
        try:
            driver = self.connection.connection.driver_connection
        except Exception:  # noqa: BLE001 - invalidated, or closed: gone either way
            return True
        if isinstance(driver, psycopg.Connection):
            return bool(driver.broken or driver.pgconn.status != pq.ConnStatus.OK)
        return driver is None


class _OverlappedRecord:
    """`SentLedger`'s record split in two on PostgreSQL, over libpq's asynchronous calls (psycopg's
    `pq` module): a statement prepared once for the ledger's connection, sent with the values as
    text, its answer read when asked for. Between `start` and `finish` the connection is used
    for nothing else; `pending` says a statement's answer is still to be read."""

    def __init__(self, connection: Any, driver: psycopg.Connection[Any]):
        self.connection, self.pgconn = connection, driver.pgconn
        self.encoding = driver.info.encoding
        self.name = f"chamber_mark_sent_{uuid.uuid4().hex[:12]}"
        # The statement with libpq's own numbered placeholders ($1, $2 ...), in `positions` order.
        dialect = postgresql.psycopg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
        numbered = _MARK_SENT.compile(dialect=dialect)
        self.positions = numbered.positiontup or []
        connection.exec_driver_sql(f"PREPARE {self.name} AS {numbered.string}")
        self.pending = False
        self.poller = select.poll()  # not `select.select`: it refuses descriptors above 1023
        self.poller.register(self.pgconn.socket, select.POLLIN)

    def start(self, values: dict[str, Any]) -> None:
        self.pgconn.send_query_prepared(
            self.name.encode(), [_as_text(values[name], self.encoding) for name in self.positions]
        )
        self.pending = True  # queued: from here on its answer is owed
        self.pgconn.flush()  # what does not fit the socket now is sent by `finish`

    def finish(self) -> None:
        if not self.pending:
            return
        pgconn, poller, socket = self.pgconn, self.poller, self.pgconn.socket
        if pgconn.flush():
            poller.modify(socket, select.POLLIN | select.POLLOUT)
            while pgconn.flush():
                poller.poll()
                pgconn.consume_input()
            poller.modify(socket, select.POLLIN)
        pgconn.consume_input()
        while pgconn.is_busy():
            poller.poll()
            pgconn.consume_input()
        results = []
        while (result := pgconn.get_result()) is not None:
            results.append(result)
        self.pending = False  # the connection is free again, whatever the answer
        failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
        if failed or not results:
            message = failed[0].error_message if failed else pgconn.error_message
            raise psycopg.OperationalError(
                "recording a sent message failed: " + message.decode("utf-8", "replace").strip()
            )

    def close(self) -> None:
        self.finish()
        self.connection.exec_driver_sql(f"DEALLOCATE {self.name}")


class _RecordAtOnce:
    """`SentLedger`'s record where it cannot be split (SQLite): written at once by `start`. A
    thread of its own gained nothing there: SQLite's write is work for this machine's processors,
    not a wait."""

    pending = False  # nothing is ever left to read

    def __init__(self, execute: Callable[[dict[str, Any]], None]):
        self.start = execute

    def finish(self) -> None:
        return None

    def close(self) -> None:
        return None


def _as_text(value: Any, encoding: str) -> bytes | None:
    """A value as PostgreSQL reads it in text format, in the connection's encoding."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(" ").encode()
    return str(value).encode(encoding)


def _commit_outcome() -> None:
    """Commit a message's outcome (its own unit of work). On PostgreSQL without waiting for the
    WAL flush, as `SentLedger` does."""
    with unit_of_work():
        if on_postgresql():
            db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _record(message_id: int, claim: str, **values: Any) -> bool:
    """Write an outcome only if this worker still holds the message (its lease may have run out)."""
    return bool(
        rows_changed(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == claim)
            .values(claimed_by=None, lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
    )


_SNAPSHOT_COLUMNS = (
    _outbox.c.id,
    _outbox.c.key,
    _outbox.c.kind,
    _outbox.c.bulk,
    _outbox.c.to_address,
    _outbox.c.to_name,
    _outbox.c.reply_to,
    _outbox.c.subject,
    _outbox.c.text_body,
    _outbox.c.html_body,
    _outbox.c.message_id,
    _outbox.c.link_nonce,
    _outbox.c.created_at,
    _outbox.c.attempts,
)


def _claimed(claim: str) -> list[Outgoing]:
    """The claim's messages, read once as plain rows (no ORM objects: a batch is read often),
    those that are not bulk first."""
    rows = db.session.execute(
        db.select(*_SNAPSHOT_COLUMNS)
        .where(_outbox.c.claimed_by == claim)
        .order_by(_outbox.c.bulk, _outbox.c.id)  # transactional first
    ).all()
    attached: dict[int, list[OutgoingAttachment]] = {}
    if rows:
        for attachment in db.session.scalars(
            db.select(OutboxAttachment)
            .where(one_of(OutboxAttachment.message_id, [row.id for row in rows]))
            .order_by(OutboxAttachment.message_id, OutboxAttachment.position)
        ):
            attached.setdefault(attachment.message_id, []).append(
                OutgoingAttachment(attachment.filename, attachment.content_type, attachment.content)
            )
    return [
        Outgoing(
            id=row.id,
            kind_respects_suppression=MailKind(row.kind).respects_suppression,
            to_address=row.to_address,
            to_name=row.to_name,
            reply_to=row.reply_to,
            subject=row.subject,
            text_body=row.text_body,
            html_body=row.html_body,
            message_id=row.message_id,
            link_nonce=row.link_nonce,
            created_at=row.created_at,
            attempts=row.attempts,
            attachments=tuple(attached.get(row.id, ())),
            key=row.key,
            kind=MailKind(row.kind),
            bulk=bool(row.bulk),
        )
        for row in rows
    ]


Prepared = tuple[Outgoing, bytes, str]  # a message, its bytes, the address to send them to


class _Once(Generic[T]):
    """Work to do once, when first asked; an error in it is kept, for the caller to raise."""

    def __init__(self, work: Callable[[], T]):
        self.work: Callable[[], T] | None = work
        self.result: T | None = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        work, self.work = self.work, None
        if work is not None:
            try:
                self.result = work()
            except BaseException as error:  # noqa: BLE001 - raised by whoever asked for the work
                self.error = error


class Courier:
    """Sends messages one at a time, in order, and records each one the server accepted as sent.

    Sending is mostly waiting for the server's replies, so the worker does its own work while the
    server reads, on the one thread: a message the server accepted is recorded before the next
    message can leave (or when the courier closes): on PostgreSQL its record is sent at once and
    its answer read while the server reads the next message's DATA command (`SentLedger.start`);
    elsewhere it is written at once. The next message is prepared while the server reads this
    one's content. At any moment at most one message has gone out without being recorded.
    """

    def __init__(self, backend: Backend, sender: str, ledger: SentLedger):
        self.backend, self.sender, self.ledger = backend, sender, ledger
        self.logger = current_app.logger
        self.accepted: Outgoing | None = None  # sent, not yet recorded
        self.recording: Outgoing | None = None  # sent, its record on its way (`SentLedger.start`)
        self.unrecorded: list[str] = []  # sent messages whose record failed, with why

    def __enter__(self) -> Courier:
        return self

    def __exit__(self, *exc: object) -> None:
        with suppress(LedgerLost):  # logged already; nothing is left to stop
            self._record_accepted()  # the last one, whatever stopped the worker

    def deliver(self, messages: Iterator[Prepared]) -> Iterator[tuple[Outgoing, Exception | None]]:
        """Send each message `messages` yields, drawing the next while the server reads the one
        before; then say what became of it: None if the server accepted it, or the error that
        stopped it. An error in `messages` itself is raised once the message on its way is
        done with.

        Once a message the server accepted cannot be recorded (the database is gone), no other
        leaves: the one on its way is stopped before its content is sent, and it and the rest
        stay claimed until their lease runs out, never sent twice."""
        upcoming = next(messages, None)
        while upcoming is not None:
            message, email, to = upcoming
            following = _Once(lambda: next(messages, None))
            try:
                self.backend.send(email, self.sender, to,
                                  before_leaving=self._record_accepted, meanwhile=following)  # fmt: skip
                error = None
            except LedgerLost:
                return
            except Exception as failure:  # noqa: BLE001 - the worker decides what it means
                error = failure
            try:
                self._record_accepted()  # done already, unless the backend failed before it could
            except LedgerLost:
                if error is not None:  # this one did not leave: it waits for its lease
                    return
            if error is None:
                self.accepted = message
                self._start_record()
            following()  # likewise
            yield message, error
            if following.error is not None:
                raise following.error
            upcoming = following.result

    def _start_record(self) -> None:
        """Begin the accepted message's record at once, and wait for it (`_record_accepted`)
        only before the next message can leave: meanwhile the server reads the next message's
        envelope."""
        message = self.accepted
        if message is None or self.recording is not None:
            return
        try:
            self.ledger.start(message, message.attempts + 1)
        except Exception:  # noqa: BLE001 - recorded the ordinary way, with its retries
            self.logger.warning("Recording message %s ahead failed", message.id, exc_info=True)
            return
        self.accepted, self.recording = None, message

    def _record_accepted(self) -> None:
        """Record what the server accepted; raises `LedgerLost` if a record failed for good."""
        lost = False
        recording, self.recording = self.recording, None
        if recording is not None:
            try:
                self.ledger.finish()
            except Exception:  # noqa: BLE001 - tried again the ordinary way, with its retries
                self.logger.warning("Recording message %s failed", recording.id, exc_info=True)
                lost = not self._record(recording)
        message, self.accepted = self.accepted, None
        if message is not None:
            lost = not self._record(message) or lost
        if lost:
            raise LedgerLost("a sent message could not be recorded: no more are sent")

    def _record(self, message: Outgoing) -> bool:
        unrecorded = _record_sent(self.ledger, message, self.logger)
        if unrecorded:
            self.unrecorded.append(f"{message.to_address}: {unrecorded}")
        return unrecorded is None


class LedgerLost(Exception):
    """A message the server accepted could not be recorded as sent (the database is gone): the
    courier sends no more, since each would be sent again when its lease runs out."""


@dataclass
class ReadyBatch:
    """A claimed batch read and checked, with its links minted and committed: ready to send."""

    claim: str
    claimed_at: float  # `time.monotonic()` when it was claimed: its lease runs from then
    batch: list[Outgoing]
    suppressed: dict[str, str]
    checks: SendTimeChecks
    minted: dict[int, Minted | Unsendable]
    checked_at: float = 0.0  # `time.monotonic()` when its checks were read

    def checked_again(self) -> ReadyBatch:
        """The suppression list and the send-time checks read again, now (for a batch readied
        ahead, when its turn comes). A message withheld now is not sent, whatever its links; one
        let through now that was not before mints its own links when it is prepared."""
        end_reads()
        self.suppressed, self.checks = _checks(self.batch)
        self.checked_at = time.monotonic()
        return self


def _checks(batch: list[Outgoing]) -> tuple[dict[str, str], SendTimeChecks]:
    """The batch's addresses on the suppression list (with why), and the send-time checks."""
    suppressed = services.suppression_reasons(
        [m.to_address for m in batch if m.kind_respects_suppression]
    )
    return suppressed, _send_time_checks(batch, suppressed)


def ready_batch(claim: str, claimed_at: float | None = None) -> ReadyBatch:
    """Render a claim's messages that wait to be rendered (`rendering.render_claimed`), read its
    messages, ask which may go (the suppression list, the send-time checks), and mint and commit
    the links of those that may. `claimed_at` (`time.monotonic()`) is when the claim was made, if
    not just now."""
    claimed_at = time.monotonic() if claimed_at is None else claimed_at
    rendering.render_claimed(claim)
    batch = _claimed(claim)
    end_reads()  # each outcome below is its own short unit of work
    suppressed, checks = _checks(batch)
    minted = _mint_ahead(
        [m for m in batch if _may_go(m, suppressed, checks)],
        parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost",
    )
    return ReadyBatch(claim, claimed_at, batch, suppressed, checks, minted, time.monotonic())


def deliver_claimed(
    claim: str | ReadyBatch,
    backend: Backend,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Deliver the messages of one claim (or of a batch readied already), in order. A message's
    links are committed before it is sent and its outcome as soon as it is known, so a worker
    killed at any moment sends again at most the one message that went out and was not yet
    recorded; and a message that cannot be sent for any reason is parked with that reason while
    the rest go on. Each message is prepared while the server reads the one before (`Courier`)."""
    config = current_app.config
    report = DeliveryReport()
    ready = ready_batch(claim) if isinstance(claim, str) else claim
    claim, batch, suppressed = ready.claim, ready.batch, ready.suppressed
    checks, minted = ready.checks, ready.minted
    lease = config["MAIL_LEASE_SECONDS"]
    claimed_at = ready.claimed_at

    def prepared() -> Iterator[Prepared]:
        # The lease runs from the claim: a batch readied ahead that waited for half of it
        # renews it before its first message, and skips any message another worker took when
        # it ran out.
        held, renew_at = {m.id for m in batch}, claimed_at + lease / 2
        for n, message in enumerate(batch):
            if should_stop():
                # Hand back what was not started, for this or another worker to take at once.
                with unit_of_work():
                    for rest in batch[n:]:
                        _record(rest.id, claim, status=MessageStatus.pending)
                return
            if time.monotonic() >= renew_at:
                # A batch that outlasts its lease would be claimed again by another worker and sent
                # twice: keep the lease while working (on the messages still on their way too),
                # and skip any message already taken.
                held = _renew_lease(claim, [m.id for m in batch[max(0, n - 2) :]])
                renew_at = time.monotonic() + lease / 2
            if message.id not in held:
                continue
            ready = _guarded(
                message,
                claim,
                report,
                partial(_ready, message, claim, config, report, suppressed, checks, minted),
            )
            if ready is not None:
                yield message, *ready

    sender = parseaddr(config["MAIL_FROM"])[1]
    tried: set[int] = set()
    with SentLedger(claim) as ledger, Courier(backend, sender, ledger) as courier:
        for message, error in courier.deliver(prepared()):
            if isinstance(error, ServerUnavailable):  # it waits with the rest: `_hand_back`
                report.server_unavailable = str(error)
                report.retrying += 1
                report.errors.append(f"{message.to_address}: {error}")
                break
            tried.add(message.id)
            _guarded(
                message,
                claim,
                report,
                partial(_record_outcome, message, error, claim, config, report),
            )
    report.errors.extend(courier.unrecorded)
    if report.server_unavailable:
        _hand_back([m for m in batch if m.id not in tried], claim, report)
    return report


# Where this process keeps the time the mail server is tried again, once it took nothing.
RESUME_SENDING_AT = "chamber.mail.resume_sending_at"


def _hand_back(messages: list[Outgoing], claim: str, report: DeliveryReport) -> None:
    """The mail server takes nothing now: the message it refused and those not yet tried go back
    as they were (no attempt spent: none of them is at fault, so an outage or a wrong password
    parks nothing however long it lasts), due again when sending resumes (`deliver_due`)."""
    resume = utcnow() + timedelta(seconds=current_app.config["MAIL_RETRY_BASE_SECONDS"])
    current_app.extensions[RESUME_SENDING_AT] = resume
    reason = f"The mail server is unavailable ({report.server_unavailable})"
    with unit_of_work():
        waiting = sum(
            _record(
                message.id,
                claim,
                status=MessageStatus.pending,
                next_attempt_at=resume,
                last_error=reason,
            )  # fmt: skip
            for message in messages
        )
    report.errors.append(
        f"{reason}: {waiting} message(s) wait, and sending rests until {resume:%H:%M:%S} UTC."
    )


def _guarded(
    message: Outgoing, claim: str, report: DeliveryReport, work: Callable[[], T]
) -> T | None:
    """Run one message's step; any error at all parks that message, never the worker."""
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - one bad message must never stop the rest
        db.session.rollback()
        current_app.logger.exception("Outbox message %s could not be sent", message.id)
        _park(message, claim, report, f"Not sent: {type(error).__name__}: {error}")
        return None


def _renew_lease(claim: str, ids: list[int]) -> set[int]:
    """Extend this worker's lease on `ids`; returns the ids it still holds."""
    lease = utcnow() + timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    with unit_of_work():
        held = set(
            db.session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == claim)
                .values(lease_until=lease)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
        )
    return held


def _park(message: Outgoing, claim: str, report: DeliveryReport, reason: str) -> None:
    """Park a message that must not be tried again as it is: failed, with its reason, for staff
    to read in the Outbox and send again or cancel."""
    with unit_of_work():
        _record(
            message.id,
            claim,
            status=MessageStatus.failed,
            attempts=message.attempts + 1,
            last_error=reason[:2000],
        )
    report.failed += 1
    report.errors.append(f"{message.to_address}: {reason}")


def _texts(message: Outgoing) -> list[str]:
    """The texts whose markers become links: the bodies, and the unsubscribe header's link (the
    body's link) for mail that respects suppression."""
    texts = [message.text_body, message.html_body]
    if message.kind_respects_suppression:
        texts.append(links.marker_for(message.link_nonce or "", "unsubscribe"))
    return texts


Minted = tuple[list[str], list[links.MintedCode]]


def _mint_ahead(messages: list[Outgoing], domain: str) -> dict[int, Minted | Unsendable]:
    """The links of every message of a batch, minted in one transaction and committed before any
    of them is sent: one commit a batch, not one a message, with the same guarantee (a link that
    goes out works). A message whose links are refused gets its `Unsendable`, and nothing it
    minted is kept: the batch is minted again without it (refusals are bugs, so rare). What
    the links name is loaded first, one query a kind (`links.prefetch`). If minting fails in
    any other way, nothing is kept and the batch's messages mint their own links one by one
    (`_prepare`), so the failure stays with its message. A worker stopped half-way through a
    batch leaves the unsent messages' tokens unused: hashes that no one holds the secret of."""
    refused: dict[int, Minted | Unsendable] = {}
    while True:
        minted: dict[int, Minted | Unsendable] = {}
        try:
            with unit_of_work(), links.storing_rows():
                going = [m for m in messages if m.id not in refused]
                loaded = links.prefetch([(_texts(m), m.link_nonce) for m in going])
                for message in going:
                    texts = _texts(message)
                    if links.has_links(texts, message.link_nonce):
                        minted[message.id] = _mint_or_refuse(message, texts, domain)
                    if isinstance(minted.get(message.id), Unsendable):
                        refused[message.id] = minted[message.id]
                        raise _MintAgain  # undo what it minted; the rest again without it
                del loaded  # held until every minter has run
        except _MintAgain:
            continue
        except Exception:  # noqa: BLE001 - each message then mints alone, and fails alone
            current_app.logger.exception("Minting a batch's links failed; minting one by one")
            return {}
        return minted | refused


class _MintAgain(Exception):
    """A message of the batch was refused a link: mint the batch again without it."""


def _mint_or_refuse(message: Outgoing, texts: list[str], domain: str) -> Minted | Unsendable:
    try:
        return links.mint_message(texts, message.to_address, message.link_nonce, domain=domain)
    except links.LinkRefused as error:
        return Unsendable(f"Not sent: {error}")


def _prepare(
    message: Outgoing, config: Config, minted: Minted | Unsendable | None = None
) -> tuple[bytes, str]:
    """The message's bytes and the address to send them to, with its secret links minted and
    committed before it leaves (`minted`, from `_mint_ahead`, or minted here): every link in
    every copy that goes out works, even if the worker dies straight after sending."""
    address = services.ascii_domain(message.to_address)
    if not address.isascii():
        raise Unsendable(
            "Not sent: the part of the address before the @ has characters outside ASCII, which "
            "this mail setup cannot deliver. Correct the address and send again, or cancel."
        )
    if isinstance(minted, Unsendable):
        raise minted
    texts = _texts(message)
    codes: list[links.MintedCode] = []
    if minted is not None:
        (text_body, html_body, *unsubscribe), codes = minted
    elif links.has_links(texts, message.link_nonce):
        domain = parseaddr(config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
        try:
            # The tokens are durable before the message that carries them leaves.
            with unit_of_work():
                (text_body, html_body, *unsubscribe), codes = links.mint_message(
                    texts, message.to_address, message.link_nonce, domain=domain
                )
        except links.LinkRefused as error:
            raise Unsendable(f"Not sent: {error}") from error
    else:
        text_body, html_body, unsubscribe = message.text_body, message.html_body, []
    # A code is drawn now, from the link just minted: never from text a person typed.
    images = [
        InlineImage(code.content_id, f"{code.content_id.partition('@')[0]}.png", "image/png",
                    qr_png(code.url))
        for code in codes
    ]  # fmt: skip
    try:
        email = build_email(
            message,
            to_address=address,
            sender=config["MAIL_FROM"],
            text_body=text_body,
            html_body=html_body,
            unsubscribe_url=unsubscribe[0] if unsubscribe else None,
            images=images,
        )
    except (ValueError, UnicodeError) as error:
        raise Unsendable(f"Not sent: the message could not be written: {error}") from error
    return email, address


@dataclass
class SendTimeChecks:
    """What the `before_sending` receivers said of a batch: the messages they withheld, with why,
    or, if one of them failed, the messages they were asked about and the error."""

    withheld: dict[int, str] = field(default_factory=dict)
    held: set[int] = field(default_factory=set)  # to hold back (`signals.HOLD`), not withhold
    unchecked: set[int] = field(default_factory=set)
    error: str = ""


def _send_time_checks(batch: list[Outgoing], suppressed: dict[str, str]) -> SendTimeChecks:
    """Ask the domains above (`signals.before_sending`, once a batch) which of the batch's
    marketing and survey messages must not go now."""
    asked = [
        signals.SendTimeMessage(m.id, m.key, MailKind(m.kind), m.bulk, m.to_address)
        for m in batch
        if m.kind_respects_suppression
        and services.normalise_address(m.to_address) not in suppressed
    ]
    checks = SendTimeChecks()
    if not asked or not signals.before_sending.receivers:
        return checks
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        replies = signals.before_sending.send(app, messages=asked)
        end_reads()  # receivers only read; each outcome is its own unit of work
    except Exception as error:  # noqa: BLE001 - the batch's other mail goes on
        db.session.rollback()
        current_app.logger.exception("The send-time check of a batch failed")
        checks.unchecked = {m.id for m in asked}
        checks.error = f"Not sent yet: the send-time check failed: {type(error).__name__}: {error}"
        return checks
    ids = {m.id for m in asked}
    for _receiver, reply in replies:
        for message_id, reason in (reply or {}).items():
            if message_id in ids and reason == signals.HOLD:
                checks.held.add(message_id)
            elif message_id in ids and message_id not in checks.withheld:
                checks.withheld[message_id] = (
                    services.single_line(str(reason))[:2000] or "Not sent: withheld at send time."
                )
    return checks


def _may_go(message: Outgoing, suppressed: dict[str, str], checks: SendTimeChecks) -> bool:
    """Whether the message is to be sent as far as suppression and the send-time checks say."""
    if message.id in checks.unchecked or message.id in checks.withheld or message.id in checks.held:
        return False
    return not (
        message.kind_respects_suppression
        and services.normalise_address(message.to_address) in suppressed
    )


def _ready(
    message: Outgoing,
    claim: str,
    config: Config,
    report: DeliveryReport,
    suppressed: dict[str, str],
    checks: SendTimeChecks,
    minted: dict[int, Minted | Unsendable],
) -> tuple[bytes, str] | None:
    """The message's bytes and envelope address, or None if it is not to be sent (suppressed,
    withheld at send time, its check failed, or parked as unsendable, with its outcome
    committed)."""
    reason = None
    if message.kind_respects_suppression:
        why = suppressed.get(services.normalise_address(message.to_address))
        if why == services.BOUNCE:
            reason = "Not sent: the address bounced (a mail server refused it for good)."
        elif why is not None:
            reason = "Not sent: the address unsubscribed."
        else:
            reason = checks.withheld.get(message.id)
    if reason is not None:
        _record(
            message.id,
            claim,
            status=MessageStatus.suppressed,
            attempts=message.attempts + 1,
            last_error=reason,
        )
        _commit_outcome()
        report.suppressed += 1
        return None
    if message.id in checks.unchecked:
        _record_outcome(message, TemporaryFailure(checks.error), claim, config, report)
        return None
    if message.id in checks.held and message.id not in checks.withheld:
        _record(message.id, claim, status=MessageStatus.pending, next_attempt_at=HELD_UNTIL)
        _commit_outcome()
        return None
    try:
        return _prepare(message, config, minted.get(message.id))
    except Unsendable as error:
        _park(message, claim, report, str(error))
        return None


def _record_outcome(
    message: Outgoing, error: Exception | None, claim: str, config: Config, report: DeliveryReport
) -> None:
    """Commit what became of a message the courier tried to send (one the server accepted is
    recorded by the courier)."""
    address, attempts = message.to_address, message.attempts + 1
    try:
        if error is not None:
            raise error
    except Bounce as error:
        # A hard bounce: no more marketing or survey mail to the address (transactional mail
        # still goes, as after an unsubscribe), in the same unit of work as the outcome.
        _record(
            message.id,
            claim,
            status=MessageStatus.failed,
            attempts=attempts,
            last_error=str(error),  # the server's answer, as for any permanent failure
        )
        services.suppress(address, reason=services.BOUNCE, detail=str(error)[:1000])
        report.failed += 1
        report.errors.append(f"{address}: {error}")
    except PermanentFailure as error:
        _record(
            message.id, claim, status=MessageStatus.failed, attempts=attempts, last_error=str(error)
        )
        report.failed += 1
        report.errors.append(f"{address}: {error}")
    except TemporaryFailure as error:
        if attempts >= config["MAIL_MAX_ATTEMPTS"]:
            _record(
                message.id,
                claim,
                status=MessageStatus.failed,
                attempts=attempts,
                last_error=f"Gave up after {attempts} attempts. Last error: {error}",
            )
            report.failed += 1
        else:
            delay = backoff(
                attempts,
                base=config["MAIL_RETRY_BASE_SECONDS"],
                cap=config["MAIL_RETRY_MAX_SECONDS"],
            )
            _record(
                message.id,
                claim,
                status=MessageStatus.pending,
                attempts=attempts,
                last_error=str(error),
                next_attempt_at=utcnow() + delay,
            )
            report.retrying += 1
        report.errors.append(f"{address}: {error}")
    else:
        report.sent += 1
        return
    _commit_outcome()


def _record_sent(
    ledger: SentLedger, message: Outgoing, logger: logging.Logger, tries: int = 3
) -> str | None:
    """Mark a message the server accepted as sent. It went out: whatever happens now, it is never
    parked as "not sent" (sending it again would duplicate it and spend its links). If the
    database will not take the outcome (SQLite busy for longer than its timeout, say), it is tried
    again, then logged loudly and left to its lease: at worst it is sent once more. Returns why
    it was not recorded, or None."""
    for attempt in range(1, tries + 1):
        try:
            ledger.record(message, message.attempts + 1)
            return None
        except Exception as error:  # noqa: BLE001 - the message went out; only its record failed
            if attempt == tries:
                logger.exception("Sent message %s could not be recorded", message.id)
                return (
                    f"sent, but recording it failed ({error}); it may be sent once more when its "
                    "lease runs out"
                )
            time.sleep(0.05 * attempt)
    return None


def deliver_due(
    worker_id: str = "worker",
    *,
    batch_size: int = BATCH_SIZE,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[DeliveryReport], None] | None = None,
    now: Callable[[], datetime] = utcnow,
    look_ahead: bool | None = None,
) -> DeliveryReport:
    """Deliver everything due now, batch by batch, over one backend connection per batch.

    With `look_ahead` (the default on PostgreSQL), while a full batch is sent the next one is
    claimed and readied on a thread of its own (`LookAhead`), so the SMTP server is not left
    waiting between batches. Mail that is not bulk, queued meanwhile, still goes first: it is
    claimed before the batch readied ahead is sent. SQLite has one writer at a time, so there is
    nothing to overlap there. `now` is the clock used to decide what is due (tests move it
    forward instead of waiting).
    """
    if look_ahead is None:
        look_ahead = on_postgresql()
    total = DeliveryReport()
    resume_at = current_app.extensions.get(RESUME_SENDING_AT)
    if resume_at is not None and now() < resume_at:  # the server took nothing a moment ago
        return total
    backend = backend_for(current_app.config, current_app.instance_path)
    ahead: LookAhead | None = None
    try:
        while not should_stop():
            if ahead is not None:
                first = claim_batch(worker_id, batch_size, now(), bulk=False)  # queued meanwhile
                ready: str | ReadyBatch | None = first or ahead.take()
                if first is None:
                    ahead = None
            else:
                ready = claim_batch(worker_id, batch_size, now())
            if ready is None:
                break
            if isinstance(ready, str):
                ready = ready_batch(ready)
            if look_ahead and ahead is None and len(ready.batch) >= batch_size:
                ahead = LookAhead(worker_id, batch_size, now)
            with backend:
                report = deliver_claimed(ready, backend, should_stop=should_stop)
            total.add(report)
            if on_batch:
                on_batch(total)
            if report.server_unavailable:  # the rest of what is due waits with the batch
                break
    finally:
        if ahead is not None:
            ahead.hand_back()  # stopped (or failed) with a batch readied ahead: for anyone to take
    return total


# A batch readied ahead whose checks are older than this (seconds) when its turn comes has them
# read again. Sent to a local relay, the batch before takes a third of a second, and reading
# them again every time cost a campaign a tenth of its rate.
CHECK_AGAIN_AFTER = 1.0


class LookAhead:
    """Claims and readies the next batch on a thread of its own, with its own session, while the
    worker sends the batch in hand (on PostgreSQL, where the two can write at once). Sending is
    mostly waiting for the SMTP server, and readying a batch is mostly the worker's and the
    database's work, about a third of a campaign's time when done in turn. If the thread fails,
    the worker readies the batch itself (or claims one, if the claim itself failed)."""

    def __init__(self, worker_id: str, batch_size: int, now: Callable[[], datetime]):
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.worker_id, self.batch_size, self.now = worker_id, batch_size, now
        self.claim: str | None = None
        self.claimed_at = time.monotonic()
        self.ready: ReadyBatch | None = None
        self.failed = False
        self.thread = threading.Thread(target=self._run, name="chamber-mail-ahead", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.app.app_context():
            try:
                self.claimed_at = time.monotonic()  # just before: the lease runs from no later
                self.claim = claim_batch(self.worker_id, self.batch_size, self.now())
                if self.claim is not None:
                    self.ready = ready_batch(self.claim, self.claimed_at)
            except Exception:  # noqa: BLE001 - the worker does it again itself
                db.session.rollback()
                self.failed = True
                current_app.logger.exception("Readying the next batch of mail failed")
            finally:
                db.session.remove()

    def take(self) -> str | ReadyBatch | None:
        """The batch readied ahead, its suppression list and send-time checks read again now if
        they are older than `CHECK_AGAIN_AFTER`;
        readied here if that failed on the thread; a new claim if the thread's claim failed;
        None if nothing was due."""
        self.thread.join()
        if self.ready is not None:
            if time.monotonic() - self.ready.checked_at > CHECK_AGAIN_AFTER:
                return self.ready.checked_again()
            return self.ready
        if self.claim is not None:
            return ready_batch(self.claim, self.claimed_at)
        if self.failed:
            return claim_batch(self.worker_id, self.batch_size, self.now())
        return None

    def hand_back(self) -> None:
        """Release the batch claimed ahead, unsent, for this or another worker to take at once
        (in a session of its own: the worker's may be in the middle of a failure). If even that
        fails, the batch waits for its lease to run out, as a dead worker's does."""
        self.thread.join()
        if self.claim is None:
            return
        try:
            with Session(db.engine) as session, session.begin():
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.claimed_by == self.claim)
                    .values(status=MessageStatus.pending, claimed_by=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # noqa: BLE001 - whatever stopped the worker is the error to see
            current_app.logger.exception("A batch of mail claimed ahead could not be handed back")


def due_count(now: datetime | None = None) -> int:
    return int(
        db.session.scalar(
            db.select(db.func.count(OutboxMessage.id)).where(due_filter(now or utcnow()))
        )
        or 0
    )
