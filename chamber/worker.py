"""The background worker: delivers due outbox messages until stopped (and, later, surveys and
link checks). SIGTERM or Ctrl-C finishes the message in hand, hands back the rest, and exits."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable

from flask import Flask

from chamber.mail.delivery import DeliveryReport, deliver_due, due_count


class Worker:
    def __init__(
        self, app: Flask, *, worker_id: str | None = None, echo: Callable[[str], None] = print
    ):
        self.app = app
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.echo = echo
        self.stopping = threading.Event()

    def stop(self, *_signal_args) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run_once(self) -> DeliveryReport:
        with self.app.app_context():
            waiting = due_count()
            if waiting:
                self.echo(f"{waiting} message(s) due")

            def progress(report: DeliveryReport) -> None:
                self.echo(
                    f"  {report.handled}/{waiting} handled: {report.sent} sent, "
                    f"{report.retrying} to retry, {report.failed} failed, {report.suppressed} suppressed"
                )

            return deliver_due(self.worker_id, should_stop=self.stopping.is_set, on_batch=progress)

    def run(self) -> None:
        poll = self.app.config["WORKER_POLL_SECONDS"]
        self.echo(
            f"Worker {self.worker_id} started; checking every {poll}s. Stop with Ctrl-C or SIGTERM."
        )
        while not self.stopping.is_set():
            self.run_once()
            self.stopping.wait(poll)
        self.echo("Worker stopped.")
