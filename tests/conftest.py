"""Fixtures: a migrated database per test run (SQLite, or PostgreSQL when
CHAMBER_TEST_DATABASE_URL is set), emptied before each test; the app, clients, staff and factories."""

from __future__ import annotations

import gc
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.serving import make_server

from chamber import create_app
from chamber.auth.models import Role, StaffUser
from chamber.events.models import (
    AgendaItem,
    AgendaItemSpeaker,
    AgendaKind,
    Event,
    EventStatus,
    Speaker,
)
from chamber.extensions import db
from tests.factories import FAST_SCRYPT, PASSWORD, at
from tests.support import (
    RequestIsolatedClient,
    SharedTemplateCache,
    bodies_whole,
    forget_statements_compiled_for,
    log_in,
    url_builders_compiled_once,
    url_rules_parsed_once,
)

# Every run is on every CPU (`-n auto` in pyproject.toml's addopts), the browser and slow tests
# too. Each xdist worker has its own database; the servers, workers and processes those tests start
# take free ports and their own folders, and wait for what they time with margins that a busy
# machine keeps (on two CPUs the browser and slow tests took 690 s, not 1,000 s).


# --- databases -----------------------------------------------------------------------------------


class DatabaseFactory:
    """Makes empty databases: files for SQLite, `CREATE DATABASE` on the PostgreSQL server."""

    def __init__(self, server_url: str | None, folder: Path):
        self.server_url = server_url
        self.folder = folder
        self.created: list[str] = []

    @property
    def is_postgresql(self) -> bool:
        return bool(self.server_url)

    def new(self) -> str:
        if not self.server_url:
            return f"sqlite:///{self.folder / f'{uuid.uuid4().hex}.sqlite'}"
        name = f"chamber_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return sa.make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    @contextmanager
    def _admin(self):
        engine = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def databases(tmp_path_factory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(
        os.environ.get("CHAMBER_TEST_DATABASE_URL"), tmp_path_factory.mktemp("db")
    )
    yield factory
    if factory.is_postgresql:
        factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases, tmp_path_factory) -> str:
    """One database for the run, built by the migrations (not by `create_all`)."""
    url = databases.new()
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        }
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def empty_all_tables() -> None:
    """Every table of the models emptied, and on PostgreSQL their ids started again at 1 (as
    SQLite's own ids do once a table is empty)."""
    connection = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        connection.exec_driver_sql(_emptying_script(connection))
    else:  # SQLite runs one statement at a time; as text, none is compiled for each new engine
        for table in reversed(db.metadata.sorted_tables):
            connection.exec_driver_sql(f'DELETE FROM "{table.name}"')
    db.session.commit()


_emptying_scripts: dict[str, str] = {}
APPEND_ONLY = {"audit_entry"}  # a trigger refuses its rows' DELETE (docs/audit.md)


def _emptying_script(connection: sa.Connection) -> str:
    """One round trip that empties PostgreSQL's tables: a DELETE for each table, children first,
    then `setval` of each sequence their columns own. (`TRUNCATE ... RESTART IDENTITY` does the same
    but makes new files for every table and index: 400 ms a test here against 3 ms.) The audit
    trail refuses DELETE (it is append-only), so it is truncated, and only when it holds rows."""
    url = connection.engine.url.render_as_string(hide_password=True)
    if url not in _emptying_scripts:
        tables = [table.name for table in reversed(db.metadata.sorted_tables)]
        sequences = connection.execute(
            sa.text(
                "SELECT DISTINCT pg_get_serial_sequence(quote_ident(c.relname), a.attname)"
                " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
                " WHERE c.relname = ANY(:tables) AND a.attnum > 0 AND NOT a.attisdropped"
                " AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL"
            ),
            {"tables": tables},
        ).scalars()
        deletes = [
            f'DELETE FROM "{name}"'
            if name not in APPEND_ONLY
            else f'DO $$ BEGIN IF EXISTS (SELECT FROM "{name}") THEN TRUNCATE "{name}"; END IF; END $$'
            for name in tables
        ]
        resets = ", ".join(f"setval('{sequence}', 1, false)" for sequence in sorted(sequences))
        _emptying_scripts[url] = "; ".join(deletes + ([f"SELECT {resets}"] if resets else []))
    return _emptying_scripts[url]


# --- the app -------------------------------------------------------------------------------------


TEMPLATES = SharedTemplateCache()


@pytest.fixture(scope="session", autouse=True)
def long_lived_objects_left_out_of_garbage_collection():
    """What exists when the run starts (modules, compiled code) lives to the end: freezing it
    keeps Python's full garbage collections, which each test's app and engine set off, from
    walking it again every time (on two busy test files, 10 s of collecting became 5.5 s)."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session", autouse=True)
def compile_url_rules_once():
    with pytest.MonkeyPatch.context() as monkeypatch:
        url_builders_compiled_once(monkeypatch)
        url_rules_parsed_once(monkeypatch)
        yield


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SERVER_NAME": None,
            "PASSWORD_HASH_METHOD": FAST_SCRYPT,
        }
    )
    app.test_client_class = RequestIsolatedClient
    app.jinja_env.bytecode_cache = TEMPLATES
    with app.app_context():
        empty_all_tables()
        yield app
        db.session.remove()
        db.engine.dispose()
        forget_statements_compiled_for(db.engine)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_app(app, tmp_path):
    """More apps on the test's database, each with settings of its own, configured as a
    deployment would be (each starts with fresh counters)."""
    made = []

    def make(**settings):
        other = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                "INSTANCE_PATH": str(tmp_path / f"app{len(made)}"),
                "SERVER_NAME": None,
                "PASSWORD_HASH_METHOD": FAST_SCRYPT,
                **settings,
            }
        )
        other.test_client_class = RequestIsolatedClient
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- staff ---------------------------------------------------------------------------------------


@pytest.fixture
def make_staff(app):
    def make(
        role: Role = Role.organiser,
        email: str | None = None,
        name: str = "Sam Staff",
        password: str = PASSWORD,
        active: bool = True,
    ) -> StaffUser:
        user = StaffUser(
            email=email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.com",
            name=name,
            role=role,
            active=active,
        )
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def admin(make_staff):
    return make_staff(Role.admin, email="admin@example.com", name="Ada Admin")


@pytest.fixture
def organiser(make_staff):
    return make_staff(Role.organiser, email="org@example.com", name="Olu Organiser")


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    log_in(client, admin)
    return client


@pytest.fixture
def organiser_client(app, organiser):
    client = app.test_client()
    log_in(client, organiser)
    return client


@pytest.fixture
def checkin_client(app, make_staff):
    client = app.test_client()
    log_in(client, make_staff(Role.checkin, email="door@example.com", name="Dee Door"))
    return client


# --- factories -----------------------------------------------------------------------------------


@pytest.fixture
def make_event(app):
    counter = iter(range(1, 10_000))

    def make(**fields) -> Event:
        n = next(counter)
        starts = fields.pop("starts_at", at(14, 8))
        values = dict(
            slug=f"event-{n}",
            title=f"Cyber seminar {n}",
            summary="Protect your business.",
            venue_name="Holiday Inn Stevenage",
            venue_address="St George's Way, Stevenage SG1 1HS",
            starts_at=starts,
            ends_at=starts + timedelta(hours=4),
            capacity=80,
            business_limit=3,
            status=EventStatus.published,
            host="Hertfordshire Chamber of Commerce",
        )
        values.update(fields)
        event = Event(**values)
        db.session.add(event)
        db.session.commit()
        return event

    return make


@pytest.fixture
def make_speaker(app):
    def make(name: str = "Tony Richardson", organisation: str = "Octree", **fields) -> Speaker:
        speaker = Speaker(
            name=name,
            organisation=organisation,
            job_title=fields.pop("job_title", ""),
            bio=fields.pop("bio", ""),
            email=fields.pop("email", None),
        )
        db.session.add(speaker)
        db.session.commit()
        return speaker

    return make


@pytest.fixture
def make_item(app):
    def make(
        event: Event,
        *,
        minutes_in: int = 0,
        length: int = 30,
        title: str = "A talk",
        speakers: list[Speaker] = (),
        kind: AgendaKind = AgendaKind.talk,
    ) -> AgendaItem:
        starts = event.starts_at + timedelta(minutes=minutes_in)
        item = AgendaItem(
            event=event,
            title=title,
            kind=kind,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=length),
        )
        item.speaker_links = [
            AgendaItemSpeaker(speaker=s, position=i) for i, s in enumerate(speakers)
        ]
        db.session.add(item)
        db.session.commit()
        return item

    return make


# --- a real SMTP server ---------------------------------------------------------------------------


@pytest.fixture
def smtp_server(app):
    """aiosmtpd on a free loopback port; the app's mail goes to it."""
    from tests.smtp_server import SMTPServer

    server = SMTPServer()
    server.start()
    app.config.update(server.config())
    yield server
    server.stop()


# --- a real server for the browser ---------------------------------------------------------------


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, bodies_whole(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


# --- a real browser (Debian's Chromium under Playwright): see tests/browser_support.py -------------


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module: only one Playwright may run in a process at a time."""
    from tests.browser_support import chromium_browser

    with chromium_browser() as opened:
        yield opened


@pytest.fixture
def pages(browser, live_server):
    """Opens pages against the live server; fails the test if the browser reported an error."""
    from tests.browser_support import Pages

    opened = Pages(browser, live_server)
    yield opened
    opened.close()
    assert not opened.problems, "the browser reported errors:\n" + "\n".join(opened.problems)


@pytest.fixture
def page(pages):
    """A desktop-sized page with nobody logged in."""
    return pages.new()
