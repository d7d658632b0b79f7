"""Invariant 1 through a real server: gunicorn with several worker processes, many visitors at once.

A fresh database (SQLite file, or PostgreSQL when CHAMBER_TEST_DATABASE_URL is set) is built by the
migrations and served by `gunicorn -w 3 --threads 2 wsgi:app` on a free loopback port. Visitors are
threads, each with its own cookies: they fetch the page they need (for its CSRF token and session
cookie), wait at a barrier, then all post at once.

- A booking storm: 60 businesses for 10 seats. Exactly 10 confirmed, the other 50 waiting in the
  order their bookings were taken, every request answered with a redirect, nobody twice.
- Cancellations racing new bookings: with a full event and a waiting list, confirmed delegates are
  cancelled (through their manage links on the server, and by `services.cancel_delegate` in threads
  of this process) while new bookings arrive. A monitor samples the counts all the while: never more
  confirmed than seats, never a free seat while someone waits, and each seat given once.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade

from chamber import create_app
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members.models import Contact, SizeBand
from chamber.registration import notifications, services
from chamber.registration.models import Delegate, DelegateStatus
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.factories import make_booking
from tests.smtp_server import free_port
from tests.support import CSRF_PATTERN, render_waiting

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WORKERS, THREADS = 3, 2
CAPACITY = 10
STARTUP_SECONDS = 60
REQUEST_TIMEOUT = 60  # seconds for one HTTP request (a booking waits for the seat lock)
RACE_SECONDS = 120  # for a whole race: every visitor must have had an answer by then


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_no_errors_logged(self) -> None:
        log = self.log()
        assert "Traceback" not in log and "[ERROR]" not in log, log[-20_000:]


def _healthy(url: str) -> bool:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL to the group it leads if it hangs."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # our own process group: gunicorn and its workers
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def served(databases, tmp_path_factory) -> Iterator[tuple[Server, Flask]]:
    """A fresh migrated database, gunicorn serving it, and an app in this process to read it."""
    folder = tmp_path_factory.mktemp("gunicorn")
    url = databases.new()
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder / "local")}
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAMBER_", "FLASK_"))}
    env.update(
        CHAMBER_DATABASE_URL=url,
        CHAMBER_SECRET_KEY=secrets.token_urlsafe(48),
        CHAMBER_INSTANCE_PATH=str(folder / "instance"),
        CHAMBER_MAIL_BACKEND="memory",
        CHAMBER_BASE_URL=base_url,
        CHAMBER_BOOKING_LIMIT_PER_ADDRESS="10000 per hour",  # every visitor here is 127.0.0.1
    )
    log_path = folder / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(WORKERS), "--threads", str(THREADS),
        "--bind", f"127.0.0.1:{port}",
        "--timeout", "60", "--graceful-timeout", "10",
        "wsgi:app",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(base_url):
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn never answered /healthz:\n{log_path.read_text()}")
            time.sleep(0.1)  # the poll interval; the deadline above bounds the wait
        yield Server(base_url, log_path), app
    finally:
        _stop(process)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def server(served) -> Server:
    return served[0]


@pytest.fixture
def app(served) -> Iterator[Flask]:
    """This module's own app (on the served database), with a context for setup and assertions."""
    app = served[1]
    with app.app_context():
        yield app
        db.session.remove()


# --- visitors ------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    location: str
    text: str


class Visitor:
    """One browser: its own cookies, a new connection per request."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> Answer:
        headers = {"Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for cookie in response.headers.get_all("Set-Cookie") or []:
                name, _, value = cookie.split(";", 1)[0].partition("=")
                self.cookies[name.strip()] = value.strip()
            return Answer(response.status, response.headers.get("Location", ""), text)
        finally:
            conn.close()

    def csrf_token(self, path: str) -> str:
        page = self.request("GET", path)
        assert page.status == 200, (path, page.status, page.text[:2000])
        match = CSRF_PATTERN.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)


def booking_form(csrf_token: str, tag: str) -> dict:
    return {
        "csrf_token": csrf_token,
        "business_name": f"Business {tag}",
        "size_band": "micro",
        "sector": "Testing",
        "town_or_postcode": "Stevenage",
        "is_member": "no",
        "booker_name": f"Booker {tag}",
        "booker_email": f"booker-{tag}@example.com",
        "delegates-0-name": f"Delegate {tag}",
        "delegates-0-email": f"delegate-{tag}@example.com",
        "delegates-0-job_title": "Director",
        "privacy": "y",
    }


def web_booking(server: Server, slug: str, tag: str) -> Callable[[], Callable[[], Answer]]:
    """A visitor who opens the form, then (when told) submits it."""

    def prepare() -> Callable[[], Answer]:
        visitor = Visitor(server.url)
        path = f"/events/{slug}/register"
        form = booking_form(visitor.csrf_token(path), tag)
        return lambda: visitor.request("POST", path, form)

    return prepare


def race(tasks: list[Callable[[], Callable[[], object]]]) -> list[object]:
    """Run each task's preparation, then all their actions at once, each in its own thread.

    Returns each action's result (or the exception it raised), in the order of `tasks`.
    """
    barrier = threading.Barrier(len(tasks))
    results: list[object] = [None] * len(tasks)

    def run(index: int, task) -> None:
        try:
            act = task()
            barrier.wait(timeout=RACE_SECONDS)
            results[index] = act()
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            barrier.abort()
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, t), daemon=True) for i, t in enumerate(tasks)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + RACE_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    unanswered = sum(thread.is_alive() for thread in threads)
    assert unanswered == 0, f"{unanswered} visitors still waiting after {RACE_SECONDS}s"
    return results


# --- the database --------------------------------------------------------------------------------


def new_event(slug: str) -> Event:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=14)
    event = Event(
        slug=slug,
        title=f"Cyber seminar {slug}",
        summary="Protect your business.",
        venue_name="Holiday Inn Stevenage",
        venue_address="St George's Way, Stevenage SG1 1HS",
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        capacity=CAPACITY,
        business_limit=1,
        status=EventStatus.published,
        host="Hertfordshire Chamber of Commerce",
    )
    db.session.add(event)
    db.session.commit()
    return event


def delegates_of(event_id: int) -> list[Delegate]:
    """Every delegate of the event as the database has them now, in the order they were added."""
    db.session.remove()  # a fresh session: nothing cached, no old snapshot
    return list(
        db.session.scalars(
            db.select(Delegate).where(Delegate.event_id == event_id).order_by(Delegate.id)
        )
    )


def outbox_keys(prefix: str) -> list[str]:
    return list(
        db.session.scalars(db.select(OutboxMessage.key).where(OutboxMessage.key.like(f"{prefix}%")))
    )


def assert_waiting_list_in_order(event_id: int, delegates: list[Delegate]) -> None:
    """The positions people are told, in the waiting list's order (status_changed_at, then id:
    the order the seat lock decided their places in), run 1, 2, 3, ... with no gaps or repeats."""
    by_list_order = decision_order(d for d in delegates if d.status == DelegateStatus.waitlisted)
    positions = [services.waitlist_position(d) for d in by_list_order]
    assert positions == list(range(1, len(by_list_order) + 1))


def assert_each_waiting_person_is_told_their_place(delegates: list[Delegate]) -> None:
    """The number in each waiting-list email is the place `waitlist_position` gives them now:
    the booking queues its emails before the seat lock, with the number written in after it, and
    the worker renders them (here, as it does when it claims them)."""
    waiting = [d for d in delegates if d.status == DelegateStatus.waitlisted]
    render_waiting()
    told = {
        key: body
        for key, body in db.session.execute(
            db.select(OutboxMessage.key, OutboxMessage.text_body + OutboxMessage.html_body).where(
                OutboxMessage.key.like("waitlisted:delegate:%")
            )
        )
    }
    for d in waiting:
        body = told[f"waitlisted:delegate:{d.id}"]
        assert f"waiting list, number {services.waitlist_position(d)}." in body
        assert body.count("waiting list, number") == 2  # text and HTML, no other number
        assert "waiting-list-place-" not in body


def decision_order(delegates) -> list[Delegate]:
    """In the order the seat lock decided their places: the time of the decision, written under
    the lock (ids are handed out before it, as each booking is written)."""
    return sorted(delegates, key=lambda d: (d.status_changed_at, d.id))


def assert_one_active_row_per_person(delegates: list[Delegate]) -> None:
    active = Counter(d.email_normalised for d in delegates if d.status != DelegateStatus.cancelled)
    assert [email for email, n in active.items() if n > 1] == []


# --- the tests -----------------------------------------------------------------------------------


def test_a_booking_storm_through_several_server_processes_never_oversells(app, server):
    event = new_event("storm")
    people = 60
    started = time.monotonic()

    answers = race([web_booking(server, event.slug, f"storm-{n}") for n in range(people)])
    took = time.monotonic() - started

    failures = [a for a in answers if not isinstance(a, Answer)]
    assert failures == [], failures[:3]
    assert Counter(a.status for a in answers) == {302: people}, [
        (a.status, a.text[:500]) for a in answers if a.status != 302
    ][:3]
    assert {urlsplit(a.location).path for a in answers} == {f"/events/{event.slug}/register/done"}

    delegates = delegates_of(event.id)
    assert len(delegates) == people  # every booking stored, once
    assert Counter(d.status for d in delegates) == {
        DelegateStatus.confirmed: CAPACITY,
        DelegateStatus.waitlisted: people - CAPACITY,
    }
    # First come, first served: the seats went to the first ten bookings the lock let through,
    # and every later one waits (the time of each decision is written under the lock).
    assert [d.status for d in decision_order(delegates)] == [
        DelegateStatus.confirmed
    ] * CAPACITY + [DelegateStatus.waitlisted] * (people - CAPACITY)
    assert_waiting_list_in_order(event.id, delegates)
    assert_one_active_row_per_person(delegates)
    assert {d.email_normalised for d in delegates} == {
        f"delegate-storm-{n}@example.com" for n in range(people)
    }
    contacts = db.session.scalar(
        db.select(db.func.count(Contact.id)).where(Contact.email.like("%storm-%@example.com"))
    )
    assert contacts == 2 * people  # a booker and a delegate each, no duplicates
    # Each delegate was told the right thing, in the transaction that gave them their status.
    assert len(outbox_keys("confirmed:delegate:")) == CAPACITY
    assert len(outbox_keys("waitlisted:delegate:")) == people - CAPACITY
    assert_each_waiting_person_is_told_their_place(delegates)
    server.assert_no_errors_logged()
    print(f"\n{people} bookings through {WORKERS}x{THREADS} gunicorn workers in {took:.1f}s")


def test_cancellations_racing_new_bookings_never_leave_a_seat_empty_or_give_it_twice(app, server):
    event = new_event("race")
    event_id = event.id
    # A full event and ten people waiting, booked one by one.
    confirmed, waiting, tokens = [], [], {}
    for n in range(2 * CAPACITY):
        tag = f"setup-{n}"
        person = DelegateDetails(f"Delegate {tag}", f"delegate-{tag}@example.com")
        business = BusinessDetails(f"Business {tag}", SizeBand.small)
        result = make_booking(event, person, business=business, source="web", commit=False)
        tokens[n] = services.new_manage_token(result.booking)
        db.session.commit()
        (confirmed if result.confirmed else waiting).append(
            (result.confirmed or result.waitlisted)[0].id
        )
    assert len(confirmed) == len(waiting) == CAPACITY

    def cancel_on_the_web(n: int, delegate_id: int):
        def prepare():
            visitor = Visitor(server.url)
            manage = f"/r/{tokens[n]}"
            form = {"csrf_token": visitor.csrf_token(f"{manage}/cancel/{delegate_id}")}
            return lambda: visitor.request("POST", f"{manage}/cancel/{delegate_id}", form)

        return prepare

    def cancel_in_a_thread(delegate_id: int):
        def cancel() -> list[int]:
            with app.app_context():
                try:
                    event = db.session.get(Event, event_id)
                    delegate = db.session.get(Delegate, delegate_id)
                    promoted = services.cancel_delegate(event, delegate)
                    for person in promoted:
                        notifications.place_available(event, person)
                    db.session.commit()
                    return [d.id for d in promoted]
                finally:
                    db.session.remove()

        return lambda: cancel

    # Six confirmed people cancel (three on their manage page, three by staff in this process),
    # so do the last two on the waiting list, while twenty new businesses book.
    cancelled = confirmed[:6] + waiting[8:]
    tasks = [
        cancel_on_the_web(0, confirmed[0]),
        cancel_on_the_web(2, confirmed[2]),
        cancel_on_the_web(4, confirmed[4]),
        cancel_on_the_web(CAPACITY + 9, waiting[9]),
        cancel_in_a_thread(confirmed[1]),
        cancel_in_a_thread(confirmed[3]),
        cancel_in_a_thread(confirmed[5]),
        cancel_in_a_thread(waiting[8]),
    ]
    newcomers = 20
    tasks += [web_booking(server, event.slug, f"race-{n}") for n in range(newcomers)]

    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def monitor() -> None:
        """Read both counts in one statement (one snapshot), over and over, until told to stop."""
        count = db.func.count(Delegate.id)
        query = db.select(
            count.filter(Delegate.status == DelegateStatus.confirmed),
            count.filter(Delegate.status == DelegateStatus.waitlisted),
        ).where(Delegate.event_id == event_id)
        with app.app_context():
            try:
                while not stop.is_set():
                    samples.append(tuple(db.session.execute(query).one()))
                    db.session.rollback()
                    stop.wait(0.002)
            finally:
                db.session.remove()

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    try:
        results = race(tasks)
    finally:
        stop.set()
        watcher.join(timeout=30)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [], failures[:3]
    web_cancels, thread_cancels, bookings = results[:4], results[4:8], results[8:]
    assert [a.status for a in web_cancels + bookings] == [302] * (4 + newcomers), [
        (a.status, a.text[:500]) for a in web_cancels + bookings if a.status != 302
    ][:3]

    # At every moment anyone could see: never more confirmed than seats, and no free seat while
    # someone waits.
    assert len(samples) > 10
    assert all(c <= CAPACITY for c, _ in samples), max(samples)
    assert all(w == 0 or c == CAPACITY for c, w in samples), [
        s for s in samples if s[1] and s[0] != CAPACITY
    ][:5]

    delegates = delegates_of(event_id)
    status = {d.id: d.status for d in delegates}
    counts = Counter(status.values())
    assert counts[DelegateStatus.confirmed] <= CAPACITY
    if counts[DelegateStatus.waitlisted]:
        assert counts[DelegateStatus.confirmed] == CAPACITY
    # Each freed seat went to whoever had waited longest, once: the first six on the list.
    promoted = waiting[:6]
    assert [status[i] for i in cancelled] == [DelegateStatus.cancelled] * len(cancelled)
    assert [status[i] for i in confirmed[6:] + promoted] == [DelegateStatus.confirmed] * CAPACITY
    assert [status[i] for i in waiting[6:8]] == [DelegateStatus.waitlisted] * 2
    newcomer_ids = [d.id for d in delegates if d.email_normalised.startswith("delegate-race-")]
    assert len(newcomer_ids) == newcomers
    assert {status[i] for i in newcomer_ids} == {
        DelegateStatus.waitlisted
    }  # nobody jumped the queue
    # Each confirmed person cancelled in this process freed exactly one seat; the waiting one none.
    assert [len(r) for r in thread_cancels] == [1, 1, 1, 0]
    assert {i for r in thread_cancels for i in r} <= set(promoted)
    keys = outbox_keys("promoted:delegate:")
    assert sorted(int(k.split(":")[2]) for k in keys) == sorted(promoted)  # told once each
    assert_waiting_list_in_order(event_id, delegates)
    assert_one_active_row_per_person(delegates)
    server.assert_no_errors_logged()
