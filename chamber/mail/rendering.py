"""Messages rendered when they are sent: the renderers domains register, and the worker's step
that renders a claimed batch before it is read to be sent.

A domain whose emails are written on a busy path (a booking's, while its visitor waits) queues
them with `services.enqueue_later`: the row holds the recipient, subject, Message-ID and link
nonce, fixed then like any message's, with the name of a renderer and what the message is about
(`render_params`: ids and plain values, never a body). The worker that claims it asks the
renderer what to render, renders the templates with the message's own nonce (so its links are
minted as any message's are, and typed text still cannot carry one), and writes the bodies and
attachments into the row, in one unit of work a batch, before the batch is read to be sent. From
then on it is a message like any other: a retry sends the same bytes, the Outbox shows them.

A message is rendered from what its rows say when it is sent: a person erased meanwhile appears
as erasure left them; a message about something deleted is cancelled, with the reason, and so is
one whose news is out of date by then (the renderer says `NotSent`, with why). The Outbox page
renders a message not yet rendered for the page alone (`bodies`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from markupsafe import escape
from sqlalchemy import bindparam, insert, select, update

from chamber.core.dialects import one_of
from chamber.core.transactions import end_reads, unit_of_work
from chamber.extensions import db
from chamber.mail.models import (
    WITHDRAWN,
    MailKind,
    MessageStatus,
    OutboxAttachment,
    OutboxMessage,
)
from chamber.mail.services import Attachment, render_bodies


@dataclass(frozen=True)
class ToRender:
    """What a renderer says a message is: its template (under `chamber/templates/emails/`), the
    template's context, and its attachments."""

    template: str
    context: dict[str, Any]
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class NotSent:
    """What a renderer says of a message that would tell something no longer true when it is due
    to go (a place cancelled before its confirmation went): it is cancelled, not sent, and
    `reason` (Chamber's own words, for staff in the Outbox, beginning "Withdrawn: ") says why."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.startswith(WITHDRAWN):
            raise ValueError(f"a reason not to send begins {WITHDRAWN!r}")


# A renderer is given the params of many messages (a claimed batch's, in order), so that it can
# load what they are about a query a kind, and returns for each what to render, `NotSent` when its
# news is out of date, or None when what it was about is gone: those are cancelled, not sent.
Renderer = Callable[[Sequence[dict[str, Any]]], Sequence[ToRender | NotSent | None]]
_renderers: dict[str, Renderer] = {}

ATTACHMENT_NAME_LIMIT = 200  # `OutboxAttachment.filename` and `.content_type`
GONE = WITHDRAWN + "what this message was about no longer exists (deleted since it was queued)."


def register_renderer(name: str, renderer: Renderer) -> None:
    """Register a renderer by the name `services.enqueue_later` is given (in a domain's
    `init_app`, as link minters are)."""
    _renderers[name] = renderer


@dataclass(frozen=True)
class _Waiting:
    id: int
    render_with: str
    params: str
    link_nonce: str
    to_name: str


@dataclass(frozen=True)
class _Rendered:
    text_body: str
    html_body: str
    attachments: tuple[Attachment, ...]


def _render(waiting: list[_Waiting]) -> list[_Rendered | NotSent]:
    """Render messages that share a renderer; raises if any of them cannot be rendered."""
    renderer = _renderers.get(waiting[0].render_with)
    if renderer is None:
        raise LookupError(f"no renderer is registered as {waiting[0].render_with!r}")
    params = [json.loads(message.params) for message in waiting]
    if not all(isinstance(p, dict) for p in params):
        raise ValueError("what the message is about is not a JSON object")
    rendered: list[_Rendered | NotSent] = []
    for message, what in zip(waiting, renderer(params), strict=True):
        if what is None or isinstance(what, NotSent):
            rendered.append(what or NotSent(GONE))
            continue
        text_body, html_body = render_bodies(
            what.template, what.context, MailKind.transactional, message.to_name, message.link_nonce
        )
        for attachment in what.attachments:  # what the batch's one write would refuse, refused here
            if not (
                isinstance(attachment.content, bytes)
                and 0 < len(attachment.filename) <= ATTACHMENT_NAME_LIMIT
                and 0 < len(attachment.content_type) <= ATTACHMENT_NAME_LIMIT
            ):
                raise ValueError(
                    f"an attachment that cannot be stored: {attachment.filename!r:.80}"
                )
        rendered.append(_Rendered(text_body, html_body, what.attachments))
    return rendered


Outcome = _Rendered | NotSent | Exception  # rendered, not to send, or the error that stopped it


def _outcomes(waiting: list[_Waiting]) -> dict[int, Outcome]:
    """Each message's outcome, rendered a renderer at a time; if a renderer's batch fails, its
    messages are rendered one by one, so that an error stays with its message."""
    by_renderer: dict[str, list[_Waiting]] = {}
    for message in waiting:
        by_renderer.setdefault(message.render_with, []).append(message)
    outcomes: dict[int, Outcome] = {}
    for group in by_renderer.values():
        try:
            outcomes.update(zip([m.id for m in group], _render(group), strict=True))
            continue
        except Exception:  # noqa: BLE001 - each message then renders alone, and fails alone
            db.session.rollback()
        for message in group:
            try:
                outcomes[message.id] = _render([message])[0]
            except Exception as error:  # noqa: BLE001 - parked with its reason, never the worker
                db.session.rollback()
                current_app.logger.exception("Outbox message %s could not be rendered", message.id)
                outcomes[message.id] = error
    return outcomes


def render_claimed(claim: str) -> int:
    """Render the messages of a claim that wait to be rendered, and write their bodies and
    attachments (one unit of work). A message that cannot be rendered is parked as failed with
    its reason, for staff to read in the Outbox; one about something gone, or whose news is out of
    date (`NotSent`), is cancelled with its reason. Only
    messages this worker still holds are written. Returns how many were rendered.

    Its own transactions: it must not be called with writes of the caller's in hand (a failed
    render rolls back), and `end_reads` says so if it is."""
    end_reads()
    outbox = OutboxMessage.__table__
    waiting = [
        _Waiting(row.id, row.render_with, row.render_params or "{}", row.link_nonce or "",
                 row.to_name)
        for row in db.session.execute(
            select(outbox.c.id, outbox.c.render_with, outbox.c.render_params,
                   outbox.c.link_nonce, outbox.c.to_name)
            .where(outbox.c.claimed_by == claim, outbox.c.render_with.is_not(None))
            .order_by(outbox.c.id)
        )
    ]  # fmt: skip
    if not waiting:
        return 0
    outcomes = _outcomes(waiting)
    end_reads()
    ours = (outbox.c.claimed_by == claim) & outbox.c.render_with.is_not(None)
    done = {"render_with": None, "render_params": None}
    rendered = {i: o for i, o in outcomes.items() if isinstance(o, _Rendered)}
    written: set[int] = set()
    with unit_of_work():
        if rendered:
            # One statement for the batch (an executemany), then its attachments in one more: a
            # batch costs the same few statements however many messages it holds.
            db.session.execute(
                update(outbox)
                .where(outbox.c.id == bindparam("message"), ours)
                .values(text_body=bindparam("text"), html_body=bindparam("html"), **done),
                [{"message": i, "text": r.text_body, "html": r.html_body}
                 for i, r in rendered.items()],
            )  # fmt: skip
            # Those written: no other worker writes a message this claim holds.
            written = set(
                db.session.scalars(
                    select(outbox.c.id).where(
                        one_of(outbox.c.id, list(rendered)), outbox.c.claimed_by == claim
                    )
                )
            )
            attachments = [
                {"message_id": i, "position": n, "filename": a.filename,
                 "content_type": a.content_type, "content": a.content}
                for i in sorted(written)
                for n, a in enumerate(rendered[i].attachments)
            ]  # fmt: skip
            if attachments:
                db.session.execute(insert(OutboxAttachment.__table__), attachments)
        for message_id, outcome in outcomes.items():
            where = update(outbox).where(outbox.c.id == message_id, ours)
            if isinstance(outcome, NotSent):
                # What it is about stays, so that sending it again (staff may) renders it again
                # and finds it gone, or out of date, again, rather than sending it empty.
                db.session.execute(
                    where.values(status=MessageStatus.cancelled, last_error=outcome.reason,
                                 claimed_by=None, lease_until=None)
                )  # fmt: skip
            elif isinstance(outcome, Exception):
                reason = f"Not rendered: {type(outcome).__name__}: {outcome}"
                db.session.execute(
                    where.values(status=MessageStatus.failed, last_error=reason[:2000],
                                 attempts=outbox.c.attempts + 1, claimed_by=None, lease_until=None)
                )  # fmt: skip
    return len(written)


def bodies(message: OutboxMessage) -> tuple[str, str]:
    """A message's text and HTML bodies: as stored, or, for one not yet rendered, rendered now
    for the page that shows it (not stored: the worker renders it when it sends it)."""
    if message.render_with is None:
        return message.text_body, message.html_body
    waiting = _Waiting(
        message.id, message.render_with, message.render_params or "{}", message.link_nonce or "",
        message.to_name,
    )  # fmt: skip
    try:
        with db.session.begin_nested():  # a failed read leaves the page's transaction usable
            rendered = _render([waiting])[0]
    except Exception as error:  # noqa: BLE001 - the page says so; the worker parks it when sent
        current_app.logger.exception("Outbox message %s could not be rendered", message.id)
        note = f"This message cannot be rendered: {type(error).__name__}: {error}"
        return note, escape(note)
    if isinstance(rendered, NotSent):
        return rendered.reason, str(escape(rendered.reason))
    return rendered.text_body, rendered.html_body
