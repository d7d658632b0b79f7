"""Emails rendered when they are sent (`mail.rendering`): a booking's emails are queued as what
they are about, and the worker that claims them renders them, stores what it sent, and parks or
cancels, with the reason, one it cannot render, while the rest of the batch goes."""

from __future__ import annotations

import json

import pytest

from chamber.events.models import EventStatus
from chamber.events.services import set_status
from chamber.extensions import db
from chamber.mail import rendering
from chamber.mail.delivery import claim_batch, deliver_due
from chamber.mail.models import MessageStatus, OutboxAttachment, OutboxMessage
from chamber.mail.rendering import GONE, NotSent, ToRender, render_claimed
from chamber.mail.services import Attachment, enqueue_later, retry
from chamber.privacy.erasure import erase_person
from chamber.registration import notifications, staff
from chamber.registration.models import Delegate
from chamber.registration.services import DelegateDetails
from tests.factories import make_booking
from tests.support import count_queries, render_waiting


@pytest.fixture
def booked(make_event):
    """A booking of two people, its emails queued as the public form queues them."""
    event = make_event(title="Cyber <b>Safe</b> {{ 7*7 }}", capacity=1)
    people = [DelegateDetails("Ann Booker", "ann@octree.example"),
              DelegateDetails("Bo <i>Waits</i>", "bo@octree.example")]  # fmt: skip
    result = make_booking(event, *people, source="web", commit=False)
    notifications.booking_emails(event, result)
    db.session.commit()
    return event, result


def messages() -> dict[str, OutboxMessage]:
    db.session.expire_all()
    return {m.key.split(":")[0]: m for m in db.session.scalars(db.select(OutboxMessage))}


def test_a_booking_queues_what_its_emails_are_about_and_the_worker_renders_them(
    booked, smtp_server
):
    _event, result = booked
    queued = messages()
    assert sorted(queued) == ["booking", "confirmed", "waitlisted"]
    for message in queued.values():
        assert message.render_with == notifications.RENDERER
        assert message.text_body == message.html_body == "" and not message.attachments
        about = json.loads(message.render_params)
        assert "Ann" not in message.render_params and "@" not in message.render_params, about
    assert json.loads(queued["booking"].render_params)["confirmed"] == [result.confirmed[0].id]

    report = deliver_due()
    assert report.sent == 3 and not report.errors
    sent = messages()
    for message in sent.values():
        assert message.status == MessageStatus.sent
        assert message.render_with is None and message.render_params is None
    assert "number 1" in sent["waitlisted"].text_body
    assert "Bo <i>Waits</i>: on the waiting list" in sent["booking"].text_body
    assert "Bo &lt;i&gt;Waits&lt;/i&gt;" in sent["booking"].html_body  # typed text stays text
    for message in sent.values():  # the title, typed by staff, is text too: never a template
        assert "Cyber <b>Safe</b> {{ 7*7 }}" in message.text_body
    (calendar,) = sent["confirmed"].attachments
    assert calendar.content_type == "text/calendar; charset=utf-8; method=REQUEST"
    assert b"ATTENDEE" in calendar.content and b"ann@octree.example" in calendar.content
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_server.messages) == [
        "ann@octree.example", "ann@octree.example", "bo@octree.example"
    ]  # fmt: skip
    confirmation = next(m for m in smtp_server.messages if "Your place" in m["Subject"])
    parts = [part.get_content_type() for part in confirmation.walk()]
    assert "text/calendar" in parts and "text/plain" in parts and "text/html" in parts


def test_the_outbox_shows_a_message_not_yet_rendered_without_storing_it(booked, admin_client):
    client = admin_client
    waiting = messages()["waitlisted"]
    page = client.get(f"/staff/outbox/{waiting.id}")
    assert page.status_code == 200
    assert "when it is sent" in page.text and "number 1" in page.text
    html = client.get(f"/staff/outbox/{waiting.id}/html")
    assert html.status_code == 200 and "number 1" in html.text
    still = messages()["waitlisted"]
    assert still.render_with is not None and still.text_body == ""


@pytest.mark.parametrize(
    "forged",
    [
        {"template": "event_message", "delegate": 0},  # a real template, not one it may name
        {"template": "../../base", "delegate": 0},
        {"template": "{{ 7*7 }}", "delegate": 0},
        {"template": "confirmed", "delegate": 0, "invite": "PUBLISH\r\nX-Evil: 1"},
        {"template": "confirmed", "delegate": "1; DROP TABLE delegate"},
        {"template": "confirmed", "delegate": 0.5},
        {"template": "confirmed", "delegate": True},
        {"template": "confirmed", "delegate": 10**20},
        {"template": "waitlisted", "delegate": 0, "context": ["not", "an", "object"]},
        {"template": "confirmed"},
        ["not", "an", "object"],
        "{not json",
    ],
    ids=["other-template", "path", "template-syntax", "crlf-method", "text-id", "float-id",
         "bool-id", "huge-id", "context-list", "missing-id", "list", "malformed"],
)  # fmt: skip
def test_a_message_that_cannot_be_rendered_is_parked_with_its_reason_and_the_rest_go(
    booked, smtp_server, forged
):
    """What a message is about is written by Chamber alone, but a row altered by hand, or by a
    bug, must never name a template, a calendar method or a query, and never stop the batch."""
    _event, result = booked
    bad = messages()["waitlisted"]
    about = forged if isinstance(forged, str) else json.dumps(forged)
    if isinstance(forged, dict) and forged.get("delegate") == 0:
        about = json.dumps({**forged, "delegate": result.waitlisted[0].id})
    db.session.execute(
        db.update(OutboxMessage).where(OutboxMessage.id == bad.id).values(render_params=about)
    )
    db.session.commit()

    report = deliver_due()

    assert report.sent == 2
    parked = db.session.get(OutboxMessage, bad.id)
    db.session.refresh(parked)
    assert parked.status == MessageStatus.failed and parked.claimed_by is None
    assert parked.last_error.startswith("Not rendered: ")
    if isinstance(forged, dict) and forged.get("template") not in notifications.TEMPLATES_WHEN_SENT:
        assert "not a template of a registration email" in parked.last_error
    assert parked.text_body == "" and not parked.attachments
    assert len(smtp_server.messages) == 2
    assert db.session.scalar(db.select(db.func.count()).select_from(Delegate)) == 2
    assert all("bo@octree.example" not in m["To"] for m in smtp_server.messages)


def test_a_message_about_a_place_deleted_since_is_cancelled_not_sent(booked, admin, smtp_server):
    _event, result = booked
    gone = messages()["waitlisted"]
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.id == gone.id)
        .values(render_params=json.dumps({"template": "waitlisted", "delegate": 10**9}))
    )
    db.session.commit()
    assert deliver_due().sent == 2
    cancelled = messages()["waitlisted"]
    assert cancelled.status == MessageStatus.cancelled and cancelled.last_error == GONE
    # Sent again by staff, it is rendered again and found gone again: never sent empty.
    retry(cancelled, by=admin)
    db.session.commit()
    assert deliver_due().sent == 0
    again = messages()["waitlisted"]
    assert again.status == MessageStatus.cancelled and again.last_error == GONE
    assert len(smtp_server.messages) == 2 and again.text_body == ""


def test_news_of_a_place_out_of_date_when_it_is_due_is_cancelled_and_the_later_news_goes(
    booked, admin, admin_client, smtp_server
):
    """Staff cancel Ann's place before the worker sends her confirmation, and Bo, who waited,
    gets her seat: neither is sent the news that stopped being true, each is sent what is."""
    event, result = booked
    staff.cancel(event, result.confirmed[0], by=admin)
    db.session.commit()
    stale = messages()["confirmed"]
    page = admin_client.get(f"/staff/outbox/{stale.id}")
    assert page.status_code == 200 and "Withdrawn: out of date" in page.text

    report = deliver_due()

    queued = messages()
    assert report.sent == 3 and not report.errors
    for key, now in (("confirmed", "cancelled"), ("waitlisted", "confirmed")):
        assert queued[key].status == MessageStatus.cancelled
        assert f"The place is now {now}" in queued[key].last_error
        assert queued[key].text_body == "" and not queued[key].attachments
    assert {queued[k].status for k in ("booking", "seat-cancelled", "promoted")} == {
        MessageStatus.sent
    }
    assert sorted(
        (m["To"].addresses[0].addr_spec, str(m["Subject"]).split(":")[0])
        for m in smtp_server.messages
    ) == [
        ("ann@octree.example", "Cancelled"),
        ("ann@octree.example", "Your booking for Cyber <b>Safe</b> {{ 7*7 }}"),
        ("bo@octree.example", "Good news"),
    ]
    methods = {  # each calendar goes inline and as a file: one method a message
        m["To"].addresses[0].addr_spec: {
            p.get_param("method") for p in m.walk() if p.get_content_type() == "text/calendar"
        }
        for m in smtp_server.messages
        if "Your booking" not in str(m["Subject"])
    }
    assert methods == {"ann@octree.example": {"CANCEL"}, "bo@octree.example": {"REQUEST"}}
    shown = admin_client.get(f"/staff/outbox/{stale.id}")
    assert "<dt>Why not sent</dt>" in shown.text and "The place is now cancelled" in shown.text
    assert "Last error" not in shown.text
    listed = admin_client.get("/staff/outbox/?status=cancelled")
    assert listed.text.count("Withdrawn: out of date") == 2
    # Sent again by staff, it is rendered again and found out of date again.
    retry(queued["confirmed"], by=admin)
    db.session.commit()
    assert deliver_due().sent == 0
    again = messages()["confirmed"]
    assert again.status == MessageStatus.cancelled and "now cancelled" in again.last_error
    assert len(smtp_server.messages) == 3


def test_news_of_a_place_at_an_event_cancelled_before_it_is_due_still_goes(
    booked, admin, smtp_server
):
    """Calling the event off is not a move of anyone's place: it may be published again, and its
    own email tells only whom it names, so the booking's news still goes, the cancellation after."""
    event, _result = booked
    set_status(event, EventStatus.cancelled, by=admin)
    db.session.commit()

    deliver_due()

    queued = messages()
    assert {queued[k].status for k in ("confirmed", "waitlisted")} == {MessageStatus.sent}
    subjects = [str(m["Subject"]) for m in smtp_server.messages]
    assert any(s.startswith("You are on the waiting list") for s in subjects)
    assert any("cancelled" in s.lower() for s in subjects)


def test_waiting_list_news_for_a_place_cancelled_before_it_is_due_is_withdrawn(
    booked, admin, smtp_server
):
    event, result = booked
    staff.cancel(event, result.waitlisted[0], by=admin)
    db.session.commit()

    deliver_due()

    queued = messages()
    assert queued["waitlisted"].status == MessageStatus.cancelled
    assert "The place is now cancelled" in queued["waitlisted"].last_error
    (cancellation,) = [m for m in smtp_server.messages if "bo@octree.example" in m["To"]]
    assert str(cancellation["Subject"]).startswith("Cancelled")
    assert not [p for p in cancellation.walk() if p.get_content_type() == "text/calendar"]


def test_only_chamber_s_own_reasons_not_to_send_are_shown_as_such(app):
    """A reason not to send is Chamber's sentence ("Withdrawn: ..."); a message staff cancelled
    after a failed attempt shows its last error as an error, not as why it was not sent."""
    with pytest.raises(ValueError):
        NotSent("out of date")
    with pytest.raises(ValueError):
        NotSent("Not sent: out of date")  # how delivery's own failures begin
    for failure in ("451 Try again later", "Not sent: SMTPDataError: (554, b'rejected')"):
        message = OutboxMessage(status=MessageStatus.cancelled, last_error=failure)
        assert message.not_sent_reason is None
    message.last_error = GONE
    assert message.not_sent_reason == GONE
    message.status = MessageStatus.failed
    assert message.not_sent_reason is None


def test_a_person_erased_before_the_emails_go_is_in_none_of_them(booked, admin, smtp_server):
    _event, result = booked
    erase_person("bo@octree.example", by=admin)
    db.session.commit()
    deliver_due()
    everything = "".join(
        f"{m.text_body}{m.html_body}{m.to_address}{m.to_name}"
        for m in db.session.scalars(db.select(OutboxMessage))
    )
    assert "Waits" not in everything and "bo@octree.example" not in everything
    assert all("bo@octree.example" not in str(m) for m in smtp_server.messages)
    assert any("Ann" in str(m) for m in smtp_server.messages)  # the booker still hears


def test_a_claim_lost_while_it_renders_is_not_written(booked, monkeypatch):
    """The worker's lease ran out while it rendered, and another worker took the messages: the
    first writes nothing of them."""
    claim = claim_batch("first", 50)
    assert claim is not None
    render = rendering._renderers[notifications.RENDERER]

    def render_then_lose_the_claim(params):
        rendered = render(params)
        with db.engine.begin() as other:  # the other worker, on a connection of its own
            other.execute(
                db.update(OutboxMessage)
                .where(OutboxMessage.claimed_by == claim)
                .values(claimed_by="second")
            )
        return rendered

    monkeypatch.setitem(rendering._renderers, notifications.RENDERER, render_then_lose_the_claim)
    assert render_claimed(claim) == 0
    assert all(m.render_with is not None and m.text_body == "" for m in messages().values())
    assert not db.session.scalar(db.select(db.func.count()).select_from(OutboxAttachment))


def test_the_outbox_page_says_so_when_a_message_cannot_be_rendered(booked, admin_client):
    """A read that fails (an id out of the database's range) leaves the page's own transaction
    usable: the page answers, with the reason, and nothing changes."""
    bad = messages()["waitlisted"]
    forged = json.dumps({"template": "waitlisted", "delegate": 10**20})
    db.session.execute(
        db.update(OutboxMessage).where(OutboxMessage.id == bad.id).values(render_params=forged)
    )
    db.session.commit()
    page = admin_client.get(f"/staff/outbox/{bad.id}")
    assert page.status_code == 200
    assert "This message cannot be rendered" in page.text
    assert admin_client.get(f"/staff/outbox/{bad.id}/html").status_code == 200
    assert messages()["waitlisted"].status == MessageStatus.pending


def test_rendering_a_batch_reads_what_it_needs_in_a_fixed_number_of_statements(
    make_event, make_item
):
    """The worker renders a batch of emails about any number of bookings and events, each event
    with its agenda, in the same number of statements: not a few per message or per event."""

    def book(n: int) -> int:
        for i in range(n):
            event = make_event(capacity=10)
            make_item(event, title=f"Talk {n}-{i}")
            result = make_booking(event, f"p{n}-{i}@example.com", source="web", commit=False)
            notifications.booking_emails(event, result)
        db.session.commit()
        db.session.expire_all()
        with count_queries() as statements:
            assert render_waiting() == 2 * n
        return len(statements)

    assert book(3) == book(30)
    calendars = db.session.scalars(db.select(OutboxAttachment.content)).all()
    assert len(calendars) == 33 and all(b"Talk " in c for c in calendars)


def test_what_a_renderer_returns_that_cannot_be_stored_parks_only_its_message(
    app, monkeypatch, smtp_server
):
    """A renderer (any domain's, later) that returns an attachment the outbox cannot hold has its
    message parked with the reason; the batch's other messages are written and sent."""

    def renderer(params):
        return [
            ToRender("test_message", {}, (Attachment(name(p), "text/plain", b"hi"),))
            for p in params
        ]

    def name(params) -> str:
        return "x" * 300 + ".ics" if params.get("bad") else "fine.ics"

    monkeypatch.setitem(rendering._renderers, "test-bad", renderer)
    for n, bad in enumerate((False, True, False)):
        enqueue_later(key=f"t:{n}", to=f"t{n}@example.com", subject="Hi", render_with="test-bad",
                      params={"bad": bad})  # fmt: skip
    db.session.commit()
    report = deliver_due()
    outcome = {
        m.key: (m.status, m.last_error) for m in db.session.scalars(db.select(OutboxMessage))
    }
    assert report.sent == 2, outcome
    parked = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == "t:1")).one()
    assert parked.status == MessageStatus.failed
    assert "an attachment that cannot be stored" in parked.last_error
