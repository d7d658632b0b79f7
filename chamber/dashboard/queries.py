"""Reads for the staff home page and the health report: the outbox's backlog, and each upcoming
event's figures in a fixed number of queries however many events and bookings there are."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from chamber.core.heartbeat import HealthPart, describe_age
from chamber.extensions import db
from chamber.mail.delivery import due_filter
from chamber.mail.models import MessageStatus, OutboxMessage


def mail_health(app: Flask, now: datetime) -> HealthPart:
    """The outbox's part of the health report: how many messages are due and not sent, and how
    long the oldest has waited; a problem past either threshold (`CHAMBER_HEALTH_MAIL_BACKLOG_*`).
    Failed messages are counted but are no backlog: staff see them on the Outbox page."""
    due, oldest = db.session.execute(
        db.select(db.func.count(OutboxMessage.id), db.func.min(OutboxMessage.next_attempt_at))
        .where(due_filter(now))
    ).one()  # fmt: skip
    failed = db.session.scalar(
        db.select(db.func.count(OutboxMessage.id)).where(
            OutboxMessage.status == MessageStatus.failed
        )
    )
    max_age = app.config["HEALTH_MAIL_BACKLOG_SECONDS"]
    max_count = app.config["HEALTH_MAIL_BACKLOG_COUNT"]
    age = None
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
        age = max(0, int((now - oldest).total_seconds()))
    problems = []
    if age is not None and age > max_age:
        problems.append(
            f"Mail is piling up: {due} message(s) waiting, the oldest for {describe_age(age)}."
        )
    elif due > max_count:
        problems.append(f"Mail is piling up: {due} message(s) waiting to be sent.")
    figures = {
        "state": "backlog" if problems else "ok",
        "queued": due,
        "oldest_queued_age_seconds": age,
        "backlog_after_seconds": max_age,
        "backlog_after_count": max_count,
        "failed": failed,
    }
    return HealthPart("mail", figures, problems)
