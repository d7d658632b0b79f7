"""Invariants 8 and 9: bad input never gives a 500 and never stores half a change; the form comes
back (400) with an error summary that names the problem; hostile text is either refused with a
reason or stored exactly as typed and always shown escaped; forged requests change nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from markupsafe import escape
from werkzeug.routing import PathConverter, UnicodeConverter

from chamber.auth.models import Role, StaffUser
from chamber.events.models import AgendaItem, AgendaKind, Event, EventStatus, Speaker
from chamber.extensions import db
from tests.factories import PASSWORD
from tests.support import csrf_token, log_in, post_form
from tests.test_security_headers import live_markup

SUMMARY = "There is a problem"
EVENT_START = datetime(2030, 7, 4, 7, 0, tzinfo=UTC)  # 08:00 to 12:00 in London (BST)

EVENT_FORM = {
    "title": "Cybercrime: protect your business",
    "slug": "",
    "summary": "A morning seminar.",
    "description": "Learn **how** to stay safe.",
    "venue_name": "Holiday Inn Stevenage",
    "venue_address": "St George's Way",
    "venue_town": "Stevenage",
    "venue_postcode": "SG1 1HS",
    "venue_country": "GB",
    "timezone": "Europe/London",
    "starts_at": "2030-07-04T08:00",
    "ends_at": "2030-07-04T12:00",
    "capacity": "120",
    "business_limit": "3",
    "registration_opens_at": "",
    "registration_closes_at": "2030-07-03T17:00",
    "host": "Hertfordshire Chamber of Commerce",
    "supporters": "Police and Crime Commissioner's Community Fund",
}
ITEM_FORM = {
    "title": "Keeping your business safe",
    "kind": "talk",
    "starts_at": "2030-07-04T09:00",
    "ends_at": "2030-07-04T09:30",
    "description": "",
    "speakers-0": "0", "speakers-1": "0", "speakers-2": "0", "speakers-3": "0",
}  # fmt: skip
SPEAKER_FORM = {
    "name": "Julie Lloyd",
    "job_title": "Cyber Protect Officer",
    "organisation": "Eastern Region Special Operations Unit",
    "email": "",
    "bio": "",
}
NEW_USER_FORM = {
    "name": "Pat Person",
    "email": "pat@example.com",
    "role": "organiser",
    "password": "a long enough password",
}
EDIT_USER_FORM = {"name": "Olu Organiser", "role": "organiser", "active": "y"}
PASSWORD_FORM = {"password": "a long enough password", "confirm": "a long enough password"}

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SQL = "'; DROP TABLE event; --"
UNICODE = "Zoë O'Brien 李"
EMOJI = "Cyber safety 🔐🎉"
HOSTILE_TEXT = [SCRIPT, IMG, SQL, UNICODE, EMOJI]
NASTY_MARKDOWN = "\n\n".join([
    SCRIPT,
    IMG,
    "[x](javascript:alert(1))",
    "[y](JaVaScRiPt:alert(1))",
    "[z](javascript&#58;alert(1))",
    "[w](vbscript:msgbox(1))",
    "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)" onclick="alert(1)">click</a>',
    '<iframe src="https://evil.example"></iframe>',
    "![pic](javascript:alert(1))",
    "[a safe link](https://www.ncsc.gov.uk/)",
])  # fmt: skip


# --- what a user sees ----------------------------------------------------------------------------


def committed_rows() -> dict[str, list[tuple]]:
    """Every committed row of every table, read on a connection of its own."""
    with db.engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(table.select())), key=repr)
            for table in db.metadata.sorted_tables
        }


def explanation_problem(response, message: str | None, field_id: str | None) -> str | None:
    """Why a refusal falls short: it must be a 400 with the summary, the message, and the message
    linked from the summary and repeated beside its field. `message` None: any message will do
    (for values only a forged request can send)."""
    if response.status_code != 400:
        return f"status {response.status_code}, not 400"
    if SUMMARY not in response.text:
        return "no error summary"
    if message and str(escape(message)) not in response.text:
        return f"{message!r} is not on the page"
    if field_id and f'href="#{field_id}"' not in response.text:
        return f"the summary does not link to #{field_id}"
    if field_id and f'id="{field_id}-error"' not in response.text:
        return f"no message beside #{field_id}"
    return None


def assert_explained(response, message: str | None, field_id: str | None):
    problem = explanation_problem(response, message, field_id)
    assert problem is None, problem


def assert_no_raw_markup(html: str):
    """Nothing a user typed became live HTML: no script, image, frame, handler or script URL."""
    problems = live_markup(html)
    assert problems == [], problems


# --- the forms and a valid submission for each ----------------------------------------------------


@dataclass
class Form:
    path: str
    valid: dict[str, str]
    token_from: str | None = None


@pytest.fixture
def forms(admin, make_event, make_item, make_speaker) -> dict[str, Form]:
    # A colleague to edit, sharing the admin's hash: one scrypt hash less per test.
    organiser = StaffUser(
        email="org@example.com",
        name="Olu Organiser",
        role=Role.organiser,
        password_hash=admin.password_hash,
    )
    db.session.add(organiser)
    db.session.commit()
    event = make_event(starts_at=EVENT_START, slug="cyber-2030", status=EventStatus.draft)
    make_event(slug="taken-slug", title="Another event")
    item = make_item(event, minutes_in=60, title="Existing talk")
    speaker = make_speaker()
    return {
        "login": Form("/staff/login", {"email": "admin@example.com", "password": PASSWORD}),
        "user-create": Form("/staff/users/new", NEW_USER_FORM),
        "user-edit": Form(f"/staff/users/{organiser.id}", EDIT_USER_FORM),
        "user-password": Form(
            f"/staff/users/{organiser.id}/password",
            PASSWORD_FORM,
            token_from=f"/staff/users/{organiser.id}",
        ),
        "event-create": Form("/staff/events/new", EVENT_FORM),
        "event-edit": Form(f"/staff/events/{event.id}/edit", {**EVENT_FORM, "slug": "cyber-2030"}),
        "item-add": Form(f"/staff/events/{event.id}/agenda/new", ITEM_FORM),
        "item-edit": Form(f"/staff/events/{event.id}/agenda/{item.id}", ITEM_FORM),
        "speaker-add": Form("/staff/speakers/new", SPEAKER_FORM),
        "speaker-edit": Form(f"/staff/speakers/{speaker.id}", SPEAKER_FORM),
    }


def submit(app, admin_client, form: Form, changes: dict[str, str]):
    client = app.test_client() if form.path == "/staff/login" else admin_client
    return post_form(client, form.path, {**form.valid, **changes}, token_from=form.token_from)


def test_each_forms_valid_submission_is_accepted(app, admin_client, forms):
    # The baseline every refusal below changes one thing in: without it a refusal proves nothing.
    refused = {
        name: response.status_code
        for name, form in forms.items()
        if (response := submit(app, admin_client, form, {})).status_code != 302
    }
    assert refused == {}


# --- refusals: (form, changes, message, field the message belongs to) -----------------------------

TOO_LONG = "must be {} characters or fewer."
SLUG_RULE = "Web address can only use lower-case letters, numbers and single hyphens"
NOT_ALLOWED = "contains a character that is not allowed."
EMAIL_FORMAT = "Enter an email address in the right format, like name@example.com."
PASSWORD_LENGTH = "Password must be between 12 and 200 characters."


EVENT_CASES = [
    # missing
    ({"title": ""}, "Enter the event's title.", "title"),
    ({"title": "   "}, "Enter the event's title.", "title"),
    ({"venue_name": ""}, "Enter the venue's name.", "venue_name"),
    ({"starts_at": ""}, "Enter when the event starts.", "starts_at"),
    ({"ends_at": ""}, "Enter when the event ends.", "ends_at"),
    ({"capacity": ""}, "Enter how many delegates the venue can take.", "capacity"),
    ({"business_limit": ""}, "Enter how many delegates one business may book.", "business_limit"),
    # too long
    ({"title": "t" * 201}, "Title " + TOO_LONG.format(200), "title"),
    ({"slug": "s" * 81}, "Web address " + TOO_LONG.format(80), "slug"),
    ({"summary": "s" * 501}, "Summary " + TOO_LONG.format(500), "summary"),
    ({"description": "d" * 20_001}, "Description " + TOO_LONG.format(20000), "description"),
    ({"venue_name": "v" * 201}, "Venue " + TOO_LONG.format(200), "venue_name"),
    ({"venue_address": "a" * 501}, "Street address " + TOO_LONG.format(500), "venue_address"),
    ({"venue_town": "t" * 121}, "Town or city " + TOO_LONG.format(120), "venue_town"),
    ({"venue_postcode": "p" * 21}, "Postcode " + TOO_LONG.format(20), "venue_postcode"),
    ({"host": "h" * 201}, "Host " + TOO_LONG.format(200), "host"),
    ({"supporters": "s" * 1001}, "Supporters " + TOO_LONG.format(1000), "supporters"),
    # malformed numbers
    ({"capacity": "eighty"}, "Capacity must be a whole number, like 80.", "capacity"),
    ({"capacity": "12.5"}, "Capacity must be a whole number, like 80.", "capacity"),
    ({"capacity": "1e3"}, "Capacity must be a whole number, like 80.", "capacity"),
    ({"capacity": "-1"}, "Capacity must be between 0 and 100000.", "capacity"),
    ({"capacity": "9" * 40}, "Capacity must be between 0 and 100000.", "capacity"),
    (
        {"business_limit": "0"},
        "Delegates per business must be between 1 and 100.",
        "business_limit",
    ),
    # malformed and impossible times
    ({"starts_at": "2026-13-45T25:00"}, "Starts must be a real date and time", "starts_at"),
    ({"ends_at": "next Tuesday"}, "Ends must be a real date and time", "ends_at"),
    (
        {"registration_opens_at": "2030-02-30T09:00"},
        "Registration opens must be a real date and time",
        "registration_opens_at",
    ),
    ({"ends_at": "2030-07-04T07:00"}, "The event must end after it starts.", "ends_at"),
    ({"ends_at": "2030-07-04T08:00"}, "The event must end after it starts.", "ends_at"),
    (
        {"registration_closes_at": "2030-07-04T12:30"},
        "Registration must close before the event ends.",
        "registration_closes_at",
    ),
    (
        {"registration_opens_at": "2030-07-01T09:00", "registration_closes_at": "2030-06-01T09:00"},
        "Registration must close after it opens.",
        "registration_closes_at",
    ),
    (
        {
            "starts_at": "2027-03-28T01:30",
            "ends_at": "2027-03-28T04:00",
            "registration_closes_at": "",
        },
        "01:30 on 28 March 2027 does not exist in Europe/London",
        "starts_at",
    ),
    ({"timezone": "Mars/Olympus_Mons"}, None, "timezone"),
    ({"timezone": "../../../etc/passwd"}, None, "timezone"),
    ({"timezone": "UTC\x00"}, None, "timezone"),
    # web addresses
    ({"slug": "cyber seminar"}, SLUG_RULE, "slug"),
    ({"slug": "Cyber-2030"}, SLUG_RULE, "slug"),
    ({"slug": "café-2030"}, SLUG_RULE, "slug"),
    ({"slug": "李"}, SLUG_RULE, "slug"),
    ({"slug": "-cyber"}, SLUG_RULE, "slug"),
    ({"slug": "cyber--2030"}, SLUG_RULE, "slug"),
    ({"slug": "cyber_2030"}, SLUG_RULE, "slug"),
    ({"slug": "../admin"}, SLUG_RULE, "slug"),
    ({"slug": "taken-slug"}, "Another event already uses this web address.", "slug"),
    # characters no person types
    ({"title": "Cyber\x00crime"}, "Title " + NOT_ALLOWED, "title"),
    ({"description": "Safe\x00"}, "Description " + NOT_ALLOWED, "description"),
    ({"venue_name": "Holiday Inn\x1b[31m"}, "Venue " + NOT_ALLOWED, "venue_name"),
]

ITEM_CASES = [
    ({"title": ""}, "Enter the item's title.", "title"),
    ({"starts_at": ""}, "Enter when the item starts.", "starts_at"),
    ({"ends_at": ""}, "Enter when the item ends.", "ends_at"),
    ({"title": "t" * 201}, "Title " + TOO_LONG.format(200), "title"),
    ({"description": "d" * 5001}, "Description " + TOO_LONG.format(5000), "description"),
    ({"starts_at": "2026-13-45T25:00"}, "Starts must be a real date and time", "starts_at"),
    ({"ends_at": "09:30"}, "Ends must be a real date and time", "ends_at"),
    ({"ends_at": "2030-07-04T08:59"}, "The item must end after it starts.", "ends_at"),
    (
        {"starts_at": "2030-07-04T07:00", "ends_at": "2030-07-04T07:30"},
        "The agenda item must be within the event's hours (08:00 to 12:00).",
        None,
    ),
    (
        {"starts_at": "2030-07-04T11:45", "ends_at": "2030-07-04T12:15"},
        "The agenda item must be within the event's hours (08:00 to 12:00).",
        None,
    ),
    (
        {"starts_at": "2030-07-05T09:00", "ends_at": "2030-07-05T09:30"},
        "The agenda item must be within the event's hours (08:00 to 12:00).",
        None,
    ),
    ({"kind": "keynote"}, None, "kind"),
    ({"speakers-0": "999999"}, None, "speakers-0"),
    ({"speakers-1": "-1"}, None, "speakers-1"),
    ({"title": "Talk\x00"}, "Title " + NOT_ALLOWED, "title"),
]

SPEAKER_CASES = [
    ({"name": ""}, "Enter the speaker's name.", "name"),
    ({"name": "n" * 121}, "Name " + TOO_LONG.format(120), "name"),
    ({"job_title": "j" * 201}, "Job title " + TOO_LONG.format(200), "job_title"),
    ({"organisation": "o" * 201}, "Organisation " + TOO_LONG.format(200), "organisation"),
    ({"bio": "b" * 5001}, "Biography " + TOO_LONG.format(5000), "bio"),
    ({"email": "not-an-email"}, EMAIL_FORMAT, "email"),
    ({"email": "julie@"}, EMAIL_FORMAT, "email"),
    ({"email": "julie@@example.com"}, EMAIL_FORMAT, "email"),
    ({"email": "julie@example.com<script>"}, EMAIL_FORMAT, "email"),
    (
        {"email": "j" * 250 + "@example.com"},
        "Email address must be 254 characters or fewer.",
        "email",
    ),
    ({"name": "Julie\x00Lloyd"}, "Name " + NOT_ALLOWED, "name"),
]

USER_CREATE_CASES = [
    ({"name": ""}, "Enter the person's name.", "name"),
    ({"email": ""}, "Enter an email address.", "email"),
    ({"password": ""}, "Enter a password.", "password"),
    ({"name": "n" * 121}, "Full name " + TOO_LONG.format(120), "name"),
    ({"email": "pat.example.com"}, EMAIL_FORMAT, "email"),
    (
        {"email": "p" * 250 + "@example.com"},
        "Email address must be 254 characters or fewer.",
        "email",
    ),
    ({"password": "short"}, PASSWORD_LENGTH, "password"),
    ({"password": "p" * 201}, PASSWORD_LENGTH, "password"),
    ({"role": "superuser"}, None, "role"),
    ({"name": "Pat\x00Person"}, "Full name " + NOT_ALLOWED, "name"),
    (
        {"email": "admin@example.com"},
        "A staff user with that email address already exists.",
        "email",
    ),
]

USER_EDIT_CASES = [
    ({"name": ""}, "Enter the person's name.", "name"),
    ({"name": "n" * 121}, "Full name " + TOO_LONG.format(120), "name"),
    ({"role": "root"}, None, "role"),
    ({"name": "Olu\x00"}, "Full name " + NOT_ALLOWED, "name"),
]

PASSWORD_CASES = [
    ({"password": "", "confirm": ""}, "Enter a password.", "password"),
    ({"confirm": ""}, "Confirm the password.", "confirm"),
    ({"password": "short", "confirm": "short"}, PASSWORD_LENGTH, "password"),
    ({"password": "p" * 201, "confirm": "p" * 201}, PASSWORD_LENGTH, "password"),
    ({"confirm": "a long enough passworD"}, "The passwords do not match.", "confirm"),
]

LOGIN_CASES = [
    ({"email": ""}, "Enter your email address.", "email"),
    ({"password": ""}, "Enter your password.", "password"),
    ({"email": "e" * 250 + "@example.com"}, "Email address " + TOO_LONG.format(254), "email"),
    ({"password": "p" * 201}, "Password " + TOO_LONG.format(200), "password"),
    ({"email": "admin@example.com\x00"}, "Email address " + NOT_ALLOWED, "email"),
]

REFUSALS = {
    "event-create": EVENT_CASES,
    "event-edit": EVENT_CASES,
    "item-add": ITEM_CASES,
    "item-edit": ITEM_CASES,
    "speaker-add": SPEAKER_CASES,
    "speaker-edit": SPEAKER_CASES,
    "user-create": USER_CREATE_CASES,
    "user-edit": USER_EDIT_CASES,
    "user-password": PASSWORD_CASES,
    "login": LOGIN_CASES,
}


def shorten(changes: dict[str, str]) -> str:
    text = repr(changes)
    return text if len(text) < 90 else text[:80] + "…"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if cases is EVENT_CASES else name  # seconds each
        for name, cases in REFUSALS.items()
    ],
)
def test_bad_input_comes_back_with_the_reason_and_changes_nothing(app, admin_client, forms, name):
    # One test per form (each case costs a request, not a fresh app and two password hashes);
    # every case is checked and every failing case is reported.
    problems = []
    for changes, message, field_id in REFUSALS[name]:
        before = committed_rows()
        try:
            response = submit(app, admin_client, forms[name], changes)
        except Exception as error:  # a 500: the test app re-raises it
            problems.append(f"{shorten(changes)}: raised {error!r}")
            continue
        problem = explanation_problem(response, message, field_id)
        problem = problem or (live_markup(response.text) or None)
        problem = problem or (None if committed_rows() == before else "rows changed")
        if problem:
            problems.append(f"{shorten(changes)}: {problem}")
    assert problems == []


def test_a_forged_speaker_choice_is_refused_with_a_reason(app, admin_client, forms):
    problems = []
    for value in ["abc", "1 OR 1=1", "1.5", "0x10", "1e3", "999999", "99999999999999999999999"]:
        before = committed_rows()
        response = submit(app, admin_client, forms["item-add"], {"speakers-0": value})
        problem = explanation_problem(response, None, "speakers-0")
        problem = problem or (None if committed_rows() == before else "rows changed")
        if problem:
            problems.append(f"{value!r}: {problem}")
    assert problems == []


def test_a_speaker_deleted_while_the_form_was_open_is_refused(
    app, admin_client, forms, make_speaker
):
    gone = make_speaker("Gone Speaker")
    gone_id = gone.id
    db.session.delete(gone)
    db.session.commit()
    before = committed_rows()
    response = submit(app, admin_client, forms["item-add"], {"speakers-0": str(gone_id)})
    assert response.status_code == 400
    assert SUMMARY in response.text
    assert committed_rows() == before


def test_extra_speaker_slots_beyond_the_form_are_ignored_not_an_error(
    app, admin_client, forms, make_speaker
):
    speaker = make_speaker("Only Speaker")
    response = submit(
        app, admin_client, forms["item-add"], {"speakers-0": str(speaker.id), "speakers-9": "5"}
    )
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        item = db.session.scalars(
            db.select(AgendaItem).where(AgendaItem.title == ITEM_FORM["title"])
        ).one()
        assert [s.name for s in item.speakers] == ["Only Speaker"]


def test_an_agenda_time_skipped_by_the_clocks_going_forward_is_refused(admin_client, make_event):
    # 00:30 GMT to 05:00 BST on 28 March 2027, the night the clocks go forward.
    event = make_event(
        starts_at=datetime(2027, 3, 28, 0, 30, tzinfo=UTC),
        ends_at=datetime(2027, 3, 28, 4, 0, tzinfo=UTC),
    )
    before = committed_rows()
    response = post_form(
        admin_client,
        f"/staff/events/{event.id}/agenda/new",
        {**ITEM_FORM, "starts_at": "2027-03-28T01:30", "ends_at": "2027-03-28T03:15"},
    )
    assert_explained(
        response, "01:30 on 28 March 2027 does not exist in Europe/London", "starts_at"
    )
    assert committed_rows() == before


def test_a_time_that_happens_twice_when_the_clocks_go_back_means_the_first(admin_client):
    response = post_form(
        admin_client,
        "/staff/events/new",
        {
            **EVENT_FORM,
            "starts_at": "2030-10-27T01:30",
            "ends_at": "2030-10-27T04:00",
            "registration_closes_at": "",
        },
    )
    assert response.status_code == 302
    event = db.session.scalars(db.select(Event)).one()
    assert event.starts_at == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)  # 01:30 BST, not GMT


def test_moving_an_event_away_from_its_agenda_is_refused_and_changes_nothing(
    app, admin_client, forms
):
    before = committed_rows()
    response = submit(
        app,
        admin_client,
        forms["event-edit"],
        {"starts_at": "2030-07-04T10:00", "ends_at": "2030-07-04T12:00"},
    )
    assert response.status_code == 400
    assert SUMMARY in response.text
    assert "Existing talk" in response.text
    assert committed_rows() == before


def test_a_body_too_large_to_accept_is_refused_plainly(admin_client):
    before = committed_rows()
    response = post_form(
        admin_client,
        "/staff/events/new",
        {**EVENT_FORM, "description": "x" * 3_000_000},
        token_from="/staff/events/new",
    )
    assert response.status_code == 413
    assert "That was too much to send" in response.text
    assert committed_rows() == before


# --- hostile text is stored exactly and shown escaped ---------------------------------------------


def pages_showing(client, event: Event) -> dict[str, str]:
    paths = [
        "/",
        f"/events/{event.slug}",
        f"/events/{event.slug}?print=1",
        "/events/past",
        "/staff/",
        "/staff/events/?show=all",
        f"/staff/events/{event.id}",
        f"/staff/events/{event.id}/edit",
        f"/staff/events/{event.id}/cancel",
        "/staff/speakers/",
    ]
    pages = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        pages[path] = response.text
    return pages


def newest(model):
    return db.session.scalars(db.select(model).order_by(model.id.desc()).limit(1)).one()


def test_hostile_event_text_is_stored_verbatim_and_shown_escaped(admin_client):
    for text in HOSTILE_TEXT:
        response = post_form(
            admin_client,
            "/staff/events/new",
            {
                **EVENT_FORM,
                "title": text,
                "summary": text,
                "venue_name": text,
                "venue_address": text,
                "host": text,
                "supporters": f"{text}\nOctree",
                "description": text,
            },
        )
        assert response.status_code == 302, text
        event = newest(Event)
        stored = (event.title, event.summary, event.venue_name, event.venue_address, event.host)
        assert stored == (text,) * 5
        assert event.supporter_list == [text, "Octree"]
        post_form(
            admin_client,
            f"/staff/events/{event.id}/publish",
            {},
            token_from=f"/staff/events/{event.id}",
        )

        for path, html in pages_showing(admin_client, event).items():
            assert_no_raw_markup(html)
            if path not in ("/events/past", "/staff/speakers/"):
                assert str(escape(text)) in html, f"{path} does not show {text!r} as typed"
    # The table is still there, with every event in it.
    assert db.session.scalar(db.select(db.func.count(Event.id))) == len(HOSTILE_TEXT)


def test_hostile_speaker_and_agenda_text_is_stored_verbatim_and_shown_escaped(
    admin_client, make_event
):
    for text in HOSTILE_TEXT:
        event = make_event(starts_at=EVENT_START)
        response = post_form(
            admin_client,
            "/staff/speakers/new",
            {
                **SPEAKER_FORM,
                "name": text,
                "job_title": text,
                "organisation": text,
                "bio": text,
            },
        )
        assert response.status_code == 302, text
        speaker = newest(Speaker)
        assert (speaker.name, speaker.job_title, speaker.organisation, speaker.bio) == (text,) * 4

        response = post_form(
            admin_client,
            f"/staff/events/{event.id}/agenda/new",
            {
                **ITEM_FORM,
                "title": text,
                "description": text,
                "speakers-0": str(speaker.id),
            },
        )
        assert response.status_code == 302, text
        item = newest(AgendaItem)
        assert (item.title, item.description, item.kind) == (text, text, AgendaKind.talk)

        pages = pages_showing(admin_client, event)
        pages["item form"] = admin_client.get(f"/staff/events/{event.id}/agenda/{item.id}").text
        pages["speaker form"] = admin_client.get(f"/staff/speakers/{speaker.id}").text
        for html in pages.values():
            assert_no_raw_markup(html)
        assert str(escape(text)) in pages[f"/events/{event.slug}"], text
        assert str(escape(text)) in pages["/staff/speakers/"], text


def test_markdown_descriptions_keep_safe_links_and_drop_everything_live(admin_client, make_event):
    response = post_form(
        admin_client, "/staff/events/new", {**EVENT_FORM, "description": NASTY_MARKDOWN}
    )
    assert response.status_code == 302
    event = db.session.scalars(db.select(Event)).one()
    assert event.description == NASTY_MARKDOWN.replace("\r\n", "\n")
    speaker_response = post_form(
        admin_client, "/staff/speakers/new", {**SPEAKER_FORM, "bio": NASTY_MARKDOWN}
    )
    assert speaker_response.status_code == 302
    speaker = db.session.scalars(db.select(Speaker)).one()
    item_response = post_form(
        admin_client,
        f"/staff/events/{event.id}/agenda/new",
        {
            **ITEM_FORM,
            "description": NASTY_MARKDOWN,
            "speakers-0": str(speaker.id),
        },
    )
    assert item_response.status_code == 302
    post_form(
        admin_client,
        f"/staff/events/{event.id}/publish",
        {},
        token_from=f"/staff/events/{event.id}",
    )

    page = admin_client.get(f"/events/{event.slug}").text
    assert_no_raw_markup(page)
    assert (
        page.count(
            '<a href="https://www.ncsc.gov.uk/" rel="noopener noreferrer nofollow">a safe link</a>'
        )
        == 3
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as the text that was typed


def test_hostile_staff_names_are_shown_escaped(app, admin_client):
    response = post_form(admin_client, "/staff/users/new", {**NEW_USER_FORM, "name": SCRIPT})
    assert response.status_code == 302
    assert (
        db.session.scalars(db.select(StaffUser).where(StaffUser.email == "pat@example.com"))
        .one()
        .name
        == SCRIPT
    )
    listing = admin_client.get("/staff/users/").text
    assert_no_raw_markup(listing)
    assert str(escape(SCRIPT)) in listing

    own = app.test_client()
    log_in(
        own,
        db.session.scalars(db.select(StaffUser).where(StaffUser.email == "pat@example.com")).one(),
        password=NEW_USER_FORM["password"],
    )
    dashboard = own.get("/staff/").text
    assert_no_raw_markup(dashboard)
    assert str(escape(SCRIPT)) in dashboard


def test_sql_looking_login_details_are_just_wrong(client, admin):
    response = post_form(client, "/staff/login", {"email": SQL, "password": "' OR '1'='1"})
    assert response.status_code == 401
    assert "The email address or password is not right." in response.text
    assert db.session.scalar(db.select(db.func.count(StaffUser.id))) == 1


def test_hostile_query_strings_are_harmless(admin_client):
    for path in [
        "/staff/events/?show=<script>alert(1)</script>",
        "/staff/events/?show=all&page=<img>",
        "/staff/login?next=<script>alert(1)</script>",
        "/events/past?page=%00",
    ]:
        response = admin_client.get(path)
        assert response.status_code in (200, 302), path
        assert_no_raw_markup(response.text)


HOSTILE_PATH_VALUES = [
    "%00", "a%00b", "%ff%fe", "x" * 3000, "..%2F..%2Fetc%2Fpasswd",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "'%3B DROP TABLE event%3B --", "%E2%80%AE", "Zo%C3%AB",
]  # fmt: skip


def test_hostile_values_in_any_url_variable_are_not_found_never_an_error(app, client, admin_client):
    # Every rule with a text variable (slugs, tokens, file names), now and added later.
    rules = [
        rule for rule in app.url_map.iter_rules()
        if any(isinstance(c, UnicodeConverter | PathConverter) for c in rule._converters.values())
    ]  # fmt: skip
    assert rules, "no rule with a text variable found"
    token = csrf_token(admin_client, "/staff/")
    problems = []
    for rule in rules:
        for value in HOSTILE_PATH_VALUES:
            path = rule.rule
            for name in rule.arguments:
                path = re.sub(rf"<[^>]*\b{name}>", value, path)
            for who, user in (("visitor", client), ("admin", admin_client)):
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    data = {"csrf_token": token} if method == "POST" else None
                    try:
                        response = user.open(path, method=method, data=data)
                    except Exception as error:  # a 500: the test app re-raises it
                        problems.append(f"{who} {method} {path[:60]}: raised {error!r}"[:200])
                        continue
                    if (
                        response.status_code >= 500
                        or response.status_code == 200
                        and (
                            live_markup(response.text)
                            if response.mimetype == "text/html"
                            else False
                        )
                    ):
                        problems.append(f"{who} {method} {path[:60]}: {response.status_code}")
    assert problems == []


# --- forged requests -----------------------------------------------------------------------------


@pytest.fixture
def forged_targets(forms, admin_client):
    event_id = db.session.scalars(db.select(Event.id).where(Event.slug == "cyber-2030")).one()
    return [
        ("/staff/events/new", EVENT_FORM),
        (f"/staff/events/{event_id}/edit", {**EVENT_FORM, "title": "Hijacked"}),
        (f"/staff/events/{event_id}/publish", {}),
        (f"/staff/events/{event_id}/agenda/new", ITEM_FORM),
        ("/staff/speakers/new", SPEAKER_FORM),
        ("/staff/users/new", NEW_USER_FORM),
        (forms["user-password"].path, PASSWORD_FORM),
        ("/staff/logout", {}),
    ]


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(admin_client, forged_targets):
    before = committed_rows()
    for path, data in forged_targets:
        response = admin_client.post(path, data=data)
        assert response.status_code == 400, path
        assert "The form could not be sent" in response.text, path
    assert committed_rows() == before
    assert admin_client.get("/staff/").status_code == 200  # the forged logout did not log out


def test_a_post_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    admin_client, forged_targets
):
    before = committed_rows()
    for token in ["wrong", "", "x" * 200, "IjA2ZjM.forged.signature"]:
        for path, data in forged_targets:
            response = admin_client.post(path, data={**data, "csrf_token": token})
            assert response.status_code == 400, (token, path)
    assert committed_rows() == before


def test_a_csrf_token_from_another_session_is_refused(app, admin_client, forged_targets):
    someone_else = csrf_token(app.test_client())
    before = committed_rows()
    for path, data in forged_targets:
        response = admin_client.post(path, data={**data, "csrf_token": someone_else})
        assert response.status_code == 400, path
    assert committed_rows() == before


def test_a_login_without_a_csrf_token_is_refused(client, admin):
    response = client.post("/staff/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_another_events_agenda_item_is_not_found_through_this_event(
    admin_client, make_event, make_item
):
    event_a = make_event(starts_at=EVENT_START)
    event_b = make_event(starts_at=EVENT_START)
    make_item(event_b, minutes_in=0, title="B first")
    item_b = make_item(event_b, minutes_in=30, title="B second")
    token = csrf_token(admin_client, "/staff/")
    base = f"/staff/events/{event_a.id}/agenda/{item_b.id}"
    before = committed_rows()

    assert admin_client.get(base).status_code == 404
    for path, data in [
        (base, {**ITEM_FORM, "title": "Hijacked"}),
        (f"{base}/delete", {}),
        (f"{base}/earlier", {}),
        (f"{base}/later", {}),
    ]:
        response = admin_client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 404, path
        assert "Page not found" in response.text
    assert committed_rows() == before


@pytest.mark.parametrize(
    "path",
    [
        "/staff/events/999999",
        "/staff/events/999999/edit",
        "/staff/events/999999/agenda/new",
        "/staff/events/999999/cancel",
        "/staff/speakers/999999",
        "/staff/users/999999",
    ],
)
def test_an_id_that_does_not_exist_is_a_plain_404(admin_client, path):
    assert admin_client.get(path).status_code == 404
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, "/staff/")})
    assert response.status_code in (404, 405)


@pytest.mark.parametrize(
    "path",
    [
        "/staff/events/-1",
        "/staff/events/abc",
        "/staff/events/1e3/edit",
        "/staff/events/99999999999999999999999999",
        "/staff/users/%00",
    ],
)
def test_an_id_that_is_not_a_number_is_a_plain_404(admin_client, path):
    assert admin_client.get(path).status_code == 404


def test_a_status_change_by_get_is_not_allowed(admin_client, make_event):
    event = make_event(status=EventStatus.draft)
    response = admin_client.get(f"/staff/events/{event.id}/publish")
    assert response.status_code == 405
    assert "That cannot be done here" in response.text
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == EventStatus.draft


def test_the_checkin_role_is_refused_before_its_input_is_even_read(app, make_staff, make_event):
    door = app.test_client()
    log_in(door, make_staff(Role.checkin, email="door@example.com"))
    event = make_event()
    before = committed_rows()
    response = door.post(
        f"/staff/events/{event.id}/edit",
        data={**EVENT_FORM, "title": SCRIPT, "csrf_token": csrf_token(door, "/staff/")},
    )
    assert response.status_code == 403
    assert committed_rows() == before


@pytest.mark.parametrize("page", ["99999999999999999999", "-3", "abc", "1e9", "0"])
def test_a_silly_page_number_never_gives_a_500(organiser_client, admin_client, page):
    for client, path in [
        (organiser_client, "/events/past"),
        (organiser_client, "/staff/events/"),
        (admin_client, "/staff/outbox/"),
    ]:
        assert client.get(f"{path}?page={page}").status_code == 200, path
