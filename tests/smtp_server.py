"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can be told to
refuse: a scripted reply per DATA (e.g. 451 then 250), or a 550 for chosen recipients."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingHandler:
    def __init__(self):
        self.received: list[bytes] = []
        self.recipients: list[list[str]] = []  # each accepted message's envelope recipients
        self.replies: deque[str] = deque()  # replies to the next DATA commands, then 250
        self.refuse: dict[str, str] = {}  # recipient -> RCPT reply
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)  # a slow server, so a worker can be caught mid-batch
        with self.lock:
            reply = self.replies.popleft() if self.replies else None
            if reply and not reply.startswith("250"):
                return reply
            self.received.append(envelope.original_content or envelope.content)
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for raw in self.handler.received]

    def message_ids(self) -> list[str]:
        headers = BytesHeaderParser()  # headers only: fast enough for thousands of messages
        return [headers.parsebytes(raw)["Message-ID"] for raw in self.handler.received]

    def config(self) -> dict:
        return {
            "MAIL_BACKEND": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": self.port,
            "SMTP_SECURITY": "none",
            "SMTP_TIMEOUT": 5,
        }
