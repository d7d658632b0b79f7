"""Pieces the benchmarks share: a fresh database for a run, a free loopback port, and waiting for a
server to finish the work a load left behind."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import sqlalchemy as sa


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children that are still running (Linux /proc)."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending += [int(child) for child in children.read().split()]
        except OSError:  # it has just exited
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def wait_until_idle(pid: int, quiet: float = 0.3, timeout: float = 30.0) -> float:
    """Wait until a server (and its workers) has used less than a tenth of a CPU for `quiet`
    seconds: a load tool that stops on time leaves the requests in flight still running, and they
    would slow whatever is measured next. Returns the seconds waited (`timeout` at most)."""
    started = time.monotonic()
    if not os.path.exists(f"/proc/{pid}/stat"):
        return 0.0
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(quiet)
        after = cpu_seconds(pid)
        if after - before < quiet / 10:
            break
        before = after
    return time.monotonic() - started


class Database:
    """A fresh database for the run: a SQLite file, or CREATE DATABASE on a PostgreSQL server
    (dropped afterwards). `server_url` None or "sqlite" means SQLite."""

    def __init__(self, server_url: str | None, folder: Path):
        self.server_url = None if server_url in (None, "", "sqlite") else server_url
        self.folder = folder
        self.name: str | None = None

    def __enter__(self) -> str:
        if not self.server_url:
            return f"sqlite:///{self.folder / 'bench.sqlite'}"
        self.name = f"chamber_bench_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{self.name}"')
        url = sa.make_url(self.server_url).set(database=self.name)
        return url.render_as_string(hide_password=False)

    def __exit__(self, *exc) -> None:
        if self.name:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(statement))
        finally:
            engine.dispose()

    @property
    def label(self) -> str:
        if not self.server_url:
            return "SQLite (WAL, synchronous=NORMAL) in a temporary file"
        url = sa.make_url(self.server_url)
        return f"PostgreSQL at {url.host}:{url.port or 5432}"
