"""The worker's heartbeat and the health report: each `chamber worker` round records that it ran
(`WorkerHeartbeat`), and `/healthz` and the staff home page read how long ago the newest one was.
Domains above add their own part of the report (the outbox backlog) through `health_reported`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace
from flask import Flask
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from chamber.core.times import UTCDateTime, utcnow
from chamber.extensions import db

# Heartbeats of workers that stopped long ago (each process has its own row) are removed.
KEEP_STOPPED_WORKERS = timedelta(days=7)

_signals = Namespace()
# Sent by `/healthz` and the staff home page with the app as sender and `now`; each receiver
# returns a `HealthPart` (the outbox's backlog, say).
health_reported = _signals.signal("health-reported")


# Flask-SQLAlchemy's `db.Model` is made at run time, which strict mypy (all of chamber.core) cannot see.
class WorkerHeartbeat(db.Model):  # type: ignore[name-defined,misc]
    """One row per worker process (`host:pid`, or `demo`), rewritten every round."""

    __tablename__ = "worker_heartbeat"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_beat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_round_ok: Mapped[bool] = mapped_column(default=True)
    last_round: Mapped[str] = mapped_column(String(500), default="")


def beat(worker_id: str, started_at: datetime, outcome: str, *, ok: bool = True) -> None:
    """Record that `worker_id` finished a round now, and how it went (flushes; the caller
    commits). Only that worker writes its row, so there is no race to guard against."""
    now = utcnow()
    heartbeat = db.session.get(WorkerHeartbeat, worker_id)
    if heartbeat is None:
        heartbeat = WorkerHeartbeat(worker_id=worker_id, started_at=started_at)
        db.session.add(heartbeat)
    heartbeat.last_beat_at = now
    heartbeat.last_round_ok = ok
    heartbeat.last_round = outcome[:500]
    db.session.execute(
        db.delete(WorkerHeartbeat).where(
            WorkerHeartbeat.last_beat_at < now - KEEP_STOPPED_WORKERS,
            WorkerHeartbeat.worker_id != worker_id,
        )
    )
    db.session.flush()


def newest_beat() -> WorkerHeartbeat | None:
    newest: WorkerHeartbeat | None = db.session.scalar(
        db.select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_beat_at.desc()).limit(1)
    )
    return newest


@dataclass
class HealthPart:
    """One part of the health report: its name in the JSON, its figures, and what is wrong
    (sentences a person can act on; none when it is healthy)."""

    name: str
    figures: dict[str, Any]
    problems: list[str] = field(default_factory=list)


@dataclass
class HealthReport:
    parts: list[HealthPart]

    @property
    def problems(self) -> list[str]:
        return [problem for part in self.parts for problem in part.problems]

    @property
    def status(self) -> str:
        return "degraded" if self.problems else "ok"

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "database": "ok"}
        body.update({part.name: part.figures for part in self.parts})
        body["problems"] = self.problems
        return body


def worker_part(now: datetime, stale_after: int) -> HealthPart:
    """How long ago the newest worker round finished; a problem when longer than `stale_after`
    seconds, when its round failed, or when no worker has ever run. Which host it runs on and
    what it did are not shown: the health check is public."""
    newest = newest_beat()
    if newest is None:
        return HealthPart(
            "worker",
            {"state": "never", "last_beat_at": None, "age_seconds": None,
             "stale_after_seconds": stale_after},
            ['No worker has run yet: no email is sent until "chamber worker" runs.'],
        )  # fmt: skip
    age = max(0, int((now - newest.last_beat_at).total_seconds()))
    figures = {
        "state": "ok" if age <= stale_after else "stale",
        "last_beat_at": newest.last_beat_at.isoformat(timespec="seconds"),
        "age_seconds": age,
        "stale_after_seconds": stale_after,
        "last_round_ok": newest.last_round_ok,
    }
    problems = []
    if age > stale_after:
        problems.append(
            f"The worker has not run for {describe_age(age)}: email is not being sent. "
            'Check that "chamber worker" is running.'
        )
    elif not newest.last_round_ok:
        # What failed stays in the table and the worker's log: /healthz is public, and an error's
        # text can name hosts and users.
        problems.append("The worker's last round failed: see the worker's log.")
    return HealthPart("worker", figures, problems)


def report(app: Flask, now: datetime | None = None) -> HealthReport:
    """The worker's part, then each part the domains above return through `health_reported`."""
    now = now or utcnow()
    parts = [worker_part(now, app.config["HEALTH_WORKER_STALE_SECONDS"])]
    for _receiver, part in health_reported.send(app, now=now):
        if part is not None:
            parts.append(part)
    return HealthReport(parts)


def describe_age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 2 * 3600:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"
