"""The parts of an emailed invitation (RFC 6047) and of the check-in code, read back strictly by the
standard library's parser: content types, the method, the file name, and headers a hostile event
title cannot break."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import icalendar
import pytest

from chamber.calendar.ics import ics_filename
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.mime import (
    InlineImage,
    Outgoing,
    OutgoingAttachment,
    build_email,
    qr_png,
    safe_filename,
)
from chamber.mail.models import OutboxMessage
from chamber.registration import notifications
from chamber.registration.models import Delegate
from chamber.registration.services import DelegateDetails
from tests.factories import make_booking

STRICT = policy.default.clone(raise_on_defect=True)
START = datetime(2027, 4, 14, 8, 0, tzinfo=UTC)  # 09:00 in London
HOSTILE = 'The "Big" seminar\r\nBcc: evil@example.com =?utf-8?q?=0D=0ABcc:_x?= – Café 李 🚀'


def strictly(raw: bytes) -> EmailMessage:
    """The message parsed by the standard library, refusing any defect in any part."""
    message = message_from_bytes(raw, policy=STRICT)
    for part in message.walk():
        assert not part.defects, part.defects
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)
    return message


def sent_to(smtp_server, address: str) -> list[EmailMessage]:
    return [
        strictly(raw)
        for raw in smtp_server.handler.received
        if address in message_from_bytes(raw, policy=policy.default)["To"]
    ]


@pytest.fixture
def booked(make_event, smtp_server):
    """A published event with a hostile title and one confirmed delegate, emails delivered."""

    def book(title: str = "Cybercrime seminar"):
        event = make_event(starts_at=START, ends_at=START + timedelta(hours=2), title=title)
        booking = make_booking(
            event, DelegateDetails(name="Zoë O'Brien", email="zoe@example.com"), commit=False
        )
        notifications.booking_emails(event, booking)
        db.session.commit()
        deliver_due()
        statuses = db.session.scalars(db.select(OutboxMessage.last_error)).all()
        assert statuses and not any(statuses), statuses
        (message,) = [m for m in sent_to(smtp_server, "zoe@example.com") if calendar_parts(m)]
        return event, message

    return book


def calendar_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]


def test_the_confirmation_is_text_html_and_the_invitation_with_a_calendar_file(booked):
    event, message = booked()
    assert message.get_content_type() == "multipart/mixed"
    alternative, attached = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, related, invitation = alternative.get_payload()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"

    # The invitation, as RFC 6047 has it: the last alternative, with its method and charset.
    assert invitation.get_content_type() == "text/calendar"
    assert invitation.get_param("method") == "REQUEST"
    assert invitation.get_content_charset() == "utf-8"
    assert invitation.get_content_disposition() is None
    # The same bytes as a file to keep: text/calendar too, with the method and the title's name.
    assert attached.get_content_type() == "text/calendar"
    assert attached.get_param("method") == "REQUEST"
    assert attached.get_content_charset() == "utf-8"
    assert attached.get_content_disposition() == "attachment"
    assert attached.get_filename() == "cybercrime-seminar.ics"
    assert attached.get_param("name") == "cybercrime-seminar.ics"
    ics = attached.get_payload(decode=True)
    assert ics == invitation.get_payload(decode=True)
    calendar = icalendar.Calendar.from_ical(ics)
    assert calendar["METHOD"] == "REQUEST"
    (vevent,) = calendar.walk("VEVENT")
    assert vevent.decoded("DTSTART").astimezone(UTC) == START


def test_a_cancelled_place_is_a_cancel_in_both_parts(app, booked):
    event, _ = booked()
    delegate = db.session.scalar(db.select(Delegate).where(Delegate.event_id == event.id))
    invite = notifications.invite(event, delegate, "CANCEL")
    attachment = OutgoingAttachment(invite.filename, invite.content_type, invite.content)
    raw = build_email(
        outgoing(attachments=(attachment,)),
        sender="Chamber <events@chamber.example>",
        text_body="Cancelled",
        html_body="<p>Cancelled</p>",
        unsubscribe_url=None,
    )
    invitation, attached = calendar_parts(strictly(raw))
    assert invitation.get_param("method") == attached.get_param("method") == "CANCEL"
    assert attached.get_filename() == "cybercrime-seminar.ics"
    assert icalendar.Calendar.from_ical(attached.get_payload(decode=True))["METHOD"] == "CANCEL"


@pytest.mark.parametrize(
    ("title", "filename"),
    [
        (HOSTILE, "the-big-seminar-bcc-evil-example-com-utf-8-q-0d-0abcc-x-café.ics"),
        ('"; filename="evil.exe', "filename-evil-exe.ics"),
        ("=?utf-8?q?evil.exe?=", "utf-8-q-evil-exe.ics"),
        ("{{ config }} ' OR 1=1 --", "config-or-1-1.ics"),
        # Control characters only (no NUL: PostgreSQL cannot store it, and forms refuse it).
        ("\x07\x1b\u202e", "event.ics"),
    ],
)
def test_a_hostile_title_gives_one_correct_header_and_a_plain_file_name(booked, title, filename):
    event, message = booked(title)
    assert ics_filename(event.title) == filename
    _, attached = calendar_parts(message)
    assert attached.get_filename() == filename
    raw = attached.as_bytes(policy=policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    headers = re.findall(r"^([A-Za-z-]+):", head, re.M)
    assert headers == ["Content-Type", "Content-Disposition", "Content-Transfer-Encoding"]
    assert "Bcc" not in message
    # The subject (which names the event) arrives as one header, with the title's text as typed.
    if "=?" in title:
        assert " ".join(title.split()) in message["Subject"]


# --- the builder alone, with a file name no product code would pass ---------------------------


def outgoing(**fields) -> Outgoing:
    values = dict(
        id=1,
        kind_respects_suppression=False,
        to_address="zoe@example.com",
        to_name="Zoë",
        reply_to=None,
        subject="Your place",
        text_body="",
        html_body="",
        message_id="<1@chamber.example>",
        link_nonce=None,
        created_at=datetime(2027, 1, 1, tzinfo=UTC),
        attempts=0,
        attachments=(),
    )
    values.update(fields)
    return Outgoing(**values)


@pytest.mark.parametrize(
    "name",
    [
        'a "quoted" name.ics',
        "two\r\nlines.ics",
        "Café – 李 🚀.ics",
        "=?utf-8?q?=0D=0ABcc:_evil@example.com?=.ics",
        "../../etc/passwd",
        "\x00\x1b[31m.ics",
    ],
)
def test_any_file_name_is_written_as_one_safe_header(name):
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    attachment = OutgoingAttachment(name, "text/calendar; charset=utf-8; method=REQUEST", ics)
    raw = build_email(
        outgoing(attachments=(attachment,)),
        sender="Chamber <events@chamber.example>",
        text_body="Hello",
        html_body="<p>Hello</p>",
        unsubscribe_url=None,
    )
    message = strictly(raw)
    _, attached = message.get_payload()
    filename = attached.get_filename()
    assert filename == safe_filename(name)
    assert not re.search(r"[\x00-\x1f\x7f\"/\\\\?=]", filename), filename
    assert attached.get_param("method") == "REQUEST"
    assert attached.get_payload(decode=True) == ics
    assert set(message.keys()) == {
        "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
        "Content-Type",
    }  # fmt: skip


def test_safe_file_names_keep_letters_of_any_script():
    assert safe_filename("Café – 李 seminar.ics") == "Café – 李 seminar.ics".replace("–", "-")
    assert safe_filename("") == "attachment"
    assert safe_filename("...") == "attachment"
    assert safe_filename("a/b\\c.ics") == "a-b-c.ics"


# --- the check-in code travels in the message ------------------------------------------------


def test_the_check_in_code_is_an_inline_picture_drawn_from_the_minted_link(app, booked):
    _, message = booked()
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    (img,) = re.findall(r"<img [^>]*>", html)
    cid = re.search(r'src="cid:([^"]+)"', img).group(1)
    assert 'alt="Your check-in code: a QR code for the door team to scan"' in img
    (image,) = [part for part in message.walk() if part["Content-ID"] == f"<{cid}>"]
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image.get_filename().endswith(".png")
    # No picture is fetched from the site: nothing in the HTML points at it.
    assert "/qr/" not in html and "http" not in img
    # The code is the check-in link written out in both parts, the one minted for this message.
    scan = re.search(r"https?://\S+/staff/checkin/scan/[A-Za-z0-9_-]+", text).group(0)
    assert scan in html
    assert image.get_content() == qr_png(scan)


def test_a_typed_look_alike_code_marker_draws_nothing(app, booked, smtp_server):
    """A code marker typed into a name or title has no nonce of the message: it stays text and no
    picture is made from it."""
    title = "Seminar [[code:" + "0" * 32 + ":checkin:1]]"
    _, message = booked(title)
    pictures = [p for p in message.walk() if p.get_content_maintype() == "image"]
    assert len(pictures) == 1  # only the delegate's own code
    assert "[[code:" + "0" * 32 + ":checkin:1]]" in message.get_body(("plain",)).get_content()


def test_a_picture_needs_a_plain_content_id():
    bad = InlineImage("a>\r\nBcc: x@y", "x.png", "image/png", b"\x89PNG")
    with pytest.raises(ValueError, match="Content-ID"):
        build_email(
            outgoing(),
            sender="Chamber <events@chamber.example>",
            text_body="Hi",
            html_body="<p>Hi</p>",
            unsubscribe_url=None,
            images=[bad],
        )
