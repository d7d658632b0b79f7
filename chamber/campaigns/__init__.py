"""Campaigns (docs/campaigns.md): a message composed by staff, sent to a saved segment through the
outbox, with its progress and a report of the bookings it brought. It sits above the directory,
whose segments it sends to."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The staff pages, the check at send time that each recipient may still be sent it, and
    the campaigns each contact received, for the directory's histories."""
    from chamber.campaigns import manage, queries, sending
    from chamber.directory.signals import campaigns_received
    from chamber.mail.signals import before_sending

    app.register_blueprint(manage.bp)
    before_sending.connect(sending.withhold_unlawful_for_app, sender=app, weak=False)
    campaigns_received.connect(queries.received_by_for_app, sender=app, weak=False)
