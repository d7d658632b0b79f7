"""Cost with a large data set: every staff list and public page on the demo, then again after a
million rows more, in the same run, with the SQL statements each request ran.

    .venv/bin/python benchmarks/scale.py [--scale 1.0] [--rounds 9] [--database-url URL]

A fresh database is built by the migrations and loaded with the demo (its two seminars, 235
delegates, three staff accounts) plus a demo-sized outbox of 250 messages in every status (the
demo itself leaves the outbox empty). Each page is then requested through the Flask test client:
staff pages as the demo admin (logged in through the real form), public pages as a visitor with no
cookie. Each page gets two warm-up requests, then `--rounds` timed ones; the figure is the median.
The public page cache is switched off (`CACHE_URL=none://`), so every public request does its
real work; the API's rate limit is off too, since every request comes from one address.

Then the large data set is bulk-inserted (COPY on PostgreSQL, executemany on SQLite), at
`--scale` 1.0: 1,000 more events (past and upcoming, drafts and cancelled among them, three agenda
items each), 20,000 organisations, 100,000 contacts, 250,000 bookings and 500,000 delegates, of
which 5,000 join the demo's upcoming seminar (the "big event" of the registrations list and the
door) and the rest are spread over the 1,000 events; and 200,000 outbox messages in every status.
`ANALYZE` follows. The same pages are measured again, and the table gives both medians, the
ratio (large / demo; the issue's target is at most 2.0) and each page's SQL statements in both
(which must be equal: a page's query count does not grow with rows). "Last page" means the last
page of the list as it is in each phase (page 3 of the demo's 125 delegates, page 103 of 5,125);
the Outbox pages by key, so its "middle" page is the one before the middle id and its oldest page
is `?after=0`.

The database is created on the PostgreSQL server (`CREATE DATABASE chamber_bench_...`) and dropped
at the end; `--database-url sqlite` uses a SQLite file in a temporary folder. Exits non-zero if
any page answered anything but 200.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from support import Database  # benchmarks/support.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def address_hash(address: str) -> str:
    """`chamber.core.addresses.address_hash`: contacts and the suppression list carry it."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SEARCH = "smith"  # a surname in the demo's names and in the generated ones
OUTBOX_SEARCH = "sophie."  # how some addresses start: a first name, in both phases
DEMO_OUTBOX = 250
OUTBOX_STATUSES = [("sent", 88), ("pending", 3), ("sending", 1), ("failed", 4),
                   ("suppressed", 1), ("cancelled", 3)]  # fmt: skip
SIZES = {  # at --scale 1.0, as the issue asks
    "events": 1_000,
    "organisations": 20_000,
    "contacts": 100_000,
    "delegates": 500_000,
    "big_event_delegates": 5_000,
    "outbox": 200_000,
}


def make_app(url: str, instance: Path):
    from chamber import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(instance),
            "MAIL_BACKEND": "memory",
            "CACHE_URL": "none://",  # CHAMBER_CACHE_URL: no public page is served from a cache
            "RATELIMIT_ENABLED": False,
        }
    )


# --- bulk loading --------------------------------------------------------------------------------


class Loader:
    """Rows into a table as fast as the database takes them: COPY on PostgreSQL (psycopg's
    `cursor.copy`), the driver's executemany on SQLite. Rows are tuples of database values
    (naive UTC datetimes, enum values as text), in the order of `columns`."""

    def __init__(self, connection: sa.Connection):
        self.connection = connection
        self.postgresql = connection.dialect.name == "postgresql"
        self.counts: dict[str, int] = {}
        self._loading = ""  # the table a load is writing now
        self._given_ids: set[str] = set()  # tables loaded with explicit ids (an id sequence)

    def next_id(self, table: str) -> int:
        if self._loading:
            # On PostgreSQL the load is a COPY on this connection, which runs nothing else until
            # it ends: a query from inside the rows' generator would wait for ever. Read ids first.
            raise RuntimeError(
                f"next_id({table!r}) called while loading {self._loading}: read it before the load"
            )
        return (self.connection.scalar(sa.text(f"SELECT max(id) FROM {table}")) or 0) + 1  # noqa: S608 (our table names)

    def load(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        raw = self.connection.connection.driver_connection
        names = ", ".join(columns)
        self._loading = table
        try:
            count = self._load(raw, table, names, columns, rows)
        finally:
            self._loading = ""
        self.counts[table] = self.counts.get(table, 0) + count
        if "id" in columns:
            self._given_ids.add(table)

    def _load(
        self, raw, table: str, names: str, columns: Sequence[str], rows: Iterable[tuple]
    ) -> int:
        count = 0
        if self.postgresql:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            marks = ", ".join("?" * len(columns))
            statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 (ours)
            cursor = raw.cursor()
            chunk: list[tuple] = []
            for row in rows:
                chunk.append(tuple(_sqlite_value(value) for value in row))
                if len(chunk) == 20_000:
                    cursor.executemany(statement, chunk)
                    count, chunk = count + len(chunk), []
            cursor.executemany(statement, chunk)
            count += len(chunk)
        return count

    def finish(self) -> None:
        """Move the id sequences past the rows given explicit ids (PostgreSQL), and ANALYZE."""
        if self.postgresql:
            for table in sorted(self._given_ids):  # a table keyed otherwise has no sequence
                self.connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        self.connection.commit()
        if self.postgresql:  # as autovacuum would leave it: statistics and the visibility map
            self.connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("VACUUM ANALYZE")
            )
        else:
            self.connection.execute(sa.text("ANALYZE"))
            self.connection.commit()


def _sqlite_value(value):
    # As SQLAlchemy's SQLite DateTime stores them, so that text comparisons order them alike.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


EVENT_COLUMNS = (
    "id", "slug", "title", "summary", "description", "venue_name", "venue_address", "venue_town",
    "venue_postcode", "venue_country", "timezone", "starts_at", "ends_at", "capacity",
    "business_limit", "host", "supporters", "status", "sequence", "created_at", "updated_at",
)  # fmt: skip
OUTBOX_COLUMNS = (
    "id", "key", "kind", "status", "to_address", "to_normalised", "to_name", "subject",
    "text_body", "html_body", "message_id", "created_at", "next_attempt_at", "attempts",
    "last_error", "claimed_by", "lease_until", "sent_at",
)  # fmt: skip


def outbox_rows(first_id: int, count: int, addresses: Callable[[int], tuple[str, str]], rng):
    now = datetime.now(UTC).replace(tzinfo=None)
    statuses = [status for status, weight in OUTBOX_STATUSES for _ in range(weight)]
    for n in range(count):
        message_id = first_id + n
        status = statuses[rng.randrange(len(statuses))]
        address, name = addresses(message_id)
        created = now - timedelta(minutes=count - n)  # newer ids are newer messages
        yield (
            message_id, f"scale:{message_id}", "transactional", status, address, address.lower(),
            name, "Your place at the Cybercrime seminar",
            f"Hello {name},\n\nYour place is confirmed.\n",
            f"<p>Hello {name},</p><p>Your place is confirmed.</p>",
            f"<scale.{message_id}@chamber.example>", created,
            created + timedelta(minutes=30) if status == "pending" else created,
            1 if status in ("sent", "failed", "sending") else 0,
            "550 5.1.1 mailbox unavailable" if status == "failed" else None,
            "worker-1" if status == "sending" else None,
            created + timedelta(minutes=5) if status == "sending" else None,
            created + timedelta(seconds=3) if status == "sent" else None,
        )  # fmt: skip


def add_demo_outbox(connection: sa.Connection) -> None:
    """What the demo leaves out: a demo-sized outbox, so the Outbox pages list rows in both phases."""
    loader = Loader(connection)
    rng = random.Random(7)
    people = connection.execute(sa.text("SELECT email, name FROM contact ORDER BY id")).all()
    loader.load(
        "outbox_message",
        OUTBOX_COLUMNS,
        outbox_rows(
            loader.next_id("outbox_message"),
            DEMO_OUTBOX,
            lambda n: tuple(people[n % len(people)]),
            rng,
        ),
    )
    loader.finish()


def build_large(connection: sa.Connection, big_event_id: int, scale: float) -> dict[str, int]:
    """The large data set (see the module's docstring); returns the rows added per table."""
    from chamber.demo.bookings import FIRST, LAST, TRADES, WORDS

    size = {name: max(1, round(value * scale)) for name, value in SIZES.items()}
    rng = random.Random(12)
    loader = Loader(connection)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    # Events: 60% past (up to five years back), 40% upcoming (up to two years ahead).
    first_event = loader.next_id("event")
    events = []
    for n in range(size["events"]):
        past = n % 5 < 3
        starts = now + (
            -timedelta(days=1 + n * 1825 // size["events"])
            if past
            else timedelta(days=1 + n * 730 // size["events"])
        )
        starts = starts.replace(hour=8, minute=0)
        status = "draft" if n % 20 == 7 else ("cancelled" if n % 33 == 5 else "published")
        events.append((first_event + n, starts, past, status))
    loader.load(
        "event",
        EVENT_COLUMNS,
        (
            (
                event_id, f"scale-seminar-{event_id}", f"Business breakfast {event_id}",
                "Breakfast, two talks and time to meet other businesses.",
                "A morning for **local businesses**: two short talks, then networking.",
                "Holiday Inn Stevenage", "St George's Way", "Stevenage", "SG1 1HS", "GB",
                "Europe/London", starts, starts + timedelta(hours=3), 600, 3,
                "Hertfordshire Chamber of Commerce", "", status, 0, now, now,
            )
            for event_id, starts, _, status in events
        ),
    )  # fmt: skip
    first_item = loader.next_id("agenda_item")
    loader.load(
        "agenda_item",
        ("id", "event_id", "starts_at", "ends_at", "position", "title", "description", "kind"),
        (
            (first_item + 3 * n + k, event_id, starts + timedelta(minutes=60 * k),
             starts + timedelta(minutes=60 * k + 50), k, title, "", kind)
            for n, (event_id, starts, _, _) in enumerate(events)
            for k, (title, kind) in enumerate(
                (("Welcome and breakfast", "welcome"), ("Selling abroad", "talk"),
                 ("Networking", "networking"))
            )
        ),
    )  # fmt: skip

    # Organisations and contacts: five people at each business.
    first_org = loader.next_id("organisation")
    orgs = size["organisations"]
    loader.load(
        "organisation",
        ("id", "name", "name_normalised", "size_band", "sector", "town_or_postcode", "is_member",
         "created_at", "updated_at"),
        (
            (first_org + n, f"{WORDS[n % len(WORDS)]} {TRADES[n % len(TRADES)][0]} {n}",
             f"{WORDS[n % len(WORDS)]} {TRADES[n % len(TRADES)][0]} {n}".lower(),
             ("micro", "small", "medium", "large")[n % 4], TRADES[n % len(TRADES)][1],
             "Stevenage", n % 2 == 0, now, now)
            for n in range(orgs)
        ),
    )  # fmt: skip
    first_contact = loader.next_id("contact")
    contacts = size["contacts"]

    def person(n: int) -> tuple[str, str]:
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        ascii_last = re.sub(r"[^a-z]", "", last.lower())
        return f"{first.lower()}.{ascii_last}.{n}@scale.example", f"{first} {last}"

    loader.load(
        "contact",
        ("id", "organisation_id", "name", "email", "email_hash", "job_title", "phone",
         "created_at"),
        (
            (first_contact + n, first_org + (n // 5) % orgs, person(n)[1], person(n)[0],
             address_hash(person(n)[0]), "Director", "", now)
            for n in range(contacts)
        ),
    )  # fmt: skip

    # Delegates, two to a booking: the big event first, then the rest over the 1,000 events.
    per_event = (size["delegates"] - size["big_event_delegates"]) // size["events"]
    plan = [(big_event_id, size["big_event_delegates"], False, now + timedelta(days=30))]
    plan += [(event_id, per_event, past, starts) for event_id, starts, past, _ in events]
    first_booking, first_delegate = loader.next_id("booking"), loader.next_id("delegate")
    bookings, delegates = [], []
    booking_id, delegate_id = first_booking, first_delegate
    for index, (event_id, count, past, starts) in enumerate(plan):
        offset = index * 7919
        for k in range(count):
            n = (offset + k) % contacts
            email, name = person(n)
            contact_id, org_id = first_contact + n, first_org + (n // 5) % orgs
            if k % 2 == 0:
                booking_id += 1
                booked = starts - timedelta(days=1 + rng.randrange(40), minutes=rng.randrange(1440))
                booked = min(booked, now - timedelta(minutes=rng.randrange(1, 20160)))
                bookings.append((booking_id, event_id, org_id, contact_id, "web", "{}", booked,
                                 booked))  # fmt: skip
            roll = rng.random()
            status = "cancelled" if roll < 0.06 else ("waitlisted" if roll < 0.10 else "confirmed")
            arrived = starts + timedelta(minutes=rng.randrange(50)) if past and roll > 0.3 else None
            delegates.append((
                delegate_id, booking_id, event_id, contact_id, name, email, "Director", "", "",
                status, booked, booked, arrived if status == "confirmed" else None,
            ))  # fmt: skip
            delegate_id += 1
    loader.load(
        "booking",
        ("id", "event_id", "organisation_id", "booker_id", "source", "business_as_typed",
         "privacy_acknowledged_at", "created_at"),
        bookings,
    )  # fmt: skip
    loader.load(
        "delegate",
        ("id", "booking_id", "event_id", "contact_id", "name", "email_normalised", "job_title",
         "phone", "needs", "status", "status_changed_at", "created_at", "checked_in_at"),
        delegates,
    )  # fmt: skip
    del bookings, delegates
    # The big event keeps room for its new delegates, so its page and list look as they would.
    connection.execute(
        sa.text("UPDATE event SET capacity = capacity + :more WHERE id = :id"),
        {"more": size["big_event_delegates"], "id": big_event_id},
    )
    loader.load(
        "outbox_message",
        OUTBOX_COLUMNS,
        outbox_rows(loader.next_id("outbox_message"), size["outbox"],
                    lambda n: person(n % contacts), rng),
    )  # fmt: skip
    loader.finish()
    return loader.counts


# --- measuring -----------------------------------------------------------------------------------


def log_in(app, email: str, password: str):
    client = app.test_client()
    token = CSRF.search(client.get("/staff/login").text).group(1)
    answer = client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": password}
    )
    if answer.status_code != 302:
        raise SystemExit(f"could not log in as {email}: {answer.status_code}")
    return client


class Meter:
    """Times a GET, counts the SQL statements it ran (a `before_cursor_execute` listener) and
    measures the CPU it took: this thread's (`time.thread_time`, which on SQLite is all of it) plus,
    on PostgreSQL, what each server process the request's statements ran on spent meanwhile (its
    `/proc/<pid>/schedstat`, in nanoseconds). On a shared machine a CPU time is a fairer figure
    than a wall time, which also counts the waits for a core; it still rises with the load (caches
    and cores shared with other work), so runs compare best at the same load."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.statements = 0
        self._backends: dict[int, int] = {}  # server process -> its CPU when first seen
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, connection, *args) -> None:
        self.statements += 1
        if connection.dialect.name == "postgresql":
            pid = connection.connection.driver_connection.info.backend_pid
            if pid not in self._backends:  # idle until this statement: its CPU so far
                self._backends[pid] = _process_cpu_ns(pid)

    def get(self, client, path: str) -> tuple[float, float, int, int]:
        """Seconds, CPU seconds, statements and status of one GET."""
        self.statements = 0
        self._backends = {}
        started, cpu_started = time.perf_counter(), time.thread_time_ns()
        response = client.get(path)
        response.get_data()
        seconds = time.perf_counter() - started
        cpu = time.thread_time_ns() - cpu_started
        cpu += sum(_process_cpu_ns(pid) - before for pid, before in self._backends.items())
        return seconds, cpu / 1e9, self.statements, response.status_code


def _process_cpu_ns(pid: int) -> int:
    """CPU time a process (the database server's, on this machine) has run, in nanoseconds."""
    try:
        with open(f"/proc/{pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[0])
    except OSError:  # another machine's server: its CPU is not ours to see
        return 0


def pages(ids: dict[str, object]) -> list[tuple[str, str, str]]:
    """(label, who, path) of every page measured; `who` is "staff" or "public"."""
    big = ids["big_event_id"]
    return [
        ("registrations, first page", "staff", f"/staff/events/{big}/registrations"),
        ("registrations, last page", "staff",
         f"/staff/events/{big}/registrations?page={ids['registrations_last']}"),
        (f"registrations, search “{SEARCH}”", "staff",
         f"/staff/events/{big}/registrations?q={SEARCH}"),
        ("registrations, sorted by business", "staff",
         f"/staff/events/{big}/registrations?sort=business"),
        (f"check-in door, search “{SEARCH}”", "staff", f"/staff/checkin/{big}?q={SEARCH}"),
        ("check-in door, no search", "staff", f"/staff/checkin/{big}"),
        ("outbox, first page", "staff", "/staff/outbox/"),
        ("outbox, a page in the middle", "staff",
         f"/staff/outbox/?before={ids['outbox_middle']}"),
        ("outbox, oldest page", "staff", "/staff/outbox/?after=0"),
        ("outbox, failed", "staff", "/staff/outbox/?status=failed"),
        (f"outbox, address search “{OUTBOX_SEARCH}”", "staff",
         f"/staff/outbox/?q={OUTBOX_SEARCH}"),
        ("outbox, one address", "staff", f"/staff/outbox/?q={quote(ids['outbox_address'])}"),
        ("staff events, upcoming", "staff", "/staff/events/"),
        ("staff events, all", "staff", "/staff/events/?show=all"),
        ("staff home (dashboard)", "staff", "/staff/"),
        ("public home", "public", "/"),
        ("public event page", "public", f"/events/{ids['big_event_slug']}"),
        ("public past events", "public", "/events/past"),
        ("public resources", "public", "/resources"),
        ("public calendar.ics", "public", "/calendar.ics"),
        ("API /api/v1/events", "public", "/api/v1/events"),
    ]  # fmt: skip


def page_ids(connection: sa.Connection, big_event_id: int) -> dict[str, object]:
    delegates = connection.scalar(
        sa.text("SELECT count(*) FROM delegate WHERE event_id = :id"), {"id": big_event_id}
    )
    low, high = connection.execute(sa.text("SELECT min(id), max(id) FROM outbox_message")).one()
    return {
        "big_event_id": big_event_id,
        "big_event_slug": connection.scalar(
            sa.text("SELECT slug FROM event WHERE id = :id"), {"id": big_event_id}
        ),
        "registrations_last": max(1, math.ceil(delegates / 50)),
        "outbox_middle": (low + high) // 2,
        "outbox_address": connection.scalar(  # the newest message's: one or two messages to it
            sa.text("SELECT to_address FROM outbox_message ORDER BY id DESC LIMIT 1")
        ),
    }


def measure(meter: Meter, clients: dict, ids: dict, rounds: int) -> dict[str, tuple]:
    """{label: (median ms, statements, status, path, median CPU ms)} for every page."""
    found = {}
    for label, who, path in pages(ids):
        client = clients[who]
        for _ in range(2):
            meter.get(client, path)
        times, cpu_times, statements, status = [], [], set(), 200
        for _ in range(rounds):
            seconds, cpu, count, code = meter.get(client, path)
            times.append(seconds)
            cpu_times.append(cpu)
            statements.add(count)
            status = code if code != 200 else status
        found[label] = (statistics.median(times) * 1000, max(statements), status, path,
                        statistics.median(cpu_times) * 1000)  # fmt: skip
        print(f"  {label}: {found[label][0]:.1f} ms ({found[label][4]:.1f} ms of CPU), "
              f"{max(statements)} statements, {status}", flush=True)  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the issue's sizes (1.0)")
    parser.add_argument("--rounds", type=int, default=9, help="timed requests of each page (9)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAMBER_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help="a PostgreSQL server (a database is created there and dropped afterwards), or "
        "'sqlite' for a SQLite file",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as tmp:
        database = Database(args.database_url, Path(tmp))
        with database as url:
            app = make_app(url, Path(tmp) / "instance")
            try:
                return run(app, database, args)
            finally:
                from chamber.extensions import db

                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()


def run(app, database: Database, args) -> int:
    from flask_migrate import upgrade

    from chamber.demo import load_demo
    from chamber.events.models import Event
    from chamber.extensions import db

    print(
        f"Scale {args.scale}: the demo, then {SIZES['events'] * args.scale:,.0f} events, "
        f"{SIZES['contacts'] * args.scale:,.0f} contacts, {SIZES['delegates'] * args.scale:,.0f} "
        f"delegates, {SIZES['outbox'] * args.scale:,.0f} outbox messages more; median of "
        f"{args.rounds} requests a page; {os.cpu_count()} CPU(s), Python "
        f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"Database: {database.label}. Public page cache off (CACHE_URL=none://).")
    with app.app_context():
        upgrade()
        login = load_demo(app)
        db.session.commit()
        now = datetime.now(UTC)
        big_event_id = db.session.scalar(
            db.select(Event.id).where(Event.starts_at > now).order_by(Event.starts_at)
        )
        with db.engine.connect() as connection:
            add_demo_outbox(connection)
            demo_ids = page_ids(connection, big_event_id)
        engine = db.engine
    meter = Meter(engine)
    clients = {"staff": log_in(app, login.email, login.password), "public": app.test_client()}

    print("Demo data:")
    demo = measure(meter, clients, demo_ids, args.rounds)
    started = time.perf_counter()
    with app.app_context(), db.engine.connect() as connection:
        added = build_large(connection, big_event_id, args.scale)
        large_ids = page_ids(connection, big_event_id)
    print(
        f"Built the large data set in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{count:,} {table}" for table, count in added.items())
    )
    print("Large data:")
    large = measure(meter, clients, large_ids, args.rounds)

    print()
    print("| page | demo ms | large ms | ratio | demo CPU ms | large CPU ms | CPU ratio "
          "| demo queries | large queries |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    failures = []
    for label, (demo_ms, demo_queries, demo_status, _, demo_cpu) in demo.items():
        large_ms, large_queries, large_status, path, large_cpu = large[label]
        flags = []
        if large_ms / demo_ms > 2.0:
            flags.append("slow")
        if large_queries != demo_queries:
            flags.append("queries grow")
        if 200 not in (demo_status,) or large_status != 200:
            failures.append(f"{label} ({path}): {demo_status} / {large_status}")
        print(
            f"| {label} | {demo_ms:.1f} | {large_ms:.1f} | **{large_ms / demo_ms:.2f}**"
            f"{' ⚠' if flags else ''} | {demo_cpu:.1f} | {large_cpu:.1f} | "
            f"**{large_cpu / demo_cpu:.2f}**{' ⚠' if large_cpu / demo_cpu > 2.0 else ''} "
            f"| {demo_queries} | {large_queries}"
            f"{' ⚠' if large_queries != demo_queries else ''} |"
        )
    over = [label for label in demo if large[label][0] / demo[label][0] > 2.0]
    over_cpu = [label for label in demo if large[label][4] / demo[label][4] > 2.0]
    grew = [label for label in demo if large[label][1] != demo[label][1]]
    print(
        f"\nOver 2×: {', '.join(over) or 'none'}. Over 2× in CPU: {', '.join(over_cpu) or 'none'}."
        f" Query count grows: {', '.join(grew) or 'none'}."
    )
    if failures:
        print("Pages that did not answer 200:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
