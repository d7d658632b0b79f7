"""Link health end to end: runs over published links record states and a short history, the
command line and the worker run checks (the worker only when due), staff see what needs attention,
accept a permanent redirect, set the schedule and queue a check, and nobody else may."""

from __future__ import annotations

import errno
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from chamber.extensions import db
from chamber.resources import checker, health
from chamber.resources.models import (
    LinkCheck,
    LinkCheckRun,
    LinkCheckSchedule,
    LinkState,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from chamber.worker import Worker
from tests.link_server import LinkServer
from tests.support import csrf_token, post_form

PAGE = "/staff/resources/health/"


@pytest.fixture
def server(app):
    app.config.update(LINKCHECK_ALLOW_PRIVATE=True, LINKCHECK_TIMEOUT=1.0)
    server = LinkServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_link(app):
    def make(url: str, title: str | None = None, **fields) -> Resource:
        resource = Resource(
            slug=f"link-{uuid.uuid4().hex[:8]}",
            title=title or url,
            url=url,
            kind=ResourceKind.link,
            status=fields.pop("status", ResourceStatus.published),
            **fields,
        )
        db.session.add(resource)
        db.session.commit()
        return resource

    return make


def run_now() -> health.RunReport:
    run = health.start_run("test")
    return health.run_check(run)


def reload(resource: Resource) -> Resource:
    db.session.expire_all()
    return db.session.get(Resource, resource.id)


def checks_of(resource: Resource) -> list[LinkCheck]:
    return db.session.scalars(
        db.select(LinkCheck).where(LinkCheck.resource_id == resource.id).order_by(LinkCheck.id)
    ).all()


def set_schedule(**fields) -> LinkCheckSchedule:
    schedule = db.session.get(LinkCheckSchedule, health.SCHEDULE_ID) or LinkCheckSchedule(
        id=health.SCHEDULE_ID
    )
    for name, value in {"enabled": True, "interval_days": 7, **fields}.items():
        setattr(schedule, name, value)
    db.session.add(schedule)
    db.session.commit()
    return schedule


def runs() -> list[LinkCheckRun]:
    db.session.expire_all()
    return db.session.scalars(db.select(LinkCheckRun).order_by(LinkCheckRun.id)).all()


# --- running a check ------------------------------------------------------------------------------


def test_a_run_records_each_published_links_state_and_history(server, make_link):
    ok = make_link(server.url("/ok"), "Cyber Essentials")
    moved = make_link(server.url("/chain"), "CESG")
    missing = make_link(server.url("/missing"), "CPNI")
    twin = make_link(server.url("/missing"), "CPNI again")  # the same URL is fetched once
    draft = make_link(server.url("/error"), "Draft", status=ResourceStatus.draft)

    report = run_now()

    assert (report.total, report.checked, report.stopped) == (4, 4, False)
    assert reload(ok).link_state == LinkState.ok
    moved = reload(moved)
    assert (moved.link_state, moved.last_status_code) == (LinkState.redirected, 200)
    assert moved.final_url == server.url("/ok")
    assert moved.last_checked_at is not None
    for resource in (missing, twin):
        resource = reload(resource)
        assert (resource.link_state, resource.last_status_code) == (LinkState.broken, 404)
    assert reload(draft).link_state == LinkState.unchecked
    assert [path for _, path, _ in server.requests].count("/missing") == 2  # HEAD, then GET once

    [history] = [checks_of(moved)]
    assert len(history) == 1
    assert history[0].permanent_redirect is True
    assert history[0].redirects.splitlines() == [
        f"301 {server.url('/chain-2')}",
        f"308 {server.url('/ok')}",
    ]
    [run] = runs()
    assert (run.total, run.checked, run.problems) == (4, 4, 3)
    assert run.finished_at is not None and run.claimed_by is None


def test_by_default_a_link_to_a_private_address_is_refused_unasked(app, server, make_link):
    app.config["LINKCHECK_ALLOW_PRIVATE"] = False
    local = make_link(server.url("/ok"))
    metadata = make_link("http://169.254.169.254/latest/meta-data/")
    run_now()
    for link, address in ((local, "127.0.0.1"), (metadata, "169.254.169.254")):
        link = reload(link)
        assert link.link_state == LinkState.unreachable
        assert link.last_error.startswith(f"refused address: {address}")
    assert server.requests == []


@pytest.mark.slow
def test_only_the_last_ten_checks_of_a_link_are_kept(server, make_link):
    link = make_link(server.url("/ok"))
    for _ in range(12):
        run_now()
    assert len(checks_of(link)) == health.HISTORY_KEPT


def test_a_link_edited_during_a_run_keeps_its_new_address_state(server, make_link):
    quick = make_link(server.url("/ok"))
    slow = make_link(server.url("/slow/old"))
    server.slow_seconds = 0.5
    run = health.start_run("test")

    def staff_edit_the_slow_one(report):  # while its check is still in flight
        if report.checked == 1:
            db.session.get(Resource, slow.id).url = server.url("/slow/new")
            db.session.commit()

    health.run_check(run, on_progress=staff_edit_the_slow_one)
    assert reload(quick).link_state == LinkState.ok
    slow = reload(slow)
    assert (slow.url, slow.link_state) == (server.url("/slow/new"), LinkState.unchecked)


def edit_address(client, link: Resource, url: str):
    path = f"/staff/resources/{link.id}/edit"
    data = {"title": link.title, "url": url, "publisher": "", "description": "", "category": "",
            "tags": "", "staff_note": "", "slug": link.slug}  # fmt: skip
    response = post_form(client, path, data)
    assert response.status_code == 302, response.text
    return reload(link)


def test_a_broken_link_given_a_new_address_is_unchecked_until_checked_again(
    server, make_link, organiser_client
):
    make_link(server.url("/no-head"), "NCSC")  # checked, and fine
    link = make_link(server.url("/missing"), "CPNI")
    run_now()
    assert "CPNI" in organiser_client.get(PAGE).text  # broken 404: needs attention

    link = edit_address(organiser_client, link, server.url("/ok"))
    assert link.link_state == LinkState.unchecked
    assert (link.last_checked_at, link.last_status_code, link.final_url, link.last_error) == (
        None, None, None, None,
    )  # fmt: skip
    text = organiser_client.get(PAGE).text
    attention = text[text.index("Links that need attention") : text.index('id="unchecked"')]
    assert "Every checked link answered at its own address" in attention
    unchecked = text[text.index('id="unchecked"') :]
    assert "given a new address since the last check" in unchecked and "CPNI" in unchecked

    page = organiser_client.get(f"/staff/resources/{link.id}").text
    section = page[page.index('id="link-health"') :]
    assert "Not checked since its address was changed." in section
    assert "tag-broken" not in section
    old_address = server.url("/missing")
    assert (
        f'broken (404) <span class="meta">of the old address <span class="link-url">{old_address}'
        in section
    )
    assert len(checks_of(link)) == 1  # the old address's history stays, naming what it checked

    run_now()
    assert reload(link).link_state == LinkState.ok


def test_a_working_link_given_a_dead_address_is_not_shown_as_ok(
    server, make_link, organiser_client
):
    link = make_link(server.url("/ok"), "NCSC")
    run_now()
    link = edit_address(organiser_client, link, server.url("/missing"))
    assert (link.link_state, link.last_checked_at) == (LinkState.unchecked, None)
    page = organiser_client.get(f"/staff/resources/{link.id}").text
    assert "tag-ok" not in page[page.index('id="link-health"') :]
    run_now()
    assert reload(link).link_state == LinkState.broken


def test_editing_a_link_but_not_its_address_keeps_its_check(server, make_link, organiser_client):
    link = make_link(server.url("/missing"), "CPNI")
    run_now()
    link = edit_address(organiser_client, link, f"  {server.url('/missing')} ")
    assert (link.link_state, link.last_status_code) == (LinkState.broken, 404)
    assert link.last_checked_at is not None


def test_a_second_run_is_refused_while_one_holds_its_lease(server, make_link):
    make_link(server.url("/ok"))
    health.start_run("first")
    with pytest.raises(health.HealthError, match="Another check is running"):
        health.start_run("second")


def test_a_run_abandoned_by_a_dead_worker_is_taken_again_after_its_lease(server, make_link):
    make_link(server.url("/ok"))
    abandoned = health.start_run("dead-worker")
    assert health.due_run("live-worker") is None  # the lease still holds
    later = datetime.now(UTC) + health.LEASE + timedelta(seconds=1)
    taken = health.due_run("live-worker", now=later)
    assert taken is not None and taken.id == abandoned.id
    assert taken.claimed_by.startswith("live-worker:")


def test_two_workers_asking_at_once_take_a_queued_run_only_once(app, server, make_link):
    make_link(server.url("/ok"))
    health.queue_check(trigger="staff")
    db.session.commit()
    barrier = threading.Barrier(2)
    claimed: list[str] = []
    errors: list[Exception] = []

    def ask(worker_id: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                run = health.due_run(worker_id)
            except OperationalError as error:  # SQLite: the loser may find the database busy
                errors.append(error)
                return
            finally:
                db.session.remove()
            if run is not None:
                claimed.append(worker_id)

    threads = [threading.Thread(target=ask, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(claimed) == 1
    if db.engine.dialect.name == "postgresql":
        assert errors == []
    [run] = runs()
    assert run.claimed_by.startswith(claimed[0] + ":")


def test_the_first_two_uses_of_the_schedule_at_once_both_succeed(app, make_link, monkeypatch):
    """Before anything saved the schedule, two "Check now" at once both create its row; one
    queues the run, the other is told a check is waiting (never an IntegrityError)."""
    make_link("https://www.ncsc.gov.uk/")
    assert db.session.get(LinkCheckSchedule, health.SCHEDULE_ID) is None
    db.session.remove()
    # Both must have found no row before either creates it: hold each at its insert.
    at_insert = threading.Barrier(2, timeout=10)

    def hold_at_the_insert(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO LINK_CHECK_SCHEDULE"):
            at_insert.wait()

    sa.event.listen(db.engine, "before_cursor_execute", hold_at_the_insert)
    outcomes: list[str] = []

    def check_now() -> None:
        with app.app_context():
            try:
                health.queue_check(trigger="staff")
                db.session.commit()
                outcomes.append("queued")
            except health.HealthError:
                outcomes.append("already waiting")
            except Exception as error:  # whatever went wrong, to show in the assertion
                outcomes.append(repr(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=check_now) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", hold_at_the_insert)
    assert sorted(outcomes) == ["already waiting", "queued"]
    assert len(runs()) == 1
    schedule = db.session.get(LinkCheckSchedule, health.SCHEDULE_ID)
    assert (schedule.enabled, schedule.interval_days) == (True, health.DEFAULT_INTERVAL_DAYS)


# --- the command line -----------------------------------------------------------------------------


def test_the_command_shows_progress_and_a_summary(server, make_link, runner):
    make_link(server.url("/ok"), "Fine")
    make_link(server.url("/missing"), "Gone")
    make_link(server.url("/chain"), "Moved")

    result = runner.invoke(args=["resources", "check"])

    assert result.exit_code == 0, result.output
    assert "Checking links" in result.output
    assert "Checked 3 of 3 link(s)" in result.output
    assert "1 ok, 1 redirected, 1 broken" in result.output
    assert f"broken      404  Gone: {server.url('/missing')}" in result.output
    assert f"Moved: {server.url('/chain')} -> {server.url('/ok')}" in result.output
    assert "Fine:" not in result.output


def test_the_command_refuses_while_another_check_runs(server, make_link, runner):
    make_link(server.url("/ok"))
    health.start_run("worker")
    result = runner.invoke(args=["resources", "check"])
    assert result.exit_code == 1
    assert "Another check is running" in result.output


# --- the worker -----------------------------------------------------------------------------------


def worker(app) -> tuple[Worker, list[str]]:
    lines: list[str] = []
    return Worker(app, worker_id="test-worker", echo=lines.append), lines


def test_the_worker_checks_nothing_until_the_schedule_is_due(app, server, make_link):
    link = make_link(server.url("/ok"))
    set_schedule(next_run_at=datetime.now(UTC) + timedelta(days=1))
    the_worker, _ = worker(app)
    the_worker.run_once()
    assert runs() == []
    assert server.requests == []
    assert reload(link).link_state == LinkState.unchecked


def test_the_worker_runs_a_due_check_with_progress_and_sets_the_next(app, server, make_link):
    links = [make_link(server.url("/ok")) for _ in range(3)] + [make_link(server.url("/error"))]
    set_schedule(interval_days=3, next_run_at=datetime.now(UTC) - timedelta(minutes=1))
    the_worker, lines = worker(app)

    the_worker.run_once()

    assert [reload(link).link_state for link in links] == [LinkState.ok] * 3 + [LinkState.broken]
    [run] = runs()
    assert (run.trigger, run.checked, run.problems) == ("schedule", 4, 1)
    assert "Links: checking 4 published link(s) (schedule check)" in lines
    assert "  4/4 links checked, 1 need attention" in lines
    assert any(line.startswith("Links: Checked 4 of 4 link(s)") for line in lines)
    schedule = db.session.get(LinkCheckSchedule, health.SCHEDULE_ID)
    assert schedule.next_run_at > datetime.now(UTC) + timedelta(days=2, hours=23)

    the_worker.run_once()  # not due again
    assert len(runs()) == 1


def test_the_worker_does_not_run_a_disabled_schedule(app, server, make_link):
    make_link(server.url("/ok"))
    set_schedule(enabled=False, next_run_at=datetime.now(UTC) - timedelta(days=1))
    worker(app)[0].run_once()
    assert runs() == []


def test_a_stopping_worker_hands_the_run_back(app, server, make_link):
    for n in range(5):
        make_link(server.url(f"/slow/{n}"))
    run = health.start_run("stopping-worker")
    report = health.run_check(run, should_stop=lambda: True)
    assert report.stopped and report.checked < 5
    [run] = runs()
    assert run.finished_at is None and run.claimed_by is None  # queued again for any worker


# --- staff pages ----------------------------------------------------------------------------------


def test_check_now_only_queues_a_run_that_the_worker_takes(
    app, server, make_link, organiser_client
):
    link = make_link(server.url("/missing"))
    response = post_form(organiser_client, PAGE + "check", {}, token_from=PAGE)
    assert response.status_code == 302
    assert server.requests == []  # nothing fetched during the request
    [run] = runs()
    assert (run.trigger, run.claimed_by, run.finished_at) == ("staff", None, None)
    page = organiser_client.get(PAGE).text
    assert "A check is queued" in page
    assert '<meta http-equiv="refresh"' in page

    again = post_form(organiser_client, PAGE + "check", {}, token_from=PAGE, follow_redirects=True)
    assert "already waiting or running" in again.text
    assert len(runs()) == 1

    worker(app)[0].run_once()
    assert reload(link).link_state == LinkState.broken
    page = organiser_client.get(PAGE).text
    assert "Last check (staff) finished" in page
    assert '<meta http-equiv="refresh"' not in page


def test_the_page_shows_a_running_checks_progress(organiser_client):
    db.session.add(
        LinkCheckRun(
            trigger="schedule",
            total=40,
            checked=12,
            problems=2,
            claimed_by="w",
            lease_until=datetime.now(UTC) + timedelta(minutes=5),
        )
    )
    db.session.commit()
    page = organiser_client.get(PAGE).text
    assert "12 of 40 links, 2 need attention" in page
    assert '<progress id="run-progress" class="link-progress" max="40" value="12">' in page
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "Check now" not in page


def test_the_page_lists_the_links_that_need_attention(server, make_link, organiser_client):
    make_link(server.url("/ok"), "Healthy page")
    make_link(server.url("/missing"), "Missing page")
    make_link(server.url("/moved-for-now"), "Moved page")
    run_now()
    page = organiser_client.get(PAGE)
    assert page.status_code == 200
    text = page.text
    assert "Missing page" in text and "Moved page" in text
    assert "Healthy page" not in text
    assert text.index("Missing page") < text.index("Moved page")  # broken first
    assert "tag-broken" in text and "404" in text
    assert "302 " + server.url("/ok") in text
    assert "temporary" in text
    assert "Use the new address" not in text  # a temporary redirect keeps its address


def test_times_are_shown_in_london(make_link, organiser_client):
    link = make_link("https://www.ncsc.gov.uk/", "NCSC")
    link.link_state = LinkState.broken
    link.last_status_code = 410
    link.last_checked_at = datetime(2026, 7, 1, 12, 5, tzinfo=UTC)  # 13:05 in summer time
    db.session.commit()
    text = organiser_client.get(PAGE).text
    assert "1 Jul 2026 13:05" in text
    assert "Europe/London" in text


def test_a_permanent_redirect_can_take_its_new_address(server, make_link, organiser_client):
    link = make_link(server.url("/chain"), "CESG")
    run_now()
    page = organiser_client.get(PAGE).text
    assert "Use the new address" in page
    response = post_form(
        organiser_client, f"{PAGE}{link.id}/accept", {}, token_from=PAGE, follow_redirects=True
    )
    assert response.status_code == 200
    assert f"now links to {server.url('/ok')}" in response.text
    link = reload(link)
    assert link.url == server.url("/ok")
    assert link.link_state == LinkState.ok


def test_a_temporary_redirect_cannot_replace_the_address(server, make_link, organiser_client):
    link = make_link(server.url("/moved-for-now"))
    run_now()
    response = post_form(
        organiser_client, f"{PAGE}{link.id}/accept", {}, token_from=PAGE, follow_redirects=True
    )
    assert "That redirect is temporary" in response.text
    assert reload(link).url == server.url("/moved-for-now")


def test_a_healthy_or_unknown_link_cannot_take_a_new_address(server, make_link, organiser_client):
    link = make_link(server.url("/ok"))
    run_now()
    response = post_form(
        organiser_client, f"{PAGE}{link.id}/accept", {}, token_from=PAGE, follow_redirects=True
    )
    assert "Only a link that the last check found redirected" in response.text
    assert reload(link).url == server.url("/ok")
    assert (
        post_form(organiser_client, f"{PAGE}999999/accept", {}, token_from=PAGE).status_code == 404
    )


def test_before_any_check_the_page_says_so_and_lists_the_unchecked_links(
    make_link, organiser_client
):
    make_link("https://www.ncsc.gov.uk/", "NCSC")
    make_link("https://www.getsafeonline.org/", "Get Safe Online")
    make_link("https://example.org/draft", "A draft", status=ResourceStatus.draft)
    text = organiser_client.get(PAGE).text
    assert "No check has run yet." in text
    assert "answered" not in text  # not "every link answered": none has been asked
    assert "No link has been checked yet" in text and "chamber resources check" in text
    unchecked = text[text.index('id="unchecked"') :]
    assert "2 published links have not been checked yet" in unchecked
    assert "Get Safe Online" in unchecked and "NCSC" in unchecked and "A draft" not in unchecked


def test_after_a_check_the_unchecked_are_the_links_added_since(server, make_link, organiser_client):
    make_link(server.url("/ok"), "Healthy page")
    run_now()
    text = organiser_client.get(PAGE).text
    assert "Every checked link answered at its own address at its last check." in text
    assert 'id="unchecked"' not in text
    make_link(server.url("/missing"), "Added since")
    text = organiser_client.get(PAGE).text
    assert "1 published link has not been checked yet (added, published or given a new" in text


def test_the_attention_table_scrolls_in_a_region_keyboard_users_can_reach(
    server, make_link, organiser_client
):
    make_link(server.url("/missing"), "Missing page")
    run_now()
    text = organiser_client.get(PAGE).text
    assert (
        '<div class="table-wrap" tabindex="0" role="region" '
        'aria-label="Links that need attention (scrolls sideways)">'
    ) in text


def test_a_links_staff_page_shows_its_health_and_history_in_london_time(
    server, make_link, organiser_client
):
    link = make_link(server.url("/chain"), "CESG")
    run_now()
    run_now()
    db.session.execute(
        db.update(LinkCheck).values(checked_at=datetime(2026, 7, 1, 12, 5, tzinfo=UTC))
    )
    db.session.execute(
        db.update(Resource).values(last_checked_at=datetime(2026, 7, 1, 12, 5, tzinfo=UTC))
    )
    db.session.commit()
    path = f"/staff/resources/{link.id}"
    page = organiser_client.get(path).text
    health_section = page[page.index('id="link-health"') :]
    assert "tag-redirected" in health_section
    assert "1 Jul 2026 13:05</time> (Europe/London)" in health_section
    assert "<dt>HTTP status</dt><dd>200</dd>" in health_section
    assert server.url("/ok") in health_section  # the final address
    assert "Permanent:" in health_section and "301 " in health_section
    assert health_section.count("1 Jul 2026 13:05</time>: redirected (200)") == 2  # the history
    assert "Use the new address" in health_section
    response = post_form(organiser_client, f"{PAGE}{link.id}/accept?back=resource", {},
                         token_from=path)  # fmt: skip
    assert response.headers["Location"] == path
    assert reload(link).url == server.url("/ok")


def test_an_unchecked_links_staff_page_says_so(make_link, organiser_client):
    link = make_link("https://www.ncsc.gov.uk/", "NCSC")
    page = organiser_client.get(f"/staff/resources/{link.id}").text
    assert "Not checked yet." in page[page.index('id="link-health"') :]


def test_a_redirect_to_another_resources_address_is_not_taken(server, make_link, organiser_client):
    make_link(server.url("/ok"), "Already there")
    link = make_link(server.url("/chain"), "CESG")
    run_now()
    response = post_form(
        organiser_client, f"{PAGE}{link.id}/accept", {}, token_from=PAGE, follow_redirects=True
    )
    assert "“Already there” already links to" in response.text
    assert reload(link).url == server.url("/chain")


def test_the_schedule_is_saved(organiser_client):
    response = post_form(
        organiser_client,
        PAGE + "schedule",
        {"enabled": "y", "interval_days": "14"},
        token_from=PAGE,
    )
    assert response.status_code == 302
    schedule = db.session.get(LinkCheckSchedule, health.SCHEDULE_ID)
    assert (schedule.enabled, schedule.interval_days) == (True, 14)
    assert schedule.next_run_at > datetime.now(UTC) + timedelta(days=13)

    post_form(organiser_client, PAGE + "schedule", {"interval_days": "14"}, token_from=PAGE)
    db.session.expire_all()
    schedule = db.session.get(LinkCheckSchedule, health.SCHEDULE_ID)
    assert (schedule.enabled, schedule.next_run_at) == (False, None)
    assert "Automatic checks are off" in organiser_client.get(PAGE).text


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        ("", "Enter the number of days between checks"),
        ("0", "Days between checks must be between 1 and 90."),
        ("1000", "Days between checks must be between 1 and 90."),
        ("weekly", "Days between checks must be a whole number"),
        ("<script>alert(1)</script>", "Days between checks must be a whole number"),
        ("٣", "Days between checks must be a whole number"),  # an Arabic-Indic three
        ("３", "Days between checks must be a whole number"),  # a full-width three
        ("1_0", "Days between checks must be a whole number"),
        ("+7", "Days between checks must be a whole number"),
    ],
)
def test_a_bad_interval_is_refused_with_the_reason(organiser_client, interval, message):
    response = post_form(
        organiser_client,
        PAGE + "schedule",
        {"enabled": "y", "interval_days": interval},
        token_from=PAGE,
    )
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert message in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert db.session.get(LinkCheckSchedule, health.SCHEDULE_ID) is None


def test_a_missing_interval_field_is_refused(organiser_client):
    response = post_form(organiser_client, PAGE + "schedule", {"enabled": "y"}, token_from=PAGE)
    assert response.status_code == 400
    assert "Enter the number of days between checks" in response.text


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_forms_without_the_right_csrf_token_are_refused(organiser_client, token):
    organiser_client.get(PAGE)
    data = {"enabled": "y", "interval_days": "5"}
    if token:
        data["csrf_token"] = token
    for path in ("schedule", "check"):
        response = organiser_client.post(PAGE + path, data=data)
        assert response.status_code == 400
        assert "The form could not be sent" in response.text
    assert db.session.get(LinkCheckSchedule, health.SCHEDULE_ID) is None
    assert runs() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("POST", "schedule"), ("POST", "check"), ("POST", "1/accept")],
)
def test_anonymous_visitors_are_sent_to_log_in(client, method, path):
    data = {"csrf_token": csrf_token(client)} if method == "POST" else None
    response = client.open(PAGE + path, method=method, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")
    assert runs() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("POST", "schedule"), ("POST", "check"), ("POST", "1/accept")],
)
def test_checkin_volunteers_are_refused(checkin_client, method, path):
    data = {"csrf_token": csrf_token(checkin_client, "/staff/")} if method == "POST" else None
    response = checkin_client.open(PAGE + path, method=method, data=data)
    assert response.status_code == 403
    assert runs() == []


def test_an_admin_may_use_the_page(admin_client):
    assert admin_client.get(PAGE).status_code == 200


def test_the_long_running_worker_checks_links_on_a_thread_of_its_own(app, server, make_link):
    link = make_link(server.url("/slow/1"))
    server.slow_seconds = 0.3
    health.queue_check()
    db.session.commit()
    the_worker, lines = worker(app)
    the_worker.links_in_background = True  # as `run` sets it

    the_worker.run_once()  # returns to the mail while the check goes on

    assert the_worker._links_thread is not None
    the_worker._links_thread.join(timeout=30)
    assert reload(link).link_state == LinkState.ok
    assert any(line.startswith("Links: Checked 1 of 1") for line in lines)


# --- settings -------------------------------------------------------------------------------------


def test_link_check_settings_come_from_the_environment():
    from chamber.config import ConfigError, from_environment

    values = from_environment(
        {
            "CHAMBER_LINKCHECK_ALLOW_PRIVATE": "true",
            "CHAMBER_LINKCHECK_TIMEOUT": "2.5",
            "CHAMBER_LINKCHECK_CONCURRENCY": "5",
        }
    )
    assert values == {
        "LINKCHECK_ALLOW_PRIVATE": True,
        "LINKCHECK_TIMEOUT": 2.5,
        "LINKCHECK_CONCURRENCY": 5,
    }
    assert from_environment({"CHAMBER_LINKCHECK_ALLOW_PRIVATE": "no"}) == {
        "LINKCHECK_ALLOW_PRIVATE": False
    }
    with pytest.raises(ConfigError, match="CHAMBER_LINKCHECK_ALLOW_PRIVATE must be true or false"):
        from_environment({"CHAMBER_LINKCHECK_ALLOW_PRIVATE": "perhaps"})
    with pytest.raises(ConfigError, match="CHAMBER_LINKCHECK_TIMEOUT must be a number"):
        from_environment({"CHAMBER_LINKCHECK_TIMEOUT": "ten"})


def test_private_addresses_are_refused_by_default(tmp_path):
    from chamber import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})
    assert app.config["LINKCHECK_ALLOW_PRIVATE"] is False
    with app.app_context():
        options = health.checker_options()
    assert options["allow_private"] is False
    assert options["user_agent"] == "ChamberLinkChecker/1.0 (+http://127.0.0.1:5000)"


@pytest.mark.parametrize(
    "setting", ["LINKCHECK_CONCURRENCY", "LINKCHECK_PER_HOST", "LINKCHECK_TIMEOUT"]
)
def test_a_link_check_setting_of_zero_is_refused(tmp_path, setting):
    from chamber import create_app
    from chamber.config import ConfigError

    with pytest.raises(ConfigError, match=f"CHAMBER_{setting} must be above 0"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), setting: 0})


# --- the demo's illustrative history --------------------------------------------------------------


@pytest.mark.slow  # loads the demo
def test_the_demo_records_an_illustrative_past_history_without_fetching(
    app, organiser_client, monkeypatch
):
    from chamber.demo import load_demo
    from chamber.resources import checker

    def no_network(*args, **kwargs):
        raise AssertionError("the demo must not fetch anything")

    monkeypatch.setattr(checker, "iter_results", no_network)
    monkeypatch.setattr(checker, "check_urls", no_network)
    load_demo(app)
    db.session.commit()
    load_demo(app)  # again: nothing more
    db.session.commit()
    now = datetime.now(UTC)
    demo_runs = runs()
    assert [run.trigger for run in demo_runs] == ["demo", "demo"]
    assert all(run.finished_at < now - timedelta(days=6) for run in demo_runs)
    assert all(run.checked == run.total == 9 for run in demo_runs)
    assert db.session.get(LinkCheckSchedule, health.SCHEDULE_ID) is None  # the worker's to make

    by_slug = {r.slug: r for r in db.session.scalars(db.select(Resource))}
    streetwise = by_slug["cyber-streetwise-cyber-essentials"]
    cesg = by_slug["cesg-cpni-incident-response"]
    assert streetwise.link_state == LinkState.unreachable
    assert cesg.link_state == LinkState.redirected and cesg.final_url == "https://www.ncsc.gov.uk/"
    assert by_slug["ncsc"].link_state == LinkState.ok
    assert len(checks_of(cesg)) == 2 and all(c.permanent_redirect for c in checks_of(cesg))

    text = organiser_client.get(PAGE).text
    assert "Last check (demo) finished" in text
    attention = text[text.index("Links that need attention") : text.index("<h2>Schedule")]
    for title in ("Cyber Essentials (Cyber Streetwise)", "Cyber incident response services",
                  "Free online information", "All you need to know", "Action Fraud"):  # fmt: skip
        assert title in attention
    assert "address not found: www.cyberstreetwise.com" in attention
    assert 'id="unchecked"' not in text


# --- a checker without internet ---------------------------------------------------------------------
# Names under .invalid never resolve (RFC 6761), here or anywhere: every check of them fails at the
# name, for real, as every check does on a machine without internet.

OFFLINE_MESSAGE = "The checker could not reach the internet; link states were kept"


def links_known_to_work(make_link, count: int = 3) -> list[Resource]:
    """Links whose last check (the demo's way of recording one) found them working."""
    links = [make_link(f"https://site-{n}.chamber-test.invalid/guide") for n in range(count)]
    health.record_finished_run(
        [checker.LinkResult(link.url, checker.OK, status_code=200, final_url=link.url) for link in links],
        at=datetime.now(UTC) - timedelta(days=2),
        trigger="schedule",
    )  # fmt: skip
    db.session.commit()
    return links


def test_offline_check_now_keeps_every_links_state_and_says_why(app, make_link, organiser_client):
    links = links_known_to_work(make_link)
    before = {link.id: len(checks_of(link)) for link in links}
    post_form(organiser_client, PAGE + "check", {}, token_from=PAGE)
    the_worker, lines = worker(app)

    the_worker.run_once()

    assert [reload(link).link_state for link in links] == [LinkState.ok] * 3
    assert {link.id: len(checks_of(link)) for link in links} == before  # no history written
    run = runs()[-1]
    assert (run.offline, run.checked, run.problems) == (True, 3, 0)
    assert run.finished_at is not None and run.claimed_by is None
    assert any(line.startswith(f"Links: {OFFLINE_MESSAGE}") for line in lines), lines
    page = organiser_client.get(PAGE).text
    assert f"{OFFLINE_MESSAGE}." in page
    assert "Last check (staff) finished" not in page
    assert "need attention" not in page.split('id="run-offline"')[1].split("</div>")[0]


def test_offline_the_command_says_so_and_lists_no_problems(app, make_link, runner):
    links = links_known_to_work(make_link, 2)
    result = runner.invoke(args=["resources", "check"])
    assert result.exit_code == 0, result.output
    assert f"{OFFLINE_MESSAGE} (2 link(s) tried in" in result.output
    assert "unreachable" not in result.output
    assert [reload(link).link_state for link in links] == [LinkState.ok] * 2


def test_a_scheduled_check_that_finds_no_network_tries_again_in_an_hour(app, make_link):
    links_known_to_work(make_link, 1)
    set_schedule(interval_days=7, next_run_at=datetime.now(UTC) - timedelta(minutes=1))
    worker(app)[0].run_once()
    assert runs()[-1].offline
    next_run = db.session.get(LinkCheckSchedule, health.SCHEDULE_ID).next_run_at
    assert timedelta(minutes=59) < next_run - datetime.now(UTC) <= timedelta(hours=1)


def test_a_dead_name_among_links_that_answer_is_recorded_as_today(server, make_link):
    """The first result to reach a server releases those held back: the failures were real."""
    dead = make_link("https://no-longer-here.chamber-test.invalid/", "Dead site")
    fine = [make_link(server.url("/ok")) for _ in range(2)]
    report = run_now()
    assert not report.offline
    assert reload(dead).link_state == LinkState.unreachable
    assert "address not found" in reload(dead).last_error
    assert [reload(link).link_state for link in fine] == [LinkState.ok] * 2
    assert len(checks_of(dead)) == 1
    [run] = runs()
    assert (run.offline, run.problems) == (False, 1)
    assert "1 unreachable" in report.summary()


def test_a_refused_connection_is_the_links_own_failure_not_the_networks(server, make_link):
    """A server that is down answers the machine (connection refused): the network is there."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused = make_link(f"http://127.0.0.1:{closed}/")
    report = run_now()
    assert not report.offline
    assert reload(refused).link_state == LinkState.unreachable


def test_network_failures_are_told_apart_from_the_links_own():
    with pytest.raises(socket.gaierror) as unresolved:
        socket.getaddrinfo("nowhere.chamber-test.invalid", 443)
    assert checker.is_network_failure(unresolved.value)
    no_route = OSError(errno.EHOSTUNREACH, "No route to host")
    wrapped = ConnectionError("All connection attempts failed")
    wrapped.__context__ = no_route
    assert checker.is_network_failure(wrapped)
    assert checker.is_network_failure(OSError(errno.ENETUNREACH, "Network is unreachable"))
    assert not checker.is_network_failure(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert not checker.is_network_failure(TimeoutError())
