"""Where a booking's CPU goes: the booking POST and the registration form GET, in process.

Posts bookings through Flask's test client (a new business, booker and delegate each, to an event
with room for all) and GETs the demo seminar's booking form, on a fresh database built by the
migrations with the demo loaded; prints the CPU milliseconds per request of each (the process's
CPU time, so the database server's own work is not in it), then, with `--profile`, cProfile's
functions by cumulative time. Not a load test: `booking_load.py` is.

    .venv/bin/python benchmarks/booking_profile.py                       # PostgreSQL
    .venv/bin/python benchmarks/booking_profile.py --database-url sqlite --profile 40
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from booking_load import DEFAULT_DATABASE, LOAD_EVENT, booking_form, make_app, prepare_database  # noqa: E402
from support import Database  # noqa: E402

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def cpu_ms_per_request(call, n: int) -> float:
    started = time.process_time()
    for i in range(n):
        call(i)
    return (time.process_time() - started) * 1000 / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAMBER_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help=f"a PostgreSQL server URL (default {DEFAULT_DATABASE}), or 'sqlite'",
    )
    parser.add_argument("--requests", type=int, default=300, help="of each kind, timed (300)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print cProfile's top N functions"
    )
    parser.add_argument("--dump", default="", help="also write the profiles to PREFIX-*.prof")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chamber-profile-") as temp:
        folder = Path(temp)
        with Database(args.database_url, folder) as database_url:
            app = make_app(database_url, folder / "instance")
            app.config["BOOKING_LIMIT_PER_ADDRESS"] = "1000000 per hour"  # one address
            demo = prepare_database(app)
            client = app.test_client()
            form_path = f"/events/{demo}/register"
            page = client.get(f"/events/{LOAD_EVENT}/register")
            token = CSRF.search(page.text).group(1)
            counter = iter(range(10**9))

            def book(_i: int) -> None:
                answer = client.post(
                    f"/events/{LOAD_EVENT}/register", data=booking_form(token, f"p{next(counter)}")
                )
                assert answer.status_code == 302, answer.status_code

            def form(_i: int) -> None:
                answer = client.get(form_path)
                assert answer.status_code == 200, answer.status_code

            for call in (book, form):  # warm up: imports, template compilation, pools
                for i in range(20):
                    call(i)
            print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            for round_ in range(args.rounds):
                booking_ms = cpu_ms_per_request(book, args.requests)
                form_ms = cpu_ms_per_request(form, args.requests)
                print(
                    f"round {round_ + 1}: booking POST {booking_ms:.2f} ms CPU, "
                    f"form GET {form_ms:.2f} ms CPU"
                )
            if args.profile:
                for name, call in (("booking POST", book), ("form GET", form)):
                    profile = cProfile.Profile(time.process_time)  # CPU, not waits
                    profile.runcall(cpu_ms_per_request, call, args.requests)
                    print(f"\n=== {name}, {args.requests} requests, by cumulative time ===")
                    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
                    print(f"\n=== {name}, by own time ===")
                    pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
                    if args.dump:
                        profile.dump_stats(f"{args.dump}-{name.split()[0]}.prof")
            with app.app_context():
                from chamber.extensions import db

                db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
