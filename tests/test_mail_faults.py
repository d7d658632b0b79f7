"""Invariant 12 for mail: one bad message never stops delivery. Whatever is wrong with a message
(an address no server takes, a header that cannot be written, a link to nothing, a body that cannot
be encoded), it is parked as failed with its reason, visible in the Outbox, and the worker goes on;
and a line break typed into a name can never become a header of its own."""

from __future__ import annotations

import threading
import time
from contextlib import suppress

import pytest

from chamber.extensions import db
from chamber.mail import links
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MessageStatus, OutboxAttachment, OutboxMessage
from chamber.mail.services import enqueue
from chamber.worker import Worker, run_supervised


def queue(key: str, to: str = "zoe@example.com", **row) -> OutboxMessage:
    """Queue a message as the app does, then give its stored row the fault a test needs."""
    enqueue(key=key, to=to, subject="Your place", template="test_message", to_name="Zoe")
    message = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == key)).one()
    for name, value in row.items():
        setattr(message, name, value(message) if callable(value) else value)
    db.session.commit()
    return message


POISON = {
    "non-ascii local part": {"to_address": "zoë@example.com"},
    "CR/LF in the name": {"to_name": "Zoe\r\nBcc: thief@evil.example"},
    "LF in the subject": {"subject": "Hi\nBcc: thief@evil.example"},
    "U+2028 in the subject": {"subject": "Hi\u2028Bcc: thief@evil.example"},
    "CR/LF in Reply-To": {"reply_to": "a@example.com\r\nBcc: thief@evil.example"},
    "an unknown kind of link": {
        "text_body": lambda m: m.text_body + links.marker_for(m.link_nonce, "nosuchkind", "1")
    },
    "a link to something that is not an id": {
        "text_body": lambda m: m.text_body + links.marker_for(m.link_nonce, "manage", "abc")
    },
    "an attachment that cannot be read": {
        "attachments": lambda m: [
            OutboxAttachment(
                filename="invite.ics",
                content=b"\xff\xfe",
                content_type="text/calendar; method=REQUEST",
            )
        ]
    },
    "an address that is not one": {"to_address": "not an address"},
}


def test_every_poison_message_is_parked_with_its_reason_and_the_rest_are_delivered(
    app, smtp_server, client, admin_client
):
    queue("first")
    poisoned = {name: queue(f"poison:{n}", **row) for n, (name, row) in enumerate(POISON.items())}
    queue("last", to="last@example.com")

    report = Worker(app, echo=lambda line: None).run_once()

    assert report.sent == 2, report.errors
    assert report.failed == len(POISON)
    assert sorted(m["To"] for m in smtp_server.messages) == ["Zoe <last@example.com>",
                                                              "Zoe <zoe@example.com>"]  # fmt: skip
    db.session.expire_all()
    for name, message in poisoned.items():
        row = db.session.get(OutboxMessage, message.id)
        assert row.status == MessageStatus.failed, name
        assert row.last_error and row.last_error.startswith("Not sent:"), (name, row.last_error)
        assert row.claimed_by is None and row.lease_until is None, name
        page = admin_client.get(f"/staff/outbox/{row.id}")  # staff see why, and may act
        assert "Send again" in page.text and "Cancel message" in page.text, name
    # Nothing reached a thief: every envelope went to the one intended recipient.
    assert smtp_server.handler.recipients == [["zoe@example.com"], ["last@example.com"]]


def test_a_line_break_in_a_name_or_subject_never_becomes_a_header(app, smtp_server):
    enqueue(key="typed", to="zoe@example.com", template="test_message",
            subject="Booked\r\nBcc: thief@evil.example",
            to_name="Zoe\r\nBcc: thief@evil.example\r\n\r\nbody")  # fmt: skip
    db.session.commit()
    assert deliver_due().sent == 1
    (email,) = smtp_server.messages
    assert email["Bcc"] is None and email["Reply-To"] is None
    assert email["To"].addresses[0].addr_spec == "zoe@example.com"
    assert email["To"].addresses[0].display_name == "Zoe Bcc: thief@evil.example body"
    assert email["Subject"] == "Booked Bcc: thief@evil.example"
    assert smtp_server.handler.recipients == [["zoe@example.com"]]


def test_an_encoded_word_in_a_subject_arrives_as_typed_in_one_header(app, smtp_server):
    """A line break hidden in an encoded word (CVE-2024-6923) never reaches the wire: the subject
    is written wholly as encoded words of its own, and reads back as the text that was typed."""
    subject = "Cyber seminar =?utf-8?q?=0D=0AReply-To:_phish@evil.example?="
    enqueue(key="ew", to="zoe@example.com", subject=subject, template="test_message")
    db.session.commit()
    assert deliver_due().sent == 1
    (email,) = smtp_server.messages
    assert email["Subject"] == subject
    assert email["Reply-To"] is None and b"\r\nReply-To" not in smtp_server.handler.received[0]


def test_an_internationalised_domain_is_sent_in_its_ascii_form(app, smtp_server):
    enqueue(key="idn", to="zoe@exämple.com", subject="Hi", template="test_message")
    db.session.commit()
    assert deliver_due().sent == 1
    assert smtp_server.handler.recipients == [["zoe@xn--exmple-cua.com"]]
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert message.to_address == "zoe@exämple.com"  # staff still see and search what was typed


def test_a_round_that_fails_is_logged_and_the_worker_goes_on(app, smtp_server, monkeypatch):
    import chamber.worker as worker_module

    real, calls = worker_module.deliver_due, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "deliver_due", flaky)
    app.config["WORKER_POLL_SECONDS"] = 0.01
    queue("after-the-outage")
    lines: list[str] = []
    worker = Worker(app, echo=lines.append)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(smtp_server.messages) == 1
    assert any(
        line.startswith("Round failed (RuntimeError: the database went away)") for line in lines
    )
    assert lines[-1] == "Worker stopped."


def test_the_demo_worker_is_restarted_loudly_if_it_ever_dies(app):
    worker = Worker(app, echo=lambda line: None)
    runs, warnings = [], []

    def run():
        runs.append(1)
        if len(runs) == 1:
            raise SystemExit("killed by a bug")

    worker.run = run
    run_supervised(worker, warn=warnings.append, restart_after=0)
    assert len(runs) == 2
    (warning,) = warnings
    assert warning.startswith("THE WORKER STOPPED UNEXPECTEDLY (SystemExit: killed by a bug)")
    assert "No email is sent while it is down" in warning


@pytest.mark.parametrize("status", [MessageStatus.failed])
def test_a_parked_message_sent_again_after_the_fix_is_delivered(app, smtp_server, status):
    message = queue("fixable", to_address="zoë@example.com")
    deliver_due()
    db.session.refresh(message)
    assert message.status == status
    message.to_address = "zoe@example.com"  # staff correct the address ...
    from chamber.mail.services import retry
    from tests.factories import acting_staff

    retry(message, by=acting_staff())  # ... and send it again
    db.session.commit()
    assert deliver_due().sent == 1


def test_an_encoded_word_in_a_name_stays_inside_the_to_header(app, smtp_server):
    enqueue(key="encoded", to="zoe@example.com", subject="Hi", template="test_message",
            to_name="=?utf-8?q?Zoe=0D=0ABcc:_thief@evil.example?=")  # fmt: skip
    db.session.commit()
    assert deliver_due().sent == 1
    (email,) = smtp_server.messages
    assert email["Bcc"] is None
    assert smtp_server.handler.recipients == [["zoe@example.com"]]
    raw = smtp_server.handler.received[0].split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in raw and raw.count(b"\r\nTo: ") == 1


def test_a_sent_message_whose_record_fails_is_never_parked_as_not_sent(
    app, smtp_server, monkeypatch
):
    from chamber.mail.delivery import SentLedger

    def locked(self, message, attempts):
        raise RuntimeError("database is locked")

    # Both ways of recording (at once, or sent ahead on PostgreSQL) take their values here.
    monkeypatch.setattr(SentLedger, "_values", locked)
    queue("went-out")
    report = deliver_due()
    assert len(smtp_server.messages) == 1  # it went out ...
    assert report.sent == 1 and report.failed == 0
    assert "sent, but recording it failed" in report.errors[0]
    row = db.session.scalars(db.select(OutboxMessage)).one()
    assert row.status == MessageStatus.sending  # ... and is left to its lease, not parked
    assert not row.can_retry


def test_no_message_leaves_before_the_one_sent_before_it_is_recorded(app, smtp_server, monkeypatch):
    """The courier records a sent message while the server reads the next one's envelope (on
    PostgreSQL the record leaves at once and its answer is read then); that message's content
    goes only once the record is committed. Slowed down, a record that was not waited for would
    show here as a message out unrecorded."""
    from chamber.mail import backends
    from chamber.mail.delivery import SentLedger

    for n in range(4):
        queue(f"in-turn-{n}", to=f"person{n}@example.com")
    record, finish, send = SentLedger.record, SentLedger.finish, backends.SMTPBackend.send

    def slow_record(self, message, attempts):
        time.sleep(0.05)
        record(self, message, attempts)

    def slow_finish(self):
        time.sleep(0.05)
        finish(self)

    unrecorded_as_each_leaves: list[int] = []

    def watched_send(self, email, sender, recipient, *, before_leaving, meanwhile):
        def leaving():
            before_leaving()
            with db.engine.connect() as connection:  # what is committed, seen from outside
                sent = connection.scalar(
                    db.select(db.func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status == MessageStatus.sent)
                )
            unrecorded_as_each_leaves.append(len(smtp_server.messages) - sent)

        send(self, email, sender, recipient, before_leaving=leaving, meanwhile=meanwhile)

    monkeypatch.setattr(SentLedger, "record", slow_record)
    monkeypatch.setattr(SentLedger, "finish", slow_finish)
    monkeypatch.setattr(backends.SMTPBackend, "send", watched_send)
    report = deliver_due()
    assert report.sent == 4 and report.errors == []
    assert unrecorded_as_each_leaves == [0, 0, 0, 0]
    assert {row.status for row in db.session.scalars(db.select(OutboxMessage))} == {
        MessageStatus.sent
    }


def test_a_record_sent_ahead_that_the_database_refuses_is_written_again(
    app, smtp_server, monkeypatch, caplog
):
    """On PostgreSQL a sent message's record leaves at once and its answer is read later. If the
    database refuses that statement (here: a value it cannot read), the message is recorded the
    ordinary way, and the connection goes on to record the rest."""
    from chamber.core.dialects import on_postgresql
    from chamber.mail import delivery

    if not on_postgresql():
        pytest.skip("records are sent ahead on PostgreSQL only")
    for n in range(3):
        queue(f"refused-ahead-{n}", to=f"person{n}@example.com")
    as_text, refused = delivery._as_text, []

    def unreadable(value, encoding):
        if isinstance(value, int) and not refused:  # the first message's tries: not a number
            refused.append(value)
            return b"three"
        return as_text(value, encoding)

    monkeypatch.setattr(delivery, "_as_text", unreadable)
    report = delivery.deliver_due()
    assert refused and report.sent == 3 and report.errors == []
    assert "Recording message" in caplog.text and "invalid input syntax" in caplog.text
    rows = db.session.scalars(db.select(OutboxMessage))
    assert {(row.status, row.attempts, row.claimed_by) for row in rows} == {
        (MessageStatus.sent, 1, None)
    }


def _pooled_connections_as_they_came() -> list[tuple[list, str]]:
    """Each connection in the pool: the statements prepared on it, and its synchronous_commit."""
    connections = [db.engine.connect() for _ in range(max(1, db.engine.pool.checkedin()))]
    try:
        return [
            (
                c.exec_driver_sql("SELECT name FROM pg_prepared_statements").all(),
                c.exec_driver_sql("SHOW synchronous_commit").scalar(),
            )
            for c in connections
        ]
    finally:
        for connection in connections:
            connection.close()


def test_a_record_whose_answer_could_not_be_read_is_written_on_a_new_connection(
    app, smtp_server, monkeypatch, caplog
):
    """An error while a record's answer is awaited leaves that answer unread, and the connection
    can run nothing else: the ledger takes a new connection, the message is recorded the ordinary
    way, the rest of the batch too, and the old connection never returns to the pool."""
    from chamber.core.dialects import on_postgresql
    from chamber.mail import delivery

    if not on_postgresql():
        pytest.skip("records are sent ahead on PostgreSQL only")
    for n in range(4):
        queue(f"unread-{n}", to=f"person{n}@example.com")
    finish, interrupted = delivery._OverlappedRecord.finish, []

    def interrupted_once(self):
        if self.pending and not interrupted:
            interrupted.append(self.name)
            raise OSError("interrupted while waiting for the database")
        finish(self)

    monkeypatch.setattr(delivery._OverlappedRecord, "finish", interrupted_once)
    report = delivery.deliver_due()
    assert interrupted and report.sent == 4 and report.errors == []
    assert "interrupted while waiting for the database" in caplog.text
    rows = db.session.scalars(db.select(OutboxMessage))
    assert {(row.status, row.claimed_by) for row in rows} == {(MessageStatus.sent, None)}
    assert all(
        prepared == [] and synchronous == "on"
        for prepared, synchronous in _pooled_connections_as_they_came()
    )


def test_records_are_read_on_a_connection_of_any_descriptor_number(app, smtp_server):
    """A worker with many files open gets database connections numbered above 1023, which
    `select.select` refuses; the ledger waits with `poll`, so every record is read."""
    import os
    import resource

    from chamber.core.dialects import on_postgresql

    if not on_postgresql():
        pytest.skip("records are sent ahead on PostgreSQL only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("this machine allows too few open files")
    for n in range(3):
        queue(f"many-files-{n}", to=f"person{n}@example.com")
    db.session.remove()
    db.engine.dispose()  # the ledger's connection is opened after the files below
    resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    files = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        report = deliver_due()
    finally:
        for descriptor in files:
            os.close(descriptor)
        db.session.remove()
        db.engine.dispose()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert report.sent == 3 and report.errors == []
    rows = db.session.scalars(db.select(OutboxMessage))
    assert {row.status for row in rows} == {MessageStatus.sent}


def test_the_database_restarting_mid_batch_sends_no_message_twice(app, smtp_server):
    """Every connection to the database is dropped while the server reads the fifth message (a
    clean restart, or an administrator ending them): the ledger takes a new connection and records every message once;
    the next rounds, after the lease, send nothing again."""
    import sqlalchemy as sa

    from chamber.core.dialects import on_postgresql
    from tests.test_mail import later, statuses
    from tests.test_mail import queue as queue_many

    if not on_postgresql():
        pytest.skip("the server's connections are dropped with pg_terminate_backend")
    queue_many(30)
    admin = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    handler, received = smtp_server.handler, []
    data = handler.handle_DATA

    async def dropping_the_database(server, session, envelope):
        received.append(envelope)
        if len(received) == 5:
            with admin.connect() as connection:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        return await data(server, session, envelope)

    handler.handle_DATA = dropping_the_database
    with suppress(Exception):  # the round may end early on the lost session
        deliver_due()
    db.session.remove()
    deliver_due(now=later(10))  # past the lease: anything left unrecorded would go again
    ids = smtp_server.message_ids()
    assert len(ids) == len(set(ids)) == 30
    assert statuses() == {"sent": 30}
    admin.dispose()


def test_once_a_sent_message_cannot_be_recorded_no_other_leaves(app, smtp_server, monkeypatch):
    """The database will not take a sent message's record, even on a new connection: the next
    message is stopped before its content leaves and the rest are not sent, so that after their
    lease each of them goes once (only the one unrecorded message may go twice)."""
    from chamber.mail.delivery import SentLedger
    from tests.test_mail import later, statuses

    for n in range(4):
        queue(f"ledger-gone-{n}", to=f"person{n}@example.com")
    values = SentLedger._values

    def gone(self, message, attempts):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(SentLedger, "_values", gone)
    report = deliver_due()
    assert len(smtp_server.messages) == 1 and report.sent == 1
    assert "sent, but recording it failed" in report.errors[0]
    assert statuses() == {"sending": 4}  # none parked, none handed back as sent
    monkeypatch.setattr(SentLedger, "_values", values)
    deliver_due(now=later(10))
    ids = smtp_server.message_ids()
    assert len(ids) == 5 and len(set(ids)) == 4  # the unrecorded one once more, the rest once
    assert statuses() == {"sent": 4}


# --- a mail server that takes nothing -----------------------------------------------------------


class _Silent:
    """Takes TCP connections and never says a word (a firewall, a hung relay)."""

    def __init__(self):
        import socket

        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                self.connections.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self):
        import socket

        with suppress(OSError):  # wakes the thread's accept()
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        self.thread.join(timeout=5)
        for connection in self.connections:
            connection.close()


def test_a_server_that_never_answers_costs_one_time_out_and_sending_rests(app):
    """Without a stop, each of the batch's messages waited the whole time-out (250 of 30 s at the
    defaults: two hours a batch). Now the first one's time-out hands the rest back untouched,
    and the worker's next rounds leave the server alone until the pause is over."""
    from tests.test_mail import later, statuses
    from tests.test_mail import queue as queue_many

    silent = _Silent()
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=silent.port,
                      SMTP_SECURITY="none", SMTP_TIMEOUT=1)  # fmt: skip
    queue_many(10)
    started = time.monotonic()
    report = deliver_due()
    assert time.monotonic() - started < 3 and len(silent.connections) == 1
    assert report.server_unavailable and report.retrying == 1 and report.failed == 0
    assert "10 message(s) wait, and sending rests until" in report.errors[-1]
    attempts = [m.attempts for m in db.session.scalars(db.select(OutboxMessage))]
    assert attempts == [0] * 10  # not one of them is at fault: none spends an attempt
    assert deliver_due().handled == 0 and len(silent.connections) == 1  # resting
    silent.close()
    assert statuses() == {"pending": 10}
    deliver_due(now=later(1))  # the pause is over: tried again (and refused: nobody listens)
    assert statuses() == {"pending": 10}


@pytest.mark.parametrize(
    "reply",
    ["530 5.7.0 Authentication required", "550 5.4.5 Daily user sending quota exceeded",
     "421 4.3.2 Service shutting down"],
)  # fmt: skip
def test_a_refusal_of_our_sender_or_account_parks_nothing(app, smtp_server, reply):
    """A reply about the server or our account (to MAIL FROM here) is no message's fault: none
    is parked as failed, the rest are handed back without spending an attempt, and once the
    server takes mail again every message goes once."""
    from tests.test_mail import later, statuses
    from tests.test_mail import queue as queue_many

    handler = smtp_server.handler

    async def refusing(server, session, envelope, address, mail_options):
        return reply

    handler.handle_MAIL = refusing
    queue_many(5, to="a@example.com")
    queue_many(5, to="b@example.com")
    report = deliver_due()
    assert report.failed == 0 and report.retrying == 1 and report.server_unavailable
    assert statuses() == {"pending": 10} and smtp_server.messages == []
    del handler.handle_MAIL
    deliver_due(now=later(10))
    assert statuses() == {"sent": 10} and len(set(smtp_server.message_ids())) == 10


@pytest.mark.parametrize(
    ("code", "reply", "kind"),
    [(550, "5.1.1 No such user", "Bounce"), (552, "5.2.2 Mailbox full, over quota", "PermanentFailure"),
     (451, "4.7.1 Greylisted, try again", "TemporaryFailure"), (535, "5.7.8 Bad credentials", "ServerUnavailable"),
     (554, "5.7.0 Authentication required", "ServerUnavailable"), (421, "Closing", "ServerUnavailable"),
     (552, "5.7.0 Message blocked: its content presents a security issue", "PermanentFailure"),
     (552, "5.3.4 Message size exceeds fixed limit", "PermanentFailure")],
)  # fmt: skip
def test_replies_about_one_message_and_about_the_server_are_told_apart(code, reply, kind):
    from chamber.mail.backends import _classified

    assert type(_classified(code, reply, about_recipient=True)).__name__ == kind


def test_a_message_too_big_for_the_server_is_parked_alone_and_the_rest_go(app, smtp_server):
    """552 5.3.4 to MAIL FROM (its declared SIZE) is about that message, not the server: it is
    parked with the answer, nothing rests, and the others are delivered."""
    from tests.test_mail import queue as queue_many
    from tests.test_mail import statuses

    handler, mail_from = smtp_server.handler, []

    async def too_big_once(server, session, envelope, address, mail_options):
        mail_from.append(address)
        if len(mail_from) == 1:
            return "552 5.3.4 Message size exceeds fixed limit"
        envelope.mail_from = address
        return "250 OK"

    handler.handle_MAIL = too_big_once
    queue_many(3)
    report = deliver_due()
    assert not report.server_unavailable and (report.failed, report.sent) == (1, 2)
    assert statuses() == {"failed": 1, "sent": 2}


def test_an_outage_however_long_parks_nothing(app, smtp_server):
    """Round after round of 535 (a wrong password for hours): no message spends an attempt, so
    none is parked as failed; each is sent once the password is right."""
    from tests.test_mail import later, statuses
    from tests.test_mail import queue as queue_many

    app.config["MAIL_MAX_ATTEMPTS"] = 3
    handler = smtp_server.handler

    async def refused(server, session, envelope, address, mail_options):
        return "535 5.7.8 Authentication credentials invalid"

    handler.handle_MAIL = refused
    queue_many(3)
    for hours in range(1, 8):
        deliver_due(now=later(60 * hours))
    assert statuses() == {"pending": 3}
    del handler.handle_MAIL
    deliver_due(now=later(60 * 9))
    assert statuses() == {"sent": 3}
