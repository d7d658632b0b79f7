"""Helpers for driving the app like a browser does (form tokens, posting, logging in), for
isolating each request as a real server does, for counting the SQL a block runs, and for making
a fresh app per test without compiling its templates and URL rules again."""

from __future__ import annotations

import contextvars
import copy
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import jinja2
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from chamber.auth.models import StaffUser
from chamber.core import pagecache, pipeline
from chamber.core.transactions import unit_of_work
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.mail.rendering import render_claimed
from tests.factories import PASSWORD

CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class RequestIsolatedClient(FlaskClient):
    """Runs each request in its own application context, as a real server does.

    The test itself holds an app context (for factories and assertions); without this, requests
    would share its `g` and its database session and hide bugs a real server would show.
    """

    _inside = False

    def open(self, *args, **kwargs):
        if self._inside:  # a redirect being followed: already isolated
            return super().open(*args, **kwargs)
        self._inside = True
        try:
            response = contextvars.Context().run(super().open, *args, **kwargs)
        finally:
            self._inside = False
        db.session.expire_all()  # the test sees what the request committed
        return response


def csrf_token(client, path: str = "/staff/login") -> str:
    """The CSRF token from a real page, as a browser would have it."""
    response = client.get(path)
    match = CSRF_PATTERN.search(response.text)
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


def post_form(client, path: str, data: dict, *, token_from: str | None = None, **kwargs):
    """POST like a browser: with the CSRF token from the form's own page (or `token_from`)."""
    token_page = token_from or path
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **data}, **kwargs)


def log_in(client, user: StaffUser, password: str = PASSWORD):
    response = post_form(client, "/staff/login", {"email": user.email, "password": password})
    assert response.status_code == 302, response.text
    return response


@contextmanager
def count_queries() -> Iterator[list[str]]:
    """Collect every SQL statement run inside the block."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    # The page cache's middleware reads the public version straight from the driver, on an
    # engine of its own (`pagecache.VersionReader`): count its statement too.
    reader = pagecache.VersionReader.read

    def read(self: pagecache.VersionReader) -> tuple[int, object]:
        statements.append(pagecache.READ_VERSION)
        return reader(self)

    # A few statements go to PostgreSQL together, straight to the driver (`core.pipeline`).
    together = pipeline.run

    def run(sent):
        statements.extend(pipeline.prepared(statement, values).sql for statement, values in sent)
        return together(sent)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    pagecache.VersionReader.read = read  # type: ignore[method-assign,assignment]
    pipeline.run = run  # type: ignore[assignment]
    try:
        yield statements
    finally:
        pipeline.run = together  # type: ignore[assignment]
        pagecache.VersionReader.read = reader  # type: ignore[method-assign]
        sa.event.remove(db.engine, "before_cursor_execute", record)


def bodies_whole(app: Callable) -> Callable:
    """`app` for a test's live server, each response's body read whole and its iterable closed
    before the server writes any of it. Werkzeug's development server does not close the
    iterable when the client goes away mid-response (a browser leaving a page while its
    stylesheet loads), so the file it was sending was left for the garbage collector, whose
    ResourceWarning then failed whichever test was running. No page here streams."""

    def wsgi(environ, start_response):
        iterable = app(environ, start_response)
        try:
            return [b"".join(iterable)]
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    return wsgi


def render_waiting() -> int:
    """Render every message that waits to be rendered when sent, as a worker does when it claims
    it (`mail.rendering.render_claimed`, the worker's own step), and give them back unsent, so
    that a test reads their bodies and attachments as they will go. Returns how many."""
    claim = "tests-render-waiting"
    waiting = (
        OutboxMessage.render_with.is_not(None)
        & OutboxMessage.claimed_by.is_(None)
        & (OutboxMessage.status == MessageStatus.pending)
    )
    with unit_of_work():
        db.session.execute(sa.update(OutboxMessage).where(waiting).values(claimed_by=claim))
    rendered = render_claimed(claim)
    with unit_of_work():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.claimed_by == claim)
            .values(claimed_by=None)
        )
    db.session.expire_all()
    return rendered


# --- compiling once per run ------------------------------------------------------------------------
# Every test gets a fresh app, and most of the time making one went to compiling the same URL
# rules and templates again. What is compiled depends only on the rule or the template's source.


class SharedTemplateCache(jinja2.BytecodeCache):
    """Compiled templates kept for the whole run, for every app (Jinja checks the source's checksum)."""

    def __init__(self) -> None:
        self.compiled: dict[str, tuple[str, object]] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        checksum, code = self.compiled.get(bucket.key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled[bucket.key] = (bucket.checksum, bucket.code)


def url_builders_compiled_once(monkeypatch) -> None:
    """Share werkzeug's compiled URL builder between rules of the same shape. The builder is made
    from the rule's parsed parts alone (and its defaults: a rule with defaults is left alone); it
    reads the rule's converters at call time, so one function serves every app's copy of a rule."""
    compile_builder: Callable = Rule._compile_builder
    built: dict[tuple, Callable] = {}

    def shared(rule: Rule, append_unknown: bool = True) -> Callable:
        if rule.defaults:
            return compile_builder(rule, append_unknown)
        key = (tuple(rule._trace), append_unknown)
        if key not in built:
            built[key] = compile_builder(rule, append_unknown)
        return built[key]

    monkeypatch.setattr(Rule, "_compile_builder", shared)


def url_rules_parsed_once(monkeypatch) -> None:
    """Share werkzeug's parse of a rule's text between every app's copy of the rule. The parts
    and trace depend on the text and the converter classes alone; each copy gets converters of its
    own, bound to its own map."""
    parse: Callable = Rule._parse_rule
    parsed: dict[tuple, tuple[list, list, dict]] = {}

    def shared(rule: Rule, text: str) -> Iterator:
        key = (text, tuple(sorted((name, id(kind)) for name, kind in rule.map.converters.items())))
        if key not in parsed:
            trace_from, converters_before = len(rule._trace), set(rule._converters)
            parts = list(parse(rule, text))
            new = {k: v for k, v in rule._converters.items() if k not in converters_before}
            parsed[key] = (parts, rule._trace[trace_from:], new)
            return iter(parts)
        parts, trace, converters = parsed[key]
        rule._trace.extend(trace)
        for variable, converter in converters.items():
            own = copy.copy(converter)
            own.map = rule.map
            rule._converters[variable] = own
            rule.arguments.add(variable)
        return iter(parts)

    monkeypatch.setattr(Rule, "_parse_rule", shared)


def forget_statements_compiled_for(engine: sa.Engine) -> None:
    """Drop the ORM's compiled INSERT and UPDATE statements for a finished test's engine. Each
    mapper keeps them (up to a hundred) keyed by the engine's dialect, so without this every test's
    dialect, with its types and caches, lived on, and the garbage collector walked them all again
    and again: it had taken a third of the suite's time."""
    for mapper in db.Model.registry.mappers:
        cache = mapper._compiled_cache
        for key in [key for key in cache if key[0] is engine.dialect]:
            cache.pop(key, None)
