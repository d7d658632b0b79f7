"""The outbox: queued in the caller's transaction, delivered once, retried, parked, never lost."""

from __future__ import annotations

import smtplib
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from chamber.core.addresses import is_plain_address
from chamber.core.dialects import on_postgresql, one_of
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token
from chamber.extensions import db
from chamber.mail import delivery, services
from chamber.mail.backends import backend_for, envelope_address
from chamber.mail.delivery import backoff, deliver_due
from chamber.mail.models import (
    MailKind,
    MessageStatus,
    OutboxMessage,
    Suppression,
    UnsubscribeToken,
)
from chamber.mail.services import Attachment, enqueue

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Chamber//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    "UID:event-1@chamber.example\r\nSUMMARY:Cybercrime seminar – Zoë\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
).encode()


def queue(
    n: int = 1, *, kind: MailKind = MailKind.transactional, to: str = "zoe@example.com", **kw
) -> None:
    for i in range(n):
        enqueue(
            key=kw.pop("key", f"test:{kind}:{to}:{i}"),
            to=to,
            subject=kw.get("subject", "Hello"),
            template="test_message",
            kind=kind,
            to_name=kw.get("to_name", "Zoë O'Brien"),
            context={"note": f"Message {i}"},
            attachments=kw.get("attachments", ()),
        )
    db.session.commit()


def statuses() -> dict[str, int]:
    rows = db.session.execute(
        db.select(OutboxMessage.status, db.func.count()).group_by(OutboxMessage.status)
    )
    return {status.value: count for status, count in rows}


def later(minutes: int):
    return lambda: utcnow() + timedelta(minutes=minutes)


# --- what is received ----------------------------------------------------------------------------


def test_a_message_arrives_as_utf8_multipart_alternative_with_its_attachment_intact(
    app, smtp_server
):
    app.config["MAIL_REPLY_TO"] = "events@hertschamber.example"
    queue(
        subject="Your place at the Cybercrime seminar – 李",
        attachments=[Attachment("invite.ics", "text/calendar; charset=utf-8; method=REQUEST", ICS)],
    )
    report = deliver_due()
    assert report.sent == 1
    (email,) = smtp_server.messages
    assert email["Subject"] == "Your place at the Cybercrime seminar – 李"
    assert email["To"] == "Zoë O'Brien <zoe@example.com>"
    assert email["From"] == "Hertfordshire Chamber of Commerce <events@chamber.example>"
    assert email["Reply-To"] == "events@hertschamber.example"
    assert email["Message-ID"].endswith("@chamber.example>")
    assert email["Date"]
    assert email.get_content_type() == "multipart/mixed"
    alternative, calendar = email.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    # An invitation is the last alternative, with its method (RFC 6047), and a file to keep.
    text, html, invitation = alternative.get_payload()
    assert text.get_content_type() == "text/plain" and text.get_content_charset() == "utf-8"
    assert html.get_content_type() == "text/html" and html.get_content_charset() == "utf-8"
    assert "Hello Zoë O'Brien" in text.get_content()
    assert "Hello Zoë O&#39;Brien" in html.get_content()
    assert invitation.get_content_type() == "text/calendar"
    assert invitation.get_param("method") == "REQUEST"
    assert invitation.get_content_charset() == "utf-8"
    assert invitation.get_content().encode() == ICS.decode().encode()
    assert invitation.get_filename() is None  # shown inline, as the invitation
    # The file to keep is a calendar too, with its method, charset and file name (RFC 6047).
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert calendar.get_content_disposition() == "attachment"
    assert calendar.get_filename() == "invite.ics"
    assert calendar.get_payload(decode=True) == ICS
    assert "List-Unsubscribe" not in email  # transactional mail


def test_marketing_mail_has_one_click_unsubscribe_and_a_visible_link(app, smtp_server):
    queue(kind=MailKind.marketing)
    deliver_due()
    (email,) = smtp_server.messages
    header = email["List-Unsubscribe"]
    assert header.startswith("<http") and header.endswith(">")
    url = header[1:-1]
    # On the wire as the URL itself, on one line: clients do not decode RFC 2047 words in it.
    (raw,) = smtp_server.handler.received
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = email.get_payload()
    assert url in text.get_content() and url in html.get_content()
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 43
    stored = db.session.scalars(db.select(UnsubscribeToken)).one()
    assert stored.token_hash == hash_token(token) and stored.email == "zoe@example.com"
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert token not in message.text_body + message.html_body  # the secret never sat in the outbox


def test_enqueueing_the_same_key_twice_is_a_no_op(app):
    assert enqueue(key="same", to="a@example.com", subject="One", template="test_message") is True
    assert enqueue(key="same", to="a@example.com", subject="Two", template="test_message") is False
    db.session.commit()
    assert db.session.scalars(db.select(OutboxMessage.subject)).all() == ["One"]


def test_a_rolled_back_transaction_leaves_nothing_to_send(app, smtp_server):
    enqueue(
        key="doomed",
        to="a@example.com",
        subject="Never",
        template="test_message",
        attachments=[Attachment("x.ics", "text/calendar; method=PUBLISH", ICS)],
    )
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 0
    assert deliver_due().handled == 0
    assert smtp_server.messages == []


def test_marketing_mail_without_an_unsubscribe_link_is_refused_when_queued(app):
    from jinja2 import ChoiceLoader, DictLoader

    # A marketing template that forgot the layout's footer.
    bare = DictLoader({"emails/bare.txt": "Hi", "emails/bare.html": "<p>Hi</p>"})
    app.jinja_env.loader = ChoiceLoader([bare, app.jinja_env.loader])
    with pytest.raises(ValueError, match="must show an unsubscribe link"):
        enqueue(
            key="bad", to="a@example.com", subject="News", template="bare", kind=MailKind.marketing
        )


# --- the worker's work while the server reads ----------------------------------------------------


def test_each_message_leaves_after_the_one_before_is_recorded_and_its_own_link_committed(
    app, smtp_server, database_url, monkeypatch
):
    count = 6
    queue(count, kind=MailKind.marketing)  # each mints an unsubscribe link as it is sent
    observer = sa.create_engine(database_url)  # what the database holds, seen by the server
    seen: list[tuple[int, int]] = []
    accept = smtp_server.handler.handle_DATA

    async def look_then_accept(server, session, envelope):
        with observer.connect() as connection:
            sent = connection.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == MessageStatus.sent)
            )
            tokens = connection.scalar(sa.select(sa.func.count()).select_from(UnsubscribeToken))
        seen.append((sent, tokens))
        return await accept(server, session, envelope)

    monkeypatch.setattr(smtp_server.handler, "handle_DATA", look_then_accept)
    try:
        report = deliver_due()
    finally:
        observer.dispose()

    assert report.sent == count and report.errors == []
    # As message k arrives, the k before it are recorded as sent: a worker killed now would send
    # again at most this one ...
    assert [sent for sent, _tokens in seen] == list(range(count))
    # ... and its link works, its token committed before it left.
    assert all(tokens >= k + 1 for k, (_sent, tokens) in enumerate(seen))
    assert statuses() == {"sent": count}


def test_an_error_while_preparing_the_next_message_is_raised_not_blamed_on_the_one_on_its_way(
    app, smtp_server, monkeypatch
):
    queue(3)
    renew, renewals = delivery._renew_lease, []

    def renew_then_fail(claim, ids):
        renewals.append(ids)
        if len(renewals) > 1:  # the second, while the server reads the first message
            raise RuntimeError("the database went away")
        return renew(claim, ids)

    monkeypatch.setattr(delivery, "_renew_lease", renew_then_fail)
    app.config["MAIL_LEASE_SECONDS"] = 0  # the lease is renewed before each message
    with pytest.raises(RuntimeError, match="the database went away"):
        deliver_due()

    assert len(smtp_server.messages) == 1
    rows = db.session.scalars(db.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    # The one that went out is recorded as sent, never retried nor parked as not sent; the others
    # are left to their lease.
    assert [row.status for row in rows] == [
        MessageStatus.sent,
        MessageStatus.sending,
        MessageStatus.sending,
    ]
    assert rows[0].attempts == 1 and rows[0].last_error is None


@pytest.mark.parametrize(
    "content",
    [
        b"Subject: dots\r\n\r\n.\r\n..two dots\r\n.a leading dot\r\n\r\n.\r\n"
        b"QUIT\r\n.\r\nMAIL FROM:<thief@evil.example>\r\nthe end, without a line break",
        b".\r\n",  # the first line a lone dot: the end of DATA, were it not doubled
        b".leading\r\nSubject: x\r\n\r\nbody\r\n...\r\n.",
    ],
)
def test_the_smtp_backend_delivers_any_content_exactly_as_sendmail_does(app, smtp_server, content):
    with backend_for(app.config, app.instance_path) as backend:
        backend.send(content, "events@chamber.example", "zoe@example.com")
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=5) as reference:
        reference.sendmail("events@chamber.example", ["zoe@example.com"], content)

    ours, sendmails = smtp_server.handler.received
    assert ours == sendmails
    # every line as it was; nothing ended the message early
    assert ours == content + (b"" if content.endswith(b"\r\n") else b"\r\n")
    assert smtp_server.handler.recipients == [["zoe@example.com"]] * 2


# --- failures ------------------------------------------------------------------------------------


def test_a_temporary_refusal_is_retried_later_and_then_delivered(app, smtp_server):
    smtp_server.handler.replies.extend(["451 4.3.0 Try again later"])
    queue()
    first = deliver_due()
    assert first.retrying == 1
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert message.status == MessageStatus.pending and message.attempts == 1
    assert "451" in message.last_error
    assert message.next_attempt_at > utcnow()
    assert deliver_due().handled == 0  # not due yet
    before = utcnow()
    assert deliver_due(now=later(60 * 24)).sent == 1
    after = utcnow()
    assert len(smtp_server.messages) == 1
    db.session.expire_all()
    assert (
        message.status == MessageStatus.sent
        and message.attempts == 2
        and message.last_error is None
    )
    # Recorded as the ORM would have written it: the time read back, compared in SQL, and the
    # claim released.
    assert before <= message.sent_at <= after and message.sent_at.tzinfo is not None
    assert (
        db.session.scalar(
            db.select(db.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.sent_at.between(before, after))
        )
        == 1
    )
    assert message.claimed_by is None and message.lease_until is None


def test_a_permanent_refusal_stops_at_once(app, smtp_server):
    smtp_server.handler.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    queue(to="nobody@example.com")
    report = deliver_due()
    assert report.failed == 1
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert message.status == MessageStatus.failed and message.attempts == 1
    assert "550" in message.last_error
    assert deliver_due(now=later(60 * 24 * 7)).handled == 0


def test_after_the_last_attempt_a_message_is_parked_as_failed_with_its_error(app, smtp_server):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    # About this message's mailbox (a 421 or a refused login would be about the server, and
    # spend no attempt: tests/test_mail_faults.py).
    smtp_server.handler.replies.extend(["450 4.2.1 Mailbox busy"] * 5)
    queue()
    for day in range(1, 5):
        deliver_due(now=later(60 * 24 * day))
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert message.status == MessageStatus.failed and message.attempts == 3
    assert message.last_error.startswith("Gave up after 3 attempts") and "450" in message.last_error
    assert smtp_server.messages == []


@pytest.mark.slow
def test_mail_queued_while_the_server_is_down_is_all_delivered_exactly_once_when_it_returns(
    app, smtp_server
):
    smtp_server.stop()
    queue(200)
    down = deliver_due()  # the first message finds the server gone: all wait, none spent
    assert down.server_unavailable and down.sent == 0 and down.failed == 0
    assert statuses() == {"pending": 200}
    assert {m.attempts for m in db.session.scalars(db.select(OutboxMessage))} == {0}
    smtp_server.start()
    up = deliver_due(now=later(60 * 24))
    assert up.sent == 200
    ids = smtp_server.message_ids()
    assert len(ids) == 200 and len(set(ids)) == 200
    assert statuses() == {"sent": 200}


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    import random

    rng = random.Random(7)
    delays = [backoff(n, base=60, cap=3600, rng=rng).total_seconds() for n in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        nominal = min(3600, 60 * 2 ** (attempt - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    assert len({round(d) for d in delays}) == len(delays)  # jittered, not lock-step


# --- suppression and unsubscribe -----------------------------------------------------------------


def test_marketing_to_a_suppressed_address_is_never_sent_but_transactional_mail_is(
    app, smtp_server
):
    services.suppress("Zoe@Example.com")
    db.session.commit()
    queue(kind=MailKind.marketing)
    queue(kind=MailKind.survey)
    queue(kind=MailKind.transactional)
    report = deliver_due()
    assert (report.sent, report.suppressed) == (1, 2)
    assert len(smtp_server.messages) == 1
    assert "List-Unsubscribe" not in smtp_server.messages[0]


def unsubscribe_url(smtp_server) -> str:
    return smtp_server.messages[-1]["List-Unsubscribe"][1:-1].replace("http://127.0.0.1:5000", "")


def test_one_click_unsubscribe_works_without_cookies_or_csrf_and_at_once(app, client, smtp_server):
    queue(kind=MailKind.marketing)
    deliver_due()
    path = unsubscribe_url(smtp_server)
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert "no newsletter and no surveys" in response.text  # every topic, named
    assert services.is_suppressed("zoe@example.com")
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert db.session.scalar(db.select(db.func.count(Suppression.id))) == 1
    queue(kind=MailKind.marketing, key="after")
    assert deliver_due().suppressed == 1


def test_following_the_link_changes_nothing_until_the_button_is_pressed(app, client, smtp_server):
    queue(kind=MailKind.marketing)
    deliver_due()
    page = client.get(unsubscribe_url(smtp_server))
    assert page.status_code == 200
    assert "zoe@example.com" in page.text and ">Unsubscribe</button>" in page.text
    assert not services.is_suppressed("zoe@example.com")


@pytest.mark.parametrize("token", ["wrong", "A" * 43, "%00", "x" * 500])
def test_a_wrong_or_tampered_unsubscribe_token_is_a_plain_404(client, token):
    assert client.get(f"/unsubscribe/{token}").status_code == 404
    assert (
        client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code
        == 404
    )
    assert db.session.scalar(db.select(db.func.count(Suppression.id))) == 0


# --- many workers --------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_at_once_deliver_each_message_exactly_once(app, smtp_server):
    count = 1000
    for i in range(count):
        enqueue(
            key=f"bulk:{i}", to=f"person{i}@example.com", subject="Hello", template="test_message"
        )
    db.session.commit()
    reports = []

    def work(name: str) -> None:
        with app.app_context():
            reports.append(deliver_due(name, batch_size=25))

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    ids = smtp_server.message_ids()
    assert len(ids) == count and len(set(ids)) == count
    assert sum(r.sent for r in reports) == count
    assert statuses() == {"sent": count}


@pytest.mark.parametrize(
    "address",
    [
        "zoe@example.com",
        "Zoe.O-Brien+events@mail.example.co.uk",
        "a_b@x-y.example",
        "person7@bench7.example",
        '"zoe obrien"@example.com',
        "Zoë@example.com",
        "zoe@bücher.example",
        "zoe..obrien@example.com",
        ".zoe@example.com",
        "zoe@example..com",
        "zoe@example.com.",
        "Zoe <zoe@example.com>",
        "zoe@[192.0.2.1]",
        "zoe",
        "",
    ],
)
def test_the_envelope_address_is_what_smtplib_would_write(address):
    """`backends.envelope_address` skips smtplib's parser only for the common form, which the
    parser leaves as it is: either way MAIL FROM and RCPT TO carry what `sendmail` would send."""
    assert envelope_address(address) == smtplib.quoteaddr(address)


@pytest.mark.parametrize(
    "address",
    ["zoe@example.com\r\nRCPT TO:<thief@evil.example>", "zoe@example.com\n", " zoe@example.com",
     "zoe@example.com ", "zoe obrien@example.com", "zoe@exa mple.com", "zoe@example.com>",
     "<zoe@example.com", '"zoe"@example.com', "zoe@@example.com", "zoe@"],
)  # fmt: skip
def test_only_the_common_form_of_an_address_is_plain(address):
    assert not is_plain_address(address)


def test_the_suppressed_among_a_batchs_addresses_are_found_in_one_query_with_their_reasons(app):
    """`suppression_reasons` asks with `core.dialects.one_of`: one array on PostgreSQL, an IN list
    on SQLite; either way the same answer, for a batch's worth of addresses or none."""
    for n in range(0, 300, 7):
        services.suppress(
            f"Reader{n}@Example.com", reason=services.BOUNCE if n % 2 else "unsubscribe"
        )
    db.session.commit()
    asked = [f"reader{n}@example.com" for n in range(300)] + ["  READER7@example.COM "]

    found = services.suppression_reasons(asked)

    assert found == {
        f"reader{n}@example.com": services.BOUNCE if n % 2 else "unsubscribe"
        for n in range(0, 300, 7)
    }
    assert services.suppression_reasons([]) == {}
    assert services.suppression_reasons(["nobody@example.com"]) == {}
    statement = db.select(Suppression.id).where(one_of(Suppression.email_hash, ["a", "b"]))
    sql = str(statement.compile(dialect=db.session.get_bind().dialect))
    assert ("= ANY (" in sql) if on_postgresql() else (" IN (" in sql)
