"""Invariant 4 with real processes: `chamber worker` killed mid-batch loses nothing and re-sends at
most the message in hand; SIGTERM finishes that message and hands the rest back; `--once` and
`send-test-email` work from the command line with the default file backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import TypeVar

import pytest

from chamber.extensions import db
from chamber.mail.delivery import BATCH_SIZE, deliver_due, due_count
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage
from chamber.mail.services import enqueue, unsubscribe_address

CHAMBER = [sys.executable, "-c", "from chamber.cli import main; main()"]
BATCH = 100  # deliver_due's batch size
MILLISECOND = timedelta(milliseconds=1)
T = TypeVar("T")


# --- helpers -------------------------------------------------------------------------------------


class WorkerProcess:
    """A `chamber` command running in its own process, its output kept in files (a pipe could fill
    up and stall it)."""

    def __init__(self, args: list[str], env: dict[str, str], folder: Path, name: str):
        self.stdout_path = folder / f"{name}.out"
        self.stderr_path = folder / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen([*CHAMBER, *args], env=env, cwd=folder, stdout=out,
                                          stderr=err, stdin=subprocess.DEVNULL)  # fmt: skip

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe(self) -> str:
        return f"exit {self.popen.poll()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Chamber:
    """Runs `chamber` commands in real processes against the test database."""

    def __init__(self, database_url: str, folder: Path):
        self.folder = folder
        self.instance = folder / "instance"
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("CHAMBER_")
        }
        self.env.update({
            "CHAMBER_DATABASE_URL": database_url,
            "CHAMBER_SECRET_KEY": "worker-process-test-secret-key-0123456789abcdef",
            "CHAMBER_INSTANCE_PATH": str(self.instance),
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        self.processes: list[WorkerProcess] = []

    def use_smtp(self, server) -> None:
        self.env.update({
            "CHAMBER_MAIL_BACKEND": "smtp",
            "CHAMBER_SMTP_HOST": "127.0.0.1",
            "CHAMBER_SMTP_PORT": str(server.port),
            "CHAMBER_SMTP_SECURITY": "none",
            "CHAMBER_SMTP_TIMEOUT": "10",
            "CHAMBER_MAIL_LEASE_SECONDS": "2",
            "CHAMBER_WORKER_POLL_SECONDS": "1",
        })  # fmt: skip

    def start(self, *args: str) -> WorkerProcess:
        process = WorkerProcess(list(args), self.env, self.folder, f"chamber-{len(self.processes)}")
        self.processes.append(process)
        return process

    def run(self, *args: str, timeout: float = 120) -> WorkerProcess:
        process = self.start(*args)
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"chamber {' '.join(args)} did not finish in {timeout}s\n{process.describe()}"
            )
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.alive():
                process.popen.kill()
            process.popen.wait(timeout=30)


@pytest.fixture
def chamber(app, database_url, tmp_path) -> Iterator[Chamber]:
    commands = Chamber(database_url, tmp_path)
    try:
        yield commands
    finally:
        commands.stop_all()


def wait_for(condition: Callable[[], T], *, timeout: float, what: str,
             process: WorkerProcess | None = None) -> T:  # fmt: skip
    """Poll `condition` until it is truthy; fail after `timeout` seconds or if `process` dies."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and not process.alive():
            pytest.fail(f"the worker exited while waiting for {what}\n{process.describe()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for {what}"
                + (f"\n{process.describe()}" if process else "")
            )
        time.sleep(0.005)


def queue(count: int, kind: MailKind = MailKind.transactional) -> set[str]:
    """Queue `count` messages to different people; returns their Message-IDs."""
    for n in range(count):
        enqueue(
            key=f"process:{n}",
            to=f"person{n}@example.com",
            subject=f"Message {n}",
            template="test_message",
            context={"note": f"Message {n}"},
            kind=kind,
        )
    db.session.commit()
    return set(db.session.scalars(db.select(OutboxMessage.message_id)))


def rows() -> list[OutboxMessage]:
    """The outbox as committed now, read fresh, with no transaction left open."""
    db.session.expire_all()
    result = list(db.session.scalars(db.select(OutboxMessage).order_by(OutboxMessage.id)))
    db.session.rollback()
    return result


def statuses() -> Counter[str]:
    return Counter(row.status.value for row in rows())


def committed_due_count(**kwargs) -> int:
    count = due_count(**kwargs)
    db.session.rollback()
    return count


# --- a worker killed mid-batch -------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing_and_resends_at_most_the_message_in_hand(
    app, chamber, smtp_server
):
    total = 200
    smtp_server.handler.delay = 0.05
    expected = queue(total, MailKind.marketing)  # each carries a secret (unsubscribe) link
    chamber.use_smtp(smtp_server)

    worker = chamber.start("worker")
    wait_for(lambda: len(smtp_server.handler.received) >= 15, timeout=60, process=worker,
             what="the worker to send a few messages")  # fmt: skip
    worker.popen.send_signal(signal.SIGKILL)
    worker.popen.wait(timeout=30)
    received_at_kill = set(smtp_server.message_ids())
    assert 0 < len(received_at_kill) < total

    # Killed in the middle of its first batch: that batch is still claimed, nothing is lost.
    after_kill = rows()
    assert {row.message_id for row in after_kill} == expected
    counts = Counter(row.status.value for row in after_kill)
    assert set(counts) <= {"sent", "sending", "pending"}, counts
    assert counts["sending"] >= 1, counts
    assert counts["sent"] >= 1, counts
    sent_before = {row.message_id for row in after_kill if row.status == MessageStatus.sent}
    assert sent_before <= received_at_kill  # marked sent only once the server accepted it
    claimed = [row for row in after_kill if row.status == MessageStatus.sending]
    assert len({row.claimed_by for row in claimed}) == 1 and claimed[0].claimed_by
    lease_until = claimed[0].lease_until

    # The claimed messages are not due while the lease runs, and are all due once it has run out.
    not_sent = total - len(sent_before)
    assert committed_due_count(now=lease_until - MILLISECOND) == counts["pending"]
    assert committed_due_count(now=lease_until + MILLISECOND) == not_sent
    wait_for(lambda: committed_due_count() == not_sent, timeout=30,
             what="the dead worker's lease to run out")  # fmt: skip

    smtp_server.handler.delay = 0
    report = deliver_due("second-worker")
    assert report.sent == not_sent and report.errors == []

    ids = smtp_server.message_ids()
    assert set(ids) == expected  # every message arrived at least once
    repeated = [message_id for message_id, times in Counter(ids).items() if times > 1]
    # At most the one message the dead worker had in hand, which it had not recorded as sent.
    assert len(ids) - len(set(ids)) <= 1, f"re-sent too many: {repeated}"
    assert set(repeated) <= expected - sent_before
    # Every link in every copy that went out works: its token was committed before it was sent.
    for email in smtp_server.messages:
        token = email["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
        assert unsubscribe_address(token) == email["To"].addresses[0].addr_spec
    db.session.rollback()
    assert statuses() == Counter({"sent": total})
    assert all(row.claimed_by is None and row.lease_until is None for row in rows())


# --- SIGTERM -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_finishes_the_message_in_hand_hands_back_the_rest_and_exits_cleanly(
    app, chamber, smtp_server
):
    total, delay = 200, 0.1
    smtp_server.handler.delay = delay  # finishing the first batch would take about 10s
    expected = queue(total)
    chamber.use_smtp(smtp_server)

    worker = chamber.start("worker")
    wait_for(lambda: len(smtp_server.handler.received) >= 15, timeout=60, process=worker,
             what="the worker to send a few messages")  # fmt: skip
    asked = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    try:
        code = worker.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker ignored SIGTERM\n{worker.describe()}")
    took = time.monotonic() - asked

    assert code == 0, worker.describe()
    assert took < 5, (
        f"took {took:.1f}s to stop; the first batch alone would take {BATCH * delay:.0f}s"
    )
    assert worker.stdout.rstrip().endswith("Worker stopped."), worker.describe()
    assert "Traceback" not in worker.stderr and "Warning" not in worker.stderr, worker.describe()

    # The message in hand was finished and recorded: what arrived is exactly what is marked sent.
    received = smtp_server.message_ids()
    after = rows()
    counts = Counter(row.status.value for row in after)
    assert set(counts) == {"sent", "pending"}, counts  # none left 'sending', none lost
    assert counts["sent"] + counts["pending"] == total
    assert 0 < counts["sent"] < BATCH
    assert counts["pending"] > total - BATCH  # part of the batch in hand was given back
    assert sorted(received) == sorted(
        row.message_id for row in after if row.status == MessageStatus.sent
    )

    # What was not started is handed back as it was: unclaimed and due at once.
    pending = [row for row in after if row.status == MessageStatus.pending]
    assert all(
        row.claimed_by is None and row.lease_until is None and row.attempts == 0 for row in pending
    )
    assert committed_due_count() == counts["pending"]

    smtp_server.handler.delay = 0
    second = chamber.run("worker", "--once")
    assert second.popen.returncode == 0, second.describe()
    assert f"{counts['pending']} message(s) due" in second.stdout
    assert f"Done: {counts['pending']} sent, 0 to retry, 0 failed, 0 suppressed." in second.stdout

    ids = smtp_server.message_ids()
    assert sorted(ids) == sorted(expected)  # every message exactly once: nothing re-sent
    assert statuses() == Counter({"sent": total})


# --- the command line ----------------------------------------------------------------------------


def test_worker_once_prints_progress_and_a_summary_then_exits(app, runner, smtp_server):
    smtp_server.handler.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    queue(BATCH_SIZE + 19)
    enqueue(key="refused", to="nobody@example.com", subject="Bounce", template="test_message")
    db.session.commit()
    total = BATCH_SIZE + 20

    result = runner.invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{total} message(s) due"
    assert lines[1].strip().startswith(f"{BATCH_SIZE}/{total} handled:")  # a line a batch
    assert (
        lines[2].strip()
        == f"{total}/{total} handled: {total - 1} sent, 0 to retry, 1 failed, 0 suppressed"
    )
    assert lines[3] == f"Done: {total - 1} sent, 0 to retry, 1 failed, 0 suppressed."
    assert len(lines) == 4
    assert "nobody@example.com: 550 5.1.1 No such user" in result.stderr
    assert len(smtp_server.message_ids()) == total - 1
    assert statuses() == Counter({"sent": total - 1, "failed": 1})


def test_worker_once_with_nothing_due_says_so_and_exits(app, runner, smtp_server):
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Done: 0 sent, 0 to retry, 0 failed, 0 suppressed.\n"
    assert smtp_server.messages == []


@pytest.mark.slow
def test_send_test_email_then_worker_once_writes_a_multipart_eml_in_the_instance_folder(
    app, chamber
):
    queued = chamber.run("send-test-email", "zoe@example.com")
    assert queued.popen.returncode == 0, queued.describe()
    assert "Queued a test message to zoe@example.com" in queued.stdout
    (message,) = rows()
    assert message.status == MessageStatus.pending and message.to_address == "zoe@example.com"
    mail_folder = chamber.instance / "mail"
    assert not list(mail_folder.glob("*.eml"))  # queued, not sent: the worker sends it

    worker = chamber.run("worker", "--once")
    assert worker.popen.returncode == 0, worker.describe()
    assert "1 message(s) due" in worker.stdout
    assert "Done: 1 sent, 0 to retry, 0 failed, 0 suppressed." in worker.stdout
    assert "Traceback" not in worker.stderr and "Warning" not in worker.stderr, worker.describe()

    (path,) = mail_folder.glob("*.eml")
    assert path.stat().st_mode & 0o777 == 0o600  # personal data: the owner's alone
    assert mail_folder.stat().st_mode & 0o777 == 0o700
    email = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert email.get_content_type() == "multipart/alternative"
    text, html = email.get_payload()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "This is a test message from Chamber" in text.get_content()
    assert "This is a test message from Chamber" in html.get_content()
    assert email["To"] == "zoe@example.com"
    assert email["Subject"] == "Chamber test message"
    assert email["Message-ID"] == message.message_id
    (sent,) = rows()
    assert sent.status == MessageStatus.sent and sent.attempts == 1


# --- several workers -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_worker_never_takes_over_a_batch_that_outlasts_its_lease(
    app, chamber, smtp_server
):
    total = BATCH
    smtp_server.handler.delay = 0.05  # the one batch takes 5s or more: longer than the 2s lease
    chamber.use_smtp(smtp_server)
    workers = [chamber.start("worker"), chamber.start("worker")]
    for worker in workers:  # both idle and polling before there is anything to send
        wait_for(
            lambda w=worker: "started" in w.stdout, timeout=60, process=worker, what="start-up"
        )
    expected = queue(total)  # the first worker to look claims it all

    def all_sent() -> bool:
        return statuses() == Counter({"sent": total})

    wait_for(all_sent, timeout=120, what="every message to be sent")
    for worker in workers:
        worker.popen.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.popen.wait(timeout=30) == 0, worker.describe()
    ids = smtp_server.message_ids()
    repeated = {message_id: times for message_id, times in Counter(ids).items() if times > 1}
    assert not repeated, f"{len(repeated)} message(s) sent more than once"
    assert set(ids) == expected


# --- a campaign, two workers, one killed ---------------------------------------------------------


@pytest.mark.slow
def test_a_campaign_reaches_each_recipient_once_with_two_workers_and_one_killed(
    app, chamber, smtp_server
):
    """Issue 14: two `chamber worker` processes queue and send a campaign; one is killed half-way.
    Each recipient is queued once, and receives it; at most the one message the dead worker had
    in hand goes twice, with the same Message-ID (so a mail client shows it once)."""
    from chamber.campaigns import services as campaigns
    from chamber.campaigns.models import CampaignRecipient
    from chamber.directory.models import Segment
    from chamber.members.models import Contact, LegalForm, Organisation, SizeBand
    from tests.factories import acting_staff

    total = 150
    business = Organisation(name="Octree Ltd", name_normalised="octree", size_band=SizeBand.small,
                            legal_form=LegalForm.limited_company)  # fmt: skip
    db.session.add(business)
    db.session.flush()
    db.session.add_all(
        Contact(name=f"Person {n}", email=f"person{n}@octree.example", organisation=business)
        for n in range(total)
    )
    segment = Segment(name="Everyone", filters={})
    db.session.add(segment)
    db.session.flush()
    campaign = campaigns.save_campaign(
        campaigns.CampaignDetails("News from the chamber", body="Hello.", segment_id=segment.id),
        by=acting_staff(),
    )
    campaigns.send_now(campaign, by=acting_staff())
    db.session.commit()
    smtp_server.handler.delay = 0.02
    chamber.use_smtp(smtp_server)
    chamber.env["CHAMBER_BULK_PER_MINUTE"] = "0"

    first, second = chamber.start("worker"), chamber.start("worker")
    wait_for(lambda: len(smtp_server.handler.received) >= 20, timeout=90, process=first,
             what="the workers to send a few of the campaign")  # fmt: skip
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=30)
    wait_for(lambda: statuses() == Counter({"sent": total}), timeout=120, process=second,
             what="the other worker to send the rest")  # fmt: skip

    recipients = db.session.scalars(
        db.select(CampaignRecipient.contact_id).where(CampaignRecipient.campaign_id == campaign.id)
    ).all()
    assert sorted(recipients) == sorted(db.session.scalars(db.select(Contact.id)))
    expected = {row.message_id for row in rows()}
    assert len(expected) == total
    ids = smtp_server.message_ids()
    assert set(ids) == expected
    assert len(ids) - total <= 1, Counter(ids).most_common(2)
    addresses = Counter(email["To"].addresses[0].addr_spec for email in smtp_server.messages)
    assert set(addresses) == {f"person{n}@octree.example" for n in range(total)}
    assert sum(addresses.values()) - total <= 1
