"""Where a campaign's delivery spends its time: CPU milliseconds a message, by process and by step.

    .venv/bin/python benchmarks/campaign_profile.py [--recipients 3000] [--repeat 3]
        [--database-url URL] [--profile]

Builds the directory `campaign.py` builds, queues a campaign, then delivers it with the worker's
`run_once` against the same aiosmtpd sink as a bare smtplib loop, alternating (bare, worker, bare,
worker ...; a copy of the campaign each time). For each delivery it prints the rate and the CPU
time a message of the three processes that take turns on a message: this one (smtplib alone, or
the whole worker), the sink, and, on PostgreSQL, the server's processes for the run's database.
On a busy machine these CPU times move far less than the rates. With --profile, one more
delivery runs under cProfile and the time a message of the worker's steps is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from campaign import fill_copy, fill_directory, queue, unthrottled
from mail_throughput import Sink, bare_phase, build_reference, make_app
from support import Database

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The worker's steps, by the function that does each (cumulative time under cProfile).
STEPS = [
    ("SMTP conversation", "backends.py", "send"),
    ("claim a batch", "delivery.py", "claim_batch"),
    ("read the claim", "delivery.py", "_claimed"),
    ("suppression list", "services.py", "suppression_reasons"),
    ("send-time check", "delivery.py", "_send_time_checks"),
    ("mint the links", "delivery.py", "_mint_ahead"),
    ("build the MIME bytes", "mime.py", "build_email"),
    ("record each as sent", "delivery.py", "record"),
    ("prepare (all of it)", "delivery.py", "_prepare"),
]


def server_cpu(database: str | None) -> float:
    """CPU seconds so far of the PostgreSQL server processes serving `database` (their process
    titles name it), plus the WAL writer's: 0 on SQLite."""
    if not database:
        return 0.0
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                title = cmdline.read().decode(errors="replace")
            if not title.startswith("postgres:") or (
                f" {database} " not in title and "walwriter" not in title
            ):
                continue
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def deliver_measured(app, sink: Sink, database: str | None, n: int, profiler=None) -> dict:
    from chamber.worker import Worker

    worker = Worker(app, worker_id="bench", echo=lambda _line: None)
    before, _, sink_before = sink.snapshot()
    server_before = server_cpu(database)
    cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    report = worker.run_once()
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    count, _, sink_after = sink.snapshot()
    assert report.sent == n == count - before, (report.sent, n, count - before, report.errors)
    return {
        "rate": n / seconds,
        "cpu": cpu / n * 1000,
        "sink": (sink_after - sink_before) / n * 1000,
        "server": (server_cpu(database) - server_before) / n * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("CHAMBER_BENCH_DATABASE_URL"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dump", metavar="FILE", help="with --profile: save the profile to FILE")
    args = parser.parse_args(argv)
    n = args.recipients
    with tempfile.TemporaryDirectory(prefix="chamber-bench-") as tmp, Sink() as sink:
        database = Database(args.database_url, Path(tmp))
        with database as url:
            os.environ["CHAMBER_CACHE_URL"] = "none://"
            app = unthrottled(make_app(url, Path(tmp) / "instance", sink.port))
            print(
                f"Campaign delivery profile: {n} recipients, {database.label}, load average "
                f"{os.getloadavg()[0]:.2f}"
            )
            first = fill_directory(app, n)
            reference = build_reference(app, n)
            bares, runs = [], []
            for run in range(args.repeat):
                campaign = first if run == 0 else fill_copy(app, first)
                queue(app, campaign, n)
                bare = bare_phase(sink, reference)
                bares.append(
                    {
                        "rate": bare.rate,
                        "cpu": bare.cpu / n * 1000,
                        "sink": bare.sink_cpu / n * 1000,
                    }
                )
                runs.append(deliver_measured(app, sink, database.name, n))
                print(
                    f"  run {run + 1}: bare {bare.rate:.0f}/s (cpu {bares[-1]['cpu']:.2f} + sink "
                    f"{bares[-1]['sink']:.2f} ms/msg); worker {runs[-1]['rate']:.0f}/s (cpu "
                    f"{runs[-1]['cpu']:.2f} + sink {runs[-1]['sink']:.2f} + server "
                    f"{runs[-1]['server']:.2f} ms/msg): ratio {runs[-1]['rate'] / bare.rate:.2f}",
                    flush=True,
                )

            def median(rows: list[dict], key: str) -> float:
                return statistics.median(row[key] for row in rows)

            bare_total = median(bares, "cpu") + median(bares, "sink")
            worker_total = median(runs, "cpu") + median(runs, "sink") + median(runs, "server")
            print(
                f"median ratio {median(runs, 'rate') / median(bares, 'rate'):.2f}; CPU ms a "
                f"message: bare {bare_total:.2f}, worker {worker_total:.2f} (worker "
                f"{median(runs, 'cpu'):.2f}, sink {median(runs, 'sink'):.2f}, server "
                f"{median(runs, 'server'):.2f}); CPU ratio {bare_total / worker_total:.2f}; "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            if args.profile:
                profiler = cProfile.Profile()
                queue(app, fill_copy(app, first), n)
                profiled = deliver_measured(app, sink, database.name, n, profiler)
                print(
                    f"\nUnder cProfile ({profiled['rate']:.0f}/s with its overhead), ms a message:"
                )
                if args.dump:
                    profiler.dump_stats(args.dump)
                stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
                for label, filename, function in STEPS:
                    cumulative = sum(
                        value[3]
                        for (file, _line, name), value in stats.items()
                        if name == function and file.endswith(filename)
                    )
                    print(f"  {label:<24} {cumulative / n * 1000:6.3f}")
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(
                    35
                )
                text = out.getvalue()
                print(text[text.find("   ncalls") :].rstrip())
            from chamber.extensions import db

            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
