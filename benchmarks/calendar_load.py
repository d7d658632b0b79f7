"""The calendar feed and the events API with 1,000 events, against a bare Flask app.

    .venv/bin/python benchmarks/calendar_load.py [--database-url URL] [--duration 5] [--rounds 3]

The same harness as `booking_load.py` (imported from it): two gunicorn servers side by side on
free loopback ports with the same settings, Chamber and `benchmarks/hello_app.py`, and a load tool
(Debian's `wrk`, or the Python load generator) driving one target at a time. Chamber's database is
fresh, built by the migrations, and then filled by bulk inserts with `--events` (1,000) published
events, all inside the feed's window (upcoming, and ended within the last 90 days): each with four
agenda items and one or two speakers on its talks, in a mix of zones, a few of them cancelled.
The targets:

  hello      GET /                               on the bare app: the reference
  feed       GET /calendar.ics                   every event: the whole file, 200
  feed 304   GET /calendar.ics, If-None-Match    the feed's own ETag: 304, no body
  api        GET /api/v1/events                  the first page, default size (20)
  api 50     GET /api/v1/events?per_page=50      the first page, the largest size the API allows

The targets take turns for `--rounds` rounds (the full feed for twice `--duration`, since one
request takes a good part of a second), and Chamber finishes the requests still in flight before
the next target starts. The first table gives each one's median requests per second and p50/p99
latency, with the ratio to the bare app's figure from the same run. A second table sends each
target's request one at a time on one connection and gives the median time and the server's CPU
time per request (its gunicorn workers', read from /proc; not the database's), each also as a
multiple of the bare app's: the CPU ratio is the figure that other work on the machine disturbs
least. The API's
rate limit (120 a minute per address) is switched off in the benchmark's Chamber server, since every
request comes from 127.0.0.1; everything else is the production configuration.

The database is created on the PostgreSQL server (`CREATE DATABASE chamber_bench_...`) and dropped
at the end; `--database-url sqlite` uses a SQLite file instead. The whole run takes about two
minutes.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from booking_load import (  # benchmarks/booking_load.py (run as a script)
    GUNICORN_SETTINGS,
    HERE,
    ROOT,
    Gunicorn,
    PythonLoad,
    Target,
    WrkLoad,
    load_options,
    make_app,
    measure,
    print_table,
)
from support import Database, cpu_seconds, wait_until_idle

# Chamber as in production, but without the API's per-address rate limit: every request the load
# tool sends comes from 127.0.0.1, so the limit would answer 429 after 120 requests.
CHAMBER_APP = "chamber:create_app({'RATELIMIT_ENABLED': False})"

ZONES = [
    *["Europe/London"] * 6,
    "Europe/Dublin",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
]  # fmt: skip
VENUES = [
    ("Holiday Inn Stevenage", "St George's Way,\nStevenage SG1 1HS"),
    ("Fielder Centre", "Hatfield Business Park, Hatfield AL10 9TN"),
    ("Oaklands College; Conference suite", "Hatfield Road, St Albans AL4 0JA"),
    ("Watford Colosseum", "Rickmansworth Road, Watford WD17 3JN"),
]
TOPICS = [
    "Cybercrime", "Exporting after Brexit", "Net zero for small firms", "Hiring apprentices",
    "Cash flow", "AI in the office", "Selling to the public sector", "Succession planning",
]  # fmt: skip
AGENDA = [  # (minutes from the start, length, kind, title, speakers)
    (0, 15, "welcome", "Welcome and introductions", 0),
    (15, 45, "talk", "{topic}: what every business should know", 1),
    (60, 45, "panel", "Panel: questions, answers; and what comes next", 2),
    (105, 45, "networking", "Networking, coffee & close ☕", 0),
]
SPEAKERS = 200


# --- the data ------------------------------------------------------------------------------------


def seed(app, count: int) -> dict[str, int]:
    """Migrate, then bulk-insert `count` events with their agendas and speakers. Returns counts."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from chamber.events.models import (
        AgendaItem,
        AgendaItemSpeaker,
        AgendaKind,
        Event,
        EventStatus,
        Speaker,
    )
    from chamber.extensions import db

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with app.app_context():
        upgrade()
        speaker_ids = db.session.scalars(
            sa.insert(Speaker).returning(Speaker.id, sort_by_parameter_order=True),
            [
                {
                    "name": f"Speaker {n} Ó'Brien",
                    "job_title": "Director" if n % 3 else "Head of Security, Operations",
                    "organisation": f"Firm {n % 37} Ltd" if n % 5 else "",
                    "bio": "Twenty years in the trade.",
                    "email": f"speaker-{n}@private.example",  # never public
                    "created_at": now - timedelta(days=400),
                }
                for n in range(SPEAKERS)
            ],
        ).all()

        events, starts = [], []
        for n in range(count):
            tz = ZONES[n % len(ZONES)]
            # 30 % ended within the last 85 days (inside the feed's 90, even as the run goes on),
            # the rest spread over the coming year.
            day = (
                (now - timedelta(days=2 + n % 83))
                if n % 10 < 3
                else now + timedelta(days=1 + n % 365)
            )
            local = datetime.combine(day.date(), clock(8 + n % 3, 30), ZoneInfo(tz))
            start = local.astimezone(UTC)
            venue, address = VENUES[n % len(VENUES)]
            cancelled = n % 40 == 7
            topic = TOPICS[n % len(TOPICS)]
            starts.append(start)
            events.append(
                {
                    "slug": f"seminar-{n:04d}",
                    "title": f"{topic} seminar #{n}",
                    "summary": f"Practical advice on {topic.lower()}, from police and industry; "
                    "breakfast included. 🥐",
                    "description": "A morning of talks.\n\nBring a colleague.",
                    "venue_name": venue,
                    "venue_address": address,
                    "timezone": tz,
                    "starts_at": start,
                    "ends_at": start + timedelta(hours=3, minutes=30),
                    "capacity": 40 + n % 80,
                    "business_limit": 3,
                    "registration_closes_at": start - timedelta(days=1) if n % 2 else None,
                    "host": "Hertfordshire Chamber of Commerce",
                    "supporters": "Police and Crime Commissioner's Community Fund\nOctree"
                    if n % 4 == 0
                    else "",
                    "status": EventStatus.cancelled if cancelled else EventStatus.published,
                    "sequence": 2 if cancelled else n % 3,
                    "created_at": now - timedelta(days=120),
                    "updated_at": now - timedelta(days=100, minutes=n),
                }
            )
        event_ids = db.session.scalars(
            sa.insert(Event).returning(Event.id, sort_by_parameter_order=True), events
        ).all()

        items, item_speakers = [], []
        for n, (event_id, start) in enumerate(zip(event_ids, starts, strict=True)):
            topic = TOPICS[n % len(TOPICS)]
            for position, (offset, length, kind, title, speakers) in enumerate(AGENDA):
                items.append(
                    {
                        "event_id": event_id,
                        "starts_at": start + timedelta(minutes=offset),
                        "ends_at": start + timedelta(minutes=offset + length),
                        "position": position,
                        "title": title.format(topic=topic),
                        "description": "Slides afterwards, on request." if speakers else "",
                        "kind": AgendaKind(kind),
                    }
                )
                item_speakers.append([speaker_ids[(n * 3 + k) % SPEAKERS] for k in range(speakers)])
        item_ids = db.session.scalars(
            sa.insert(AgendaItem).returning(AgendaItem.id, sort_by_parameter_order=True), items
        ).all()
        links = [
            {"agenda_item_id": item_id, "speaker_id": speaker_id, "position": position}
            for item_id, speakers in zip(item_ids, item_speakers, strict=True)
            for position, speaker_id in enumerate(speakers)
        ]
        db.session.execute(sa.insert(AgendaItemSpeaker), links)
        db.session.commit()
        upcoming = sum(1 for e in events if e["ends_at"] > now)
        db.engine.dispose()
    return {
        "events": len(events),
        "upcoming": upcoming,
        "cancelled": sum(1 for e in events if e["status"] == EventStatus.cancelled),
        "agenda items": len(items),
        "speaker links": len(links),
        "zones": len(set(ZONES)),
    }


# --- checks --------------------------------------------------------------------------------------


def get(base_url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes, float]:
    """One GET on a new connection: status, headers, body and seconds taken."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        took = time.perf_counter() - started
        return response.status, dict(response.getheaders()), body, took
    finally:
        conn.close()


def check(base_url: str, seeded: dict[str, int]) -> str:
    """The answers the targets must give, before any load; returns the feed's ETag."""
    import json

    status, headers, body, _ = get(base_url, "/calendar.ics")
    events = body.count(b"BEGIN:VEVENT")
    if status != 200 or events != seeded["events"]:
        raise SystemExit(f"/calendar.ics: {status}, {events} VEVENTs, not {seeded['events']}")
    etag = headers["ETag"]
    zones = body.count(b"BEGIN:VTIMEZONE")
    print(f"  /calendar.ics: 200, {len(body) / 1e6:.2f} MB, {events} VEVENTs, {zones} VTIMEZONEs")
    status, _, body, _ = get(base_url, "/calendar.ics", {"If-None-Match": etag})
    if status != 304 or body:
        raise SystemExit(f"/calendar.ics with If-None-Match {etag}: {status}, not 304")
    print(f"  /calendar.ics with If-None-Match {etag}: 304")
    for path, size in (("/api/v1/events", 20), ("/api/v1/events?per_page=50", 50)):
        status, _, body, _ = get(base_url, path)
        page = json.loads(body) if status == 200 else {}
        if len(page.get("events", [])) != size or page.get("total") != seeded["upcoming"]:
            raise SystemExit(f"{path}: {status}, not {size} of {seeded['upcoming']} events")
        print(f"  {path}: 200, {len(body) / 1e3:.0f} kB, {size} of {page['total']} events")
    return etag


def one_at_a_time(server, path: str, headers: dict, count: int) -> tuple[float, float]:
    """`count` requests one after another on one keep-alive connection, with no other load from
    us: the median time of one, and the server's CPU time per request (its workers'), in ms. The
    CPU time is what the request costs, whatever else the machine is doing."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    wait_until_idle(server.process.pid)
    times, lost = [], 0
    headers = dict(headers)  # a conditional GET takes up the ETag of any 200 (WRK_CONDITIONAL)
    try:
        cpu = cpu_seconds(server.process.pid)
        while len(times) < count:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if "If-None-Match" in headers and response.status == 200:
                    headers["If-None-Match"] = response.getheader("ETag", "")
            except (OSError, http.client.HTTPException):  # the server closed a kept-alive
                conn.close()  # connection: count it, and go on with a new one
                lost += 1
                if lost > 3:
                    raise
                continue
            times.append(time.perf_counter() - started)
        cpu = cpu_seconds(server.process.pid) - cpu
    finally:
        conn.close()
    if lost:
        print(f"  ({path}: the server closed the connection {lost} times; retried)")
    return statistics.median(times) * 1000, cpu / count * 1000


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = load_options(__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events to load (1000)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as temp:
        folder = Path(temp)
        database = Database(args.database_url, folder)
        with database as database_url:
            app = make_app(database_url, folder / "local")
            started = time.monotonic()
            seeded = seed(app, args.events)
            took = time.monotonic() - started
            print(f"Database: {database.label}; migrated and loaded in {took:.1f} s:")
            print("  " + ", ".join(f"{n:,} {what}" for what, n in seeded.items()), flush=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAMBER_", "FLASK_"))}
            chamber_env = env | {
                "CHAMBER_DATABASE_URL": database_url,
                "CHAMBER_SECRET_KEY": secrets.token_urlsafe(48),
                "CHAMBER_INSTANCE_PATH": str(folder / "instance"),
                "CHAMBER_MAIL_BACKEND": "memory",
            }
            chamber = Gunicorn("chamber", CHAMBER_APP, ROOT, chamber_env, "/healthz", folder)
            hello = Gunicorn("hello", "hello_app:app", HERE, env, "/", folder)
            try:
                chamber.wait_until_ready()
                hello.wait_until_ready()
                etag = check(chamber.url, seeded)
                use_wrk = shutil.which("wrk") and not args.python_load
                load = (
                    WrkLoad(folder, args.connections) if use_wrk else PythonLoad(args.connections)
                )
                print(f"gunicorn {' '.join(GUNICORN_SETTINGS)} (both servers)")
                print(f"Load: {load.label}, {args.connections} connections, {args.duration:g} s")
                print(
                    f"each (the best of {args.tries} runs), {args.rounds} rounds; {os.cpu_count()} CPUs, load average ",
                    end="",
                )
                print(" ".join(f"{x:.1f}" for x in os.getloadavg()), flush=True)
                targets = [
                    Target("hello", hello.url, "/"),
                    # Seconds a request under load: a longer run, for a few dozen answers.
                    Target("feed", chamber.url, "/calendar.ics", seconds=2 * args.duration),
                    Target(
                        "feed 304", chamber.url, "/calendar.ics", headers={"If-None-Match": etag}
                    ),
                    Target("api", chamber.url, "/api/v1/events"),
                    Target("api 50", chamber.url, "/api/v1/events?per_page=50"),
                ]
                # A slow target leaves requests in flight when the load tool stops: let Chamber
                # finish them before the next target is measured.
                settle = lambda: wait_until_idle(chamber.process.pid)  # noqa: E731
                results = measure(
                    load, targets, args.duration, args.rounds, settle, tries=args.tries
                )
                n = args.events
                descriptions = {
                    "hello": "bare Flask `GET /` (reference)",
                    "feed": f"feed `GET /calendar.ics`, {n:,} events (200)",
                    "feed 304": "feed `GET /calendar.ics`, `If-None-Match` (304)",
                    "api": "API `GET /api/v1/events` (first 20)",
                    "api 50": "API `GET /api/v1/events?per_page=50` (first 50)",
                }
                print("\nUnder load:")
                print_table(results, descriptions)

                print("\nOne at a time (one connection, no other load from us):\n")
                print("| target | requests | ms (median) | × hello | server CPU ms | × hello |")
                print("|---|---:|---:|---:|---:|---:|")
                counts = {"hello": 1000, "feed": 10, "feed 304": 300, "api": 100, "api 50": 50}
                base = None
                for target in targets:
                    server = hello if target.name == "hello" else chamber
                    count = counts[target.name]
                    wall, cpu = one_at_a_time(server, target.path, target.headers, count)
                    base = base or (wall, cpu)
                    print(
                        f"| {descriptions[target.name]} | {count} | {wall:.1f} | "
                        f"{wall / base[0]:.0f} | {cpu:.2f} | {cpu / max(base[1], 1e-6):.0f} |",
                        flush=True,
                    )
                print("server CPU ms: the CPU time of the server's workers per request (not the")
                print("database's), which other load on the machine disturbs far less than times.")
                print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
                problems = []
                if bad := sum(r.bad_answers for runs in results.values() for r in runs):
                    problems.append(f"{bad} answers other than 2xx/3xx under load")
                if sockets := sum(r.socket_errors for runs in results.values() for r in runs):
                    problems.append(f"{sockets} socket errors or time-outs under load")
                for server in (chamber, hello):
                    if logged := server.errors_logged():
                        problems.append(f"{server.name} logged {len(logged)} errors: {logged[:3]}")
                for problem in problems:
                    print(f"PROBLEM: {problem}")
                if problems:  # what gunicorn said about it (worker time-outs, restarts)
                    lines = chamber.log_path.read_text(errors="replace").splitlines()
                    notes = [x for x in lines if "WARNING" in x or "ERROR" in x or "CRITICAL" in x]
                    print("\n".join(["chamber's gunicorn log:", *notes[-20:]]))
                return 1 if problems else 0
            finally:
                chamber.stop()
                hello.stop()


if __name__ == "__main__":
    sys.exit(main())
