"""Reads for the Outbox page: the messages, filtered by status and address."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.mail.services import normalise_address

# Past any character an address holds: `prefix <= address < prefix + BEYOND` is every address
# that starts with `prefix`, in code-point order (how `to_normalised` compares).
BEYOND = "\U0010ffff"


def outbox(status: MessageStatus | None, search: str) -> Select[Any]:
    """Messages (unordered: `core.pagination.keyset_page` orders them by id), of one status if
    given, and whose address starts with `search` (any case, taken literally) if given: a range
    of `ix_outbox_message_to_normalised_id`, never a read of every message."""
    query = db.select(OutboxMessage)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    prefix = normalise_address(search)
    if prefix:
        query = query.where(
            OutboxMessage.to_normalised >= prefix, OutboxMessage.to_normalised < prefix + BEYOND
        )
    return query
