"""Where email goes: an SMTP server, `.eml` files in the instance folder, the console, or memory.

A backend is opened once per batch (one SMTP connection for many messages) and says, for each
message, whether delivery failed for good or only for now. `send` takes a `meanwhile`: work that
must be done before this message can leave (delivery records the message sent before it), which
the SMTP backend does while the server reads the message's first command.
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


class TemporaryFailure(Exception):
    """Try again later: connection refused, timeout, a 4xx reply."""


class PermanentFailure(Exception):
    """Do not try again: a 5xx reply for this recipient."""


class Backend(Protocol):
    def __enter__(self) -> Backend: ...
    def __exit__(self, *exc: object) -> None: ...
    def send(
        self, email: bytes, sender: str, recipient: str, meanwhile: Callable[[], None] = ...
    ) -> None:
        """Send one message, having called `meanwhile` once before it can leave."""


def _nothing() -> None:
    return None


class SMTPBackend:
    # Sending waits on the server: delivery prepares the next message meanwhile (`mail.delivery`).
    waits_on_network = True

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
            raise TemporaryFailure(
                f"SMTP login refused: {error.smtp_code} {error.smtp_error!r}"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(f"cannot reach {self.host}:{self.port}: {error}") from error
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
        self, email: bytes, sender: str, recipient: str, meanwhile: Callable[[], None] = _nothing
    ) -> None:
        """`sendmail`, in its steps (MAIL, RCPT, DATA), with `meanwhile` run while the server reads
        MAIL FROM: nothing can leave before the message's content does, after DATA."""
        if self.connection is None:
            meanwhile()  # no connection, nothing to overlap it with
            meanwhile = _nothing
            self.connection = self._connect()
        connection = self.connection
        try:
            connection.ehlo_or_helo_if_needed()
            size = f" SIZE={len(email)}" if connection.has_extn("size") else ""
            connection.putcmd("mail", f"FROM:{smtplib.quoteaddr(sender)}{size}")
            meanwhile()
            code, reply = connection.getreply()
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            code, reply = connection.data(email)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPRecipientsRefused as error:
            self._reset_after_error()
            code, reply = next(iter(error.recipients.values()))
            raise _classified(code, reply) from error
        except smtplib.SMTPResponseException as error:
            self._reset_after_error()
            raise _classified(error.smtp_code, error.smtp_error) from error
        except (TimeoutError, OSError, smtplib.SMTPException) as error:
            self._drop_connection()
            raise TemporaryFailure(f"connection lost: {error}") from error

    def _reset_after_error(self) -> None:
        try:
            self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _classified(code: int, reply: bytes | str) -> Exception:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    description = f"{code} {text}".strip()
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
        self, email: bytes, sender: str, recipient: str, meanwhile: Callable[[], None] = _nothing
    ) -> None:
        meanwhile()
        # Named so that a folder listing reads in the order messages were sent.
        safe = re.sub(r"[^A-Za-z0-9@._-]", "_", recipient)[:100]
        path = self.folder / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}-{safe}.eml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(email)


class ConsoleBackend:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def __enter__(self) -> ConsoleBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(
        self, email: bytes, sender: str, recipient: str, meanwhile: Callable[[], None] = _nothing
    ) -> None:
        meanwhile()
        self.stream.write(email.decode("ascii").replace("\r\n", "\n") + "\n" + "-" * 72 + "\n")
        self.stream.flush()


class MemoryBackend:
    """Keeps what it is given, for tests that look at messages without a server."""

    outbox: list[tuple[str, bytes]] = []

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(
        self, email: bytes, sender: str, recipient: str, meanwhile: Callable[[], None] = _nothing
    ) -> None:
        meanwhile()
        MemoryBackend.outbox.append((recipient, email))


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
