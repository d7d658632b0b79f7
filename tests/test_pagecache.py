"""The public page cache (`core.pagecache`) is never wrong: a change shows on the next request, a
booking changes the seat state, staff and anonymous visitors never get each other's page, and no
kept page holds a form token, a name or an email. Conditional GETs get a 304 without rendering."""

from __future__ import annotations

import gc
import os
import re
import threading
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import update

from chamber.core import pagecache
from chamber.core.dialects import on_postgresql
from chamber.core.pagecache import PublicVersion, current_version
from chamber.core.times import utcnow
from chamber.events.models import AgendaItem, Event, Speaker
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.registration import services as registration_services
from chamber.registration import views as registration_views
from chamber.registration.views import KeptForm
from tests.factories import make_booking
from tests.support import count_queries, post_form


def kept_pages(app) -> list[bytes]:
    store = app.extensions["chamber.pagecache"].store
    entries = [store.get(key) for key in store._cache]  # SimpleCache's own dict of entries
    return [entry[0] for entry in entries if isinstance(entry, tuple)]


def kept_forms(app) -> list[str]:
    """Pages with a form, kept without their token (`pagecache.kept_page`)."""
    store = app.extensions["chamber.pagecache"].store
    return [entry.page for key in store._cache if isinstance(entry := store.get(key), KeptForm)]


def test_a_public_page_is_rendered_once_then_served_from_the_cache_with_one_query(
    app, client, make_event
):
    page = f"/events/{make_event(title='Cyber seminar').slug}"
    first = client.get(page)
    assert first.status_code == 200 and "Cyber seminar" in first.text
    with count_queries() as queries:
        second = client.get(page)
    assert second.status_code == 200
    assert second.get_data() == first.get_data()
    assert len(queries) == 1, queries  # the version, and nothing else
    assert second.headers["ETag"] == first.headers["ETag"]
    assert "s-maxage=" in second.headers["Cache-Control"]
    assert second.headers["Content-Security-Policy"]  # the hooks still add their headers


def test_a_change_staff_make_shows_on_the_next_request(app, client, organiser_client, make_event):
    event = make_event(title="Cyber seminar")
    assert "Cyber seminar" in client.get(f"/events/{event.slug}").text
    assert "Cyber seminar" in client.get("/").text
    event.title = "Ransomware breakfast"
    db.session.commit()
    assert "Ransomware breakfast" in client.get(f"/events/{event.slug}").text
    assert "Ransomware breakfast" in client.get("/").text
    assert "Ransomware breakfast" in client.get("/api/v1/events").text


def test_a_booking_changes_the_seat_state_on_the_next_request(app, client, make_event):
    event = make_event(capacity=3)
    assert "3 places left" in client.get(f"/events/{event.slug}").text
    make_booking(event, "a@example.com")
    assert "2 places left" in client.get(f"/events/{event.slug}").text
    make_booking(event, "b@example.com", "c@example.com")
    assert "Full" in client.get(f"/events/{event.slug}").text


def test_a_conditional_get_is_a_304_without_rendering(app, client, make_event):
    event = make_event()
    page = f"/events/{event.slug}"
    first = client.get(page)
    with count_queries() as queries:
        again = client.get(page, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    assert len(queries) == 1
    since = client.get(
        f"/events/{event.slug}", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert since.status_code == 304
    event.title = "Moved on"
    db.session.commit()
    changed = client.get(f"/events/{event.slug}", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and "Moved on" in changed.text


def own_headers(answer) -> list[tuple[str, str]]:
    """An answer's headers but the API's rate-limit count (`api.limit`, in front of the cache)."""
    return sorted((k, v) for k, v in answer.headers.items() if not k.startswith("X-RateLimit"))


def test_a_browsers_own_etag_gets_the_same_304_again_without_the_kept_page_being_read(
    app, client, make_event, monkeypatch
):
    """The headers of a kept page's 304 are made once (`PageCacheMiddleware.not_modified`): the
    next conditional GET with that ETag gets the same answer without reading the store, and one
    after a change, or in the next window of time, gets the page as it is then."""
    event = make_event(title="Cyber seminar")
    store = app.extensions["chamber.pagecache"].store
    for path in (f"/events/{event.slug}", "/api/v1/events"):  # the API has its own max-age
        first = client.get(path)
        tag = first.headers["ETag"]
        once = client.get(path, headers={"If-None-Match": tag})
        reads: list[str] = []
        real = store.get
        monkeypatch.setattr(
            store, "get", lambda key, real=real, reads=reads: reads.append(key) or real(key)
        )
        twice = client.get(path, headers={"If-None-Match": tag})
        monkeypatch.undo()
        assert once.status_code == twice.status_code == 304 and twice.get_data() == b""
        assert not reads
        assert own_headers(twice) == own_headers(once)
        assert twice.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert twice.headers["Last-Modified"] == first.headers["Last-Modified"]
        assert "Content-Type" not in twice.headers
    page = f"/events/{event.slug}"
    tag = client.get(page).headers["ETag"]
    assert client.get(page, headers={"If-None-Match": tag}).status_code == 304
    seconds = app.config["CACHE_SECONDS"]
    later = utcnow() + timedelta(seconds=seconds)
    monkeypatch.setattr(pagecache, "utcnow", lambda: later)
    next_window = client.get(page, headers={"If-None-Match": tag})
    assert next_window.status_code == 200 and next_window.headers["ETag"] != tag
    monkeypatch.undo()
    event.title = "Moved on"
    db.session.commit()
    changed = client.get(page, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and "Moved on" in changed.text


def test_a_304_of_a_page_no_longer_kept_is_not_remembered(app, client, make_event):
    """Its headers would be the defaults, not the page's: only a kept page's 304 is remembered."""
    middleware = app.wsgi_app
    while not isinstance(middleware, pagecache.PageCacheMiddleware):
        middleware = middleware.wsgi_app
    page = f"/events/{make_event().slug}"
    tag = client.get(page).headers["ETag"]
    app.extensions["chamber.pagecache"].store.clear()
    assert client.get(page, headers={"If-None-Match": tag}).status_code == 304
    assert not middleware.not_modified
    assert client.get(page).status_code == 200  # kept again
    assert client.get(page, headers={"If-None-Match": tag}).status_code == 304
    assert len(middleware.not_modified) == 1


def test_staff_never_get_the_anonymous_page_nor_the_reverse(
    app, client, organiser_client, make_event
):
    event = make_event()
    anonymous = client.get(f"/events/{event.slug}")
    staff = organiser_client.get(f"/events/{event.slug}")
    assert staff.status_code == 200
    assert "/staff/" in staff.text and "/staff/events" not in anonymous.text
    assert "ETag" not in staff.headers or staff.headers["ETag"] != anonymous.headers["ETag"]
    again = client.get(f"/events/{event.slug}")
    assert again.get_data() == anonymous.get_data()
    # A draft: staff see their preview; the public a 404 that is never kept.
    event.status = event.status.draft
    db.session.commit()
    assert organiser_client.get(f"/events/{event.slug}").status_code == 200
    assert client.get(f"/events/{event.slug}").status_code == 404


def test_no_kept_page_holds_a_form_token_a_name_or_an_email(app, client, make_event):
    event = make_event(capacity=5)
    make_booking(event, "zoe.obrien@example.com", business="Octree Ltd")
    form = app.test_client().get(f"/events/{event.slug}/register")  # a form token: never kept
    assert form.status_code == 200 and "ETag" not in form.headers
    for path in (
        "/",
        "/events/past",
        f"/events/{event.slug}",
        "/resources",
        f"/events/{event.slug}.ics",
        "/calendar.ics",
        "/api/v1/events",
        f"/api/v1/events/{event.slug}",
    ):
        assert client.get(path).status_code == 200, path
    kept = kept_pages(app)
    assert len(kept) == 8
    for body in kept:
        assert b"csrf_token" not in body
        assert b"zoe.obrien" not in body and b"Zoe Obrien" not in body


def test_a_visitor_with_a_session_gets_a_fresh_page_and_it_is_not_kept(app, client, make_event):
    event = make_event()
    page = f"/events/{event.slug}"
    client.get(f"{page}/register")  # the form's token put a session cookie
    assert client.get_cookie(app.config["SESSION_COOKIE_NAME"]) is not None
    with count_queries() as queries:
        client.get(page)
    assert len(queries) > 1  # rendered
    assert kept_pages(app) == []


def test_the_version_rises_with_public_changes_and_statements_but_not_private_ones(app, make_event):
    event = make_event()
    before = current_version()[0]
    db.session.execute(
        update(Event).where(Event.id == event.id).values(capacity=Event.capacity + 1)
    )
    db.session.commit()
    assert current_version()[0] == before + 1
    db.session.execute(update(OutboxMessage).values(attempts=OutboxMessage.attempts))
    db.session.commit()
    assert current_version()[0] == before + 1  # the outbox is no public page's business
    db.session.rollback()
    event.title = "Rolled back"
    db.session.flush()
    db.session.rollback()
    assert current_version()[0] == before + 1


def test_last_writes_go_with_the_version_and_the_commit_raises_it_no_more(app, make_event):
    """A transaction's last writes under a lock (`pagecache.last_writes`) take the version's rise
    with them (one statement on PostgreSQL); the commit then raises it no further, and a public
    change made after them raises it again. A table with an `onupdate` column (the event's
    `updated_at`) is written by a statement of its own, so that value is still set."""
    event, speaker = make_event(), Speaker(name="Dr Ada")
    db.session.add_all([speaker, AgendaItem(event=event, title="Talk", starts_at=event.starts_at,
                                            ends_at=event.ends_at)])  # fmt: skip
    db.session.commit()
    events, speakers, items = Event.__table__, Speaker.__table__, AgendaItem.__table__
    updated_before, before = event.updated_at, current_version()[0]
    speaker.job_title = "A public change before the last writes"
    db.session.flush()
    with count_queries() as queries:
        pagecache.last_writes(
            [
                update(speakers).where(speakers.c.id == speaker.id).values(bio="Cryptographer"),
                update(items).where(items.c.event_id == event.id).values(title="Renamed"),
                update(events).where(events.c.id == event.id).values(capacity=77),
            ]
        )
        db.session.commit()
    # PostgreSQL: the event's own UPDATE, the rest with the version's, and the commit raises
    # nothing more; SQLite: each write, and the version at the commit.
    assert sum("public_version" in q for q in queries) == 1
    assert current_version()[0] == before + 1
    db.session.refresh(event)
    assert (event.capacity, speaker.bio) == (77, "Cryptographer")
    assert event.updated_at > updated_before
    assert [item.title for item in event.agenda_items] == ["Renamed"]
    speaker.job_title = "Changed again"
    db.session.flush()
    pagecache.last_writes([update(speakers).values(bio="Cryptographer and author")])
    speaker.organisation = "A public change after the last writes"
    db.session.commit()
    # Raised with the last writes and again at the commit on PostgreSQL; once on SQLite.
    assert current_version()[0] == before + (3 if on_postgresql() else 2)
    db.session.execute(db.delete(PublicVersion))  # a database the migrations did not seed
    db.session.commit()
    speaker.job_title = "Changed once more"
    db.session.flush()
    pagecache.last_writes([update(speakers).values(bio="Cryptographer, author")])
    db.session.commit()
    assert current_version()[0] == 1  # the commit seeded the row the statement found missing


def test_the_version_row_comes_back_if_it_was_removed(app, make_event):
    db.session.execute(db.delete(PublicVersion))
    db.session.commit()
    assert current_version() == (0, None)
    make_event()
    assert current_version()[0] == 1


@pytest.mark.parametrize(
    "query",
    [
        "?x=" + "a" * 5000,
        "?x=%0d%0aSet-Cookie:%20a=b",
        "?x={{7*7}}",
        "?x=%27%20OR%201=1--",
        "?x=%E2%80%AE%F0%9F%92%A3",
        "?x=%ff%fe",
    ],
)
def test_hostile_addresses_are_kept_apart_and_never_break_the_page(app, client, make_event, query):
    event = make_event()
    response = client.get(f"/events/{event.slug}{query}")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    plain = client.get(f"/events/{event.slug}")
    assert plain.headers["ETag"] != response.headers["ETag"]


def test_the_cache_can_be_switched_off(app, client, make_event):
    app.extensions["chamber.pagecache"].store = pagecache.NullCache()
    page = f"/events/{make_event().slug}"
    client.get(page)
    with count_queries() as queries:
        assert client.get(page).status_code == 200
    assert len(queries) > 1


def test_a_redis_store_is_shared_and_a_lost_redis_costs_only_speed(app, client, make_event):
    redis = pytest.importorskip("redis")
    url = os.environ.get("CHAMBER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {url}")
    store = pagecache._store({"CACHE_URL": url, "CACHE_ENTRIES": 10})
    store.clear()
    app.extensions["chamber.pagecache"].store = store
    page = f"/events/{make_event().slug}"
    first = client.get(page)
    with count_queries() as queries:
        assert client.get(page).get_data() == first.get_data()
    assert len(queries) == 1
    app.extensions["chamber.pagecache"].store = pagecache._store(
        {"CACHE_URL": "redis://127.0.0.1:1/0", "CACHE_ENTRIES": 10}
    )
    assert client.get(page).status_code == 200  # rendered, not refused
    store.clear()


def test_staff_pages_and_forms_are_never_public_pages(app):
    endpoints = app.extensions["chamber.pagecache"].endpoints
    assert endpoints  # the domains marked theirs
    for rule in app.url_map.iter_rules():
        if rule.endpoint in endpoints:
            assert not rule.rule.startswith("/staff"), rule.rule
            assert "register" not in rule.rule and "POST" not in (rule.methods or ()), rule.rule


def test_a_form_post_is_never_answered_from_the_cache(app, client, make_event):
    event = make_event(capacity=5)
    client.get(f"/events/{event.slug}")
    response = post_form(
        client,
        f"/events/{event.slug}/register",
        {"business_name": "Octree", "size_band": "small", "name": "Zoë", "email": "z@example.com"},
    )
    assert response.status_code in (200, 302, 400)
    assert "ETag" not in response.headers


def test_an_address_that_is_not_a_page_is_never_not_modified(app, client, make_event):
    """`If-None-Match: *` or a date on an address the view refuses gets the refusal, not a 304."""
    event = make_event()
    for path in ("/events/no-such-event", "/api/v1/events?page=-3", "/api/v1/events/nope"):
        for headers in (
            {"If-None-Match": "*"},
            {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
            {"If-None-Match": '"1-123-abc"'},
        ):
            assert client.get(path, headers=headers).status_code in (400, 404), (path, headers)
    page = f"/events/{event.slug}"
    client.get(page)  # kept now: `*` holds
    assert client.get(page, headers={"If-None-Match": "*"}).status_code == 304


def test_a_worker_round_with_nothing_public_to_do_leaves_the_kept_pages_in_place(app, make_event):
    """The worker beats every few seconds (`worker_heartbeat`): that is no public page's business,
    so it must not empty the cache."""
    from chamber.worker import Worker

    make_event()
    before = current_version()[0]
    Worker(app, worker_id="test", echo=lambda _line: None).run_once()
    db.session.rollback()
    assert current_version()[0] == before


def test_the_version_is_read_in_one_statement_and_a_dead_connection_costs_nothing(
    app, client, make_event
):
    """The middleware's reader (its own engine, no ping): a connection the server dropped is
    replaced and the read tried again, so the visitor still gets the kept page."""
    page = f"/events/{make_event().slug}"
    first = client.get(page)
    reader = app.extensions["chamber.pagecache"].versions
    assert reader.read() == current_version()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            killed = (
                connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = '' AND state = 'idle' AND query LIKE '%%public_version%%'"
                )
                .scalars()
                .all()
            )
        assert killed == [True]  # the reader's connection, idle in its pool
    with count_queries() as queries:
        again = client.get(page, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert queries == [pagecache.READ_VERSION]


def test_the_reader_keeps_one_connection_a_thread_and_closes_them_all_with_the_app(app):
    reader = app.extensions["chamber.pagecache"].versions
    expected = current_version()
    db.session.rollback()
    answers = []

    def read_twice() -> None:
        answers.extend([reader.read(), reader.read()])

    threads = [threading.Thread(target=read_twice) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read_twice()
    assert answers == [expected] * 8
    assert len(reader._open) == 4  # the three threads' and this one's, each read twice
    held = [proxied.dbapi_connection for proxied in reader._open]
    db.engine.dispose()  # the app's engine disposed (a test's end, a worker's exit): all closed
    assert reader._open == []
    for connection in held:
        with pytest.raises(Exception, match="(?i)closed"):
            connection.cursor().execute(pagecache.READ_VERSION)
    assert reader.read() == expected  # and a read after it opens a new one
    assert len(reader._open) == 1


def test_a_thread_that_ends_leaves_its_connection_to_the_next(app):
    """A server that starts a thread a request (the demo's) must not gain a connection a
    request: an ended thread's connection waits for the next new thread."""
    reader = app.extensions["chamber.pagecache"].versions
    answers = []
    for _ in range(6):  # a connection a thread would leave six; each `gc.collect` takes a while
        thread = threading.Thread(target=lambda: answers.append(reader.read()))
        thread.start()
        thread.join()
        del thread
        gc.collect()
    assert len(answers) == 6 and len(set(answers)) == 1
    assert len(reader._open) <= 2  # one in use at a time, handed on


def test_the_middleware_keeps_each_paths_endpoint_within_its_bound(app, client, make_event):
    middleware = app.wsgi_app
    while not isinstance(middleware, pagecache.PageCacheMiddleware):
        middleware = middleware.wsgi_app
    event = make_event()
    bound = pagecache.MATCHED_PATHS
    try:
        pagecache.MATCHED_PATHS = 3
        assert client.get(f"/events/{event.slug}").status_code == 200
        for n in range(5):
            assert client.get(f"/events/no-such-{n}").status_code == 404
            assert len(middleware.matched) <= 3
            tag = client.get(f"/events/{event.slug}?n={n}").headers["ETag"]
            again = client.get(f"/events/{event.slug}?n={n}", headers={"If-None-Match": tag})
            assert again.status_code == 304
            assert len(middleware.not_modified) <= 3
        assert client.get("/staff/").status_code in (302, 308)  # not public: Flask answers
        assert middleware.matched.get("/staff/", "absent") in (None, "absent")
        again = client.get(f"/events/{event.slug}")
        assert again.status_code == 200 and event.title in again.text
    finally:
        pagecache.MATCHED_PATHS = bound


# --- the booking form: kept without its token ----------------------------------------------------


def test_the_booking_form_is_rendered_once_and_each_visitor_gets_their_own_token(app, make_event):
    event = make_event(capacity=5, title="Cyber seminar")
    path = f"/events/{event.slug}/register"
    first, second = app.test_client(), app.test_client()
    page = first.get(path)
    with count_queries() as queries:
        again = second.get(path)
    assert page.status_code == again.status_code == 200
    assert "Cyber seminar" in again.text and "5 places left" in again.text
    assert len(queries) == 1, queries  # the version alone: the event is not read, nor rendered
    ours, theirs = (csrf_token_in(r.text) for r in (page, again))
    assert ours and theirs and ours != theirs  # each session its own token
    assert page.headers["Cache-Control"].startswith("private") or "ETag" not in page.headers
    (kept,) = kept_forms(app)
    assert pagecache.TOKEN_SLOT in kept and ours not in kept and theirs not in kept
    assert pagecache.TOKEN_SLOT not in page.text + again.text
    # Each visitor's own token books; the other's is refused.
    booking = booking_fields("ada@example.com")
    assert second.post(path, data={"csrf_token": theirs, **booking}).status_code == 302
    refused = first.post(path, data={"csrf_token": theirs, **booking_fields("bo@example.com")})
    assert refused.status_code == 400


def test_the_kept_booking_form_shows_the_places_left_after_each_booking(app, make_event):
    event = make_event(capacity=3)
    path = f"/events/{event.slug}/register"
    assert "3 places left" in app.test_client().get(path).text
    make_booking(event, "a@example.com")
    assert "2 places left" in app.test_client().get(path).text


def test_the_kept_booking_form_is_not_served_once_booking_has_closed(app, make_event, monkeypatch):
    """Time closes booking without any row changing: the kept form says until when it holds."""
    closes = utcnow() + timedelta(hours=1)
    event = make_event(registration_closes_at=closes)
    path = f"/events/{event.slug}/register"
    assert 'name="csrf_token"' in app.test_client().get(path).text
    assert len(kept_forms(app)) == 1
    later = closes + timedelta(seconds=1)
    monkeypatch.setattr(registration_views, "utcnow", lambda: later)
    monkeypatch.setattr(registration_services, "utcnow", lambda: later)
    closed = app.test_client().get(path)
    assert closed.status_code == 200
    assert "Booking for this event has closed." in closed.text
    assert 'name="csrf_token"' not in closed.text


def test_staff_and_visitors_with_a_message_waiting_get_a_fresh_booking_form(
    app, client, organiser_client, make_event
):
    event = make_event()
    path = f"/events/{event.slug}/register"
    staff = organiser_client.get(path)
    assert staff.status_code == 200 and "/staff/" in staff.text
    assert kept_forms(app) == []
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "A message for this visitor alone")]
    assert "A message for this visitor alone" in client.get(path).text
    assert kept_forms(app) == []
    assert "/staff/" not in app.test_client().get(path).text  # and then kept, anonymous


def csrf_token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    return match.group(1) if match else ""


def booking_fields(email: str) -> dict[str, str]:
    return {
        "business_name": "Octree Ltd", "size_band": "small", "sector": "IT",
        "town_or_postcode": "Stevenage", "is_member": "no", "booker_name": "Ada Booker",
        "booker_email": email, "delegates-0-name": "Ada Booker", "delegates-0-email": email,
        "privacy": "y",
    }  # fmt: skip


@pytest.fixture
def libpq_reader(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the reader goes through libpq on PostgreSQL only")
    reader = app.extensions["chamber.pagecache"].versions
    expected = current_version()
    db.session.rollback()
    assert reader.read() == expected
    return reader, expected


def test_a_connection_another_thread_prepared_the_read_on_reads_it_still(libpq_reader):
    """On PostgreSQL the reader prepares its statement once a connection; a connection a thread
    that ended left to the next one has it prepared already, which is no error."""
    reader, expected = libpq_reader
    done: list[object] = []

    def read_and_end() -> None:
        done.append(reader.read())

    # The thread's connection, prepared on, goes to the idle list when the thread is gone.
    thread = threading.Thread(target=read_and_end)
    thread.start()
    thread.join()
    del thread
    gc.collect()
    assert reader._idle, "the ended thread's connection waits for the next thread"
    handed = reader._idle[-1]
    second = threading.Thread(target=read_and_end)
    second.start()
    second.join()
    assert done == [expected, expected]
    assert handed in reader._open and handed not in reader._idle  # the second thread took it


@pytest.mark.parametrize(
    "break_it",
    [
        b"DEALLOCATE chamber_read_version",  # the server no longer has the statement
        b"ALTER TABLE public_version ALTER COLUMN number TYPE bigint",  # its plan no longer fits
    ],
    ids=["deallocated", "table altered"],
)
def test_a_read_whose_prepared_statement_went_wrong_prepares_it_again(libpq_reader, break_it):
    reader, expected = libpq_reader
    connection = reader._local.held[3]
    broken = connection.pgconn.exec_(break_it)
    assert broken.status == psycopg.pq.ExecStatus.COMMAND_OK, broken.error_message
    try:
        assert reader.read() == expected
        assert reader.read() == expected
    finally:
        if b"ALTER" in break_it:
            connection.pgconn.exec_(b"ALTER TABLE public_version ALTER COLUMN number TYPE integer")
