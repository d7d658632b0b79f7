"""The bulk stream: campaign mail marked bulk, held, released and cancelled many at a time while a
worker claims, and withheld at send time by the domains above (`mail.signals.before_sending`)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from chamber import create_app
from chamber.config import ConfigError
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail import delivery, services, signals
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


# --- transactional first -------------------------------------------------------------------------


def insert_bulk(n: int, *, start: int = 0, queued_at=None) -> None:
    """`n` campaign messages as rows, queued `queued_at` (quicker than rendering each)."""
    queued_at = queued_at or utcnow() - timedelta(minutes=5)
    rows = [
        {
            "key": f"campaign:{i}",
            "kind": MailKind.marketing,
            "bulk": True,
            "status": MessageStatus.pending,
            "to_address": f"person{i}@example.com",
            "to_normalised": f"person{i}@example.com",
            "to_name": "",
            "subject": "Seminar invitation",
            "text_body": "Come to the seminar.",
            "html_body": "<p>Come to the seminar.</p>",
            "message_id": f"<campaign-{i}@chamber.example>",
            "created_at": queued_at,
            "next_attempt_at": queued_at,
            "attempts": 0,
        }
        for i in range(start, start + n)
    ]
    db.session.execute(db.insert(OutboxMessage), rows)
    db.session.commit()


@pytest.mark.parametrize("look_ahead", [False, True])
def test_a_confirmation_queued_behind_a_campaign_goes_in_the_next_batch_and_first_in_it(
    app, smtp_server, look_ahead
):
    """With the next batch readied ahead (`LookAhead`), the confirmation still goes before it,
    in a batch of its own; and the batch readied ahead when the worker stops is handed back."""
    app.config["BULK_PER_MINUTE"] = 0  # no limit: only the order is tested here
    insert_bulk(3000)
    batches = []

    def after_batch(report) -> None:
        batches.append(report.sent)
        if len(batches) == 1:  # someone books while the campaign is on its way
            enqueue(key="confirmation", to="booker@example.com", subject="Booked",
                    template="test_message")  # fmt: skip
            db.session.commit()

    deliver_due(
        batch_size=100,
        on_batch=after_batch,
        should_stop=lambda: bool(batches) and batches[-1] >= 200,
        look_ahead=look_ahead,
    )
    recipients = [r for (r,) in smtp_server.handler.recipients]
    assert recipients[:100] == [f"person{i}@example.com" for i in range(100)]
    assert recipients[100] == "booker@example.com"  # the next batch, and first in it
    campaign_sent = len(recipients) - 1
    assert recipients[101:] == [f"person{i}@example.com" for i in range(100, campaign_sent)]
    # Without the look-ahead the second batch is the confirmation and 99 of the campaign. With
    # it, the confirmation goes in a batch of its own, then the 100 readied ahead; or, if the
    # look-ahead claimed after the confirmation was queued, first in the batch readied ahead.
    assert campaign_sent in ((199, 200) if look_ahead else (199,))
    # Nothing is left claimed: what was readied ahead is pending again, for anyone to take.
    assert by_status() == {"sent": campaign_sent, "pending": 3000 - campaign_sent}


def test_the_claim_takes_every_due_transactional_message_before_any_bulk_one(app):
    app.config["BULK_PER_MINUTE"] = 0
    insert_bulk(50, queued_at=utcnow() - timedelta(hours=1))  # older than the others
    for i in range(3):
        enqueue(key=f"confirmation:{i}", to=f"b{i}@example.com", subject="Booked",
                template="test_message")  # fmt: skip
    db.session.commit()
    claim = delivery.claim_batch("w", 10)
    claimed = db.session.scalars(
        db.select(OutboxMessage.key)
        .where(OutboxMessage.claimed_by == claim)
        .order_by(OutboxMessage.id)
    ).all()
    assert claimed == [f"campaign:{i}" for i in range(7)] + [f"confirmation:{i}" for i in range(3)]
    assert [m.key for m in delivery._claimed(claim)][:3] == [f"confirmation:{i}" for i in range(3)]


# --- the bulk rate limit -------------------------------------------------------------------------


def test_two_workers_together_send_no_more_bulk_mail_a_minute_than_the_limit(app, smtp_server):
    app.config["BULK_PER_MINUTE"] = 50
    insert_bulk(200)
    reports = []

    def work(name: str) -> None:
        with app.app_context():
            reports.append(deliver_due(name, batch_size=7))

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.sent for r in reports) == 50 == len(smtp_server.handler.received)
    assert by_status() == {"sent": 50, "pending": 150}

    # Transactional mail is never held back by the limit.
    for i in range(20):
        enqueue(key=f"confirmation:{i}", to=f"b{i}@example.com", subject="Booked",
                template="test_message")  # fmt: skip
    db.session.commit()
    assert deliver_due().sent == 20
    assert by_status() == {"sent": 50, "pending": 150}

    # A minute on, the next 50 go, again shared by two workers.
    minute_on = utcnow() + timedelta(seconds=61)
    reports.clear()
    threads = [
        threading.Thread(
            target=lambda n=n: reports.append(_deliver_in(app, f"w{n}", now=lambda: minute_on))
        )  # fmt: skip
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.sent for r in reports) == 50
    assert by_status() == {"sent": 100, "pending": 100}


def _deliver_in(app, name, **kwargs):
    with app.app_context():
        return deliver_due(name, batch_size=7, **kwargs)


def test_messages_on_their_way_count_against_the_limit_until_they_are_done(app):
    app.config["BULK_PER_MINUTE"] = 10
    insert_bulk(30)
    first = delivery.claim_batch("w1", 100)
    assert first is not None
    assert delivery.claim_batch("w2", 100) is None  # all ten are taken
    # Two minutes on, the ten are still on their way (a slow server): still counted.
    later = utcnow() + timedelta(minutes=2)
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.claimed_by == first)
        .values(lease_until=later + timedelta(minutes=5))
    )
    db.session.commit()
    assert delivery.claim_batch("w2", 100, later) is None
    # Done with them: the next ten may go.
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.claimed_by == first)
        .values(status=MessageStatus.sent, claimed_by=None, lease_until=None)
    )
    db.session.commit()
    assert delivery.claim_batch("w2", 100, later) is not None
    assert by_status() == {"sent": 10, "sending": 10, "pending": 10}


def test_no_limit_when_the_setting_is_zero(app):
    app.config["BULK_PER_MINUTE"] = 0
    insert_bulk(30)
    assert delivery.claim_batch("w", 100) is not None
    assert by_status() == {"sending": 30}


def test_the_limit_is_a_setting_from_the_environment_or_the_instance_file(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAMBER_BULK_PER_MINUTE", raising=False)
    assert create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)}).config[
        "BULK_PER_MINUTE"
    ] == 600  # fmt: skip
    (tmp_path / "chamber.toml").write_text("CHAMBER_BULK_PER_MINUTE = 120\n")
    assert create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)}).config[
        "BULK_PER_MINUTE"
    ] == 120  # fmt: skip
    monkeypatch.setenv("CHAMBER_BULK_PER_MINUTE", "0")
    assert create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)}).config[
        "BULK_PER_MINUTE"
    ] == 0  # fmt: skip
    for bad, message in (
        ("-1", "must be 0 \\(no limit\\) or more"),
        ("ten", "must be a whole number"),
    ):
        monkeypatch.setenv("CHAMBER_BULK_PER_MINUTE", bad)
        with pytest.raises(ConfigError, match=f"CHAMBER_BULK_PER_MINUTE {message}"):
            create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})


def test_a_campaign_held_back_by_the_limit_is_no_backlog_in_the_health_check(app, client):
    app.config["HEALTH_MAIL_BACKLOG_COUNT"] = 10
    insert_bulk(40, queued_at=utcnow() - timedelta(hours=1))
    mail = client.get("/healthz").json["mail"]
    assert (mail["state"], mail["queued"], mail["bulk_queued"]) == ("ok", 0, 40)
    assert mail["oldest_queued_age_seconds"] is None
    enqueue(key="confirmation", to="b@example.com", subject="Booked", template="test_message")
    db.session.commit()
    mail = client.get("/healthz").json["mail"]
    assert (mail["queued"], mail["bulk_queued"]) == (1, 40)


# --- the next batch readied ahead ----------------------------------------------------------------


@pytest.mark.parametrize("fails_in", ["claim_batch", "ready_batch"])
def test_when_readying_the_next_batch_ahead_fails_the_worker_does_it_itself(
    app, smtp_server, monkeypatch, fails_in
):
    """The thread that readies the next batch fails once (in its claim, or after claiming):
    the worker claims or readies that batch itself, and every message still goes exactly once."""
    app.config["BULK_PER_MINUTE"] = 0
    insert_bulk(35)
    real = getattr(delivery, fails_in)
    failed = []

    def fails_once_on_its_thread(*args, **kwargs):
        if threading.current_thread().name == "chamber-mail-ahead" and not failed:
            failed.append(True)
            raise RuntimeError("the database went away for a moment")
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery, fails_in, fails_once_on_its_thread)
    report = deliver_due(batch_size=10, look_ahead=True)
    assert failed == [True]
    ids = smtp_server.message_ids()
    assert report.sent == len(ids) == len(set(ids)) == 35
    assert by_status() == {"sent": 35}


def test_a_worker_stopped_with_a_batch_readied_ahead_hands_it_back_for_another(
    app, smtp_server, monkeypatch
):
    app.config["BULK_PER_MINUTE"] = 0
    insert_bulk(50)
    handed_back = []
    real_hand_back = delivery.LookAhead.hand_back

    def hand_back(self) -> None:
        real_hand_back(self)
        handed_back.append(len(self.ready.batch))

    monkeypatch.setattr(delivery.LookAhead, "hand_back", hand_back)
    stop = threading.Event()
    deliver_due(
        "w1",
        batch_size=10,
        look_ahead=True,
        on_batch=lambda _r: stop.set(),
        should_stop=stop.is_set,
    )
    assert len(smtp_server.handler.recipients) == 10  # the batch in hand was finished
    assert handed_back == [10]  # the next was claimed and readied meanwhile, then given back
    assert by_status() == {"sent": 10, "pending": 40}  # the one claimed ahead is free again
    assert deliver_due("w2", batch_size=10, look_ahead=True).sent == 40
    ids = smtp_server.message_ids()
    assert len(ids) == len(set(ids)) == 50


@pytest.mark.parametrize("rival", ["another worker", "its own next look-ahead"])
def test_a_batch_readied_ahead_that_outwaited_its_lease_renews_it_and_skips_what_it_lost(
    app, smtp_server, monkeypatch, rival
):
    """The batch readied ahead waits for the batch in hand; if that takes longer than its lease,
    another claim may take its messages (another worker's, or the worker's own next look-ahead):
    the worker renews the lease before sending any of them and leaves whatever it lost, so
    nothing goes twice."""
    app.config.update(BULK_PER_MINUTE=0, MAIL_LEASE_SECONDS=2)
    insert_bulk(10)
    smtp_server.handler.delay = 0.8  # five messages: well over the lease
    real_deliver, real_look_ahead = delivery.deliver_claimed, delivery.LookAhead
    taken_by_other: list[str] = []
    made = []

    def deliver_claimed(claim, backend, **kwargs):
        if isinstance(claim, delivery.ReadyBatch) and claim.claimed_at < time.monotonic() - 2:
            db.session.rollback()  # what this worker read: the other worker has its own session
            other = delivery.claim_batch("w2", 5)  # another worker, polling as the lease ran out
            if other is not None:
                taken_by_other.extend(
                    db.session.scalars(
                        db.select(OutboxMessage.to_address).where(OutboxMessage.claimed_by == other)
                    )
                )
            db.session.commit()
        return real_deliver(claim, backend, **kwargs)

    def look_ahead_once(*args):
        if made:
            return None  # no second look-ahead: the rival is the other worker
        made.append(real_look_ahead(*args))
        return made[0]

    if rival == "another worker":
        monkeypatch.setattr(delivery, "deliver_claimed", deliver_claimed)
        monkeypatch.setattr(delivery, "LookAhead", look_ahead_once)
    deliver_due("w1", batch_size=5, look_ahead=True)
    sent_by_w1 = [r for (r,) in smtp_server.handler.recipients]
    everyone = [f"person{i}@example.com" for i in range(10)]
    if rival == "another worker":
        assert sorted(taken_by_other) == everyone[5:]
        assert sent_by_w1 == everyone[:5]  # none of the other's
    else:  # the next look-ahead took them over, and sent them once
        assert sorted(sent_by_w1) == sorted(everyone)
    assert len(set(sent_by_w1)) == len(sent_by_w1)


def test_a_batch_readied_ahead_that_waited_has_its_checks_read_again(app, smtp_server):
    """Someone in the batch readied ahead unsubscribes while the batch before is sent to a slow
    relay: when the batch's turn comes its checks are read again, and they get nothing."""
    app.config.update(BULK_PER_MINUTE=0)
    insert_bulk(10)
    smtp_server.handler.delay = 0.3  # five messages: longer than `CHECK_AGAIN_AFTER`

    def after_batch(report) -> None:
        if report.sent == 5:  # the next five were readied while these went
            services.suppress("person7@example.com")
            db.session.commit()

    deliver_due("w1", batch_size=5, look_ahead=True, on_batch=after_batch)
    sent = [r for (r,) in smtp_server.handler.recipients]
    assert "person7@example.com" not in sent
    assert sent == [f"person{i}@example.com" for i in range(10) if i != 7]
