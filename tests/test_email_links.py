"""Every kind of email, sent by the flows that send it and delivered by the worker, with every
link in it followed: each opens its page, so renaming a route fails here instead of silently
breaking the links in mail already sent. Links are built by name at the public address
(`core.urls.external_url`), never from the request's host."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from werkzeug.routing import BuildError

import chamber
from chamber.campaigns.sending import send_due as send_campaigns
from chamber.core.urls import external_url
from chamber.directory.models import Segment
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail import links
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage
from chamber.mail.services import enqueue
from chamber.registration import reminders
from chamber.surveys import dispatch
from tests.factories import at
from tests.support import post_form
from tests.surveys_support import book, finished_seminar, sent_survey
from tests.test_registration import delegate, register, register_other

EMAILS = Path(chamber.__file__).parent / "templates" / "emails"
URL = re.compile(r"https?://[^\s\"'<>]+")
MINUTE = timedelta(minutes=1)
# Links documented as leading nowhere: what a minter writes for a booking or delegate erased after
# its email was queued (docs/mail.md). Any other link must open its page.
DEAD = re.compile(r"/(r|places|staff/checkin/scan)/gone$")
# Other sites an email links to on purpose (the reminder's map), with the path the link must have:
# checked for its shape, not fetched (the tests do not reach the internet).
OUTSIDE = {"www.openstreetmap.org": "/search"}


def email_templates() -> set[str]:
    """Every template under chamber/templates/emails/, so a new kind is covered automatically."""
    return {path.relative_to(EMAILS.parent).as_posix() for path in EMAILS.rglob("*.*")}


@pytest.fixture
def loaded_templates(app, monkeypatch) -> set[str]:
    """The names of the templates loaded while the test runs, including those a template extends
    or includes (Jinja loads those through the environment's `get_template` too)."""
    names: set[str] = set()
    get_template = app.jinja_env.get_template

    def recording(name, *args, **kwargs):
        names.add(str(name))
        return get_template(name, *args, **kwargs)

    monkeypatch.setattr(app.jinja_env, "get_template", recording)
    return names


class Mailbox:
    """Delivers what is due through the worker to the test SMTP server, then follows every link
    in each new message: public pages anonymously, staff pages as an organiser."""

    def __init__(self, app, smtp_server, client, staff_client):
        self.base = app.config["BASE_URL"]
        self.smtp_server = smtp_server
        self.client = client
        self.staff_client = staff_client
        self.seen = 0
        self.followed: dict[str, int] = {}

    def deliver(self) -> list[EmailMessage]:
        report = deliver_due()
        assert (report.failed, report.retrying, report.errors) == (0, 0, [])
        messages = self.smtp_server.messages[self.seen :]
        self.seen += len(messages)
        for message in messages:
            for url in links_in(message):
                self.follow(url, message["Subject"])
        return messages

    def follow(self, url: str, subject: str) -> None:
        parts = urlsplit(url)
        if parts.hostname in OUTSIDE:
            assert parts.scheme == "https" and parts.path == OUTSIDE[parts.hostname], url
            assert parse_qsl(parts.query) and not parts.fragment, url
            self.followed[url] = 0
            return
        assert url.startswith(f"{self.base}/"), f"{subject!r}: {url} is not at the public address"
        path = url.removeprefix(self.base)
        client = self.staff_client if path.startswith("/staff/") else self.client
        status = client.get(path).status_code
        expected = 404 if DEAD.search(urlsplit(path).path) else 200
        assert status == expected, f"{subject!r}: {url} answered {status}"
        self.followed[path] = status
        for _, value in parse_qsl(
            urlsplit(url).query
        ):  # the check-in picture carries the scan link
            if URL.fullmatch(value):
                self.follow(value, subject)


def links_in(message: EmailMessage) -> list[str]:
    """Every http(s) link in the text and HTML bodies and the List-Unsubscribe header."""
    text = message.get_body(("plain",)).get_content()
    markup = html.unescape(message.get_body(("html",)).get_content())
    header = message.get("List-Unsubscribe", "")
    found = URL.findall(text) + URL.findall(markup) + URL.findall(header)
    return list(dict.fromkeys(url.rstrip(".,;:)") for url in found))


def subjects(messages: list[EmailMessage]) -> dict[str, str]:
    return {str(message["To"]): str(message["Subject"]) for message in messages}


@pytest.fixture
def mailbox(app, smtp_server, client, organiser_client) -> Mailbox:
    return Mailbox(app, smtp_server, client, organiser_client)


def test_every_email_kind_is_sent_and_every_link_in_it_opens_its_page(
    app, mailbox, client, organiser_client, runner, make_event, make_item, loaded_templates
):
    event = make_event(capacity=2, business_limit=5)

    # A booking: the booker books themself and a colleague, and each gets their own link.
    booked = register(
        client,
        event,
        **{"delegates-1-name": "Tony Richardson", "delegates-1-email": "tony@octree.example"},
    )
    assert booked.status_code == 302
    sent = subjects(mailbox.deliver())
    assert sent["Tony Richardson <tony@octree.example>"].startswith("Your booking")
    assert sent["Zoë O'Brien <zoe@octree.example>"].startswith("Your place")

    # The event is full: the next one waits; someone booked twice is sent their link again.
    register_other(client, event, "wait@other.example", **{"delegates-0-name": "Wai Ting"})
    register(
        client,
        event,
        booker_email="c@third.example",
        business_name="Third",
        **{"delegates-0-email": "ZOE@octree.example"},
    )
    sent = subjects(mailbox.deliver())
    assert sent["Wai Ting <wait@other.example>"].startswith("You are on the waiting list")
    assert "Zoë O'Brien <zoe@octree.example>" in sent  # manage_again: her own place link

    # The colleague cancels her own place: she is told, the seat goes to whoever waited (promoted),
    # and the booker hears that a place on the booking was cancelled.
    place = next(p for p in mailbox.followed if p.startswith("/places/")).split("/")[2]
    assert post_form(client, f"/places/{place}/cancel", {}).status_code == 302
    sent = subjects(mailbox.deliver())
    assert sent["Zoë O'Brien <zoe@octree.example>"].startswith("Cancelled: your place")
    assert sent["Wai Ting <wait@other.example>"].startswith("Good news")
    assert sent["Tony Richardson <tony@octree.example>"].startswith("A place on your booking")

    # The booker cancels his own place through the manage link: one confirmation, nobody else.
    manage = next(p for p in mailbox.followed if p.startswith("/r/"))
    tony = delegate("tony@octree.example")
    assert post_form(client, f"{manage}/cancel/{tony.id}", {}).status_code == 302
    sent = subjects(mailbox.deliver())
    assert list(sent) == ["Tony Richardson <tony@octree.example>"]
    assert sent["Tony Richardson <tony@octree.example>"].startswith("Cancelled: your place")

    # Staff move the event (every confirmed delegate gets the update), then cancel it.
    edit, moved = f"/staff/events/{event.id}/edit", event_form(event, venue_name="Arts Centre")
    asked = post_form(organiser_client, edit, moved)  # "Saving will email 2 confirmed delegates"
    told = re.search(r'name="notify_confirmed" value="(\d+)"', asked.text).group(1)
    changed = post_form(organiser_client, edit, {**moved, "notify_confirmed": told})
    assert changed.status_code == 302, changed.text
    assert all(s.startswith("Changed:") for s in subjects(mailbox.deliver()).values())
    cancelled = post_form(
        organiser_client,
        f"/staff/events/{event.id}/cancel",
        {},
        token_from=f"/staff/events/{event.id}/cancel",
    )
    assert cancelled.status_code == 302
    assert all(s.startswith("Cancelled:") for s in subjects(mailbox.deliver()).values())

    # The reminder before an event (with its map, calendar, check-in and own links), then a
    # message staff write to its delegates, with the test they send themselves first.
    soon = make_event(starts_at=at(1, 10), parking="Free on site.", access="Step-free.")
    make_item(soon, minutes_in=0, title="Welcome")
    register(client, soon, booker_email="rita@remind.example", booker_name="Rita Remind", business_name="Remind Ltd",
             **{"delegates-0-email": "rita@remind.example", "delegates-0-name": "Rita Remind"})  # fmt: skip
    mailbox.deliver()  # her confirmation
    assert reminders.send_due().queued == 1
    assert subjects(mailbox.deliver())["Rita Remind <rita@remind.example>"].startswith("Reminder:")
    writing = f"/staff/events/{soon.id}/messages/new"
    written = post_form(organiser_client, writing, {"audience": "confirmed", "subject": "Lunch",
                                                    "body": "Lunch is *included*."})  # fmt: skip
    check = written.headers["Location"]
    assert post_form(organiser_client, f"{check}/test", {}, token_from=check).status_code == 302
    assert list(subjects(mailbox.deliver()).values()) == ["[Test] Lunch"]
    sending = post_form(organiser_client, f"{check}/send", {"expected": "1"}, token_from=check)
    assert sending.status_code == 302, sending.text
    assert subjects(mailbox.deliver()) == {"Rita Remind <rita@remind.example>": "Lunch"}

    # After a seminar: the survey invitation, then the reminder to those who did not answer.
    seminar = finished_seminar(make_event, make_item)
    book(seminar, "ann@alpha.example", name="Ann Alpha")
    survey = sent_survey(seminar)
    assert subjects(mailbox.deliver())["Ann Alpha <ann@alpha.example>"]
    assert dispatch.send_reminders(survey, now=dispatch.reminder_due_at(survey) + MINUTE) == 1
    db.session.commit()
    assert subjects(mailbox.deliver())["Ann Alpha <ann@alpha.example>"].startswith("Reminder:")

    # The test message from the command line, and a marketing message with its unsubscribe link.
    result = runner.invoke(args=["send-test-email", "ops@example.com"])
    assert result.exit_code == 0, result.output
    enqueue(
        key="marketing:1",
        to="zoe@octree.example",
        subject="News",
        template="test_message",
        kind=MailKind.marketing,
    )
    db.session.commit()
    news = mailbox.deliver()
    assert len(news) == 2 and any(message["List-Unsubscribe"] for message in news)

    # Subscribing: only the confirmation until the button is pressed, then a welcome carrying the
    # preferences link (every marketing email's footer) beside the one-click unsubscribe.
    subscribing = {"name": "Sam Sub", "email": "sam@example.com", "topics": ["events"]}
    assert post_form(client, "/subscribe", subscribing).status_code == 302
    assert subjects(mailbox.deliver()) == {"sam@example.com": "Confirm that you want our emails"}
    confirm = next(p for p in mailbox.followed if p.startswith("/subscribe/confirm/"))
    assert post_form(client, confirm, {}).status_code == 302
    assert subjects(mailbox.deliver()) == {"sam@example.com": "You are subscribed"}

    # A campaign to everyone who may hear about events, with an event card: a test to the
    # organiser first, then the campaign itself, queued by the worker.
    invited = make_event(title="Cyber crime: next year")
    db.session.add(Segment(name="Everyone", filters={}))
    db.session.commit()
    composed = post_form(organiser_client, "/staff/campaigns/new", {
        "subject": "Book your places", "body": "Join us.", "event_id": str(invited.id),
        "segment_id": str(db.session.scalar(db.select(Segment.id))), "topic": "events",
    })  # fmt: skip
    campaign = composed.headers["Location"]
    assert (
        post_form(organiser_client, f"{campaign}/test", {}, token_from=campaign).status_code == 302
    )
    assert post_form(organiser_client, f"{campaign}/send", {}).status_code == 302
    send_campaigns()
    sent = subjects(mailbox.deliver())
    assert sent["Sam Sub <sam@example.com>"] == "Book your places"
    assert any(subject.startswith("[Test] ") for subject in sent.values())

    # A member of staff forgot their password: the reset email, whose link opens its page.
    forgot = post_form(client, "/staff/password/forgot", {"email": "org@example.com"})
    assert forgot.status_code == 302
    assert subjects(mailbox.deliver()) == {"Olu Organiser <org@example.com>": "Set a new password"}
    assert any(path.startswith("/staff/password/reset/") for path in mailbox.followed)

    unused = email_templates() - loaded_templates
    assert not unused, f"email templates no flow here sends (add the flow): {sorted(unused)}"
    statuses = db.session.scalars(db.select(OutboxMessage.status)).all()
    assert set(statuses) == {MessageStatus.sent}
    followed = {urlsplit(path).path.split("/")[1] for path in mailbox.followed}
    assert {"events", "r", "places", "staff", "s", "unsubscribe", "subscribe", "preferences"} <= (
        followed
    )
    assert any("campaign=" in path and "/register" in path for path in mailbox.followed)


def event_form(event: Event, **changes) -> dict:
    """The staff edit form as it stands for `event`, with `changes`."""
    local = "%Y-%m-%dT%H:%M"
    return {
        "title": event.title,
        "slug": event.slug,
        "summary": event.summary,
        "description": event.description,
        "venue_name": event.venue_name,
        "venue_address": event.venue_address,
        "timezone": event.timezone,
        "starts_at": f"{event.local_start:{local}}",
        "ends_at": f"{event.local_end:{local}}",
        "capacity": str(event.capacity),
        "business_limit": str(event.business_limit),
        "registration_opens_at": "",
        "registration_closes_at": "",
        "host": event.host,
        "supporters": "",
        **changes,
    }


def test_a_check_in_code_is_spent_once_a_newer_email_carries_another(
    mailbox, client, organiser_client, make_event
):
    event = make_event()
    register(client, event)
    first = next(m for m in mailbox.deliver() if m["Subject"].startswith("Your place"))
    old = [url for url in links_in(first) if "/staff/checkin/scan/" in url]
    zoe = delegate("zoe@octree.example")
    resend = post_form(
        organiser_client,
        f"/staff/events/{event.id}/registrations/{zoe.id}/resend",
        {},
        token_from=f"/staff/events/{event.id}/registrations",
    )
    assert resend.status_code == 302
    mailbox.deliver()  # the fresh code opens (followed inside)
    assert len(set(old)) == 1  # the same link in the text and the HTML
    assert organiser_client.get(old[0].removeprefix(mailbox.base)).status_code == 404
    assert client.get("/qr/checkin.png", query_string={"link": old[0]}).status_code == 404


def test_a_link_minted_for_an_erased_booking_or_place_leads_to_a_plain_404(
    app, client, organiser_client
):
    nonce = links.new_nonce()
    markers = [links.marker_for(nonce, kind, "999999") for kind in ("manage", "place", "checkin")]
    for url in links.mint_links(markers, "a@example.com", nonce):
        assert url.startswith(f"{app.config['BASE_URL']}/") and DEAD.search(url)
        path = url.removeprefix(app.config["BASE_URL"])
        opener = organiser_client if path.startswith("/staff/") else client
        assert opener.get(path).status_code == 404
        assert client.get(f"/qr/checkin.png?link={url}").status_code == 404


# --- the helper ----------------------------------------------------------------------------------


def test_links_are_built_at_the_public_address_with_its_path_prefix_outside_a_request(app):
    app.config["BASE_URL"] = "https://events.example.org/chamber"
    assert external_url("events.show", slug="cyber") == (
        "https://events.example.org/chamber/events/cyber"
    )
    assert external_url("api.events", page=2, per_page=10) == (
        "https://events.example.org/chamber/api/v1/events?page=2&per_page=10"
    )
    assert external_url("events.show", slug="cyber", _anchor="item-3").endswith("/cyber#item-3")


@pytest.mark.parametrize(
    ("endpoint", "values"),
    [
        ("mail.unsubscribe_page", {"token": "Ab-_09" * 7}),
        ("members.preferences", {"token": "x"}),
        ("events.show", {"slug": "cyber-2027"}),
        ("api.events", {"page": "2", "per_page": "10"}),  # query string, in the order given
        ("api.events", {"per_page": "10", "page": "2"}),
        ("events.show", {"slug": "a/b"}),  # what is not plain is built in full, each time
        ("events.show", {"slug": "caf\u00e9 & <b>"}),
        ("events.show", {"slug": "chamberslot0x"}),  # the slot's own text, as a value
        ("api.events", {"page": "chamberslot1x", "per_page": "7"}),  # another slot's text
        ("mail.unsubscribe_page", {"token": "t", "next": "%2F%0D%0A"}),
        ("events.show", {"slug": 42}),
    ],
)
def test_a_link_built_from_its_kept_shape_is_the_link_built_in_full(app, endpoint, values):
    app.config["BASE_URL"] = "https://events.example.org/chamber"
    full = app.url_map.bind("events.example.org", script_name="/chamber", url_scheme="https")
    expected = full.build(endpoint, dict(values), force_external=True)
    assert external_url(endpoint, **values) == expected
    assert external_url(endpoint, **values) == expected  # the second time from the kept shape
    app.config["BASE_URL"] = "http://other.example"  # a new public address: a new shape
    assert external_url(endpoint, **values).startswith("http://other.example/")


def test_an_endpoint_that_does_not_exist_still_raises_when_its_values_are_plain(app):
    for _ in range(2):
        with pytest.raises(BuildError):
            external_url("mail.no_such_page", token="abc")


def test_links_ignore_the_host_a_request_came_in_on(app):
    with app.test_request_context("/", base_url="http://internal-host:8080"):
        assert external_url("events.show", slug="x") == f"{app.config['BASE_URL']}/events/x"


def test_a_renamed_or_missing_route_raises_instead_of_making_a_wrong_link(app):
    with pytest.raises(BuildError):
        external_url("events.no_such_page", slug="x")
    with pytest.raises(BuildError):
        external_url("events.show")  # a value the route needs is missing
    bare = Flask("bare")  # an app where the event page was never registered (or was renamed)
    bare.config["BASE_URL"] = "http://127.0.0.1:5000"
    bare.add_url_rule("/happenings/<slug>", "events.happening", lambda slug: slug)
    with bare.app_context(), pytest.raises(BuildError):
        external_url("events.show", slug="cyber")
