"""The background worker. Each round it queues due surveys and reminders, runs retention once a
day, delivers due outbox messages, runs a due link check and an import waiting for it (each on
its own thread when running continuously, so a slow check or a large file never holds up mail).
SIGTERM or Ctrl-C finishes the work in hand, hands back the rest, and exits."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from chamber.campaigns.sending import send_due as send_campaigns
from chamber.core import heartbeat
from chamber.core.times import utcnow
from chamber.core.transactions import unit_of_work
from chamber.extensions import db
from chamber.mail.delivery import DeliveryReport, deliver_due, due_count
from chamber.members import import_jobs
from chamber.privacy import retention
from chamber.registration import reminders
from chamber.resources import health
from chamber.surveys.dispatch import DispatchReport, send_due


class Worker:
    def __init__(
        self, app: Flask, *, worker_id: str | None = None, echo: Callable[[str], None] = print
    ):
        self.app = app
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = utcnow()
        self.echo = echo
        self.stopping = threading.Event()
        # `run` checks links on a thread of its own, so that mail is not held up by a long check;
        # `run_once` alone (`chamber worker --once`, tests) checks them before it returns.
        self.links_in_background = False
        self._links_thread: threading.Thread | None = None
        self._imports_thread: threading.Thread | None = None  # the same, for imports

    def stop(self, *_signal_args) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run_once(self, now: datetime | None = None) -> DeliveryReport:
        """One round: dispatch due surveys and reminders, then deliver due mail. `now` moves the
        surveys' clock (tests travel in time instead of waiting)."""
        with self.app.app_context():
            self.dispatch_surveys(now)
            self.send_event_reminders(now)
            self.queue_campaigns(now)
            self.apply_retention(now)
            waiting = due_count()
            if waiting:
                self.echo(f"{waiting} message(s) due")

            def progress(report: DeliveryReport) -> None:
                self.echo(
                    f"  {report.handled}/{waiting} handled: {report.sent} sent, "
                    f"{report.retrying} to retry, {report.failed} failed, {report.suppressed} suppressed"
                )

            report = deliver_due(
                self.worker_id, should_stop=self.stopping.is_set, on_batch=progress
            )
            self.beat(
                f"{report.sent} sent, {report.retrying} to retry, {report.failed} failed, "
                f"{report.suppressed} suppressed"
            )
        self.check_links()
        self.run_imports()
        return report

    def beat(self, outcome: str, *, ok: bool = True) -> None:
        """Record this round in the heartbeat table, which `/healthz` and the staff home page read."""
        with unit_of_work():
            heartbeat.beat(self.worker_id, self.started_at, outcome, ok=ok)

    def beat_after_failure(self, error: BaseException) -> None:
        """Record a failed round, if the database lets us (it may be what failed)."""
        try:
            with self.app.app_context():
                self.beat(f"failed: {type(error).__name__}: {error}", ok=False)
        except Exception:  # noqa: BLE001 - the database is away: the stale heartbeat says so
            self.app.logger.warning("Could not record the failed round's heartbeat")

    def dispatch_surveys(self, now: datetime | None = None) -> DispatchReport:
        try:
            report = send_due(now, self.worker_id)
        except Exception as error:  # one bad survey must not stop the mail from going out
            db.session.rollback()
            self.app.logger.exception("Survey dispatch failed")
            self.echo(f"Surveys: dispatch failed ({error}); will try again next round")
            return DispatchReport()
        if report.invitations or report.reminders:
            self.echo(
                f"Surveys: {report.invitations} invitation(s) and {report.reminders} reminder(s) "
                "queued"
            )
        return report

    def send_event_reminders(self, now: datetime | None = None) -> None:
        try:
            report = reminders.send_due(now, self.worker_id)
        except Exception as error:  # one bad event must not stop the mail from going out
            db.session.rollback()
            self.app.logger.exception("Event reminders failed")
            self.echo(f"Reminders: failed ({error}); will try again next round")
            return
        if report.queued:
            self.echo(f"Reminders: {report.queued} queued for {report.events} event(s)")
        if report.failed:
            self.echo(f"Reminders: failed for event(s) {report.failed}; will try again next round")

    def queue_campaigns(self, now: datetime | None = None) -> None:
        """Start due campaigns and queue their recipients, chunk by chunk (campaigns.sending)."""
        try:
            report = send_campaigns(now, should_stop=self.stopping.is_set)
        except Exception as error:  # a failed campaign must not stop the mail from going out
            db.session.rollback()
            self.app.logger.exception("Campaign queueing failed")
            self.echo(f"Campaigns: queueing failed ({error}); will go on next round")
            return
        if report.queued or report.left_out or report.finished:
            self.echo(
                f"Campaigns: {report.queued} queued, {report.left_out} left out, "
                f"{report.finished} finished"
            )

    def apply_retention(self, now: datetime | None = None) -> None:
        """Once a day: anonymise the personal data whose retention has run out (privacy.retention).
        `now` moves its clock, as for surveys."""
        try:
            now = now or utcnow()
            with unit_of_work():
                due = retention.is_due(now)
            if not due:
                return
            shown = [0]

            def progress(report: retention.RetentionReport) -> None:
                step = report.done * 10 // max(report.total, 1)
                if step > shown[0]:
                    shown[0] = step
                    self.echo(f"  retention: {report.done}/{report.total} rows anonymised")

            report = retention.run_retention(
                now,
                trigger="worker",
                on_progress=progress,
                should_stop=self.stopping.is_set,
                only_if_due=True,  # claimed: a worker beside this one may have begun it
            )
        except Exception as error:  # a failed run must not stop the mail; recorded, tried again
            db.session.rollback()
            self.app.logger.exception("Retention failed")
            minutes = int(retention.RETRY_AFTER.total_seconds() // 60)
            self.echo(f"Retention: failed ({error}); will try again in {minutes} minutes")
            return
        if report is None:
            return
        if report.done or report.stopped:
            self.echo(f"Retention: {report.summary()}")

    def check_links(self) -> None:
        if not self.links_in_background:
            self._check_due_links()
        elif self._links_thread is None or not self._links_thread.is_alive():
            self._links_thread = threading.Thread(
                target=self._check_due_links, name="chamber-link-check", daemon=True
            )
            self._links_thread.start()

    def _check_due_links(self) -> None:
        with self.app.app_context():
            try:
                run = health.due_run(self.worker_id)
                if run is None:
                    return
                self.echo(f"Links: checking {run.total} published link(s) ({run.trigger} check)")
                shown = [0]

                def progress(report: health.RunReport) -> None:
                    step = report.checked * 10 // max(report.total, 1)
                    if step > shown[0]:
                        shown[0] = step
                        self.echo(
                            f"  {report.checked}/{report.total} links checked, "
                            f"{len(report.problems)} need attention"
                        )

                report = health.run_check(
                    run, on_progress=progress, should_stop=self.stopping.is_set
                )
                self.echo(f"Links: {report.summary()}")
            except Exception as error:  # a failed check must not stop the mail
                db.session.rollback()
                self.app.logger.exception("Link check failed")
                self.echo(f"Links: the check failed ({error}); it can be run again")

    def run_imports(self) -> None:
        if not self.links_in_background:
            self._run_waiting_import()
        elif self._imports_thread is None or not self._imports_thread.is_alive():
            self._imports_thread = threading.Thread(
                target=self._run_waiting_import, name="chamber-import", daemon=True
            )
            self._imports_thread.start()

    def _run_waiting_import(self) -> None:
        """The oldest import waiting, run to its end (or until the worker stops: it is handed
        back, and this or another worker goes on from its first row not done)."""
        with self.app.app_context():
            try:
                claimed = import_jobs.claim_next(self.worker_id)
                if claimed is None:
                    return
                job_id, claim = claimed
                self.echo(f"Import {job_id}: started")
                shown = [0]

                def progress(job) -> None:
                    step = job.rows_done * 10 // max(job.rows_total, 1)
                    if step > shown[0]:
                        shown[0] = step
                        self.echo(f"  {job.rows_done}/{job.rows_total} rows")

                job = import_jobs.run_claimed(
                    job_id, claim, should_stop=self.stopping.is_set, on_progress=progress
                )
                self.echo(
                    f"Import {job_id}: {job.status.label.lower()}: {job.created} created, "
                    f"{job.updated} updated, {job.unchanged} unchanged, {job.refused} refused"
                )
            except Exception as error:  # a failed import (recorded on the job) must not stop mail
                db.session.rollback()
                self.app.logger.exception("Import failed")
                self.echo(f"Import: failed ({error}); the job records the error")

    def run(self) -> None:
        """Rounds until stopped. A round that fails (the database away, say) is logged and tried
        again after a pause that grows to a minute: the loop itself never ends on an error."""
        poll = self.app.config["WORKER_POLL_SECONDS"]
        self.echo(
            f"Worker {self.worker_id} started; checking every {poll}s. Stop with Ctrl-C or SIGTERM."
        )
        self.links_in_background = True
        failures = 0
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception as error:  # noqa: BLE001 - the worker must outlive any one round
                failures += 1
                pause = min(60, poll * 2**failures)
                with self.app.app_context():
                    db.session.rollback()
                self.app.logger.exception("Worker round failed")
                self.beat_after_failure(error)
                self.echo(
                    f"Round failed ({type(error).__name__}: {error}); trying again in {pause}s"
                )
                self.stopping.wait(pause)
                continue
            failures = 0
            self.stopping.wait(poll)
        if self._links_thread is not None:
            self._links_thread.join()  # it saw `stopping` too: it finishes the links in hand
        if self._imports_thread is not None:
            self._imports_thread.join()  # and the import its chunk in hand
        self.echo("Worker stopped.")


def run_supervised(
    worker: Worker, *, warn: Callable[[str], None], restart_after: float = 5.0
) -> None:
    """Run `worker` until it is stopped, starting it again if it ever dies (the demo runs the worker
    on a thread beside the web server, where a silent death would leave mail unsent)."""
    while not worker.stopping.is_set():
        try:
            worker.run()
        except BaseException as error:  # noqa: BLE001 - anything at all: say so loudly, restart
            worker.app.logger.exception("The worker died")
            warn(
                f"THE WORKER STOPPED UNEXPECTEDLY ({type(error).__name__}: {error}). "
                f"No email is sent while it is down; restarting it in {restart_after:.0f}s."
            )
            worker.stopping.wait(restart_after)
            continue
        return
