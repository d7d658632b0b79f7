"""Booking under load: Chamber behind gunicorn against a bare Flask app behind the same gunicorn.

    .venv/bin/python benchmarks/booking_load.py [--database-url URL] [--duration 5] [--rounds 3]

Two gunicorn servers run side by side on free loopback ports, with the same settings (2 workers,
gthread, 4 threads each): Chamber (`wsgi:app`) on a fresh PostgreSQL database built by the
migrations and loaded with the demo seminar, and `benchmarks/hello_app.py`, a bare Flask route.
A load tool (Debian's `wrk`, or a small Python load generator when `wrk` is missing or with
`--python-load`) then drives, in turn and for the same time each:

  hello      GET /                          on the bare app: the reference
  event      GET /events/<demo seminar>     agenda, speakers, booking state
  form       GET /events/<demo seminar>/register
  booking    POST /events/<load event>/register   a new business and delegate every time, so each
             request is a real booking: seat lock, organisation, contacts, delegate, two emails
             queued, one commit, then the redirect

The targets take turns (hello, event, form, booking, hello, ...) for `--rounds` rounds, so that a
noisy moment hurts all of them, and the table gives each one's median requests per second and
p50/p99 latency, with the ratio to the bare app's figure measured in the same run.

Then a storm: `--storm` visitors (500) each open the form of a new event with `--seats` seats (60),
and all post at once, one thread and one connection each, to the targets' server (or, with
`--storm-workers N` other than 2, to a server of its own with N workers, warmed first). It
prints how many were confirmed, waitlisted and refused (errors), as the server answered them and
as the database has them.

Only loopback addresses are used; every load is bounded in time or count, and the whole run takes
about two minutes. The database is created on the PostgreSQL server (`CREATE DATABASE
chamber_bench_...`) and dropped at the end. `--database-url sqlite` uses a SQLite file instead.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from support import Database, free_port  # benchmarks/support.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GUNICORN_SETTINGS = [
    "--workers", "2", "--worker-class", "gthread", "--threads", "4",
    "--timeout", "60", "--graceful-timeout", "10", "--backlog", "2048",
]  # fmt: skip
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LOAD_EVENT = "booking-load"
STORM_EVENT = "booking-storm"


def storm_settings(workers: int, worker_class: str = "gthread") -> list[str]:
    """`GUNICORN_SETTINGS` with `workers` workers of `worker_class`: the storm's server
    (`--storm-workers`, `--storm-worker-class`; a `sync` worker has no threads)."""
    settings = list(GUNICORN_SETTINGS)
    settings[settings.index("--workers") + 1] = str(workers)
    if worker_class != "gthread":
        at = settings.index("--worker-class")
        settings[at + 1] = worker_class
        del settings[settings.index("--threads") : settings.index("--threads") + 2]
    return settings


# wrk: `done` prints one machine-readable line; the booking script also builds each POST body, with
# a counter so that every request books a business and a delegate never seen before.
WRK_DONE = r"""
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
# A conditional GET: the ETag names the page cache's window of time (`CHAMBER_CACHE_SECONDS`), so
# it changes every minute however still the page; whenever a 200 comes back, its ETag is what the
# next requests send, as a browser's cache would. `done` reports how many answers were 200s.
WRK_CONDITIONAL = r"""
local threads = {}
fresh = 0
function setup(thread)
  table.insert(threads, thread)
end
function request()
  return wrk.format()
end
function response(status, headers, body)
  if status == 200 then
    fresh = fresh + 1
    local tag = headers["ETag"] or headers["etag"]
    if tag then wrk.headers["If-None-Match"] = tag end
  end
end
""" + WRK_DONE.replace(
    "function done(summary, latency, requests)",
    "function done(summary, latency, requests)\n"
    '  local n = 0\n  for _, t in ipairs(threads) do n = n + (t:get("fresh") or 0) end\n'
    '  io.write(string.format("FRESH %d\\n", n))',
)
WRK_BOOKING = (
    r"""
local counter = 0
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end
function init(args)
  token, run = args[1], args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Cookie"] = args[3]
end
function request()
  counter = counter + 1
  local tag = run .. "-" .. thread_id .. "-" .. counter
  local body = "csrf_token=" .. token
    .. "&business_name=Load+business+" .. tag .. "&size_band=small&sector=Testing"
    .. "&town_or_postcode=Stevenage&is_member=no&booker_name=Booker+" .. tag
    .. "&booker_email=booker-" .. tag .. "%40example.com"
    .. "&delegates-0-name=Delegate+" .. tag
    .. "&delegates-0-email=delegate-" .. tag .. "%40example.com"
    .. "&delegates-0-job_title=Director&privacy=y"
  return wrk.format(nil, nil, nil, body)
end
"""
    + WRK_DONE
)


# --- the database --------------------------------------------------------------------------------


def make_app(database_url: str, instance: Path):
    from chamber import create_app

    return create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(instance)}
    )


def prepare_database(app) -> str:
    """Migrate, load the demo, add the event the booking POSTs go to; returns the demo's slug."""
    from flask_migrate import upgrade

    from chamber.demo import load_demo
    from chamber.events.models import Event, EventStatus
    from chamber.extensions import db

    with app.app_context():
        upgrade()
        load_demo(app)
        db.session.commit()
        demo = db.session.scalars(
            db.select(Event.slug)
            .where(Event.status == EventStatus.published, Event.starts_at > datetime.now(UTC))
            .order_by(Event.starts_at)
        ).first()
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        db.session.add(
            Event(
                slug=LOAD_EVENT,
                title="Load test seminar",
                summary="Every booking here gets a seat.",
                venue_name="Holiday Inn Stevenage",
                venue_address="St George's Way, Stevenage SG1 1HS",
                starts_at=starts,
                ends_at=starts + timedelta(hours=4),
                capacity=1_000_000,
                business_limit=1,
                status=EventStatus.published,
                host="Hertfordshire Chamber of Commerce",
            )
        )
        db.session.commit()
        db.engine.dispose()
    if not demo:
        raise SystemExit("the demo has no upcoming seminar")
    return demo


def add_storm_event(app, seats: int) -> int:
    from chamber.events.models import Event, EventStatus
    from chamber.extensions import db

    with app.app_context():
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
        event = Event(
            slug=STORM_EVENT,
            title="Storm seminar",
            venue_name="Holiday Inn Stevenage",
            starts_at=starts,
            ends_at=starts + timedelta(hours=4),
            capacity=seats,
            business_limit=1,
            status=EventStatus.published,
        )
        db.session.add(event)
        db.session.commit()
        event_id = event.id
        db.engine.dispose()
    return event_id


def storm_counts(app, event_id: int) -> Counter:
    from chamber.extensions import db
    from chamber.registration.models import Delegate

    with app.app_context():
        rows = db.session.execute(
            db.select(Delegate.status, db.func.count(Delegate.id))
            .where(Delegate.event_id == event_id)
            .group_by(Delegate.status)
        ).all()
        duplicates = db.session.scalar(
            db.select(db.func.count()).select_from(
                db.select(Delegate.email_normalised)
                .where(Delegate.event_id == event_id)
                .group_by(Delegate.email_normalised)
                .having(db.func.count(Delegate.id) > 1)
                .subquery()
            )
        )
        db.engine.dispose()
    counts = Counter({status.value: n for status, n in rows})
    counts["duplicate people"] = duplicates
    return counts


# --- servers -------------------------------------------------------------------------------------


class Gunicorn:
    """`gunicorn <settings> <app>` on a free loopback port, in its own process group."""

    def __init__(
        self,
        name: str,
        app: str,
        cwd: Path,
        env: dict,
        health: str,
        folder: Path,
        settings: list[str] = GUNICORN_SETTINGS,
    ):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"{name}.log"
        self.health = health
        command = [sys.executable, "-m", "gunicorn", *settings]
        command += ["--bind", f"127.0.0.1:{self.port}", app]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log_path.read_text()}")
            try:
                if request(self.url, "GET", self.health, timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} never answered {self.health}:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def errors_logged(self) -> list[str]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or "[ERROR]" in line]


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    location: str
    text: str
    cookies: dict[str, str]


def request(base_url, method, path, form=None, cookies=None, timeout=120.0) -> Answer:
    parts = urlsplit(base_url)
    headers = {"Connection": "close"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        set_cookies = {}
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            set_cookies[name.strip()] = value.strip()
        return Answer(response.status, response.headers.get("Location", ""), text, set_cookies)
    finally:
        conn.close()


def etag_of(base_url: str, path: str) -> str:
    """The ETag a GET of `path` answers with (for the conditional-GET target)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.headers.get("ETag", '"none"')
    finally:
        conn.close()


def open_form(base_url: str, slug: str) -> tuple[str, dict[str, str]]:
    """A visitor's first step: the form's CSRF token and the session cookie that goes with it."""
    page = request(base_url, "GET", f"/events/{slug}/register")
    match = CSRF.search(page.text)
    if page.status != 200 or not match:
        raise SystemExit(f"no booking form at /events/{slug}/register ({page.status})")
    return match.group(1), page.cookies


def booking_form(token: str, tag: str) -> dict:
    return {
        "csrf_token": token,
        "business_name": f"Storm business {tag}",
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


# --- load ----------------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    bad_answers: int  # answers other than 2xx or 3xx
    socket_errors: int  # connect, read or write errors and time-outs (30 s)
    p50_ms: float
    p99_ms: float
    fresh: int = 0  # a conditional target's answers that were 200s (its ETag had moved on)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Target:
    name: str
    server_url: str
    path: str
    booking: tuple[str, dict[str, str]] | None = None  # CSRF token and cookies, for the POST
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request (GET only)
    seconds: float | None = None  # this target's measurement time, if not the run's

    @property
    def conditional(self) -> bool:
        """Sends `If-None-Match`, and takes up the ETag of any 200 it gets (see WRK_CONDITIONAL)."""
        return "If-None-Match" in self.headers


class WrkLoad:
    label = "wrk"

    def __init__(self, folder: Path, connections: int):
        self.connections = connections
        self.get_script = folder / "get.lua"
        self.get_script.write_text(WRK_DONE)
        self.post_script = folder / "booking.lua"
        self.post_script.write_text(WRK_BOOKING)
        self.conditional_script = folder / "conditional.lua"
        self.conditional_script.write_text(WRK_CONDITIONAL)
        self.runs = 0
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)  # noqa: S607
        self.label = (version.stdout or version.stderr).split("[")[0].strip() or "wrk"

    def run(self, target: Target, seconds: float) -> Load:
        self.runs += 1
        command = ["wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--timeout", "30s"]  # wrk's default of 2 s would count slow answers as errors
        if target.booking:
            token, cookies = target.booking
            cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
            command += ["-s", str(self.post_script), target.server_url + target.path]
            command += ["--", token, f"r{self.runs}{secrets.token_hex(3)}", cookie]
        else:
            for name, value in target.headers.items():
                command += ["-H", f"{name}: {value}"]
            script = self.conditional_script if target.conditional else self.get_script
            command += ["-s", str(script), target.server_url + target.path]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
        n, duration, connect, read, write, status, timeout, p50, p99 = (
            int(x) for x in line.split()[1:]
        )
        sockets = connect + read + write + timeout
        fresh = next(
            (int(x.split()[1]) for x in out.stdout.splitlines() if x.startswith("FRESH")), 0
        )
        return Load(n, duration / 1e6, status, sockets, p50 / 1000, p99 / 1000, fresh)


class PythonLoad:
    """A small closed-loop load generator: `connections` threads, each on one keep-alive
    connection, sending requests back to back until the time is up (or 20,000 requests)."""

    label = "Python threads (http.client, keep-alive)"
    MAX_REQUESTS = 20_000

    def __init__(self, connections: int):
        self.connections = connections
        self.runs = 0

    def run(self, target: Target, seconds: float) -> Load:
        self.runs += 1
        parts = urlsplit(target.server_url)
        latencies: list[float] = []
        errors = Counter()
        lock = threading.Lock()
        counter = iter(range(self.MAX_REQUESTS))
        revalidate = (
            dict(target.headers) if target.conditional else None
        )  # shared: see WRK_CONDITIONAL
        stop_at = time.monotonic() + seconds

        def worker(thread_id: int) -> None:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                while time.monotonic() < stop_at:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    headers, body, method = dict(revalidate or target.headers), None, "GET"
                    if target.booking:
                        token, cookies = target.booking
                        method = "POST"
                        tag = f"p{self.runs}-{thread_id}-{n}-{secrets.token_hex(2)}"
                        body = urlencode(booking_form(token, tag))
                        headers["Content-Type"] = "application/x-www-form-urlencoded"
                        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
                    started = time.perf_counter()
                    try:
                        conn.request(method, target.path, body=body, headers=headers)
                        response = conn.getresponse()
                        response.read()
                        error = "bad answer" if response.status >= 400 else None
                        if revalidate is not None and response.status == 200:
                            revalidate["If-None-Match"] = response.getheader("ETag", "")
                            errors["fresh"] += 1
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                        error = "socket"
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        errors[error] += 1
            finally:
                conn.close()

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        return Load(
            len(latencies),
            took,
            errors["bad answer"],
            errors["socket"],
            cuts[49] * 1000,
            cuts[98] * 1000,
            errors["fresh"],
        )


def measure(
    load, targets: list[Target], seconds: float, rounds: int, settle=None, tries: int = 1
) -> dict[str, list[Load]]:
    """`settle`, if given, is called after every run (say, to let the server finish the requests
    still in flight before the next target is measured).

    Each measurement is the best of `tries` runs, each on new connections, sharing its time.
    gunicorn's two workers split a run's keep-alive connections between them as they happen to
    accept them, and a run whose connections all went to one worker has one core: the same bare
    app measured 1,800 to 2,100 req/s in such runs and 4,500 to 5,300 in the others, ten runs in
    a row. The best of three is a run with the connections split between both workers, for the
    reference and every target alike. Errors count over all the tries."""
    results: dict[str, list[Load]] = {t.name: [] for t in targets}
    for target in targets:  # warm-up: every worker compiles its templates, fills its pools
        load.run(target, 1)
        if settle:
            settle()
    for number in range(1, rounds + 1):
        for target in targets:
            runs = []
            for _ in range(max(1, tries)):
                runs.append(load.run(target, max(1.0, (target.seconds or seconds) / tries)))
                if settle:
                    settle()
            best = max(runs, key=lambda run: run.rps)
            result = replace(
                best,
                bad_answers=sum(run.bad_answers for run in runs),
                socket_errors=sum(run.socket_errors for run in runs),
            )
            results[target.name].append(result)
            fresh = f"  (200s: {result.fresh})" if target.conditional else ""
            print(
                f"  round {number}  {target.name:<8} {_rate(result.rps):>8} req/s  "
                f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
                f"bad answers {result.bad_answers}  socket errors {result.socket_errors}{fresh}",
                flush=True,
            )
    return results


def _rate(rps: float) -> str:
    return f"{rps:.1f}" if rps < 10 else f"{rps:.0f}"


def _share(ratio: float) -> str:
    return f"{ratio:.4f}" if ratio < 0.01 else f"{ratio:.3f}"


def print_table(results: dict[str, list[Load]], descriptions: dict[str, str]) -> None:
    def median(name, attribute):
        return statistics.median(getattr(r, attribute) for r in results[name])

    base_rps, base_p50, base_p99 = (median("hello", a) for a in ("rps", "p50_ms", "p99_ms"))
    print()
    print("| target | req/s | ÷ hello | p50 ms | × hello | p99 ms | × hello | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, description in descriptions.items():
        rps, p50, p99 = (median(name, a) for a in ("rps", "p50_ms", "p99_ms"))
        bad, sockets = (
            sum(getattr(r, a) for r in results[name]) for a in ("bad_answers", "socket_errors")
        )
        errors = f"{bad} / {sockets}"
        print(
            f"| {description} | {_rate(rps)} | {_share(rps / base_rps)} | {p50:.1f} | "
            f"{p50 / base_p50:.1f} | {p99:.1f} | {p99 / base_p99:.1f} | {errors} |"
        )
    print()
    print("req/s ÷ hello: the share of the bare app's throughput (1 = as fast as bare Flask);")
    print("× hello: how many times the bare app's latency. Medians over the rounds.")
    print("errors: answers other than 2xx/3xx / socket errors and time-outs, over all rounds.")


# --- the storm -----------------------------------------------------------------------------------


def cpu_seconds(server_group: int) -> Counter:
    """CPU seconds used so far (user and system, from `/proc/<pid>/stat`) by the server's processes
    (its process group), PostgreSQL's and this one (the load generator); empty where there is no
    /proc. Processes that ended since the last look are not counted, so take it before and after
    a stretch of load that starts and ends none (gunicorn's workers and PostgreSQL's backends
    stay)."""
    seconds: Counter = Counter()
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / ticks
        if int(fields[2]) == server_group:
            seconds["web"] += used
        elif command.startswith(b"postgres"):
            seconds["PostgreSQL"] += used
        elif int(entry.name) == os.getpid():
            seconds["load generator"] += used
    return seconds


def storm(
    base_url: str, visitors: int, server_group: int = 0
) -> tuple[Counter, list[float], float, Counter]:
    """Every visitor opens the form, then all post at once. Returns how the server answered
    (302, 400, ..., or the exception's name), each POST's latency, the time until the last, and
    the CPU seconds used meanwhile (`cpu_seconds`)."""
    with ThreadPoolExecutor(16) as pool:
        sessions = list(pool.map(lambda _: open_form(base_url, STORM_EVENT), range(visitors)))
    barrier = threading.Barrier(visitors + 1)
    answers: list[object] = [None] * visitors
    latencies: list[float] = [0.0] * visitors

    def visit(n: int) -> None:
        token, cookies = sessions[n]
        form = booking_form(token, f"storm-{n}")
        try:
            barrier.wait(timeout=60)
            started = time.perf_counter()
            answer = request(base_url, "POST", f"/events/{STORM_EVENT}/register", form, cookies)
            latencies[n] = time.perf_counter() - started
            answers[n] = answer.status
        except Exception as error:  # noqa: BLE001 - counted as an error
            answers[n] = type(error).__name__

    threads = [threading.Thread(target=visit, args=(n,), daemon=True) for n in range(visitors)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    started, cpu_before = time.monotonic(), cpu_seconds(server_group)
    deadline = started + 150
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    took = time.monotonic() - started
    cpu = cpu_seconds(server_group)
    cpu.subtract(cpu_before)
    outcome = Counter(answers)
    unanswered = sum(thread.is_alive() for thread in threads)
    if unanswered:
        outcome["no answer"] = unanswered
        del outcome[None]
    return outcome, latencies, took, cpu


# --- main ----------------------------------------------------------------------------------------


def load_options(description: str) -> argparse.ArgumentParser:
    """The options every load benchmark takes: database, measurement length, rounds, load tool."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAMBER_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help=f"a PostgreSQL server URL (default {DEFAULT_DATABASE}), or 'sqlite'",
    )
    parser.add_argument("--duration", type=float, default=5, help="seconds per measurement (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all targets (3)")
    parser.add_argument("--connections", type=int, default=8, help="open connections (8)")
    parser.add_argument("--python-load", action="store_true", help="do not use wrk")
    parser.add_argument(
        "--tries",
        type=int,
        default=3,
        help="runs a measurement is the best of, each on new connections (3): see measure()",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = load_options(__doc__.split("\n\n")[0])
    parser.add_argument("--storm", type=int, default=500, help="visitors in the storm (500)")
    parser.add_argument(
        "--cache-url",
        default="simple://",
        help="CHAMBER_CACHE_URL for Chamber: simple:// (default), redis://127.0.0.1:6379/1, or "
        "none:// to measure without the public page cache",
    )
    parser.add_argument("--seats", type=int, default=60, help="seats in the storm (60)")
    parser.add_argument(
        "--storm-workers",
        type=int,
        default=2,
        help="gunicorn workers of the server the storm posts to (2: the targets' server; any "
        "other number starts a server of its own, with the same 4 threads a worker, and warms "
        "it; issue 12's first figures were taken with 4)",
    )
    parser.add_argument(
        "--storm-worker-class",
        default="gthread",
        choices=("gthread", "sync"),
        help="gunicorn's worker class for the storm's server (gthread, 4 threads a worker: the "
        "targets' own; sync: one request at a time a worker, as docs/deployment.md's command "
        "runs; anything but gthread with 2 workers starts a server of its own)",
    )
    parser.add_argument(
        "--targets",
        default="",
        help="measure only these targets, by name, comma-separated (hello is always measured); "
        "with --storm 0 for a quick look at one page",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as temp:
        folder = Path(temp)
        database = Database(args.database_url, folder)
        with database as database_url:
            app = make_app(database_url, folder / "local")
            demo = prepare_database(app)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAMBER_", "FLASK_"))}
            chamber_env = env | {
                "CHAMBER_DATABASE_URL": database_url,
                "CHAMBER_SECRET_KEY": secrets.token_urlsafe(48),
                "CHAMBER_INSTANCE_PATH": str(folder / "instance"),
                "CHAMBER_MAIL_BACKEND": "memory",
                "CHAMBER_BOOKING_LIMIT_PER_ADDRESS": "1000000 per hour",  # one address: 127.0.0.1
                "CHAMBER_API_LIMIT_PER_ADDRESS": "1000000 per minute",
                "CHAMBER_CACHE_URL": args.cache_url,
            }
            chamber = Gunicorn("chamber", "wsgi:app", ROOT, chamber_env, "/healthz", folder)
            hello = Gunicorn("hello", "hello_app:app", HERE, env, "/", folder)
            servers = [chamber, hello]
            try:
                chamber.wait_until_ready()
                hello.wait_until_ready()
                use_wrk = shutil.which("wrk") and not args.python_load
                load = (
                    WrkLoad(folder, args.connections) if use_wrk else PythonLoad(args.connections)
                )
                print(f"Database: {database.label}; page cache: {args.cache_url}")
                print(f"gunicorn {' '.join(GUNICORN_SETTINGS)} (both servers)")
                print(f"Load: {load.label}, {args.connections} connections, {args.duration:g} s")
                print(
                    f"each (the best of {args.tries} runs), {args.rounds} rounds; {os.cpu_count()} CPUs, load average ",
                    end="",
                )
                print(" ".join(f"{x:.1f}" for x in os.getloadavg()), flush=True)
                targets = [
                    Target("hello", hello.url, "/"),
                    Target("event", chamber.url, f"/events/{demo}"),
                    Target(
                        "event 304",
                        chamber.url,
                        f"/events/{demo}",
                        headers={"If-None-Match": etag_of(chamber.url, f"/events/{demo}")},
                    ),
                    Target("home", chamber.url, "/"),
                    Target("resources", chamber.url, "/resources"),
                    Target("feed", chamber.url, "/calendar.ics"),
                    Target("api", chamber.url, "/api/v1/events?per_page=20"),
                    Target("form", chamber.url, f"/events/{demo}/register"),
                    Target(
                        "booking",
                        chamber.url,
                        f"/events/{LOAD_EVENT}/register",
                        booking=open_form(chamber.url, LOAD_EVENT),
                    ),
                ]
                if args.targets:
                    chosen = {"hello", *(x.strip() for x in args.targets.split(","))}
                    targets = [t for t in targets if t.name in chosen]
                results = measure(load, targets, args.duration, args.rounds, tries=args.tries)
                descriptions = {
                    "hello": "bare Flask `GET /` (reference)",
                    "event": "event page `GET /events/<slug>`",
                    "event 304": "the same, conditional (If-None-Match: 304)",
                    "home": "home `GET /`",
                    "resources": "resource library `GET /resources`",
                    "feed": "calendar feed `GET /calendar.ics` (demo events)",
                    "api": "`GET /api/v1/events?per_page=20`",
                    "form": "registration form `GET /events/<slug>/register`",
                    "booking": "booking `POST /events/<slug>/register`",
                }
                print_table(results, {k: v for k, v in descriptions.items() if k in results})
                if not args.storm:
                    return _problems(results, None, 0, args, servers)

                print(f"\nStorm: {args.storm} booking attempts at once for {args.seats} seats")
                event_id = add_storm_event(app, args.seats)
                stormed = chamber
                if args.storm_workers != 2 or args.storm_worker_class != "gthread":
                    stormed = Gunicorn(
                        f"chamber-{args.storm_workers}-workers",
                        "wsgi:app",
                        ROOT,
                        chamber_env,
                        "/healthz",
                        folder,
                        settings=storm_settings(args.storm_workers, args.storm_worker_class),
                    )
                    servers.append(stormed)
                    stormed.wait_until_ready()
                    # Warm, as the targets' server is by then: every worker's templates, pools,
                    # statement caches and PostgreSQL backends (whose statements are prepared
                    # after a few uses), by bookings on the load event for a few seconds.
                    for path in (f"/events/{LOAD_EVENT}/register", f"/events/{demo}/register"):
                        load.run(Target("warm-up", stormed.url, path), 2)
                    warm = Target(
                        "warm-up",
                        stormed.url,
                        f"/events/{LOAD_EVENT}/register",
                        booking=open_form(stormed.url, LOAD_EVENT),
                    )
                    load.run(warm, 4)
                print(
                    f"  gunicorn {' '.join(storm_settings(args.storm_workers, args.storm_worker_class))}"
                )
                outcome, latencies, took, cpu = storm(stormed.url, args.storm, stormed.process.pid)
                counts = storm_counts(app, event_id)
                errors = sum(n for answer, n in outcome.items() if answer != 302)
                answered = sorted(x for x in latencies if x)
                cuts = statistics.quantiles(answered, n=100) if len(answered) > 1 else [0] * 99
                print(f"  answers: {dict(outcome)} in {took:.1f} s")
                print(
                    f"  confirmed {counts['confirmed']}, waitlisted {counts['waitlisted']}, "
                    f"errors {errors}, duplicate people {counts['duplicate people']}"
                )
                print(f"  POST latency p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms")
                if cpu and took:
                    used = ", ".join(
                        f"{role} {cpu[role]:.1f} s ({cpu[role] * 1000 / args.storm:.1f} ms a booking)"
                        for role in ("web", "PostgreSQL", "load generator")
                        if cpu[role] > 0
                    )
                    cores = sum(cpu.values()) / took
                    print(f"  CPU while posting: {used}; {cores:.2f} of {os.cpu_count()} cores")
                return _problems(results, counts, errors, args, servers)
            finally:
                for server in servers:
                    server.stop()


def _problems(results, counts: Counter | None, errors: int, args, servers) -> int:
    """Print what went wrong (bad answers, a storm that oversold or lost a booking, errors the
    servers logged); 1 if anything did."""
    problems = []
    if bad := sum(r.bad_answers for runs in results.values() for r in runs):
        problems.append(f"{bad} answers other than 2xx/3xx under load")
    if counts is not None:
        if counts["confirmed"] != min(args.seats, args.storm):
            problems.append(f"confirmed {counts['confirmed']}, seats {args.seats}")
        if counts["confirmed"] + counts["waitlisted"] != args.storm - errors:
            problems.append("the database does not match the answers")
    for server in servers:
        if logged := server.errors_logged():
            problems.append(f"{server.name} logged {len(logged)} errors: {logged[:3]}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems or errors else 0


if __name__ == "__main__":
    sys.exit(main())
