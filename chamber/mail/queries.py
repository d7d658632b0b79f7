"""Reads for the Outbox page: the messages, filtered by status and address."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage


def outbox(status: MessageStatus | None, search: str) -> Select[Any]:
    """Messages newest first (a select to paginate): of one status if given, and whose address
    holds `search` (any case, taken literally) if given."""
    query = db.select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            db.func.lower(OutboxMessage.to_address).like(f"%{escaped}%", escape="\\")
        )
    return query
