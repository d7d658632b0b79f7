"""Mail throughput: the worker's delivery loop against a bare smtplib loop, in the same run.

    .venv/bin/python benchmarks/mail_throughput.py [--messages 5000] [--database-url URL]

An aiosmtpd sink runs in its own process (so it never competes with the measured code for the
GIL) on a free loopback port, and only counts what it accepts. Two phases send it the same number
of messages of the same shape (multipart/alternative, text and HTML, UTF-8, the length of a
seminar confirmation):

  bare     the messages built as bytes before the clock starts, then `sendmail` in a loop over
           one smtplib connection: the most a Python sender can hope for against this sink;
  chamber  the messages queued with `chamber.mail.services.enqueue` (timed on its own), then
           delivered by what `chamber worker --once` runs (`Worker.run_once`, i.e. `deliver_due`
           with its default batch size): claim a batch, build each email, send it, commit its
           outcome.

The phases alternate (bare, chamber, bare, chamber, ...) so that a noisy moment hurts both, and
their medians are compared: the figure that matters is the ratio chamber/bare, not a time.

The database is a fresh SQLite file in a temporary folder or, with --database-url, a fresh
database created on that PostgreSQL server and dropped afterwards; either way the migrations
build it, as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import smtplib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from support import Database, free_port  # benchmarks/support.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SENDER = "events@chamber.example"
TARGET_RATIO = 0.7

# What a seminar confirmation says (the `note` of the test message), so that each message has the
# length of the real thing and the non-ASCII characters that real names and places bring.
CONFIRMATION = """\
You have a place at Cybercrime seminar – protect your business, on Tuesday 14 October 2025.

When: 08:30 to 12:30 (registration and coffee from 08:00)
Where: Holiday Inn Stevenage, St George's Way, Stevenage SG1 1HS. Free parking on site; the
station is a ten-minute walk.

Programme
08:30  Welcome – Hertfordshire Chamber of Commerce
08:45  How criminals choose their targets – Tony Richardson, Octree
09:30  Phishing, invoice fraud and what to tell your staff – Zoë Ó Briain, Eastern Region
       Cyber Resilience Centre
10:15  Break
10:45  Backups that survive ransomware – Priya Raman, Hertfordshire Constabulary
11:30  Panel: your questions answered
12:15  Networking and close

Your booking: reference {reference}, one delegate ({name}), {organisation}.
Dietary needs and access requirements can be changed until 48 hours before the event. The
seminar is free to members; non-members pay £25 on the day. Please bring this email or your
reference; a calendar invitation follows separately.

If you can no longer come, please let us know so that someone on the waiting list can take your
place."""

NAMES = [
    "Zoë O'Brien",
    "Siobhán Ní Bhriain",
    "Jürgen Müller",
    "Amelia Clarke",
    "Rajesh Patel",
    "Chloé Dubois",
    "Tomasz Wiśniewski",
    "Oliver Smith",
]
ORGANISATIONS = [
    "Stevenage Precision Ltd",
    "Hitchin Café & Bakery",
    "Watford Logistics",
    "St Albans Dental Practice",
]
SUBJECT = "Your place at Cybercrime seminar – Tuesday 14 October"


def recipient(i: int) -> tuple[str, str]:
    return f"delegate{i}@example.com", NAMES[i % len(NAMES)]


def context(i: int) -> dict:
    name, organisation = recipient(i)[1], ORGANISATIONS[i % len(ORGANISATIONS)]
    note = CONFIRMATION.format(reference=f"CYB-{i:05d}", name=name, organisation=organisation)
    return {"note": note}


# --- the sink: a separate process ----------------------------------------------------------------


class CountingHandler:
    """Accepts every message and counts it (with its bytes and the sink's CPU time); no more."""

    def __init__(self, count, size, cpu):
        self.count, self.size, self.cpu = count, size, cpu

    async def handle_DATA(self, server, session, envelope):
        # One writer (the sink's event loop); the benchmark reads the values between phases.
        self.count.value += 1
        self.size.value += len(envelope.original_content or envelope.content)
        self.cpu.value = time.process_time()
        return "250 OK"


def run_sink(port: int, count, size, cpu, ready, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(CountingHandler(count, size, cpu), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Sink:
    """The sink process, started fresh (spawn) so that it shares nothing with the benchmark."""

    def __init__(self):
        spawn = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.count, self.size = spawn.RawValue("q", 0), spawn.RawValue("q", 0)
        self.cpu = spawn.RawValue("d", 0)
        self._ready, self._stop = spawn.Event(), spawn.Event()
        self.process = spawn.Process(
            target=run_sink,
            name="smtp-sink",
            daemon=True,
            args=(self.port, self.count, self.size, self.cpu, self._ready, self._stop),
        )

    def __enter__(self) -> Sink:
        self.process.start()
        if not self._ready.wait(30):
            self.process.terminate()
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def snapshot(self) -> tuple[int, int, float]:
        return self.count.value, self.size.value, self.cpu.value


# --- phases --------------------------------------------------------------------------------------


@dataclass
class Run:
    messages: int
    seconds: float
    wire_bytes: int = 0
    cpu: float = 0.0  # CPU seconds of this process: smtplib alone, or the whole worker
    sink_cpu: float = 0.0  # CPU seconds of the sink process

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def build_reference(app, n: int) -> list[tuple[str, bytes]]:
    """The bare loop's messages as bytes on the wire: the bodies Chamber renders (same templates,
    same context) as multipart/alternative UTF-8 quoted-printable, built with the standard library
    alone. Not timed."""
    from email import charset
    from email.header import Header
    from email.mime.multipart import MIMEMultipart
    from email.mime.nonmultipart import MIMENonMultipart
    from email.policy import compat32
    from email.utils import formataddr, formatdate, make_msgid

    from flask import render_template

    from chamber.mail.models import MailKind

    qp = charset.Charset("utf-8")
    qp.header_encoding = qp.body_encoding = charset.QP
    wire = compat32.clone(linesep="\r\n", max_line_length=998)
    messages = []
    with app.app_context():
        for i in range(n):
            address, name = recipient(i)
            values = {"kind": MailKind.transactional, "to_name": name, **context(i)}
            email = MIMEMultipart("alternative")
            for subtype, extension in (("plain", "txt"), ("html", "html")):
                part = MIMENonMultipart("text", subtype)
                body = render_template(f"emails/test_message.{extension}", **values)
                part.set_payload(body, charset=qp)
                email.attach(part)
            email["From"] = formataddr(("Hertfordshire Chamber of Commerce", SENDER))
            email["To"] = formataddr((name, address), charset="utf-8")
            email["Subject"] = Header(SUBJECT, "utf-8").encode()
            email["Date"] = formatdate()
            email["Message-ID"] = make_msgid(domain="chamber.example")
            email["Auto-Submitted"] = "auto-generated"
            messages.append((address, email.as_bytes(policy=wire)))
    return messages


def bare_phase(sink: Sink, messages: list[tuple[str, bytes]]) -> Run:
    before, before_size, before_cpu = sink.snapshot()
    cpu, started = time.process_time(), time.perf_counter()
    connection = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    for address, raw in messages:
        connection.sendmail(SENDER, [address], raw)
    connection.quit()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    count, size, sink_cpu = sink.snapshot()
    got = count - before
    check(got == len(messages), f"bare: the sink got {got}, not {len(messages)}")
    return Run(len(messages), seconds, size - before_size, cpu, sink_cpu - before_cpu)


def enqueue_all(app, n: int, prefix: str) -> Run:
    from chamber.extensions import db
    from chamber.mail.services import enqueue

    with app.app_context():
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(n):
            address, name = recipient(i)
            enqueue(
                key=f"{prefix}:{i}",
                to=address,
                to_name=name,
                subject=SUBJECT,
                template="test_message",
                context=context(i),
            )
        db.session.commit()
        return Run(n, time.perf_counter() - started, cpu=time.process_time() - cpu)


def chamber_phase(app, sink: Sink, n: int, profiler=None) -> Run:
    from chamber.worker import Worker

    worker = Worker(app, worker_id="bench", echo=lambda _line: None)
    before, before_size, before_cpu = sink.snapshot()
    cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    report = worker.run_once()  # what `chamber worker --once` runs
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    count, size, sink_cpu = sink.snapshot()
    check(report.sent == n and not report.errors, f"chamber: sent {report.sent}; {report.errors}")
    check(count - before == n, f"chamber: the sink got {count - before}, not {n}")
    check_all_sent_then_clear(app, n)
    return Run(n, seconds, size - before_size, cpu, sink_cpu - before_cpu)


def check_all_sent_then_clear(app, n: int) -> None:
    """Every outbox row is 'sent'; then the outbox is emptied, so that each run starts alike."""
    from chamber.extensions import db
    from chamber.mail.models import OutboxMessage

    with app.app_context():
        statuses = dict(
            db.session.execute(
                db.select(OutboxMessage.status, db.func.count()).group_by(OutboxMessage.status)
            ).all()
        )
        check(statuses == {"sent": n}, f"chamber: outbox statuses {statuses}, not {n} sent")
        db.session.execute(db.delete(OutboxMessage))
        db.session.commit()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")


# --- the database and the app --------------------------------------------------------------------


def make_app(database_url: str, instance: Path, port: int):
    from flask_migrate import upgrade

    from chamber import create_app
    from chamber.extensions import db

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": str(instance),
            "MAIL_BACKEND": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_SECURITY": "none",
            "SMTP_TIMEOUT": 30,
        }
    )
    log = io.StringIO()
    with app.app_context():
        try:
            with contextlib.redirect_stderr(log):  # Alembic's INFO lines, shown only if it fails
                upgrade()
        except BaseException:
            sys.stderr.write(log.getvalue())
            raise
        db.session.remove()
    return app


# --- the run -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per phase (5000)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAMBER_BENCH_DATABASE_URL"),
        help="a PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1"
        ":5432/postgres: a database is created there and dropped afterwards "
        "(default: SQLite)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each phase, whose medians are compared (3)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=100,
        metavar="SECONDS",
        help="start another run only if it should end within SECONDS of the first "
        "run's start (100; 0 for no limit)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=30,
        default=0,
        metavar="LINES",
        help="then run the chamber phase once more under cProfile and print "
        "its top LINES functions (30)",
    )
    args = parser.parse_args(argv)
    n = args.messages

    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as tmp, Sink() as sink:
        database = Database(args.database_url, Path(tmp))
        with database as url:
            app = make_app(url, Path(tmp) / "instance", sink.port)
            try:
                print(
                    f"Mail throughput: {n} messages per phase, up to {args.repeat} run(s) of "
                    f"each; {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, load "
                    f"average {os.getloadavg()[0]:.1f}"
                )
                print(
                    f"Database: {database.label}; SMTP sink: aiosmtpd, process "
                    f"{sink.process.pid}, 127.0.0.1:{sink.port}"
                )
                runs = measure(app, sink, n, args.repeat, args.budget)
                report(n, *runs)
                if args.profile:
                    profile(app, sink, n, args.profile)
            finally:
                from chamber.extensions import db

                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
    return 0


def measure(app, sink: Sink, n: int, repeat: int, budget: float):
    reference = build_reference(app, n)
    # Warm up both paths: imports, template and SQL compilation, first connections.
    warm = min(100, n)
    bare_phase(sink, reference[:warm])
    enqueue_all(app, warm, "warm")
    chamber_phase(app, sink, warm)

    bare, chamber, queued = [], [], []
    started = time.perf_counter()
    for run in range(repeat):
        elapsed = time.perf_counter() - started
        if run and budget and elapsed * (run + 1) / run > budget:
            print(f"  (stopping after {run} run(s): another would end past {budget:.0f}s)")
            break
        bare.append(bare_phase(sink, reference))
        queued.append(enqueue_all(app, n, f"run{run}"))
        chamber.append(chamber_phase(app, sink, n))
        print(
            f"  run {run + 1}: bare {bare[-1].rate:5.0f}/s, chamber {chamber[-1].rate:5.0f}/s, "
            f"ratio {chamber[-1].rate / bare[-1].rate:.2f} (enqueue {queued[-1].rate:.0f}/s)",
            flush=True,
        )
    return bare, chamber, queued


def report(n: int, bare_runs: list[Run], chamber_runs: list[Run], enqueue_runs: list[Run]) -> None:
    def median(runs: list[Run]) -> Run:
        return Run(
            n,
            statistics.median(r.seconds for r in runs),
            runs[0].wire_bytes,
            statistics.median(r.cpu for r in runs),
            statistics.median(r.sink_cpu for r in runs),
        )

    def ms(seconds: float) -> str:
        return f"{seconds / n * 1000:.2f}"

    bare, chamber, queued = median(bare_runs), median(chamber_runs), median(enqueue_runs)
    rows = [
        (
            "phase",
            "messages",
            "seconds",
            "msgs/s",
            "ms/msg",
            "cpu ms/msg",
            "sink cpu ms/msg",
            "bytes/msg",
        )
    ]
    for label, run in (("bare smtplib, one connection", bare), ("chamber worker", chamber)):
        rows.append(
            (
                label,
                str(n),
                f"{run.seconds:.2f}",
                f"{run.rate:.0f}",
                ms(run.seconds),
                ms(run.cpu),
                ms(run.sink_cpu),
                f"{run.wire_bytes / n:.0f}",
            )
        )
    rows.append(
        (
            "enqueue (not in the ratio)",
            str(n),
            f"{queued.seconds:.2f}",
            f"{queued.rate:.0f}",
            ms(queued.seconds),
            ms(queued.cpu),
            "",
            "",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        cells = [cell.rjust(w) for cell, w in zip(row, widths, strict=True)]
        print("  ".join([row[0].ljust(widths[0]), *cells[1:]]))
    print("(cpu: this process, i.e. smtplib alone or the whole worker; sink cpu: aiosmtpd's)")

    ratio = chamber.rate / bare.rate
    verdict = "meets" if ratio >= TARGET_RATIO else "is BELOW"
    print(
        f"\nratio chamber/bare: {ratio:.2f}, median of {len(bare_runs)} run(s); "
        f"{verdict} the {TARGET_RATIO} target"
    )
    # Sender and sink take turns (each SMTP command waits for its reply), so on an idle machine a
    # phase lasts about as long as the two processes' CPU time added up. This ratio of CPU times
    # moves far less than the wall-clock ratio when other work shares the machine.
    cpu_ratio = (bare.cpu + bare.sink_cpu) / (chamber.cpu + chamber.sink_cpu)
    print(
        f"cpu-time ratio (bare + sink cpu) / (chamber + sink cpu): {cpu_ratio:.2f}, "
        "for comparison on a busy machine"
    )
    print(
        f"checked: the sink received exactly {n} messages in every phase, and every outbox "
        "row was 'sent'"
    )


def profile(app, sink: Sink, n: int, lines: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    enqueue_all(app, n, "profile")
    profiled = chamber_phase(app, sink, n, profiler)
    print(
        f"\nThe chamber phase once more, under cProfile ({profiled.rate:.0f}/s with its overhead):"
    )
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(lines)
        text = out.getvalue()
        print(f"\n--- by {order} ---")
        print(text[text.find("   ncalls") :].rstrip())


if __name__ == "__main__":
    sys.exit(main())
