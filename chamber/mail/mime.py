"""Turning an outbox row into the bytes of a standard email: multipart/alternative text and HTML
in UTF-8 quoted-printable (and a calendar invitation, RFC 6047), attachments, and the RFC 8058
one-click unsubscribe headers.

Every header is made by the `email` package's structured header classes (addresses from
`email.headerregistry.Address`), so a line break typed into a name can never start a header of its
own. The bodies are written out directly: the package's MIME classes spend several milliseconds a
message re-encoding them in pure Python, and that cost, not SMTP, bounded the worker's throughput.
`tests/test_mail.py` parses what this writes with the standard library's parser.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

CRLF = "\r\n"


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Outgoing:
    """What the worker needs of an outbox row, read once so that commits never reload it."""

    id: int
    kind_respects_suppression: bool
    to_address: str
    to_name: str
    reply_to: str | None
    subject: str
    text_body: str
    html_body: str
    message_id: str
    link_nonce: str | None
    created_at: datetime
    attempts: int
    attachments: tuple[OutgoingAttachment, ...]


def _quoted_printable(text: str) -> str:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", CRLF)
    return binascii.b2a_qp(normalised.encode("utf-8"), istext=True).decode("ascii")


def _text_part(text: str, subtype: str, extra: str = "") -> str:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{extra}{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        f"{_quoted_printable(text)}"
    )


def _attachment_part(attachment: OutgoingAttachment) -> str:
    maintype, _, rest = attachment.content_type.partition("/")
    subtype, *params = [part.strip() for part in rest.split(";")]
    extra = "".join(
        f'; {name.strip()}="{value.strip().strip(chr(34))}"'
        for name, _, value in (param.partition("=") for param in params)
        if value and name.strip().lower() != "charset"
    )  # e.g. method="REQUEST", which calendar clients read from the part's type
    filename = attachment.filename.replace('"', "")
    disposition = f'Content-Disposition: attachment; filename="{filename}"{CRLF}'
    if maintype == "text":
        return disposition + _text_part(attachment.content.decode("utf-8"), subtype, extra)
    encoded = base64.encodebytes(attachment.content).decode("ascii").replace("\n", CRLF)
    return (
        f"Content-Type: {maintype}/{subtype}{extra}{CRLF}{disposition}"
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{encoded}"
    )


def _itip_method(attachment: OutgoingAttachment) -> str | None:
    """The METHOD of a calendar invitation (text/calendar with a method parameter), else None."""
    media_type, *params = [part.strip() for part in attachment.content_type.split(";")]
    if media_type.lower() != "text/calendar":
        return None
    for name, _, value in (param.partition("=") for param in params):
        if name.strip().lower() == "method" and value.strip().strip('"').isalpha():
            return value.strip().strip('"').upper()
    return None


def _parts(message: Outgoing, text_body: str, html_body: str) -> tuple[list[str], list[str]]:
    """(alternatives, attachments). An invitation goes in both, as calendar clients expect
    (RFC 6047): a text/calendar alternative with its method, which Outlook and Gmail show as an
    invitation, and the same bytes as an invite.ics file to download."""
    alternatives = [_text_part(text_body, "plain"), _text_part(html_body, "html")]
    attachments = []
    for attachment in message.attachments:
        method = _itip_method(attachment)
        if method:
            content = attachment.content.decode("utf-8")
            alternatives.append(_text_part(content, "calendar", f"; method={method}"))
            attachment = OutgoingAttachment(
                attachment.filename, "application/ics", attachment.content
            )
        attachments.append(_attachment_part(attachment))
    return alternatives, attachments


def _multipart(subtype: str, parts: list[str]) -> tuple[str, str]:
    # A fixed boundary is safe: every part's body is quoted-printable or base64, and neither can
    # hold "=_" (quoted-printable writes "=" as "=3D"; base64 has no "_"). Being fixed, the
    # Content-Type header is the same in every message, and folded once.
    boundary = f"=_chamber_{subtype}"
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}"
    return f'multipart/{subtype}; boundary="{boundary}"', body


# One header: its first line, then only continuation lines (a line break followed by white space).
_ONE_HEADER = re.compile(r"[^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n")


def _header(name: str, value: object) -> str:
    """One header, parsed and folded by the email package's structured header classes (an address
    header from an `Address`): a value with a line break is refused, never written. The folded
    result is checked to be one header as well: Python before 3.11.10 decodes RFC 2047 words in a
    value and folds a CR or LF hidden in them out raw (CVE-2024-6923)."""
    _name, header = SMTP.header_store_parse(name, value)
    folded = header.fold(policy=SMTP)
    if not _ONE_HEADER.fullmatch(folded):
        raise ValueError(f"the {name} header would break into more than one header")
    return folded


_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")  # printable ASCII, no < > or space


def _message_id_header(message_id: str) -> str:
    """Our own Message-ID (`email.utils.make_msgid`, made when the message was queued), checked
    to be one token of printable ASCII; anything else is folded by the header class."""
    if _MESSAGE_ID.fullmatch(message_id):
        return f"Message-ID: {message_id}{CRLF}"
    return _header("Message-ID", message_id)


def _address_header(name: str, address: Address) -> str:
    """An address header from an `Address`, which has refused line breaks and knows the parts;
    `formataddr` quotes what needs quoting and writes a name in another script as encoded words."""
    return f"{name}: {formataddr((address.display_name, address.addr_spec), charset='utf-8')}{CRLF}"


@lru_cache(maxsize=4096)
def _shared_header(name: str, value: str) -> str:
    """A header whose value many messages share (the sender, the subject of a mailing, the second
    they were queued in, the content type): parsed and folded once."""
    if name == "From":
        display_name, email = parseaddr(value)
        return _header(name, Address(display_name=display_name, addr_spec=email))
    return _header(name, value)


def build_email(
    message: Outgoing,
    *,
    sender: str,
    text_body: str,
    html_body: str,
    unsubscribe_url: str | None,
    to_address: str | None = None,
) -> bytes:
    """The email for `message` as wire bytes (CRLF), with its secret links already minted, to
    `to_address` (the message's own address, or its ASCII form).

    Raises ValueError for a header that cannot be written safely (a line break in a name, say)."""
    to = Address(display_name=message.to_name, addr_spec=to_address or message.to_address)
    alternatives, attachments = _parts(message, text_body, html_body)
    content_type, body = _multipart("alternative", alternatives)
    if attachments:
        inner = f"Content-Type: {content_type}{CRLF}{CRLF}{body}"
        content_type, body = _multipart("mixed", [inner, *attachments])
    head = [
        _shared_header("From", sender),
        _address_header("To", to),
        *([_header("Reply-To", message.reply_to)] if message.reply_to else []),
        _shared_header("Subject", message.subject),
        _shared_header("Date", format_datetime(message.created_at)),
        _message_id_header(message.message_id),
        _shared_header("Auto-Submitted", "auto-generated"),
        *(
            [
                _header("List-Unsubscribe", f"<{unsubscribe_url}>"),
                _shared_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
            if unsubscribe_url
            else []
        ),  # fmt: skip
        _shared_header("MIME-Version", "1.0"),
        _shared_header("Content-Type", content_type),
    ]
    return ("".join(head) + CRLF + body).encode("ascii")
