"""Pieces the benchmarks share: a fresh database for a run, and a free loopback port."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import sqlalchemy as sa


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
