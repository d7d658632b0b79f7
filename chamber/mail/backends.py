"""Where email goes: an SMTP server, `.eml` files in the instance folder, the console, or memory.

A backend is opened once per batch (one SMTP connection for many messages) and says, for each
message, whether delivery failed for good or only for now. `send` also takes the caller's work, to
do while the message is on its way (`mail.delivery` records the message before it and prepares
the next): over SMTP, while the server reads.
"""

from __future__ import annotations

import os
import re
import secrets
import smtplib
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chamber.core.addresses import is_plain_address


class TemporaryFailure(Exception):
    """Try again later: connection refused, timeout, a 4xx reply."""


class ServerUnavailable(TemporaryFailure):
    """The mail server takes no message now, whichever it is: it cannot be reached or stops
    answering, refuses our login or our sender, or says it is over its quota. No message is at
    fault: the batch is handed back untouched, and sending rests a while (`delivery`)."""


# Replies that are about the server or our account, never one message: 421 (closing), auth
# required or refused, and the enhanced codes for auth, quotas and a system that is full.
_SERVER_CODES = {421, 454, 530, 534, 535, 538}
_SERVER_STATUS = re.compile(
    r"^\s*(?:[45]\.(?:7\.8|7\.9|3\.1|3\.2|4\.5)|4\.7\.0)\b|authentication (?:required|failed)",
    re.IGNORECASE,
)


class PermanentFailure(Exception):
    """Do not try again: a 5xx reply."""


class Bounce(PermanentFailure):
    """A hard bounce: the server refused this recipient's address for good (a 5xx reply to RCPT,
    or one that names the recipient, that says the address is bad: see `is_address_refusal`)."""


class Backend(Protocol):
    def __enter__(self) -> Backend: ...
    def __exit__(self, *exc: object) -> None: ...
    def send(
        self,
        email: bytes,
        sender: str,
        recipient: str,
        *,
        before_leaving: Callable[[], None] = ...,
        meanwhile: Callable[[], None] = ...,
    ) -> None:
        """Send one message. `before_leaving` is called before it can leave, and `meanwhile`
        once it has been handed over; each at most once (not at all if sending fails first)."""


def _nothing() -> None:
    return None


class SMTPBackend:
    def __init__(self, config: dict[str, Any]):
        self.host = config["SMTP_HOST"]
        self.port = int(config["SMTP_PORT"])
        self.security = config["SMTP_SECURITY"]  # starttls, tls or none
        self.username = config.get("SMTP_USERNAME") or None
        self.password = config.get("SMTP_PASSWORD") or None
        self.timeout = float(config["SMTP_TIMEOUT"])
        self.connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context() if self.security != "none" else None
        try:
            if self.security == "tls":
                connection = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    connection.starttls(context=context)
            if self.username:
                connection.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise ServerUnavailable(
                f"SMTP login refused: {error.smtp_code} {error.smtp_error!r}"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            raise ServerUnavailable(f"cannot reach {self.host}:{self.port}: {error}") from error
        return connection

    def __enter__(self) -> SMTPBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None

    def send(
        self,
        email: bytes,
        sender: str,
        recipient: str,
        *,
        before_leaving: Callable[[], None] = _nothing,
        meanwhile: Callable[[], None] = _nothing,
    ) -> None:
        """`sendmail`, step by step, with the caller's work done while the server reads instead of
        after its reply: `before_leaving` while it reads DATA (a message leaves only with its
        content, after DATA's reply), `meanwhile` while it reads the content."""
        if self.connection is None:
            before_leaving()  # nothing to overlap it with
            before_leaving = _nothing
            self.connection = self._connect()
        connection = self.connection
        content_sent = False  # a connection lost after the content may be this message's doing
        try:
            connection.ehlo_or_helo_if_needed()
            size = f" SIZE={len(email)}" if connection.has_extn("size") else ""
            connection.putcmd("mail", f"FROM:{envelope_address(sender)}{size}")
            code, reply = connection.getreply()
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            connection.putcmd("rcpt", f"TO:{envelope_address(recipient)}")  # as `rcpt` would
            code, reply = connection.getreply()
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            connection.putcmd("data")
            before_leaving()
            code, reply = connection.getreply()
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            connection.send(_data(email))
            content_sent = True
            meanwhile()
            code, reply = connection.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPSenderRefused as error:
            # Our one sender, refused for our account (auth, a quota) stops every message; for
            # this message's own sake (too big: 552 5.3.4) only this one.
            refusal = _classified(error.smtp_code, error.smtp_error)
            if isinstance(refusal, ServerUnavailable):
                self._drop_connection()
            else:
                self._reset_after_error()
            raise refusal from error
        except smtplib.SMTPRecipientsRefused as error:
            self._reset_after_error()
            code, reply = next(iter(error.recipients.values()))
            raise _classified(code, reply, about_recipient=True) from error
        except smtplib.SMTPResponseException as error:
            self._reset_after_error()
            raise _classified(
                error.smtp_code, error.smtp_error, about_recipient=_names(error, recipient)
            ) from error
        except (TimeoutError, OSError, smtplib.SMTPException) as error:
            self._drop_connection()
            lost = TemporaryFailure if content_sent else ServerUnavailable
            raise lost(f"connection lost: {error}") from error
        except BaseException:  # the caller's own work stopped it (`before_leaving`): the
            self._drop_connection()  # message never leaves, and the server is mid-DATA
            raise

    def _reset_after_error(self) -> None:
        try:
            self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def envelope_address(address: str) -> str:
    """The address in angle brackets, as `smtplib.quoteaddr` writes it for MAIL FROM and RCPT TO;
    an address of the common form (`core.addresses.is_plain_address`) without its parser."""
    if is_plain_address(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _data(email: bytes) -> bytes:
    """The content as DATA sends it: a line that starts with a dot gets another, then the end."""
    stuffed = email.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _names(error: smtplib.SMTPResponseException, recipient: str) -> bool:
    """Whether a refusal outside RCPT (after DATA, say) names the recipient's address."""
    if isinstance(error, smtplib.SMTPSenderRefused):
        return False  # MAIL FROM: about our sender, never the recipient
    return bool(recipient) and recipient.lower() in _text(error.smtp_error).lower()


_ENHANCED_STATUS = re.compile(r"^\s*5\.(\d{1,3})\.(\d{1,3})\b")


def is_address_refusal(code: int, reply: bytes | str) -> bool:
    """Whether a 5xx refusal says the address itself is bad, so that mailing it again is
    pointless: with an enhanced status code (RFC 3463), 5.1.x (bad mailbox, bad domain, no
    such user) or 5.2.1 (mailbox disabled); without one, 550, 551 or 553. A 5xx for anything
    else (5.7.1 relaying denied or a policy block, 5.2.2 mailbox full, 554 with no detail, a
    refused login) is about us or the moment, not the address: the message fails, but the
    address is not suppressed, or one wrong setting would suppress a whole mailing list."""
    if not 500 <= code < 600:
        return False
    enhanced = _ENHANCED_STATUS.match(_text(reply))
    if enhanced:
        subject, detail = enhanced.groups()
        return subject == "1" or (subject, detail) == ("2", "1")
    return code in (550, 551, 553)


def _classified(code: int, reply: bytes | str, *, about_recipient: bool = False) -> Exception:
    description = f"{code} {_text(reply)}".strip()
    if code in _SERVER_CODES or _SERVER_STATUS.search(_text(reply)):
        return ServerUnavailable(description)
    if about_recipient and is_address_refusal(code, reply):
        return Bounce(description)
    return PermanentFailure(description) if 500 <= code < 600 else TemporaryFailure(description)


class FileBackend:
    """Each message as an `.eml` file in the instance folder: what a newcomer can open."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self) -> FileBackend:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # messages hold personal data
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(
        self,
        email: bytes,
        sender: str,
        recipient: str,
        *,
        before_leaving: Callable[[], None] = _nothing,
        meanwhile: Callable[[], None] = _nothing,
    ) -> None:
        before_leaving()
        # Named so that a folder listing reads in the order messages were sent.
        safe = re.sub(r"[^A-Za-z0-9@._-]", "_", recipient)[:100]
        path = self.folder / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}-{safe}.eml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(email)
        meanwhile()


class ConsoleBackend:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def __enter__(self) -> ConsoleBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(
        self,
        email: bytes,
        sender: str,
        recipient: str,
        *,
        before_leaving: Callable[[], None] = _nothing,
        meanwhile: Callable[[], None] = _nothing,
    ) -> None:
        before_leaving()
        self.stream.write(email.decode("ascii").replace("\r\n", "\n") + "\n" + "-" * 72 + "\n")
        self.stream.flush()
        meanwhile()


class MemoryBackend:
    """Keeps what it is given, for tests that look at messages without a server."""

    outbox: list[tuple[str, bytes]] = []

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(
        self,
        email: bytes,
        sender: str,
        recipient: str,
        *,
        before_leaving: Callable[[], None] = _nothing,
        meanwhile: Callable[[], None] = _nothing,
    ) -> None:
        before_leaving()
        MemoryBackend.outbox.append((recipient, email))
        meanwhile()


def backend_for(config: dict[str, Any], instance_path: str) -> Backend:
    name = config["MAIL_BACKEND"]
    if name == "smtp":
        return SMTPBackend(config)
    if name == "file":
        return FileBackend(Path(config.get("MAIL_FILE_PATH") or Path(instance_path) / "mail"))
    if name == "console":
        return ConsoleBackend()
    if name == "memory":
        return MemoryBackend()
    raise ValueError(f"unknown mail backend {name!r}: choose smtp, file, console or memory")
