"""Queueing email in the caller's transaction, the suppression list, and staff actions on the outbox.

Nothing here commits: a message exists exactly when the transaction that owes it commits.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid, parseaddr
from typing import Any, cast
from urllib.parse import urlsplit

from flask import current_app, render_template
from sqlalchemy import ColumnElement, CursorResult, Select, Update, update

from chamber.auth import audit
from chamber.auth.models import StaffUser
from chamber.core.addresses import address_hash
from chamber.core.addresses import normalise_address as normalise_address  # re-exported
from chamber.core.dialects import insert_or_skip, one_of
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.urls import external_url
from chamber.extensions import db
from chamber.mail import links
from chamber.mail.models import (
    HELD_UNTIL,
    MailKind,
    MessageStatus,
    OutboxAttachment,
    OutboxMessage,
    Suppression,
    UnsubscribeToken,
)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # with parameters, e.g. "text/calendar; charset=utf-8; method=REQUEST"
    content: bytes


def single_line(text: str) -> str:
    """Header text: every run of white space, line breaks of any kind and other control characters
    as one space."""
    spaced = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return " ".join(spaced.split())


def ascii_domain(address: str) -> str:
    """The address with an internationalised domain in its ASCII (IDNA) form, which every mail
    server accepts; the part before the @ is left as it is."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address  # not a domain IDNA can write: the worker parks it with its reason


def mail_domain() -> str:
    """Our domain for Message-IDs: the sender's, else the site's."""
    sender = parseaddr(current_app.config["MAIL_FROM"])[1]
    return (
        sender.rpartition("@")[2]
        or urlsplit(current_app.config["BASE_URL"]).hostname
        or "localhost"
    )


@dataclass(frozen=True)
class Composed:
    """A message rendered and ready to queue: its outbox row and its attachments."""

    row: dict[str, Any]
    attachments: tuple[Attachment, ...]


# Set inside `composed_only()`: where `enqueue` keeps what it renders instead of queueing it.
_held_back: ContextVar[list[Composed] | None] = ContextVar("chamber_mail_held_back", default=None)


@contextmanager
def composed_only() -> Iterator[list[Composed]]:
    """Inside the block, `enqueue` renders each message and keeps it in the list it yields instead
    of queueing it; `queue_composed` queues them later in the same transaction. For work that must
    render its mail before taking a lock and queue it once the lock is held (a booking renders its
    emails before the seat decision, so the seat lock is held for the decision, not the rendering)."""
    held: list[Composed] = []
    token = _held_back.set(held)
    try:
        yield held
    finally:
        _held_back.reset(token)


def enqueue(
    *,
    key: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any] | None = None,
    kind: MailKind = MailKind.transactional,
    to_name: str = "",
    reply_to: str | None = None,
    attachments: tuple[Attachment, ...] | list[Attachment] = (),
    send_after: datetime | None = None,
    bulk: bool = False,
) -> bool:
    """Queue one email inside the caller's transaction. Returns False if `key` was already queued
    (inside `composed_only()`, keeps it rendered and returns True: it is queued later).

    The text and HTML bodies come from `chamber/templates/emails/<template>.txt` and `.html`. Marketing and
    survey mail gets an unsubscribe link, minted when the message is sent. `bulk` marks mail sent
    to many at once (a campaign): the worker sends it after every due message that is not bulk,
    within CHAMBER_BULK_PER_MINUTE (docs/mail.md, "The bulk stream").
    """
    nonce = links.new_nonce()
    text_body, html_body = render_bodies(template, context or {}, kind, to_name, nonce)
    row = _row(key, kind, bulk, to, to_name, reply_to, subject, nonce, send_after)
    row.update(text_body=text_body, html_body=html_body)
    return _keep_or_queue(Composed(row, tuple(attachments)))


def render_bodies(
    template: str, context: dict[str, Any], kind: MailKind, to_name: str, nonce: str
) -> tuple[str, str]:
    """A message's text and HTML bodies, from `chamber/templates/emails/<template>.txt` and
    `.html`, with its links written as markers carrying `nonce` (`mail.links`). Marketing and
    survey mail must show an unsubscribe link."""
    values = {"kind": kind, "to_name": to_name, **context}
    with links.rendering_message(nonce):
        text_body = render_template(f"emails/{template}.txt", **values)
        html_body = render_template(f"emails/{template}.html", **values)
    if kind.respects_suppression and "unsubscribe" not in links.kinds_in(
        text_body + html_body, nonce
    ):
        raise ValueError(f"{template}: {kind} mail must show an unsubscribe link")
    return text_body, html_body


def _row(
    key: str,
    kind: MailKind,
    bulk: bool,
    to: str,
    to_name: str,
    reply_to: str | None,
    subject: str,
    nonce: str,
    send_after: datetime | None,
) -> dict[str, Any]:
    """An outbox row's values, without its bodies."""
    now = utcnow()
    return {
        "key": key[:200],
        "kind": kind,
        "bulk": bool(bulk),
        "status": MessageStatus.pending,
        "to_address": to.strip(),
        "to_normalised": normalise_address(to),
        "to_name": single_line(to_name)[:200],
        "reply_to": reply_to or current_app.config.get("MAIL_REPLY_TO") or None,
        "subject": single_line(subject)[:300],
        "text_body": "",
        "html_body": "",
        "render_with": None,
        "render_params": None,
        "message_id": make_msgid(domain=mail_domain()),
        "link_nonce": nonce,
        "created_at": now,
        "next_attempt_at": send_after or now,
        "attempts": 0,
    }


def enqueue_later(
    *,
    key: str,
    to: str,
    subject: str,
    render_with: str,
    params: dict[str, Any],
    to_name: str = "",
    reply_to: str | None = None,
    send_after: datetime | None = None,
) -> bool:
    """Queue one transactional email inside the caller's transaction, to be rendered by the
    worker that sends it: `render_with` names a renderer registered with
    `rendering.register_renderer`, and `params` (a JSON object of ids and plain values) says what
    the message is about. Its subject, recipient, Message-ID and link nonce are fixed now, like
    any message's. As `enqueue`, returns False if `key` was already queued (inside
    `composed_only()`, keeps it and returns True)."""
    row = _row(
        key, MailKind.transactional, False, to, to_name, reply_to, subject, links.new_nonce(),
        send_after,
    )  # fmt: skip
    row.update(render_with=render_with, render_params=json.dumps(params, separators=(",", ":")))
    return _keep_or_queue(Composed(row, ()))


def _keep_or_queue(message: Composed) -> bool:
    """Queue the message, or keep it inside `composed_only()` (True: it is queued later)."""
    held = _held_back.get()
    if held is not None:
        held.append(message)
        return True
    return _queue(message)


def placeholder(name: str) -> str:
    """A stand-in for a value known only after a message is rendered (a place in a queue that a
    lock decides), for `filling_in` to replace: the name and 128 random bits, made now, so no text
    a person typed before can hold it, and only letters, digits and hyphens, which HTML escaping
    leaves as they are."""
    return f"{name}-{links.new_nonce()}"


# Messages written by one INSERT in `queue_composed`: 500 rows of about 17 values stay well under
# SQLite's and PostgreSQL's limits on bound parameters.
INSERT_CHUNK = 500


def queue_composed(messages: list[Composed]) -> int:
    """Queue messages rendered inside `composed_only()`; returns how many were new (a key already
    queued is left as it is, with its attachments)."""
    return len(queued(messages))


def queued(messages: list[Composed]) -> dict[str, int]:
    """`queue_composed`, returning the outbox id of each message that was new, by its key. One
    multi-row INSERT per `INSERT_CHUNK` messages (a campaign's chunk of recipients, or a booking's
    emails), and one more for the attachments of those that were new."""
    new: dict[str, int] = {}
    for start in range(0, len(messages), INSERT_CHUNK):
        new.update(_queue_chunk(messages[start : start + INSERT_CHUNK]))
    return new


def filling_in(message_ids: list[int], values: dict[str, str]) -> Update:
    """The UPDATE that fills in messages already queued: each placeholder (`placeholder`) in
    their bodies, or in what a message to be rendered later is about (`render_params`), replaced
    by its value, by the database's `replace`, for a caller that sends it with the other writes it
    makes under a lock (`core.pagecache.last_writes`). Placeholders and values are bound
    parameters; a value is digits, letters or hyphens, which JSON and HTML leave as they are."""
    table = OutboxMessage.__table__
    filled: dict[str, ColumnElement[Any]] = {
        name: table.c[name] for name in ("text_body", "html_body", "render_params")
    }
    for mark, value in values.items():
        filled = {name: db.func.replace(column, mark, value) for name, column in filled.items()}
    return update(table).where(one_of(table.c.id, message_ids)).values(**filled)


def withdraw(message_ids: list[int]) -> None:
    """Take messages queued in this transaction back out (with their attachments): a caller that
    queued them before a decision and must now send others instead."""
    if message_ids:
        db.session.execute(
            db.delete(OutboxAttachment.__table__).where(
                one_of(OutboxAttachment.__table__.c.message_id, message_ids)
            )
        )
        db.session.execute(
            db.delete(OutboxMessage.__table__).where(
                one_of(OutboxMessage.__table__.c.id, message_ids)
            )
        )


def _queue(message: Composed) -> bool:
    return len(_queue_chunk([message])) == 1


def _queue_chunk(messages: list[Composed]) -> dict[str, int]:
    by_key = {message.row["key"]: message for message in reversed(messages)}  # the first of a key
    messages = [message for message in messages if by_key[message.row["key"]] is message]
    # The rows go as parameters of one constant statement (sent as one multi-row INSERT), not
    # built into a statement of their own each time: SQLAlchemy then coerces no values.
    table = OutboxMessage.__table__
    statement = (
        insert_or_skip(table)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.id, table.c.key)
    )
    rows = [message.row for message in messages]
    new = {key: message_id for message_id, key in db.session.execute(statement, rows).all()}
    attachments = [
        {
            "message_id": new[message.row["key"]],
            "position": n,
            "filename": a.filename,
            "content_type": a.content_type,
            "content": a.content,
        }
        for message in messages
        if message.row["key"] in new
        for n, a in enumerate(message.attachments)
    ]
    if attachments:
        db.session.execute(db.insert(OutboxAttachment.__table__), attachments)
    return new


# --- suppression ---------------------------------------------------------------------------------


# The list is looked up by the address's hash (`core.addresses.address_hash`), never by the
# address itself: an erased person's row keeps only the hash (docs/privacy.md, "Erasure").


def is_suppressed(address: str) -> bool:
    return (
        db.session.scalar(
            db.select(Suppression.id).where(Suppression.email_hash == address_hash(address))
        )
        is not None
    )


def suppressed_among(addresses: list[str]) -> set[str]:
    """Which of these addresses are suppressed, in one query (normalised forms)."""
    return set(suppression_reasons(addresses))


def suppression_reasons(addresses: list[str]) -> dict[str, str]:
    """The suppressed addresses among these (normalised), each with its reason, in one query."""
    wanted = {address_hash(a): normalise_address(a) for a in addresses}
    if not wanted:
        return {}
    rows = db.session.execute(
        db.select(Suppression.email_hash, Suppression.reason).where(
            one_of(Suppression.email_hash, wanted)
        )
    )
    return {wanted[digest]: reason for digest, reason in rows}


UNSUBSCRIBE = "unsubscribe"  # the person asked for no more marketing and survey mail
BOUNCE = "bounce"  # a mail server refused the address for good (a hard bounce)


def suppress(address: str, reason: str = UNSUBSCRIBE, detail: str | None = None) -> None:
    """Add an address to the suppression list; doing it again changes nothing. The person's own
    unsubscribe replaces a bounce recorded before (so that lifting the bounce can never lift
    their choice); a bounce leaves an unsubscribe as it is."""
    email = normalise_address(address)
    insert = insert_or_skip(Suppression).values(
        email=email,
        email_hash=address_hash(email),
        reason=reason,
        detail=detail,
        created_at=utcnow(),
    )
    if reason == UNSUBSCRIBE:
        statement = insert.on_conflict_do_update(
            index_elements=["email_hash"],
            set_={"reason": UNSUBSCRIBE, "detail": None, "created_at": insert.excluded.created_at},
            where=Suppression.reason == BOUNCE,
        )
    else:
        statement = insert.on_conflict_do_nothing(index_elements=["email_hash"])
    db.session.execute(statement)


ERASED = "erased"  # the person was erased: the list keeps only the hash of the address


def keep_only_hash(address: str) -> None:
    """An erased person's address: suppressed with the reason "erased", and the row keeps only
    the address's hash, not the address nor a server's answer (which may quote it). Every check
    still finds it by the hash (docs/privacy.md, "Erasure"); only the person, confirming a new
    subscription through a link sent to that address, lifts it (`lift_unsubscribe`)."""
    digest = address_hash(address)
    insert = insert_or_skip(Suppression).values(
        email=None, email_hash=digest, reason=ERASED, detail=None, created_at=utcnow()
    )
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["email_hash"], set_={"email": None, "detail": None, "reason": ERASED}
        )
    )


def lift_bounce(address: str) -> bool:
    """Staff lift a hard bounce (the person fixed their mailbox): the address may be sent
    marketing again, on its lawful basis. Returns whether there was a bounce to lift; any other
    suppression (the person's own unsubscribe) stays."""
    result = db.session.execute(
        db.delete(Suppression).where(
            Suppression.email_hash == address_hash(address), Suppression.reason == BOUNCE
        )
    )
    return bool(cast("CursorResult[Any]", result).rowcount)


def lift_unsubscribe(address: str) -> None:
    """The person asked for marketing again, through a link sent to their own address: their own
    unsubscribe (or erasure) ends. A suppression for any other reason (a hard bounce) stays."""
    db.session.execute(
        db.delete(Suppression).where(
            Suppression.email_hash == address_hash(address),
            Suppression.reason.in_((UNSUBSCRIBE, ERASED)),
        )
    )


def unsubscribe_address(token: str) -> str | None:
    """The address an unsubscribe token was minted for, or None for a wrong or tampered token."""
    if not token or len(token) > 100:
        return None
    address: str | None = db.session.scalar(
        db.select(UnsubscribeToken.email).where(UnsubscribeToken.token_hash == hash_token(token))
    )
    return address


def _mint_unsubscribe_link(recipient: str, _ref: str) -> str:
    token = new_token()
    links.store_row(
        UnsubscribeToken, token_hash=hash_token(token), email=normalise_address(recipient)
    )
    return external_url("mail.unsubscribe_page", token=token)


# --- staff actions -------------------------------------------------------------------------------


class OutboxRefused(Refusal):
    """A message that cannot be sent again or cancelled in the state it is in."""


def retry(message: OutboxMessage, *, by: StaffUser) -> None:
    """Send a failed or cancelled message again, from a fresh count of attempts (recorded in the
    audit trail, with who)."""
    if not message.can_retry:
        raise OutboxRefused("Only a failed or cancelled message can be sent again.")
    message.status = MessageStatus.pending
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.claimed_by = None
    message.lease_until = None
    db.session.flush()
    audit.record("email_retried", kind="outbox_message", object_id=message.id, by=by)


def cancel(message: OutboxMessage, *, by: StaffUser) -> None:
    """Cancel a message that is waiting, failed, or stuck with a worker that died (recorded in
    the audit trail, with who). One conditional UPDATE: a worker that claims the message at the
    same moment either wins (and it is sent) or finds it cancelled."""
    now = utcnow()
    result = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message.id,
                OutboxMessage.status.in_([MessageStatus.pending, MessageStatus.failed])
                | (
                    (OutboxMessage.status == MessageStatus.sending)
                    & (OutboxMessage.lease_until < now)
                ),
            )
            .values(status=MessageStatus.cancelled, claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(message)
    if not result.rowcount:
        raise OutboxRefused(
            "Only a message still waiting to be sent, or one that failed, can be cancelled."
        )
    audit.record("email_cancelled", kind="outbox_message", object_id=message.id, by=by)


# --- many messages at once (a campaign paused, resumed or cancelled) -----------------------------
#
# Each is one conditional UPDATE over the messages `ids` selects (a select of outbox_message ids),
# like `cancel`: a worker claiming one of them at the same moment either wins (the message is sent,
# and left alone here) or finds it changed. Each returns how many messages it changed.


def _changed(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def _waiting_or_stuck(now: datetime) -> ColumnElement[bool]:
    """Messages no worker holds: waiting, or claimed by a worker whose lease ran out."""
    return (OutboxMessage.status == MessageStatus.pending) | (
        (OutboxMessage.status == MessageStatus.sending) & (OutboxMessage.lease_until < now)
    )


def hold_messages(ids: Select[Any]) -> int:
    """Hold back the waiting messages among `ids`: they stay pending, due at `HELD_UNTIL` (never),
    so no worker claims them until `release_messages`. A message a worker holds now is sent."""
    now = utcnow()
    return _changed(
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), _waiting_or_stuck(now))
            .values(
                status=MessageStatus.pending,
                next_attempt_at=HELD_UNTIL,
                claimed_by=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
    )


def release_messages(ids: Select[Any]) -> int:
    """Make the held messages among `ids` due now again; the others are left as they are."""
    return _changed(
        db.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.status == MessageStatus.pending,
                OutboxMessage.next_attempt_at >= HELD_UNTIL,
            )
            .values(next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )


def cancel_messages(ids: Select[Any]) -> int:
    """Cancel the messages among `ids` that are waiting (held or not) or stuck with a worker that
    died; those sent, failed, suppressed or on their way now are left as they are."""
    now = utcnow()
    return _changed(
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), _waiting_or_stuck(now))
            .values(status=MessageStatus.cancelled, claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
    )


# A count past this is shown as "1,000 or more": counting further reads that many more index
# entries (and, for rows not yet vacuumed, table rows), on every page, for a figure nobody acts on
# (benchmarks/README.md, "Cost with a large data set").
COUNT_CAP = 1_000


@dataclass(frozen=True)
class CappedCount:
    """How many there are, or, when `capped`, that there are more than `number`."""

    number: int
    capped: bool = False

    def __add__(self, other: CappedCount) -> CappedCount:
        return CappedCount(self.number + other.number, self.capped or other.capped)


def status_counts(cap: int | None = None) -> dict[MessageStatus, CappedCount]:
    """How many messages there are of each status, each counted up to `cap` (`COUNT_CAP`): one
    statement that reads at most `cap` + 1 entries of `ix_outbox_message_status_id` a status."""
    cap = COUNT_CAP if cap is None else cap
    counted = [
        db.select(db.func.count())
        .select_from(
            db.select(OutboxMessage.id)
            .where(OutboxMessage.status == status)
            .limit(cap + 1)
            .subquery()
        )
        .scalar_subquery()
        for status in MessageStatus
    ]
    numbers = db.session.execute(db.select(*counted)).one()
    return {
        status: CappedCount(min(number, cap), number > cap)
        for status, number in zip(MessageStatus, numbers, strict=True)
    }
