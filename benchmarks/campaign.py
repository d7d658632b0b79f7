"""A campaign to 20,000 recipients: queueing it, delivering it, and the public site meanwhile.

    .venv/bin/python benchmarks/campaign.py [--recipients 20000] [--database-url URL]

Three figures, each against a reference measured in the same run (benchmarks/README.md):

  queue     the worker resolves the segment and queues one outbox message per recipient
            (`campaigns.sending.send_due`, chunks of 500): seconds for all of them (goal: < 30);
  deliver   the worker delivers the campaign (`Worker.run_once`, as `chamber worker --once`) to
            an aiosmtpd sink in its own process, against a bare smtplib loop sending messages of
            the same shape to the same sink (mail_throughput.py's pieces), run just before and
            just after the worker: the ratio of the rates (goal: >= 0.7);
  latency   the public event page (`GET /events/<slug>`, page cache off, so each request renders
            and reads the database), one request every 20 ms, timed while a worker process
            delivers a copy of the campaign, against the same page idle: the ratio of the
            medians (goal: <= 2).

The directory is 20,000 contacts at limited companies, at business addresses (so each may be sent
marketing as a corporate subscriber), plus 5% left out (suppressed), in a fresh SQLite file or a
fresh database on the PostgreSQL server given.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mail_throughput import Sink, bare_phase, build_reference, make_app
from support import Database

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def fill_directory(app, n: int) -> int:
    """`n` contacts who may be sent it and 5% more who may not; a segment of everyone, an event.
    Returns the campaign's id (a draft)."""
    from datetime import timedelta

    from chamber.campaigns import services
    from chamber.core.times import utcnow
    from chamber.directory.models import Segment
    from chamber.events.models import Event, EventStatus
    from chamber.extensions import db
    from chamber.mail.models import Suppression
    from chamber.members.models import Contact, LegalForm, Organisation, SizeBand
    from tests.factories import acting_staff

    with app.app_context():
        organisations = [
            Organisation(
                name=f"Bench {i} Ltd", name_normalised=f"bench {i}", size_band=SizeBand.small,
                legal_form=LegalForm.limited_company, is_member=i % 2 == 0, sector=f"Sector {i % 7}",
            )
            for i in range(200)
        ]  # fmt: skip
        db.session.add_all(organisations)
        db.session.flush()
        left_out = n // 20
        db.session.execute(
            db.insert(Contact),
            [
                {"name": f"Person {i}", "email": f"person{i}@bench{i % 200}.example",
                 "organisation_id": organisations[i % 200].id}
                for i in range(n + left_out)
            ],
        )  # fmt: skip
        db.session.execute(
            db.insert(Suppression),
            [{"email": f"person{i}@bench{i % 200}.example", "reason": "unsubscribe"}
             for i in range(n, n + left_out)],
        )  # fmt: skip
        starts = utcnow() + timedelta(days=30)
        event = Event(
            slug="bench-seminar", title="Cyber crime seminar", summary="Protect your business.",
            venue_name="Holiday Inn Stevenage", venue_address="St George's Way, Stevenage SG1 1HS",
            starts_at=starts, ends_at=starts + timedelta(hours=4), capacity=80, business_limit=3,
            status=EventStatus.published,
        )  # fmt: skip
        segment = Segment(name="Everyone", filters={})
        db.session.add_all([event, segment])
        db.session.flush()
        campaign = services.save_campaign(
            services.CampaignDetails(
                "Cyber crime seminar: book your places", preview_text="Seven speakers, one morning",
                body="Join us for **practical** advice from people who have seen it happen.\n\n"
                "- Backups\n- Passwords\n- Phishing", event_id=event.id, segment_id=segment.id,
            ),
            by=acting_staff(),
        )  # fmt: skip
        db.session.commit()
        return campaign.id


def queue(app, campaign_id: int, n: int) -> float:
    from chamber.campaigns import services
    from chamber.campaigns.sending import send_due
    from chamber.extensions import db
    from tests.factories import acting_staff

    with app.app_context():
        campaign = services.find_campaign(campaign_id)
        services.send_now(campaign, by=acting_staff())
        db.session.commit()
        started = time.perf_counter()
        report = send_due()
        seconds = time.perf_counter() - started
        assert report.queued == n, report
        db.session.remove()
    return seconds


def deliver(app) -> tuple[int, float]:
    from chamber.worker import Worker

    worker = Worker(app, worker_id="bench", echo=lambda _line: None)
    started = time.perf_counter()
    report = worker.run_once()
    return report.sent, time.perf_counter() - started


def unthrottled(app):
    """The app without the bulk stream's rate limit (CHAMBER_BULK_PER_MINUTE = 0): the figure is
    how fast the worker can send, not what the provider's quota allows."""
    app.config["BULK_PER_MINUTE"] = 0
    return app


def deliver_in_process(database_url: str, instance: str, port: int, done) -> None:
    """A worker process delivering the campaign while the main process times the page."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    app = unthrottled(make_app(database_url, Path(instance), port))
    deliver(app)
    done.set()


def page_latencies(app, count: int | None = None, until=None, pause: float = 0.02) -> list[float]:
    """The event page's time to answer, one request every `pause` seconds."""
    client = app.test_client()
    times: list[float] = []
    while (count is not None and len(times) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        response = client.get("/events/bench-seminar")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
        time.sleep(pause)
    return times


def fill_copy(app, campaign_id: int) -> int:
    """A second draft like the first, to send again to the same people."""
    from chamber.campaigns import services
    from chamber.extensions import db
    from tests.factories import acting_staff

    with app.app_context():
        first = services.find_campaign(campaign_id)
        copy = services.save_campaign(
            services.CampaignDetails(
                f"Again: {first.subject}", body=first.body, event_id=first.event_id,
                segment_id=first.segment_id,
            ),
            by=acting_staff(),
        )  # fmt: skip
        db.session.commit()
        return copy.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--reference", type=int, default=3000, help="bare smtplib messages")
    parser.add_argument("--database-url", default=os.environ.get("CHAMBER_BENCH_DATABASE_URL"))
    args = parser.parse_args(argv)
    n = args.recipients
    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as tmp, Sink() as sink:
        database = Database(args.database_url, Path(tmp))
        with database as url:
            instance = Path(tmp) / "instance"
            os.environ["CHAMBER_CACHE_URL"] = (
                "none://"  # each page rendered, here and in the worker
            )
            app = unthrottled(make_app(url, instance, sink.port))
            print(f"Campaign: {n} recipients; {os.cpu_count()} CPU(s); {database.label}")
            campaign_id = fill_directory(app, n)

            seconds = queue(app, campaign_id, n)
            print(f"queue    {n} messages in {seconds:.1f}s ({n / seconds:.0f}/s; goal < 30 s)")

            # The bare loop runs just before and just after the worker, and the reference is
            # the two together: on this machine one run of it can be a third faster than the
            # next, so a single run beside the worker's would decide the ratio by chance.
            reference = build_reference(app, args.reference)
            bare_before = bare_phase(sink, reference)
            before = sink.snapshot()[0]
            sent, seconds = deliver(app)
            assert sent == n == sink.snapshot()[0] - before, (sent, n)
            bare_after = bare_phase(sink, reference)
            bare_rate = 2 / (1 / bare_before.rate + 1 / bare_after.rate)  # both runs' messages
            rate = n / seconds
            print(
                f"deliver  {n} in {seconds:.1f}s: {rate:.0f}/s vs bare smtplib {bare_rate:.0f}/s "
                f"({args.reference} messages before, {bare_before.rate:.0f}/s, and after, "
                f"{bare_after.rate:.0f}/s): ratio {rate / bare_rate:.2f} (goal >= 0.7)"
            )

            # The same campaign again (a copy), delivered by a worker process while this one
            # asks for the event page every 20 ms, as visitors would.
            idle = page_latencies(app, count=300)
            second = fill_copy(app, campaign_id)
            queue(app, second, n)
            spawn = multiprocessing.get_context("spawn")
            done = spawn.Event()
            worker = spawn.Process(
                target=deliver_in_process, args=(url, str(instance), sink.port, done)
            )
            worker.start()
            busy = page_latencies(app, until=done)
            worker.join()
            idle_ms, busy_ms = statistics.median(idle) * 1000, statistics.median(busy) * 1000
            print(
                f"latency  event page median {busy_ms:.1f} ms while sending ({len(busy)} requests) "
                f"vs {idle_ms:.1f} ms idle: ratio {busy_ms / idle_ms:.2f} (goal <= 2)"
            )
            from chamber.extensions import db

            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
