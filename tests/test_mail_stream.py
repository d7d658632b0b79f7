"""The bulk stream: campaign mail marked bulk, held, released and cancelled many at a time while a
worker claims, and withheld at send time by the domains above (`mail.signals.before_sending`)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail import services, signals
from chamber.mail.delivery import deliver_due
from chamber.mail.models import HELD_UNTIL, MailKind, MessageStatus, OutboxMessage
from chamber.mail.services import (
    cancel_messages,
    composed_only,
    enqueue,
    hold_messages,
    queue_composed,
    release_messages,
)


def queue_bulk(n: int, *, kind: MailKind = MailKind.marketing, prefix: str = "campaign") -> None:
    for i in range(n):
        enqueue(
            key=f"{prefix}:{i}",
            to=f"person{i}@example.com",
            subject="Seminar invitation",
            template="test_message",
            kind=kind,
            bulk=True,
        )
    db.session.commit()


def campaign_ids(prefix: str = "campaign"):
    return db.select(OutboxMessage.id).where(OutboxMessage.key.startswith(f"{prefix}:"))


def by_status(prefix: str = "campaign") -> dict[str, int]:
    rows = db.session.execute(
        db.select(OutboxMessage.status, db.func.count())
        .where(OutboxMessage.key.startswith(f"{prefix}:"))
        .group_by(OutboxMessage.status)
    )
    return {status.value: count for status, count in rows}


# --- marking bulk --------------------------------------------------------------------------------


def test_enqueue_marks_bulk_mail_and_leaves_the_rest_not_bulk(app):
    enqueue(key="confirmation", to="a@example.com", subject="Booked", template="test_message")
    enqueue(
        key="campaign:1",
        to="b@example.com",
        subject="Invitation",
        template="test_message",
        kind=MailKind.marketing,
        bulk=True,
    )
    with composed_only() as held:
        enqueue(
            key="campaign:2",
            to="c@example.com",
            subject="Invitation",
            template="test_message",
            kind=MailKind.marketing,
            bulk=True,
        )
    assert queue_composed(held) == 1
    db.session.commit()
    assert dict(db.session.execute(db.select(OutboxMessage.key, OutboxMessage.bulk)).all()) == {
        "confirmation": False,
        "campaign:1": True,
        "campaign:2": True,
    }


def test_a_message_claimed_by_a_worker_records_when(app, smtp_server):
    queue_bulk(2)
    before = utcnow()
    assert deliver_due().sent == 2
    for message in db.session.scalars(db.select(OutboxMessage)):
        assert message.claimed_at is not None and message.claimed_at >= before - timedelta(
            seconds=1
        )


# --- hold, release, cancel -----------------------------------------------------------------------


def test_held_messages_stay_pending_are_never_claimed_and_go_once_released(app, smtp_server):
    queue_bulk(5)
    enqueue(key="confirmation", to="z@example.com", subject="Booked", template="test_message")
    db.session.commit()
    assert hold_messages(campaign_ids()) == 5
    db.session.commit()
    assert by_status() == {"pending": 5}
    message = db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key == "campaign:0"))
    assert message.is_held and message.next_attempt_at == HELD_UNTIL

    # Years later, nothing of the campaign is due; the transactional message went.
    report = deliver_due(now=lambda: utcnow() + timedelta(days=3650))
    assert report.sent == 1 and len(smtp_server.messages) == 1
    assert by_status() == {"pending": 5}

    assert hold_messages(campaign_ids()) == 5  # holding again changes nothing but the count
    assert release_messages(campaign_ids()) == 5
    assert release_messages(campaign_ids()) == 0  # nothing held any more
    db.session.commit()
    assert deliver_due().sent == 5
    assert by_status() == {"sent": 5}


def test_release_leaves_a_message_that_was_not_held_as_it_is(app):
    queue_bulk(2)
    later = utcnow() + timedelta(hours=2)
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.key == "campaign:1")
        .values(next_attempt_at=later)
    )
    db.session.commit()
    assert release_messages(campaign_ids()) == 0
    db.session.commit()
    waiting = db.session.scalar(
        db.select(OutboxMessage.next_attempt_at).where(OutboxMessage.key == "campaign:1")
    )
    assert waiting == later


def test_cancel_takes_waiting_and_held_messages_and_leaves_sent_failed_and_claimed_ones(app):
    queue_bulk(6)
    now = utcnow()
    states = {
        "campaign:0": {"status": MessageStatus.sent, "sent_at": now},
        "campaign:1": {"status": MessageStatus.failed},
        "campaign:2": {  # on its way with a live worker: it is sent
            "status": MessageStatus.sending,
            "claimed_by": "w1",
            "lease_until": now + timedelta(minutes=5),
        },
        "campaign:3": {  # its worker died
            "status": MessageStatus.sending,
            "claimed_by": "w0",
            "lease_until": now - timedelta(minutes=1),
        },
        "campaign:4": {"next_attempt_at": HELD_UNTIL},
    }
    for key, values in states.items():
        db.session.execute(
            db.update(OutboxMessage).where(OutboxMessage.key == key).values(**values)
        )
    db.session.commit()
    assert cancel_messages(campaign_ids()) == 3
    db.session.commit()
    got = dict(db.session.execute(db.select(OutboxMessage.key, OutboxMessage.status)).all())
    assert got == {
        "campaign:0": MessageStatus.sent,
        "campaign:1": MessageStatus.failed,
        "campaign:2": MessageStatus.sending,
        "campaign:3": MessageStatus.cancelled,
        "campaign:4": MessageStatus.cancelled,
        "campaign:5": MessageStatus.cancelled,
    }
    assert cancel_messages(campaign_ids()) == 0


def test_hold_leaves_a_message_a_worker_holds_and_takes_one_whose_worker_died(app):
    queue_bulk(2)
    now = utcnow()
    for key, lease in (
        ("campaign:0", now + timedelta(minutes=5)),
        ("campaign:1", now - timedelta(seconds=1)),
    ):
        db.session.execute(
            db.update(OutboxMessage)
            .where(OutboxMessage.key == key)
            .values(status=MessageStatus.sending, claimed_by="w", lease_until=lease)
        )
    db.session.commit()
    assert hold_messages(campaign_ids()) == 1
    db.session.commit()
    rows = {
        m.key: (m.status, m.is_held, m.claimed_by)
        for m in db.session.scalars(db.select(OutboxMessage))
    }
    assert rows == {
        "campaign:0": (MessageStatus.sending, False, "w"),
        "campaign:1": (MessageStatus.pending, True, None),
    }


def test_the_bulk_actions_touch_only_the_messages_selected(app):
    queue_bulk(3, prefix="a")
    queue_bulk(3, prefix="b")
    assert hold_messages(campaign_ids("a")) == 3
    assert cancel_messages(campaign_ids("b").where(OutboxMessage.key != "b:0")) == 2
    db.session.commit()
    assert by_status("a") == {"pending": 3}
    assert by_status("b") == {"pending": 1, "cancelled": 2}
    assert not db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key == "b:0")).is_held


@pytest.mark.parametrize("action", [hold_messages, cancel_messages])
def test_a_pause_or_cancel_while_a_worker_sends_never_sends_a_message_it_changed(
    app, smtp_server, action
):
    """A worker claims and sends batches while staff pause (or cancel) the campaign: each message
    is either sent once (the worker claimed it first) or held (cancelled) and never sent."""
    count = 300
    queue_bulk(count)
    smtp_server.handler.delay = 0.002
    started = threading.Event()
    reports = []

    def work() -> None:
        with app.app_context():
            reports.append(deliver_due("w1", batch_size=10, on_batch=lambda _r: started.set()))

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(30)
    changed = action(campaign_ids())
    db.session.commit()
    thread.join(timeout=120)
    assert not thread.is_alive()
    final = by_status()
    sent = final.get("sent", 0)
    assert 0 < sent < count and changed == count - sent
    ids = smtp_server.message_ids()
    assert len(ids) == len(set(ids)) == sent == reports[0].sent
    left = "pending" if action is hold_messages else "cancelled"
    assert final == {"sent": sent, left: count - sent}
    if action is hold_messages:
        assert all(
            m.is_held
            for m in db.session.scalars(
                db.select(OutboxMessage).where(OutboxMessage.status == MessageStatus.pending)
            )
        )


# --- the send-time check -------------------------------------------------------------------------


@pytest.fixture
def connect(app):
    """Connect a `before_sending` receiver for this app, disconnected after the test."""
    connected = []

    def connect_(receiver, sender=None):
        signals.before_sending.connect(receiver, sender=sender or app)
        connected.append(receiver)
        return receiver

    yield connect_
    for receiver in connected:
        signals.before_sending.disconnect(receiver)


def test_a_receiver_withholds_a_message_at_send_time_and_it_ends_suppressed_with_its_reason(
    app, smtp_server, connect
):
    queue_bulk(3)
    services.suppress("person2@example.com")
    enqueue(key="confirmation", to="person0@example.com", subject="Booked", template="test_message")
    db.session.commit()
    asked = []

    def lawful_basis(sender, messages):
        asked.append((sender, messages))
        return {m.id: "Not sent: no lawful basis at send time (unsubscribed)." for m in messages
                if m.to_address == "person1@example.com"}  # fmt: skip

    connect(lawful_basis)
    report = deliver_due()
    assert (report.sent, report.suppressed, report.failed) == (2, 2, 0)
    ((sender, messages),) = asked  # once for the batch
    assert sender is app
    # Only marketing and survey mail not already suppressed is asked about.
    assert sorted((m.key, m.kind, m.bulk, m.to_address) for m in messages) == [
        ("campaign:0", MailKind.marketing, True, "person0@example.com"),
        ("campaign:1", MailKind.marketing, True, "person1@example.com"),
    ]
    assert sorted(m["To"] for m in smtp_server.messages) == [
        "person0@example.com", "person0@example.com"
    ]  # fmt: skip
    withheld = db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key == "campaign:1"))
    assert withheld.status == MessageStatus.suppressed
    assert withheld.last_error == "Not sent: no lawful basis at send time (unsubscribed)."
    assert withheld.sent_at is None


def test_a_receiver_for_another_app_is_not_asked(app, smtp_server, connect):
    queue_bulk(1)
    connect(lambda sender, messages: {m.id: "no" for m in messages}, sender=object())
    assert deliver_due().sent == 1


def test_a_reply_naming_a_message_outside_the_batch_or_with_hostile_text_changes_only_its_own(
    app, smtp_server, connect
):
    queue_bulk(2)
    enqueue(key="confirmation", to="z@example.com", subject="Booked", template="test_message")
    db.session.commit()
    transactional = db.session.scalar(
        db.select(OutboxMessage.id).where(OutboxMessage.key == "confirmation")
    )

    def hostile(sender, messages):
        first = min(m.id for m in messages)
        return {first: "Not sent:\r\nBcc: x@evil.example <b>{{ 7*7 }}</b>", transactional: "no",
                99999: "no"}  # fmt: skip

    connect(hostile)
    connect(lambda sender, messages: None)
    report = deliver_due()
    assert (report.sent, report.suppressed) == (2, 1)
    withheld = db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key == "campaign:0"))
    assert withheld.last_error == "Not sent: Bcc: x@evil.example <b>{{ 7*7 }}</b>"


def test_a_receiver_that_fails_puts_off_the_checked_mail_and_the_rest_of_the_batch_goes(
    app, smtp_server, connect
):
    queue_bulk(2)
    enqueue(key="confirmation", to="z@example.com", subject="Booked", template="test_message")
    db.session.commit()

    def broken(sender, messages):
        raise RuntimeError("the database went away")

    connect(broken)
    report = deliver_due()
    assert (report.sent, report.retrying, report.failed) == (1, 2, 0)
    assert [m["To"] for m in smtp_server.messages] == ["z@example.com"]
    for message in db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.startswith("campaign:"))
    ):
        assert message.status == MessageStatus.pending and message.attempts == 1
        assert message.next_attempt_at > utcnow()
        assert "send-time check failed: RuntimeError: the database went away" in message.last_error


def test_a_receiver_that_writes_is_a_failed_check(app, smtp_server, connect):
    queue_bulk(1)

    def writes(sender, messages):
        services.suppress("someone@example.com")
        db.session.flush()
        return {}

    connect(writes)
    report = deliver_due()
    assert (report.sent, report.retrying) == (0, 1)
    assert not services.is_suppressed("someone@example.com")
