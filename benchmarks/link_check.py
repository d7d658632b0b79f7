"""Link check: 1,000 links on a local server, one in ten slow, checked at once versus one by one.

    .venv/bin/python benchmarks/link_check.py [--links 1000] [--slow-seconds 2] [--hosts 50]

A small asyncio HTTP server runs in its own process (so it never competes with the checker for the
GIL), listening on the same port of `--hosts` loopback addresses (127.0.0.1, 127.0.0.2, ...): to
the checker each address is a host of its own, as ncsc.gov.uk and gov.uk are, so the per-host cap
applies as it would to a real library. Every tenth link answers after `--slow-seconds`; the others
at once. Three phases:

  serial   a sample of the links (10 % of them, the same share slow) checked with concurrency 1 and
           one request per host: the reference, extrapolated to all the links;
  engine   every link through `chamber.resources.checker.check_urls` with the configured
           concurrency and per-host cap (CHAMBER_LINKCHECK_*, defaults 20 and 2);
  chamber  the same links as published resources in a fresh SQLite database, checked by
           `chamber.resources.health.run_check`, what `chamber resources check` and the worker run:
           it also writes a LinkCheck row and updates the Resource for every result, and commits
           progress every few results.

The figure that matters is the ratio serial estimate ÷ concurrent time (the speed-up), beside the
floor the caps allow: the slow links alone need ceil(slow / concurrency) × slow-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

from support import Database, free_port  # benchmarks/support.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- the server (its own process) -----------------------------------------------------------------


def serve(hosts: list[str], port: int, slow_seconds: float, ready, stats) -> None:
    """Answers every request with 200; paths starting /slow after `slow_seconds`. Keep-alive."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                with stats.get_lock():
                    stats[0] += 1  # requests
                    stats[1] += 1  # in progress
                    stats[2] = max(stats[2], stats[1])  # most at once
                if path.startswith("/slow"):
                    await asyncio.sleep(slow_seconds)
                body = b"" if method == "HEAD" else b"ok"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
                    + body
                )
                await writer.drain()
                with stats.get_lock():
                    stats[1] -= 1
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, host=hosts, port=port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Server:
    def __init__(self, hosts: int, slow_seconds: float):
        self.hosts = [f"127.0.0.{n}" for n in range(1, hosts + 1)]
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self.ready = context.Event()
        self.stats = context.Array("i", 3)
        self.process = context.Process(
            target=serve,
            args=(self.hosts, self.port, slow_seconds, self.ready, self.stats),
            daemon=True,
        )

    def __enter__(self) -> Server:
        self.process.start()
        if not self.ready.wait(30):
            raise SystemExit("the benchmark server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(5)

    def links(self, count: int, slow_every: int) -> list[str]:
        urls = []
        for n in range(count):
            # Runs of `slow_every` links per host, so the slow ones spread over every host.
            host = self.hosts[(n // slow_every) % len(self.hosts)]
            kind = "slow" if n % slow_every == 0 else "fast"
            urls.append(f"http://{host}:{self.port}/{kind}/{n}")
        return urls

    def reset(self) -> tuple[int, int]:
        with self.stats.get_lock():
            requests, most = self.stats[0], self.stats[2]
            self.stats[0] = self.stats[2] = 0
        return requests, most


# --- the phases -----------------------------------------------------------------------------------


def run_serial(urls: list[str], slow_every: int, total: int, options: dict) -> dict:
    from chamber.resources.checker import check_urls

    started = time.perf_counter()
    results = check_urls(urls, **{**options, "concurrency": 1, "per_host": 1})
    elapsed = time.perf_counter() - started
    assert all(r.state == "ok" for r in results), [r for r in results if r.state != "ok"][:3]
    slow = [r.elapsed_ms for r in results if "/slow/" in r.url]
    fast = [r.elapsed_ms for r in results if "/fast/" in r.url]
    slow_total = math.ceil(total / slow_every)
    per_slow = sum(slow) / len(slow) / 1000
    per_fast = sum(fast) / len(fast) / 1000
    return {
        "sample": len(urls),
        "elapsed": elapsed,
        "per_slow": per_slow,
        "per_fast": per_fast,
        "estimate": slow_total * per_slow + (total - slow_total) * per_fast,
    }


def run_engine(urls: list[str], options: dict) -> dict:
    from chamber.resources.checker import check_urls

    started = time.perf_counter()
    results = check_urls(urls, **options)
    elapsed = time.perf_counter() - started
    states = {r.state for r in results}
    assert states == {"ok"}, [r for r in results if r.state != "ok"][:3]
    return {"elapsed": elapsed, "sum_of_links": sum(r.elapsed_ms for r in results) / 1000}


def run_chamber(urls: list[str], options: dict, folder: Path) -> dict:
    from chamber import create_app
    from chamber.extensions import db
    from chamber.resources import health
    from chamber.resources.models import Resource, ResourceKind, ResourceStatus

    with Database(None, folder) as url:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": url,
                "INSTANCE_PATH": str(folder / "instance"),
                "LINKCHECK_ALLOW_PRIVATE": True,
                "LINKCHECK_CONCURRENCY": options["concurrency"],
                "LINKCHECK_PER_HOST": options["per_host"],
                "LINKCHECK_TIMEOUT": options["timeout"],
            }
        )
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            db.session.add_all(
                Resource(
                    slug=f"link-{n}",
                    title=f"Link {n}",
                    url=link,
                    kind=ResourceKind.link,
                    status=ResourceStatus.published,
                )
                for n, link in enumerate(urls)
            )
            db.session.commit()
            started = time.perf_counter()
            run = health.start_run("benchmark")
            report = health.run_check(run)
            elapsed = time.perf_counter() - started
            assert report.checked == len(urls) and report.states == {"ok": len(urls)}, report
            db.engine.dispose()
    return {"elapsed": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--slow-every", type=int, default=10, help="every Nth link is slow")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--hosts", type=int, default=50, help="loopback addresses (max 254)")
    parser.add_argument("--concurrency", type=int, help="default: the configured setting")
    parser.add_argument("--per-host", type=int, help="default: the configured setting")
    parser.add_argument("--skip-chamber", action="store_true", help="engine phase only")
    args = parser.parse_args()

    from chamber.config import defaults, from_environment

    settings = {**defaults(), **from_environment()}
    options = {
        "concurrency": args.concurrency or settings["LINKCHECK_CONCURRENCY"],
        "per_host": args.per_host or settings["LINKCHECK_PER_HOST"],
        "timeout": max(float(settings["LINKCHECK_TIMEOUT"]), args.slow_seconds + 3),
        "allow_private": True,
    }
    with Server(args.hosts, args.slow_seconds) as server:
        urls = server.links(args.links, args.slow_every)
        # The first 10 % as the serial sample: the same share of slow links as the whole.
        sample = urls[: max(args.links // 10, args.slow_every)]
        print(
            f"{args.links} links on {args.hosts} loopback hosts, one in {args.slow_every} "
            f"answering after {args.slow_seconds:g} s; concurrency {options['concurrency']}, "
            f"{options['per_host']} per host, time limit {options['timeout']:g} s"
        )

        serial = run_serial(sample, args.slow_every, args.links, options)
        requests, most = server.reset()
        print(
            f"serial   {serial['sample']} links one by one in {serial['elapsed']:.1f} s "
            f"(slow {serial['per_slow']:.3f} s, fast {serial['per_fast'] * 1000:.1f} ms each; "
            f"{requests} requests, at most {most} at once) -> estimate for {args.links}: "
            f"{serial['estimate']:.1f} s"
        )

        engine = run_engine(urls, options)
        requests, most = server.reset()
        print(
            f"engine   {engine['elapsed']:.1f} s ({requests} requests, at most {most} at once; "
            f"the links' own times add up to {engine['sum_of_links']:.1f} s)"
        )
        chamber = None
        if not args.skip_chamber:
            with tempfile.TemporaryDirectory() as folder:
                chamber = run_chamber(urls, options, Path(folder))
            requests, most = server.reset()
            print(
                f"chamber  {chamber['elapsed']:.1f} s with the database "
                f"({requests} requests, at most {most} at once)"
            )

    slow_links = math.ceil(args.links / args.slow_every)
    floor = math.ceil(slow_links / options["concurrency"]) * args.slow_seconds
    print()
    print("| phase | seconds | serial estimate ÷ seconds | floor the caps allow |")
    print("|---|---:|---:|---:|")
    print(f"| serial estimate | {serial['estimate']:.1f} | 1 | |")
    print(
        f"| engine (`check_urls`) | {engine['elapsed']:.1f} | "
        f"**{serial['estimate'] / engine['elapsed']:.1f}** | {floor:.0f} s |"
    )
    if chamber:
        print(
            f"| chamber (`run_check`, SQLite) | {chamber['elapsed']:.1f} | "
            f"**{serial['estimate'] / chamber['elapsed']:.1f}** | {floor:.0f} s |"
        )


if __name__ == "__main__":
    main()
