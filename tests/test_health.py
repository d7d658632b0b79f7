"""The worker's heartbeat, `/healthz` and the staff home page's notice: a monitor and staff learn
when the worker has stopped or mail is piling up."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest

from chamber.core.heartbeat import WorkerHeartbeat
from chamber.core.times import utcnow
from chamber.dashboard import queries as dashboard_queries
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.mail.services import enqueue
from chamber.worker import Worker, run_supervised


def queue_test_message(n: int, *, waited: timedelta = timedelta(0)) -> None:
    enqueue(
        key=f"health-test:{n}",
        to=f"person{n}@example.org",
        subject="Chamber test message",
        template="test_message",
    )
    db.session.flush()
    if waited:
        message = db.session.scalar(
            db.select(OutboxMessage).where(OutboxMessage.key == f"health-test:{n}")
        )
        message.next_attempt_at = utcnow() - waited
        message.created_at = utcnow() - waited
    db.session.commit()


def response_text(body: dict) -> str:
    return json.dumps(body)


def run_a_round(app, worker_id: str = "test-host:1") -> Worker:
    worker = Worker(app, worker_id=worker_id, echo=lambda line: None)
    worker.run_once()
    return worker


def test_before_any_worker_has_run_healthz_is_200_but_degraded(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "degraded"
    assert body["database"] == "ok"
    assert body["worker"]["state"] == "never"
    assert body["problems"] == [
        'No worker has run yet: no email is sent until "chamber worker" runs.'
    ]


def test_a_worker_round_beats_and_healthz_is_ok(app, client):
    run_a_round(app)
    beat = db.session.get(WorkerHeartbeat, "test-host:1")
    assert beat is not None and beat.last_round_ok
    assert beat.last_round == "0 sent, 0 to retry, 0 failed, 0 suppressed"
    body = client.get("/healthz").json
    assert body["status"] == "ok" and body["problems"] == []
    assert body["worker"]["state"] == "ok"
    assert "test-host" not in response_text(body)  # public: no host names, no error text
    assert body["worker"]["age_seconds"] <= 5
    assert body["mail"] == {
        "state": "ok", "queued": 0, "oldest_queued_age_seconds": None,
        "backlog_after_seconds": 900, "backlog_after_count": 500, "failed": 0,
        "bulk_queued": 0, "counted_up_to": 1000,
    }  # fmt: skip


def test_each_round_rewrites_its_own_row_and_a_later_round_reports_what_it_sent(app):
    worker = run_a_round(app)
    first = db.session.get(WorkerHeartbeat, "test-host:1").last_beat_at
    queue_test_message(1)
    worker.run_once()
    db.session.expire_all()
    rows = db.session.scalars(db.select(WorkerHeartbeat)).all()
    assert len(rows) == 1
    assert rows[0].last_beat_at >= first
    assert rows[0].last_round.startswith("1 sent")
    assert rows[0].started_at == worker.started_at


def test_a_stale_worker_is_reported_in_the_body_and_on_the_staff_home_page(
    app, client, organiser_client
):
    run_a_round(app)
    beat = db.session.get(WorkerHeartbeat, "test-host:1")
    beat.last_beat_at = utcnow() - timedelta(minutes=7)
    db.session.commit()

    response = client.get("/healthz")
    assert response.status_code == 200  # the site works: a monitor alerts on the body
    body = response.json
    assert body["status"] == "degraded"
    assert body["worker"]["state"] == "stale"
    assert 7 * 60 <= body["worker"]["age_seconds"] < 8 * 60
    assert body["problems"][0].startswith("The worker has not run for 7 minutes")

    page = organiser_client.get("/staff/")
    assert "Email may not be going out" in page.text
    assert "The worker has not run for 7 minutes" in page.text

    run_a_round(app)  # it comes back
    assert "Email may not be going out" not in organiser_client.get("/staff/").text


def test_the_door_team_is_not_shown_the_workers_health(app, checkin_client):
    assert "Email may not be going out" not in checkin_client.get("/staff/").text


def test_mail_waiting_longer_than_the_threshold_is_a_backlog(app, client, organiser_client):
    run_a_round(app)  # beats; then mail arrives that no round has sent
    queue_test_message(1, waited=timedelta(minutes=20))
    queue_test_message(2)
    body = client.get("/healthz").json
    assert body["status"] == "degraded"
    assert body["worker"]["state"] == "ok"
    assert body["mail"]["state"] == "backlog"
    assert body["mail"]["queued"] == 2
    assert 20 * 60 <= body["mail"]["oldest_queued_age_seconds"] < 21 * 60
    assert body["problems"] == [
        "Mail is piling up: 2 message(s) waiting, the oldest for 20 minutes."
    ]
    assert "Mail is piling up" in organiser_client.get("/staff/").text


def test_many_messages_due_at_once_are_a_backlog_past_the_count(app, client):
    app.config["HEALTH_MAIL_BACKLOG_COUNT"] = 2
    run_a_round(app)
    for n in range(3):
        queue_test_message(n)
    body = client.get("/healthz").json
    assert body["mail"]["queued"] == 3
    assert body["problems"] == ["Mail is piling up: 3 message(s) waiting to be sent."]


def test_a_backlog_past_the_counting_cap_is_reported_as_at_least_the_cap(app, client, monkeypatch):
    monkeypatch.setattr(dashboard_queries, "COUNT_CAP", 3)
    app.config["HEALTH_MAIL_BACKLOG_COUNT"] = 2
    run_a_round(app)
    queue_test_message(0, waited=timedelta(minutes=30))  # the oldest, whatever the cap
    for n in range(1, 5):
        queue_test_message(n)
    for n in range(5, 10):
        queue_test_message(n)
        message = db.session.scalar(
            db.select(OutboxMessage).where(OutboxMessage.key == f"health-test:{n}")
        )
        message.status = MessageStatus.failed
    db.session.commit()
    body = client.get("/healthz").json
    assert body["mail"]["queued"] == 3 and body["mail"]["failed"] == 3  # 5 of each in truth
    assert body["mail"]["counted_up_to"] == 3
    assert 30 * 60 <= body["mail"]["oldest_queued_age_seconds"] < 31 * 60
    assert body["problems"] == [
        "Mail is piling up: 3 or more message(s) waiting, the oldest for 30 minutes."
    ]

    app.config["HEALTH_MAIL_BACKLOG_COUNT"] = 4  # the cap is never below the threshold
    body = client.get("/healthz").json
    assert body["mail"]["queued"] == 4 and body["mail"]["counted_up_to"] == 4


def test_a_message_stuck_with_a_dead_worker_is_the_oldest_waiting(app, client):
    run_a_round(app)
    queue_test_message(1, waited=timedelta(minutes=5))
    queue_test_message(2)
    message = db.session.scalar(
        db.select(OutboxMessage).where(OutboxMessage.key == "health-test:2")
    )
    message.status = MessageStatus.sending
    message.next_attempt_at = utcnow() - timedelta(minutes=40)
    message.lease_until = utcnow() - timedelta(minutes=1)
    db.session.commit()
    body = client.get("/healthz").json
    assert body["mail"]["queued"] == 2
    assert 40 * 60 <= body["mail"]["oldest_queued_age_seconds"] < 41 * 60


def test_a_round_that_fails_is_recorded_and_reported(app, client):
    class FailingOnce(Worker):
        def run_once(self, now=None):
            self.stop()
            raise RuntimeError("disk full")

    worker = FailingOnce(app, worker_id="failing:1", echo=lambda line: None)
    worker.run()
    beat = db.session.get(WorkerHeartbeat, "failing:1")
    assert beat is not None and not beat.last_round_ok
    assert beat.last_round == "failed: RuntimeError: disk full"
    body = client.get("/healthz").json
    assert body["status"] == "degraded"
    assert body["problems"] == ["The worker's last round failed: see the worker's log."]
    assert "disk full" not in response_text(body)


def test_the_demos_worker_on_its_thread_beats_too(app):
    """The demo runs `run_supervised` on a thread beside the web server, as `chamber demo` does."""
    app.config["WORKER_POLL_SECONDS"] = 1
    worker = Worker(app, worker_id="demo", echo=lambda line: None)
    thread = threading.Thread(target=run_supervised, args=(worker,), kwargs={"warn": print})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(WorkerHeartbeat, "demo") is not None:
                break
            db.session.rollback()
            time.sleep(0.05)
        else:
            pytest.fail("the demo's worker never beat")
    finally:
        worker.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_heartbeats_of_workers_gone_a_week_are_removed(app):
    run_a_round(app, "old-host:9")
    db.session.get(WorkerHeartbeat, "old-host:9").last_beat_at = utcnow() - timedelta(days=8)
    db.session.commit()
    run_a_round(app, "new-host:1")
    assert {row.worker_id for row in db.session.scalars(db.select(WorkerHeartbeat))} == {
        "new-host:1"
    }
