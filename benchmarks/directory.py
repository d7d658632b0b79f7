"""Directory import at scale: 50,000 contacts from one CSV file, beside a bare `csv` + `executemany`
loop that loads the same rows into the same tables, in the same run.

    .venv/bin/python benchmarks/directory.py [--contacts 50000] [--per-business 5] [--database-url URL]

The file is what a chamber's old CRM exports: one row per contact, with its business's details
(name, member, size band, sector, town, postcode, tags) repeated on each of that business's rows,
10,000 businesses of 5 contacts each by default, UTF-8 with a byte order mark, commas.

Phases, each timed: **bare**, the reference (`csv.reader`, businesses de-duplicated in a dict,
two `executemany` INSERTs, one commit; no checks, no matching); **import**, exactly what
`chamber members import FILE` runs, into the empty directory; **again**, the same file a second
time (every row found and left alone); **dry run**, over the full directory. benchmarks/README.md
says more.

The headline is **ratio = import seconds ÷ bare seconds**, and the goal is an import under 60 s.
Memory is sampled from /proc every 50 ms during each phase: **peak RSS growth** over the phase's
start. Then, for each of `--memory-sizes` (5,000 and 50,000 contacts), the run alone is measured
with tracemalloc (the peak of Python's allocations over its start): flat memory means the two
peaks are about the same.

The database is a fresh SQLite file in a temporary folder or, with --database-url, a fresh
database created on that PostgreSQL server and dropped afterwards; the migrations build it.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import sqlalchemy as sa
from support import Database  # benchmarks/support.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HEADER = ["Organisation", "Name", "Email", "Job title", "Phone", "Member", "Size band", "Sector",
          "Town", "Postcode", "Tags"]  # fmt: skip
SECTORS = ["Manufacturing", "Professional services", "Legal", "Health", "Technology", "Retail",
           "Construction", "Finance", "Hospitality", "Charity"]  # fmt: skip
TOWNS = ["Stevenage", "Hitchin", "Letchworth", "Welwyn Garden City", "Hatfield", "St Albans",
         "Watford", "Hertford", "Ware", "Bishop's Stortford"]  # fmt: skip
BANDS = ["micro", "small", "medium", "large"]
TITLES = ["Director", "Office manager", "Finance lead", "IT manager", "Owner"]


def make_app(url: str, instance: Path):
    from chamber import create_app

    return create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance),
         "MAIL_BACKEND": "memory"}
    )  # fmt: skip


def make_file(contacts: int, per_business: int) -> bytes:
    buffer = io.StringIO(newline="")
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for n in range(contacts):
        b = n // per_business
        writer.writerow([
            f"Hertfordshire Business {b} Ltd", f"Person {n} Smith", f"person{n}@business{b}.example",
            TITLES[n % len(TITLES)], f"01438 {n:06d}", "yes" if b % 3 == 0 else "no",
            BANDS[b % 4], SECTORS[b % len(SECTORS)], TOWNS[b % len(TOWNS)], f"SG{b % 9 + 1} {b % 10}AB",
            "member, 2027" if b % 3 == 0 else "",
        ])  # fmt: skip
    return buffer.getvalue().encode("utf-8")


class MemoryWatch:
    """Peak resident memory of this process during a block, sampled from /proc every 50 ms."""

    def __init__(self):
        self.start = self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.rss())

    def __enter__(self):
        self.start = self.peak = self.rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1024 / 1024


def bare_load(engine: sa.Engine, content: bytes) -> int:
    """The reference: parse, de-duplicate businesses in a dict, two executemany INSERTs (each
    contact with the hash of its address, which the suppression list is matched on)."""
    from chamber.core.addresses import address_hash
    from chamber.core.times import utcnow

    now = utcnow().replace(tzinfo=None)
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    next(reader)
    businesses: dict[str, int] = {}
    org_rows, contact_rows = [], []
    for row in reader:
        key = row[0].lower()
        if key not in businesses:
            businesses[key] = len(businesses) + 1
            org_rows.append({"id": businesses[key], "name": row[0], "name_normalised": key,
                             "size_band": row[6], "sector": row[7], "town_or_postcode": row[8],
                             "postcode": row[9], "is_member": row[5] == "yes", "created_at": now,
                             "updated_at": now})  # fmt: skip
        contact_rows.append({"organisation_id": businesses[key], "name": row[1], "email": row[2],
                             "email_hash": address_hash(row[2]), "job_title": row[3],
                             "phone": row[4], "created_at": now})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO organisation (id, name, name_normalised, size_band, sector, "
                "town_or_postcode, postcode, is_member, created_at, updated_at) VALUES (:id, :name, "
                ":name_normalised, :size_band, :sector, :town_or_postcode, :postcode, :is_member, "
                ":created_at, :updated_at)"
            ),
            org_rows,
        )
        conn.execute(
            sa.text(
                "INSERT INTO contact (organisation_id, name, email, email_hash, job_title, phone, "
                "created_at) VALUES (:organisation_id, :name, :email, :email_hash, :job_title, "
                ":phone, :created_at)"
            ),
            contact_rows,
        )
    return len(contact_rows)


def chamber_import(content: bytes, *, dry_run: bool = False):
    """What `chamber members import FILE` does, without the progress bar."""
    return run_job(queue_job(content, dry_run=dry_run))


def queue_job(content: bytes, *, dry_run: bool = False) -> int:
    """The upload: the file checked, its format found, its rows counted, kept; mapped; queued."""
    from chamber.core.transactions import unit_of_work
    from chamber.members import import_jobs

    with unit_of_work():
        job = import_jobs.create_job("members.csv", content)
        import_jobs.save_mapping(job, import_jobs.suggested_mapping(job), None)
        import_jobs.start(job, dry_run=dry_run, in_request=False)
        return job.id


def run_job(job_id: int):
    """The run, as the worker and the command do it."""
    from chamber.members import import_jobs

    return import_jobs.run_claimed(job_id, import_jobs.claim(job_id, "benchmark"))


def python_peak_mb(job_id: int) -> float:
    """The peak of Python's own allocations (tracemalloc) while the job runs, over what was
    allocated when it started: what the run holds, without the allocator's or the driver's
    slack that the resident set also counts."""
    import gc

    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        run_job(job_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / 1024 / 1024


def memory_by_size(engine: sa.Engine, sizes: list[int], per_business: int) -> None:
    """The run's peak Python allocation at each file size: an import into the empty directory,
    the same file again over the full directory, and a dry run into the empty directory (which
    keeps what it would have written, the dry run's worst case)."""
    print()
    print("Peak Python allocation of the run alone (tracemalloc), by file size:")
    print()
    print("| contacts | file MB | import peak MB | again peak MB | dry run (empty) peak MB |")
    print("|---:|---:|---:|---:|---:|")
    for contacts in sizes:
        content = make_file(contacts, per_business)
        empty_directory(engine)
        imported = python_peak_mb(queue_job(content))
        again = python_peak_mb(queue_job(content))
        empty_directory(engine)
        dry = python_peak_mb(queue_job(content, dry_run=True))
        print(
            f"| {contacts:,} | {len(content) / 1024 / 1024:.1f} | {imported:.1f} | {again:.1f} | "
            f"{dry:.1f} |"
        )


def empty_directory(engine: sa.Engine) -> None:
    from chamber.extensions import db

    with engine.begin() as conn:
        for name in ("organisation_tag", "contact", "organisation", "import_job_row",
                     "import_job_key", "import_job"):  # fmt: skip
            if name in db.metadata.tables:  # import_job_key: not in code before it (a comparison)
                conn.execute(db.metadata.tables[name].delete())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=50_000, help="rows in the file (50000)")
    parser.add_argument("--per-business", type=int, default=5, help="contacts per business (5)")
    parser.add_argument(
        "--memory-sizes",
        default="5000,50000",
        help="file sizes (contacts) whose runs' peak Python allocation is measured with "
        "tracemalloc after the timed phases, comma-separated (5000,50000); '' for none",
    )
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
                return run(app, database, args)
            finally:
                from chamber.extensions import db

                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()


def run(app, database: Database, args) -> int:
    from flask_migrate import upgrade

    from chamber.extensions import db
    from chamber.members.import_models import ImportStatus

    content = make_file(args.contacts, args.per_business)
    businesses = -(-args.contacts // args.per_business)
    print(
        f"Directory import: {args.contacts:,} contacts at {businesses:,} businesses, "
        f"{len(content) / 1024 / 1024:.1f} MB; {os.cpu_count()} CPU(s), Python "
        f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"Database: {database.label}")
    with app.app_context():
        upgrade()
        engine = db.engine

        with MemoryWatch() as bare_memory:
            started = time.perf_counter()
            loaded = bare_load(engine, content)
            bare = time.perf_counter() - started
        assert loaded == args.contacts
        empty_directory(engine)

        with MemoryWatch() as import_memory:
            started = time.perf_counter()
            job = chamber_import(content)
            imported = time.perf_counter() - started
        assert job.status == ImportStatus.done, job.error
        assert (job.created, job.refused) == (args.contacts, 0), job.counts

        with MemoryWatch() as again_memory:
            started = time.perf_counter()
            again = chamber_import(content)
            second = time.perf_counter() - started
        assert again.unchanged == args.contacts, again.counts

        with MemoryWatch() as dry_memory:
            started = time.perf_counter()
            dry = chamber_import(content, dry_run=True)
            dry_seconds = time.perf_counter() - started
        assert dry.unchanged == args.contacts, dry.counts
        with engine.connect() as conn:
            counts = [
                conn.scalar(sa.select(sa.func.count()).select_from(db.metadata.tables[name]))
                for name in ("organisation", "contact")
            ]
        assert counts == [businesses, args.contacts], counts
        sizes = [int(size) for size in args.memory_sizes.split(",") if size.strip()]
        if sizes:
            memory_by_size(engine, sizes, args.per_business)

    def line(label, seconds, memory):
        rate = args.contacts / seconds
        print(f"| {label} | {seconds:.1f} | {rate:,.0f} | {memory.growth_mb:.0f} |")

    print()
    print("| phase | seconds | rows/s | peak RSS growth MB |")
    print("|---|---:|---:|---:|")
    line("bare csv + executemany (reference)", bare, bare_memory)
    line("**import** (empty directory)", imported, import_memory)
    line("the same file again (all unchanged)", second, again_memory)
    line("dry run over the full directory", dry_seconds, dry_memory)
    print()
    print(f"ratio = import seconds ÷ bare seconds: **{imported / bare:.1f}**")
    print(
        f"goal: {args.contacts:,} contacts in under 60 s: {'met' if imported < 60 else 'NOT met'} ({imported:.1f} s)"
    )
    return 0 if imported < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
