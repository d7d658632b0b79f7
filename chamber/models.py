"""Every model, imported in one place so that the metadata Alembic compares is complete."""

from chamber.auth.models import Role, StaffUser
from chamber.events.models import (
    AgendaItem,
    AgendaItemSpeaker,
    AgendaKind,
    Event,
    EventStatus,
    Speaker,
)
from chamber.mail.models import (
    MailKind,
    MessageStatus,
    OutboxAttachment,
    OutboxMessage,
    Suppression,
    UnsubscribeToken,
)

__all__ = [
    "AgendaItem", "AgendaItemSpeaker", "AgendaKind", "Event", "EventStatus", "Role", "Speaker",
    "StaffUser", "MailKind", "MessageStatus", "OutboxAttachment", "OutboxMessage", "Suppression",
    "UnsubscribeToken",
]  # fmt: skip
