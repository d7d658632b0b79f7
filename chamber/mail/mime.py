"""Turning an outbox row into the bytes of a standard email: multipart/alternative text and HTML
in UTF-8 quoted-printable (the HTML with its inline images in a multipart/related, RFC 2387; and a
calendar invitation, RFC 6047), attachments, and the RFC 8058 one-click unsubscribe headers.

Every header is made by the `email` package's structured header classes (addresses from
`email.headerregistry.Address`), so a line break typed into a name can never start a header of its
own. The bodies are written out directly: the package's MIME classes spend several milliseconds a
message re-encoding them in pure Python, and that cost, not SMTP, bounded the worker's throughput.
`tests/test_mail.py` parses what this writes with the standard library's parser.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

import segno

from chamber.core.addresses import is_plain_address

CRLF = "\r\n"


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class InlineImage:
    """A picture the HTML shows by `cid:<content_id>`, carried in the message itself, so it shows
    in clients that block remote images."""

    content_id: str  # without the angle brackets, e.g. "checkin-code-42@chamber.example"
    filename: str
    content_type: str
    content: bytes


def qr_png(text: str) -> bytes:
    """A QR code for `text` (a link we minted): medium error correction, 8 pixels a module, the
    standard quiet zone."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


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
    key: str = ""
    kind: str = "transactional"  # a `MailKind` value
    bulk: bool = False


def _quoted_printable(text: str) -> str:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", CRLF)
    return binascii.b2a_qp(normalised.encode("utf-8"), istext=True).decode("ascii")


def _text_part(text: str, subtype: str, extra: str = "") -> str:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{extra}{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        f"{_quoted_printable(text)}"
    )


_FILENAME_DROPPED = re.compile(r"[^\w.() -]+")  # keeps letters and digits of any script


def safe_filename(name: str, default: str = "attachment") -> str:
    """A file name to offer: letters and digits (any script), spaces, dots, hyphens, underscores and
    brackets, and nothing else: no line break, quote, slash, control character or encoded word
    survives to reach a header. Empty after cleaning (or only dots): `default`."""
    cleaned = _FILENAME_DROPPED.sub("-", unicodedata.normalize("NFC", name))
    cleaned = re.sub(r"-{2,}", "-", " ".join(cleaned.split()))[:120].strip(" .-")
    return cleaned or default


def _parameterised(name: str, value: str, params: dict[str, str]) -> str:
    """A Content-Type or Content-Disposition header with its parameters, written by the email
    package's structured parameters (quoted, or RFC 2231 encoded outside ASCII, folded), and checked
    to be one header."""
    holder = EmailMessage(policy=SMTP)
    holder[name] = value
    for param, param_value in params.items():
        holder.set_param(param, param_value, header=name)
    folded = holder[name].fold(policy=SMTP)
    if not _ONE_HEADER.fullmatch(folded):
        raise ValueError(f"the {name} header would break into more than one header")
    return folded


def _base64(content: bytes) -> str:
    return base64.encodebytes(content).decode("ascii").replace("\n", CRLF)


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """('text/calendar', {'method': 'REQUEST', ...}) from a stored content type."""
    media_type, *params = [part.strip() for part in content_type.split(";")]
    found = {}
    for name, _, value in (param.partition("=") for param in params):
        if value.strip():
            found[name.strip().lower()] = value.strip().strip('"')
    return media_type.lower(), found


def _attachment_part(attachment: OutgoingAttachment, method: str | None) -> str:
    """An attachment, base64, offered under its (cleaned) file name. An invitation's calendar is
    `text/calendar` with its charset and method, as RFC 6047 asks of every calendar part."""
    media_type, _params = _media_type(attachment.content_type)
    filename = safe_filename(attachment.filename)
    params = {"charset": "utf-8"} if media_type.startswith("text/") else {}
    if method:
        params["method"] = method
    if not re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", media_type):
        media_type = "application/octet-stream"
    return (
        _parameterised("Content-Type", media_type, {**params, "name": filename})
        + _parameterised("Content-Disposition", "attachment", {"filename": filename})
        + f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{_base64(attachment.content)}"
    )


def _inline_image_part(image: InlineImage) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}@[A-Za-z0-9.-]{1,200}", image.content_id):
        raise ValueError(f"not a Content-ID: {image.content_id!r}")
    filename = safe_filename(image.filename, "image")
    return (
        _parameterised("Content-Type", image.content_type, {"name": filename})
        + _parameterised("Content-Disposition", "inline", {"filename": filename})
        + f"Content-ID: <{image.content_id}>{CRLF}"
        + f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{_base64(image.content)}"
    )


def _itip_method(attachment: OutgoingAttachment) -> str | None:
    """The METHOD of a calendar invitation (text/calendar with a method parameter), else None."""
    media_type, params = _media_type(attachment.content_type)
    method = params.get("method", "")
    if media_type == "text/calendar" and method.isalpha() and method.isascii():
        return method.upper()
    return None


def _parts(
    message: Outgoing, text_body: str, html_body: str, images: Sequence[InlineImage]
) -> tuple[list[str], list[str]]:
    """(alternatives, attachments). The HTML goes with its inline images in a multipart/related.
    An invitation goes in both lists, as RFC 6047 and the big clients expect: a text/calendar
    alternative with its method, which Outlook and Gmail show as an invitation, and the same bytes
    as a text/calendar attachment with a file name (`<event title>.ics`), for clients that only
    offer a file and for people who want one."""
    html = _text_part(html_body, "html")
    if images:
        content_type, body = _multipart(
            "related", [html, *(_inline_image_part(image) for image in images)], 'type="text/html"'
        )
        html = f"Content-Type: {content_type}{CRLF}{CRLF}{body}"
    alternatives = [_text_part(text_body, "plain"), html]
    attachments = []
    for attachment in message.attachments:
        method = _itip_method(attachment)
        if method:
            content = attachment.content.decode("utf-8")
            alternatives.append(_text_part(content, "calendar", f"; method={method}"))
        attachments.append(_attachment_part(attachment, method))
    return alternatives, attachments


def _multipart(subtype: str, parts: list[str], extra: str = "") -> tuple[str, str]:
    # A fixed boundary is safe: every part's body is quoted-printable or base64, and neither can
    # hold "=_" (quoted-printable writes "=" as "=3D"; base64 has no "_"). Being fixed, the
    # Content-Type header is the same in every message, and folded once.
    boundary = f"=_chamber_{subtype}"
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}"
    return f'multipart/{subtype}; {extra + "; " if extra else ""}boundary="{boundary}"', body


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


def _address_header(name: str, display_name: str, address: str) -> str:
    """An address header. The address goes through an `Address`, which refuses line breaks and
    knows the parts, unless it has the common form (`core.addresses.is_plain_address`), which
    its parser would leave as it is; a line break in the name is refused either way. `formataddr`
    quotes what needs quoting and writes a name in another script as encoded words."""
    if not is_plain_address(address) or "\r" in display_name or "\n" in display_name:
        parsed = Address(display_name=display_name, addr_spec=address)
        display_name, address = parsed.display_name, parsed.addr_spec
    return f"{name}: {formataddr((display_name, address), charset='utf-8')}{CRLF}"


# A link we minted: printable ASCII without spaces or angle brackets, short enough for one line.
_HEADER_URL = re.compile(r"https?://[!-;=?-~]{1,900}")


def _list_unsubscribe_header(url: str) -> str:
    """List-Unsubscribe (RFC 2369, RFC 8058) holds the URL itself in angle brackets, on one line
    (it is well under the 998 characters a line may have). The header classes would fold a long
    URL as RFC 2047 encoded words, which mail clients do not decode in this header."""
    if not _HEADER_URL.fullmatch(url):
        raise ValueError("the unsubscribe link cannot be written in a header")
    return f"List-Unsubscribe: <{url}>{CRLF}"


@lru_cache(maxsize=4096)
def _shared_header(name: str, value: str) -> str:
    """A header whose value many messages share (the sender, the subject of a mailing, the second
    they were queued in, the content type): parsed and folded once."""
    if name == "From":
        display_name, email = parseaddr(value)
        return _header(name, Address(display_name=display_name, addr_spec=email))
    return _header(name, value)


def _date_header(created_at: datetime) -> str:
    """The Date: when the message was queued, to the second (a campaign's messages share a few)."""
    return _date_header_of_second(created_at.replace(microsecond=0))


@lru_cache(maxsize=1024)
def _date_header_of_second(created_at: datetime) -> str:
    return _shared_header("Date", format_datetime(created_at))


def _subject_header(subject: str) -> str:
    """The Subject. One that holds text looking like an RFC 2047 encoded word (an event title
    typed as `=?utf-8?q?...?=`) is written wholly as encoded words of its own, so a reader decodes
    it once, to the text as typed; the header class would decode it first and fold out what it
    hid (a line break, even)."""
    if "=?" not in subject:
        return _shared_header("Subject", subject)
    folded = (
        f"Subject: {Header(subject, 'utf-8', header_name='Subject').encode(linesep=CRLF)}{CRLF}"
    )
    if not _ONE_HEADER.fullmatch(folded):
        raise ValueError("the Subject header would break into more than one header")
    return folded


def build_email(
    message: Outgoing,
    *,
    sender: str,
    text_body: str,
    html_body: str,
    unsubscribe_url: str | None,
    to_address: str | None = None,
    images: Sequence[InlineImage] = (),
) -> bytes:
    """The email for `message` as wire bytes (CRLF), with its secret links already minted, to
    `to_address` (the message's own address, or its ASCII form).

    `images` are the pictures the HTML shows by `cid:` (the check-in code, drawn at send time).
    Raises ValueError for a header that cannot be written safely (a line break in a name, say)."""
    alternatives, attachments = _parts(message, text_body, html_body, images)
    content_type, body = _multipart("alternative", alternatives)
    if attachments:
        inner = f"Content-Type: {content_type}{CRLF}{CRLF}{body}"
        content_type, body = _multipart("mixed", [inner, *attachments])
    head = [
        _shared_header("From", sender),
        _address_header("To", message.to_name, to_address or message.to_address),
        *([_header("Reply-To", message.reply_to)] if message.reply_to else []),
        _subject_header(message.subject),
        _date_header(message.created_at),
        _message_id_header(message.message_id),
        _shared_header("Auto-Submitted", "auto-generated"),
        *(
            [
                _list_unsubscribe_header(unsubscribe_url),
                _shared_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
            if unsubscribe_url
            else []
        ),  # fmt: skip
        _shared_header("MIME-Version", "1.0"),
        _shared_header("Content-Type", content_type),
    ]
    return ("".join(head) + CRLF + body).encode("ascii")
