"""The rate limits hold in the documented deployment: `gunicorn -w 4 wsgi:app` with the counters in
Redis, every request from one address; and with `memory://` gunicorn warns at start.

Redis must answer at 127.0.0.1:6379 (`apt-get install redis-server`). Where it does not, the Redis
test is skipped with a reason, except in CI (`CI=true`), where it fails. Each run uses a key prefix
of its own and deletes only its own keys."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from flask_migrate import upgrade

from chamber import create_app
from chamber.auth.models import Role, StaffUser
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from tests.factories import FAST_SCRYPT, PASSWORD
from tests.smtp_server import free_port
from tests.support import CSRF_PATTERN

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
STAFF_EMAIL = "door@example.com"
EVENT_SLUG = "cyber-seminar"
BOOKING_LIMIT = 5


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix for this run; the keys under it are deleted afterwards, and only those."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        reason = f"Redis does not answer at {REDIS_URL} ({error}); start redis-server to run this"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}. CI must run it.")
        pytest.skip(reason)
    prefix = f"chamber-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def deployed_database(databases, tmp_path) -> str:
    """A fresh database (SQLite, or PostgreSQL under CHAMBER_TEST_DATABASE_URL) built by the
    migrations, with one published event and one staff account."""
    url = databases.new()
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "INSTANCE_PATH": str(tmp_path / "setup"),
        "PASSWORD_HASH_METHOD": FAST_SCRYPT,
    })  # fmt: skip
    with app.app_context():
        upgrade()
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=14)
        db.session.add(Event(
            slug=EVENT_SLUG, title="Cyber seminar", summary="Protect your business.",
            venue_name="Holiday Inn Stevenage", venue_address="St George's Way, Stevenage SG1 1HS",
            starts_at=starts, ends_at=starts + timedelta(hours=4), capacity=80, business_limit=3,
            status=EventStatus.published, host="Hertfordshire Chamber of Commerce",
        ))  # fmt: skip
        staff = StaffUser(email=STAFF_EMAIL, name="Dee Door", role=Role.checkin, active=True)
        staff.set_password(PASSWORD)
        db.session.add(staff)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return url


@contextmanager
def gunicorn(folder: Path, database_url: str, workers: int, **settings: str) -> Iterator[dict]:
    """`gunicorn -w N wsgi:app` from the repository folder (so gunicorn.conf.py is read), on a free
    loopback port, its output in files; terminated however the test ends."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHAMBER_")}
    env.update({
        "CHAMBER_DATABASE_URL": database_url,
        "CHAMBER_SECRET_KEY": "rate-limit-test-secret-key-0123456789abcdefghij",
        "CHAMBER_INSTANCE_PATH": str(folder / "instance"),
        "PYTHONUNBUFFERED": "1",
        **settings,
    })  # fmt: skip
    out, err = folder / "gunicorn.out", folder / "gunicorn.err"
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--access-logfile", "-", "--access-logformat", "%(p)s %(s)s %(m)s %(U)s", "wsgi:app",
    ]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=stderr,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    server = {"url": f"http://127.0.0.1:{port}", "out": out, "err": err, "process": process}
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until_serving(server: dict) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server["process"].poll() is None, "gunicorn stopped:\n" + server["err"].read_text()
        try:
            if httpx.get(server["url"] + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("gunicorn never answered:\n" + server["err"].read_text())


def token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return CSRF_PATTERN.search(page.text).group(1)


def booking(n: int) -> dict[str, str]:
    return {
        "business_name": f"Business {n}", "size_band": "small", "sector": "IT",
        "town_or_postcode": "Stevenage", "is_member": "yes", "booker_name": f"Booker {n}",
        "booker_email": f"booker{n}@business{n}.example", "delegates-0-name": f"Delegate {n}",
        "delegates-0-email": f"delegate{n}@business{n}.example",
        "delegates-0-job_title": "Director", "privacy": "y",
    }  # fmt: skip


def pids_that_answered(server: dict, method: str, path: str) -> set[str]:
    lines = server["out"].read_text().splitlines()
    return {line.split()[0] for line in lines if f" {method} {path}" in line}


def post_at_once(client: httpx.Client, path: str, forms: list[dict[str, str]]) -> list[int]:
    """POST every form at the same moment, each on a connection of its own (with the client's
    cookies), and return the status codes. One after another, the kernel tends to hand every
    connection to the same idle worker; at once, a busy worker leaves the next to another."""
    start = threading.Barrier(len(forms))

    def post(form: dict[str, str]) -> int:
        with httpx.Client(base_url=client.base_url, cookies=client.cookies, timeout=30) as own:
            start.wait()
            return own.post(path, data=form).status_code

    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        return list(pool.map(post, forms))


@pytest.mark.slow
def test_the_limits_hold_across_four_gunicorn_workers_sharing_redis(
    tmp_path, deployed_database, redis_prefix
):
    with gunicorn(
        tmp_path, deployed_database, workers=4,
        CHAMBER_RATELIMIT_STORAGE_URL=REDIS_URL, CHAMBER_RATELIMIT_KEY_PREFIX=redis_prefix,
        CHAMBER_BOOKING_LIMIT_PER_ADDRESS=f"{BOOKING_LIMIT} per hour",
    ) as server:  # fmt: skip
        wait_until_serving(server)
        with httpx.Client(base_url=server["url"], timeout=30) as client:
            path = f"/events/{EVENT_SLUG}/register"
            csrf = token(client, path)
            bookings = post_at_once(client, path, [
                {"csrf_token": csrf, **booking(n)} for n in range(3 * BOOKING_LIMIT)
            ])  # fmt: skip
            # The kernel may hand a whole burst to one worker (bookings are quick): more bursts,
            # every one refused, until another worker has answered too, so that a worker which
            # counted none of the bookings is seen refusing (the count is shared).
            later: list[int] = []
            for burst in range(10):
                if len(pids_that_answered(server, "POST", path)) > 1:
                    break
                later += post_at_once(client, path, [
                    {"csrf_token": csrf, **booking(100 + 8 * burst + n)} for n in range(8)
                ])  # fmt: skip
            csrf = token(client, "/staff/login")
            logins = [
                client.post(
                    "/staff/login",
                    data={"csrf_token": csrf, "email": STAFF_EMAIL, "password": f"guess {n}"},
                ).status_code
                for n in range(8)
            ]
        served_by = pids_that_answered(server, "POST", path)
        warnings = server["err"].read_text()

    assert sorted(bookings) == [302] * BOOKING_LIMIT + [429] * (2 * BOOKING_LIMIT)
    assert set(later) <= {429}
    assert logins == [401] * 5 + [429] * 3  # CHAMBER_LOGIN_LIMIT_PER_ACCOUNT: 5 per 15 minutes
    assert len(served_by) > 1, "every request reached one worker: the test proves nothing"
    assert "CHAMBER_RATELIMIT_STORAGE_URL=memory://" not in warnings
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{redis_prefix}*")
    assert any(b"login-account:" + STAFF_EMAIL.encode() in key for key in keys)


@pytest.mark.slow
def test_gunicorn_warns_when_its_workers_would_each_count_in_memory(tmp_path, deployed_database):
    with gunicorn(tmp_path, deployed_database, workers=2) as server:
        wait_until_serving(server)
        httpx.get(server["url"] + "/", timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            errors = server["err"].read_text()
            if "Several web processes" in errors:
                break
            time.sleep(0.1)
    at_start = re.findall(r"2 web processes with CHAMBER_RATELIMIT_STORAGE_URL=memory://", errors)
    assert len(at_start) == 1, errors  # once, from the master, not once per worker
    assert "Several web processes with CHAMBER_RATELIMIT_STORAGE_URL=memory://" in errors
