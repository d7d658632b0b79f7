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
from chamber.members.models import Consent, Contact, Organisation, SizeBand
from chamber.registration.models import Booking, BookingToken, Delegate, DelegateStatus

__all__ = [
    "AgendaItem", "AgendaItemSpeaker", "AgendaKind", "Event", "EventStatus", "Role", "Speaker",
    "StaffUser", "MailKind", "MessageStatus", "OutboxAttachment", "OutboxMessage", "Suppression",
    "UnsubscribeToken", "Consent", "Contact", "Organisation", "SizeBand", "Booking", "BookingToken",
    "Delegate", "DelegateStatus",
]  # fmt: skip
