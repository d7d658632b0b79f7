"""What the directory asks of the layers above it, which it cannot import (docs/architecture.md,
"Wiring"): the campaigns each contact received, for a record's history.

- `campaigns_received(app, contact_ids=)`: each receiver returns a list of `ReceivedCampaign`
  for those contacts, newest first, read in one query however many.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from blinker import Namespace

signals = Namespace()
campaigns_received = signals.signal("campaigns-received")


@dataclass(frozen=True)
class ReceivedCampaign:
    """A campaign one contact's segment put them in: whether it went to them, and if not why."""

    campaign_id: int
    subject: str
    started_at: datetime | None
    contact_id: int
    left_out: bool  # the rules left them out: no message was queued for them
    outcome: str  # in words: "Sent", "Queued", "Failed", "Left out: No lawful basis" ...
