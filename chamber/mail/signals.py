"""What the mail layer asks the domains above it, as blinker signals (as `events.signals`): the
sender is the app, and each domain connects its receivers for the app it wires, in its `init_app`.

- `before_sending(app, messages=)`: sent by the worker once for each batch it claimed, just
  before sending it, with the batch's messages whose kind respects suppression (marketing and
  survey mail; never transactional) and whose address is not on the suppression list, as
  `SendTimeMessage`s. Each receiver returns a dict `{message id: reason}` (or None) naming the
  messages that must not go now, e.g. because the recipient unsubscribed or lost the lawful
  basis after the message was queued. Those messages end `suppressed` with the reason as their
  `last_error` (shown in the Outbox): never sent, never counted as failed. A receiver only
  reads; if one raises, the batch's checked messages are tried again later (as after a 4xx
  reply) and the rest of the batch goes on. A reason of `HOLD` instead holds the message back
  (pending, never due, as `services.hold_messages` does): for a message that must not go now
  but may later (a paused campaign's, handed back by a worker that stopped).
"""

from __future__ import annotations

from dataclasses import dataclass

from blinker import Namespace

from chamber.mail.models import MailKind

signals = Namespace()

before_sending = signals.signal("before-sending")

HOLD = "chamber:hold"  # a `before_sending` reply: hold the message back, do not withhold it


@dataclass(frozen=True)
class SendTimeMessage:
    """What a `before_sending` receiver is told of a message about to be sent."""

    id: int  # outbox_message.id
    key: str  # the key it was queued with, e.g. "campaign:12:contact:34"
    kind: MailKind
    bulk: bool
    to_address: str
