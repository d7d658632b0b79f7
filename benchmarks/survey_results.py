"""Survey results at scale: the results page of a survey with 10,000 responses beside the same page
for a survey with 100, in the same run.

    .venv/bin/python benchmarks/survey_results.py [--responses 10000] [--small 100] [--database-url URL]

Two past events each get the demo's survey questions (overall rating, most useful session, rate
each talk, NPS, breach yes/no, resources multiple choice, what next time as free text): one with
`--small` responses, one with `--responses`. Their rows (businesses, contacts, bookings,
delegates, invitations, responses and some eleven answers each) are bulk-inserted with Core
`executemany`, so building 10,000 responses takes seconds, not minutes.

An organiser then opens `/staff/surveys/<id>/results` through the Flask test client (the whole
request: routing, the staff guard, session, SQL, templates), without a breakdown and with
`?breakdown=sme`, taking turns between the small and the big survey so that a noisy moment hurts
both. The table gives medians; the figure that matters is the **ratio big ÷ small**, with the
number of SQL statements each page ran (the same for both: the queries do not grow with the
responses). The CSV export is timed too; it reads every answer, so it grows with them.

The database is a fresh SQLite file in a temporary folder or, with --database-url, a fresh database
created on that PostgreSQL server and dropped afterwards; the migrations build it either way.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from support import Database  # benchmarks/support.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
PASSWORD = "a benchmark password"  # noqa: S105 (a throwaway account in a throwaway database)
EVENT_DAY = datetime(2025, 6, 12, 7, 0, tzinfo=UTC)
SESSIONS = ["What one tweet gives away", "Malware from websites you trust",
            "Cyber Essentials and your security plan", "Counting the cost"]  # fmt: skip
RESOURCES = ["The NCSC Small Business Guide", "Cyber Essentials certification",
             "Reporting fraud to Action Fraud", "Staff awareness training", "None of these"]  # fmt: skip
SECTORS = ["Manufacturing", "Professional services", "Legal", "Health", "Technology", "Retail",
           "Construction", "Finance", "Hospitality", "Charity", "Public sector", "Creative"]  # fmt: skip
BANDS = ["micro", "small", "medium", "large"]


def make_app(url: str, instance: Path):
    from chamber import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(instance),
            "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
            "MAIL_BACKEND": "memory",
        }
    )


# --- data ----------------------------------------------------------------------------------------


class Ids:
    """Explicit primary keys, so that related rows can be inserted in bulk without reading back."""

    def __init__(self):
        self.next: dict[str, int] = {}

    def take(self, table: str, count: int = 1) -> range:
        start = self.next.get(table, 1)
        self.next[table] = start + count
        return range(start, start + count)


def build_survey(ids: Ids, slug: str, responses: int, seed: int) -> int:
    """An event with four talks, its survey and `responses` answered invitations; the survey id."""
    from chamber.events.models import AgendaItem, Event
    from chamber.extensions import db
    from chamber.members.models import Contact, Organisation
    from chamber.registration.models import Booking, Delegate
    from chamber.surveys.models import Answer, Invitation, Question, Response, Survey

    rng = random.Random(seed)
    now = datetime.now(UTC)
    (event_id,) = ids.take("event")
    starts = EVENT_DAY + timedelta(days=seed)
    insert = lambda model, rows: rows and db.session.execute(sa.insert(model), rows)  # noqa: E731
    insert(Event, [dict(
        id=event_id, slug=slug, title=f"Cybercrime seminar {slug}", summary="", description="",
        venue_name="Holiday Inn Stevenage", venue_address="", timezone="Europe/London",
        starts_at=starts, ends_at=starts + timedelta(hours=4), capacity=responses + 10,
        business_limit=responses + 10, status="published", host="", supporters="", sequence=0,
        created_at=now, updated_at=now,
    )])  # fmt: skip
    talk_ids = list(ids.take("agenda_item", len(SESSIONS)))
    insert(AgendaItem, [dict(
        id=item_id, event_id=event_id, title=title, description="", kind="talk", position=n,
        starts_at=starts + timedelta(minutes=30 + 40 * n),
        ends_at=starts + timedelta(minutes=65 + 40 * n),
    ) for n, (item_id, title) in enumerate(zip(talk_ids, SESSIONS, strict=True))])  # fmt: skip
    (survey_id,) = ids.take("survey")
    sent = starts + timedelta(days=1, hours=3)
    insert(Survey, [dict(
        id=survey_id, event_id=event_id, title="How was the seminar?", intro="", status="sent",
        recipients="checked_in", send_at=sent, sent_at=sent, reminder_enabled=True,
        reminder_after_days=4, reminders_sent_at=sent + timedelta(days=4), anonymous=False,
        created_at=now, updated_at=now,
    )])  # fmt: skip
    kinds = [
        ("rating", "Overall, how would you rate the seminar?", ""),
        ("single_choice", "Which session was most useful to you?", "\n".join(SESSIONS)),
        ("agenda_rating", "How useful was each talk?", ""),
        ("nps", "How likely are you to recommend our seminars?", ""),
        ("yes_no", "Did your business have a cyber breach in the last 12 months?", ""),
        ("multiple_choice", "Which resources will you use?", "\n".join(RESOURCES)),
        ("free_text", "What should we cover next time?", ""),
    ]
    q = list(ids.take("survey_question", len(kinds)))
    insert(Question, [dict(
        id=qid, survey_id=survey_id, position=n, kind=kind, text=text, help_text="",
        required=False, choices=choices,
    ) for n, (qid, (kind, text, choices)) in enumerate(zip(q, kinds, strict=True))])  # fmt: skip

    businesses = max(1, responses // 4)
    organisations, bookings = [], []
    for org_id, booking_id in zip(
        ids.take("organisation", businesses), ids.take("booking", businesses), strict=True
    ):
        band = rng.choices(BANDS, weights=[32, 34, 20, 14])[0]
        organisations.append(dict(
            id=org_id, name=f"Business {org_id}", name_normalised=f"business {org_id}",
            size_band=band, sector=rng.choice(SECTORS), town_or_postcode="",
            is_member=rng.random() < 0.55, created_at=now, updated_at=now,
        ))  # fmt: skip
        bookings.append((booking_id, org_id, band, organisations[-1]))
    contacts, booking_rows, delegates, invitations, response_rows, answers = [], [], [], [], [], []
    answer_ids = iter(ids.take("survey_answer", responses * 16))
    person_ids = zip(
        ids.take("contact", responses),
        ids.take("delegate", responses),
        ids.take("survey_invitation", responses),
        ids.take("survey_response", responses),
        strict=True,
    )
    for n, (contact_id, delegate_id, invitation_id, response_id) in enumerate(person_ids):
        booking_id, org_id, band, organisation = bookings[n % businesses]
        email = f"person{contact_id}@example.com"
        contacts.append(dict(id=contact_id, organisation_id=org_id, name=f"Person {contact_id}",
                             email=email, job_title="", phone="", created_at=now))  # fmt: skip
        if n < businesses:
            booking_rows.append(dict(id=booking_id, event_id=event_id, organisation_id=org_id,
                                     booker_id=contact_id, source="staff", created_at=now))  # fmt: skip
        delegates.append(dict(
            id=delegate_id, booking_id=booking_id, event_id=event_id, contact_id=contact_id,
            name=f"Person {contact_id}", email_normalised=email, job_title="", phone="", needs="",
            status="confirmed", status_changed_at=now, created_at=now, checked_in_at=starts,
        ))  # fmt: skip
        submitted = sent + timedelta(minutes=rng.randint(5, 60 * 24 * 9))
        invitations.append(dict(id=invitation_id, survey_id=survey_id, delegate_id=delegate_id,
                                email=email, invited_at=sent, responded_at=submitted))  # fmt: skip
        response_rows.append(dict(
            id=response_id, survey_id=survey_id, invitation_id=invitation_id,
            submitted_at=submitted, updated_at=submitted, size_band=band,
            sector=organisation["sector"], is_member=organisation["is_member"],
        ))  # fmt: skip
        answers.extend(_answers(rng, answer_ids, response_id, q, talk_ids, band))
    insert(Organisation, organisations)
    insert(Contact, contacts)
    insert(Booking, booking_rows)
    insert(Delegate, delegates)
    insert(Invitation, invitations)
    insert(Response, response_rows)
    for start in range(0, len(answers), 50_000):
        insert(Answer, answers[start : start + 50_000])
    db.session.commit()
    return survey_id


def _answers(rng, answer_ids, response_id, q, talk_ids, band) -> list[dict]:
    rating, session, each_talk, nps, breach, resources, next_time = q
    blank = dict(agenda_item_id=None, number=None, choice=None, text=None)

    def answer(question_id, **values):
        return blank | dict(id=next(answer_ids), response_id=response_id,
                            question_id=question_id) | values  # fmt: skip

    breach_yes = 0.93 if band == "large" else 0.74
    rows = [
        answer(rating, number=rng.choices([1, 2, 3, 4, 5], weights=[1, 2, 7, 18, 13])[0]),
        answer(session, choice=rng.choice(SESSIONS)),
        answer(nps, number=rng.choices(range(11), weights=[1, 0, 1, 1, 1, 2, 3, 6, 8, 9, 9])[0]),
        answer(
            breach,
            choice="Yes"
            if rng.random() < breach_yes
            else rng.choice(["No", "No", "Prefer not to say"]),
        ),  # fmt: skip
    ]
    rows += [answer(each_talk, agenda_item_id=t, number=rng.randint(2, 5)) for t in talk_ids]
    rows += [answer(resources, choice=r) for r in RESOURCES[:-1] if rng.random() < 0.4]
    if rng.random() < 0.6:
        rows.append(answer(next_time, text=f"More practical examples, please ({response_id})."))
    return rows


# --- measuring -----------------------------------------------------------------------------------


def staff_client(app):
    """A test client logged in as an organiser, through the real login form."""
    from chamber.auth.models import Role, StaffUser
    from chamber.extensions import db

    with app.app_context():
        user = StaffUser(email="bench@example.com", name="Bench Organiser", role=Role.organiser)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    client = app.test_client()
    token = CSRF.search(client.get("/staff/login").text).group(1)
    answer = client.post(
        "/staff/login",
        data={"csrf_token": token, "email": "bench@example.com", "password": PASSWORD},
    )
    assert answer.status_code == 302, answer.status_code
    return client


def timed_get(app, client, path: str) -> tuple[float, int, int]:
    """Seconds, SQL statements and bytes of one GET (which must answer 200)."""
    from chamber.extensions import db

    statements = []
    with app.app_context():
        engine = db.engine

    def count(*args):
        statements.append(1)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        response = client.get(path)
        seconds = time.perf_counter() - started
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, (path, response.status_code)
    return seconds, len(statements), len(response.data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=10_000, help="the big survey (10000)")
    parser.add_argument("--small", type=int, default=100, help="the small survey (100)")
    parser.add_argument("--rounds", type=int, default=15, help="requests of each page (15)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAMBER_BENCH_DATABASE_URL"),
        help="a PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres: "
        "a database is created there and dropped afterwards (default: SQLite)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as tmp:
        database = Database(args.database_url, Path(tmp))
        with database as url:
            app = make_app(url, Path(tmp) / "instance")
            try:
                run(app, database, args)
            finally:
                from chamber.extensions import db

                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
    return 0


def run(app, database: Database, args) -> None:
    from flask_migrate import upgrade

    from chamber.extensions import db

    print(
        f"Survey results: {args.small} vs {args.responses} responses, {args.rounds} requests of "
        f"each page; {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"Database: {database.label}")
    with app.app_context():
        upgrade()
        ids = Ids()
        started = time.perf_counter()
        small = build_survey(ids, "small", args.small, seed=1)
        big = build_survey(ids, "big", args.responses, seed=2)
        answers = db.session.scalar(sa.text("SELECT count(*) FROM survey_answer"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        print(f"Built {args.small + args.responses} responses ({answers} answers) in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    client = staff_client(app)
    pages = {
        "results page": "/staff/surveys/{id}/results",
        "results by SME/large": "/staff/surveys/{id}/results?breakdown=sme",
        "results by sector": "/staff/surveys/{id}/results?breakdown=sector",
        "CSV export": "/staff/surveys/{id}/results.csv",
    }
    rows = []
    for label, pattern in pages.items():
        small_path, big_path = pattern.format(id=small), pattern.format(id=big)
        timed_get(app, client, small_path)  # warm-up
        timed_get(app, client, big_path)
        times: dict[str, list[float]] = {"small": [], "big": []}
        queries, sizes = {}, {}
        for _ in range(args.rounds):
            for which, path in (("small", small_path), ("big", big_path)):
                seconds, statements, size = timed_get(app, client, path)
                times[which].append(seconds)
                queries[which], sizes[which] = statements, size
        small_ms = statistics.median(times["small"]) * 1000
        big_ms = statistics.median(times["big"]) * 1000
        rows.append((label, small_ms, big_ms, queries, sizes))
        print(f"  {label}: {small_ms:.1f} ms vs {big_ms:.1f} ms")
    print()
    print(f"| page | {args.small} responses | {args.responses:,} responses | ratio | SQL statements "
          "(small / big) | page size (small / big) |")  # fmt: skip
    print("|---|---:|---:|---:|---|---|")
    for label, small_ms, big_ms, queries, sizes in rows:
        print(
            f"| {label} | {small_ms:.1f} ms | {big_ms:.1f} ms | **{big_ms / small_ms:.2f}** | "
            f"{queries['small']} / {queries['big']} | "
            f"{sizes['small'] / 1024:.0f} / {sizes['big'] / 1024:.0f} kB |"
        )


if __name__ == "__main__":
    sys.exit(main())
