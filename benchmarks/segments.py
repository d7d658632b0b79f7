"""How long a segment's count takes over 100,000 contacts (the issue's target: under 200 ms).

    .venv/bin/python benchmarks/segments.py [--scale 1.0] [--rounds 9] [--database-url URL]

A fresh database is built by the migrations and loaded with the demo, then with the large data
set of `benchmarks/scale.py` (20,000 organisations, 100,000 contacts, 500,000 delegates over 1,000
events at --scale 1.0), made to look like a chamber's directory with set-based updates: legal
forms, postcodes across Hertfordshire's districts, membership with tiers and dates, tags, and
marketing facts (confirmed consent for one contact in six, a soft opt-in for one in five, one in
fifty suppressed, one in forty opted out of the newsletter, one in a hundred archived).

Each segment below is counted (`directory.segments.tally`: who is in it, and who is left out by
reason, in one query) `--rounds` times after a warm-up; the figure is the median. Beside it, as
the reference, the same database answers a bare `SELECT count(*)` of the contacts at member
organisations: the ratio says what the segment's filters and the marketing rules cost over the
cheapest count there is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from scale import (  # benchmarks/scale.py (run as a script)
    Loader,
    address_hash,
    build_large,
    make_app,
)
from support import Database  # benchmarks/support.py

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 200.0
SEGMENTS = [  # (label, the builder's query string)
    ("everyone (the marketing rules alone)", {}),
    ("members", {"membership": "member"}),
    ("SME members who never attended", {
        "membership": "member", "size_band": ["micro", "small", "medium"],
        "never_attended": "yes"}),
    ("SG1 and Hitchin, tagged cyber-essentials", {
        "places": "SG1, Hitchin", "tags": "cyber-essentials"}),
    ("attended one of three events, newsletter", {
        "history": "attended", "event": ["EVENT1", "EVENT2", "EVENT3"], "topic": "newsletter"}),
    ("no-shows, joined 2015-2020", {
        "history": "no_show", "joined_from": "2015-01-01", "joined_to": "2020-12-31"}),
    ("members with consent or a soft opt-in (marketing status)", {
        "membership": "member", "status": ["consent", "soft_opt_in"]}),
]  # fmt: skip
REFERENCE = (
    "SELECT count(*) FROM contact WHERE organisation_id IN "
    "(SELECT id FROM organisation WHERE is_member)"
)


def directory_facts(connection: sa.Connection) -> None:
    """Make the bulk-loaded businesses and people look like a directory (set-based updates)."""
    statements = [
        "UPDATE organisation SET legal_form = CASE id % 7 WHEN 0 THEN 'sole_trader' "
        "WHEN 1 THEN 'partnership' WHEN 2 THEN 'unknown' WHEN 3 THEN 'llp' "
        "WHEN 4 THEN 'public_body' ELSE 'limited_company' END, "
        "postcode = 'SG' || (id % 19 + 1) || ' ' || (id % 9 + 1) || 'AB', "
        "town_or_postcode = CASE id % 4 WHEN 0 THEN 'Hitchin' WHEN 1 THEN 'Stevenage' "
        "WHEN 2 THEN 'Ware' ELSE 'Hertford' END, "
        "membership_tier = CASE WHEN is_member THEN 'Business' ELSE '' END",
        "UPDATE organisation SET member_since = CAST('2010-01-01' AS DATE) + (id % 5000) "
        "WHERE is_member",  # PostgreSQL adds days to a date; SQLite is handled below
        "UPDATE contact SET soft_opt_in_at = created_at WHERE id % 5 = 0",
        "UPDATE contact SET archived_at = created_at WHERE id % 100 = 7",
    ]
    if connection.dialect.name == "sqlite":
        statements[1] = (
            "UPDATE organisation SET member_since = date('2010-01-01', '+' || (id % 5000) || "
            "' days') WHERE is_member"
        )
    for statement in statements:
        connection.execute(sa.text(statement))
    loader = Loader(connection)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    contacts = connection.execute(sa.text("SELECT id, email FROM contact ORDER BY id")).all()
    organisations = connection.scalars(sa.text("SELECT id FROM organisation ORDER BY id")).all()
    # The demo has suppressed a few of its own people already.
    suppressed = set(connection.scalars(sa.text("SELECT email_hash FROM suppression")))
    first = loader.next_id("consent")
    loader.load(
        "consent",
        ("id", "contact_id", "purpose", "wording", "source", "given_at", "confirmed_at"),
        ((first + n, contact_id, "events", "Yes, send me news", "subscribe form", now, now)
         for n, (contact_id, _) in enumerate(contacts[::6])),
    )  # fmt: skip
    # The first id is read before the load starts: on PostgreSQL the rows are written by a COPY
    # on this very connection, which cannot run another statement until the COPY ends, so a
    # query made from inside the generator (once per row, as this was) waits for ever.
    # The demo suppresses some addresses already, and the list holds each (lower-cased) once.
    first = loader.next_id("suppression")
    listed = suppressed
    unlisted = []
    for _, email in contacts[3::50]:
        if address_hash(email) not in listed:
            listed.add(address_hash(email))
            unlisted.append(email.lower())
    loader.load(
        "suppression",
        ("id", "email", "email_hash", "reason", "created_at"),
        (
            (first + n, email, address_hash(email), "unsubscribe", now)
            for n, email in enumerate(unlisted)
        ),  # fmt: skip
    )
    # The demo's own rows are kept: what it opted out or tagged already is left as it is.
    opted_out = set(
        connection.scalars(
            sa.text("SELECT contact_id FROM topic_opt_out WHERE topic = 'newsletter'")
        )
    )
    tagged = set(
        connection.scalars(
            sa.text("SELECT organisation_id FROM organisation_tag WHERE tag = 'cyber-essentials'")
        )
    )
    loader.load(
        "topic_opt_out",
        ("contact_id", "topic", "created_at"),
        (
            (contact_id, "newsletter", now)
            for contact_id, _ in contacts[5::40]
            if contact_id not in opted_out
        ),
    )
    loader.load(
        "organisation_tag",
        ("organisation_id", "tag"),
        (
            (organisation_id, "cyber-essentials")
            for organisation_id in organisations[::8]
            if organisation_id not in tagged
        ),
    )
    loader.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of scale.py's sizes (1.0)")
    parser.add_argument("--rounds", type=int, default=9, help="timed counts of each (9)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAMBER_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help="a PostgreSQL server (a database is created and dropped), or 'sqlite'",
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


def timed(call, rounds: int) -> float:
    call()  # warm-up: plans, caches
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(app, database: Database, args) -> int:
    from flask_migrate import upgrade
    from werkzeug.datastructures import MultiDict

    from chamber.demo import load_demo
    from chamber.directory import segments
    from chamber.events.models import Event
    from chamber.extensions import db

    print(
        f"Segment counts at scale {args.scale}; median of {args.rounds}; {os.cpu_count()} CPU(s), "
        f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"Database: {database.label}.")
    with app.app_context():
        upgrade()
        load_demo(app)
        db.session.commit()
        big_event_id = db.session.scalar(
            db.select(Event.id).where(Event.starts_at > datetime.now(UTC)).order_by(Event.starts_at)
        )
        started = time.perf_counter()
        with db.engine.connect() as connection:
            build_large(connection, big_event_id, args.scale)
            directory_facts(connection)
        contacts = db.session.scalar(sa.text("SELECT count(*) FROM contact"))
        print(f"Built {contacts:,} contacts in {time.perf_counter() - started:.0f} s.")
        past = db.session.scalars(
            db.select(Event.id).where(Event.ends_at < datetime.now(UTC)).order_by(Event.id).limit(3)
        ).all()
        reference = timed(lambda: db.session.scalar(sa.text(REFERENCE)), args.rounds)
        print(f"Reference, a bare count of members' contacts: {reference:.1f} ms")
        print()
        print("| segment | in it | left out | ms | ratio to the bare count | under 200 ms |")
        print("|---|---:|---:|---:|---:|---|")
        slow = 0
        for label, wanted in SEGMENTS:
            wanted = {
                key: [str(past[int(v[-1]) - 1]) if v.startswith("EVENT") else v for v in value]
                if isinstance(value, list) else value
                for key, value in wanted.items()
            }  # fmt: skip
            filters = segments.SegmentFilters.from_args(MultiDict(wanted))
            tally = segments.tally(filters)
            ms = timed(lambda filters=filters: segments.tally(filters), args.rounds)
            slow += ms > TARGET_MS
            print(
                f"| {label} | {tally.included:,} | {tally.left_out_total:,} | {ms:.0f} | "
                f"{ms / reference:.1f} | {'yes' if ms <= TARGET_MS else 'NO'} |"
            )
            db.session.rollback()
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
