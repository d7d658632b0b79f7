"""Invariant 8: staff pages refuse anyone not logged in, and each role sees only what it may.

The walks read every `/staff` rule from the app's URL map, so a route added later is covered
without anyone remembering to add it here; a rule with a URL variable this file cannot fill fails
loudly and asks for a value. Public pages: drafts stay hidden, cancelled and past events say so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for
from werkzeug.routing import AnyConverter, Rule

from chamber.auth.models import Role, StaffUser
from chamber.campaigns.models import Campaign
from chamber.core.tokens import hash_token, new_token
from chamber.directory.models import Segment
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail.models import MailKind, OutboxMessage
from chamber.members import import_jobs
from chamber.registration import services as registration
from chamber.registration.models import EventMessage, MessageAudience
from chamber.resources.models import (
    AgendaItemResource,
    EventResource,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from chamber.surveys import services as surveys
from tests.factories import acting_staff, at, make_booking
from tests.support import csrf_token, log_in

LOGIN_ENDPOINT = "auth.login"
# Signing in, its second step and a forgotten password: open to everyone, like the login page.
SIGN_IN_ENDPOINTS = {
    LOGIN_ENDPOINT,
    "auth.second_factor",
    "auth.enrol_at_sign_in",
    "auth.forgot_password",
    "auth.reset_password",
}
# What every role may reach; everything else under /staff is for organisers and admins.
EVERY_ROLE_ENDPOINTS = {
    "staff.dashboard",
    "auth.logout",
    "account.sessions_page",
    "account.end_session",
    "account.end_other_sessions",
    "account.two_factor_page",
    "account.turn_off_two_factor",
    "checkin.index",
    "checkin.door",
    "checkin.counts",
    "checkin.check_in",
    "checkin.undo",
    "checkin.scan",
    "checkin.scan_check_in",
    "checkin.scan_undo",
}
# The door pages of one event (by its id or a delegate's QR code): a volunteer's open only on the day.
ONE_EVENTS_DOOR_ENDPOINTS = {
    "checkin.door", "checkin.counts", "checkin.scan",
    "checkin.walk_in", "checkin.badges", "checkin.sign_in_sheet",
}  # fmt: skip
ADMIN_ONLY_PREFIXES = (
    "/staff/users",
    "/staff/outbox",
    "/staff/audit",
    "/staff/privacy",
)
# Preferred members of `any(...)` URL variables (otherwise the first in alphabetical order).
FIXED_URL_VALUES = {"action": "publish", "direction": "earlier"}


# --- the walk ------------------------------------------------------------------------------------


def staff_rules(app) -> list[Rule]:
    rules = [
        rule for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/staff") and rule.endpoint not in SIGN_IN_ENDPOINTS
    ]  # fmt: skip
    assert len(rules) >= 10, "the walk found suspiciously few staff routes"
    # Logging out ends the session, so it goes last in any walk with a logged-in client.
    return sorted(rules, key=lambda rule: (rule.endpoint == "auth.logout", rule.rule))


def methods_of(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def role_may(role: Role, rule: Rule) -> bool:
    if rule.endpoint in EVERY_ROLE_ENDPOINTS:
        return True
    if role == Role.admin:
        return True
    if role == Role.organiser:
        return not rule.rule.startswith(ADMIN_ONLY_PREFIXES)
    return False


def url_objects(make_event, make_item, make_speaker) -> dict[str, object]:
    """Real objects to put in URLs: a draft event with two agenda items and a booked delegate (and
    so a business and a contact in the directory), a speaker, a staff user, an email waiting in
    the outbox."""
    event = make_event(status=EventStatus.draft)
    make_item(event, minutes_in=0, title="Welcome")
    second = make_item(event, minutes_in=30, title="Talk")  # second, so it can move earlier
    speaker = make_speaker()
    some_hash = db.session.scalars(db.select(StaffUser.password_hash)).first()
    user = StaffUser(
        email=f"colleague-{event.id}@example.com",
        name="Cole League",
        role=Role.organiser,
        password_hash=some_hash or "scrypt:unused",
    )
    message = OutboxMessage(
        key=f"walk:{event.id}",
        kind=MailKind.transactional,
        to_address="a@example.com",
        subject="Your place",
        text_body="Hello",
        html_body="<p>Hello</p>",
        message_id=f"<walk-{event.id}@example.com>",
    )
    person = registration.DelegateDetails("Dee Legate", f"delegate-{event.id}@example.com")
    booked = make_booking(event, person, business="Octree Ltd", commit=False)  # the seat lock first
    db.session.add_all([user, message])
    qr_token = new_token()  # the secret a confirmation email's check-in QR code carries
    booked.confirmed[0].checkin_token_hash = hash_token(qr_token)
    survey = surveys.create_survey(
        event, by=acting_staff()
    )  # a draft follow-up survey with the template's questions
    resource = Resource(  # a published link, as the library and link-health pages hold
        slug=f"walk-{event.id}", title="NCSC", url="https://www.ncsc.gov.uk/", kind=ResourceKind.link,
        status=ResourceStatus.published,
    )  # fmt: skip
    db.session.add(resource)
    segment = Segment(name=f"Members {event.id}", filters={"membership": "member"})
    db.session.add(segment)
    note = EventMessage(  # a draft message to the event's delegates
        event_id=event.id, audience=MessageAudience.confirmed, subject="Parking",
        body="Park at the back.", written_by_email="walk@example.com",
    )  # fmt: skip
    db.session.add(note)
    db.session.flush()
    campaign = Campaign(subject="Book your places", segment_id=segment.id, event_id=event.id)
    db.session.add(campaign)
    db.session.flush()
    db.session.add_all([  # on the event and on a talk, so that moving and removing it are walked
        EventResource(event_id=event.id, resource_id=resource.id),
        AgendaItemResource(agenda_item_id=second.id, resource_id=resource.id),
    ])  # fmt: skip
    upload = import_jobs.create_job(  # a spreadsheet uploaded for the directory, columns not chosen
        "members.csv", b"Company,Email\r\nOctree Ltd,tony@octree.example\r\n", by=user
    )
    db.session.commit()
    business = booked.booking.organisation  # made by the booking, with its contact
    return {
        "job_id": upload.id,
        "organisation_id": business.id,
        "contact_id": booked.confirmed[0].contact_id,
        "event_id": event.id,
        "item_id": second.id,
        "speaker_id": speaker.id,
        "user_id": user.id,
        "message_id": message.id,
        "delegate_id": booked.confirmed[0].id,
        "token": qr_token,
        "survey_id": survey.id,
        "question_id": survey.questions[-1].id,
        "resource_id": resource.id,
        "segment_id": segment.id,
        "event_message_id": note.id,
        "reason": "no_basis",
        "campaign_id": campaign.id,
    }


def url_for_rule(app, rule: Rule, objects: dict[str, object]) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters.get(name)
        if name in objects:
            values[name] = objects[name]
        elif isinstance(converter, AnyConverter):
            preferred = FIXED_URL_VALUES.get(name)
            values[name] = preferred if preferred in converter.items else sorted(converter.items)[0]
        else:
            pytest.fail(
                f"{rule.rule}: no value for <{name}>; add one to url_objects or FIXED_URL_VALUES"
            )
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def request(client, method: str, path: str, token: str):
    if method == "POST":
        return client.post(path, data={"csrf_token": token})
    return client.open(path, method=method)


def committed_rows() -> dict[str, list[tuple]]:
    """Every committed row of every table, read on a connection of its own."""
    with db.engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(table.select())), key=repr)
            for table in db.metadata.sorted_tables
        }


def walk(
    app,
    client,
    token: str,
    objects,
    check: Callable[[Rule, str, str, object], str | None],
    skip: Callable[[Rule, str], bool] = lambda rule, method: False,
) -> list[str]:
    problems = []
    for rule in staff_rules(app):
        for method in methods_of(rule):
            if skip(rule, method):
                continue
            path = url_for_rule(app, rule, objects() if callable(objects) else objects)
            response = request(client, method, path, token)
            problem = check(rule, method, path, response)
            if problem:
                problems.append(f"{method} {path}: {problem}")
    return problems


def login_redirect_problem(path: str, response) -> str | None:
    if response.status_code != 302:
        return f"expected a redirect to the login page, got {response.status_code}"
    location = urlsplit(response.headers["Location"])
    if location.path != "/staff/login":
        return f"redirected to {response.headers['Location']}, not the login page"
    if parse_qs(location.query).get("next") != [path]:
        return f"the login page is not told to come back to {path}: {response.headers['Location']}"
    return None


# --- anonymous -----------------------------------------------------------------------------------


def test_every_staff_url_sends_an_anonymous_visitor_to_log_in_and_changes_nothing(
    app, client, make_event, make_item, make_speaker, make_staff
):
    make_staff(Role.admin)
    objects = url_objects(make_event, make_item, make_speaker)
    token = csrf_token(client)  # a valid token, so a refusal is about who asks, not the form
    before = committed_rows()

    problems = walk(
        app,
        client,
        token,
        objects,
        lambda rule, method, path, response: login_redirect_problem(path, response),
    )

    assert problems == []
    assert committed_rows() == before


def test_an_anonymous_publish_leaves_the_event_a_draft(client, make_event):
    event = make_event(status=EventStatus.draft)
    response = client.post(
        f"/staff/events/{event.id}/publish", data={"csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == EventStatus.draft
    assert client.get(f"/events/{event.slug}").status_code == 404


def test_the_login_page_is_the_one_staff_page_open_to_everyone(client):
    response = client.get("/staff/login")
    assert response.status_code == 200
    assert "Staff login" in response.text


# --- check-in volunteers --------------------------------------------------------------------------


def test_a_checkin_volunteer_is_refused_everywhere_but_the_dashboard_and_the_door(
    app, checkin_client, make_event, make_item, make_speaker
):
    objects = url_objects(make_event, make_item, make_speaker)
    token = csrf_token(checkin_client, "/staff/")
    before = committed_rows()

    def check(rule, method, path, response):
        if rule.endpoint in ONE_EVENTS_DOOR_ENDPOINTS:
            # The walk's event is a draft: a volunteer's door opens only for today's published
            # events (tests/test_checkin_window.py covers today's), so this is a clear refusal.
            if response.status_code != 403 or "Check-in is not open" not in response.text:
                return f"a draft's door should be refused with a reason, got {response.status_code}"
            return None
        if role_may(Role.checkin, rule):
            return (
                None
                if response.status_code == 200
                else f"should be allowed, got {response.status_code}"
            )
        if response.status_code != 403:
            return f"expected 403, got {response.status_code}"
        if "You cannot see this page" not in response.text:
            return "the refusal page does not say why"
        return None

    problems = walk(
        app,
        checkin_client,
        token,
        objects,
        check,
        # Checking people in changes rows by design (tests/test_checkin.py covers it); the walk
        # shows the volunteer may open the door pages and that every refusal changes nothing.
        skip=lambda rule, method: (
            rule.endpoint == "auth.logout"
            or (method == "POST" and rule.endpoint.startswith(("checkin.", "account.")))
        ),
    )

    assert problems == []
    assert committed_rows() == before


def test_a_checkin_volunteer_sees_the_door_dashboard_and_can_log_out(checkin_client):
    dashboard = checkin_client.get("/staff/")
    assert dashboard.status_code == 200
    assert "checking delegates in at the door" in dashboard.text
    assert "Create an event" not in dashboard.text
    assert "Staff users" not in dashboard.text

    response = checkin_client.post(
        "/staff/logout", data={"csrf_token": csrf_token(checkin_client, "/staff/")}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login"


def test_a_checkin_volunteer_cannot_publish_an_event(checkin_client, make_event):
    event = make_event(status=EventStatus.draft)
    response = checkin_client.post(
        f"/staff/events/{event.id}/publish",
        data={"csrf_token": csrf_token(checkin_client, "/staff/")},
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == EventStatus.draft


# --- organisers and admins ------------------------------------------------------------------------


def allowed_walk(app, client, role: Role, make_event, make_item, make_speaker) -> list[str]:
    token = csrf_token(client, "/staff/")

    def check(rule, method, path, response):
        if not role_may(role, rule):
            return (
                None if response.status_code == 403 else f"expected 403, got {response.status_code}"
            )
        if response.status_code in (403, 404) or response.status_code >= 500:
            return f"should be reachable, got {response.status_code}"
        if response.status_code == 302 and response.headers["Location"].startswith(
            "/staff/login?next="
        ):
            return "sent back to log in"
        return None

    # Fresh objects for every request: an allowed POST may publish, move or delete what it names.
    return walk(app, client, token, lambda: url_objects(make_event, make_item, make_speaker), check)


@pytest.mark.slow  # walks every staff route
def test_an_admin_reaches_every_staff_url(app, admin_client, make_event, make_item, make_speaker):
    assert allowed_walk(app, admin_client, Role.admin, make_event, make_item, make_speaker) == []


@pytest.mark.slow  # walks every staff route
def test_an_organiser_reaches_events_and_speakers_but_not_staff_accounts(
    app, organiser_client, make_event, make_item, make_speaker
):
    assert (
        allowed_walk(app, organiser_client, Role.organiser, make_event, make_item, make_speaker)
        == []
    )


def test_an_organiser_cannot_create_a_staff_user_or_change_a_password(organiser_client, admin):
    token = csrf_token(organiser_client, "/staff/")
    before = committed_rows()
    created = organiser_client.post(
        "/staff/users/new",
        data={
            "csrf_token": token,
            "name": "Mallory",
            "email": "mallory@example.com",
            "role": "admin",
            "password": "a long enough password",
        },
    )
    password = organiser_client.post(
        f"/staff/users/{admin.id}/password",
        data={
            "csrf_token": token,
            "password": "taken over the account",
            "confirm": "taken over the account",
        },
    )
    promoted = organiser_client.post(
        f"/staff/users/{admin.id}",
        data={
            "csrf_token": token,
            "name": "Ada Admin",
            "role": "organiser",
            "active": "",
        },
    )
    assert (created.status_code, password.status_code, promoted.status_code) == (403, 403, 403)
    assert committed_rows() == before


def test_the_staff_menu_shows_each_role_only_what_it_may_open(admin_client, organiser_client):
    admin_page = admin_client.get("/staff/").text
    organiser_page = organiser_client.get("/staff/").text
    assert 'href="/staff/users/"' in admin_page
    assert 'href="/staff/users/"' not in organiser_page
    assert 'href="/staff/events/"' in organiser_page


def test_a_deactivated_user_loses_access_at_once(app, admin_client, make_staff):
    colleague = make_staff(Role.organiser, email="leaver@example.com")
    colleague_client = app.test_client()
    log_in(colleague_client, colleague)
    assert colleague_client.get("/staff/events/").status_code == 200

    response = admin_client.post(
        f"/staff/users/{colleague.id}",
        data={
            "csrf_token": csrf_token(admin_client, f"/staff/users/{colleague.id}"),
            "name": colleague.name,
            "role": "organiser",  # "active" left unticked
        },
    )
    assert response.status_code == 302
    refused = colleague_client.get("/staff/events/")
    assert refused.status_code == 302
    assert refused.headers["Location"].startswith("/staff/login")


# --- public pages --------------------------------------------------------------------------------


def test_a_draft_event_is_not_found_by_the_public(client, make_event):
    event = make_event(status=EventStatus.draft, title="Secret plans")
    response = client.get(f"/events/{event.slug}")
    assert response.status_code == 404
    assert "Secret plans" not in response.text
    assert "Secret plans" not in client.get("/").text


def test_a_draft_event_is_not_shown_to_a_checkin_volunteer(checkin_client, make_event):
    event = make_event(status=EventStatus.draft)
    assert checkin_client.get(f"/events/{event.slug}").status_code == 404


def test_an_organiser_previews_a_draft_event_with_a_draft_banner(organiser_client, make_event):
    event = make_event(status=EventStatus.draft, title="Coming soon")
    response = organiser_client.get(f"/events/{event.slug}")
    assert response.status_code == 200
    assert "Coming soon" in response.text
    assert "Draft." in response.text
    assert "Only staff can see this page" in response.text


def test_a_published_event_has_no_draft_banner(client, make_event):
    event = make_event(title="Open to all")
    response = client.get(f"/events/{event.slug}")
    assert response.status_code == 200
    assert "Open to all" in response.text
    assert "Draft." not in response.text
    assert "Manage this event" not in response.text


def test_a_cancelled_event_says_it_will_not_take_place(client, make_event):
    event = make_event(status=EventStatus.cancelled, title="Called off")
    response = client.get(f"/events/{event.slug}")
    assert response.status_code == 200
    assert "This event has been cancelled" in response.text
    assert "Cancelled" in client.get("/").text


def test_a_past_event_says_it_has_taken_place(client, make_event):
    event = make_event(starts_at=at(-30), title="Last year's seminar")
    response = client.get(f"/events/{event.slug}")
    assert response.status_code == 200
    assert "This event has taken place" in response.text
    assert "Last year's seminar" not in client.get("/").text.replace("&#39;", "'")


def test_an_unknown_event_is_a_plain_404(client):
    response = client.get("/events/no-such-event")
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_past_events_are_paginated_newest_first_without_drafts(client, make_event):
    for days_ago in range(
        1, 22
    ):  # 21 published past events, newest first: 1 day ago ... 21 days ago
        make_event(
            starts_at=at(-days_ago) - timedelta(hours=6), title=f"Past seminar {days_ago:02d}"
        )
    make_event(starts_at=at(-3), title="Past draft", status=EventStatus.draft)
    make_event(starts_at=at(10), title="Future seminar")

    first = client.get("/events/past")
    assert first.status_code == 200
    assert first.text.count('class="card"') == 20
    assert "Page 1 of 2" in first.text
    assert 'href="/events/past?page=2"' in first.text
    assert "Past seminar 01" in first.text and "Past seminar 20" in first.text
    assert "Past seminar 21" not in first.text
    assert "Past draft" not in first.text and "Future seminar" not in first.text

    second = client.get("/events/past?page=2")
    assert second.status_code == 200
    assert second.text.count('class="card"') == 1
    assert "Past seminar 21" in second.text
    assert 'href="/events/past?page=1"' in second.text


@pytest.mark.parametrize("page", ["abc", "-1", "0", "99999", "1e9", "<script>"])
def test_a_strange_page_number_on_past_events_is_not_an_error(client, make_event, page):
    make_event(starts_at=at(-3))
    response = client.get("/events/past", query_string={"page": page})
    assert response.status_code == 200
    assert "<script>" not in response.text
